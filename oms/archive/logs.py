"""Writing and reading the raw logs: trade, order, funding and parent-order logs per account and day,
transfers per month, hourly snapshots. Every line is one model message in the model codec's JSON; a reader
reports each line it cannot decode with its file and line, and goes on.

The account folder is the account id itself, ``exchange/name``: ``logs/2026/12/01/binance/sub_mm/trades.jsonl``.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any, BinaryIO

import msgspec

from oms.archive.layout import Layout
from oms.archive.records import LOG_TYPES
from oms.archive.report import FileResult
from oms.model import TransferEvent, codec

_KIND_OF = {t: kind for kind, t in LOG_TYPES.items()}


def day_of(ns: int) -> date:
    return datetime.fromtimestamp(ns / 1e9, tz=UTC).date()


def _torn(path: Path) -> bool:
    """Whether the file's last line lacks its newline."""
    with path.open("rb") as fh:
        if fh.seek(0, os.SEEK_END) == 0:
            return False
        fh.seek(-1, os.SEEK_END)
        return fh.read(1) != b"\n"


class LogWriter:
    """Appends model messages to their log files (the file of the message's account and UTC day).

    Files are opened in append mode and each line is written whole and flushed, so a reader sees complete
    lines (a crash can leave at most a truncated last line, which readers report and skip; the next run ends it
    before appending, so the line after it is whole).
    """

    def __init__(self, layout: Layout, fsync: bool = False):
        self.layout = layout
        self.fsync = fsync
        self._files: dict[Path, BinaryIO] = {}

    def _handle(self, path: Path) -> BinaryIO:
        fh = self._files.get(path)
        if fh is None:
            path.parent.mkdir(parents=True, exist_ok=True)
            fh = self._files[path] = path.open("ab")
            if _torn(path):  # a crash cut its last line: end it, or the next line would be glued to it and lost
                fh.write(b"\n")
            if len(self._files) > 512:  # keep the open files bounded (200 accounts x 3 logs, one day)
                oldest = next(iter(self._files))
                self._files.pop(oldest).close()
        return fh

    def path_for(self, msg: msgspec.Struct) -> Path:
        if isinstance(msg, TransferEvent):
            d = day_of(msg.event_ns)
            return self.layout.transfers(d.year, d.month)
        kind = _KIND_OF.get(type(msg))
        if kind is None:
            known = ", ".join(t.__name__ for t in (*LOG_TYPES.values(), TransferEvent))
            raise TypeError(f"no log for {type(msg).__name__} (logs: {known})")
        return self.layout.log(kind, day_of(msg.event_ns), msg.account)  # type: ignore[attr-defined]

    def append(self, msg: msgspec.Struct) -> Path:
        path = self.path_for(msg)
        fh = self._handle(path)
        fh.write(codec.encode(msg) + b"\n")
        fh.flush()
        if self.fsync:
            os.fsync(fh.fileno())
        return path

    def extend(self, msgs: list[msgspec.Struct]) -> None:
        for m in msgs:
            self.append(m)

    def close(self) -> None:
        for fh in self._files.values():
            fh.close()
        self._files.clear()

    def __enter__(self) -> LogWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def write_snapshot(layout: Layout, hour: datetime, account: str, state: dict[str, Any] | msgspec.Struct) -> Path:
    """Write one account's hourly state (a dict or a struct) atomically to its ``state.json``."""
    path = layout.snapshot(hour, account)
    path.parent.mkdir(parents=True, exist_ok=True)
    data = msgspec.json.encode(state)
    tmp = path.with_suffix(".json.tmp")
    tmp.write_bytes(data)
    tmp.replace(path)
    return path


def read_log(path: Path, kind: str, result: FileResult | None = None) -> Iterator[msgspec.Struct]:
    """The messages of one log file; a line that is not a valid ``kind`` message is reported (file, line)
    into ``result`` and skipped, or raises DecodeError naming file and line when there is no ``result``."""
    for _, msg in iter_log(path, kind, result):
        yield msg


def iter_log(path: Path, kind: str, result: FileResult | None = None) -> Iterator[tuple[int, msgspec.Struct]]:
    """(line number, message) of one log file (kind: one of ``LOG_KINDS`` or transfers); see ``read_log``."""
    t = LOG_TYPES[kind] if kind in LOG_TYPES else TransferEvent
    with path.open("rb") as fh:
        for number, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                yield number, codec.decode(line, t)
            except codec.DecodeError as exc:
                if result is None:
                    raise codec.DecodeError(f"{path}:{number}: {exc}") from None
                truncated = not line.endswith(b"\n")
                result.reject(number, ("truncated line: " if truncated else "") + str(exc), "bad line")


def snapshot_state(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text())
