"""The outbox: an fsync'd local write-ahead file of events waiting for JetStream.

While NATS is unreachable (or an acknowledgement does not come), the publisher appends each event here
instead of losing it; when NATS returns, the file is replayed in order and removed. Each record is one JSON
line ``{"s": subject, "i": msg_id, "d": <the event's JSON>, "t": <write time, ns since the epoch>}``,
appended and fsync'd before ``append`` returns, so what ``append`` accepted survives a crash of the process
or the machine. The write time tells the replay whether JetStream still deduplicates the record by its
``Nats-Msg-Id`` (younger than the stream's duplicate window) or whether it must look it up in the stream
first (``oms.bus.replay``); a record written before the field existed reads as ``t=0``, i.e. old.

Draining never races new appends: ``seal()`` renames the active file to a numbered segment that only the
drainer reads and deletes, while new events go to a fresh active file. A line that cannot be read (the
torn last line of a crash mid-append, or damage) is counted, logged with its file and line number, and
skipped; the rest of the file is still delivered.
"""

from __future__ import annotations

import logging
import os
import time
from pathlib import Path

import msgspec

log = logging.getLogger("oms.bus.outbox")


class OutboxRecord(msgspec.Struct, frozen=True):
    s: str  # subject
    i: str  # Nats-Msg-Id
    d: msgspec.Raw  # the event's JSON, as encoded by the model's codec
    t: int = 0  # when it was first written to the outbox (ns since the epoch; 0: unknown, treated as old)


_enc = msgspec.json.Encoder()
_dec = msgspec.json.Decoder(OutboxRecord)


class Outbox:
    """Records waiting for JetStream, in the order they were appended, under ``directory``."""

    ACTIVE = "outbox.jsonl"

    def __init__(self, directory: Path | str):
        self.directory = Path(directory)
        try:
            self.directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        except OSError as exc:
            raise OSError(f"outbox directory {self.directory}: {exc.strerror or exc}") from exc
        self.bad_lines = 0
        self._fd: int | None = None
        self._lines: dict[Path, int] = {}  # lines of each segment read, taken off the count once delivered
        self._terminate_torn_line()
        self._pending = self._count_existing()

    # ------------------------------------------------------------------ writing
    def _open(self) -> int:
        if self._fd is None:
            path = self.directory / self.ACTIVE
            self._fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        return self._fd

    def append(self, records: list[OutboxRecord]) -> None:
        """Write ``records`` durably (one write, then fsync) before returning; a record without a write time
        gets now (one written before keeps its own: a drain that re-queues a record does not make it young)."""
        if not records:
            return
        now = time.time_ns()
        stamped = (r if r.t else msgspec.structs.replace(r, t=now) for r in records)
        data = b"".join(_enc.encode(r) + b"\n" for r in stamped)
        fd = self._open()
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]
        os.fsync(fd)
        self._pending += len(records)

    def __len__(self) -> int:
        """Records written and not yet delivered (as far as this process knows)."""
        return self._pending

    # ------------------------------------------------------------------ draining
    def segments(self) -> list[Path]:
        """Sealed segments waiting for delivery, oldest first."""
        return sorted(self.directory.glob("outbox.*.sealed.jsonl"), key=lambda p: int(p.name.split(".")[1]))

    def seal(self) -> Path | None:
        """Close the active file and make it the newest segment (None when there was nothing in it)."""
        active = self.directory / self.ACTIVE
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
        if not active.exists() or active.stat().st_size == 0:
            return None
        segs = self.segments()
        n = int(segs[-1].name.split(".")[1]) + 1 if segs else 1
        target = self.directory / f"outbox.{n:08d}.sealed.jsonl"
        os.replace(active, target)
        self._fsync_dir()
        return target

    def read(self, segment: Path) -> list[OutboxRecord]:
        """The records of one segment, in order; unreadable lines are counted, logged and skipped."""
        out: list[OutboxRecord] = []
        lines = 0
        with open(segment, "rb") as fh:
            for lineno, line in enumerate(fh, 1):
                if not line.strip():
                    continue
                lines += 1
                try:
                    out.append(_dec.decode(line))
                except msgspec.DecodeError as exc:
                    self.bad_lines += 1
                    log.warning("outbox %s line %d skipped (unreadable, %d bytes): %s", segment, lineno, len(line), exc)
        self._lines[segment] = lines
        return out

    def delivered(self, segment: Path) -> None:
        """Every readable record of ``segment`` (as ``read`` returned them) is in JetStream: remove it."""
        segment.unlink()
        self._fsync_dir()
        self._pending = max(0, self._pending - self._lines.pop(segment, 0))

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    # ------------------------------------------------------------------ helpers
    def _terminate_torn_line(self) -> None:
        """End a line a crash left half-written, so the next record does not land on the same line."""
        path = self.directory / self.ACTIVE
        if not path.exists() or path.stat().st_size == 0:
            return
        with open(path, "rb+") as fh:
            fh.seek(-1, os.SEEK_END)
            if fh.read(1) != b"\n":
                fh.write(b"\n")
                fh.flush()
                os.fsync(fh.fileno())

    def _count_existing(self) -> int:
        n = 0
        for path in [*self.segments(), self.directory / self.ACTIVE]:
            if path.exists():
                with open(path, "rb") as fh:
                    n += sum(1 for line in fh if line.strip())
        return n

    def _fsync_dir(self) -> None:
        fd = os.open(self.directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
