"""Which engine a process runs: the mypyc build only when it matches the sources, else the Python sources.

Each case starts a fresh interpreter (the choice is made once, at import) with ``OMS_ENGINE`` and
``OMS_ENGINE_BUILD_DIR`` set, and reads ``localex.engine.ENGINE`` / ``ENGINE_REASON`` and where the
matching module came from. The real build is the one ``make test`` makes (``make build-engine``).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from localex.engine import _native

ROOT = Path(__file__).resolve().parents[2]
PROBE = (
    "import json, localex.engine as e, localex.engine.matching as m; "
    "print(json.dumps([e.ENGINE, e.ENGINE_REASON, m.__file__]))"
)


def probe(build_dir: Path | None = None, mode: str | None = None) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ)
    env.pop("OMS_ENGINE", None)
    if mode is not None:
        env["OMS_ENGINE"] = mode
    if build_dir is not None:
        env["OMS_ENGINE_BUILD_DIR"] = str(build_dir)
    return subprocess.run(
        [sys.executable, "-c", PROBE], env=env, cwd=ROOT, capture_output=True, text=True, timeout=120, check=False
    )


def loaded(build_dir: Path | None = None, mode: str | None = None) -> tuple[str, str, str]:
    p = probe(build_dir, mode)
    assert p.returncode == 0, p.stderr[-3000:]
    engine, reason, path = json.loads(p.stdout)
    return engine, reason, path


@pytest.fixture(scope="module")
def real_build() -> Path:
    why = _native.stale_reason(_native.read_manifest())
    assert why is None, f"no usable engine build: {why} (make test builds it: make build-engine)"
    return _native.BUILD_DIR


@pytest.fixture
def build_copy(real_build: Path, tmp_path: Path) -> Path:
    dst = tmp_path / "engine"
    shutil.copytree(real_build, dst)
    return dst


def test_a_fresh_build_is_used(real_build: Path) -> None:
    engine, reason, path = loaded()
    assert engine == "compiled", reason
    assert Path(path).is_relative_to(real_build) and path.endswith(".so")


def test_python_mode_ignores_the_build(real_build: Path) -> None:
    engine, reason, path = loaded(mode="python")
    assert (engine, reason) == ("python", "OMS_ENGINE=python")
    assert path == str(_native.SOURCE_DIR / "matching.py")


def test_a_stale_build_is_not_used(build_copy: Path) -> None:
    manifest = json.loads((build_copy / "manifest.json").read_text())
    manifest["sources"]["matching"] = "0" * 64  # as if matching.py had been edited after the build
    (build_copy / "manifest.json").write_text(json.dumps(manifest))
    engine, reason, path = loaded(build_copy)
    assert engine == "python" and reason == "sources changed since the build: matching.py"
    assert path.endswith("matching.py")
    p = probe(build_copy, mode="compiled")
    assert p.returncode != 0
    assert "OMS_ENGINE=compiled but sources changed since the build: matching.py" in p.stderr


def test_a_build_that_does_not_load_falls_back(build_copy: Path) -> None:
    manifest = json.loads((build_copy / "manifest.json").read_text())
    (build_copy / manifest["files"]["localex.engine.exchange"]).write_bytes(b"not an ELF file")
    engine, reason, path = loaded(build_copy)
    assert engine == "python" and "does not load" in reason, reason
    assert path.endswith("matching.py")  # nothing of the build stays loaded
    assert "does not load" in probe(build_copy, mode="compiled").stderr


def test_no_build_and_bad_mode(tmp_path: Path) -> None:
    engine, reason, _ = loaded(tmp_path / "nothing")
    assert engine == "python" and reason.startswith("no compiled engine in ")
    p = probe(tmp_path / "nothing", mode="compiled")
    assert p.returncode != 0 and "OMS_ENGINE=compiled but no compiled engine" in p.stderr
    p = probe(mode="fast")
    assert p.returncode != 0 and "OMS_ENGINE='fast': expected one of auto, python, compiled" in p.stderr


def test_build_is_a_no_op_when_fresh(real_build: Path) -> None:
    before = (real_build / "manifest.json").read_text()
    p = subprocess.run(
        [sys.executable, "-m", "localex.engine.build"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    assert p.stdout.startswith("compiled engine up to date in ")
    assert (real_build / "manifest.json").read_text() == before
