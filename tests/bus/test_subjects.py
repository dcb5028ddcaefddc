"""Subjects follow the documented layout, tokens are exact inverses, and message ids ignore receive time."""

from __future__ import annotations

import msgspec
import pytest
from hypothesis import given
from hypothesis import strategies as st

from oms.bus import (
    SubjectError,
    command_subject,
    kill_switch_subject,
    md_subject,
    msg_id,
    parse_symbol_token,
    risk_subject,
    subject_of,
    symbol_token,
    transfer_subject,
)
from oms.model import (
    Balance,
    BalanceEvent,
    InstrumentId,
    Market,
    Position,
    PositionEvent,
    Transfer,
    TransferEvent,
    TransferStatus,
)
from tests.bus.conftest import fill, order_event


def test_event_subjects():
    assert subject_of(fill(1)) == "trades.binance.sub_mm.spot.BTC-USDT"
    assert subject_of(order_event(1)) == "orders.binance.sub_mm.usdm.BTC-USDT"
    pos = PositionEvent(
        account="binance/sub_futures_trend",
        positions=(Position(account="binance/sub_futures_trend", symbol="ETH/USDT:USDT", qty="-2"),),
        event_ns=1,
    )
    assert subject_of(pos) == "positions.binance.sub_futures_trend.usdm"
    bal = BalanceEvent(
        account="binance/main",
        market=Market.SPOT,
        balances=(Balance(account="binance/main", market=Market.SPOT, asset="USDT", free="1"),),
        event_ns=1,
    )
    assert subject_of(bal) == "balances.binance.main.spot"
    t = Transfer(transfer_id="t1", from_account="binance/main", to_account="binance/sub_mm", asset="USDT", amount="5")
    assert subject_of(TransferEvent(transfer=t, status=TransferStatus.DONE, event_ns=1)) == (
        "transfers.binance.main.sub_mm"
    )
    assert risk_subject("binance/sub_mm") == "risk.binance.sub_mm"
    assert md_subject("binance", "usdm", "BTC/USDT:USDT") == "md.binance.usdm.BTC-USDT"
    assert command_subject("binance", "sub_mm") == "cmd.order.binance.sub_mm"
    assert kill_switch_subject("halt") == "cmd.halt"
    assert kill_switch_subject("reduce_only", "binance/main") == "cmd.reduce_only.binance.main"


def test_bad_subjects_are_refused_with_a_reason():
    with pytest.raises(SubjectError, match="not a NATS subject token"):
        command_subject("binance", "a.b")
    with pytest.raises(SubjectError, match="kill switch action"):
        kill_switch_subject("pause")
    with pytest.raises(SubjectError, match="expected BASE-QUOTE"):
        parse_symbol_token("BTCUSDT", "spot")
    with pytest.raises(SubjectError, match="different exchanges"):
        transfer_subject("binance/main", "bybit/main")
    with pytest.raises(SubjectError, match="no event subject"):
        subject_of(Balance(account="binance/main", market=Market.SPOT, asset="USDT", free="1"))


asset = st.text(alphabet=st.characters(whitelist_categories=("Lu", "Nd")), min_size=1, max_size=8)


@given(asset, asset, st.sampled_from(["spot", "usdm"]))
def test_symbol_tokens_are_exact_inverses(base, quote, market):
    ins = InstrumentId(base, quote, quote if market == "usdm" else "")
    assert parse_symbol_token(symbol_token(ins), market) == ins


def test_message_ids_ignore_receive_time_and_tell_events_apart():
    a = fill(7)
    assert msg_id(a) == msg_id(msgspec.structs.replace(a, recv_ns=a.recv_ns + 999))
    assert msg_id(a) == "fill:binance/sub_mm:BTC/USDT:7"
    assert msg_id(fill(7)) != msg_id(fill(8))
    e = order_event(3)
    assert msg_id(e) == msg_id(msgspec.structs.replace(e, recv_ns=12345))
    assert msg_id(e) != msg_id(msgspec.structs.replace(e, price="70001"))
