"""Load `configs/*.yaml` into typed models, collecting every problem as `file: key.path: reason`."""

from __future__ import annotations

import errno
import os
import stat
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError

from oms.config.checks import cross_check
from oms.config.errors import ConfigError, Problem
from oms.config.machine import data_dir_problem
from oms.config.models import (
    AccountConfig,
    AccountRouting,
    AccountsFile,
    ExchangesFile,
    RiskConfig,
    StrategiesFile,
    StrategyConfig,
    StreamFile,
)
from oms.config.yamlfile import read_yaml

FILES: dict[str, type[BaseModel]] = {
    "accounts.yaml": AccountsFile,
    "exchanges.yaml": ExchangesFile,
    "risk.yaml": RiskConfig,
    "strategies.yaml": StrategiesFile,
    "stream.yaml": StreamFile,
}

# Keys that moved or were renamed: old dotted path suffix -> where it lives now.
MOVED_KEYS: dict[str, str] = {
    "api_key_path": "renamed to `api_key_vault_path`",
    "vault_path": "renamed to `api_key_vault_path`",
    "futures": "renamed to `futures_enabled`",
    "spot": "renamed to `spot_enabled`",
    "leverage": "renamed to `max_leverage`",
    "routing": "moved to `account_routing` in accounts.yaml",
    "cores": "renamed to `cpu_cores` (daemon) or `kernel_cores`",
}

# A top-level key starting with this holds YAML anchors only (`x-limits: &limits {...}`, then
# `<<: *limits`); it is dropped before validation, as docker compose does with its extension fields.
ANCHOR_PREFIX = "x-"

PROJECT_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_CONFIG_DIR = PROJECT_ROOT / "configs"


@dataclass(frozen=True)
class Config:
    """All of `configs/`, validated and cross-checked."""

    dir: Path
    accounts: dict[str, dict[str, AccountConfig]]
    routing: AccountRouting
    exchanges: ExchangesFile
    risk: RiskConfig
    strategies: dict[str, StrategyConfig]
    stream: StreamFile
    overrides: dict[tuple[str, tuple[str, ...]], str] = field(default_factory=dict)

    def origin(self, file: str, *path: str) -> str:
        """Where a setting came from: its environment variable, or its file and key (for error hints)."""
        var = self.overrides.get((file, tuple(path)))
        if var:
            return f"environment variable {var}"
        return f"{self.dir / file} ({'.'.join(path)})"

    def account(self, exchange: str, name: str) -> AccountConfig:
        return self.accounts[exchange][name]

    def data_dir(self) -> Path:
        """Where services and archives keep their files (relative paths are under the project root)."""
        return resolve_data_dir(self.stream.services.data_dir)

    def account_for_strategy(self, strategy: str) -> str:
        return self.routing.strategies.get(strategy, self.routing.default)

    def strategy_legs(self, strategy: str) -> list[tuple[str, str, str, str]]:
        """(exchange, account, market, symbol) of each instrument ``strategy`` trades, in binding order."""
        sc = self.strategies[strategy]
        return sc.bound_legs(self.account_for_strategy(strategy), self.routing.default)

    def vault_path(self, exchange: str, account: str, market: str) -> str:
        """Vault KV path of an account's key for one market: `exchanges/{exchange}_{market}_{rest}`."""
        stem = self.accounts[exchange][account].api_key_vault_path
        rest = stem[len(exchange) + 1 :] if stem.startswith(exchange + "_") else stem
        return f"exchanges/{exchange}_{market}_{rest}"


def resolve_data_dir(value: str) -> Path:
    """The data folder a `services.data_dir` setting names (relative paths are under the project root)."""
    path = Path(value).expanduser()
    return path if path.is_absolute() else (PROJECT_ROOT / path)


def _folder_problem(directory: Path) -> str | None:
    """Why the configuration folder cannot be read, or None."""
    try:
        st = os.stat(directory)
    except FileNotFoundError:
        return "configuration folder does not exist"
    except PermissionError:
        return f"configuration folder cannot be reached: permission denied on {directory.parent}"
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            return "configuration folder is a symbolic link loop"
        return f"configuration folder cannot be read: {exc.strerror or exc}"
    if not stat.S_ISDIR(st.st_mode):
        return "is not a folder (give the configuration folder, e.g. configs/)"
    try:
        os.listdir(directory)
    except PermissionError:
        return "configuration folder is not readable: permission denied"
    except OSError as exc:
        return f"configuration folder cannot be read: {exc.strerror or exc}"
    return None


def _set(data: dict, path: tuple[str, ...], value: Any) -> None:
    node = data
    for key in path[:-1]:
        nxt = node.get(key)
        if not isinstance(nxt, dict):
            nxt = {}
            node[key] = nxt
        node = nxt
    node[path[-1]] = value


def _env_overrides(raw: dict[str, dict], env: dict[str, str]) -> dict[tuple[str, tuple[str, ...]], str]:
    """Apply deployment overrides from the environment to the raw YAML; returns what was set by which var."""
    applied: dict[tuple[str, tuple[str, ...]], str] = {}

    def put(file: str, path: tuple[str, ...], var: str, convert=str) -> None:
        if var in env and file in raw:
            try:
                value = convert(env[var])
            except ValueError:
                value = env[var]
            _set(raw[file], path, value)
            applied[(file, path)] = var

    put("stream.yaml", ("services", "data_dir"), "OMS_DATA_DIR")
    for svc in ("nats", "openbao", "prefect"):
        put("stream.yaml", ("services", svc, "port"), f"OMS_{svc.upper()}_PORT", int)
    put("stream.yaml", ("services", "nats", "monitor_port"), "OMS_NATS_MONITOR_PORT", int)
    put("stream.yaml", ("services", "prefect", "host"), "OMS_PREFECT_HOST")
    put("stream.yaml", ("services", "openbao", "cluster_port"), "OMS_OPENBAO_CLUSTER_PORT", int)
    put("exchanges.yaml", ("local_exchange", "port"), "OMS_LOCAL_EXCHANGE_PORT", int)
    exchanges = (raw.get("exchanges.yaml") or {}).get("exchanges") or {}
    for ex, stanza in exchanges.items() if isinstance(exchanges, dict) else ():
        put("exchanges.yaml", ("exchanges", ex, "venue"), f"OMS_{ex.upper()}_VENUE")
        markets = (stanza or {}).get("markets") or {} if isinstance(stanza, dict) else {}
        for market in markets if isinstance(markets, dict) else ():
            for endpoint in ("rest_url", "ws_url", "ws_api_url"):
                var = f"OMS_{ex.upper()}_{str(market).upper()}_{endpoint.upper()}"
                put("exchanges.yaml", ("exchanges", ex, "markets", market, "live", endpoint), var)
    accounts = (raw.get("accounts.yaml") or {}).get("accounts") or {}
    for ex, accts in accounts.items() if isinstance(accounts, dict) else ():
        for acct in accts if isinstance(accts, dict) else ():
            var = f"OMS_{str(ex).upper()}_{str(acct).upper()}_VAULT_PATH"
            put("accounts.yaml", ("accounts", ex, acct, "api_key_vault_path"), var)
    return applied


def _validation_problems(file: str, exc: ValidationError, applied: dict) -> list[Problem]:
    out = []
    for err in exc.errors():
        loc = tuple(str(p) for p in err["loc"])
        key = ".".join(loc)
        if err["type"] == "extra_forbidden":
            hint = MOVED_KEYS.get(loc[-1]) if loc else None
            reason = f"unknown key ({hint})" if hint else "unknown key"
        elif err["type"] == "missing":
            reason = "required key is missing"
        else:
            reason = err["msg"].removeprefix("Value error, ")
            if "input" in err and not isinstance(err["input"], dict | list):
                reason += f" (got {err['input']!r})"
        var = applied.get((file, loc))
        if var:
            reason += f" (set by environment variable {var})"
        out.append(Problem(file, key, reason))
    return out


def _data_dir_problems(stream_file: StreamFile, applied: dict) -> list[Problem]:
    """The data folder must be usable by the services: the same check `oms.services` runs at `up`."""
    path = resolve_data_dir(stream_file.services.data_dir)
    reason = data_dir_problem(path)
    if reason is None:
        return []
    var = applied.get(("stream.yaml", ("services", "data_dir")))
    if var:
        reason += f" (set by environment variable {var})"
    return [Problem("stream.yaml", "services.data_dir", reason)]


def load_config(config_dir: str | os.PathLike | None = None, env: dict[str, str] | None = None) -> Config:
    """Load and validate every file in `config_dir` (default: ``OMS_CONFIG_DIR``, else the project's `configs/`).

    Raises `ConfigError` listing every problem (`file: key.path: reason`) if anything is wrong.
    """
    env = dict(os.environ) if env is None else env
    if config_dir is None and env.get("OMS_CONFIG_DIR"):
        config_dir = env["OMS_CONFIG_DIR"]  # what `oms up --config DIR` gives the flow runner
    directory = Path(config_dir) if config_dir is not None else DEFAULT_CONFIG_DIR
    problems: list[Problem] = []
    folder = _folder_problem(directory)
    if folder:
        raise ConfigError([Problem(str(directory), "", folder)])
    raw = {name: data for name in FILES if (data := read_yaml(directory / name, problems)) is not None}
    for data in raw.values():  # top-level `x-...` keys only hold YAML anchors for `<<: *name` merges
        for key in [k for k in data if k.startswith(ANCHOR_PREFIX)]:
            del data[key]
    applied = _env_overrides(raw, env)
    models: dict[str, BaseModel] = {}
    for name, model in FILES.items():
        if name not in raw:
            continue
        try:
            models[name] = model.model_validate(raw[name])
        except ValidationError as exc:
            problems.extend(_validation_problems(name, exc, applied))
    problems.extend(cross_check(*(models.get(name) for name in FILES)))  # type: ignore[arg-type]
    stream_file = models.get("stream.yaml")
    if isinstance(stream_file, StreamFile):
        problems.extend(_data_dir_problems(stream_file, applied))
    if problems:
        order = {name: i for i, name in enumerate(FILES)}
        raise ConfigError(sorted(problems, key=lambda p: order.get(p.file, -1)))
    accounts_file: AccountsFile = models["accounts.yaml"]  # type: ignore[assignment]
    return Config(
        dir=directory,
        accounts=accounts_file.accounts,
        routing=accounts_file.account_routing,
        exchanges=models["exchanges.yaml"],  # type: ignore[arg-type]
        risk=models["risk.yaml"],  # type: ignore[arg-type]
        strategies=models["strategies.yaml"].strategies,  # type: ignore[attr-defined]
        stream=models["stream.yaml"],  # type: ignore[arg-type]
        overrides=applied,
    )
