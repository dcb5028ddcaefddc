"""Funding of USD-M positions: charged at 00:00, 08:00 and 16:00 UTC of the injected clock at the marks, and the
income history (transfers, realised PnL, commissions, funding fees) of the futures wallet.
"""

from __future__ import annotations

from .event_types import AccountEvent
from .exchange_state import (
    FUNDING_INTERVAL_NS,
    FUNDING_RATE_E8,
    INCOME_ORDER,
    RATE_SCALE,
    TRADE_TRAN_BASE,
    ExchangeState,
)
from .markets import USDM
from .types import (
    INCOME_COMMISSION,
    INCOME_FUNDING_FEE,
    INCOME_REALIZED_PNL,
    INCOME_TRANSFER,
    ISOLATED,
    WALLET_FUTURES,
    Balance,
    Income,
    Position,
)


class Funding(ExchangeState):
    """Funding payments and the income history."""

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
