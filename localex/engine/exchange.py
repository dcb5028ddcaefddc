"""The ``Exchange`` facade: accounts, keys, wallets, transfers, orders, futures settings, market data.

Every public method is one atomic operation: when it returns, the book, balances and positions are
consistent, pending stops have been triggered, and every event it caused has been delivered to the
listeners (order events as they happen; depth, book ticker, kline and account events at the end).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from decimal import Decimal
from typing import Final

from . import errors as E
from .accounts import Account, Ledger
from .events import MD_KINDS, Emitter, Listener
from .futures import (
    FuturesAccountInfo,
    PositionRisk,
    entry_price,
    initial_margin,
    liquidation_price,
    maint_margin,
)
from .marketdata import INTERVALS, Ticker24h
from .markets import ASSET_RE, MAX_AMOUNT_UNITS, SPOT, USDM, SymbolSpec, default_specs, parse_amount
from .matching import FeeSchedule, Matcher
from .types import (
    ALL_PERMISSIONS,
    BOTH,
    CROSSED,
    INCOME_COMMISSION,
    INCOME_FUNDING_FEE,
    INCOME_REALIZED_PNL,
    INCOME_TRANSFER,
    ISOLATED,
    NEW,
    PARTIALLY_FILLED,
    WALLET_FUTURES,
    WALLET_SPOT,
    X_AMENDMENT,
    AccountEvent,
    AggTradeEvent,
    ApiKey,
    Balance,
    BalanceDeltaEvent,
    BookTickerEvent,
    DepthEvent,
    Fill,
    Income,
    Kline,
    KlineEvent,
    MarkPriceEvent,
    Order,
    OrderEvent,
    OrderRequest,
    OrderResult,
    Position,
    TradeEvent,
    Transfer,
    TransferEvent,
)

FUNDING_INTERVAL_MS: Final = 8 * 3_600_000  # funding at 00:00, 08:00 and 16:00 UTC
FUNDING_INTERVAL_NS: Final = FUNDING_INTERVAL_MS * 1_000_000
FUNDING_RATE: Final = "0.00010000"
FUNDING_RATE_E8: Final = 10_000  # FUNDING_RATE in 1e-8 units (0.0001 * 1e8)
RATE_SCALE: Final = 100_000_000
# tran ids of REALIZED_PNL / COMMISSION income rows: (symbol ordinal + 1) * TRADE_TRAN_BASE + trade id, * 2 + maker
TRADE_TRAN_BASE: Final = 10**12
INCOME_ORDER: Final = {INCOME_TRANSFER: 0, INCOME_REALIZED_PNL: 1, INCOME_COMMISSION: 2, INCOME_FUNDING_FEE: 3}


@dataclass(slots=True)
class DepthSnapshot:
    """A REST depth snapshot: ``last_update_id`` matches the diff stream's ids."""

    last_update_id: int
    bids: list[tuple[int, int]]
    asks: list[tuple[int, int]]
    time_ns: int


class Exchange:
    """The local exchange's core. See CONTRACT.md for the full contract."""

    LIQUIDITY_ACCOUNT = "__liquidity__"
    FEE_ACCOUNT = "__fees__"

    def __init__(
        self,
        clock: Callable[[], int] | None = None,
        *,
        specs: Iterable[SymbolSpec] | None = None,
        fees: FeeSchedule | None = None,
        seed: int = 0,
        random_keys: bool = False,
    ) -> None:
        self.clock: Callable[[], int] = clock or time.time_ns
        self.seed = seed
        spec_list = list(specs) if specs is not None else default_specs()
        self._specs: dict[tuple[str, str], SymbolSpec] = {s.key: s for s in spec_list}
        self.ledger = Ledger(seed, random_keys)
        self.em = Emitter()
        now = self.clock()
        self.fee_account = self.ledger.create(
            now, email="fees@localex.invalid", account_id=self.FEE_ACCOUNT, internal=True
        )
        self.liquidity_account = self.ledger.create(
            now, email="liquidity@localex.invalid", account_id=self.LIQUIDITY_ACCOUNT, internal=True, unlimited=True
        )
        self.matcher = Matcher(self.ledger, self._specs, self.clock, self.em, fees or FeeSchedule(), self.fee_account)
        self._transfers: list[Transfer] = []
        self._next_tran_id = 1
        self._depth_prev: dict[tuple[str, str], tuple[int, int, int, int]] = {}
        self._depth = 0
        self.replay: object | None = None
        self.deposits: dict[tuple[str, str], int] = {}  # (wallet, asset) -> total funded (conservation)
        # funding: the next funding time not yet charged, and the charges made (user accounts only)
        self.next_funding_ns: int = now - now % FUNDING_INTERVAL_NS + FUNDING_INTERVAL_NS
        self._funding_rows: list[Income] = []
        self._next_funding_tran = 1

    # ================================================================================ markets
    def spec(self, market: str, symbol: str) -> SymbolSpec:
        """The symbol's spec; ExchangeError(-1121, "Invalid symbol.") if not listed."""
        return self.matcher.spec(market, symbol)

    def specs(self, market: str | None = None) -> list[SymbolSpec]:
        """Listed symbols of ``market`` ("spot" / "usdm"), or all."""
        return [s for s in self._specs.values() if market is None or s.market == market]

    def now_ns(self) -> int:
        """The injected clock's time (ns)."""
        return self.clock()

    # ================================================================================ listeners
    def add_listener(self, fn: Listener) -> None:
        """Call ``fn(event)`` for every event from now on."""
        self.em.add(fn)

    def remove_listener(self, fn: Listener) -> None:
        """Stop calling ``fn``."""
        self.em.remove(fn)

    def set_interest(self, kinds: Iterable[str] | None = None, kline_intervals: Iterable[str] | None = None) -> None:
        """Tell the engine which market-data events anyone wants, so it skips building the others.

        ``kinds``: subset of ``MD_KINDS`` ("trade", "aggTrade", "depth", "bookTicker", "kline"), None = all.
        ``kline_intervals``: intervals whose KlineEvents are wanted, None = all. Order, account, balance,
        transfer and mark-price events always flow. Only events change: the state is the same either way.
        """
        k = None if kinds is None else frozenset(kinds)
        iv = None if kline_intervals is None else frozenset(kline_intervals)
        if k is not None and not k <= MD_KINDS:
            raise ValueError(f"unknown event kinds: {sorted(k - MD_KINDS)}")
        if iv is not None and not iv <= INTERVALS.keys():
            raise ValueError(f"unknown kline intervals: {sorted(i for i in iv if i not in INTERVALS)}")
        self.em.set_interest(k, iv)

    # ================================================================================ operation frame
    def _begin(self) -> None:
        if not self._depth:
            self._settle_due()
        self._depth += 1

    def _end(self) -> None:
        self._depth -= 1
        if self._depth:
            return
        m = self.matcher
        dirty = m.dirty
        stops = m.stops
        em = self.em
        if len(dirty) == 1 and not em.active:
            # the usual operation: one book changed, nobody listens (same steps as the loop below)
            key = next(iter(dirty))
            if not stops[key]:
                dirty.clear()
                self.clock()
                book = m.books[key]
                book.bids.changed.clear()
                book.asks.changed.clear()
                m.md[key].flush_quiet()
                book.update_id += 1
                if em.touched:
                    em.touched.clear()
                return
        for _ in range(100):
            if not dirty:
                break
            keys = sorted(dirty)  # a fixed order: events must not depend on string hashing
            self._flush_books(keys)
            for key in keys:
                if stops[key]:
                    m.check_stops(key)
        if em.active and em.touched:
            self._flush_accounts()
        elif em.touched:
            em.touched.clear()

    def _flush_books(self, keys: list[tuple[str, str]]) -> None:
        m = self.matcher
        em = self.em
        if len(keys) == 1:
            m.dirty.clear()
        else:
            m.dirty.difference_update(keys)
        now = self.clock()
        if not em.active:
            # without listeners the update id still advances so snapshots stay comparable
            for key in keys:
                book = m.books[key]
                book.bids.changed.clear()
                book.asks.changed.clear()
                m.md[key].flush_quiet()
                book.update_id += 1
            return
        for key in keys:
            self._book_events(key, now)

    def _book_events(self, key: tuple[str, str], now: int) -> None:
        """Depth diff, book ticker and kline events of one book at the end of an operation.

        Kinds nobody wants (``set_interest``) are not built; the state they follow (update ids, the last
        published top of book, the klines) moves exactly as if they were.
        """
        m = self.matcher
        em = self.em
        book = m.books[key]
        md = m.md[key]
        bids = book.bids.take_changes()
        asks = book.asks.take_changes()
        if bids or asks:
            prev = book.update_id
            book.update_id = prev + len(bids) + len(asks)
            if em.want_depth:
                em.emit(DepthEvent(key[0], key[1], prev + 1, book.update_id, prev, bids, asks, now))
            bb, ba = book.bids.best(), book.asks.best()
            top = (bb, book.bids.qty.get(bb, 0), ba, book.asks.qty.get(ba, 0))
            if self._depth_prev.get(key) != top:
                self._depth_prev[key] = top
                if em.want_ticker:
                    em.emit(BookTickerEvent(key[0], key[1], book.update_id, *top, now))
        if not em.want_kline:
            md.flush_quiet()  # nobody wants kline events: fold lazily, as without listeners
            return
        touched = md.flush()
        if touched:
            now_ms = now // 1_000_000
            market, symbol = key
            emit = em.emit
            wanted = em.kline_intervals
            for interval, k in touched:
                if wanted is None or interval in wanted:
                    emit(KlineEvent(market, symbol, interval, k, k.close_time_ms < now_ms, now))

    def _flush_accounts(self) -> None:
        em = self.em
        if not em.active or not em.touched:
            em.touched.clear()
            return
        touched, reasons, deltas = em.take_touched()
        now = self.clock()
        for (account_id, wallet), (assets, positions) in touched.items():
            acc = self.ledger.accounts.get(account_id)
            if acc is None or acc.internal:
                continue
            w = acc.wallet(wallet)
            bals = [Balance(a, w[a].free, w[a].locked) if a in w else Balance(a) for a in sorted(assets)]
            pos = [acc.positions[p].snapshot() for p in sorted(positions) if p in acc.positions]
            em.emit(
                AccountEvent(
                    account_id,
                    wallet,
                    reasons.get((account_id, wallet), "ORDER"),
                    bals,
                    pos,
                    deltas.get((account_id, wallet), {}),
                    now,
                )
            )

    # ================================================================================ accounts & keys
    def create_account(
        self, email: str | None = None, *, parent_id: str | None = None, account_id: str | None = None
    ) -> Account:
        """Create a main account (no parent) or a sub-account of ``parent_id``."""
        return self.ledger.create(self.clock(), email=email, parent_id=parent_id, account_id=account_id)

    def account(self, account_id: str) -> Account:
        """The account; ExchangeError(-1000) if unknown."""
        return self.ledger.get(account_id)

    def accounts(self) -> list[Account]:
        """User accounts (internal liquidity and fee accounts excluded), creation order."""
        return [a for a in self.ledger.accounts.values() if not a.internal]

    def sub_accounts(self, parent_id: str) -> list[Account]:
        """Sub-accounts of ``parent_id``."""
        self.ledger.get(parent_id)
        return [a for a in self.ledger.accounts.values() if a.parent_id == parent_id and not a.internal]

    def create_api_key(self, account_id: str, permissions: Iterable[str] = ALL_PERMISSIONS, label: str = "") -> ApiKey:
        """New key for the account with ``permissions`` (SPOT, FUTURES, TRANSFER, WITHDRAW)."""
        return self.ledger.create_key(account_id, frozenset(permissions), label, self.clock())

    def restore_api_key(
        self, account_id: str, api_key: str, secret: str, permissions: Iterable[str], label: str = ""
    ) -> ApiKey:
        """Register a key created by an earlier run (``api_key`` and ``secret``: 64 alphanumerics, unused)."""
        return self.ledger.restore_key(account_id, api_key, secret, frozenset(permissions), label, self.clock())

    def revoke_api_key(self, api_key: str) -> ApiKey:
        """Revoke a key; lookups return None afterwards."""
        return self.ledger.revoke_key(api_key)

    def lookup_api_key(self, api_key: str) -> ApiKey | None:
        """The live key or None (unknown or revoked)."""
        return self.ledger.lookup_key(api_key)

    def api_keys(self, account_id: str) -> list[ApiKey]:
        """All keys (also revoked) of the account."""
        return [k for k in self.ledger.keys.values() if k.account_id == account_id]

    # ================================================================================ wallets
    def fund(self, account_id: str, asset: str, amount: str, wallet: str = WALLET_SPOT) -> Transfer:
        """Admin deposit of ``amount`` (decimal string) into the account's wallet."""
        acc = self.ledger.get(account_id)
        units = parse_amount("amount", amount)
        if not ASSET_RE.match(asset):
            raise E.bad_param("asset", asset)
        held = acc.wallet(wallet).get(asset)  # checked before anything changes: a rejected deposit changes nothing
        if (held.free + held.locked if held else 0) + units > MAX_AMOUNT_UNITS:
            raise E.bad_param("amount", amount)
        self._begin()
        try:
            acc.bal(acc.wallet(wallet), asset).free += units
            key = (wallet, asset)
            self.deposits[key] = self.deposits.get(key, 0) + units
            tr = self._record_transfer(asset, units, "", account_id, "", wallet, "FUND")
            self._notify_balance(acc, wallet, asset, units, "DEPOSIT")
            return tr
        finally:
            self._end()

    def balances(self, account_id: str, wallet: str = WALLET_SPOT) -> list[Balance]:
        """Balances of the wallet (copies), assets sorted."""
        acc = self.ledger.get(account_id)
        w = acc.wallet(wallet)
        return [Balance(a, b.free, b.locked) for a, b in sorted(w.items())]

    def balance(self, account_id: str, asset: str, wallet: str = WALLET_SPOT) -> Balance:
        """One asset's balance (copy; zero if never held)."""
        b = self.ledger.get(account_id).wallet(wallet).get(asset)
        return Balance(asset, b.free, b.locked) if b else Balance(asset)

    def transfer(
        self,
        from_account: str,
        to_account: str,
        asset: str,
        amount: str,
        from_wallet: str = WALLET_SPOT,
        to_wallet: str = WALLET_SPOT,
    ) -> Transfer:
        """Move free funds between accounts and/or wallets. -5002 "Insufficient balance" if short.

        Futures wallet withdrawals are limited to the available balance (margin in use stays).
        """
        src = self.ledger.get(from_account)
        dst = self.ledger.get(to_account)
        units = parse_amount("amount", amount)
        if units <= 0:
            raise E.bad_param("amount", amount)
        if src is dst and from_wallet == to_wallet:
            raise E.ExchangeError(-1130, "Data sent for parameter 'toAccount' is not valid: same wallet.")
        if not ASSET_RE.match(asset):
            raise E.bad_param("asset", asset)
        held = dst.wallet(to_wallet).get(asset)
        if (held.free + held.locked if held else 0) + units > MAX_AMOUNT_UNITS:
            raise E.bad_param("amount", amount)
        self._begin()
        try:
            held = src.wallet(from_wallet).get(asset)  # read only: a refused transfer leaves no empty balance
            limit = held.free if held else 0
            if from_wallet == WALLET_FUTURES and asset == "USDT":
                limit = min(limit, self.matcher.available(src))
            if limit < units:
                raise E.ExchangeError(E.TRANSFER_FAILED, "Insufficient balance")
            sb = src.bal(src.wallet(from_wallet), asset)
            sb.free -= units
            dst.bal(dst.wallet(to_wallet), asset).free += units
            ttype = self._transfer_type(src, dst, from_wallet, to_wallet)
            tr = self._record_transfer(asset, units, from_account, to_account, from_wallet, to_wallet, ttype)
            self._notify_balance(src, from_wallet, asset, -units, "WITHDRAW")
            self._notify_balance(dst, to_wallet, asset, units, "DEPOSIT")
            return tr
        finally:
            self._end()

    @staticmethod
    def _transfer_type(src: Account, dst: Account, fw: str, tw: str) -> str:
        names = {WALLET_SPOT: "MAIN", WALLET_FUTURES: "UMFUTURE"}
        if src is dst:
            return f"{names[fw]}_{names[tw]}"
        if src.is_sub and dst.is_sub:
            return "SUB_TO_SUB"
        if src.is_sub:
            return "SUB_TO_MASTER"
        if dst.is_sub:
            return "MASTER_TO_SUB"
        return "MAIN_TO_MAIN"

    def _record_transfer(self, asset: str, units: int, src: str, dst: str, fw: str, tw: str, ttype: str) -> Transfer:
        tr = Transfer(self._next_tran_id, asset, units, src, dst, fw, tw, self.clock(), ttype)
        self._next_tran_id += 1
        self._transfers.append(tr)
        if self.em.active:
            self.em.emit(TransferEvent(tr))
        return tr

    def _notify_balance(self, acc: Account, wallet: str, asset: str, delta: int, reason: str) -> None:
        if not self.em.active or acc.internal:
            return
        if wallet == WALLET_SPOT:
            self.em.emit(BalanceDeltaEvent(acc.account_id, wallet, asset, delta, self.clock()))
        self.em.touch(acc.account_id, wallet, asset, reason=reason, delta=delta)

    def transfers(
        self, account_id: str | None = None, start_ns: int | None = None, end_ns: int | None = None, limit: int = 500
    ) -> list[Transfer]:
        """Transfer history (oldest first) touching ``account_id`` (or all), within the time range."""
        out = [
            t
            for t in self._transfers
            if (account_id is None or account_id in (t.from_account, t.to_account))
            and (start_ns is None or t.time_ns >= start_ns)
            and (end_ns is None or t.time_ns <= end_ns)
        ]
        return out[-limit:]

    # ================================================================================ orders
    def place_order(self, account_id: str, req: OrderRequest) -> OrderResult:
        """Validate, reserve and execute a new order; returns its snapshot and its taker fills."""
        acc = self.ledger.accounts.get(account_id) or self.ledger.get(account_id)
        m = self.matcher
        if not self._depth:  # _begin(), inline
            self._settle_due()
        self._depth += 1
        try:
            done = m.place_spot_limit(acc, req) if req.type == "LIMIT" else None
            if done is None:
                order = m.build(acc, req)
                fills = m.place(acc, order)
            else:
                order, fills = done
        finally:
            self._end()
        st = order.status
        if st == NEW or st == PARTIALLY_FILLED:
            order = order.snapshot()  # still open: it changes later, the caller gets a copy
        return OrderResult(order, fills)

    def test_order(self, account_id: str, req: OrderRequest) -> None:
        """Every check of ``place_order`` (filters, duplicates, balance/margin), nothing placed."""
        acc = self.ledger.get(account_id)
        m = self.matcher
        order = m.build(acc, req)
        key = (order.market, order.symbol)
        spec = order.spec
        assert spec is not None
        if spec.is_futures:
            opening = m._opening_lots(acc, order, order.orig_qty)
            price = order.price or m._ref_price(order, key)
            im = initial_margin(price * opening * spec.notional_unit, acc.leverage_of(order.symbol))
            if opening and im > m.available(acc) and not acc.unlimited:
                raise E.margin_insufficient()
            return
        if order.side == "BUY":
            need = (
                order.quote_order_qty
                or (order.price or order.stop_price or m._ref_price(order, key)) * order.orig_qty * spec.notional_unit
            )
            asset = spec.quote_asset
        else:
            need = order.orig_qty * spec.qty_unit
            asset = spec.base_asset
        b = acc.spot.get(asset)
        if (b.free if b else 0) < need and not acc.unlimited:
            raise E.insufficient_balance()

    def batch_orders(self, account_id: str, reqs: list[OrderRequest]) -> list[OrderResult | E.ExchangeError]:
        """Place each request in order; a failure becomes its ExchangeError in the result list."""
        out: list[OrderResult | E.ExchangeError] = []
        for r in reqs:
            try:
                out.append(self.place_order(account_id, r))
            except E.ExchangeError as exc:
                out.append(exc)
        return out

    def _find(
        self, acc: Account, market: str, symbol: str, order_id: int | None, client_order_id: str | None
    ) -> Order | None:
        key = (market, symbol)
        self.spec(market, symbol)
        if order_id is not None:
            o = self.matcher.orders[key].get(int(order_id))
            if o is None or o.account_id != acc.account_id:
                return None
            if client_order_id and o.client_order_id != client_order_id:
                return None
            return o
        if client_order_id:
            o = acc.open_by_client_id.get((market, symbol, client_order_id))
            if o is not None:
                return o
            for o in reversed(list(self.matcher.orders[key].values())):
                if o.account_id == acc.account_id and o.client_order_id == client_order_id:
                    return o
            return None
        raise E.ExchangeError(-1102, "Param 'origClientOrderId' or 'orderId' must be sent, but both were empty/null!")

    def cancel_order(
        self, account_id: str, market: str, symbol: str, order_id: int | None = None, client_order_id: str | None = None
    ) -> Order:
        """Cancel one open order; -2011 "Unknown order sent." if unknown or not open."""
        acc = self.ledger.accounts.get(account_id) or self.ledger.get(account_id)
        orders = self.matcher.orders.get((market, symbol))
        if orders is not None and order_id.__class__ is int and not client_order_id:
            o = orders.get(order_id)  # ``_find`` by orderId, inline
            if o is not None and o.account_id != acc.account_id:
                o = None
        else:
            o = self._find(acc, market, symbol, order_id, client_order_id)
        if o is None or (o.status != NEW and o.status != PARTIALLY_FILLED):
            raise E.unknown_order_cancel()
        if not self._depth:  # _begin(), inline
            self._settle_due()
        self._depth += 1
        try:
            self.matcher.cancel(acc, o)
        finally:
            self._end()
        return o  # closed for good: never changes again, no copy needed (see CONTRACT.md)

    def cancel_all(self, account_id: str, market: str, symbol: str) -> list[Order]:
        """Cancel every open order (and pending stop) of the account on the symbol."""
        acc = self.ledger.get(account_id)
        self.spec(market, symbol)
        orders = list(acc.open_orders.get((market, symbol), {}).values())
        self._begin()
        try:
            for o in orders:
                self.matcher.cancel(acc, o)
        finally:
            self._end()
        return orders  # all closed for good (see CONTRACT.md)

    def modify_order(
        self,
        account_id: str,
        market: str,
        symbol: str,
        *,
        order_id: int | None = None,
        client_order_id: str | None = None,
        side: str,
        quantity: str,
        price: str,
    ) -> Order:
        """Amend a resting LIMIT order (futures PUT /fapi/v1/order): cancel and re-place, same ids.

        The order loses queue priority, may match at once, and keeps its orderId and clientOrderId.
        """
        acc = self.ledger.get(account_id)
        o = self._find(acc, market, symbol, order_id, client_order_id)
        if o is None or not o.is_open:
            raise E.ExchangeError(-2013, "Order does not exist.")
        if o.type != "LIMIT" or side != o.side:
            raise E.ExchangeError(-1130, "Data sent for parameter 'side' is not valid.")
        spec = self.spec(market, symbol)
        new_qty = spec.parse_qty(quantity)
        new_price = spec.parse_price(price)
        self.matcher.check_percent_price(spec, new_price)
        if new_qty <= o.executed_qty:
            raise E.ExchangeError(-4020, "Invalid quantity.")
        m = self.matcher
        key = (market, symbol)
        self._begin()
        try:
            m.books[key].side(o.side).remove(o)
            m.dirty.add(key)
            m._release(acc, o)
            old = (o.orig_qty, o.price)
            o.orig_qty, o.price = new_qty, new_price
            try:
                m._reserve(acc, o, key)
            except E.ExchangeError:
                o.orig_qty, o.price = old
                m._reserve(acc, o, key)
                m.books[key].side(o.side).add(o)
                raise
            o.update_ns = self.clock()
            if self.em.active:
                self.em.emit(OrderEvent(acc.account_id, X_AMENDMENT, o.snapshot(), None, o.update_ns))
            m._execute(acc, o, key, m.books[key])
        finally:
            self._end()
        return o.snapshot()

    def get_order(
        self, account_id: str, market: str, symbol: str, order_id: int | None = None, client_order_id: str | None = None
    ) -> Order:
        """One order (any status); -2013 "Order does not exist." if unknown."""
        acc = self.ledger.get(account_id)
        o = self._find(acc, market, symbol, order_id, client_order_id)
        if o is None:
            raise E.no_such_order()
        return o.snapshot()

    def open_orders(self, account_id: str, market: str, symbol: str | None = None) -> list[Order]:
        """Open orders (also pending stops), by symbol then order id."""
        acc = self.ledger.get(account_id)
        if symbol is not None:
            self.spec(market, symbol)
        out = [
            o.snapshot()
            for (mk, sym), bucket in sorted(acc.open_orders.items())
            if mk == market and (symbol is None or sym == symbol)
            for o in bucket.values()
        ]
        out.sort(key=lambda o: (o.symbol, o.order_id))
        return out

    def all_orders(
        self,
        account_id: str,
        market: str,
        symbol: str,
        *,
        order_id: int | None = None,
        start_ns: int | None = None,
        end_ns: int | None = None,
        limit: int = 500,
    ) -> list[Order]:
        """The account's orders on the symbol (all statuses), order id ascending, at most ``limit``."""
        self.spec(market, symbol)
        acc = self.ledger.get(account_id)
        out = [
            o
            for o in self.matcher.orders[(market, symbol)].values()
            if o.account_id == acc.account_id
            and (order_id is None or o.order_id >= order_id)
            and (start_ns is None or o.time_ns >= start_ns)
            and (end_ns is None or o.time_ns <= end_ns)
        ]
        out = out[:limit] if order_id is not None or start_ns is not None else out[-limit:]
        return [o.snapshot() for o in out]

    def my_trades(
        self,
        account_id: str,
        market: str,
        symbol: str,
        *,
        order_id: int | None = None,
        from_id: int | None = None,
        start_ns: int | None = None,
        end_ns: int | None = None,
        limit: int = 500,
    ) -> list[Fill]:
        """The account's fills on the symbol, trade id ascending."""
        self.spec(market, symbol)
        self.ledger.get(account_id)
        fills = self.matcher.fills.get((account_id, market, symbol), [])
        out = [
            f
            for f in fills
            if (order_id is None or f.order_id == order_id)
            and (from_id is None or f.trade_id >= from_id)
            and (start_ns is None or f.time_ns >= start_ns)
            and (end_ns is None or f.time_ns <= end_ns)
        ]
        return out[:limit] if from_id is not None or start_ns is not None else out[-limit:]

    # ================================================================================ futures settings
    def set_leverage(self, account_id: str, symbol: str, leverage: int) -> tuple[int, int]:
        """Set the symbol's leverage; returns (leverage, maxNotionalValue in 1e-8 units). -4028 if invalid."""
        acc = self.ledger.get(account_id)
        spec = self.spec(USDM, symbol)
        lev = int(leverage)
        top = spec.brackets[0].initial_leverage if spec.brackets else 125
        if lev < 1 or lev > top:
            raise E.ExchangeError(E.LEVERAGE_INVALID, f"Leverage {lev} is not valid")
        cap = spec.brackets[-1].notional_cap
        for b in spec.brackets:
            if b.initial_leverage >= lev:
                cap = b.notional_cap
        pos_notional = sum(abs(p.cost) for (s, _), p in acc.positions.items() if s == symbol)
        if pos_notional > cap:
            raise E.ExchangeError(-2027, "Exceeded the maximum allowable position at current leverage.")
        acc.leverage[symbol] = lev
        return lev, cap

    def leverage(self, account_id: str, symbol: str) -> int:
        """Current leverage of the symbol (default 20)."""
        self.spec(USDM, symbol)
        return self.ledger.get(account_id).leverage_of(symbol)

    def set_margin_type(self, account_id: str, symbol: str, margin_type: str) -> None:
        """ISOLATED or CROSSED; -4046 if unchanged, -4048 with an open position, -4047 with open orders."""
        acc = self.ledger.get(account_id)
        self.spec(USDM, symbol)
        mt = margin_type.upper()
        if mt == "CROSS":
            mt = CROSSED
        if mt not in (ISOLATED, CROSSED):
            raise E.bad_param("marginType", margin_type)
        if acc.margin_type_of(symbol) == mt:
            raise E.ExchangeError(E.MARGIN_TYPE_NO_CHANGE, "No need to change margin type.")
        if any(p.qty for (s, _), p in acc.positions.items() if s == symbol):
            raise E.ExchangeError(
                E.MARGIN_TYPE_OPEN_POSITION, "Margin type cannot be changed if there exists position."
            )
        if acc.open_orders.get((USDM, symbol)):
            raise E.ExchangeError(
                E.MARGIN_TYPE_OPEN_ORDERS, "Margin type cannot be changed if there exists open orders."
            )
        acc.margin_type[symbol] = mt

    def margin_type(self, account_id: str, symbol: str) -> str:
        """ISOLATED or CROSSED."""
        return self.ledger.get(account_id).margin_type_of(symbol)

    def set_position_mode(self, account_id: str, dual: bool) -> None:
        """Hedge mode on (dualSidePosition) or off; -4059 unchanged, -4068 with a position, -4067 with open
        orders (Binance's USD-M error codes)."""
        acc = self.ledger.get(account_id)
        if acc.dual_side == bool(dual):
            raise E.ExchangeError(E.POSITION_SIDE_NO_CHANGE, "No need to change position side.")
        if any(p.qty for p in acc.positions.values()):
            raise E.ExchangeError(
                E.POSITION_SIDE_OPEN_POSITION, "Position side cannot be changed if there exists position."
            )
        if any(b for (mk, _), b in acc.open_orders.items() if mk == USDM):
            raise E.ExchangeError(
                E.POSITION_SIDE_OPEN_ORDERS, "Position side cannot be changed if there exists open orders."
            )
        acc.dual_side = bool(dual)
        acc.positions = {k: p for k, p in acc.positions.items() if p.qty}

    def position_mode(self, account_id: str) -> bool:
        """True in hedge mode."""
        return self.ledger.get(account_id).dual_side

    def mark_price(self, symbol: str) -> int:
        """Mark price (ticks) of a futures symbol."""
        self.spec(USDM, symbol)
        return self.matcher.mark_of(symbol)

    def funding_info(self, symbol: str) -> tuple[str, int]:
        """(funding rate string, next funding time ms). Charged at each funding time (see ``advance``)."""
        self.spec(USDM, symbol)
        now_ms = self.clock() // 1_000_000
        return FUNDING_RATE, now_ms - now_ms % FUNDING_INTERVAL_MS + FUNDING_INTERVAL_MS

    # ================================================================================ funding
    def _settle_due(self) -> None:
        """Charge every funding time the clock has passed (called at the start of each operation)."""
        now = self.clock()
        if now >= self.next_funding_ns:
            self.settle_funding(now)

    def settle_funding(self, now_ns: int) -> int:
        """Charge each funding time <= ``now_ns`` not charged yet, oldest first; returns how many."""
        n = 0
        while self.next_funding_ns <= now_ns:
            t = self.next_funding_ns
            self.next_funding_ns = t + FUNDING_INTERVAL_NS
            self._charge_funding(t)
            n += 1
        return n

    def _charge_funding(self, t_ns: int) -> None:
        """One funding time: every open position of every account pays or receives notional * rate.

        The notional is taken at the mark price (``mark_of``): a long pays and a short receives when the rate
        is positive. Each payment is rounded to 1e-8 towards the exchange (a payer pays the amount rounded
        up, a receiver gets it rounded down); the liquidity account's positions are charged like anyone's,
        so over all accounts longs and shorts cancel out exactly before rounding, and the rounding remainder
        (>= 0, under 1e-8 per position) goes to the fee account: futures equity stays conserved.
        Cross positions pay from the wallet; isolated ones from their isolated margin (which is part of
        the wallet, so the wallet changes as well).
        """
        m = self.matcher
        remainder = 0
        emit = self.em.active
        for acc in self.ledger.accounts.values():
            if not acc.positions:
                continue
            total = 0
            asset = ""
            isolated: list[Position] = []
            for key in sorted(acc.positions):
                p = acc.positions[key]
                if not p.qty:
                    continue
                spec = self._specs[(USDM, p.symbol)]
                notional = m.mark_of(p.symbol) * p.qty * spec.notional_unit
                amount = -notional * FUNDING_RATE_E8 // RATE_SCALE  # floor: towards the exchange
                if not amount:
                    continue
                asset = spec.margin_asset
                acc.bal(acc.futures, asset).free += amount
                remainder -= amount
                total += amount
                if acc.margin_type_of(p.symbol) == ISOLATED:
                    p.isolated_margin += amount
                    isolated.append(p.snapshot())
                if not acc.internal:
                    self._funding_rows.append(
                        Income(
                            acc.account_id,
                            INCOME_FUNDING_FEE,
                            p.symbol,
                            amount,
                            asset,
                            INCOME_FUNDING_FEE,
                            t_ns,
                            self._next_funding_tran,
                        )
                    )
                    self._next_funding_tran += 1
            if emit and asset and not acc.internal:
                b = acc.futures[asset]
                self.em.emit(
                    AccountEvent(
                        acc.account_id,
                        WALLET_FUTURES,
                        INCOME_FUNDING_FEE,
                        [Balance(asset, b.free, b.locked)],
                        isolated,
                        {asset: total},
                        t_ns,
                    )
                )
        if remainder:
            fee = self.fee_account
            fee.bal(fee.futures, "USDT").free += remainder

    def income(
        self,
        account_id: str,
        symbol: str | None = None,
        income_type: str | None = None,
        start_ns: int | None = None,
        end_ns: int | None = None,
    ) -> list[Income]:
        """The account's USD-M income history, oldest first: TRANSFER (into / out of its futures wallet),
        REALIZED_PNL and COMMISSION (one row per futures fill with a non-zero amount) and FUNDING_FEE rows,
        filtered by symbol, type and time (inclusive)."""
        acc = self.ledger.get(account_id)
        if symbol is not None:
            self.spec(USDM, symbol)
        if not self._depth:
            self._settle_due()
        aid = acc.account_id
        out: list[Income] = []
        if income_type is None or income_type == INCOME_TRANSFER:
            if symbol is None:
                for t in self._transfers:
                    if t.to_account == aid and t.to_wallet == WALLET_FUTURES:
                        out.append(
                            Income(aid, INCOME_TRANSFER, "", t.amount, t.asset, INCOME_TRANSFER, t.time_ns, t.tran_id)
                        )
                    elif t.from_account == aid and t.from_wallet == WALLET_FUTURES:
                        out.append(
                            Income(aid, INCOME_TRANSFER, "", -t.amount, t.asset, INCOME_TRANSFER, t.time_ns, t.tran_id)
                        )
        want_pnl = income_type is None or income_type == INCOME_REALIZED_PNL
        want_fee = income_type is None or income_type == INCOME_COMMISSION
        if want_pnl or want_fee:
            for i, spec in enumerate(self.specs(USDM)):
                if symbol is not None and spec.symbol != symbol:
                    continue
                for f in self.matcher.fills.get((aid, USDM, spec.symbol), []):
                    tran = ((i + 1) * TRADE_TRAN_BASE + f.trade_id) * 2 + (1 if f.is_maker else 0)
                    if want_pnl and f.realized_pnl:
                        out.append(
                            Income(
                                aid,
                                INCOME_REALIZED_PNL,
                                f.symbol,
                                f.realized_pnl,
                                f.commission_asset,
                                INCOME_REALIZED_PNL,
                                f.time_ns,
                                tran,
                                f.trade_id,
                            )
                        )
                    if want_fee and f.commission:
                        out.append(
                            Income(
                                aid,
                                INCOME_COMMISSION,
                                f.symbol,
                                -f.commission,
                                f.commission_asset,
                                INCOME_COMMISSION,
                                f.time_ns,
                                tran,
                                f.trade_id,
                            )
                        )
        if income_type is None or income_type == INCOME_FUNDING_FEE:
            out.extend(r for r in self._funding_rows if r.account_id == aid and (symbol is None or r.symbol == symbol))
        out = [
            r for r in out if (start_ns is None or r.time_ns >= start_ns) and (end_ns is None or r.time_ns <= end_ns)
        ]
        out.sort(key=lambda r: (r.time_ns, INCOME_ORDER[r.income_type], r.tran_id))
        return out

    def set_mark_price(self, symbol: str, ticks: int) -> None:
        """Set the mark price (the replay does this); triggers MARK_PRICE stops; emits MarkPriceEvent."""
        self.spec(USDM, symbol)
        self._begin()
        try:
            self.matcher.mark[symbol] = ticks
            if self.em.active:
                rate, nxt = self.funding_info(symbol)
                self.em.emit(MarkPriceEvent(symbol, ticks, ticks, rate, nxt, self.clock()))
            if self.matcher.stops[(USDM, symbol)]:
                self.matcher.check_stops((USDM, symbol))
        finally:
            self._end()

    def position_risk(self, account_id: str, symbol: str | None = None) -> list[PositionRisk]:
        """positionRisk rows: every listed symbol (one-way: BOTH; hedge: LONG and SHORT)."""
        acc = self.ledger.get(account_id)
        if not self._depth:
            self._settle_due()
        sides = ("LONG", "SHORT") if acc.dual_side else (BOTH,)
        out = [
            self._risk_row(acc, spec, ps)
            for spec in self.specs(USDM)
            if symbol is None or spec.symbol == symbol
            for ps in sides
        ]
        if symbol is not None and not out:
            raise E.invalid_symbol()
        return out

    def _risk_row(self, acc: Account, spec: SymbolSpec, pside: str) -> PositionRisk:
        mark = self.matcher.mark_of(spec.symbol)
        lev = acc.leverage_of(spec.symbol)
        mt = acc.margin_type_of(spec.symbol)
        cap = spec.brackets[-1].notional_cap if spec.brackets else 0
        for b in spec.brackets:
            if b.initial_leverage >= lev:
                cap = b.notional_cap
        p = acc.positions.get((spec.symbol, pside))
        nu = spec.notional_unit
        if p is None or not p.qty:
            return PositionRisk(
                spec.symbol,
                pside,
                0,
                Decimal(0),
                mark,
                0,
                Decimal(0),
                lev,
                cap,
                "isolated" if mt == ISOLATED else "cross",
                0,
                0,
                0,
                p.update_ns if p else 0,
            )
        upnl = mark * p.qty * nu - p.cost
        margin = p.isolated_margin if mt == ISOLATED else self.futures_account(acc.account_id).margin_balance
        return PositionRisk(
            spec.symbol,
            pside,
            p.qty,
            entry_price(p, spec),
            mark,
            upnl,
            liquidation_price(p, spec, margin),
            lev,
            cap,
            "isolated" if mt == ISOLATED else "cross",
            p.isolated_margin,
            mark * p.qty * nu,
            p.isolated_margin,
            p.update_ns,
        )

    def futures_account(self, account_id: str) -> FuturesAccountInfo:
        """Totals of the USDT futures wallet."""
        acc = self.ledger.get(account_id)
        if not self._depth:
            self._settle_due()
        m = self.matcher
        bal = acc.futures.get("USDT")
        wallet = bal.free if bal else 0
        upnl = cross_upnl = pos_im = mm = iso_total = 0
        for (sym, _), p in acc.positions.items():
            if not p.qty:
                continue
            spec = self._specs[(USDM, sym)]
            mark = m.mark_of(sym)
            u = mark * p.qty * spec.notional_unit - p.cost
            notional = abs(mark * p.qty * spec.notional_unit)
            upnl += u
            pos_im += initial_margin(notional, acc.leverage_of(sym))
            mm += maint_margin(spec, notional)
            if acc.margin_type_of(sym) == ISOLATED:
                iso_total += p.isolated_margin
            else:
                cross_upnl += u
        avail = m.available(acc)
        return FuturesAccountInfo(
            "USDT",
            wallet,
            upnl,
            wallet + upnl,
            pos_im,
            acc.order_margin,
            mm,
            avail,
            max(0, min(avail, wallet)),
            wallet - iso_total,
            cross_upnl,
            self.clock(),
        )

    # ================================================================================ market data
    def depth(self, market: str, symbol: str, limit: int = 100) -> DepthSnapshot:
        """Order book snapshot, best first, with the update id of the diff stream."""
        self.spec(market, symbol)
        b = self.matcher.books[(market, symbol)]
        return DepthSnapshot(b.update_id, b.bids.depth(limit), b.asks.depth(limit), self.clock())

    def recent_trades(self, market: str, symbol: str, limit: int = 500) -> list[TradeEvent]:
        """Newest ``limit`` public trades, oldest first."""
        self.spec(market, symbol)
        t = list(self.matcher.md[(market, symbol)].trades)
        return t[-limit:] if limit > 0 else []

    def agg_trades(
        self,
        market: str,
        symbol: str,
        from_id: int | None = None,
        start_ns: int | None = None,
        end_ns: int | None = None,
        limit: int = 500,
    ) -> list[AggTradeEvent]:
        """Aggregate trades (kept: the newest 1000)."""
        self.spec(market, symbol)
        a = [
            x
            for x in self.matcher.md[(market, symbol)].aggs
            if (from_id is None or x.agg_id >= from_id)
            and (start_ns is None or x.time_ns >= start_ns)
            and (end_ns is None or x.time_ns <= end_ns)
        ]
        return a[:limit] if from_id is not None or start_ns is not None else a[-limit:]

    def klines(
        self,
        market: str,
        symbol: str,
        interval: str,
        start_ms: int | None = None,
        end_ms: int | None = None,
        limit: int = 500,
    ) -> list[Kline]:
        """Candles of ``interval`` (see ``marketdata.INTERVALS``); -1120 "Invalid interval." otherwise."""
        self.spec(market, symbol)
        if interval not in INTERVALS:
            raise E.ExchangeError(-1120, "Invalid interval.")
        return self.matcher.md[(market, symbol)].get_klines(interval, start_ms, end_ms, limit)

    def ticker_24h(self, market: str, symbol: str) -> Ticker24h:
        """Rolling 24h statistics."""
        self.spec(market, symbol)
        return self.matcher.md[(market, symbol)].ticker_24h(self.clock())

    def book_ticker(self, market: str, symbol: str) -> BookTickerEvent:
        """Best bid/ask now."""
        self.spec(market, symbol)
        b = self.matcher.books[(market, symbol)]
        bb, ba = b.bids.best(), b.asks.best()
        return BookTickerEvent(
            market, symbol, b.update_id, bb, b.bids.qty.get(bb, 0), ba, b.asks.qty.get(ba, 0), self.clock()
        )

    def last_price(self, market: str, symbol: str) -> int:
        """Last trade price in ticks (0 before the first trade)."""
        self.spec(market, symbol)
        return self.matcher.md[(market, symbol)].last_price

    def record_path_price(self, market: str, symbol: str, ticks: int) -> None:
        """Feed a replayed path price into the klines (no trade)."""
        self.matcher.md[(market, symbol)].on_price(ticks, self.clock())
        self.matcher.dirty.add((market, symbol))

    # ================================================================================ replay
    def advance(self, now_ns: int | None = None) -> None:
        """Move time to ``now_ns`` (default: the clock): charge the funding times passed, move the replay.

        With a replay, several funding times passed in one advance are each charged at their own marks: the
        replay is moved to each funding time, that time is charged, then the replay moves on to ``now_ns``.
        """
        now = self.clock() if now_ns is None else now_ns
        replay = self.replay
        while self.next_funding_ns <= now:
            t = self.next_funding_ns
            if replay is not None and not self._depth:
                self._depth += 1  # the frame of the move, without settling (t is settled right here)
                try:
                    replay.advance(t)  # type: ignore[attr-defined]
                finally:
                    self._end()
            self.settle_funding(t)
        if replay is not None:
            replay.advance(now)  # type: ignore[attr-defined]

    # ================================================================================ checks
    def totals(self, wallet: str = WALLET_SPOT) -> dict[str, int]:
        """Sum over every account (including liquidity and fees) of free + locked per asset."""
        out: dict[str, int] = {}
        for acc in self.ledger.accounts.values():
            for a, b in acc.wallet(wallet).items():
                out[a] = out.get(a, 0) + b.free + b.locked
        return out

    def futures_equity_total(self) -> int:
        """Sum over every account of USDT futures wallet + unrealised PnL at the current marks."""
        total = 0
        for acc in self.ledger.accounts.values():
            b = acc.futures.get("USDT")
            total += b.free if b else 0
            for (sym, _), p in acc.positions.items():
                spec = self._specs[(USDM, sym)]
                total += self.matcher.mark_of(sym) * p.qty * spec.notional_unit - p.cost
        return total


__all__ = ["Exchange", "DepthSnapshot", "SPOT", "USDM"]
