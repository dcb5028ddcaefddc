"""The base of every model message: frozen, tagged by ``type`` (``{"type": "fill", ...}``).

One tagged union (``oms.model.codec.Message``) decodes any of them from NATS or a file line without knowing
the type in advance. Subclasses declare ``kw_only=True`` (msgspec does not inherit it). Defaults are
omitted on the wire, so a message carries only what was set.
"""

from __future__ import annotations

import msgspec


class Msg(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True, tag_field="type", gc=False):
    """Base class of the model's messages (never instantiated itself).

    ``gc=False`` (inherited): the garbage collector does not track messages. They are frozen and hold strings,
    numbers, enums, tuples and other messages, so they cannot form a reference cycle; tracked, the order
    gateway's tens of thousands of live commands made every collection walk them (a third of its time at
    50,000 orders, tests/bench/test_gateway_bench.py)."""
