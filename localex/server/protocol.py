"""The HTTP connection layer under the routes: requests aiohttp cannot parse get Binance-shaped JSON too.

aiohttp answers a request it cannot parse (a URL over 8190 bytes, an oversized header, a malformed
request line) itself, before any middleware runs, with a plain-text page and a logged traceback. The
server's runner (:func:`make_runner`, used by ``python -m localex`` and the test fixtures alike) gives
each connection a protocol whose error page is Binance's JSON error instead: HTTP 414 / -1101 for a URL
over the limit, 431 for a header, 400 for anything else malformed; each counted as rejected input and
logged at debug level, without echoing the request (it may carry a signature).
"""

from __future__ import annotations

import logging
import re
from http import HTTPStatus
from typing import Any

from aiohttp import web
from aiohttp.http_exceptions import BadHttpMessage, LineTooLong
from aiohttp.web_protocol import RequestHandler
from aiohttp.web_request import BaseRequest

from localex.server import errors
from localex.server.counters import Counters
from localex.server.errors import BinanceError
from localex.server.http import json_response
from localex.server.logs import RedactingAccessLogger
from localex.server.state import STATE_KEY

log = logging.getLogger(__name__)
MAX_LINE = 8190  # aiohttp's default request-line and header-field limits, kept
_REQUEST_LINE = re.compile(rb"^(/|[A-Z]+ )")  # the URL (C parser) or the whole request line (Python parser)


def parse_error(exc: BaseException | None) -> tuple[BinanceError, str]:
    """The answer to a request aiohttp could not parse, and the counter kind."""
    if isinstance(exc, LineTooLong):
        start = exc.args[0] if exc.args else b""
        if isinstance(start, str):
            start = start.encode("utf-8", "replace")
        if isinstance(start, bytes | bytearray) and _REQUEST_LINE.match(bytes(start[:32])):
            return errors.request_too_large("URL", HTTPStatus.REQUEST_URI_TOO_LONG), "http_url_too_long"
        return (
            BinanceError(-1000, f"Request header too large: a header line is over {MAX_LINE} bytes.", 431),
            "http_header_too_large",
        )
    reason = exc.message if isinstance(exc, BadHttpMessage) else "the request could not be parsed"
    return BinanceError(-1000, f"Malformed HTTP request: {str(reason)[:80]}.", 400), "http_malformed"


class BinanceErrorProtocol(RequestHandler):
    """aiohttp's connection handler with Binance's JSON as its own error page."""

    counters: Counters | None = None

    def handle_error(
        self,
        request: BaseRequest,
        status: int = 500,
        exc: BaseException | None = None,
        message: str | None = None,
    ) -> web.StreamResponse:
        if request.writer.output_size > 0 or status >= 500:  # a broken connection, or a real server error
            return super().handle_error(request, status, exc, message)
        err, kind = parse_error(exc)
        log.debug("unparsable request from %s: %s", request.remote, type(exc).__name__)
        if self.counters is not None:
            self.counters.bad(kind, f"from {request.remote}")
            self.counters.error(err.code)
        resp = json_response(err.body(), err.status)
        resp.force_close()
        return resp


class _Server(web.Server):
    def __call__(self) -> RequestHandler:
        return self._protocol(self, loop=self._loop, **self._kwargs)  # type: ignore[attr-defined]


class LocalexRunner(web.AppRunner):
    """``web.AppRunner`` whose connections answer unparsable requests in Binance's JSON."""

    async def _make_server(self) -> web.Server:
        server = await super()._make_server()
        protocol = type("Protocol", (BinanceErrorProtocol,), {"counters": self.app[STATE_KEY].counters})
        server.__class__ = _Server
        server._protocol = protocol  # type: ignore[attr-defined]
        return server


def make_runner(app: web.Application, **kwargs: Any) -> web.AppRunner:
    """The runner for a built app (``handle_signals`` off: the caller owns the signals; the access log
    redacted where each line is made)."""
    return LocalexRunner(app, handle_signals=False, access_log_class=RedactingAccessLogger, **kwargs)
