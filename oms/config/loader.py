"""Load `configs/*.yaml` into typed models, collecting every problem as `file: key.path: reason`."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError

from oms.config.checks import cross_check
from oms.config.errors import ConfigError, Problem
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

    def account(self, exchange: str, name: str) -> AccountConfig:
        return self.accounts[exchange][name]

    def data_dir(self) -> Path:
        """Where services and archives keep their files (relative paths are under the project root)."""
        path = Path(self.stream.services.data_dir)
        return path if path.is_absolute() else (PROJECT_ROOT / path)

    def account_for_strategy(self, strategy: str) -> str:
        return self.routing.strategies.get(strategy, self.routing.default)

    def vault_path(self, exchange: str, account: str, market: str) -> str:
        """Vault KV path of an account's key for one market: `exchanges/{exchange}_{market}_{rest}`."""
        stem = self.accounts[exchange][account].api_key_vault_path
        rest = stem[len(exchange) + 1 :] if stem.startswith(exchange + "_") else stem
        return f"exchanges/{exchange}_{market}_{rest}"


class _UniqueKeyLoader(yaml.SafeLoader):
    """A SafeLoader that refuses duplicate mapping keys instead of silently keeping the last."""


def _construct_mapping(loader: _UniqueKeyLoader, node: yaml.MappingNode, deep: bool = False) -> dict:
    mapping: dict[Any, Any] = {}
    for key_node, value_node in node.value:
        key = loader.construct_object(key_node, deep=deep)
        if key in mapping:
            raise yaml.constructor.ConstructorError(None, None, f"duplicate key {key!r}", key_node.start_mark)
        mapping[key] = loader.construct_object(value_node, deep=deep)
    return mapping


_UniqueKeyLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)


def _read_yaml(path: Path, problems: list[Problem]) -> dict | None:
    name = path.name
    if not path.is_file():
        problems.append(Problem(name, "", f"file not found: {path}"))
        return None
    try:
        data = yaml.load(path.read_text(encoding="utf-8"), Loader=_UniqueKeyLoader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1} column {mark.column + 1}" if mark else ""
        reason = getattr(exc, "problem", None) or str(exc)
        problems.append(Problem(name, where, f"malformed YAML: {reason}"))
        return None
    except (OSError, UnicodeDecodeError) as exc:
        problems.append(Problem(name, "", f"cannot read: {exc}"))
        return None
    if data is None:
        data = {}
    if not isinstance(data, dict):
        problems.append(Problem(name, "", f"expected a mapping at the top level, got {type(data).__name__}"))
        return None
    return data


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
    put("exchanges.yaml", ("local_exchange", "port"), "OMS_LOCAL_EXCHANGE_PORT", int)
    exchanges = (raw.get("exchanges.yaml") or {}).get("exchanges") or {}
    for ex, stanza in exchanges.items() if isinstance(exchanges, dict) else ():
        put("exchanges.yaml", ("exchanges", ex, "venue"), f"OMS_{ex.upper()}_VENUE")
        markets = (stanza or {}).get("markets") or {} if isinstance(stanza, dict) else {}
        for market in markets if isinstance(markets, dict) else ():
            for field in ("rest_url", "ws_url", "ws_api_url"):
                var = f"OMS_{ex.upper()}_{str(market).upper()}_{field.upper()}"
                put("exchanges.yaml", ("exchanges", ex, "markets", market, "live", field), var)
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
            reason = err["msg"]
            if "input" in err and not isinstance(err["input"], dict | list):
                reason += f" (got {err['input']!r})"
        var = applied.get((file, loc))
        if var:
            reason += f" (set by environment variable {var})"
        out.append(Problem(file, key, reason))
    return out


def load_config(config_dir: str | os.PathLike | None = None, env: dict[str, str] | None = None) -> Config:
    """Load and validate every file in `config_dir` (default: the project's `configs/`).

    Raises `ConfigError` listing every problem (`file: key.path: reason`) if anything is wrong.
    """
    directory = Path(config_dir) if config_dir is not None else DEFAULT_CONFIG_DIR
    env = dict(os.environ) if env is None else env
    problems: list[Problem] = []
    if not directory.is_dir():
        raise ConfigError([Problem(str(directory), "", "configuration folder does not exist")])
    raw = {name: data for name in FILES if (data := _read_yaml(directory / name, problems)) is not None}
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
    )
