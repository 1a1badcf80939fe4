"""The Compose demo's stand-ins for Astute and Xero, as docker-compose.yaml runs them.

    python -m devtools.compose_init xero-sandbox [--host 0.0.0.0] [--port 8765]
    python -m devtools.compose_init astute-db

``xero-sandbox`` serves the Xero sandbox (the server `python -m xero_sandbox` runs), seeded as `make demo`
seeds it (devtools.demo_data.seed_xero: two organisations, a Contact and an invoice someone keyed in by
hand), with the organisations' ids fixed here, and with the app that AIRFLOW_CONN_XERO_DEFAULT describes:
its client id and secret registered (an app made after 2 March 2026: granular scopes only), consented to
both organisations, its refresh-token chain starting at the connection's `refresh_token`. So the
connection in .env works as it stands, and Astute's demo billing entities point at organisations that exist.
The sandbox keeps everything in memory: a restarted container is a fresh Xero (README, Deployment).

``astute-db`` loads Astute's schema (include/sql/astute_schema.sql) and the demo data
(devtools.demo_data.load_astute, its entities linked to the organisations above) into the database
AIRFLOW_CONN_ASTUTE_DB names, once: both in one transaction, and only while that database has no `astute`
schema. Run again (every `docker compose up` runs it), it changes nothing; it never drops anything.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

import psycopg
from psycopg import conninfo

from astute_xero.xero.scopes import AUTHORIZATION_CODE, GRANULAR_SCOPES
from devtools import astute_db, demo_data
from devtools.xero_setup import APP_CREATED
from xero_sandbox import SandboxBackend, XeroSandbox

# The demo organisations' ids in the sandbox, fixed so that Astute's billing entities (loaded once, kept in
# the astute-db volume) still point at them after the sandbox container starts again.
DEMO_TENANT_IDS = {
    demo_data.AU_ORG: "3f6c1d0e-5a8b-4c1e-9d2f-0a7b6c5d4e31",
    demo_data.NZ_ORG: "8b2e4f6a-1c3d-4e5f-a7b9-c0d1e2f3a4b5",
}
ASTUTE_CONN_ENV = "AIRFLOW_CONN_ASTUTE_DB"
XERO_CONN_ENV = "AIRFLOW_CONN_XERO_DEFAULT"


def airflow_connection(env_name: str, value: str | None = None) -> dict[str, Any]:
    """An Airflow connection from its environment variable, as Airflow reads it: JSON, or a URI (extras as
    query parameters, or JSON in `__extra__`). `extra` comes back as a dict."""
    value = (os.environ.get(env_name, "") if value is None else value).strip()
    if not value:
        raise SystemExit(f"{env_name} is not set: copy .env.example to .env (docker/make-env.sh does it)")
    if value.startswith("{"):
        connection = json.loads(value)
    else:
        parts = urlsplit(value)
        query = dict(parse_qsl(parts.query, keep_blank_values=True))
        extra = json.loads(query.pop("__extra__")) if "__extra__" in query else query
        connection = {
            "conn_type": parts.scheme.replace("-", "_"),
            "host": unquote(parts.hostname) if parts.hostname else None,
            "port": parts.port,
            "login": unquote(parts.username) if parts.username else None,
            "password": unquote(parts.password) if parts.password else None,
            "schema": unquote(parts.path.lstrip("/")) or None,
            "extra": extra,
        }
    extra = connection.get("extra") or {}
    connection["extra"] = json.loads(extra) if isinstance(extra, str) and extra.strip() else (extra or {})
    return connection


# ---------------------------------------------------------------------------------------------- Xero
class _FixedTenantIds:
    """The sandbox backend as demo_data.seed_xero sees it: each organisation is made with its fixed id."""

    def __init__(self, backend: SandboxBackend, ids: dict[str, str]) -> None:
        self._backend = backend
        self._ids = ids

    def add_tenant(self, name: str, tenant_id: str | None = None, **kwargs: Any) -> str:
        if name not in self._ids:
            raise KeyError(f"the demo organisation {name!r} has no fixed id in devtools.compose_init.DEMO_TENANT_IDS")
        return self._backend.add_tenant(name, tenant_id=self._ids[name], **kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._backend, name)


def seed_sandbox(backend: SandboxBackend, connection: dict[str, Any]) -> dict[str, str]:
    """The demo's organisations, and the app `connection` (xero_default) names, consented to all of them with
    the connection's refresh token as the first of its chain. Call before the sandbox serves requests."""
    extra = connection["extra"]
    client_id, client_secret = connection.get("login"), connection.get("password")
    refresh_token = extra.get("refresh_token")
    if extra.get("grant_type", AUTHORIZATION_CODE) != AUTHORIZATION_CODE:
        raise SystemExit(f"{XERO_CONN_ENV}: the demo reaches two organisations, so its app uses the authorization "
                         "code grant (a Custom Connection reaches one); remove grant_type from its extra")
    if not (client_id and client_secret and refresh_token):
        raise SystemExit(f"{XERO_CONN_ENV} needs login (client id), password (client secret) and "
                         "extra.refresh_token for the sandbox to register")
    tenants = demo_data.seed_xero(_FixedTenantIds(backend, DEMO_TENANT_IDS))
    backend.identity.register_app(client_id, client_secret, created=APP_CREATED)
    backend.authorise(client_id, list(tenants.values()), scope=extra.get("scope") or GRANULAR_SCOPES,
                      refresh_token=refresh_token)
    return tenants


def serve_sandbox(host: str, port: int) -> None:
    connection = airflow_connection(XERO_CONN_ENV)
    backend = SandboxBackend()
    tenants = seed_sandbox(backend, connection)
    sandbox = XeroSandbox.start(host=host, port=port, backend=backend)
    names = ", ".join(f"{name} ({tenant_id})" for name, tenant_id in tenants.items())
    print(f"Xero sandbox listening on {sandbox.url}; organisations: {names}; app {connection['login']} "
          "consented to both (state in memory only)", flush=True)
    sandbox.serve_until_stopped()


# ---------------------------------------------------------------------------------------------- Astute
def libpq_url(connection: dict[str, Any]) -> str:
    """A libpq conninfo for a postgres Airflow connection (Airflow's `schema` is the database)."""
    params = {"host": connection.get("host"), "port": connection.get("port"), "user": connection.get("login"),
              "password": connection.get("password"), "dbname": connection.get("schema")}
    return conninfo.make_conninfo(**{key: str(value) for key, value in params.items() if value not in (None, "")})


def _connect(url: str, attempts: int = 30, wait_s: float = 2.0) -> psycopg.Connection:
    for attempt in range(1, attempts + 1):
        try:
            return psycopg.connect(url, autocommit=True, connect_timeout=10)
        except psycopg.OperationalError as error:
            if attempt == attempts:
                raise SystemExit(f"cannot reach the Astute database after {attempts} attempts: {error}") from None
            time.sleep(wait_s)
    raise AssertionError("unreachable")


def load_astute_demo(url: str) -> bool:
    """Astute's schema and the demo data, in one transaction, if the database has no `astute` schema yet.
    True when loaded, False when it was already there (nothing is changed then)."""
    with _connect(url) as conn:
        with conn.transaction():
            conn.execute("SELECT pg_advisory_xact_lock(hashtext('devtools.compose_init astute-db'))")
            (present,) = conn.execute("SELECT to_regnamespace('astute') IS NOT NULL").fetchone()
            if present:
                return False
            conn.execute(astute_db.SCHEMA_SQL.read_text(encoding="utf-8"))
            demo_data.load_astute(conn, DEMO_TENANT_IDS)
        rows = conn.execute(
            "SELECT e.name, coalesce(e.xero_tenant_id, '-'), count(i.id) FROM astute.billing_entity e "
            "LEFT JOIN astute.invoice i ON i.billing_entity_id = e.id GROUP BY 1, 2 ORDER BY 1"
        ).fetchall()
    for name, tenant_id, invoices in rows:
        print(f"  {name}: {invoices} invoice(s), Xero organisation {tenant_id}")
    return True


def load_astute() -> None:
    connection = airflow_connection(ASTUTE_CONN_ENV)
    where = f"{connection.get('host')}:{connection.get('port') or 5432}/{connection.get('schema')}"
    print(f"Astute database {where}: loading Astute's schema and the demo data unless it has them ...", flush=True)
    if load_astute_demo(libpq_url(connection)):
        print("Loaded.", flush=True)
    else:
        print("It already has an `astute` schema: nothing loaded, nothing changed.", flush=True)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m devtools.compose_init", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    sandbox = commands.add_parser("xero-sandbox", help="serve the Xero sandbox with the demo's organisations and app")
    sandbox.add_argument("--host", default="0.0.0.0")
    sandbox.add_argument("--port", type=int, default=8765)
    commands.add_parser("astute-db", help="load Astute's schema and the demo data, once")
    args = parser.parse_args(argv)
    if args.command == "xero-sandbox":
        serve_sandbox(args.host, args.port)
    else:
        load_astute()


if __name__ == "__main__":
    main(sys.argv[1:])
