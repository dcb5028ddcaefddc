"""CPU affinity: pin the process or a thread to cores from configs/stream.yaml, and say what happened.

* ``pin_process(cores)`` pins every thread of this process (new threads inherit the mask);
* ``pin_thread(cores, native_id=None)`` pins one thread (default: the calling thread);
* ``pin_from_config(config, role)`` takes ``daemon.cpu_cores`` (role "daemon": the whole process) or
  ``daemon.kernel_cores`` (role "kernel": the calling thread) from an ``oms.config.Config``.

Each returns an ``AffinityReport`` (what was asked, what the mask was and is now, and a sentence).
Where pinning cannot be done (no ``os.sched_setaffinity`` on this platform, a core that does not
exist, a core outside this container's cpuset, or no permission) the report has ``ok=False`` and a
message that says which and why, and the process keeps running unpinned; with ``strict=True`` the
same message is raised as ``AffinityError`` instead.
"""

from __future__ import annotations

import errno
import os
import threading
from dataclasses import dataclass
from pathlib import Path

from oms.config.machine import core_problem


class AffinityError(RuntimeError):
    """Pinning was asked with strict=True and could not be done."""


@dataclass(frozen=True)
class AffinityReport:
    target: str  # "process 123 (4 threads)" or "thread 456"
    requested: tuple[int, ...]
    before: tuple[int, ...]
    after: tuple[int, ...]
    ok: bool
    message: str

    def __str__(self) -> str:
        return self.message


def _fmt(cores) -> str:
    return "[" + ", ".join(str(c) for c in sorted(cores)) + "]"


def _current(tid: int) -> tuple[int, ...]:
    try:
        return tuple(sorted(os.sched_getaffinity(tid)))
    except (AttributeError, OSError):
        return ()


def _fail(target: str, cores, before, message: str, strict: bool) -> AffinityReport:
    if strict:
        raise AffinityError(message)
    return AffinityReport(target, tuple(cores), before, before, False, message + "; running unpinned")


def _validate(cores) -> str | None:
    # The same check `oms config check` runs on daemon.cpu_cores / kernel_cores (one reason, one place);
    # cores outside the cpuset are left to the kernel's EINVAL below, which names the allowed set too.
    return core_problem(cores, allowed=range(os.cpu_count() or 1))


def _pin(tids: list[int], target: str, cores, strict: bool) -> AffinityReport:
    cores = tuple(int(c) for c in cores)
    before = _current(tids[0])
    if not hasattr(os, "sched_setaffinity"):
        return _fail(
            target,
            cores,
            before,
            f"cannot pin {target}: CPU pinning is not supported on this platform (no os.sched_setaffinity)",
            strict,
        )
    problem = _validate(cores)
    if problem:
        return _fail(target, cores, before, f"cannot pin {target} to {_fmt(cores)}: {problem}", strict)
    try:
        for tid in tids:
            try:
                os.sched_setaffinity(tid, cores)
            except ProcessLookupError:
                continue  # a thread that ended meanwhile
    except OSError as exc:
        why = {
            errno.EINVAL: "the core(s) are outside the CPUs this process may use (container cpuset "
            f"allows {_fmt(_allowed())})",
            errno.EPERM: "not permitted (needs CAP_SYS_NICE to pin another user's thread)",
        }.get(exc.errno, exc.strerror or str(exc))
        return _fail(target, cores, before, f"cannot pin {target} to {_fmt(cores)}: {why}", strict)
    after = _current(tids[0])
    return AffinityReport(
        target, cores, before, after, True, f"pinned {target} to cores {_fmt(after)} (was {_fmt(before)})"
    )


def _allowed() -> tuple[int, ...]:
    for path in ("/sys/fs/cgroup/cpuset.cpus.effective", "/sys/fs/cgroup/cpuset/cpuset.effective_cpus"):
        try:
            text = Path(path).read_text().strip()
        except OSError:
            continue
        cpus = []
        for part in filter(None, text.split(",")):
            lo, _, hi = part.partition("-")
            cpus.extend(range(int(lo), int(hi or lo) + 1))
        return tuple(cpus)
    return tuple(range(os.cpu_count() or 1))


def pin_process(cores, strict: bool = False) -> AffinityReport:
    """Pin every current thread of this process (threads started later inherit the mask)."""
    try:
        tids = sorted(int(t) for t in os.listdir("/proc/self/task"))
    except OSError:
        tids = [0]
    pid = os.getpid()
    tids = [pid] + [t for t in tids if t != pid]
    return _pin(tids, f"process {pid} ({len(tids)} threads)", cores, strict)


def pin_thread(cores, native_id: int | None = None, strict: bool = False) -> AffinityReport:
    """Pin one thread, by native thread id (``threading.get_native_id()``; default: the caller)."""
    tid = threading.get_native_id() if native_id is None else native_id
    return _pin([tid], f"thread {tid}", cores, strict)


def pin_from_config(config, role: str = "daemon", strict: bool = False) -> AffinityReport:
    """Pin as configs/stream.yaml says: role "daemon" pins the process to ``daemon.cpu_cores``,
    role "kernel" pins the calling thread to ``daemon.kernel_cores``."""
    if role not in ("daemon", "kernel"):
        raise ValueError(f"role must be 'daemon' or 'kernel', not {role!r}")
    daemon = config.stream.daemon
    if role == "daemon":
        return pin_process(daemon.cpu_cores, strict=strict)
    return pin_thread(daemon.kernel_cores, strict=strict)
