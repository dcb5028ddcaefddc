"""Funding payments of USD-M positions: seen, booked once, published, logged.

Binance tells a funding payment on the user stream as an ``ACCOUNT_UPDATE`` with reason ``FUNDING_FEE``; for
a cross position it names no symbol (only the wallet's change), so the payment itself is read from the income
history (``BinanceExecution.funding_payments``: ``GET /fapi/v1/income``, ``incomeType=FUNDING_FEE``), one row
per position and funding time. ``FundingBook`` keeps, per account, the payments already booked (by symbol,
funding time and the venue's id of the row, ``tranId``: the archive's key of a funding row; in hedge mode both
sides of a symbol are paid at one time), so a payment seen again (the stream and a catch-up, a reconnect, a
restart) is booked once:

* ``on_update(session, ev)``: a ``FUNDING_FEE`` balance event: the payments since a little before it are read
  and each new one booked **live**: into the positions kernel (``apply_funding``: the account's and the
  position's funding totals, cash moved as the wallet did), published on ``funding.{exchange}.{account}.usdm.
  {symbol}`` (``Nats-Msg-Id`` ``funding:{account}:{symbol}:{ns}``), appended to ``data/logs/YYYY/MM/DD/
  {account}/funding.jsonl`` (the archive's ``funding`` view, and the pnl report's ``funding`` column).
* ``catch_up(session, reason)``: after every reconciliation (start, reconnect; in the background,
  ``start_catch_up``, its income request paced with the reconciliation's within the IP's weight budget): the
  payments since the last one in JetStream (or ``lookback_s``) that the stream lacks, published and logged;
  after a reconnect they go into the kernel's funding totals too (the cash is the venue snapshot's, which
  holds them already). At start the kernel begins from the venue's snapshot and books only what comes later,
  as with fills.

The account's realised PnL in the kernel (``account_summary``: realised - fees + funding, what the circuit
breaker reads) counts funding as its own total; the live view (``stream.livestate.pnl_of``) shows it per
account and per symbol. A payment on a symbol the daemon does not trade (a position opened by hand) is
published and logged like the others, so the archive and the PnL report hold it, and counted ``not_traded``;
it is not in the kernel's totals. An unreadable amount is counted ``bad_payment`` and logged; the rest is
booked.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import time
from collections import Counter
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from decimal import Decimal
from typing import Any

import msgspec
from nats.js import JetStreamContext
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy
from nats.js.errors import NotFoundError

from kernels.codes import POS_BOTH, POS_SHORT
from kernels.positions import apply_funding
from kernels.state import A_FUNDING, P_FUNDING, P_QTY, KernelState
from oms.archive.logs import LogWriter
from oms.archive.records import Funding
from oms.bus import EventPublisher, OutboxRecord
from oms.bus.streams import stream_name
from oms.bus.subjects import funding_msg_id, funding_subject
from oms.model import BalanceEvent, Market, codec
from oms.venues.errors import VenueError
from stream.instruments import InstrumentTable, UnknownInstrument

log = logging.getLogger("stream.funding")
MS = 1_000_000
LOOKBACK_S = 86_400.0  # payments read this far back where JetStream has none
EARLY_NS = 60_000 * MS  # a FUNDING_FEE update reads the payments from a minute before it
RETRY_S = (0.5, 2.0, 5.0)  # a live update's income request again after these pauses while it finds nothing new
INCOME_ENDPOINT = "GET /fapi/v1/income"
KEPT_NS = 31 * 86_400 * 10**9  # JetStream keeps events 30 days: the history read at start


class FundingBook:
    def __init__(
        self,
        state: KernelState,
        instruments: InstrumentTable,
        publisher: EventPublisher,
        logs: LogWriter,
        js: JetStreamContext,
        *,
        lookback_s: float = LOOKBACK_S,
        on_booked: Callable[[str], None] | None = None,
        clock: Callable[[], int] | None = None,
        pace: Callable[[Any, int], AbstractAsyncContextManager] | None = None,
    ):
        self.state = state
        self.instruments = instruments
        self.publisher = publisher
        self.logs = logs
        self.js = js
        self.lookback_ns = int(lookback_s * 1e9)
        self.on_booked = on_booked  # account -> (the live state is dirty)
        self.clock = clock or time.time_ns
        self.pace = pace  # (limiter, weight) -> holds the weight of one catch-up request (WeightPacer.call)
        self.seen: dict[str, set[tuple[str, int, str]]] = {}  # account -> {(symbol, funding time ns, venue id)}
        self.last_ns: dict[str, int] = {}  # account -> newest funding time known
        self.counts: Counter[str] = Counter()  # booked, published, duplicate, and refusals by reason
        self._loaded: set[str] = set()
        self._dups: Counter[str] = Counter()  # account -> payments seen again
        self._untraded: set[tuple[str, str]] = set()  # (account, symbol) of payments outside the instrument table
        self._locks: dict[str, asyncio.Lock] = {}
        self._tasks: set[asyncio.Task] = set()

    # ------------------------------------------------------------------ entry points
    def on_update(self, account: str, number: int, execution, ev: BalanceEvent) -> None:
        """A balance event from the user stream: a ``FUNDING_FEE`` one books its payments (in a task, so the
        user stream is not held up by the income request)."""
        if ev.market is not Market.USDM or ev.reason != "FUNDING_FEE":
            return
        since = ev.event_ns - EARLY_NS
        task = asyncio.get_running_loop().create_task(self._live(account, number, execution, since))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _live(self, account: str, number: int, execution, since_ns: int) -> None:
        """The payments of one update; asked again a few times while the income history does not list a new
        one yet (the venue may write it a moment after the update)."""
        for pause in (*RETRY_S, None):
            before = self._dups[account]
            if await self._sync(account, number, execution, since_ns, live=True):
                return
            if self._dups[account] > before:  # an update seen again (a replay): its payment is booked
                return
            if pause is None:
                break
            await asyncio.sleep(pause)
        self.counts["update_without_payment"] += 1
        log.warning("funding of %s: a FUNDING_FEE update, but no new payment in the income history; the next "
                    "reconciliation reads it again", account)  # fmt: skip

    async def catch_up(self, account: str, number: int, execution, reason: str) -> int:
        """After a reconciliation: the payments JetStream lacks; how many were new."""
        return await self._sync(account, number, execution, None, live=False, kernel=reason != "start")

    def start_catch_up(self, account: str, number: int, execution, reason: str) -> None:
        """``catch_up`` in the background (the account trades meanwhile; its income request is paced with the
        reconciliation's, so many accounts starting at once stay within the IP's weight budget)."""
        task = asyncio.get_running_loop().create_task(self._catch_up_logged(account, number, execution, reason))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _catch_up_logged(self, account: str, number: int, execution, reason: str) -> None:
        try:
            n = await self.catch_up(account, number, execution, reason)
        except Exception as exc:  # JetStream or the venue unreadable now: the next update or reconnect reads again
            self.counts["catch_up_failed"] += 1
            log.warning("funding of %s: catch-up (%s) failed: %s: %s", account, reason, type(exc).__name__, exc)
            return
        if n:
            log.info("funding of %s: %d payment(s) the stream lacked (%s)", account, n, reason)

    async def drain(self, timeout_s: float = 5.0) -> None:
        if self._tasks:
            await asyncio.wait(list(self._tasks), timeout=timeout_s)

    # ------------------------------------------------------------------ booking
    async def _sync(self, account: str, number: int, execution, since_ns: int | None, *, live: bool,
                    kernel: bool = True) -> int:  # fmt: skip
        """Book the payments from ``since_ns`` (None: from the newest one known, else ``lookback_s`` back)."""
        lock = self._locks.setdefault(account, asyncio.Lock())
        async with lock:
            if account not in self._loaded:
                await self._load(account)
            if since_ns is None:
                since_ns = self.last_ns.get(account, self.clock() - self.lookback_ns)
            try:
                if self.pace is not None and not live:
                    weights = getattr(getattr(execution, "metadata", None), "weights", {})
                    w = weights.get(INCOME_ENDPOINT)
                    async with self.pace(execution.context.limiter, w.weight if w is not None else 30):
                        payments = await execution.funding_payments(since_ns)
                else:
                    payments = await execution.funding_payments(since_ns)
            except (VenueError, OSError, TimeoutError) as exc:
                self.counts["venue_error"] += 1
                log.warning("funding of %s: the income history is unreadable now (%s); the next update or "
                            "reconciliation reads it again", account, exc)  # fmt: skip
                return 0
            new = 0
            sides = self._hedge_sides(account, number, payments)
            for f in payments:
                if await self._book(account, number, f, live=live, kernel=kernel, side=sides.get(id(f))):
                    new += 1
            return new

    def _hedge_sides(self, account: str, number: int, payments: list[Funding]) -> dict[int, int]:
        """Hedge mode with both sides of a symbol open: the venue writes one payment per position and names
        neither side (Binance's income rows have no position side). Each pair is matched to the sides by size:
        the amounts stand as the positions' sizes do (one mark, one rate). Equal sizes cannot tell: the paying
        row goes to the long side, as a positive rate has it (counted ``side_assumed``)."""
        groups: dict[tuple[str, int], list[Funding]] = {}
        for f in payments:
            groups.setdefault((f.symbol, f.event_ns), []).append(f)
        out: dict[int, int] = {}
        exchange = account.split("/", 1)[0]
        for (symbol, _), rows in groups.items():
            if len(rows) != 2:
                continue
            try:
                i, _ins = self.instruments.lookup(exchange, symbol)
                a, b = (abs(Decimal(r.amount)) for r in rows)
            except (UnknownInstrument, ArithmeticError, ValueError):
                continue  # booked one by one (an unreadable amount is refused there)
            long_q, short_q = (
                abs(int(self.state.pos[P_QTY, number, i, 0])),
                abs(int(self.state.pos[P_QTY, number, i, 1])),
            )
            if not long_q or not short_q:
                continue
            straight, crossed = abs(a * short_q - b * long_q), abs(b * short_q - a * long_q)
            if straight == crossed:
                self.counts["side_assumed"] += 1
                first_long = Decimal(rows[0].amount) <= Decimal(rows[1].amount)
            else:
                first_long = straight < crossed
            out[id(rows[0])], out[id(rows[1])] = (POS_BOTH, POS_SHORT) if first_long else (POS_SHORT, POS_BOTH)
        return out

    async def _book(self, account: str, number: int, f: Funding, *, live: bool, kernel: bool,
                    side: int | None = None) -> bool:  # fmt: skip
        seen = self.seen.setdefault(account, set())
        key = (f.symbol, f.event_ns, f.venue_id)
        if key in seen:
            self.counts["duplicate"] += 1
            self._dups[account] += 1
            return False
        try:
            i, ins = self.instruments.lookup(account.split("/", 1)[0], f.symbol)
        except UnknownInstrument:
            i = ins = None  # a position the daemon does not trade (opened by hand): the money moved all the same
        try:
            units = ins.money(f.amount, "funding amount") if ins is not None else Decimal(f.amount)
        except (ValueError, ArithmeticError) as exc:
            n = self.counts["bad_payment"] = self.counts["bad_payment"] + 1
            if n <= 5 or n % 1000 == 0:
                log.warning("funding payment of %s on %s at %d not booked (%d so far): %s", account, f.symbol,
                            f.event_ns, n, exc)  # fmt: skip
            return False
        seen.add(key)
        self.last_ns[account] = max(self.last_ns.get(account, 0), f.event_ns)
        if ins is None:
            kernel = False
            self.counts["not_traded"] += 1
            if (account, f.symbol) not in self._untraded:
                self._untraded.add((account, f.symbol))
                log.warning("funding of %s on %s, a symbol the daemon does not trade: published and logged, not in "
                            "the kernel's totals", account, f.symbol)  # fmt: skip
        if kernel:
            s = self.state
            if side is None:  # one position open (or the pair could not be matched): the open side's
                side = POS_SHORT if s.pos[P_QTY, number, i, 1] and not s.pos[P_QTY, number, i, 0] else POS_BOTH
            if live:  # the wallet paid (or got) it just now: cash, funding totals, the peak
                apply_funding(*s.blocks, number, i, side, units)
            else:  # the venue's snapshot (the kernel's cash) holds it already: the funding totals only
                s.pos[P_FUNDING, number, i, 1 if side == POS_SHORT else 0] += units
                s.acc[A_FUNDING, number] += units
            self.counts["booked"] += 1
        await self.publisher.publish_record(
            OutboxRecord(
                funding_subject(account, f.symbol),
                funding_msg_id(account, f.symbol, f.event_ns, f.venue_id),
                msgspec.Raw(codec.encode(f)),
            )  # fmt: skip
        )
        self.counts["published"] += 1
        try:
            self.logs.append(f)
        except OSError as exc:
            self.counts["log_error"] += 1
            log.error("could not write the funding log of %s: %s", account, exc)
        if self.on_booked is not None:
            self.on_booked(account)
        log.info("funding %s %s %s at %d booked%s", account, f.symbol, f.amount, f.event_ns,
                 "" if kernel else " (history: logged and published only)")  # fmt: skip
        return True

    # ------------------------------------------------------------------ what JetStream holds
    async def _load(self, account: str) -> None:
        """The account's funding payments in JetStream (all it keeps): known, never published again."""
        exchange, name = account.split("/", 1)
        filt = f"funding.{exchange}.{name}.>"
        start = dt.datetime.fromtimestamp(max(0, self.clock() - KEPT_NS) / 1e9, tz=dt.UTC)
        config = ConsumerConfig(deliver_policy=DeliverPolicy.BY_START_TIME, opt_start_time=start,  # type: ignore[arg-type]
                                ack_policy=AckPolicy.NONE, inactive_threshold=60.0, filter_subject=filt)  # fmt: skip
        seen = self.seen.setdefault(account, set())
        try:
            sub = await self.js.pull_subscribe(filt, stream=stream_name("funding"), config=config)
        except NotFoundError:
            self._loaded.add(account)
            return
        try:
            pending = (await sub.consumer_info()).num_pending
            while pending > 0:
                msgs = await sub.fetch(min(pending, 256), timeout=5.0)
                for msg in msgs:
                    try:
                        f = codec.decode(msg.data, Funding)
                    except codec.DecodeError as exc:
                        self.counts["undecodable"] += 1
                        log.warning("funding history of %s: %s is not a funding payment (%s)", account,
                                    msg.subject, exc)  # fmt: skip
                        continue
                    seen.add((f.symbol, f.event_ns, f.venue_id))
                    self.last_ns[account] = max(self.last_ns.get(account, 0), f.event_ns)
                pending = msgs[-1].metadata.num_pending if msgs else 0
        finally:
            try:
                await sub.unsubscribe()
            except Exception as exc:  # the ephemeral consumer expires on its own (inactive_threshold)
                log.debug("funding history of %s: removing the consumer: %s", account, exc)
        self._loaded.add(account)
