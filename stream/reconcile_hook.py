"""The daemon's reconciliation hook: ``Daemon`` awaits ``reconcile_session`` before an account trades, at start
and after every user-stream gap (``reason`` ``start`` / ``reconnect``).

One ``Reconciler`` per daemon (so one ``WeightPacer`` holds every account's calls within the IP budget),
publishing through the daemon's event sink (JetStream, the daily files, the metrics). The targets are the
account's markets with the daemon's symbols of each; ``pending`` are the account's orders the gateway still
has without an answer (``pending_new`` / ``unknown``), so they are settled by client order id and never
re-sent. An account whose reconciliation fails raises ``ReconcileFailed``, and the daemon does not trade it.
``OMS_RECONCILE_LOOKBACK_S`` and ``OMS_RECONCILE_GRACE_S`` override the fill lookback and the grace window.
"""

from __future__ import annotations

import logging
import os
import weakref
from typing import TYPE_CHECKING

from oms.model import OrderStatus
from stream.reconcile import Reconciler, ReconcileTarget

if TYPE_CHECKING:  # the daemon imports this module: annotations only
    from stream.accounts import AccountSession
    from stream.daemon import Daemon

log = logging.getLogger("stream.reconcile")
LOOKBACK_S = 86_400.0  # fills are fetched this far back where JetStream has none (OMS_RECONCILE_LOOKBACK_S)
GRACE_S = 5.0  # an order the venue does not show is given this long (OMS_RECONCILE_GRACE_S)
_UNSETTLED = (OrderStatus.PENDING_NEW, OrderStatus.UNKNOWN)
_reconcilers: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


class ReconcileFailed(RuntimeError):
    """An account could not be reconciled (the reports' errors name the market and the cause)."""


def _env_float(name: str, default: float) -> float:
    text = os.environ.get(name)
    if text is None:
        return default
    try:
        value = float(text)
    except ValueError:
        raise ValueError(f"{name}={text!r}: expected a number of seconds") from None
    if value < 0:
        raise ValueError(f"{name}={text!r}: must not be negative")
    return value


def reconciler_of(daemon: Daemon) -> Reconciler:
    r = _reconcilers.get(daemon)
    if r is None:
        assert daemon.nc is not None and daemon.publisher is not None and daemon.sink is not None
        r = Reconciler(
            daemon.gateway, daemon.nc.jetstream(), daemon.publisher, daemon.live, emit=daemon.sink.emit,
            lookback_s=_env_float("OMS_RECONCILE_LOOKBACK_S", LOOKBACK_S),
            grace_s=_env_float("OMS_RECONCILE_GRACE_S", GRACE_S),
        )  # fmt: skip
        _reconcilers[daemon] = r
    return r


def targets_of(daemon: Daemon, session: AccountSession) -> list[ReconcileTarget]:
    out = []
    for market, link in session.links.items():
        symbols = tuple(daemon.plan.symbols.get((session.account.exchange, market), ()))
        pending = tuple(
            (rec.cmd.symbol, rec.client_order_id)
            for rec in daemon.gateway.orders.open_orders(session.number)
            if rec.status in _UNSETTLED and rec.cmd.symbol in symbols
        )
        if daemon.emulation is not None:  # parent children recorded before sending: a crash may follow the frame
            pending += daemon.emulation.unsent_for(session.name, symbols)
        out.append(ReconcileTarget(link.clients.execution, symbols, pending))
    return out


async def reconcile_session(daemon: Daemon, session: AccountSession, reason: str) -> None:
    reports = await reconciler_of(daemon).run(targets_of(daemon, session))
    for rep in reports:
        log.info(
            "account %s %s reconciled (%s) in %.2f s: %d adopted, %d resolved, %d new fill(s), %d event(s)%s",
            rep.account, rep.market, reason, rep.duration_s, len(rep.adopted), len(rep.resolved), rep.fills_new,
            rep.events, f"; failed: {rep.error}" if rep.error else "", extra={"account": rep.account},
        )  # fmt: skip
    for rep in reports:  # the session's balances as just read (health, live state)
        if rep.ok:
            market = next(m for m in session.links if m.value == rep.market)
            session.set_balances(market, list(rep.balances), replace=True)
    failed = [f"{r.market}: {r.error}" for r in reports if not r.ok]
    if failed:
        raise ReconcileFailed(f"{session.name}: " + "; ".join(failed))
