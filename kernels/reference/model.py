"""A readable model of the kernel state (accounts, positions, instruments) and its conversion.

``World.from_state`` reads a ``KernelState``'s arrays into dataclasses; ``World.assert_matches``
compares a world with a state field by field, including the kernels' cached sums, which the world
recomputes from positions.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from kernels import state as S
from kernels.codes import PERP


@dataclass
class Instrument:
    kind: int
    status: int
    mult: int
    tick: int
    lot: int
    min_qty: int
    max_qty: int
    min_price: int
    max_price: int
    min_notional: int
    max_notional: int
    mark: int
    rate_num: int = 1  # the instrument's money -> the limits' USDT (kernels.quote_rates); 0: no rate
    rate_den: int = 1

    def floor(self, x: int) -> int:
        """x of this instrument's money in the limits' unit, rounded down."""
        return x * self.rate_num // self.rate_den

    def ceil(self, x: int) -> int:
        return -(-x * self.rate_num // self.rate_den)


@dataclass
class Limits:
    max_order_notional: int
    max_position_notional: int
    max_gross_exposure: int
    max_leverage_ppm: int
    max_open_orders: int
    order_rate_milli: int
    order_burst: int
    max_daily_loss: int
    max_drawdown_ppm: int
    price_band_ppm: int
    trading_state: int


@dataclass
class Position:
    qty: int = 0
    cost: int = 0
    realised: int = 0
    fees: int = 0
    funding: int = 0
    open_buy: int = 0
    open_sell: int = 0


@dataclass
class Account:
    limits: Limits
    hedge: bool
    exchange: int
    cash: int
    realised: int
    fees: int
    funding: int
    day_start_equity: int
    peak_equity: int
    open_orders: int
    tokens: int
    tokens_ns: int
    positions: dict[tuple[int, int], Position] = field(default_factory=dict)  # (instrument, slot)

    def position(self, i: int, slot: int) -> Position:
        return self.positions.setdefault((i, slot), Position())


@dataclass
class World:
    instruments: list[Instrument]
    accounts: list[Account]
    max_gross_exposure: int
    max_daily_loss: int
    trading_state: int
    day_start_equity: int

    # --- values recomputed from positions (no caches) -------------------------------------------
    def value(self, a: int) -> int:
        """Sum of signed quantity x mark x mult over the account's positions."""
        acct = self.accounts[a]
        ins = self.instruments
        return sum(ins[i].floor(p.qty * ins[i].mark * ins[i].mult) for (i, _), p in acct.positions.items())

    def cost_perp(self, a: int) -> int:
        acct = self.accounts[a]
        ins = self.instruments
        return sum(ins[i].ceil(p.cost) for (i, _), p in acct.positions.items() if ins[i].kind == PERP and p.qty)

    def unpriced(self, a: int) -> int:
        """Open position slots in instruments without a rate."""
        return sum(1 for (i, _), p in self.accounts[a].positions.items() if p.qty and self.instruments[i].rate_num == 0)

    def gross(self, a: int) -> int:
        acct = self.accounts[a]
        ins = self.instruments
        return sum(ins[i].ceil(abs(p.qty) * ins[i].mark * ins[i].mult) for (i, _), p in acct.positions.items())

    def equity(self, a: int) -> int:
        """Cash plus spot holdings at the mark plus unrealised PnL of perpetuals."""
        return self.accounts[a].cash + self.value(a) - self.cost_perp(a)

    def total_equity(self) -> int:
        return sum(self.equity(a) for a in range(len(self.accounts)))

    def total_gross(self) -> int:
        return sum(self.gross(a) for a in range(len(self.accounts)))

    # --- conversion ----------------------------------------------------------------------------
    @classmethod
    def from_state(cls, st) -> World:
        ins, lim, acc, pos, glob = (st.ins, st.lim, st.acc, st.pos, st.glob)
        instruments = [Instrument(*(int(ins[f, i]) for f in range(S.I_FIELDS))) for i in range(ins.shape[1])]
        accounts = []
        for a in range(acc.shape[1]):
            limits = Limits(*(int(lim[f, a]) for f in range(S.L_FIELDS)))
            acct = Account(
                limits=limits,
                hedge=bool(acc[S.A_POS_MODE, a]),
                exchange=int(acc[S.A_EXCHANGE, a]),
                cash=int(acc[S.A_CASH, a]),
                realised=int(acc[S.A_REALISED, a]),
                fees=int(acc[S.A_FEES, a]),
                funding=int(acc[S.A_FUNDING, a]),
                day_start_equity=int(acc[S.A_DAY_START_EQUITY, a]),
                peak_equity=int(acc[S.A_PEAK_EQUITY, a]),
                open_orders=int(acc[S.A_OPEN_ORDERS, a]),
                tokens=int(acc[S.A_TOKENS, a]),
                tokens_ns=int(acc[S.A_TOKENS_NS, a]),
            )
            for i in range(ins.shape[1]):
                for slot in range(2):
                    values = [int(pos[f, a, i, slot]) for f in range(S.P_FIELDS)]
                    if any(values):
                        acct.positions[(i, slot)] = Position(*values)
            accounts.append(acct)
        return cls(
            instruments=instruments,
            accounts=accounts,
            max_gross_exposure=int(glob[S.G_MAX_GROSS]),
            max_daily_loss=int(glob[S.G_MAX_DAILY_LOSS]),
            trading_state=int(glob[S.G_TRADING_STATE]),
            day_start_equity=int(glob[S.G_DAY_START_EQUITY]),
        )

    def differences(self, st) -> list[str]:
        """Every field where the kernel state differs from this world (empty list: identical)."""
        other = World.from_state(st)
        diffs = []
        for i, (mine, theirs) in enumerate(zip(self.instruments, other.instruments, strict=True)):
            if mine != theirs:
                diffs.append(f"instrument {i}: reference {mine} != kernel {theirs}")
        for a, (mine, theirs) in enumerate(zip(self.accounts, other.accounts, strict=True)):
            mine_positions = {k: p for k, p in mine.positions.items() if p != Position()}
            if mine_positions != theirs.positions:
                diffs.append(f"account {a} positions: reference {mine_positions} != kernel {theirs.positions}")
            for name in (
                "hedge",
                "exchange",
                "cash",
                "realised",
                "fees",
                "funding",
                "day_start_equity",
                "peak_equity",
                "open_orders",
                "tokens",
                "tokens_ns",
                "limits",
            ):
                if getattr(mine, name) != getattr(theirs, name):
                    diffs.append(
                        f"account {a} {name}: reference {getattr(mine, name)} != kernel {getattr(theirs, name)}"
                    )
            caches = {
                "value": (self.value(a), int(st.acc[S.A_VALUE, a])),
                "gross": (self.gross(a), int(st.acc[S.A_GROSS, a])),
                "cost_perp": (self.cost_perp(a), int(st.acc[S.A_COST_PERP, a])),
            }
            for name, (ref, ker) in caches.items():
                if ref != ker:
                    diffs.append(f"account {a} cached {name}: reference {ref} != kernel {ker}")
        for name, ref, ker in (
            ("trading_state", self.trading_state, int(st.glob[S.G_TRADING_STATE])),
            ("day_start_equity", self.day_start_equity, int(st.glob[S.G_DAY_START_EQUITY])),
            ("cash", sum(acct.cash for acct in self.accounts), int(st.glob[S.G_CASH])),
            ("value", sum(self.value(a) for a in range(len(self.accounts))), int(st.glob[S.G_VALUE])),
            ("gross", self.total_gross(), int(st.glob[S.G_GROSS])),
            ("cost_perp", sum(self.cost_perp(a) for a in range(len(self.accounts))), int(st.glob[S.G_COST_PERP])),
        ):
            if ref != ker:
                diffs.append(f"global {name}: reference {ref} != kernel {ker}")
        return diffs
