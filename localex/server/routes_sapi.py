"""SAPI endpoints a main account uses: sub-account list, Spot assets and futures account of its sub-accounts,
universal transfers, wallet transfers."""

from __future__ import annotations

from decimal import Decimal

from localex.engine.markets import fmt_amount
from localex.engine.types import Transfer
from localex.server import errors, wire
from localex.server.http import SIGNED, Call, Endpoint

SPOT = "spot"
PERM_TRANSFER = "TRANSFER"
WALLETS = {"SPOT": "SPOT", "USDT_FUTURE": "FUTURES"}
WALLET_NAMES = {v: k for k, v in WALLETS.items()}
ASSET_TRANSFER_TYPES = {"MAIN_UMFUTURE": ("SPOT", "FUTURES"), "UMFUTURE_MAIN": ("FUTURES", "SPOT")}


def _main(call: Call) -> str:
    """The caller, who must be a main account (sub-accounts get -2015 on master endpoints)."""
    assert call.account_id is not None
    acct = call.state.exchange.account(call.account_id)
    if acct.is_sub:
        raise errors.rejected_mbx_key()
    return call.account_id


def _by_email(call: Call, main_id: str, email: str) -> str:
    for sub in call.state.exchange.sub_accounts(main_id):
        if sub.email == email:
            return sub.account_id
    if call.state.exchange.account(main_id).email == email:
        return main_id
    raise errors.BinanceError(-12016, "This sub-account does not exist.", 400)


def _email(call: Call, account_id: str) -> str:
    return call.state.exchange.account(account_id).email or account_id


async def sub_account_list(call: Call) -> object:
    """GET /sapi/v1/sub-account/list."""
    main = _main(call)
    email = call.params.opt_str("email")
    page = call.params.opt_int("page", 1) or 1
    subs = [s for s in call.state.exchange.sub_accounts(main) if email is None or s.email == email]
    limit = call.params.opt_int("limit", 1, 200) or 200
    rows = subs[(page - 1) * limit : page * limit]
    return {
        "subAccounts": [
            {
                "email": s.email,
                "isFreeze": False,
                "createTime": wire.ms(s.created_ns),
                "isManagedSubAccount": False,
                "isAssetManagementSubAccount": False,
            }
            for s in rows
        ]
    }


async def create_virtual_sub_account(call: Call) -> object:
    """POST /sapi/v1/sub-account/virtualSubAccount."""
    main = _main(call)
    name = call.params.str("subAccountString")
    email = f"{name}_virtual@{main}.localex"
    sub = call.state.exchange.create_account(email, parent_id=main)
    return {"email": sub.email}


def _asset_rows(call: Call, account_id: str, as_strings: bool) -> list[dict[str, object]]:
    rows = []
    for b in call.state.exchange.balances(account_id, "SPOT"):
        free, locked = fmt_amount(b.free), fmt_amount(b.locked)
        if as_strings:
            rows.append({"asset": b.asset, "free": free, "locked": locked, "freeze": "0", "withdrawing": "0"})
        else:
            rows.append(
                {
                    "asset": b.asset,
                    "free": float(Decimal(free)),
                    "locked": float(Decimal(locked)),
                    "freeze": 0,
                    "withdrawing": 0,
                }
            )
    return rows


async def sub_account_assets_v3(call: Call) -> object:
    """GET /sapi/v3/sub-account/assets (numbers, as Binance's v3)."""
    main = _main(call)
    return {"balances": _asset_rows(call, _by_email(call, main, call.params.str("email")), False)}


async def sub_account_assets_v4(call: Call) -> object:
    """GET /sapi/v4/sub-account/assets (decimal strings)."""
    main = _main(call)
    return {"balances": _asset_rows(call, _by_email(call, main, call.params.str("email")), True)}


async def sub_account_futures_account_v2(call: Call) -> object:
    """GET /sapi/v2/sub-account/futures/account (developers.binance.com, sub_account/asset-management/
    Get-Detail-on-Sub-accounts-Futures-Account-V2): a sub-account's futures wallet, for the master account's
    key. ``futuresType`` 1 is USD-M (``futureAccountResp``); 2 (COIN-M, ``deliveryAccountResp``) is not served
    by the local exchange, which has no COIN-M market."""
    main = _main(call)
    account_id = _by_email(call, main, call.params.str("email"))
    futures_type = call.params.int("futuresType")
    if futures_type not in (1, 2):
        raise errors.bad_param("futuresType")
    if futures_type == 2:
        raise errors.unsupported()
    a = call.state.exchange.futures_account(account_id)
    row = {
        "asset": a.asset,
        "initialMargin": fmt_amount(a.position_initial_margin + a.open_order_initial_margin),
        "maintenanceMargin": fmt_amount(a.maint_margin),
        "marginBalance": wire.fmt_signed(a.margin_balance),
        "maxWithdrawAmount": fmt_amount(max(0, a.max_withdraw)),
        "openOrderInitialMargin": fmt_amount(a.open_order_initial_margin),
        "positionInitialMargin": fmt_amount(a.position_initial_margin),
        "unrealizedProfit": wire.fmt_signed(a.unrealized_pnl),
        "walletBalance": wire.fmt_signed(a.wallet_balance),
    }
    return {
        "futureAccountResp": {
            "email": _email(call, account_id),
            "assets": [row],
            "canDeposit": True,
            "canTrade": True,
            "canWithdraw": True,
            "feeTier": 0,
            "maxWithdrawAmount": row["maxWithdrawAmount"],
            "totalInitialMargin": row["initialMargin"],
            "totalMaintenanceMargin": row["maintenanceMargin"],
            "totalMarginBalance": row["marginBalance"],
            "totalOpenOrderInitialMargin": row["openOrderInitialMargin"],
            "totalPositionInitialMargin": row["positionInitialMargin"],
            "totalUnrealizedProfit": row["unrealizedProfit"],
            "totalWalletBalance": row["walletBalance"],
            "updateTime": wire.ms(a.update_ns),
        }
    }


def _wallet(name: str, field: str) -> str:
    if name not in WALLETS:
        raise errors.bad_param(field)
    return WALLETS[name]


# Binance's rules for POST /sapi/v1/sub-account/universalTransfer (developers.binance.com, sub_account/
# asset-management/Universal-Transfer): at least one of fromEmail/toEmail; a missing one is the master account;
# clientTranId unique (-4115 DUPLICATED_CLIENT_TRAN_ID), at most 64 characters (-4114 INVALID_CLIENT_TRAN_ID_LEN);
# futures wallets transfer only to and from SPOT.
CLIENT_TRAN_ID_MAX = 64
HISTORY_WINDOW_MS = 7 * 24 * 3600 * 1000  # the history answers at most 7 days per query


def _combination_invalid() -> errors.BinanceError:
    return errors.BinanceError(-1128, "Combination of optional parameters invalid.", 400)


async def universal_transfer(call: Call) -> object:
    """POST /sapi/v1/sub-account/universalTransfer."""
    main = _main(call)
    p = call.params
    from_email, to_email = p.opt_str("fromEmail"), p.opt_str("toEmail")
    if from_email is None and to_email is None:
        raise errors.mandatory("fromEmail or toEmail")
    src = _by_email(call, main, from_email) if from_email else main
    dst = _by_email(call, main, to_email) if to_email else main
    from_wallet = _wallet(p.str("fromAccountType"), "fromAccountType")
    to_wallet = _wallet(p.str("toAccountType"), "toAccountType")
    if from_wallet != "SPOT" and to_wallet != "SPOT":
        raise _combination_invalid()
    client_id = p.opt_str("clientTranId")
    if client_id is not None:
        if len(client_id) > CLIENT_TRAN_ID_MAX:
            raise errors.BinanceError(
                -4114, "clientTranId is not valid: Customer's clientTranId length should be less than 64 chars", 400
            )
        if client_id in call.state.client_tran_ids.values():
            raise errors.BinanceError(-4115, "clientTranId is duplicated: Client's transfer id should be unique", 400)
    amount = p.decimal("amount")
    transfer = call.state.exchange.transfer(
        src, dst, p.str("asset").upper(), str(amount), from_wallet=from_wallet, to_wallet=to_wallet
    )
    if client_id:
        call.state.client_tran_ids[transfer.tran_id] = client_id
    return {"tranId": transfer.tran_id, "clientTranId": client_id or ""}


def _transfer_row(call: Call, t: Transfer) -> dict[str, object]:
    return {
        "tranId": t.tran_id,
        "fromEmail": _email(call, t.from_account),
        "toEmail": _email(call, t.to_account),
        "asset": t.asset,
        "amount": fmt_amount(t.amount),
        "createTimeStamp": wire.ms(t.time_ns),
        "fromAccountType": WALLET_NAMES.get(t.from_wallet, t.from_wallet),
        "toAccountType": WALLET_NAMES.get(t.to_wallet, t.to_wallet),
        "status": "SUCCESS",
        "clientTranId": call.state.client_tran_ids.get(t.tran_id, ""),
    }


def _history_window(call: Call) -> tuple[int, int]:
    """``[start, end]`` in ms: the last 7 days by default, 7 days from/to the one given, at most 7 days."""
    start, end = call.params.opt_int("startTime", 0), call.params.opt_int("endTime", 0)
    if start and end:
        if end < start or end - start > HISTORY_WINDOW_MS:
            raise _combination_invalid()
        return start, end
    if start:
        return start, start + HISTORY_WINDOW_MS
    end = end or call.state.exchange.clock() // 1_000_000
    return end - HISTORY_WINDOW_MS, end


async def universal_transfer_history(call: Call) -> object:
    """GET /sapi/v1/sub-account/universalTransfer: one side at a time (fromEmail or toEmail, not both; neither:
    from the master account), filtered by clientTranId, within at most 7 days."""
    main = _main(call)
    p = call.params
    from_email, to_email = p.opt_str("fromEmail"), p.opt_str("toEmail")
    if from_email is not None and to_email is not None:
        raise _combination_invalid()
    family = {main, *(s.account_id for s in call.state.exchange.sub_accounts(main))}
    src = _by_email(call, main, from_email) if from_email else (None if to_email else main)
    dst = _by_email(call, main, to_email) if to_email else None
    client_id = p.opt_str("clientTranId")
    start, end = _history_window(call)
    # times are whole milliseconds on the wire: ``end`` takes in all of its millisecond (a transfer made in the
    # millisecond the history is asked for is in it, as on Binance, whose records carry that millisecond)
    end_ns = end * 1_000_000 + 999_999
    rows = [
        t
        for t in call.state.exchange.transfers(None, start_ns=start * 1_000_000, end_ns=end_ns, limit=10**9)
        if t.type != "FUND"
        and t.from_account in family
        and t.to_account in family
        and (src is None or t.from_account == src)
        and (dst is None or t.to_account == dst)
        and (client_id is None or call.state.client_tran_ids.get(t.tran_id) == client_id)
    ]
    page = p.opt_int("page", 1) or 1
    limit = p.opt_int("limit", 1, 500) or 500
    chosen = rows[(page - 1) * limit : page * limit]
    return {"result": [_transfer_row(call, t) for t in chosen], "totalCount": len(rows)}


async def asset_transfer(call: Call) -> object:
    """POST /sapi/v1/asset/transfer (own wallets: MAIN_UMFUTURE, UMFUTURE_MAIN)."""
    assert call.account_id is not None
    p = call.params
    kind = p.str("type")
    if kind not in ASSET_TRANSFER_TYPES:
        raise errors.bad_param("type")
    src, dst = ASSET_TRANSFER_TYPES[kind]
    t = call.state.exchange.transfer(
        call.account_id,
        call.account_id,
        p.str("asset").upper(),
        str(p.decimal("amount")),
        from_wallet=src,
        to_wallet=dst,
    )
    return {"tranId": t.tran_id}


async def asset_transfer_history(call: Call) -> object:
    """GET /sapi/v1/asset/transfer."""
    assert call.account_id is not None
    kind = call.params.str("type")
    rows = [
        t
        for t in call.state.exchange.transfers(call.account_id, limit=10_000)
        if t.type == kind and t.from_account == call.account_id and t.to_account == call.account_id
    ]
    return {
        "total": len(rows),
        "rows": [
            {
                "asset": t.asset,
                "amount": fmt_amount(t.amount),
                "type": t.type,
                "status": "CONFIRMED",
                "tranId": t.tran_id,
                "timestamp": wire.ms(t.time_ns),
            }
            for t in rows
        ],
    }


async def futures_transfer(call: Call) -> object:
    """POST /sapi/v1/futures/transfer (type 1 spot->USD-M, 2 USD-M->spot)."""
    assert call.account_id is not None
    p = call.params
    kind = p.int("type", 1, 4)
    if kind not in (1, 2):
        raise errors.bad_param("type")
    src, dst = ("SPOT", "FUTURES") if kind == 1 else ("FUTURES", "SPOT")
    t = call.state.exchange.transfer(
        call.account_id,
        call.account_id,
        p.str("asset").upper(),
        str(p.decimal("amount")),
        from_wallet=src,
        to_wallet=dst,
    )
    return {"tranId": t.tran_id}


async def api_restrictions(call: Call) -> object:
    """GET /sapi/v1/account/apiRestrictions: what the calling key may do, as Binance reports it."""
    assert call.api_key is not None
    key = call.state.exchange.lookup_api_key(call.api_key)
    assert key is not None  # the signature was verified against it
    perms = frozenset(key.permissions)
    return {
        "ipRestrict": False,
        "createTime": wire.ms(key.created_ns),
        "enableReading": True,
        "enableSpotAndMarginTrading": "SPOT" in perms,
        "enableWithdrawals": "WITHDRAW" in perms,
        "enableInternalTransfer": "TRANSFER" in perms,
        "enableMargin": False,
        "enableFutures": "FUTURES" in perms,
        "permitsUniversalTransfer": "TRANSFER" in perms,
        "enableVanillaOptions": False,
        "enableFixApiTrade": False,
        "enableFixReadOnly": False,
        "enablePortfolioMarginTrading": False,
    }


async def system_status(call: Call) -> object:
    """GET /sapi/v1/system/status."""
    return {"status": 0, "msg": "normal"}


ENDPOINTS: list[Endpoint] = [
    Endpoint("GET", "/sapi/v1/system/status", SPOT, system_status, 1),
    Endpoint("GET", "/sapi/v1/account/apiRestrictions", SPOT, api_restrictions, 1, SIGNED),
    Endpoint("GET", "/sapi/v1/sub-account/list", SPOT, sub_account_list, 1, SIGNED),
    Endpoint("POST", "/sapi/v1/sub-account/virtualSubAccount", SPOT, create_virtual_sub_account, 1, SIGNED),
    Endpoint("GET", "/sapi/v3/sub-account/assets", SPOT, sub_account_assets_v3, 60, SIGNED),
    Endpoint("GET", "/sapi/v4/sub-account/assets", SPOT, sub_account_assets_v4, 60, SIGNED),
    Endpoint("GET", "/sapi/v2/sub-account/futures/account", SPOT, sub_account_futures_account_v2, 1, SIGNED),
    Endpoint("POST", "/sapi/v1/sub-account/universalTransfer", SPOT, universal_transfer, 360, SIGNED, PERM_TRANSFER),
    Endpoint("GET", "/sapi/v1/sub-account/universalTransfer", SPOT, universal_transfer_history, 1, SIGNED),
    Endpoint("POST", "/sapi/v1/asset/transfer", SPOT, asset_transfer, 900, SIGNED, PERM_TRANSFER),
    Endpoint("GET", "/sapi/v1/asset/transfer", SPOT, asset_transfer_history, 1, SIGNED),
    Endpoint("POST", "/sapi/v1/futures/transfer", SPOT, futures_transfer, 1, SIGNED, PERM_TRANSFER),
]
