"""NATS subjects of the platform, and the ``Nats-Msg-Id`` of each event.

Events (JetStream, kept 30 days):

* ``orders.{exchange}.{account}.{market}.{symbol}``: ``OrderEvent``
* ``trades.{exchange}.{account}.{market}.{symbol}``: ``Fill`` (our own trades)
* ``positions.{exchange}.{account}.{market}``: ``PositionEvent``
* ``balances.{exchange}.{account}.{market}``: ``BalanceEvent``
* ``transfers.{exchange}.{from}.{to}``: ``TransferEvent`` (a transfer never leaves its exchange, so the
  exchange leads and ``{from}``/``{to}`` are account names: ``transfers.binance.main.sub_mm``)
* ``risk.{exchange}.{account}``: risk events (breaker trips, kill switch, guards)
* ``funding.{exchange}.{account}.{market}.{symbol}``: funding payments of perpetual positions
  (``oms.archive.records.Funding``, the funding log's rows), ``Nats-Msg-Id`` ``funding:{account}:{symbol}:{ns}``

Core NATS: ``md.{exchange}.{market}.{symbol}`` (normalised market data) and the commands
``cmd.order.{exchange}.{account}`` (request/reply), ``cmd.halt`` / ``cmd.reduce_only`` / ``cmd.resume``
(``.{exchange}.{account}`` for one account, bare for all).

``{symbol}`` is the instrument as one token, ``BASE-QUOTE`` (``BTC-USDT``); the market token before it says
Spot or perpetual, so ``symbol_token``/``parse_symbol_token`` are exact inverses. Tokens never contain
``.``, ``*``, ``>`` or white space (NATS's rule), which the model's identifiers already guarantee.

The message id of an event is derived from what the event *is*, never from when it was received, so the
same event published twice (a retry, a replay after a restart, the outbox draining) is stored once:
a fill by its trade id, a transfer event by its transfer id and status, anything else by a digest of its
content with ``recv_ns`` left out.
"""

from __future__ import annotations

import functools
import hashlib
import re

import msgspec

from oms.model import (
    AccountId,
    BalanceEvent,
    Fill,
    InstrumentId,
    Market,
    OrderEvent,
    PositionEvent,
    TransferEvent,
)
from oms.model.codec import encode

_TOKEN = re.compile(r"^[^.*>\s]+$")
EVENT_KINDS = ("orders", "trades", "positions", "balances", "transfers", "risk", "funding")
KILL_SWITCH = ("halt", "reduce_only", "resume")


class SubjectError(ValueError):
    """A subject that cannot be built or read (a bad token, an unknown kind)."""


def token(text: str, what: str) -> str:
    if not text or not _TOKEN.match(text):
        raise SubjectError(f"{what} {text!r} is not a NATS subject token (no '.', '*', '>' or spaces)")
    return text


def symbol_token(symbol: str | InstrumentId) -> str:
    """``BTC/USDT`` and ``BTC/USDT:USDT`` -> ``BTC-USDT`` (the market is its own token)."""
    ins = symbol if isinstance(symbol, InstrumentId) else InstrumentId.parse(symbol)
    if "-" in ins.base or "-" in ins.quote:
        raise SubjectError(f"instrument {ins}: an asset with '-' cannot be written as BASE-QUOTE")
    return f"{ins.base}-{ins.quote}"


def parse_symbol_token(tok: str, market: Market | str) -> InstrumentId:
    """The inverse of ``symbol_token``, given the market token that precedes it."""
    base, sep, quote = tok.partition("-")
    if not sep or not base or not quote or "-" in quote:
        raise SubjectError(f"symbol token {tok!r}: expected BASE-QUOTE, e.g. BTC-USDT")
    return InstrumentId(base, quote, quote if Market(market) is Market.USDM else "")


def _account(account: str | AccountId) -> AccountId:
    return account if isinstance(account, AccountId) else AccountId.parse(account)


@functools.lru_cache(maxsize=65_536)
def order_subject(kind: str, account: str | AccountId, symbol: str | InstrumentId) -> str:
    """``{kind}.{exchange}.{account}.{market}.{symbol}`` for ``orders`` and ``trades`` (cached: the same few
    account and symbol pairs recur on every event)."""
    a = _account(account)
    ins = symbol if isinstance(symbol, InstrumentId) else InstrumentId.parse(symbol)
    return f"{kind}.{a.exchange}.{a.name}.{ins.market.value}.{symbol_token(ins)}"


def account_subject(kind: str, account: str | AccountId, market: Market | str) -> str:
    """``{kind}.{exchange}.{account}.{market}`` for ``positions`` and ``balances``."""
    a = _account(account)
    return f"{kind}.{a.exchange}.{a.name}.{Market(market).value}"


def transfer_subject(from_account: str | AccountId, to_account: str | AccountId) -> str:
    a, b = _account(from_account), _account(to_account)
    if a.exchange != b.exchange:
        raise SubjectError(f"transfer between {a} and {b}: accounts of different exchanges")
    return f"transfers.{a.exchange}.{a.name}.{b.name}"


def risk_subject(account: str | AccountId) -> str:
    a = _account(account)
    return f"risk.{a.exchange}.{a.name}"


def funding_subject(account: str | AccountId, symbol: str | InstrumentId) -> str:
    """``funding.{exchange}.{account}.{market}.{symbol}``: one perpetual's funding payments of one account."""
    return order_subject("funding", account, symbol)


def funding_msg_id(account: str, symbol: str, event_ns: int, venue_id: str = "") -> str:
    """A funding payment is one per account, symbol, funding time and the venue's id of it (in hedge mode each
    side of a symbol is paid at the same time), however often it is seen."""
    return f"funding:{account}:{symbol}:{event_ns}" + (f":{venue_id}" if venue_id else "")


def md_subject(exchange: str, market: Market | str, symbol: str | InstrumentId) -> str:
    return f"md.{token(exchange, 'exchange')}.{Market(market).value}.{symbol_token(symbol)}"


def command_subject(exchange: str, account: str) -> str:
    """Where order commands for one account are sent (request/reply)."""
    return f"cmd.order.{token(exchange, 'exchange')}.{token(account, 'account')}"


def kill_switch_subject(action: str, account: str | AccountId | None = None) -> str:
    """``cmd.halt`` (all accounts) or ``cmd.halt.{exchange}.{account}``; likewise reduce_only, resume."""
    if action not in KILL_SWITCH:
        raise SubjectError(f"kill switch action {action!r}: one of {', '.join(KILL_SWITCH)}")
    if account is None:
        return f"cmd.{action}"
    a = _account(account)
    return f"cmd.{action}.{a.exchange}.{a.name}"


def _position_market(event: PositionEvent) -> Market:
    markets = {InstrumentId.parse(p.symbol).market for p in event.positions}
    if len(markets) > 1:
        raise SubjectError(f"position event of {event.account} mixes markets {sorted(m.value for m in markets)}")
    return markets.pop() if markets else Market.USDM


def subject_of(event: msgspec.Struct) -> str:
    """The JetStream subject of an event of the model."""
    if isinstance(event, OrderEvent):
        return order_subject("orders", event.account, event.symbol)
    if isinstance(event, Fill):
        return order_subject("trades", event.account, event.symbol)
    if isinstance(event, PositionEvent):
        return account_subject("positions", event.account, _position_market(event))
    if isinstance(event, BalanceEvent):
        return account_subject("balances", event.account, event.market)
    if isinstance(event, TransferEvent):
        return transfer_subject(event.transfer.from_account, event.transfer.to_account)
    raise SubjectError(f"no event subject for {type(event).__name__}")


def _digest(event: msgspec.Struct) -> str:
    if "recv_ns" in event.__struct_fields__:
        event = msgspec.structs.replace(event, recv_ns=0)
    return hashlib.blake2b(encode(event), digest_size=12).hexdigest()


def msg_id(event: msgspec.Struct) -> str:
    """The ``Nats-Msg-Id`` of an event: equal for the same event however often it is published."""
    if isinstance(event, Fill):
        return f"fill:{event.account}:{event.symbol}:{event.trade_id}"
    if isinstance(event, TransferEvent):
        return f"transfer:{event.transfer.transfer_id}:{event.status.value}"
    if isinstance(event, OrderEvent):
        return f"order:{event.account}:{event.client_order_id}:{event.kind.value}:{_digest(event)}"
    account = getattr(event, "account", "")
    return f"{type(event).__name__}:{account}:{_digest(event)}"
