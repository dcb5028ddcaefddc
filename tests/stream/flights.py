"""Counting a daemon's venue calls on their way through its real execution clients (the pipelining tests)."""

from __future__ import annotations


class Flights:
    """Wraps the ``place`` and ``cancel`` of one or more execution clients (the real ones: each call goes on to
    them): the order of starts and answers across them, and the most calls of each kind in flight at once."""

    def __init__(self, *executions) -> None:
        self.trace: list[str] = []
        self.peak = {"place": 0, "cancel": 0}
        self._now = {"place": 0, "cancel": 0}
        for execution in executions:
            for kind in ("place", "cancel"):
                setattr(execution, kind, self._wrap(kind, getattr(execution, kind)))

    def _wrap(self, kind: str, real):
        async def call(cmd):
            self.trace.append(f"{kind}>")
            self._now[kind] += 1
            self.peak[kind] = max(self.peak[kind], self._now[kind])
            try:
                return await real(cmd)
            finally:
                self._now[kind] -= 1
                self.trace.append(f"{kind}<")

        return call

    def reset(self) -> None:
        self.trace.clear()
        self.peak = {"place": 0, "cancel": 0}
