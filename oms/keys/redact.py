"""Secrets never reach a log line: a registry of secret values and a logging filter that removes them.

Every secret the key store loads is registered (``register_secret``); ``RedactingFilter`` rewrites each log
record (message, arguments, exception text) so that registered values, ``signature=...`` query parameters,
and ``secret``/``api_secret``/``secret_id``/``token`` assignments read ``[REDACTED]``. ``install_redaction()``
puts the filter on the record factory, so records of every logger are clean before any handler sees them,
and on the root logger's handlers for exception text formatted later.
"""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Iterable

REDACTED = "[REDACTED]"
_MIN_SECRET_LEN = 8  # shorter values would blank ordinary words

_PATTERNS = (
    re.compile(r"(signature=)[0-9A-Za-z%+/=_-]+"),
    re.compile(
        r"""((?:api_secret|apiSecret|secret_key|secret_id|secret|client_token|token|password)["']?\s*[:=]\s*["']?)"""
        r"""([^"'\s&,}]{4,})""",
        re.IGNORECASE,
    ),
)


class _Registry:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._values: set[str] = set()
        self._pattern: re.Pattern[str] | None = None

    def add(self, values: Iterable[str]) -> None:
        with self._lock:
            before = len(self._values)
            self._values.update(v for v in values if v and len(v) >= _MIN_SECRET_LEN)
            if len(self._values) != before:
                ordered = sorted(self._values, key=len, reverse=True)
                self._pattern = re.compile("|".join(re.escape(v) for v in ordered))

    def scrub(self, text: str) -> str:
        pattern = self._pattern
        if pattern is not None:
            text = pattern.sub(REDACTED, text)
        for p in _PATTERNS:
            text = p.sub(lambda m: m.group(1) + REDACTED, text)
        return text

    def __len__(self) -> int:
        return len(self._values)


_registry = _Registry()


def register_secret(*values: str) -> None:
    """Remember secret values so that no log record can contain them."""
    _registry.add(values)


def redact(text: str) -> str:
    """``text`` with every registered secret and every secret-looking assignment replaced by ``[REDACTED]``."""
    return _registry.scrub(text)


def _scrub_record(record: logging.LogRecord) -> None:
    if getattr(record, "_oms_redacted", False):
        return
    try:
        message = record.getMessage()
    except Exception:  # a bad format string: keep what we can, clean
        message = f"{record.msg!r} {record.args!r}"
    record.msg = redact(message)
    record.args = None
    if record.exc_info and not record.exc_text:
        record.exc_text = logging.Formatter().formatException(record.exc_info)
    if record.exc_text:
        record.exc_text = redact(record.exc_text)
    record.exc_info = None if record.exc_text else record.exc_info
    if record.stack_info:
        record.stack_info = redact(record.stack_info)
    record._oms_redacted = True


class RedactingFilter(logging.Filter):
    """A filter for handlers or loggers: cleans the record and always lets it through."""

    def filter(self, record: logging.LogRecord) -> bool:
        _scrub_record(record)
        return True


class RedactingFormatter(logging.Formatter):
    """A formatter whose whole output (message, exception, stack) is redacted."""

    def format(self, record: logging.LogRecord) -> str:
        return redact(super().format(record))


_installed = False
_install_lock = threading.Lock()


def install_redaction() -> None:
    """Redact every log record of this process (idempotent): at creation, and on the root handlers."""
    global _installed
    with _install_lock:
        if not _installed:
            previous = logging.getLogRecordFactory()

            def factory(*args, **kwargs) -> logging.LogRecord:
                record = previous(*args, **kwargs)
                _scrub_record(record)
                return record

            logging.setLogRecordFactory(factory)
            _installed = True
        for handler in logging.getLogger().handlers:
            if not any(isinstance(f, RedactingFilter) for f in handler.filters):
                handler.addFilter(RedactingFilter())
