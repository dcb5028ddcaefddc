"""Compile the engine's hot modules with mypyc: ``python -m localex.engine.build [--force]``.

Run by ``make`` before the platform, the tests and the benchmarks start (a no-op taking a few
milliseconds when the build already matches the sources). The sources are compiled unchanged; the build
goes to a temporary directory and replaces ``build/engine/`` only when complete, manifest last, so an
engine being imported meanwhile sees either the old build or the new one. See ``_native`` for how the
build is found and checked at import, and how ``OMS_ENGINE`` chooses.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

from . import _native


def _compile(work: Path) -> dict[str, str]:
    """mypyc + setuptools in ``work``; returns {module name: extension file relative to ``work/out``}."""
    from mypyc.build import mypycify
    from setuptools import Distribution  # type: ignore[import-untyped]

    paths = [str(_native.SOURCE_DIR / f"{m}.py") for m in _native.COMPILED_MODULES]
    cwd = os.getcwd()
    os.chdir(_native.SOURCE_DIR.parents[1])  # mypyc derives module names from paths relative to here
    try:
        exts = mypycify(
            [os.path.relpath(p) for p in paths],
            opt_level="3",
            group_name=_native.GROUP,
            multi_file=True,
            target_dir=str(work / "c"),
        )
        dist = Distribution({"name": "oms-engine", "ext_modules": exts})
        cmd = dist.get_command_obj("build_ext")
        cmd.build_lib = str(work / "out")
        cmd.build_temp = str(work / "tmp")
        cmd.parallel = os.cpu_count() or 1
        cmd.ensure_finalized()
        cmd.run()
        out = (work / "out").resolve()
        return {
            ext.name: str(Path(cmd.get_ext_fullpath(ext.name)).resolve().relative_to(out)) for ext in cmd.extensions
        }
    finally:
        os.chdir(cwd)


def build(force: bool = False, quiet: bool = False) -> str:
    """Build unless a build for the current sources exists; returns what was done."""
    import mypy.version

    target = _native.BUILD_DIR
    current = _native.read_manifest(target)
    if (
        not force
        and _native.stale_reason(current, target) is None
        and current is not None
        and current.get("mypy") == mypy.version.__version__
    ):
        return f"compiled engine up to date in {target}"
    t = time.monotonic()
    target.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=".engine-", dir=target.parent))
    try:
        log = target.parent / "engine-build.log"
        with open(log, "w") as f:  # mypy's and the C compiler's output; shown when the build fails
            saved = os.dup(1), os.dup(2)
            sys.stdout.flush()
            sys.stderr.flush()
            os.dup2(f.fileno(), 1)
            os.dup2(f.fileno(), 2)
            try:
                files = _compile(work)
            except BaseException:
                ok = False
                raise
            else:
                ok = True
            finally:
                sys.stdout.flush()
                sys.stderr.flush()
                os.dup2(saved[0], 1)
                os.dup2(saved[1], 2)
                os.close(saved[0])
                os.close(saved[1])
                if not ok or not quiet:
                    print(log.read_text()[-20000:], file=sys.stderr if not ok else sys.stdout)
        staged = work / "out"
        manifest = _native.expected_manifest(mypy.version.__version__)
        manifest["files"] = files
        manifest["built"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        old = target.with_name(target.name + ".old")
        shutil.rmtree(old, ignore_errors=True)
        if target.exists():
            target.rename(old)
        staged.rename(target)
        (target / (_native.MANIFEST + ".tmp")).write_text(json.dumps(manifest, indent=1))
        (target / (_native.MANIFEST + ".tmp")).rename(target / _native.MANIFEST)
        shutil.rmtree(old, ignore_errors=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return f"compiled engine built in {target} ({time.monotonic() - t:.0f} s, {len(files)} extension modules)"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m localex.engine.build", description=__doc__.split("\n")[0])
    p.add_argument("--force", action="store_true", help="rebuild even if the build matches the sources")
    p.add_argument(
        "--quiet",
        action="store_true",
        help="show the compiler's output only if the build fails (it is kept in build/engine-build.log)",
    )
    args = p.parse_args(argv)
    print(build(force=args.force, quiet=args.quiet))
    return 0


if __name__ == "__main__":
    sys.exit(main())
