"""What JetStream already holds about one account: the source of truth for the event history.

Reconciliation publishes only what the stream lacks, so it reads, per account:

* ``last_fills(symbol)``: the last fill on ``trades.{exchange}.{account}.{market}.{symbol}`` (one
  ``last_by_subj`` request) and every trade id stored at that same event time (a taker order's fills share a
  millisecond, and a crash may have come between two of them), found by walking back from the last message
  in widening windows. Fills after that time are new; at that time, those whose ids are not listed are new.
* ``order_states(since_ns)``: the last event of every order of the account published since ``since_ns``
  (an ephemeral pull consumer on ``orders.{exchange}.{account}.>`` starting at that time, read to its end),
  so an order whose view the stream already has is not published again, and an order the stream still shows
  open is looked up on the venue.

Both read only; neither creates anything durable (the consumer is ephemeral and removed after the read).
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass, field

from nats.js import JetStreamContext
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy
from nats.js.errors import NotFoundError

from oms.bus.streams import stream_name
from oms.bus.subjects import order_subject
from oms.model import AccountId, DecodeError, Fill, Market, OrderEvent, decode

log = logging.getLogger("stream.reconcile")


@dataclass(slots=True)
class LastFills:
    """The newest fill time on one subject and the trade ids stored at exactly that time."""

    event_ns: int = -1  # -1: the stream has no fill on this subject
    trade_ids: set[str] = field(default_factory=set)
    stream_seq: int = 0

    def is_new(self, fill: Fill) -> bool:
        if fill.event_ns > self.event_ns:
            return True
        return fill.event_ns == self.event_ns and fill.trade_id not in self.trade_ids


@dataclass(slots=True)
class OrderHistory:
    """The last event of each order of one account that the stream holds (since a start time)."""

    last: dict[str, OrderEvent] = field(default_factory=dict)  # client order id -> its last event
    by_venue_id: dict[str, str] = field(default_factory=dict)  # venue order id -> client order id
    read: int = 0
    undecodable: int = 0


class AccountHistory:
    """Reads the ORDERS and TRADES streams for one account (see the module docstring)."""

    def __init__(self, js: JetStreamContext, account: AccountId | str, market: Market | str, *, batch: int = 256):
        self.js = js
        self.account = account if isinstance(account, AccountId) else AccountId.parse(account)
        self.market = Market(market)
        self.batch = batch
        self.requests = 0  # JetStream API requests made (for the benchmark and tests)

    # ------------------------------------------------------------------ fills
    async def last_fills(self, symbol: str, *, window: int = 16) -> LastFills:
        subject = order_subject("trades", self.account, symbol)
        stream = stream_name("trades")
        try:
            self.requests += 1
            last = await self.js.get_last_msg(stream, subject)
        except NotFoundError:
            return LastFills()
        fill = self._fill(last.data, subject, last.seq)
        if fill is None:
            return LastFills(stream_seq=last.seq or 0)
        out = LastFills(fill.event_ns, {fill.trade_id}, last.seq or 0)
        hi = int(last.seq or 0)
        while hi > 1:
            lo = max(1, hi - window)
            older = False
            seq = lo
            while seq < hi:
                try:
                    self.requests += 1
                    msg = await self.js.get_msg(stream, seq, subject=subject, next=True)
                except NotFoundError:
                    break
                if msg.seq is None or msg.seq >= hi:
                    break
                f = self._fill(msg.data, subject, msg.seq)
                if f is not None:
                    if f.event_ns == out.event_ns:
                        out.trade_ids.add(f.trade_id)
                    elif f.event_ns < out.event_ns:
                        older = True
                seq = msg.seq + 1
            if older:
                break
            hi = lo
            window *= 4
        return out

    def _fill(self, data: bytes | None, subject: str, seq: int | None) -> Fill | None:
        try:
            return decode(data or b"", Fill)
        except (DecodeError, ValueError) as exc:
            log.warning("reconcile: message %s on %s is not a Fill (%s): skipped", seq, subject, exc)
            return None

    # ------------------------------------------------------------------ orders
    async def order_states(self, since_ns: int) -> OrderHistory:
        """The last stored event of every order of the account published at or after ``since_ns``."""
        out = OrderHistory()
        filt = f"orders.{self.account.exchange}.{self.account.name}.{self.market.value}.>"
        start = dt.datetime.fromtimestamp(max(since_ns, 0) / 1e9, tz=dt.UTC)
        config = ConsumerConfig(
            deliver_policy=DeliverPolicy.BY_START_TIME,
            opt_start_time=start,  # type: ignore[arg-type]  # nats-py serialises datetimes
            ack_policy=AckPolicy.NONE,
            inactive_threshold=60.0,
            filter_subject=filt,
        )
        self.requests += 1
        try:
            sub = await self.js.pull_subscribe(filt, stream=stream_name("orders"), config=config)
        except NotFoundError:
            return out
        try:
            self.requests += 1
            pending = (await sub.consumer_info()).num_pending
            while pending > 0:
                self.requests += 1
                msgs = await sub.fetch(min(pending, self.batch), timeout=5.0)
                for msg in msgs:
                    out.read += 1
                    if msg.data.startswith(b'{"type":"parent_event"'):
                        continue  # a parent order's step (stream.emulation): its children are OrderEvents here
                    try:
                        ev = decode(msg.data, OrderEvent)
                    except (DecodeError, ValueError) as exc:
                        out.undecodable += 1
                        log.warning("reconcile: %s on %s is not an OrderEvent (%s): skipped", msg.subject, filt, exc)
                        continue
                    if ev.account != str(self.account):
                        continue
                    out.last[ev.client_order_id] = ev
                    if ev.venue_order_id:
                        out.by_venue_id[ev.venue_order_id] = ev.client_order_id
                pending = msgs[-1].metadata.num_pending if msgs else 0
        finally:
            try:
                await sub.unsubscribe()
                if config.name:
                    await self.js.delete_consumer(stream_name("orders"), config.name)
            except Exception as exc:  # the ephemeral consumer expires on its own anyway (inactive_threshold)
                log.debug("reconcile: removing the history consumer of %s: %s", self.account, exc)
        return out
