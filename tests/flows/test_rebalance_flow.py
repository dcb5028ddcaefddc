"""The rebalance flow end to end: the local exchange (Binance's wire, sub-account transfers), nats-server with
JetStream and a Prefect server. A dry run moves nothing; a run leaves every balance inside its rules with the
fewest transfers, records each in transfers.jsonl and on NATS; a rerun of the cycle moves no money twice; a
crash mid-way is in tests/scenarios/test_rebalance_crash.py."""

from __future__ import annotations

import asyncio
import json
import time
from decimal import Decimal

import pytest
from nats.js.errors import NotFoundError

from tests.flows.conftest import Desk, make_desk

FUNDS = {
    "main": "90000",  # 10000 under its minimum of 100000
    "sub_spot_arb": "25000",  # 15000 over its cap of 10000
    "sub_market_making": "1000",  # 4000 under the working level of 5000
    "sub_futures_basis": "60000",  # 10000 over the cap of 50000
    "sub_futures_trend": "3000",  # futures only: its USD-M wallet, 2000 under the working level
}


def check_rules(desk: Desk) -> None:
    b = desk.balances()
    assert b["main"] >= 100000
    assert b["sub_spot_arb"] <= 10000
    for name in ("sub_market_making", "sub_futures_basis", "sub_futures_trend"):
        assert Decimal(5000) <= b[name] <= 50000, name
    assert sum(b.values()) == sum(Decimal(v) for v in FUNDS.values())  # nothing lost, nothing made


def transfer_lines(desk: Desk) -> list[dict]:
    files = sorted((desk.data_dir / "transfers").rglob("transfers.jsonl"))
    return [json.loads(line) for f in files for line in f.read_text().splitlines() if line.strip()]


async def stream_subjects(nats_server) -> list[str]:
    nc = await nats_server.connect("reader")
    try:
        js = nc.jetstream()
        info = await js.stream_info("TRANSFERS")
        subjects = []
        for seq in range(info.state.first_seq, info.state.last_seq + 1):
            msg = await js.get_msg("TRANSFERS", seq)
            subjects.append(msg.subject)
        return subjects
    finally:
        await nc.close()


@pytest.fixture
def desk(venue, tmp_path, nats_server, prefect_server, clean_runs, monkeypatch) -> Desk:
    d = make_desk(venue, tmp_path, FUNDS, nats_server)
    for k, v in d.env.items():
        monkeypatch.setenv(k, v)
    return d


async def test_dry_run_then_run_then_rerun(desk: Desk, nats_server):
    from prefect.client.orchestration import get_client

    from flows.rebalance import rebalance

    venue_before = len(desk.venue.venue_transfers())
    args = {"config_dir": str(desk.config_dir), "keys_file": str(desk.keys_file), "cycle": "2026-12-01"}
    dry = await rebalance(dry_run=True, **args)
    assert len(dry["transfers"]) == 3 and dry["unmet"] == []
    assert len(desk.venue.venue_transfers()) == venue_before  # a dry run only reports
    assert desk.balances()["main"] == Decimal(90000)
    assert not (desk.data_dir / "rebalance").exists()

    done = await rebalance(**args)
    # arb's excess tops up market making in one move, basis's the futures-only trend account, basis then
    # covers the main account's shortfall: three transfers where four would go through the main account
    moves = [(t["from"], t["to"], t["amount"], t["outcome"]) for t in done["transfers"]]
    assert moves == [
        ("binance/sub_spot_arb", "binance/sub_market_making", "15000", "sent"),
        ("binance/sub_futures_basis", "binance/sub_futures_trend", "10000", "sent"),
        ("binance/sub_futures_basis", "binance/main", "10000", "sent"),
    ]
    assert [t["transfer_id"] for t in done["transfers"]] == [t["transfer_id"] for t in dry["transfers"]]
    check_rules(desk)
    assert desk.venue.balance(desk.ids["sub_futures_trend"], "usdm") == Decimal(13000)
    lines = transfer_lines(desk)
    assert [ln["transfer"]["transfer_id"] for ln in lines] == [t["transfer_id"] for t in done["transfers"]]
    assert all(ln["status"] == "done" and ln["venue_transfer_id"] for ln in lines)
    subjects = await stream_subjects(nats_server)
    expected = {"transfers.binance.sub_spot_arb.sub_market_making", "transfers.binance.sub_futures_basis.main",
                "transfers.binance.sub_futures_basis.sub_futures_trend"}  # fmt: skip
    assert expected <= set(subjects)
    published = len(subjects)

    again = await rebalance(**args)  # the same cycle again: every transfer is found in the venue's history
    assert [t["outcome"] for t in again["transfers"]] == ["found"] * 3
    assert len(desk.venue.venue_transfers()) == venue_before + 3
    assert len(transfer_lines(desk)) == 3  # recorded once
    assert len(await stream_subjects(nats_server)) == published  # JetStream kept each once (Nats-Msg-Id)
    check_rules(desk)

    fresh = await rebalance(**{**args, "cycle": "2026-12-02"})  # inside the rules: nothing to do
    assert fresh["transfers"] == [] and fresh["problems"] == []

    async with get_client() as client:
        art = await client.read_latest_artifacts()
        keys = {a.key for a in art}
    assert "rebalance-binance" in keys and "rebalance-binance-transfers" in keys


async def test_nats_down_fails_the_run_naming_it_and_the_rerun_publishes(desk: Desk, nats_server, monkeypatch):
    from flows.rebalance import RebalanceFailed, rebalance
    from oms.services import free_port

    args = {"config_dir": str(desk.config_dir), "keys_file": str(desk.keys_file), "cycle": "nats-down", "retries": 1}
    dead = f"nats://127.0.0.1:{free_port()}"
    monkeypatch.setenv("OMS_NATS_URL", dead)
    with pytest.raises(RebalanceFailed, match=f"cannot reach NATS at {dead}"):
        await rebalance(**args)
    check_rules(desk)  # the money moved (the exchange is the truth) and each transfer is on file
    assert len(transfer_lines(desk)) == 3
    monkeypatch.setenv("OMS_NATS_URL", nats_server.url)
    again = await rebalance(**args)
    assert [t["outcome"] for t in again["transfers"]] == ["found"] * 3
    ids = {t["transfer_id"] for t in again["transfers"]}
    nc = await nats_server.connect("reader")
    try:
        js = nc.jetstream()
        info = await js.stream_info("TRANSFERS")
        seen = set()
        for seq in range(info.state.first_seq, info.state.last_seq + 1):
            doc = json.loads((await js.get_msg("TRANSFERS", seq)).data)  # other tests' transfers share it
            seen.add((doc.get("transfer") or {}).get("transfer_id"))
    finally:
        await nc.close()
    assert ids <= seen and len(transfer_lines(desk)) == 3


async def test_one_main_key_reads_every_balance(desk: Desk, nats_server):
    """Every sub-account's key in the keys file is unknown to the venue: the balances come through the main
    key (Binance's master endpoints, Spot and USD-M wallets alike) and the rebalance moves the money."""
    from flows.rebalance import rebalance

    doc = json.loads(desk.keys_file.read_text())
    for row in doc["keys"]:
        if row["accountId"] != "main":
            row["apiKey"], row["secret"] = "not-a-key-of-" + row["accountId"], "not-a-secret"
    desk.keys_file.write_text(json.dumps(doc))
    args = {"config_dir": str(desk.config_dir), "keys_file": str(desk.keys_file), "cycle": "main-key-only"}
    dry = await rebalance(dry_run=True, **args)
    assert len(dry["transfers"]) == 3  # the same plan as with every key: the balances were read right
    done = await rebalance(**args)
    assert [t["outcome"] for t in done["transfers"]] == ["sent"] * 3 and done["problems"] == []
    check_rules(desk)


async def test_a_rerun_after_the_duplicate_window_publishes_nothing_again(desk: Desk, nats_server, monkeypatch):
    """JetStream forgets a Nats-Msg-Id after its duplicate window (1 s here): a rerun later than that finds
    each transfer event already on its subject and does not store it a second time."""
    import uuid

    import flows.rebalance as rb
    from oms.bus import BusSettings

    monkeypatch.setattr(rb, "BUS", BusSettings(duplicate_window_s=1.0))
    nc = await nats_server.connect("flows")
    try:  # a stream created with this window: one the earlier tests made with an hour's keeps their ids' purge
        await nc.jetstream().delete_stream("TRANSFERS")  # timer (nats-server purges on it), so a probe never ends
    except NotFoundError:
        pass
    finally:
        await nc.close()
    args = {"config_dir": str(desk.config_dir), "keys_file": str(desk.keys_file), "cycle": "late-rerun"}
    done = await rb.rebalance(**args)
    ids = {t["transfer_id"] for t in done["transfers"]}
    assert len(ids) == 3

    nc = await nats_server.connect("flows")
    try:
        js = nc.jetstream()
        probe, hdr = "transfers.binance.probe.window", {"Nats-Msg-Id": f"probe-{uuid.uuid4()}"}
        assert not (await js.publish(probe, b"1", headers=hdr)).duplicate
        deadline = time.monotonic() + 30
        while (await js.publish(probe, b"1", headers=hdr)).duplicate:  # until JetStream has forgotten the id
            assert time.monotonic() < deadline, "JetStream still knows the probe's id 30 s after a 1 s window"
            await asyncio.sleep(0.1)
    finally:
        await nc.close()

    again = await rb.rebalance(**args)
    assert [t["outcome"] for t in again["transfers"]] == ["found"] * 3
    nc = await nats_server.connect("reader")
    try:
        js = nc.jetstream()
        info = await js.stream_info("TRANSFERS")
        stored = []
        for seq in range(info.state.first_seq, info.state.last_seq + 1):
            doc = json.loads((await js.get_msg("TRANSFERS", seq)).data)  # the probes' bodies are numbers
            stored.append((doc.get("transfer") or {}).get("transfer_id") if isinstance(doc, dict) else None)
    finally:
        await nc.close()
    assert sorted(t for t in stored if t in ids) == sorted(ids)  # each once
