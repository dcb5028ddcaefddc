"""The ``rebalance`` flow: move money between the main account and its sub-accounts by ``balance_rules``.

Tasks, in order (each with retries and back-off):

1. ``read-balances``: the asset's free balance of the main account and of every sub-account, from the
   exchange, all with the main account's key through its connector (``ExecutionClient.sub_account_balances``,
   Binance's master endpoints; a venue without them, ``capabilities.sub_account_balances`` off: each
   sub-account's own key); a sub-account's wallet is Spot, or USD-M when it trades
   futures only;
2. ``plan-transfers``: the fewest transfers that satisfy the rules (``flows.rebalance_plan``, pure);
3. the plan is written to ``data/rebalance/{exchange}/{cycle}.json`` before anything moves; a rerun of the
   same cycle (after a crash) resumes that plan instead of planning again;
4. ``execute-transfer`` per transfer, through the main account's sub-account transfer API (Binance
   ``POST /sapi/v1/sub-account/universalTransfer``). Each transfer has a deterministic id (from the exchange,
   cycle, position, accounts, asset and amount), sent as the venue's idempotency key (``clientTranId``) and
   looked up in the venue's transfer history first: a transfer the venue already has (done before a crash, or
   sent when the answer never came) is recorded, never sent again;
5. each transfer is recorded once in ``data/transfers/YYYY/MM/transfers.jsonl`` and published on
   ``transfers.{exchange}.{from}.{to}`` (JetStream, ``Nats-Msg-Id`` from its id; an event the stream already
   holds is looked up on its subject and not sent again, so a rerun stores it once even after JetStream's
   duplicate window);
6. ``read-balances`` again, and every rule is checked on what the exchange now says.

``dry_run`` stops after step 2 and only reports. A markdown artifact shows balances before, planned and after,
every transfer with its id and outcome, and anything the rules could not get (not enough money).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

from nats.js.errors import NotFoundError
from prefect import flow, get_run_logger, task
from prefect.artifacts import acreate_markdown_artifact, acreate_table_artifact
from prefect.cache_policies import NO_CACHE
from prefect.runtime import flow_run

from flows.rebalance_plan import Plan, PlannedTransfer, SubAccount, check_after, from_units, plan_rebalance, to_units
from oms.archive.layout import Layout
from oms.archive.logs import LogWriter, iter_log
from oms.archive.report import FileResult
from oms.bus import BusSettings, EventPublisher, NatsClientSettings, Outbox, connect_as, ensure_streams, msg_id
from oms.bus.streams import stream_name
from oms.bus.subjects import subject_of
from oms.config import Config, load_config
from oms.keys.factory import open_store
from oms.keys.local import DemoKeysFile
from oms.keys.provider import KeyNotFound, KeyProvider
from oms.keys.redact import install_redaction
from oms.model import Balance, Market, Transfer, TransferEvent, TransferKind, TransferStatus
from oms.venues.factory import VenueFactory

log = logging.getLogger("flows.rebalance")
BUS = BusSettings()  # the streams' settings (retention, duplicate window) the flow ensures before publishing


class RebalanceFailed(Exception):
    """The rebalance could not do what its plan said (the message names the account, transfer and cause)."""


@dataclass
class Accounts:
    """The exchange's main account and sub-accounts with their rules (units of 1e-8 of the asset)."""

    exchange: str
    asset: str
    main: str
    min_main: int
    subs: dict[str, SubAccount]  # balance 0 here: the rules only
    markets: dict[str, Market]  # the wallet rebalanced per account

    @classmethod
    def from_config(cls, cfg: Config, exchange: str, asset: str) -> Accounts:
        if exchange not in cfg.accounts:
            raise RebalanceFailed(f"exchange {exchange!r} has no accounts in {Path(cfg.dir) / 'accounts.yaml'}")
        rules = cfg.routing.balance_rules
        accounts = cfg.accounts[exchange]
        main = next(n for n, a in accounts.items() if a.type == "main")
        subs, markets = {}, {main: Market.SPOT}
        for name, a in accounts.items():
            if a.type != "sub" or a.parent != main:
                continue
            cap = a.max_balance_usdt if a.max_balance_usdt is not None else rules.max_sub_balance
            working = a.working_balance_usdt if a.working_balance_usdt is not None else rules.sub_working_balance
            subs[name] = SubAccount(name, 0, to_units(cap, f"cap of {name}"), to_units(working, f"level of {name}"))
            markets[name] = Market.SPOT if a.spot_enabled else Market.USDM
        return cls(exchange, asset, main, to_units(rules.min_main_balance, "min_main_balance"), subs, markets)

    def with_balances(self, balances: dict[str, int]) -> list[SubAccount]:
        return [SubAccount(n, balances[n], s.cap, s.working) for n, s in self.subs.items()]


@dataclass
class Runner:
    """What every task of one run uses: the accounts, the venue clients and where files and events go."""

    cfg: Config
    accounts: Accounts
    factory: VenueFactory = field(repr=False)
    data_dir: Path
    nats: NatsClientSettings  # the `flows` identity

    @property
    def main_market(self) -> Market:
        return self.accounts.markets[self.accounts.main]


def _backoff(retries: int) -> list[float]:
    return [min(2.0**i, 30.0) for i in range(max(retries, 1))]


def transfer_id(exchange: str, cycle: str, index: int, t: PlannedTransfer, asset: str) -> str:
    """The deterministic id of a planned transfer (Binance's ``clientTranId``: at most 64 characters)."""
    digest = hashlib.sha256(f"{exchange}|{cycle}|{index}|{t.source}|{t.dest}|{asset}|{t.amount}".encode())
    return f"oms-rb-{digest.hexdigest()[:24]}"


def plan_path(data_dir: Path, exchange: str, cycle: str) -> Path:
    return data_dir / "rebalance" / exchange / f"{cycle}.json"


# ------------------------------------------------------------------------------------------------ tasks
@task(name="read-balances", cache_policy=NO_CACHE, persist_result=False)
async def read_balances(r: Runner) -> dict[str, int]:
    """Free balance of the asset per account, as the exchange has it now: the main account's with its key,
    every sub-account's with the main key too where its connector reads sub-accounts
    (``capabilities.sub_account_balances``), else with the sub-account's own key."""
    a = r.accounts
    main = await r.factory.account_clients(a.exchange, a.main, r.main_market)
    out = {a.main: _units(_free(await main.execution.balances(), a.asset), a, a.main)}
    master = main.execution.capabilities.sub_account_balances
    refs = r.factory.account_refs(a.exchange) if master else {}
    for name, market in a.markets.items():
        if name == a.main:
            continue
        if master:
            if name not in refs:
                raise RebalanceFailed(f"no venue id (email) known for {a.exchange}/{name}: cannot read its balance")
            rows = await main.execution.sub_account_balances(name, market)
        else:
            rows = await (await r.factory.account_clients(a.exchange, name, market)).execution.balances()
        out[name] = _units(_free(rows, a.asset), a, name)
    return out


def _free(rows: list[Balance], asset: str) -> Decimal:
    return next((Decimal(b.free) for b in rows if b.asset == asset), Decimal(0))


def _units(free: Decimal, a: Accounts, name: str) -> int:
    return to_units(free.quantize(Decimal("0.00000001")), f"{a.asset} balance of {a.exchange}/{name}")


@task(name="plan-transfers", cache_policy=NO_CACHE, persist_result=False)
def plan_transfers(accounts: Accounts, balances: dict[str, int]) -> Plan:
    return plan_rebalance(accounts.main, balances[accounts.main], accounts.min_main, accounts.with_balances(balances))


@task(name="execute-transfer", cache_policy=NO_CACHE, persist_result=False)
async def execute_transfer(r: Runner, t: Transfer) -> tuple[TransferEvent, str]:
    """Send ``t`` unless the venue's history already has it; returns the event and ``sent`` or ``found``."""
    main = await r.factory.account_clients(r.accounts.exchange, r.accounts.main, r.main_market)
    found = await main.execution.find_transfer(t)
    if found is not None:
        if found.status is not TransferStatus.DONE:
            raise RebalanceFailed(f"transfer {t.transfer_id} ({t.from_account} -> {t.to_account}): {found.reason}")
        return found, "found"
    ev = await main.execution.transfer(t)
    if ev.status is not TransferStatus.DONE:  # unknown outcome: the retry looks it up in the history first
        raise RebalanceFailed(f"transfer {t.transfer_id} ({t.from_account} -> {t.to_account}): {ev.status} {ev.reason}")
    return ev, "sent"


async def stored_ids(js, stream: str, subjects: set[str]) -> set[str]:
    """The ``Nats-Msg-Id`` of every message the stream holds on ``subjects`` (each looked up by subject, message
    after message: a rebalance's few transfers a day per pair of accounts, kept 30 days)."""
    found: set[str] = set()
    for subject in sorted(subjects):
        seq = 1
        while True:
            try:
                msg = await js.get_msg(stream, seq, subject=subject, next=True)
            except NotFoundError:
                break
            if msg.headers and msg.headers.get("Nats-Msg-Id"):
                found.add(msg.headers["Nats-Msg-Id"])
            seq = msg.seq + 1
    return found


@task(name="publish-transfers", cache_policy=NO_CACHE, persist_result=False)
async def publish_transfers(r: Runner, events: list[TransferEvent]) -> int:
    """Publish the events on ``transfers.{exchange}.{from}.{to}``, each once: JetStream drops a repeat of a
    ``Nats-Msg-Id`` only within its duplicate window, so an event the stream already holds (a rerun hours or
    days later) is looked up on its subject first and not sent again. Anything NATS does not confirm waits in
    the outbox (``data/outbox/rebalance``) for the next run. Returns how many were published."""
    try:
        nc = await connect_as(r.nats, connect_timeout=5, max_reconnect_attempts=2, allow_reconnect=True)
    except Exception as exc:
        raise RebalanceFailed(f"cannot reach NATS at {r.nats.url} to publish the transfers: {exc}") from None
    try:
        js = nc.jetstream()
        await ensure_streams(js, BUS)
        have = await stored_ids(js, stream_name("transfers"), {subject_of(ev) for ev in events})
        fresh = [ev for ev in events if msg_id(ev) not in have]
        async with EventPublisher(nc, Outbox(r.data_dir / "outbox" / "rebalance")) as pub:
            for ev in fresh:
                await pub.publish(ev)
            if not await pub.flush(15):
                raise RebalanceFailed(f"NATS at {r.nats.url} did not confirm the transfers (kept in the outbox)")
            return len(fresh)
    finally:
        await nc.close()


# ------------------------------------------------------------------------------------------------ files
def _recorded_ids(layout: Layout, now: datetime) -> set[str]:
    """Ids of the transfers already in the transfer logs of this month and the previous one."""
    ids: set[str] = set()
    for d in (now, now.replace(day=1) - timedelta(days=1)):
        path = layout.transfers(d.year, d.month)
        if path.exists():
            result = FileResult(str(path), "transfers")
            for _, msg in iter_log(path, "transfers", result):
                if isinstance(msg, TransferEvent) and msg.status is TransferStatus.DONE:
                    ids.add(msg.transfer.transfer_id)
            for rej in result.rejections:
                log.warning("transfer log %s: %s", path, rej)
    return ids


def _save_plan(path: Path, cycle: str, plan: Plan, transfers: list[Transfer], asset: str) -> None:
    doc = {
        "cycle": cycle,
        "asset": asset,
        "before": {k: from_units(v) for k, v in plan.before.items()},
        "after": {k: from_units(v) for k, v in plan.after.items()},
        "unmet": list(plan.unmet),
        "transfers": [
            {"transfer_id": t.transfer_id, "from_account": t.from_account, "to_account": t.to_account,
             "from_market": t.from_market.value, "to_market": t.to_market.value, "asset": t.asset,
             "amount": t.amount, "reason": p.reason}
            for t, p in zip(transfers, plan.transfers, strict=True)
        ],
    }  # fmt: skip
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(doc, indent=2))
    os.replace(tmp, path)


def _load_plan(path: Path) -> tuple[dict, list[Transfer]]:
    try:
        doc = json.loads(path.read_text())
        transfers = [
            Transfer(transfer_id=t["transfer_id"], from_account=t["from_account"], to_account=t["to_account"],
                     asset=t["asset"], amount=t["amount"], from_market=Market(t["from_market"]),
                     to_market=Market(t["to_market"]), kind=TransferKind.SUB_ACCOUNT)
            for t in doc["transfers"]
        ]  # fmt: skip
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise RebalanceFailed(f"the saved plan {path} is unreadable ({exc!r}); move it away to plan again") from None
    return doc, transfers


def _to_transfers(a: Accounts, cycle: str, plan: Plan) -> list[Transfer]:
    now = time.time_ns()
    return [
        Transfer(transfer_id=transfer_id(a.exchange, cycle, i, p, a.asset), from_account=f"{a.exchange}/{p.source}",
                 to_account=f"{a.exchange}/{p.dest}", asset=a.asset, amount=from_units(p.amount),
                 from_market=a.markets[p.source], to_market=a.markets[p.dest], kind=TransferKind.SUB_ACCOUNT,
                 requested_ns=now)
        for i, p in enumerate(plan.transfers)
    ]  # fmt: skip


# ------------------------------------------------------------------------------------------------ report
async def _artifact(a: Accounts, cycle: str, dry_run: bool, before: dict, planned: dict, after: dict | None,
              rows: list[dict], unmet: list[str], problems: list[str]) -> None:  # fmt: skip
    head = "dry run: nothing moved" if dry_run else f"{len(rows)} transfer(s)"
    lines = [f"# Rebalance of {a.exchange} ({a.asset}), cycle {cycle}: {head}", "",
             "| account | cap | working level | before | planned | after |", "|---|---|---|---|---|---|"]  # fmt: skip
    for name in a.markets:
        rule = a.subs.get(name)
        cap = from_units(rule.cap) if rule else "-"
        level = from_units(rule.working) if rule else f"min {from_units(a.min_main)}"
        now = after.get(name, "-") if after else "-"
        lines.append(f"| {name} | {cap} | {level} | {before.get(name, '-')} | {planned.get(name, '-')} | {now} |")
    if rows:
        lines += ["", "| transfer id | from | to | amount | outcome | venue id | reason |", "|" + "---|" * 7]
        lines += [f"| `{r['transfer_id']}` | {r['from']} | {r['to']} | {r['amount']} | {r['outcome']} | "
                  f"{r['venue_id']} | {r['reason']} |" for r in rows]  # fmt: skip
    if unmet:
        lines += ["", "## Not met (not enough money)", "", *[f"- {u}" for u in unmet]]
    if problems:
        lines += ["", "## Rules broken after the transfers", "", *[f"- {p}" for p in problems]]
    key = f"rebalance-{a.exchange}".replace("_", "-").lower()
    await acreate_markdown_artifact("\n".join(lines), key=key, description=f"rebalance of {a.exchange}, cycle {cycle}")
    if rows:
        await acreate_table_artifact(rows, key=f"{key}-transfers", description=f"transfers of cycle {cycle}")


def _key_provider(cfg: Config, keys_file: str | None) -> KeyProvider:
    return DemoKeysFile(keys_file) if keys_file else open_store(cfg, "daemon")


def _account_refs(keys: KeyProvider, a: Accounts) -> dict[str, str]:
    """The venue's own id (Binance: the email) of every account, from the key provider."""
    refs: dict[str, str] = {}
    email = getattr(keys, "email", None)
    for name, market in a.markets.items():
        ref = email(name) if callable(email) else None
        if not ref:
            try:  # a sub-account's Vault entry carries its email even where its key is not needed
                ref = keys.get(a.exchange, market.value, name).venue_account  # type: ignore[arg-type]
            except KeyNotFound:
                continue  # named by whatever needs it (reading the balance, a transfer)
        if ref:
            refs[name] = ref
    return refs


def _cycle(cycle: str | None) -> str:
    if cycle:
        if not all(c.isalnum() or c in "-_T:" for c in cycle):
            raise RebalanceFailed(f"cycle {cycle!r}: use letters, digits, '-', '_', ':' or 'T' (e.g. 2026-12-01)")
        return cycle.replace(":", "")
    when = flow_run.scheduled_start_time or datetime.now(UTC)
    return when.astimezone(UTC).strftime("%Y-%m-%d")


@flow(name="rebalance", persist_result=False, log_prints=False)
async def rebalance(
    exchange: str = "binance",
    asset: str = "USDT",
    dry_run: bool = False,
    cycle: str | None = None,
    config_dir: str | None = None,
    keys_file: str | None = None,
    retries: int = 3,
) -> dict:
    """Rebalance ``exchange``'s main and sub-accounts by ``balance_rules`` (configs/accounts.yaml).

    ``dry_run``: plan and report only. ``cycle``: the plan's name (default: the run's scheduled UTC date), so a
    rerun of a crashed run resumes its plan and moves no money twice; give a new one to rebalance again the
    same day. ``keys_file``: read keys from a local-exchange demo-keys file instead of Vault (``oms-daemon``
    AppRole). ``retries``: per task, with back-off (1, 2, 4... s). Returns the cycle, the transfers with their
    outcomes, what stays unmet, and any rule still broken.
    """
    install_redaction()
    logger = get_run_logger()
    cfg = load_config(config_dir)
    cyc = _cycle(cycle)
    accounts = Accounts.from_config(cfg, exchange, asset)
    keys = _key_provider(cfg, keys_file)
    factory = VenueFactory(cfg, keys, account_refs={exchange: _account_refs(keys, accounts)})
    r = Runner(cfg, accounts, factory, cfg.data_dir(), NatsClientSettings.from_config(cfg, "flows"))
    retry = {"retries": retries, "retry_delay_seconds": _backoff(retries)}
    try:
        before = await read_balances.with_options(**retry)(r)
        saved = plan_path(r.data_dir, exchange, cyc)
        if saved.exists() and not dry_run:
            doc, transfers = _load_plan(saved)
            logger.info("resuming the plan of cycle %s (%s): %d transfer(s)", cyc, saved, len(transfers))
            planned, unmet, reasons = doc["after"], doc["unmet"], [t["reason"] for t in doc["transfers"]]
        else:
            plan = plan_transfers(accounts, before)
            transfers = _to_transfers(accounts, cyc, plan)
            planned = {k: from_units(v) for k, v in plan.after.items()}
            unmet, reasons = list(plan.unmet), [p.reason for p in plan.transfers]
            if not dry_run:
                _save_plan(saved, cyc, plan, transfers, asset)
        shown_before = {k: from_units(v) for k, v in before.items()}
        rows = [
            {"transfer_id": t.transfer_id, "from": t.from_account, "to": t.to_account, "amount": t.amount,
             "outcome": "planned", "venue_id": "", "reason": why}
            for t, why in zip(transfers, reasons, strict=True)
        ]  # fmt: skip
        for u in unmet:
            logger.warning("rebalance of %s: %s", exchange, u)
        if dry_run:
            await _artifact(accounts, cyc, True, shown_before, planned, None, rows, unmet, [])
            return {"cycle": cyc, "dry_run": True, "transfers": rows, "unmet": unmet, "problems": []}

        layout = Layout(r.data_dir)
        recorded = _recorded_ids(layout, datetime.now(UTC))
        events: list[TransferEvent] = []
        with LogWriter(layout, fsync=True) as writer:
            for t, row in zip(transfers, rows, strict=True):
                ev, outcome = await execute_transfer.with_options(**retry)(r, t)
                row.update(outcome=outcome, venue_id=ev.venue_transfer_id or "")
                if t.transfer_id not in recorded:
                    writer.append(ev)
                    recorded.add(t.transfer_id)
                events.append(ev)
                logger.info("%s %s: %s -> %s %s %s", outcome, t.transfer_id, t.from_account, t.to_account,
                            t.amount, t.asset)  # fmt: skip
        if events:
            await publish_transfers.with_options(**retry)(r, events)
        after = await read_balances.with_options(**retry)(r)
        problems = check_after(accounts.main, accounts.min_main, accounts.with_balances(after), after)
        expected = [p for p in problems if not any(p.split(" has ")[0] == u.split(" stays ")[0] for u in unmet)]
        await _artifact(accounts, cyc, False, shown_before, planned, {k: from_units(v) for k, v in after.items()},
                  rows, unmet, problems)  # fmt: skip
        if expected:
            raise RebalanceFailed(f"after the transfers of cycle {cyc}: {'; '.join(expected)}")
        return {"cycle": cyc, "dry_run": False, "transfers": rows, "unmet": unmet, "problems": problems}
    finally:
        await factory.close()
