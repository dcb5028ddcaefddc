"""systemd units for a checkout: the embedded services, the stream daemon and the flow runner.

The templates live in ``deploy/systemd/*.in`` (reviewable, one per kind of unit); ``render_units`` fills
them in for this checkout (its virtualenv's ``oms``, its configuration folder, the daemon's cores from
``configs/stream.yaml``) and ``write_units`` writes them to a folder. A line whose value is left empty
(``User=`` in user units, for instance) is dropped, so one template serves user and system units.
"""

from __future__ import annotations

import getpass
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from string import Template

from oms.config import PROJECT_ROOT, Config

TEMPLATES = PROJECT_ROOT / "deploy" / "systemd"

# name -> (description, units it starts after)
SERVICES = {
    "nats": ("nats-server with JetStream on 127.0.0.1", ""),
    "openbao": ("OpenBao (Vault-compatible), initialised and unsealed", ""),
    "prefect": ("Prefect server and UI on 127.0.0.1", ""),
    "localex": ("the local exchange (Binance-wire paper venue)", ""),
    "dask": ("Dask scheduler and preloaded workers for backtest sweeps", ""),
}


@dataclass(frozen=True)
class Unit:
    name: str  # file name, e.g. oms-nats.service
    text: str


def _oms_command() -> Path:
    """The ``oms`` entry point of the running interpreter's environment (the checkout's .venv)."""
    return Path(sys.executable).parent / "oms"


def _environment() -> str:
    """The ``OMS_*`` overrides in effect while rendering, carried into every unit (sorted, one a line)."""
    pairs = sorted((k, v) for k, v in os.environ.items() if k.startswith("OMS_") and k != "OMS_DEBUG")
    return "\n".join(f'Environment="{k}={v}"' for k, v in pairs)


def _render(template: str, values: dict[str, str]) -> str:
    lines = []
    for raw in (TEMPLATES / template).read_text().splitlines():
        line = Template(raw).substitute(values).rstrip()
        key, sep, value = line.partition("=")
        if raw.strip().startswith("${") and not line:
            continue  # a placeholder line with nothing to say (no environment overrides)
        if sep and not line.lstrip().startswith("#") and not value.strip():
            continue  # an option this kind of unit does not set (User= in user units)
        lines.extend(line.split("\n"))
    return "\n".join(lines) + "\n"


def render_units(cfg: Config, *, system: bool = False, config_dir: Path | None = None) -> list[Unit]:
    """Every unit of the platform, rendered for this checkout (user units unless ``system``)."""
    daemon = cfg.stream.daemon
    cores = sorted(set(daemon.cpu_cores) | set(daemon.kernel_cores))
    common = {
        "root": str(PROJECT_ROOT),
        "oms": str(_oms_command()),
        "config": str((config_dir or cfg.dir).resolve()),
        "environment": _environment(),
        "user": getpass.getuser() if system else "",
    }
    enabled = {"localex": cfg.stream.services.local_exchange.enabled, "dask": cfg.stream.services.dask.enabled}
    names = [n for n in SERVICES if enabled.get(n, True)]
    units = [
        Unit(
            f"oms-{name}.service",
            _render(
                "oms-service.service.in",
                {**common, "name": name, "description": SERVICES[name][0], "after": SERVICES[name][1]},
            ),
        )
        for name in names
    ]
    units.append(
        Unit(
            "oms-stream.service",
            _render(
                "oms-stream.service.in",
                {
                    **common,
                    "after": "oms-localex.service" if "localex" in names else "",
                    "cpu_affinity": " ".join(map(str, cores)),
                    # raising priority needs privileges a user manager does not have
                    "nice": "-5" if system else "",
                    "oom_score_adjust": "-500" if system else "",
                },
            ),
        )
    )
    units.append(Unit("oms-flows.service", _render("oms-flows.service.in", common)))
    units.append(
        Unit(
            "oms.target",
            _render(
                "oms.target.in",
                {
                    **common,
                    "units": " ".join(u.name for u in units),
                    "wanted_by": "multi-user.target" if system else "default.target",
                    "systemctl_scope": "" if system else "--user ",
                },
            ),
        )
    )
    return units


def write_units(units: list[Unit], dest: Path) -> list[Path]:
    dest.mkdir(parents=True, exist_ok=True)
    written = []
    for unit in units:
        path = dest / unit.name
        path.write_text(unit.text)
        written.append(path)
    return written
