"""Dependencies flow one way: the shared domain (`oms`) imports none of kernels/strategies/stream/flows,
kernels import only the shared domain's config, and nothing reads the workplace's shared folder."""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
TOP = ("oms", "kernels", "strategies", "stream", "flows")
FORBIDDEN = {
    "oms": {"kernels", "strategies", "stream", "flows"},
    "kernels": {"strategies", "stream", "flows", "oms.localex", "oms.services", "oms.cli"},
    "strategies": {"stream", "flows", "oms.localex", "oms.services", "oms.cli"},
    "stream": {"flows"},
    "oms/archive": {"oms.localex", "oms.services", "oms.cli"},
    "oms/config": {"oms.localex", "oms.services", "oms.cli", "oms.archive"},
}


def imports_of(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


@pytest.mark.parametrize("package", sorted(FORBIDDEN))
def test_import_direction(package):
    bad = []
    for path in sorted((ROOT / package).rglob("*.py")):
        for name in imports_of(path):
            if any(name == f or name.startswith(f + ".") for f in FORBIDDEN[package]):
                bad.append(f"{path.relative_to(ROOT)} imports {name}")
    assert bad == []


def test_nothing_reads_the_workplace_shared_folder():
    needles = ("../" + "shared", "/work/" + "shared")  # split so this file does not match itself
    offenders = [str(p.relative_to(ROOT)) for pkg in (*TOP, "tests") for p in (ROOT / pkg).rglob("*.py")
                 if any(n in p.read_text() for n in needles)]
    assert offenders == []
