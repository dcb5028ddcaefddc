"""Facts about this machine that configs are checked against: CPU cores and the data folder.

``oms config check`` and the code that acts on the setting share these checks: ``kernels.affinity``
validates cores with ``core_problem`` before pinning, and ``oms.services`` prepares its data folder with
``data_dir_problem``; so a config that checks ``ok`` is one they accept, with the same reason otherwise.
"""

from __future__ import annotations

import errno
import os
import stat
from collections.abc import Iterable
from pathlib import Path


def allowed_cores() -> tuple[int, ...]:
    """The cores this process may run on (its affinity mask, i.e. the container's cpuset)."""
    if hasattr(os, "sched_getaffinity"):
        return tuple(sorted(os.sched_getaffinity(0)))
    return tuple(range(os.cpu_count() or 1))


def _fmt(cores: Iterable[int]) -> str:
    return "[" + ", ".join(str(c) for c in sorted(cores)) + "]"


def core_problem(cores: Iterable[int], count: int | None = None, allowed: Iterable[int] | None = None) -> str | None:
    """Why pinning to ``cores`` cannot work here, or None: no cores, a core that does not exist on this
    machine (``count`` cores, default ``os.cpu_count()``), or one outside the ``allowed`` set (default
    this process's affinity mask, which is what the kernel accepts)."""
    cores = list(cores)
    if not cores:
        return "no cores given (list at least one core, e.g. [0])"
    count = (os.cpu_count() or 1) if count is None else count
    missing = sorted({c for c in cores if not 0 <= c < count})
    if missing:
        return f"core(s) {_fmt(missing)} do not exist: this machine has {count} core(s), numbered 0-{count - 1}"
    allowed_set = set(allowed_cores() if allowed is None else allowed)
    outside = sorted({c for c in cores if c not in allowed_set})
    if outside:
        return (
            f"core(s) {_fmt(outside)} are outside the CPUs this process may use "
            f"(its affinity mask / container cpuset allows {_fmt(allowed_set)})"
        )
    return None


def _kind(mode: int) -> str:
    if stat.S_ISFIFO(mode):
        return "a FIFO (named pipe)"
    if stat.S_ISSOCK(mode):
        return "a socket"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    if stat.S_ISREG(mode):
        return "a file"
    return "not a folder"


def data_dir_problem(path: Path) -> str | None:
    """Why ``path`` cannot be the platform's data folder, or None.

    It must be a folder we can write, list and enter, or not exist yet below a folder we can write (the
    services create it). Checked with ``os.access``, which honours read-only mounts as well as modes.
    """
    probe = Path(path)
    missing: list[Path] = []
    while True:
        try:
            st = os.stat(probe)
        except FileNotFoundError:
            missing.append(probe)
            if probe.parent == probe:
                return f"{path} cannot be created: no existing folder above it"
            probe = probe.parent
            continue
        except NotADirectoryError:
            missing.append(probe)
            probe = probe.parent
            continue
        except OSError as exc:
            if exc.errno == errno.ELOOP:
                return f"{probe} is a symbolic link loop"
            return f"cannot inspect {probe}: {exc.strerror or exc}"
        break
    if not stat.S_ISDIR(st.st_mode):
        if probe == Path(path):
            return f"{path} is {_kind(st.st_mode)}, not a folder"
        return f"{path} cannot be created: {probe} is {_kind(st.st_mode)}, not a folder"
    if not os.access(probe, os.W_OK | os.X_OK):
        reason = "is on a read-only file system" if _read_only_mount(probe) else "is not writable by this user"
        if probe == Path(path):
            return f"{path} {reason}"
        return f"{path} cannot be created: {probe} {reason}"
    if not missing and not os.access(probe, os.R_OK):
        return f"{path} is not readable by this user"
    return None


def _read_only_mount(path: Path) -> bool:
    try:
        return bool(os.statvfs(path).f_flag & os.ST_RDONLY)
    except OSError:
        return False
