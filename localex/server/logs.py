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
from urllib.parse import unquote_plus

from aiohttp.abc import AbstractAccessLogger
from aiohttp.web_request import BaseRequest
from aiohttp.web_response import StreamResponse

LOG_FILE = "localex.log"
MAX_BYTES = 10 * 1024 * 1024
BACKUPS = 5
FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
# one pass over each line: a named credential's value (query or JSON), or any credential-shaped token
_CREDENTIAL = re.compile(
    r"(?P<q>(?:signature|listenKey|apiKey|secret)=)[^&\s\"'<>]+"
    r"|(?P<j>\"(?:signature|listenKey|apiKey|secret)\"\s*:\s*\")[^\"]*"
    r"|[A-Za-z0-9]{48,}"
)
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f\n]")
REDACTED = "<redacted>"


def _replace(match: re.Match[str]) -> str:
    return (match.group("q") or match.group("j") or "") + REDACTED


def redact(text: str) -> str:
    """``text`` without signatures, listenKeys, keys or secrets."""
    return _CREDENTIAL.sub(_replace, text)


def _escape(text: str) -> str:
    if text.isprintable():  # the usual line: nothing to escape (checked at C speed)
        return text
    return _CONTROL.sub(lambda m: f"\\x{ord(m.group()):02x}", text)


NAMES = frozenset(("signature", "listenKey", "apiKey", "secret"))


def _secret_shaped(value: str) -> bool:
    return len(value) >= 48 and value.isascii() and value.isalnum()


def redact_target(target: str) -> str:
    """A request target (path and query as sent) without credentials, cheaply: no regex on the usual request.

    Query values of ``signature``/``listenKey``/``apiKey``/``secret`` and any credential-shaped path segment
    or query value (48+ letters and digits: a listenKey in ``/ws/<key>``) become ``<redacted>``.
    """
    path, sep, query = target.partition("?")
    if len(path) >= 48:
        path = "/".join(REDACTED if _secret_shaped(seg) else seg for seg in path.split("/"))
    if query:
        pairs = []
        for pair in query.split("&"):
            name, eq, value = pair.partition("=")
            if "%" in name or "+" in name:  # "%73ignature" is "signature" to the server's parser
                name = unquote_plus(name)
            pairs.append(f"{name}={REDACTED}" if eq and (name in NAMES or _secret_shaped(value)) else pair)
        query = "&".join(pairs)
    return path + sep + query


class RedactingAccessLogger(AbstractAccessLogger):
    """aiohttp's access log, one line per request, its target redacted by :func:`redact_target`.

    ``peer "METHOD target HTTP/x.y" status bytes seconds "user agent"``; the record is marked as redacted,
    so the formatter does not scan it again (this runs once per request: it must stay cheap).
    """

    def log(self, request: BaseRequest, response: StreamResponse, time: float) -> None:
        agent = request.headers.get("User-Agent", "-")[:200]
        if len(agent) >= 48:
            agent = redact(agent)
        version = request.version
        self.logger.info(
            '%s "%s %s HTTP/%d.%d" %d %d %.6fs "%s"',
            request.remote,
            request.method,
            redact_target(request.raw_path),
            version.major,
            version.minor,
            response.status,
            response.body_length,
            time,
            agent,
            extra={"redacted": True},
        )


class RedactingFormatter(logging.Formatter):
    """A formatter whose output never holds credentials and whose messages are one line each."""

    def formatMessage(self, record: logging.LogRecord) -> str:
        record.message = _escape(record.message)
        return super().formatMessage(record)

    def format(self, record: logging.LogRecord) -> str:
        text = super().format(record)
        if getattr(record, "redacted", False) and not record.exc_info:
            return text  # an access line, redacted where it was made
        return redact(text)


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
