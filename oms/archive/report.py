"""What an import or a compaction did: rows written per file, and every row or file it refused, with where."""

from __future__ import annotations

import logging
from collections import Counter
from dataclasses import dataclass, field

log = logging.getLogger("oms.archive")

# detailed rejections kept per file; beyond it they are still counted (per reason), never dropped silently
MAX_DETAILS_PER_FILE = 10_000


@dataclass(frozen=True, slots=True)
class Rejection:
    """One refused row (``line`` 1-based, 0 when it could not be located) or whole file (None), and why."""

    file: str
    line: int | None
    reason: str

    def __str__(self) -> str:
        if self.line is None:
            return f"{self.file}: {self.reason}"
        return f"{self.file}:{self.line or '?'}: {self.reason}"


@dataclass
class FileResult:
    """One source file: where its rows went, how many, and what was refused."""

    source: str
    table: str
    rows: int = 0
    rejected_rows: int = 0
    skipped: str | None = None  # why the whole file was refused
    rejections: list[Rejection] = field(default_factory=list)
    reasons: Counter[str] = field(default_factory=Counter)
    outputs: list[str] = field(default_factory=list)

    def reject(self, line: int | None, reason: str, kind: str | None = None) -> None:
        """Count a refused row (or the file when ``line`` is None) and keep its detail up to the cap."""
        if line is None:
            self.skipped = reason
        else:
            self.rejected_rows += 1
        self.reasons[kind or reason] += 1
        if len(self.rejections) < MAX_DETAILS_PER_FILE:
            r = Rejection(self.source, line, reason)
            self.rejections.append(r)
            log.warning("archive: rejected %s", r)


@dataclass
class Report:
    """All files of one run."""

    files: list[FileResult] = field(default_factory=list)

    @property
    def rows(self) -> int:
        return sum(f.rows for f in self.files)

    @property
    def rejected_rows(self) -> int:
        return sum(f.rejected_rows for f in self.files)

    @property
    def skipped_files(self) -> list[FileResult]:
        return [f for f in self.files if f.skipped]

    @property
    def rejections(self) -> list[Rejection]:
        return [r for f in self.files for r in f.rejections]

    @property
    def clean(self) -> bool:
        return not self.rejected_rows and not self.skipped_files

    def rows_by_table(self) -> dict[str, int]:
        out: Counter[str] = Counter()
        for f in self.files:
            out[f.table] += f.rows
        return dict(out)

    def summary(self) -> str:
        tables = ", ".join(f"{t} {n:,}" for t, n in sorted(self.rows_by_table().items())) or "nothing"
        return (
            f"{len(self.files)} file(s): {self.rows:,} rows ({tables}); "
            f"{self.rejected_rows:,} row(s) rejected, {len(self.skipped_files)} file(s) skipped"
        )
