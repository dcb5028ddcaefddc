"""The key store's and the rotation listener's metrics as a Prometheus collector (the daemon's ``/metrics``).

    registry.register(KeyStoreCollector(lambda: store, lambda: listener))

Read at scrape time from the counters the store and the listener keep (``KeyStoreMetrics``,
``ListenerMetrics``), so the key lookup's hot path only adds one to an integer. Series (never a secret, not
even a fingerprint):

| metric | kind | labels |
|---|---|---|
| ``oms_keys_cache_hits_total`` / ``oms_keys_cache_misses_total`` | counter | component |
| ``oms_keys_vault_reads_total`` | counter | component |
| ``oms_keys_vault_errors_total`` | counter | component, reason (unreachable, denied, not_found, bad_secret, ...) |
| ``oms_keys_served_from_cache_total``, ``oms_keys_cache_errors_total`` | counter | component |
| ``oms_keys_degraded`` | gauge: 1 while keys come from the cache because Vault is unreachable | component |
| ``oms_keys_version``, ``oms_keys_age_seconds``, ``oms_keys_expires_in_seconds`` | gauge | exchange, account, market |
| ``oms_keys_rotations_total`` | counter | exchange, account, reason (rotate, rollback), outcome (switched, failed) |
| ``oms_keys_last_rotation_timestamp_seconds`` | gauge | exchange, account |
| ``oms_keys_checks_total`` | counter: periodic reads of the held keys | holder, outcome (ok, failed) |
| ``oms_keys_rotation_bad_messages_total`` | counter | holder |

A key provider without these counters (environment keys, the demo file) yields only the rotation series.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric

from oms.keys.rotation import KeyRotationListener
from oms.keys.store import KeyStoreMetrics

ERROR_REASONS = {
    "unreachable": "vault_unreachable",
    "denied": "vault_denied",
    "not_found": "not_found",
    "bad_secret": "bad_secrets",
    "withdraw_refused": "withdraw_refused",
}


class KeyStoreCollector:
    """A ``prometheus_client`` collector over one process's key store and rotation listener."""

    def __init__(
        self,
        store: Callable[[], object],
        listener: Callable[[], KeyRotationListener | None] = lambda: None,
        component: str = "daemon",
    ) -> None:
        self._store = store
        self._listener = listener
        self.component = component

    def describe(self) -> list[Metric]:
        return []  # series depend on what the store holds at scrape time

    def collect(self) -> Iterator[Metric]:
        store = self._store()
        m = getattr(store, "metrics", None)
        if isinstance(m, KeyStoreMetrics):
            yield from self._store_series(store, m)
        listener = self._listener()
        if listener is not None:
            yield from self._rotation_series(listener)

    def _counter(self, name: str, doc: str, value: int) -> CounterMetricFamily:
        c = CounterMetricFamily(name, doc, labels=["component"])
        c.add_metric([self.component], value)
        return c

    def _store_series(self, store, m: KeyStoreMetrics) -> Iterator[Metric]:
        yield self._counter("oms_keys_cache_hits", "Key lookups answered from memory within the TTL", m.cache_hits)
        yield self._counter("oms_keys_cache_misses", "Key lookups that had to read Vault", m.cache_misses)
        yield self._counter("oms_keys_vault_reads", "Reads of a key from Vault", m.vault_reads)
        errors = CounterMetricFamily(
            "oms_keys_vault_errors", "Vault reads that failed, by reason", labels=["component", "reason"]
        )
        for reason, attr in ERROR_REASONS.items():
            errors.add_metric([self.component, reason], getattr(m, attr))
        yield errors
        yield self._counter(
            "oms_keys_served_from_cache",
            "Keys served from memory or the encrypted cache while Vault was unreachable or sealed",
            m.served_from_cache,
        )
        yield self._counter("oms_keys_cache_errors", "Encrypted cache files refused or not written", m.cache_errors)
        degraded = GaugeMetricFamily(
            "oms_keys_degraded", "1 while keys are served from the cache because Vault is unreachable",
            labels=["component"],
        )  # fmt: skip
        degraded.add_metric([self.component], m.degraded)
        yield degraded
        held = store.held() if callable(getattr(store, "held", None)) else []
        labels = ["exchange", "account", "market"]
        version = GaugeMetricFamily("oms_keys_version", "Vault version of the key in use", labels=labels)
        age = GaugeMetricFamily("oms_keys_age_seconds", "Age of the key in use (since it was created)", labels=labels)
        expires = GaugeMetricFamily(
            "oms_keys_expires_in_seconds", "Time left before the key in use expires", labels=labels
        )
        now = time.time_ns()
        for c in sorted(held, key=lambda c: (c.exchange, c.account, c.market)):
            key = [c.exchange, c.account, c.market]
            version.add_metric(key, c.version)
            if c.created_ns:
                age.add_metric(key, max(0.0, (now - c.created_ns) / 1e9))
            if c.expires_ns:
                expires.add_metric(key, (c.expires_ns - now) / 1e9)
        yield version
        yield age
        yield expires

    def _rotation_series(self, listener: KeyRotationListener) -> Iterator[Metric]:
        lm = listener.metrics
        rotations = CounterMetricFamily(
            "oms_keys_rotations",
            "Key rotations this process was told of, by outcome",
            labels=["exchange", "account", "reason", "outcome"],
        )
        for (exchange, account, reason, outcome), n in sorted(lm.outcomes.items()):
            rotations.add_metric([exchange, account, reason, outcome], n)
        yield rotations
        last = GaugeMetricFamily(
            "oms_keys_last_rotation_timestamp_seconds",
            "When this process last switched the account to a new key (Unix time)",
            labels=["exchange", "account"],
        )
        for (exchange, account), ns in sorted(lm.last_switch_ns.items()):
            last.add_metric([exchange, account], ns / 1e9)
        yield last
        checks = CounterMetricFamily(
            "oms_keys_checks", "Periodic reads of the held keys, by outcome", labels=["holder", "outcome"]
        )
        checks.add_metric([listener.holder, "ok"], lm.checks - lm.check_failures)
        checks.add_metric([listener.holder, "failed"], lm.check_failures)
        yield checks
        bad = CounterMetricFamily(
            "oms_keys_rotation_bad_messages", "Rotation messages that could not be read", labels=["holder"]
        )
        bad.add_metric([listener.holder], lm.bad_messages)
        yield bad
