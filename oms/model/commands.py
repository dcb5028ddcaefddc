"""Order commands over NATS: the versioned request/reply envelope of ``cmd.order.{exchange}.{account}``.

A sender (a trader's tool, a dashboard, the webhook, another service) sends a ``CommandRequest`` holding one
to ``MAX_BATCH`` commands (``PlaceOrder``, ``AmendOrder``, ``CancelOrder``, ``CancelAll``, the emulated
``PlaceParent`` of ``oms.model.parents`` and the USD-M settings ``SetLeverage``, ``SetMarginType``,
``SetPositionMode`` of ``oms.model.settings``, added in version 1 with defaults) for the account
named by the subject; the daemon answers a ``CommandReply`` with one ``CommandResult`` per command, in order:
the client order id and the status it reached (a settings command: the venue's answer in ``settings``), or
the rejection's code and reason. A request that cannot be
read at all gets a reply with ``error`` set and no results.

Versioning: ``v`` is the envelope's version (``COMMAND_VERSION``). A daemon accepts the versions in
``SUPPORTED_VERSIONS`` and refuses others with a reply saying which it speaks; fields are only ever added
with defaults, so an older sender's request stays valid. The JSON Schema is ``docs/schema/command_request``
and ``command_reply`` (``python -m oms.model.schema``).

``parse_request(data, account)`` is the one place a request is read: malformed JSON, an unknown field, a
wrong type, an unsupported version, an empty or oversized batch, or a command for another account than the
subject's all raise ``CommandError`` with a short code (``malformed``, ``version``, ``batch``, ``account``)
and a reason that says what and where, so the daemon can count rejections by code and answer clearly.
"""

from __future__ import annotations

from typing import Annotated, Union

import msgspec

from oms.model.account import AccountSettings
from oms.model.enums import OrderStatus
from oms.model.fields import ClientOrderIdStr
from oms.model.ids import AccountId
from oms.model.orders import AmendOrder, CancelAll, CancelOrder, PlaceOrder
from oms.model.parents import ParentStatus, PlaceParent
from oms.model.settings import SetLeverage, SetMarginType, SetPositionMode

COMMAND_VERSION = 1
SUPPORTED_VERSIONS = frozenset({1})
MAX_BATCH = 20
MAX_REQUEST_BYTES = 64 * 1024

Command = Union[  # noqa: UP007 - a msgspec tagged union
    PlaceOrder, AmendOrder, CancelOrder, CancelAll, PlaceParent, SetLeverage, SetMarginType, SetPositionMode
]


class CommandRequest(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True, omit_defaults=True):
    """What a sender puts on ``cmd.order.{exchange}.{account}``."""

    v: int = COMMAND_VERSION
    request_id: Annotated[str, msgspec.Meta(max_length=64)] = ""  # echoed in the reply
    commands: Annotated[tuple[Command, ...], msgspec.Meta(min_length=1, max_length=MAX_BATCH)]


class CommandResult(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    """The outcome of one command: accepted (``ok``) with its order's status, or refused with a reason."""

    ok: bool
    client_order_id: ClientOrderIdStr | None = None
    status: OrderStatus | None = None
    code: str = ""  # "risk:max_notional", "venue:-2010", "unknown_order", ... ("" when ok)
    reason: str = ""
    parent_status: ParentStatus | None = None  # a PlaceParent's (client_order_id is then its parent id)
    settings: AccountSettings | None = None  # a settings command's: the venue's answer


class CommandReply(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    v: int = COMMAND_VERSION
    request_id: str = ""
    results: tuple[CommandResult, ...] = ()
    error: str = ""  # set when the request itself was refused (no results then)
    code: str = ""


class CommandError(ValueError):
    """A request refused as a whole: ``code`` for counting, the message for the sender."""

    def __init__(self, code: str, reason: str, request_id: str = ""):
        super().__init__(reason)
        self.code = code
        self.request_id = request_id

    def reply(self) -> CommandReply:
        return CommandReply(request_id=self.request_id, error=str(self), code=self.code)


_decoder = msgspec.json.Decoder(CommandRequest)
_reply_decoder = msgspec.json.Decoder(CommandReply)
_encoder = msgspec.json.Encoder()


def _version_of(data: bytes) -> tuple[int | None, str]:
    try:
        head = msgspec.json.decode(data)
    except msgspec.DecodeError:
        return None, ""
    if not isinstance(head, dict):
        return None, ""
    v, rid = head.get("v", COMMAND_VERSION), head.get("request_id", "")
    return (v if isinstance(v, int) else None), (rid if isinstance(rid, str) else "")


def parse_request(data: bytes, account: AccountId | str) -> CommandRequest:
    """The request in ``data`` for ``account`` (the subject's), validated; raises ``CommandError``.

    The typed decoder runs first (one pass over the bytes on the common path); only a request it refuses is
    read again as plain JSON, to tell an unsupported version from a malformed request."""
    acc = account if type(account) is str else str(account)
    if len(data) > MAX_REQUEST_BYTES:
        raise CommandError("malformed", f"command request of {len(data)} bytes exceeds {MAX_REQUEST_BYTES}")
    try:
        req = _decoder.decode(data)
    except (msgspec.ValidationError, msgspec.DecodeError) as exc:
        v, rid = _version_of(data)
        if v is not None and v not in SUPPORTED_VERSIONS:
            raise _version_error(v, rid) from None
        if isinstance(exc, msgspec.ValidationError):
            code = "batch" if "length" in str(exc) and "commands" in str(exc) else "malformed"
            raise CommandError(code, f"bad command request: {exc}", rid) from None
        raise CommandError("malformed", f"command request is not JSON: {exc}", rid) from None
    if req.v not in SUPPORTED_VERSIONS:
        raise _version_error(req.v, req.request_id)
    for i, cmd in enumerate(req.commands):
        if cmd.account != acc:
            raise CommandError(
                "account",
                f"commands[{i}] is for {cmd.account} but was sent to {acc}'s subject; send it to that account's",
                req.request_id,
            )
    return req


def _version_error(v: int, rid: str) -> CommandError:
    return CommandError(
        "version", f"command version {v} is not supported (this daemon speaks {sorted(SUPPORTED_VERSIONS)})", rid
    )


def encode_request(req: CommandRequest) -> bytes:
    return _encoder.encode(req)


def encode_reply(reply: CommandReply) -> bytes:
    return _encoder.encode(reply)


def decode_reply(data: bytes) -> CommandReply:
    return _reply_decoder.decode(data)
