"""The order-command envelope: valid requests parse, every kind of bad one is refused with its code, and a
reply travels over real NATS request/reply."""

from __future__ import annotations

import json

import pytest

from oms.bus import command_subject
from oms.model import CancelAll, OrderType, PlaceOrder, Side
from oms.model.commands import (
    MAX_BATCH,
    MAX_REQUEST_BYTES,
    CommandError,
    CommandReply,
    CommandRequest,
    CommandResult,
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
