"""The daemon's reconciliation hook: ``Daemon`` awaits ``reconcile_session`` before an account trades, at start
and after every user-stream gap (``reason`` ``start`` / ``reconnect``).

One ``Reconciler`` per daemon (so one ``WeightPacer`` holds every account's calls within the IP budget),
publishing through the daemon's event sink (JetStream, the daily files, the metrics). The targets are the
account's markets with the daemon's symbols of each; ``pending`` are the account's orders the gateway still
has without an answer (``pending_new`` / ``unknown``), so they are settled by client order id and never
re-sent; the kernel's cash is the account's configured ``cash_assets`` (configs/accounts.yaml). An account whose
reconciliation fails raises ``ReconcileFailed``, and the daemon does not trade it.

An account whose cash is a coin (``cash_assets: [BTC]``) is valued in USDT at the coin's rate
(``stream.coin_cash``): its reconciliation first waits up to ``OMS_RECONCILE_RATE_WAIT_S`` (10 s) for the mark of
the coin's USDT pair (a daemon just started may not have one yet); without one it fails, naming the pair, and the
account does not trade; then, once the mark exists, it is reconciled again (reason ``cash rate``) and trades. A pair
that is not an instrument of the daemon fails at once (nothing will bring its mark).
``OMS_RECONCILE_LOOKBACK_S`` and ``OMS_RECONCILE_GRACE_S`` override the fill lookback and the grace window.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
import weakref
from typing import TYPE_CHECKING

from oms.model import OrderStatus
from stream.coin_cash import CoinCash, NoCashRate, is_coin
from stream.reconcile import Reconciler, ReconcileTarget

if TYPE_CHECKING:  # the daemon imports this module: annotations only
    from stream.accounts import AccountSession
    from stream.daemon import Daemon

log = logging.getLogger("stream.reconcile")
LOOKBACK_S = 86_400.0  # fills are fetched this far back where JetStream has none (OMS_RECONCILE_LOOKBACK_S)
GRACE_S = 5.0  # an order the venue does not show is given this long (OMS_RECONCILE_GRACE_S)
RATE_WAIT_S = 10.0  # a coin cash's rate is waited for this long before the account is refused
RATE_POLL_S = 0.05  # how often the rate is looked for meanwhile
_UNSETTLED = (OrderStatus.PENDING_NEW, OrderStatus.UNKNOWN)
_reconcilers: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
_waiting: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()  # daemon -> accounts waiting for a cash rate


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
            coins=coins_of(daemon),
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
        out.append(ReconcileTarget(link.clients.execution, symbols, pending, cash_assets_of(daemon, session)))
    return out


def coins_of(daemon: Daemon) -> CoinCash | None:
    return daemon.risk.coins if daemon.risk is not None else None


def cash_assets_of(daemon: Daemon, session: AccountSession) -> tuple[str, ...]:
    return daemon.cfg.account(session.account.exchange, session.account.name).cash_assets


async def _no_rate(coins: CoinCash | None, exchange: str, coin: str, wait_s: float | None) -> NoCashRate | None:
    """None once the coin has a USDT rate; else why not, after ``wait_s`` (None: as long as it takes), or at once
    when nothing will bring one (its pair is not an instrument of the daemon)."""
    if coins is None:
        return NoCashRate(f"the {coin} cash cannot be valued in USDT: the daemon has no quote rates")
    deadline = None if wait_s is None else time.monotonic() + wait_s
    while True:
        try:
            coins.rate(exchange, coin)
            return None
        except NoCashRate as exc:
            if not exc.waiting or deadline is not None and time.monotonic() >= deadline:
                return exc
        await asyncio.sleep(RATE_POLL_S)


async def _when_priced(daemon: Daemon, session: AccountSession, coin: str) -> None:
    """Reconcile ``session`` again once its coin cash has a rate (the daemon's stop cancels the wait)."""
    try:
        await _no_rate(coins_of(daemon), session.account.exchange, coin, None)
    finally:
        _waiting.get(daemon, set()).discard(session.name)
    if not session.trading and session.lease is not None and not daemon._stopping:
        await daemon._reconcile(session, "cash rate")


async def reconcile_session(daemon: Daemon, session: AccountSession, reason: str) -> None:
    assets = cash_assets_of(daemon, session)
    if len(assets) == 1 and is_coin(assets[0]):
        wait_s = _env_float("OMS_RECONCILE_RATE_WAIT_S", RATE_WAIT_S)
        missing = await _no_rate(coins_of(daemon), session.account.exchange, assets[0], wait_s)
        if missing is not None:
            why = str(missing)
            waiting = _waiting.setdefault(daemon, set())
            if missing.waiting and session.name not in waiting:  # its mark will come: reconciled again then
                waiting.add(session.name)
                task = asyncio.get_running_loop().create_task(
                    _when_priced(daemon, session, assets[0]), name=f"cash rate {session.name}"
                )
                daemon._tasks.append(task)
            if missing.waiting:
                why += f" after {wait_s:g} s; reconciled again when it comes"
            raise ReconcileFailed(f"{session.name}: {why}")
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
