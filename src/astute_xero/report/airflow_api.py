"""Airflow's own REST API, called for a user of the report's pages with that user's own Airflow token.

The pages start DAG runs and read their state only through `/api/v2` of the API server that serves them, so
Airflow's auth manager decides (again) whether the user may, the run is recorded with the user as its
triggering user, and Params are validated as for the UI's trigger form: there is no second code path.

The request goes to the API server's own ASGI app, in the process that received the page's request (the app
that mounted ours): the whole of Airflow's app handles it (middleware, authentication, the route) as it
would over HTTP, without a loopback address, port or TLS certificate to configure, and the user's token
never leaves the process.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import httpx

API = "/api/v2"
ACTIVE_STATES = ("queued", "running")
TIMEOUT_S = 30.0


class AirflowApiError(RuntimeError):
    """Airflow answered an error: its status and its own words (e.g. a Param that fails validation)."""

    def __init__(self, status: int, detail: str) -> None:
        super().__init__(f"Airflow answered {status}: {detail}")
        self.status = status
        self.detail = detail


@dataclass(frozen=True)
class DagRun:
    dag_id: str
    run_id: str
    state: str
    conf: dict[str, Any]
    triggering_user: str | None

    @property
    def active(self) -> bool:
        return self.state in ACTIVE_STATES

    @classmethod
    def from_json(cls, body: dict[str, Any]) -> DagRun:
        return cls(body["dag_id"], body["dag_run_id"], body["state"], body.get("conf") or {},
                   body.get("triggering_user_name"))


class AirflowApi:
    """`/api/v2` of the API server `app`, as the user whose token this is."""

    def __init__(self, app: Any, token: str) -> None:
        self._app = app
        self._token = token

    async def _call(self, method: str, path: str, **kwargs: Any) -> Any:
        transport = httpx.ASGITransport(app=self._app)
        async with httpx.AsyncClient(transport=transport, base_url="http://airflow-api-server",
                                     timeout=TIMEOUT_S) as client:
            response = await client.request(method, API + path, headers={"Authorization": f"Bearer {self._token}"},
                                            **kwargs)
        if response.status_code >= 400:
            try:
                detail = response.json().get("detail", response.text)
            except ValueError:
                detail = response.text
            raise AirflowApiError(response.status_code, detail if isinstance(detail, str) else str(detail))
        return response.json()

    async def trigger(self, dag_id: str, conf: dict[str, Any], note: str | None = None) -> DagRun:
        """POST /dags/{dag_id}/dagRuns: a manual run now, with `conf` (validated against the DAG's Params)."""
        body = {"logical_date": None, "conf": conf, **({"note": note} if note else {})}
        return DagRun.from_json(await self._call("POST", f"/dags/{quote(dag_id, safe='')}/dagRuns", json=body))

    async def dag_run(self, dag_id: str, run_id: str) -> DagRun:
        return DagRun.from_json(await self._call(
            "GET", f"/dags/{quote(dag_id, safe='')}/dagRuns/{quote(run_id, safe='')}"))

    async def active_runs(self, dag_id: str) -> list[DagRun]:
        """The DAG's queued and running runs."""
        body = await self._call("GET", f"/dags/{quote(dag_id, safe='')}/dagRuns",
                                params=[("state", state) for state in ACTIVE_STATES] + [("limit", "100")])
        return [DagRun.from_json(run) for run in body["dag_runs"]]
