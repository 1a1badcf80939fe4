"""`astute-xero`: onboarding and reports from the command line, where Airflow is configured (its connections
xero_default and astute_db; the same AIRFLOW_HOME or AIRFLOW__* settings as the scheduler's).

    astute-xero authorise [--conn-id xero_default] [--classic-scopes] [--redirect-uri http://localhost:8765/callback]
    astute-xero organisations [--conn-id xero_default] [--db-url postgresql://…]
    astute-xero report --billing-entity-id 1 [--date-from …] [--date-to …] [--html report.html]
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import sys
import tempfile
import webbrowser
from dataclasses import dataclass
from pathlib import Path

import psycopg

from astute_xero.xero.scopes import AUTHORIZATION_CODE, CLASSIC_SCOPES, GRANULAR_SCOPES

CONSENT_TIMEOUT_S = 600


def _airflow_connection(conn_id: str):
    """A connection as Airflow's own components resolve it: environment, secrets backends, metadata database.
    (The Task SDK's lookup, which the hooks use inside tasks, asks the API server instead: a command has none.)"""
    from airflow.models.connection import Connection

    return Connection.get_connection_from_secrets(conn_id)


def _astute_connection(db_url: str | None) -> psycopg.Connection:
    """The Astute database: --db-url / $ASTUTE_DB_URL, else the Airflow connection astute_db."""
    if db_url:
        return psycopg.connect(db_url, autocommit=True)
    from astute_xero.hooks import ASTUTE_CONN_ID

    conn = _airflow_connection(ASTUTE_CONN_ID)
    options = {key: value for key, value in conn.extra_dejson.items() if key in {"sslmode", "sslrootcert", "options"}}
    return psycopg.connect(host=conn.host, port=conn.port or 5432, user=conn.login, password=conn.password,
                           dbname=conn.schema, autocommit=True, **options)


# ------------------------------------------------------------------------------------------------- authorise
def authorise(args: argparse.Namespace) -> int:
    from astute_xero.xero.onboarding import (OnboardingError, RedirectListener, consent_request, exchange_code,
                                             list_connections)
    from astute_xero.xero.tokens import XeroConnectionSettings

    stored = _stored_connection(args.conn_id)
    try:
        source = connection_source(args.conn_id)
    except ConnectionSourceUnknown as error:
        print(f"Not authorised: {error}", file=sys.stderr)
        return 1
    client_id = args.client_id or (stored or {}).get("login")
    client_secret = os.environ.get("XERO_CLIENT_SECRET") or (stored or {}).get("password")
    if not client_id or not client_secret:
        print(f"Connection '{args.conn_id}' has no client id and secret yet: pass --client-id and set XERO_CLIENT_SECRET "
              "(the app's secret, from developer.xero.com; never on the command line).", file=sys.stderr)
        return 2
    extra = dict((stored or {}).get("extra") or {})
    scope = args.scope or (CLASSIC_SCOPES if args.classic_scopes else GRANULAR_SCOPES)
    urls = {key: extra[key] for key in ("api_url", "identity_url", "login_url") if extra.get(key)}
    for key in ("api_url", "identity_url", "login_url"):
        if getattr(args, key):
            urls[key] = getattr(args, key)
    # A settings object only to build URLs and authenticate the exchange: the refresh token comes next.
    settings = XeroConnectionSettings(connection_id=args.conn_id, client_id=client_id, client_secret=client_secret,
                                      seed_refresh_token="(none yet)", scope=scope, **urls)
    try:
        listener = RedirectListener(args.redirect_uri)
        request = consent_request(settings, args.redirect_uri, scope)
        print("Open this URL in a browser, log in to Xero, tick the organisations to export to, and allow access:")
        print(f"\n  {request.url}\n", flush=True)
        if not args.no_browser:
            webbrowser.open(request.url)
        print(f"Waiting for Xero's redirect to {args.redirect_uri} ...", flush=True)
        code = listener.wait_for_code(request, args.timeout)
        tokens = exchange_code(settings, request, code)
    except OnboardingError as error:
        print(f"Not authorised: {error}", file=sys.stderr)
        return 1
    extra.update({"grant_type": AUTHORIZATION_CODE, "refresh_token": tokens.refresh_token, "scope": scope, **urls})
    where = _store_connection(args.conn_id, client_id, client_secret, extra, source)
    print(f"Authorised. The refresh token is stored {where}; the pipeline starts its token chain from it.")
    organisations = list_connections(settings, tokens.access_token)
    print(f"The app reaches {len(organisations)} organisation(s):")
    for org in organisations:
        print(f"  {org.get('tenantName')}  tenant {org.get('tenantId')}")
    print("Check them against Astute's billing entities with: astute-xero organisations"
          + (f" --conn-id {args.conn_id}" if args.conn_id != "xero_default" else ""))
    return 0


def _stored_connection(conn_id: str) -> dict | None:
    """The connection as Airflow resolves it (environment, secrets backend, metadata database), or None."""
    from airflow.exceptions import AirflowNotFoundException

    try:
        conn = _airflow_connection(conn_id)
    except AirflowNotFoundException:
        return None
    return {"login": conn.login, "password": conn.password, "extra": conn.extra_dejson}


@dataclass(frozen=True)
class ConnectionSource:
    """The place Airflow reads a connection from: the first of its secrets backends that holds it."""

    backend: str  # the backend's class, e.g. airflow.secrets.metastore.MetastoreBackend
    setting: str | None = None  # the Airflow setting that configures it ([secrets] backend), if any

    @property
    def metadata_database(self) -> bool:
        return self.backend == _METASTORE

    @property
    def environment(self) -> bool:
        return self.backend == _ENVIRONMENT


_METASTORE = "airflow.secrets.metastore.MetastoreBackend"
_ENVIRONMENT = "airflow.secrets.environment_variables.EnvironmentVariablesBackend"


class ConnectionSourceUnknown(RuntimeError):
    """A secrets backend could not be asked, so where Airflow reads the connection from is unknown."""


def connection_source(conn_id: str) -> ConnectionSource:
    """Where Airflow reads `conn_id` from, asking its secrets backends in Airflow's own order: the workers'
    backend ([workers] secrets_backend, when it is set apart from [secrets] backend: tasks ask it first),
    then [secrets] backend, the environment (AIRFLOW_CONN_*) and the metadata database. A connection that no
    backend holds yet is read from the metadata database once written there."""
    from airflow.configuration import conf, ensure_secrets_loaded, get_custom_secret_backend

    def name(backend) -> str:
        return f"{type(backend).__module__}.{type(backend).__qualname__}"

    asked = [(backend, None) for backend in ensure_secrets_loaded()]
    if asked and name(asked[0][0]) not in (_ENVIRONMENT, _METASTORE):
        asked[0] = (asked[0][0], "[secrets] backend")
    if conf.get("workers", "secrets_backend", fallback=""):
        asked.insert(0, (get_custom_secret_backend(worker_mode=True), "[workers] secrets_backend"))
    for backend, setting in asked:
        try:
            found = backend.get_connection(conn_id)
        except Exception as error:  # its message may quote the backend's configuration: only the type is shown
            raise ConnectionSourceUnknown(
                f"the secrets backend {name(backend)} ({setting or 'Airflow default'}) could not be asked for the "
                f"connection '{conn_id}' ({type(error).__name__}), so where Airflow reads it from is unknown. "
                "Fix the backend's access and run the command again.") from None
        if found is not None:
            return ConnectionSource(name(backend), setting)
    return ConnectionSource(_METASTORE)


def _store_connection(conn_id: str, client_id: str, client_secret: str, extra: dict, source: ConnectionSource) -> str:
    """Writes the connection (type xero) to Airflow's metadata database, where Airflow encrypts it with its
    Fernet key, when that is where Airflow reads it from. A connection served from elsewhere (an environment
    variable, a secrets backend such as Vault or AWS Secrets Manager) would shadow the database, so then the
    new extra goes to a file only its owner can read, and the connection must be updated where it lives."""
    if not source.metadata_database:
        fd, path = tempfile.mkstemp(prefix=f"{conn_id}-", suffix=".json")
        with os.fdopen(fd, "w") as file:  # mkstemp: mode 0600
            json.dump({"conn_type": "xero", "login": client_id, "extra": extra}, file)
        if source.environment:
            origin = (f"the environment variable AIRFLOW_CONN_{conn_id.upper()}, which this command cannot change. "
                      "Copy that file's extra.refresh_token into it")
        else:
            origin = (f"the secrets backend {source.backend} ({source.setting}), which this command does not write "
                      f"to. Copy that file's extra.refresh_token into the connection '{conn_id}' there")
        return (f"in {path} (readable by you only), NOT in Airflow's metadata database: Airflow reads the connection "
                f"from {origin}, then delete the file")
    from airflow.models.connection import Connection
    from airflow.utils.session import create_session
    from sqlalchemy import select

    with create_session() as session:
        conn = session.scalar(select(Connection).where(Connection.conn_id == conn_id))
        if conn is None:
            conn = Connection(conn_id=conn_id, conn_type="xero")
            session.add(conn)
        conn.conn_type = "xero"
        conn.login = client_id
        conn.set_password(client_secret)
        conn.set_extra(json.dumps(extra))
    return f"in the Airflow connection '{conn_id}' (metadata database, encrypted)"


# --------------------------------------------------------------------------------------------- organisations
def organisations(args: argparse.Namespace) -> int:
    from astute_xero.hooks import XeroHook
    from astute_xero.sql import load_sql
    from astute_xero.xero.onboarding import BillingEntity, check_tenants, render_tenant_check
    from astute_xero.xero.client import XeroCallError
    from astute_xero.xero.tokens import XeroAuthorisationError

    from astute_xero.operations.migrations import apply_migrations

    with _astute_connection(args.db_url) as conn:
        apply_migrations(conn)  # the token chain and the budgets live in xero_sync, also before the first run
    try:
        hook = XeroHook(args.conn_id, connection=_airflow_connection(args.conn_id))
        client = hook.client(connect=lambda: _astute_connection(args.db_url))
        try:
            connections = client.connections()
        finally:
            client.close()
    except (XeroAuthorisationError, XeroCallError, ValueError, LookupError) as error:
        print(f"Cannot list the organisations of connection '{args.conn_id}': {error}", file=sys.stderr)
        return 2
    with _astute_connection(args.db_url) as conn:
        entities = [BillingEntity(*row) for row in conn.execute(load_sql("billing_entities_all"))]
    check = check_tenants(connections, entities)
    print(render_tenant_check(check, args.conn_id))
    return 0 if check.ok else 1


# -------------------------------------------------------------------------------------------------- report
def report(args: argparse.Namespace) -> int:
    from astute_xero.report import integration

    with _astute_connection(args.db_url) as conn:
        try:
            page = integration.build_report(conn, args.billing_entity_id, args.date_from, args.date_to)
        except ValueError as error:
            print(f"astute-xero report: {error}", file=sys.stderr)
            return 2
    print(integration.render_text(page))
    if args.html:
        args.html.parent.mkdir(parents=True, exist_ok=True)
        args.html.write_text(integration.render_html(page), encoding="utf-8")
        print(f"HTML report: {args.html}")
    return 0


def parser() -> argparse.ArgumentParser:
    root = argparse.ArgumentParser(prog="astute-xero", description="Astute → Xero: onboarding and reports.")
    commands = root.add_subparsers(dest="command", required=True)

    auth = commands.add_parser("authorise", aliases=["authorize"], help="consent to the Xero app and store the first "
                               "refresh token in the Airflow connection")
    auth.add_argument("--conn-id", default="xero_default")
    auth.add_argument("--client-id", help="the app's client id (default: the connection's login); the secret comes "
                      "from the connection or $XERO_CLIENT_SECRET")
    scopes = auth.add_mutually_exclusive_group()
    scopes.add_argument("--classic-scopes", action="store_true",
                        help=f"for an app created at Xero before 2 March 2026: {CLASSIC_SCOPES}")
    scopes.add_argument("--scope", help=f"space-separated scopes (default: {GRANULAR_SCOPES})")
    auth.add_argument("--redirect-uri", default="http://localhost:8765/callback",
                      help="registered with the app at developer.xero.com; this command listens on it")
    auth.add_argument("--no-browser", action="store_true", help="only print the consent URL")
    auth.add_argument("--timeout", type=float, default=CONSENT_TIMEOUT_S, help="seconds to wait for the consent")
    for key, what in (("api_url", "https://api.xero.com"), ("identity_url", "https://identity.xero.com"),
                      ("login_url", "https://login.xero.com")):
        auth.add_argument(f"--{key.replace('_', '-')}", dest=key, help=f"default: the connection's, else {what}")
    auth.set_defaults(run=authorise)

    orgs = commands.add_parser("organisations", aliases=["organizations"], help="the organisations the connection "
                               "reaches, beside Astute's billing entities")
    orgs.add_argument("--conn-id", default="xero_default")
    orgs.add_argument("--db-url", default=os.environ.get("ASTUTE_DB_URL"),
                      help="the Astute database (default: $ASTUTE_DB_URL, else the Airflow connection astute_db)")
    orgs.set_defaults(run=organisations)

    rep = commands.add_parser("report", help="the Xero Integration report of one billing entity (text; --html: the "
                              "page, as the export writes it for e-mail)")
    rep.add_argument("--billing-entity-id", type=int, required=True)
    rep.add_argument("--date-from", type=dt.date.fromisoformat, help="documents dated on or after (YYYY-MM-DD)")
    rep.add_argument("--date-to", type=dt.date.fromisoformat, help="documents dated on or before (YYYY-MM-DD)")
    rep.add_argument("--html", type=Path, help="also write the report as a self-contained HTML page here")
    rep.add_argument("--db-url", default=os.environ.get("ASTUTE_DB_URL"),
                     help="the Astute database (default: $ASTUTE_DB_URL, else the Airflow connection astute_db)")
    rep.set_defaults(run=report)
    return root


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    return args.run(args)


if __name__ == "__main__":
    sys.exit(main())
