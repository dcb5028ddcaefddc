"""The order-command envelope: valid requests parse, every kind of bad one is refused with its code, and a
reply travels over real NATS request/reply."""

from __future__ import annotations

import json
import typing

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from oms.bus import command_subject
from oms.model import CancelAll, OrderType, PlaceOrder, Side
from oms.model.commands import (
    MAX_BATCH,
    MAX_REQUEST_BYTES,
    CommandError,
    CommandReply,
    CommandRequest,
    CommandResult,
    _fast_decode,
    _FastPlace,
    _FastRequest,
    decode_reply,
    encode_reply,
    encode_request,
    parse_request,
)

ACC = "binance/sub_mm"


def place(n: int = 0, account: str = ACC) -> PlaceOrder:
    return PlaceOrder(
        account=account, symbol="BTC/USDT", side=Side.BUY, order_type=OrderType.LIMIT, qty="0.001", price="60000",
        intent=str(n),
    )  # fmt: skip


def test_a_batch_round_trips():
    req = CommandRequest(request_id="r1", commands=(place(1), place(2), CancelAll(account=ACC)))
    assert parse_request(encode_request(req), ACC) == req


def _refused(data: bytes | dict, account: str = ACC) -> CommandError:
    raw = json.dumps(data).encode() if isinstance(data, dict) else data
    with pytest.raises(CommandError) as info:
        parse_request(raw, account)
    return info.value


def test_bad_requests_are_refused_with_a_code_and_a_reason():
    good = json.loads(encode_request(CommandRequest(request_id="r9", commands=(place(),))))
    assert _refused(b"{not json").code == "malformed"
    assert _refused(b"[1,2]").code == "malformed"
    err = _refused({**good, "v": 7})
    assert err.code == "version" and "speaks [1]" in str(err) and err.request_id == "r9"
    assert _refused({**good, "commands": []}).code == "batch"
    assert _refused({**good, "commands": [good["commands"][0]] * (MAX_BATCH + 1)}).code == "batch"
    unknown = _refused({**good, "extra": 1})
    assert unknown.code == "malformed" and "extra" in str(unknown)
    bad_qty = _refused({**good, "commands": [{**good["commands"][0], "qty": "1e5"}]})
    assert bad_qty.code == "malformed" and "qty" in str(bad_qty)
    bad_type = _refused({**good, "commands": [{**good["commands"][0], "type": "withdraw"}]})
    assert bad_type.code == "malformed"
    other = _refused(encode_request(CommandRequest(commands=(place(account="binance/main"),))))
    assert other.code == "account" and "binance/main" in str(other)
    assert _refused(b" " * (MAX_REQUEST_BYTES + 1)).code == "malformed"
    assert err.reply().error and err.reply().code == "version"


async def test_request_reply_over_real_nats(nc, nats_server):
    """The daemon (``nc``) answers; a trader sends (only a trader may publish ``cmd.>``)."""
    trader = await nats_server.connect("trader")
    subject = command_subject("binance", "sub_mm")
    seen: list[str] = []

    async def answer(msg):
        try:
            req = parse_request(msg.data, ACC)
        except CommandError as exc:
            seen.append(exc.code)
            await msg.respond(encode_reply(exc.reply()))
            return
        results = tuple(
            CommandResult(ok=True, client_order_id=c.with_client_order_id().client_order_id) for c in req.commands
        )
        await msg.respond(encode_reply(CommandReply(request_id=req.request_id, results=results)))

    sub = await nc.subscribe(subject, cb=answer)
    try:
        await nc.flush()
        reply = decode_reply(
            (
                await trader.request(
                    subject, encode_request(CommandRequest(request_id="a", commands=(place(5),))), timeout=5
                )
            ).data
        )
        assert reply.request_id == "a" and reply.results[0].ok
        assert reply.results[0].client_order_id == place(5).with_client_order_id().client_order_id
        bad = decode_reply((await trader.request(subject, b"garbage", timeout=5)).data)
        assert bad.code == "malformed" and not bad.results and seen == ["malformed"]
    finally:
        await sub.unsubscribe()
        await trader.close()


_VALUES = {
    "account": [ACC, "binance/main", "Binance/x", "binance/sub_mm\n", "binance/", "okx/a-b", 7],
    "symbol": ["BTC/USDT", "BTC/USDT:USDT", "BTC", "BTC/USDT\n", "a b/c", "ETH/BTC", None],
    "side": ["buy", "sell", "hold"],
    "order_type": ["limit", "market", "stop_limit", "nope"],
    "qty": ["0.001", "1", "-1.5", "1.", ".5", "1e5", "1\n", "", 5],
    "price": ["60000", "60000.5", None, "6e4", "1\n", "x"],
    "stop_price": [None, "59000", "-", "1\n"],
    "client_order_id": [None, "mine-1", "x" * 37, "bad id", "ok\n", "a:b/c.d_e-f"],
    "max_slippage_bps": [None, 5, -1, 20_000],
    "good_till_ns": [0, 5, -5],
    "reduce_only": [False, True, "yes"],
    "intent": ["", "1", "x\n"],
    "strategy": ["", "mm"],
    "position_side": ["both", "long", "up"],
    "nonsense": [1],  # an unknown field: PlaceOrder ignores them, as the model's messages do
}
_REQUIRED = ("account", "symbol", "side", "order_type", "qty")


@st.composite
def _requests(draw) -> bytes:
    commands = []
    for _ in range(draw(st.integers(1, 3))):
        if draw(st.booleans()):
            fields = {f: draw(st.sampled_from(v)) for f, v in _VALUES.items()
                      if f in _REQUIRED or draw(st.integers(0, 3)) == 0}  # fmt: skip
            if draw(st.integers(0, 9)) == 0:
                fields.pop(draw(st.sampled_from(_REQUIRED)))
            commands.append({"type": "place_order", **fields})
        else:
            commands.append({"type": "cancel_all", "account": draw(st.sampled_from(_VALUES["account"]))})
    body = {"request_id": draw(st.sampled_from(["", "r1", "r" * 65])), "commands": commands}
    if draw(st.integers(0, 9)) == 0:
        body["v"] = draw(st.sampled_from([1, 2, "1"]))
    return json.dumps(body).encode()


@settings(max_examples=400, deadline=None)
@given(_requests())
def test_the_fast_decoder_accepts_exactly_what_the_strict_one_does(data):
    """``parse_request`` reads placements without msgspec's per-value regex searches (``_fast_decode``): the
    requests it accepts are the strict decoder's, as equal values of the same types, and nothing else."""
    try:
        strict = msgspec.json.decode(data, type=CommandRequest)
    except msgspec.ValidationError:
        strict = None
    try:
        fast = _fast_decode(data)
    except msgspec.ValidationError:
        fast = None
    assert fast == strict
    if strict is not None:
        assert [type(c) for c in fast.commands] == [type(c) for c in strict.commands]
        values = [[(type(v), v) for v in msgspec.structs.astuple(c)] for c in fast.commands]
        assert values == [[(type(v), v) for v in msgspec.structs.astuple(c)] for c in strict.commands]


def test_the_fast_decoders_twins_follow_the_models_structs():
    def shape(cls):
        return [(f.name, f.default) for f in msgspec.structs.fields(cls)]

    assert shape(_FastPlace) == shape(PlaceOrder) and shape(_FastRequest) == shape(CommandRequest)
    assert [f.type for f in msgspec.structs.fields(_FastRequest)][:2] == [
        f.type for f in msgspec.structs.fields(CommandRequest)
    ][:2]
    union = typing.get_args(typing.get_args(msgspec.structs.fields(CommandRequest)[2].type)[0])[0]
    twins = typing.get_args(typing.get_args(msgspec.structs.fields(_FastRequest)[2].type)[0])[0]
    assert [_FastPlace if t is PlaceOrder else t for t in typing.get_args(union)] == list(typing.get_args(twins))
    for c in (PlaceOrder, _FastPlace):
        assert (c.__struct_config__.tag, c.__struct_config__.tag_field) == ("place_order", "type")
