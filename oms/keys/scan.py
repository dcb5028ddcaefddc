"""Look for secrets in everything a run wrote: log files, data/, reports/, JetStream's and Prefect's files.

``scan_tree`` reads every file under the given roots as bytes (SQLite databases and JetStream blocks
included) and reports each place a known secret appears in clear, as UTF-8, or in base64 or URL encoding.
Findings name the file and the secret's fingerprint, never the secret.
"""

from __future__ import annotations

import base64
import hashlib
import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote


@dataclass(frozen=True)
class Finding:
    path: Path
    secret_fingerprint: str
    encoding: str
    offset: int

    def __str__(self) -> str:
        return f"{self.path}: secret {self.secret_fingerprint} in {self.encoding} at byte {self.offset}"


def _forms(secret: str) -> list[tuple[str, bytes]]:
    raw = secret.encode()
    forms = [("clear", raw), ("base64", base64.b64encode(raw).rstrip(b"="))]
    quoted = quote(secret, safe="").encode()
    if quoted != raw:
        forms.append(("url-encoded", quoted))
    return forms


def scan_tree(roots: Iterable[str | os.PathLike], secrets: Iterable[str]) -> list[Finding]:
    """Every occurrence of any of ``secrets`` in any file under ``roots`` (missing roots are skipped)."""
    wanted = [(hashlib.sha256(s.encode()).hexdigest()[:12], _forms(s)) for s in set(secrets) if s]
    findings: list[Finding] = []
    for root in roots:
        base = Path(root)
        if not base.exists():
            continue
        files = [base] if base.is_file() else sorted(p for p in base.rglob("*") if p.is_file())
        for path in files:
            try:
                blob = path.read_bytes()
            except OSError:
                continue
            for fp, forms in wanted:
                for encoding, needle in forms:
                    at = blob.find(needle)
                    if at >= 0:
                        findings.append(Finding(path, fp, encoding, at))
    return findings
