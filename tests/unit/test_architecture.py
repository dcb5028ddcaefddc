"""Dependencies flow one way (the import-linter contracts in pyproject.toml), and nothing reads the
workplace's shared folder."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
TOP = ("oms", "kernels", "strategies", "stream", "flows", "localex")


def test_import_contracts_hold():
    lint_imports = Path(sys.executable).parent / "lint-imports"
    res = subprocess.run([str(lint_imports), "--no-cache"], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stdout + res.stderr
    assert "0 broken" in res.stdout, res.stdout


def test_nothing_reads_the_workplace_shared_folder():
    needles = ("../" + "shared", "/work/" + "shared")  # split so this file does not match itself
    offenders = [
        str(p.relative_to(ROOT))
        for pkg in (*TOP, "tests")
        for p in (ROOT / pkg).rglob("*.py")
        if any(n in p.read_text() for n in needles)
    ]
    assert offenders == []
