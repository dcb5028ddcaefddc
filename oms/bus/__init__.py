"""The message bus: NATS subjects, JetStream streams and key-value buckets, the outbox and the publisher."""

from oms.bus.connect import NatsClientSettings, connect_as
from oms.bus.kv import AccountLease, LeaseHeld, LeaseLost, LiveState
from oms.bus.outbox import Outbox, OutboxRecord
from oms.bus.publisher import EventPublisher, PublisherStats
from oms.bus.streams import BusSettings, ensure_bucket, ensure_streams, stream_configs, stream_name
from oms.bus.subjects import (
    SubjectError,
    account_subject,
    command_subject,
    kill_switch_subject,
    md_subject,
    msg_id,
    order_subject,
    parse_symbol_token,
    risk_subject,
    subject_of,
    symbol_token,
    transfer_subject,
)

__all__ = [
    "AccountLease",
    "BusSettings",
    "EventPublisher",
    "LeaseHeld",
    "LeaseLost",
    "LiveState",
    "NatsClientSettings",
    "Outbox",
    "OutboxRecord",
    "PublisherStats",
    "SubjectError",
    "account_subject",
    "connect_as",
    "command_subject",
    "ensure_bucket",
    "ensure_streams",
    "kill_switch_subject",
    "md_subject",
    "msg_id",
    "order_subject",
    "parse_symbol_token",
    "risk_subject",
    "stream_configs",
    "stream_name",
    "subject_of",
    "symbol_token",
    "transfer_subject",
]
