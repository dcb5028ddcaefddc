"""The daemon's Prometheus metrics, in one registry of its own (so two daemons in one test process never mix).

Counters are incremented where things happen (commands, venue answers, publishes); gauges that mirror state
held elsewhere (outbox depth, rate-limit weight used, open orders) are read at scrape time by
``DaemonMetrics.collect_gauges`` from callables the daemon registers, so the hot path does not update them.
"""

from __future__ import annotations

from collections.abc import Callable

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, disable_created_metrics, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

# Latency buckets from 50 µs to 10 s: the gateway's own decision is in the first buckets, venue round trips
# in the middle, a slow REST fallback at the end.
LATENCY_BUCKETS = (5e-5, 1e-4, 2.5e-4, 5e-4, 1e-3, 2.5e-3, 5e-3, 1e-2, 2.5e-2, 5e-2, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0)
CONTENT_TYPE = CONTENT_TYPE_LATEST
disable_created_metrics()  # no `_created` series: they double the page and no dashboard reads them


class DaemonMetrics:
    """Every metric of one daemon (names prefixed ``oms_``)."""

    def __init__(self) -> None:
        r = self.registry = CollectorRegistry(auto_describe=True)
        self.orders = Counter("oms_orders", "Orders accepted by the gateway and sent", ["account"], registry=r)
        self.rejections = Counter(
            "oms_rejections", "Commands and orders refused, by reason code", ["account", "reason"], registry=r
        )
        self.bad_commands = Counter(
            "oms_bad_commands", "Command messages that could not be read, by reason", ["reason"], registry=r
        )
        self.latency = Histogram(
            "oms_latency_seconds",
            "Latency per path: command (request to reply), venue_place, venue_cancel, gateway (decision only)",
            ["path"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.events_published = Counter("oms_events_published", "Events handed to JetStream", ["kind"], registry=r)
        self.venue_events = Counter("oms_venue_events", "User-stream events received", ["account"], registry=r)
        self.md_events = Counter("oms_md_events", "Market-data events published on md.*", ["kind"], registry=r)
        self.reconnects = Counter("oms_reconnects", "Stream gaps and reconnects", ["stream"], registry=r)
        self.dropped = Counter("oms_dropped", "Venue events not applied, by reason", ["reason"], registry=r)
        self.kill_switch = Counter("oms_kill_switch", "Kill-switch commands applied", ["action"], registry=r)
        self.breaker_trips = Counter(
            "oms_breaker_trips", "Circuit-breaker switches (stream/risk)", ["account", "state"], registry=r
        )
        self.cancel_races = Counter(
            "oms_cancel_races", "Cancels the venue answered 'unknown order', by what the query then found", ["found"],
            registry=r,
        )  # fmt: skip
        self.futures_settings = Counter(
            "oms_futures_settings", "USD-M settings changes (stream/futures_settings), by setting and outcome "
            "(applied, refused by the venue, failed)", ["account", "setting", "outcome"], registry=r,
        )  # fmt: skip
        self.webhook_alerts = Counter("oms_webhook_alerts", "Webhook alerts by outcome", ["outcome"], registry=r)
        self.outbox_depth = Gauge("oms_outbox_depth", "Events waiting in the outbox for JetStream", registry=r)
        self.unconfirmed = Gauge(
            "oms_events_unconfirmed", "Events not yet acknowledged by JetStream (in flight + outbox)", registry=r
        )
        self.weight_used = Gauge(
            "oms_weight_used", "Request weight used in the current minute, per account", ["account"], registry=r
        )
        self.weight_headroom = Gauge(
            "oms_weight_headroom_ratio", "Share of the account's weight budget still free", ["account"], registry=r
        )
        self.open_orders = Gauge("oms_open_orders", "Open orders known to the daemon", ["account"], registry=r)
        self.finished_orders = Gauge(
            "oms_finished_orders", "Finished orders the daemon still remembers (stream.orders)", registry=r
        )
        self.forgotten_orders = Gauge(
            "oms_forgotten_orders", "Finished orders forgotten, by why: window (its time passed) or cap", ["why"],
            registry=r,
        )  # fmt: skip
        self.connected = Gauge("oms_connected", "1 while the account's user stream is live", ["account"], registry=r)
        self.funding = Gauge(
            "oms_funding_payments", "Funding payments seen, by outcome (booked, published, duplicate, not_traded, "
            "bad_payment, venue_error, ...)", ["outcome"], registry=r,
        )  # fmt: skip
        self._readers: list[Callable[[DaemonMetrics], None]] = []

    def on_scrape(self, reader: Callable[[DaemonMetrics], None]) -> None:
        """Call ``reader(self)`` before each scrape, to set gauges from state held elsewhere."""
        self._readers.append(reader)

    def collect_gauges(self) -> None:
        for reader in self._readers:
            reader(self)

    def render(self) -> bytes:
        """The Prometheus text exposition of every metric."""
        self.collect_gauges()
        return generate_latest(self.registry)
