"""Structured, rotated log files: one for the daemon and one per account, with secrets removed.

``install(log_dir, accounts, max_bytes, backups)`` puts ``oms.keys.redact``'s filter in front of every record
and adds ``AccountLogRouter`` to the root logger: each record becomes one JSON line
(``{"ts", "level", "logger", "account", "msg"}``) in ``{log_dir}/daemon.jsonl``, and also in
``{log_dir}/{exchange}/{account}.jsonl`` for the account it concerns: the record's ``account`` attribute
(``extra={"account": ...}``) or, failing that, each owned account its message names (``binance/sub_mm``).
Files rotate at ``max_bytes`` keeping ``backups`` old ones (``logging.handlers.RotatingFileHandler``).
"""

from __future__ import annotations

import json
import logging
import logging.handlers
import time
from pathlib import Path

from oms.keys.redact import RedactingFilter, install_redaction


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        doc = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created)) + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "account": getattr(record, "account", ""),
            "msg": record.getMessage(),
        }
        if record.exc_info:
            doc["exc"] = self.formatException(record.exc_info)
        return json.dumps(doc, ensure_ascii=False)


class AccountLogRouter(logging.Handler):
    def __init__(self, log_dir: Path, accounts: list[str], max_bytes: int, backups: int):
        super().__init__(logging.INFO)
        self.addFilter(RedactingFilter())  # also when another library replaced the record factory
        self.log_dir = Path(log_dir)
        self.log_dir.mkdir(parents=True, exist_ok=True)
        self.accounts = list(accounts)
        self.max_bytes, self.backups = max_bytes, backups
        self.formatter_ = JsonFormatter()
        self.main = self._file(self.log_dir / "daemon.jsonl")
        self.per_account: dict[str, logging.Handler] = {}

    def _file(self, path: Path) -> logging.Handler:
        path.parent.mkdir(parents=True, exist_ok=True)
        h = logging.handlers.RotatingFileHandler(
            path, maxBytes=self.max_bytes, backupCount=self.backups, encoding="utf-8"
        )
        h.setFormatter(self.formatter_)
        return h

    def path_of(self, account: str) -> Path:
        exchange, _, name = account.partition("/")
        return self.log_dir / exchange / f"{name}.jsonl"

    def emit(self, record: logging.LogRecord) -> None:
        try:
            self.main.handle(record)
            named = getattr(record, "account", "")
            targets = [named] if named else [a for a in self.accounts if a in record.getMessage()]
            for account in targets:
                h = self.per_account.get(account)
                if h is None:
                    h = self.per_account[account] = self._file(self.path_of(account))
                h.handle(record)
        except Exception:
            self.handleError(record)

    def close(self) -> None:
        for h in (self.main, *self.per_account.values()):
            h.close()
        super().close()


def install(log_dir: Path, accounts: list[str], max_bytes: int, backups: int) -> AccountLogRouter:
    install_redaction()
    router = AccountLogRouter(log_dir, accounts, max_bytes, backups)
    root = logging.getLogger()
    root.addHandler(router)
    if root.level > logging.INFO or root.level == logging.NOTSET:
        root.setLevel(logging.INFO)
    return router


def uninstall(router: AccountLogRouter) -> None:
    logging.getLogger().removeHandler(router)
    router.close()
