"""Who may talk to the local exchange: loopback only, addressed by a loopback name, admin with its token.

- The server listens on loopback only: :func:`check_listen_host` refuses ``0.0.0.0``, a LAN address or
  any name that is not loopback, before anything binds.
- Every HTTP request (REST, WebSocket upgrade, admin) whose ``Host`` header is not a loopback name with the
  port the request arrived on is refused (:func:`host_guard`): a web page that re-binds its own DNS name
  to 127.0.0.1 (DNS rebinding) sends its own name as ``Host`` and gets 403, never an answer it can read.
- The admin API (``/admin/v1``) also wants ``X-Admin-Token``: a random token generated once per install
  into ``DATA_DIR/localex-admin-token`` (mode 0600), compared in constant time, see
  :func:`resolve_admin_token`. The project's own callers read that file (``localex.admin_client``).
"""

from __future__ import annotations

import hmac
import ipaddress
import logging
import secrets
from collections.abc import Awaitable, Callable
from pathlib import Path

from aiohttp import web

from localex.server.private_files import PrivateFileError, create_private, read_private

log = logging.getLogger(__name__)
TOKEN_FILE = "localex-admin-token"
TOKEN_HEADER = "X-Admin-Token"
LOOPBACK_NAMES = frozenset(("localhost", "127.0.0.1", "[::1]", "::1"))
TOKEN_ALPHABET = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")


def is_loopback_host(host: str) -> bool:
    """True for ``localhost`` and any loopback IP address (127.0.0.0/8, ::1)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def check_listen_host(host: str) -> None:
    """ValueError (with the reason and the choices) unless ``host`` is a loopback address."""
    if not is_loopback_host(host):
        raise ValueError(
            f"--host {host!r} is not a loopback address: the local exchange listens on loopback only "
            "(127.0.0.1, another 127.x.y.z, ::1 or localhost), it has no access control for other machines"
        )


def token_file(data_dir: str | Path) -> Path:
    """Where an install keeps its admin token."""
    return Path(data_dir) / TOKEN_FILE


def load_or_create_token(path: Path) -> str:
    """The admin token in ``path``, generated there first (0600, atomically) when the file does not exist."""
    if create_private(path, (secrets.token_urlsafe(32) + "\n").encode()):
        log.info("admin token generated in %s (mode 0600)", path)
    try:
        token = read_private(path).decode("ascii").strip()
    except UnicodeDecodeError as exc:
        raise PrivateFileError(f"{path} does not hold an admin token (not ASCII): delete it and restart") from exc
    if len(token) < 16 or not set(token) <= TOKEN_ALPHABET:
        raise PrivateFileError(
            f"{path} does not hold an admin token (16 or more of A-Z a-z 0-9 - _ expected): delete it and restart"
        )
    return token


def resolve_admin_token(token: str | None, path: str | Path | None, data_dir: str | None) -> tuple[str, Path | None]:
    """``(token, file)``: the explicit token, else the install's token file (``path`` or in ``data_dir``),
    else a random token held in memory only (``file`` None: in-process callers read it from the state)."""
    if token is not None:
        if len(token) < 16:
            raise ValueError("the admin token must have at least 16 characters")
        return token, None
    file = Path(path) if path is not None else token_file(data_dir) if data_dir else None
    if file is None:
        return secrets.token_urlsafe(32), None
    return load_or_create_token(file), file


def token_matches(sent: str | None, token: str) -> bool:
    """Constant-time comparison of the header's value with the token (any bytes in the header are safe)."""
    if sent is None:
        return False
    return hmac.compare_digest(sent.encode("utf-8", "surrogateescape"), token.encode())


def _local_port(request: web.Request) -> int | None:
    transport = request.transport
    sockname = transport.get_extra_info("sockname") if transport is not None else None
    if isinstance(sockname, tuple) and len(sockname) >= 2 and isinstance(sockname[1], int):
        return sockname[1]
    return None


def host_allowed(request: web.Request, listen_host: str) -> bool:
    """True when ``Host`` names this server on loopback (any loopback name, the port the request came to)."""
    value = request.headers.get("Host")
    if value is None:
        return False
    if value.endswith("]") or ":" not in value:  # no port given: the default HTTP port
        name, port_s = value, "80"
    else:
        name, _, port_s = value.rpartition(":")
    if not port_s.isascii() or not port_s.isdigit() or len(port_s) > 5:
        return False
    names = LOOPBACK_NAMES | {listen_host, f"[{listen_host}]"}
    return name.lower() in names and int(port_s) == _local_port(request)


def host_guard(
    listen_host: str, refuse: Callable[[web.Request], web.StreamResponse]
) -> Callable[[web.Request, Callable[[web.Request], Awaitable[web.StreamResponse]]], Awaitable[web.StreamResponse]]:
    """Middleware: a request with a ``Host`` that is not this server's loopback address gets ``refuse``.

    A request without ``Host`` (HTTP/1.0 tools; never a browser) passes, except to the admin API.
    """

    @web.middleware
    async def guard(
        request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
    ) -> web.StreamResponse:
        if "Host" not in request.headers and not request.path.startswith("/admin/"):
            return await handler(request)
        if not host_allowed(request, listen_host):
            return refuse(request)
        return await handler(request)

    return guard
