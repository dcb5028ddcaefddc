"""The server's log: credentials redacted, one line per record, a rotating file only its user can read.

Every handler formats through :class:`RedactingFormatter`, so no line (the access log included) carries a
request signature, a listenKey (a bearer credential: whoever has it reads the account's user-data stream),
an API key or a secret: ``signature=``/``listenKey=`` values and any run of 48 or more letters and digits
(the shape of keys, secrets, signatures and listenKeys) become ``<redacted>``. Control characters in a
message are escaped, so input cannot forge log lines. With a log file the records go to a
:class:`PrivateRotatingFileHandler` (mode 0600 from creation, rotated by size); warnings also go to stderr.
"""

from __future__ import annotations

import logging
import logging.handlers
import os
import re
import sys
from pathlib import Path

LOG_FILE = "localex.log"
MAX_BYTES = 10 * 1024 * 1024
BACKUPS = 5
FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
_NAMED = re.compile(r"((?:signature|listenKey|apiKey|secret)=)[^&\s\"'<>]+", re.IGNORECASE)
_JSON_NAMED = re.compile(r"(\"(?:signature|listenKey|apiKey|secret)\"\s*:\s*\")[^\"]*", re.IGNORECASE)
_TOKEN = re.compile(r"(?<![A-Za-z0-9])[A-Za-z0-9]{48,}(?![A-Za-z0-9])")
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f\n]")
REDACTED = "<redacted>"


def redact(text: str) -> str:
    """``text`` without signatures, listenKeys, keys or secrets."""
    text = _NAMED.sub(lambda m: m.group(1) + REDACTED, text)
    text = _JSON_NAMED.sub(lambda m: m.group(1) + REDACTED, text)
    return _TOKEN.sub(REDACTED, text)


def _escape(text: str) -> str:
    return _CONTROL.sub(lambda m: f"\\x{ord(m.group()):02x}", text)


class RedactingFormatter(logging.Formatter):
    """A formatter whose output never holds credentials and whose messages are one line each."""

    def formatMessage(self, record: logging.LogRecord) -> str:
        record.message = _escape(record.message)
        return super().formatMessage(record)

    def format(self, record: logging.LogRecord) -> str:
        return redact(super().format(record))


class PrivateRotatingFileHandler(logging.handlers.RotatingFileHandler):
    """A size-rotated log file created with mode 0600 (each new file too); an older, wider file is narrowed."""

    def _open(self):  # type: ignore[no-untyped-def] - logging's own signature
        fd = os.open(self.baseFilename, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        os.fchmod(fd, 0o600)  # a file left by an older version (0644): narrowed before anything is written
        return open(fd, self.mode, encoding=self.encoding, errors=self.errors)


def setup_logging(log_file: str | Path | None, level: int = logging.INFO, max_bytes: int = MAX_BYTES) -> None:
    """Configure the process's logging: ``log_file`` (rotating, 0600) and warnings on stderr, or all on stderr."""
    root = logging.getLogger()
    for handler in list(root.handlers):
        root.removeHandler(handler)
    formatter = RedactingFormatter(FORMAT)
    stderr = logging.StreamHandler(sys.stderr)
    stderr.setFormatter(formatter)
    if log_file is not None:
        Path(log_file).parent.mkdir(parents=True, exist_ok=True)
        file_handler = PrivateRotatingFileHandler(log_file, maxBytes=max_bytes, backupCount=BACKUPS, encoding="utf-8")
        file_handler.setFormatter(formatter)
        file_handler.setLevel(level)
        root.addHandler(file_handler)
        stderr.setLevel(max(level, logging.WARNING))
    else:
        stderr.setLevel(level)
    root.addHandler(stderr)
    root.setLevel(level)
