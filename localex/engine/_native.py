"""Loads the engine's compiled (mypyc) modules when a build matching the sources exists.

The engine's hot modules are compiled by mypyc from their unchanged sources (``localex.engine.build``,
run by ``make``) into ``build/engine/`` at the repository root. The build directory holds a manifest with
the SHA-256 of every compiled source, the Python version and the mypy version. At import, this module
hashes the sources again and, only when everything matches, installs a finder that loads those modules
from the build instead of from their ``.py`` files. A stale build (a source edited since) is never used:
the engine then runs as plain Python, which is the reference the compiled code must reproduce
(``tests/localex/test_engine_differential.py`` checks both against one golden file).

``OMS_ENGINE`` chooses: ``auto`` (default: compiled when a fresh build exists, else Python), ``python``
(always the sources), ``compiled`` (the build or an ImportError that says why not).
"""

from __future__ import annotations

import hashlib
import importlib.abc
import importlib.machinery
import importlib.util
import json
import os
import sys
from pathlib import Path

PACKAGE = __name__.rsplit(".", 1)[0]  # localex.engine
SOURCE_DIR = Path(__file__).resolve().parent
# the modules on the order path; markets first: everything else reads SymbolSpec
COMPILED_MODULES = (
    "markets",
    "errors",
    "types",
    "event_types",
    "book",
    "accounts",
    "events",
    "marketdata",
    "futures",
    "fees",
    "matcher_state",
    "validation",
    "reservations",
    "settlement",
    "matching",
    "exchange_state",
    "funding",
    "operation",
    "wallets",
    "futures_settings",
    "exchange",
)
GROUP = "oms_engine"  # mypyc's shared library is the top-level module ``oms_engine__mypyc``
BUILD_DIR = Path(os.environ.get("OMS_ENGINE_BUILD_DIR") or SOURCE_DIR.parents[1] / "build" / "engine")
MANIFEST = "manifest.json"
MODES = ("auto", "python", "compiled")


def source_hashes() -> dict[str, str]:
    """SHA-256 of each compiled module's source, by module name."""
    return {m: hashlib.sha256((SOURCE_DIR / f"{m}.py").read_bytes()).hexdigest() for m in COMPILED_MODULES}


def expected_manifest(mypy_version: str) -> dict[str, object]:
    """What a build made from the current sources with this interpreter and mypy records."""
    return {
        "python": sys.version,
        "cache_tag": sys.implementation.cache_tag,
        "mypy": mypy_version,
        "modules": list(COMPILED_MODULES),
        "sources": source_hashes(),
    }


def read_manifest(build_dir: Path = BUILD_DIR) -> dict[str, object] | None:
    try:
        data = json.loads((build_dir / MANIFEST).read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def stale_reason(manifest: dict[str, object] | None, build_dir: Path = BUILD_DIR) -> str | None:
    """Why the build in ``build_dir`` cannot be used for the current sources, or None if it can."""
    if manifest is None:
        return f"no compiled engine in {build_dir} (run `make build-engine`)"
    if manifest.get("python") != sys.version:
        return f"the build is for Python {manifest.get('python')!r}, this is {sys.version!r}"
    if manifest.get("modules") != list(COMPILED_MODULES):
        return "the build compiled another set of modules"
    built = manifest.get("sources")
    now = source_hashes()
    if built != now:
        changed = sorted(m for m in now if not isinstance(built, dict) or built.get(m) != now[m])
        return f"sources changed since the build: {', '.join(f'{m}.py' for m in changed)}"
    files = manifest.get("files")
    if not isinstance(files, dict) or not all((build_dir / str(f)).is_file() for f in files.values()):
        return "the build is incomplete"
    return None


class _CompiledFinder(importlib.abc.MetaPathFinder):
    """Maps the compiled modules (and mypyc's shared library) to their extension files in the build."""

    def __init__(self, files: dict[str, Path]) -> None:
        self.files = files

    def find_spec(
        self, fullname: str, path: object = None, target: object = None
    ) -> importlib.machinery.ModuleSpec | None:
        f = self.files.get(fullname)
        if f is None:
            return None
        return importlib.util.spec_from_file_location(
            fullname, f, loader=importlib.machinery.ExtensionFileLoader(fullname, str(f))
        )


def install() -> tuple[str, str]:
    """Choose the engine's implementation before its modules are imported: ("compiled"|"python", why)."""
    mode = os.environ.get("OMS_ENGINE", "auto").strip().lower() or "auto"
    if mode not in MODES:
        raise ImportError(f"OMS_ENGINE={mode!r}: expected one of {', '.join(MODES)}")
    if mode == "python":
        return "python", "OMS_ENGINE=python"
    manifest = read_manifest()
    why = stale_reason(manifest)
    if why is not None:
        if mode == "compiled":
            raise ImportError(f"OMS_ENGINE=compiled but {why}")
        return "python", why
    listed = manifest["files"] if manifest is not None else None
    assert isinstance(listed, dict)  # checked by stale_reason
    files = {str(name): BUILD_DIR / str(rel) for name, rel in listed.items()}
    finder = _CompiledFinder(files)
    sys.meta_path.insert(0, finder)
    try:  # load them all now: a build that does not load leaves the engine in Python, not broken
        for m in COMPILED_MODULES:
            importlib.import_module(f"{PACKAGE}.{m}")
    except Exception as exc:
        sys.meta_path.remove(finder)
        for name in files:
            sys.modules.pop(name, None)
        if mode == "compiled":
            raise ImportError(f"OMS_ENGINE=compiled but the build in {BUILD_DIR} does not load: {exc}") from exc
        return "python", f"the build in {BUILD_DIR} does not load: {exc}"
    return "compiled", f"mypyc build in {BUILD_DIR}"
