"""USD-M settings (leverage, margin type, position mode), mark prices, position risk and the futures account."""

from __future__ import annotations

from decimal import Decimal

from . import errors as E
from .accounts import Account
from .event_types import MarkPriceEvent
from .exchange_state import FUNDING_INTERVAL_MS, FUNDING_RATE
from .futures import (
    FuturesAccountInfo,
    PositionRisk,
    entry_price,
    initial_margin,
    liquidation_price,
    maint_margin,
)
from .markets import USDM, SymbolSpec
from .types import BOTH, CROSSED, ISOLATED
from .wallets import Wallets


class FuturesSettings(Wallets):
    """Futures settings and risk views."""

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
