"""The benchmark's separate venv for nautilus_trader: ``ensure()`` makes ``.venv-nautilus`` when missing or stale.

nautilus_trader 1.221 (the newest with Python 3.11 wheels) needs pandas < 3 and vectorbt 1.2 needs pandas >= 3,
so they cannot share ``.venv``. This venv is built from the interpreter running the bench (``python -m venv``,
the same Python 3.11) and holds only ``tests/bench/nautilus-requirements.txt``, installed from PyPI by pip. A stamp
in it records the requirements' sha256: an edited requirements file reinstalls, an unchanged one costs nothing.
``make bench`` runs it before the benchmarks (``python tests/bench/nautilus_venv.py``); the bench calls it too,
so ``pytest tests/bench/test_backtest_bench.py`` on a fresh clone works alone.
"""

from __future__ import annotations

import hashlib
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
VENV = ROOT / ".venv-nautilus"
REQUIREMENTS = Path(__file__).with_name("nautilus-requirements.txt")
PYTHON = VENV / "bin" / "python"
STAMP = VENV / ".installed"


def ensure() -> Path:
    """The venv's python, after creating or refreshing the venv if its stamp does not match the requirements."""
    digest = hashlib.sha256(REQUIREMENTS.read_bytes()).hexdigest()
    if PYTHON.exists() and STAMP.exists() and STAMP.read_text() == digest:
        return PYTHON
    if not PYTHON.exists():
        base = getattr(sys, "_base_executable", sys.executable)  # the interpreter under .venv, not .venv's
        subprocess.run([base, "-m", "venv", str(VENV)], check=True)
    pip = [str(PYTHON), "-m", "pip", "install", "--quiet", "--disable-pip-version-check"]
    subprocess.run([*pip, "-r", str(REQUIREMENTS)], check=True)
    STAMP.write_text(digest)
    return PYTHON


if __name__ == "__main__":
    print(ensure())
