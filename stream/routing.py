"""Smart order routing: a placement that names other accounts it may go to (``PlaceOrder.route``) is sent to the
one the routing kernel (``kernels.routing.route_order``) scores best.

The candidates are the command's own account and those of ``route``, each on its own exchange's book of the
symbol (the daemon's live books, ``stream.marketdata``). For each the kernel walks the book up to the limit
price (a market order: the whole book) and scores what the order would fill there and what it would cost
(buy: notional plus the account's taker fee, ``stream.fees``) or bring (sell: net of it). Skipped: an account
that is not trading, has no rate-limit headroom for an order now (its orders windows), or lacks the balance
(Spot buy: the free quote asset; Spot sell: the free base asset; USD-M: the free USDT margin at leverage 1,
so the check is conservative and the risk kernel still has the last word), or whose book fills nothing
within the limit. Among the rest the one that fills most wins, then the cheapest (or best-paid), then the
order given.

The client order id is derived from the command as sent (its account and ``route`` included) before it is
routed, so a retry or a restart finds the order wherever it went and nothing is placed twice. The command
goes on with the chosen account; the reply names it (``CommandResult.account``). No eligible candidate: the
command is refused as ``route:no_candidate`` with each account's reason.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from decimal import Decimal

import msgspec
import numpy as np

from kernels import book as K
from kernels.codes import BUY, SELL
from kernels.routing import ROUTE_OK, ROUTE_REASONS, route_order
from oms.model import Market, PlaceOrder, Side
from oms.model.commands import CommandResult
from oms.model.ids import AccountId, ClientOrderId, InstrumentId
from stream.accounts import AccountSession
from stream.instruments import InstrumentTable, UnknownInstrument

log = logging.getLogger("stream.routing")

NOT_TRADING = -1  # a candidate refused before the kernel (its reason is in the text)
_NO_WINDOW_HEADROOM = 1 << 30


class SmartRouter:
    """A command hook (``stream.commands.OrderRouter.hooks``): routed placements get their account here."""

    def __init__(
        self,
        books: tuple[np.ndarray, np.ndarray],
        sessions: Mapping[str, AccountSession],
        instruments: InstrumentTable,
        known: Callable[[str], object | None],
        taker_ppm: Callable[[int, int], int],
        id_prefix: str = "oms",
    ):
        self.lv, self.meta = books
        self.sessions = sessions
        self.instruments = instruments
        self.known = known  # client order id -> the gateway's record (None: new)
        self.taker_ppm = taker_ppm  # (kernel account, instrument) -> ppm
        self.id_prefix = id_prefix
        self.routed = 0
        self.refused = 0

    async def __call__(self, cmd):
        if type(cmd) is not PlaceOrder or not cmd.route:
            return cmd
        return self.route(cmd)

    def route(self, cmd: PlaceOrder) -> PlaceOrder | CommandResult:
        """The command with the best candidate's account (its id derived first), or the refusal."""
        if cmd.client_order_id is None:
            cmd = msgspec.structs.replace(cmd, client_order_id=ClientOrderId.derive(cmd, self.id_prefix))
        coid = cmd.client_order_id
        rec = self.known(coid)
        if rec is not None:  # a retry: answered by the account it went to
            return msgspec.structs.replace(cmd, account=rec.cmd.account)
        names = list(dict.fromkeys((cmd.account, *cmd.route)))
        books, fees, available, headroom, why = [], [], [], [], {}
        ref = None  # the first candidate's instrument: every book must count in its units
        for name in names:
            b, ins, reason = self._candidate(name, cmd)
            if reason:
                why[name] = reason
                continue
            if ref is None:
                ref = ins
            elif (ins.price_unit, ins.qty_unit, ins.mult) != (ref.price_unit, ref.qty_unit, ref.mult):
                why[name] = f"its {cmd.symbol} counts in other units than {names[0]}'s"
                continue
            books.append((name, b))
            fees.append(self.taker_ppm(self.sessions[name].number, b))
            available.append(self._available(self.sessions[name], b, ins, cmd))
            headroom.append(self._headroom(self.sessions[name], ins.market))
        chosen = -1
        if books:
            try:
                qty = ref.qty(cmd.qty)
                limit = ref.price(cmd.price) if cmd.price is not None else 0
            except ValueError as exc:
                return self._refuse(cmd, "bad_number", str(exc))
            n = len(books)
            reason, filled, money = np.zeros(n, np.int64), np.zeros(n, np.int64), np.zeros(n, np.int64)
            chosen = route_order(
                self.lv, self.meta, BUY if cmd.side is Side.BUY else SELL, qty, limit, ref.mult,
                np.array([b for _, b in books], np.int64), np.array(fees, np.int64),
                np.array(available, np.int64), np.array(headroom, np.int64), reason, filled, money,
            )  # fmt: skip
            for k, (name, _) in enumerate(books):
                if reason[k] != ROUTE_OK:
                    why[name] = ROUTE_REASONS[int(reason[k])]
        if chosen < 0:
            detail = "; ".join(f"{name}: {why.get(name, 'not chosen')}" for name in names)
            return self._refuse(cmd, "route:no_candidate", f"no account can take {cmd.qty} {cmd.symbol}: {detail}")
        self.routed += 1
        account = books[chosen][0]
        if account != cmd.account:
            log.info("order %s routed from %s to %s", coid, cmd.account, account)
        return msgspec.structs.replace(cmd, account=account)

    def _candidate(self, name: str, cmd: PlaceOrder):
        session = self.sessions.get(name)
        if session is None:
            return -1, None, "not an account of this daemon"
        if not session.trading:
            return -1, None, "not trading"
        try:
            b, ins = self.instruments.lookup(AccountId.parse(name).exchange, cmd.symbol)
        except (UnknownInstrument, ValueError) as exc:
            return -1, None, str(exc)
        if ins.market not in session.links:
            return -1, None, f"does not trade {ins.market.value}"
        return b, ins, ""

    def _available(self, session: AccountSession, b: int, ins, cmd: PlaceOrder) -> int:
        """What the account can spend on a buy (money units) or sell (quantity units), from its free balances."""
        sid = InstrumentId.parse(cmd.symbol)
        market = ins.market
        spot = market is Market.SPOT
        asset = (sid.quote if cmd.side is Side.BUY else sid.base) if spot else (sid.settle or sid.quote)
        free = session.free(market, asset) or Decimal(0)
        if free <= 0:
            return 0
        if spot and cmd.side is Side.SELL:
            return int(free / ins.qty_unit)  # whole quantity units held
        money = int(free / ins.money_unit)
        if not spot and cmd.side is Side.SELL:  # the margin for a short at leverage 1, in contracts
            price = ins.price(cmd.price) if cmd.price is not None else int(K.best(self.lv, self.meta, b, K.BID)[0])
            return money // (price * ins.mult) if price > 0 else 0
        return money

    @staticmethod
    def _headroom(session: AccountSession, market: Market) -> int:
        """Orders the account may still send now (the tightest of its orders windows)."""
        link = session.links.get(market)
        limiter = getattr(getattr(link, "clients", None), "context", None)
        limiter = getattr(limiter, "limiter", None)
        headroom = getattr(limiter, "order_headroom", None)
        return int(headroom()) if callable(headroom) else _NO_WINDOW_HEADROOM

    def _refuse(self, cmd: PlaceOrder, code: str, reason: str) -> CommandResult:
        self.refused += 1
        log.info("routed order %s refused: %s", cmd.client_order_id, reason)
        return CommandResult(ok=False, client_order_id=cmd.client_order_id, code=code, reason=reason)
