"""A caller of the local exchange's admin API (``/admin/v1``) that sends the install's admin token.

```python
from localex.admin_client import AdminClient

admin = AdminClient.for_install("http://127.0.0.1:8765", "data/localex")  # reads localex-admin-token
account = admin.call("POST", "/admin/v1/accounts", {})
admin.call("POST", f"/admin/v1/accounts/{account['accountId']}/fund", {"asset": "USDT", "amount": "1000"})
```

A refused call raises :class:`AdminError` with the status and the server's message.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

from localex.server.guard import TOKEN_HEADER, token_file
from localex.server.private_files import read_private


class AdminError(RuntimeError):
    """The admin API refused a call: ``status`` and ``body`` are the server's answer."""

    def __init__(self, method: str, path: str, status: int, body: object) -> None:
        msg = body.get("msg") if isinstance(body, dict) else body
        super().__init__(f"admin {method} {path} answered {status}: {msg}")
        self.status = status
        self.body = body


def read_admin_token(data_dir: str | Path) -> str:
    """The admin token of the install in ``data_dir`` (checked to be readable by this user only)."""
    return read_private(token_file(data_dir)).decode("ascii").strip()


@dataclass(frozen=True)
class AdminClient:
    """``call(method, path, body)`` against the admin API of the server at ``url``."""

    url: str
    token: str = field(repr=False)
    timeout: float = 10.0

    @classmethod
    def for_install(cls, url: str, data_dir: str | Path) -> AdminClient:
        """A client with the token of the install whose data folder is ``data_dir``."""
        return cls(url, read_admin_token(data_dir))

    def call(self, method: str, path: str, body: dict[str, object] | None = None) -> object:
        """Send one admin request (JSON body for POST) and return the decoded JSON answer."""
        data = json.dumps(body if body is not None else {}).encode() if method == "POST" else None
        headers = {TOKEN_HEADER: self.token}
        if data is not None:
            headers["Content-Type"] = "application/json"
        req = urllib.request.Request(self.url + path, data=data, method=method, headers=headers)
        try:
            with urllib.request.urlopen(req, timeout=self.timeout) as resp:
                return json.loads(resp.read())
        except urllib.error.HTTPError as err:
            raw = err.read()
            try:
                answer: object = json.loads(raw)
            except ValueError:
                answer = raw.decode(errors="replace")
            raise AdminError(method, path, err.code, answer) from None
