"""Sub-account universal transfers as Binance documents them (developers.binance.com, sub_account/
asset-management: Universal-Transfer and Query-Universal-Transfer-History), through python-binance's own
calls (``make_subaccount_universal_transfer``, ``get_universal_transfer_history``): at least one email; a unique
``clientTranId`` of at most 64 characters (-4115, -4114, as ccxt's binance error table names them); futures
wallets only to and from SPOT; the history one side at a time, filtered by ``clientTranId``, 7 days at most."""

from __future__ import annotations

import time
from decimal import Decimal

import pytest
from binance.exceptions import BinanceAPIException
from conftest import LocalServer, free_port, start_server

from localex import clients
from localex.engine import Exchange
from localex.server.state import ServerConfig

DAY_MS = 24 * 3600 * 1000


def _family(server: LocalServer):
    main, key, secret = server.new_account(spot={"USDT": "1000"})
    sub, _, _ = server.new_account(spot={"USDT": "100"}, futures={"USDT": "100"}, parent=main)
    emails = {a["accountId"]: a["email"] for a in server.admin("GET", "/admin/v1/accounts")}  # type: ignore[union-attr]
    return clients.binance_sync(server.url, key, secret), main, sub, emails


def _code(call) -> int:
    with pytest.raises(BinanceAPIException) as err:
        call()
    return err.value.code


def test_transfer_rules(server: LocalServer) -> None:
    ex, main, sub, emails = _family(server)
    to_sub = {"toEmail": emails[sub], "fromAccountType": "SPOT", "toAccountType": "SPOT", "asset": "USDT"}
    assert _code(lambda: ex.make_subaccount_universal_transfer(
        fromAccountType="SPOT", toAccountType="USDT_FUTURE", asset="USDT", amount="1")) == -1102  # fmt: skip
    assert _code(lambda: ex.make_subaccount_universal_transfer(**to_sub, amount="1", clientTranId="x" * 65)) == -4114
    first = ex.make_subaccount_universal_transfer(**to_sub, amount="10", clientTranId="rb-1")
    assert first["clientTranId"] == "rb-1" and first["tranId"] > 0
    assert _code(lambda: ex.make_subaccount_universal_transfer(**to_sub, amount="10", clientTranId="rb-1")) == -4115
    spot = server.admin("GET", f"/admin/v1/accounts/{sub}/balances?wallet=SPOT")
    assert Decimal(next(r["free"] for r in spot if r["asset"] == "USDT")) == Decimal(110)  # moved once
    assert _code(lambda: ex.make_subaccount_universal_transfer(
        fromEmail=emails[sub], fromAccountType="USDT_FUTURE", toAccountType="USDT_FUTURE", asset="USDT",
        amount="1")) == -1128  # fmt: skip


def test_history_one_side_by_client_id_within_seven_days(server: LocalServer) -> None:
    ex, main, sub, emails = _family(server)
    out = ex.make_subaccount_universal_transfer(toEmail=emails[sub], fromAccountType="SPOT", toAccountType="SPOT",
                                                asset="USDT", amount="5", clientTranId="out-1")  # fmt: skip
    back = ex.make_subaccount_universal_transfer(fromEmail=emails[sub], fromAccountType="USDT_FUTURE",
                                                 toAccountType="SPOT", asset="USDT", amount="7",
                                                 clientTranId="back-1")  # fmt: skip
    assert [r["tranId"] for r in ex.get_universal_transfer_history(clientTranId="out-1")["result"]] == [out["tranId"]]
    # neither email: the master account's outgoing transfers only
    assert ex.get_universal_transfer_history(clientTranId="back-1")["result"] == []
    rows = ex.get_universal_transfer_history(fromEmail=emails[sub], clientTranId="back-1")["result"]
    assert [(r["tranId"], r["amount"], r["fromAccountType"]) for r in rows] == [(back["tranId"], "7.00000000",
                                                                                "USDT_FUTURE")]  # fmt: skip
    assert _code(lambda: ex.get_universal_transfer_history(fromEmail=emails[sub], toEmail=emails[main])) == -1128
    now = int(time.time() * 1000)
    assert _code(lambda: ex.get_universal_transfer_history(startTime=now - 8 * DAY_MS, endTime=now)) == -1128
    assert ex.get_universal_transfer_history(startTime=now - 9 * DAY_MS, clientTranId="out-1")["result"] == []


def test_a_transfer_is_in_the_history_asked_for_within_the_same_millisecond() -> None:
    # the exchange's clock stands still half-way through a millisecond: the transfer and the history query share
    # it, and the default window (ending "now", in whole milliseconds) still holds the transfer. It once ended at
    # the millisecond's start and missed it (a ccxt conformance test failed that way about once in many runs)
    now = [(time.time_ns() // 1_000_000) * 1_000_000 + 500_000]
    for server in start_server(ServerConfig(port=free_port(), replay=False), Exchange(clock=lambda: now[0])):
        ex, _, sub, emails = _family(server)
        out = ex.make_subaccount_universal_transfer(toEmail=emails[sub], fromAccountType="SPOT",
                                                    toAccountType="SPOT", asset="USDT", amount="5")  # fmt: skip
        rows = ex.get_universal_transfer_history(toEmail=emails[sub])["result"]
        assert [r["tranId"] for r in rows] == [out["tranId"]]
        assert rows[0]["createTimeStamp"] == now[0] // 1_000_000
