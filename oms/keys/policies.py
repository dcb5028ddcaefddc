"""The AppRole policies kept as files in ``deploy/vault/policies/`` and rendered for this deployment.

Each ``oms-{component}.hcl`` is plain HCL with two placeholders: ``{mount}`` (the KV v2 mount) and
``{path}``. A ``path "..." { ... }`` block that names ``{path}`` is repeated once per vault path the
component may touch (``exchanges/binance_spot_main``...), so a policy lists its accounts' paths
explicitly and no glob widens it.
"""

from __future__ import annotations

import re
from pathlib import Path

from oms.keys.provider import KeyStoreError

POLICY_DIR = Path(__file__).resolve().parents[2] / "deploy" / "vault" / "policies"
_BLOCK = re.compile(r'path\s+"[^"]*"\s*\{[^{}]*\}', re.S)


def policy_name(component: str) -> str:
    return f"oms-{component}"


def render_policy(component: str, mount: str, paths: list[str], policy_dir: Path = POLICY_DIR) -> str:
    """The HCL of ``component``'s policy for these vault paths (relative to the mount)."""
    source = policy_dir / f"{policy_name(component)}.hcl"
    try:
        text = source.read_text()
    except OSError as exc:
        raise KeyStoreError(f"policy file {source} for component {component!r} cannot be read: {exc}") from exc
    bad = [p for p in paths if not re.fullmatch(r"[a-z0-9_/]+", p)]
    if bad:
        raise KeyStoreError(f"vault paths {bad} contain characters a policy path must not have")

    def expand(match: re.Match[str]) -> str:
        block = match.group(0)
        if "{path}" not in block:
            return block.replace("{mount}", mount)
        return "\n".join(block.replace("{mount}", mount).replace("{path}", p) for p in paths)

    rendered = _BLOCK.sub(expand, text)
    outside = [ln for ln in _BLOCK.sub("", rendered).splitlines() if not ln.lstrip().startswith("#")]
    if any("{path}" in ln or "{mount}" in ln for ln in outside):
        raise KeyStoreError(f"policy file {source} has a placeholder outside a path block")
    return rendered
