"""The built-in strategy kinds and the validation of ``configs/strategies.yaml`` parameters against them."""

from __future__ import annotations

from pydantic import ValidationError

from oms.config import Config, Problem
from strategies import arbitrage, basis, market_making, sma_cross, template
from strategies.base import Params, Strategy

BUILTINS: dict[str, Strategy] = {
    m.STRATEGY.kind: m.STRATEGY for m in (sma_cross, market_making, arbitrage, basis, template)
}


def kind_of(name: str, kind: str | None) -> str:
    return kind or name


def get(kind: str) -> Strategy:
    """The built-in ``kind``, or KeyError naming the known kinds."""
    try:
        return BUILTINS[kind]
    except KeyError:
        raise KeyError(f"unknown strategy kind {kind!r} (built-ins: {', '.join(sorted(BUILTINS))})") from None


def configured(cfg: Config) -> tuple[dict[str, tuple[Strategy, Params]], list[Problem]]:
    """Each configured strategy with its validated parameters, and every problem as file/key/reason."""
    out: dict[str, tuple[Strategy, Params]] = {}
    problems: list[Problem] = []
    for name, sc in cfg.strategies.items():
        kind = kind_of(name, sc.kind)
        if kind not in BUILTINS:
            problems.append(Problem("strategies.yaml", f"strategies.{name}.kind", f"unknown kind {kind!r} "
                                    f"(built-ins: {', '.join(sorted(BUILTINS))})"))  # fmt: skip
            continue
        strategy = BUILTINS[kind]
        try:
            out[name] = (strategy, strategy.params_model.model_validate(sc.params))
        except ValidationError as exc:
            for err in exc.errors():
                key = ".".join(str(p) for p in err["loc"])
                where = f"strategies.{name}.params" + (f".{key}" if key else "")
                reason = "unknown key" if err["type"] == "extra_forbidden" else err["msg"]
                if "input" in err and not isinstance(err["input"], dict | list) and err["type"] != "extra_forbidden":
                    reason += f" (got {err['input']!r})"
                problems.append(Problem("strategies.yaml", where, reason))
    return out, problems
