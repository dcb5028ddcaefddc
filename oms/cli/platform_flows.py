"""What `oms up` does once the flow runner serves its deployments: one run of each deployment named in
``stream.yaml services.flows.run_at_start`` (snapshot and pnl-report by default), so the Prefect UI shows
completed runs and their artifacts minutes after the start instead of at the next schedule.

The runs are created through the Prefect server's REST API (``POST /api/deployments/{id}/create_flow_run``)
with the deployment ids the runner wrote to its ready file; the runner picks them up like scheduled ones.
A name that is not a served deployment is reported (with the names there are) and the others still run.
"""

from __future__ import annotations

import base64
import json
import urllib.error
import urllib.request
from collections.abc import Callable

from oms.services import Services
from oms.services.prefect import ensure_auth_string, needs_auth


class StartupRuns:
    """``on_started`` hook of ``Services.up``: after ``flows``, one run of each ``names`` deployment."""

    def __init__(self, services: Services, names: list[str], report: Callable[[str], None]):
        self.services, self.names, self.report = services, list(names), report
        self.created: dict[str, str] = {}  # deployment name -> flow run id

    def __call__(self, name: str) -> None:
        if name != "flows" or not self.names:
            return
        flows = self.services["flows"]
        try:
            served = json.loads(flows.ready_file.read_text()).get("deployments", {})
        except (OSError, ValueError) as exc:
            self.report(f"flows:   no run started at start: the runner's ready file is unreadable ({exc})")
            return
        unknown = [n for n in self.names if n not in served]
        if unknown:
            self.report(
                f"flows:   stream.yaml services.flows.run_at_start names {', '.join(unknown)}, which prefect.yaml "
                f"does not serve (it serves {', '.join(sorted(served))}); not run"
            )
        for n in self.names:
            if n in served:
                try:
                    self.created[n] = self._create_run(served[n])
                except OSError as exc:
                    self.report(f"flows:   could not start a run of {n}: {exc}")
        if self.created:
            self.report(f"flows:   one run of {', '.join(self.created)} started (Prefect UI: flow runs)")

    def _create_run(self, deployment_id: str) -> str:
        prefect = self.services["prefect"]
        url = f"{prefect.address}/api/deployments/{deployment_id}/create_flow_run"
        headers = {"Content-Type": "application/json"}
        if needs_auth(self.services.settings):
            token = base64.b64encode(ensure_auth_string(self.services.settings).encode()).decode()
            headers["Authorization"] = f"Basic {token}"
        body = json.dumps({"tags": ["oms-up"]}).encode()
        request = urllib.request.Request(url, data=body, headers=headers, method="POST")
        try:
            with urllib.request.urlopen(request, timeout=30) as resp:
                return str(json.loads(resp.read())["id"])
        except urllib.error.HTTPError as exc:
            raise OSError(f"Prefect answered {exc.code}: {exc.read()[:200]!r}") from exc


def chain(*hooks: Callable[[str], None] | None) -> Callable[[str], None]:
    """One ``on_started`` hook that calls each of ``hooks`` in order."""
    present = [h for h in hooks if h is not None]

    def run(name: str) -> None:
        for h in present:
            h(name)

    return run
