"""A real PostgreSQL for the demo and the tests: ASTUTE_DB_URL if set, else an embedded one (pgserver).

Neither the demo nor the tests touch the database ASTUTE_DB_URL names: they create
a database of their own on that server and work there.
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
from pathlib import Path

import psycopg
from psycopg import conninfo, sql

REPO_ROOT = Path(__file__).resolve().parents[1]
SCHEMA_SQL = REPO_ROOT / "include" / "sql" / "astute_schema.sql"
EMBEDDED_DATA_DIR = REPO_ROOT / ".pgdata"

_embedded = None  # keeps the pgserver handle alive for the life of the process


def server_url() -> str:
    """A URL to a PostgreSQL server we may create databases on."""
    global _embedded
    if os.environ.get("ASTUTE_DB_URL"):
        return os.environ["ASTUTE_DB_URL"]
    if _embedded is None:
        if "XDG_RUNTIME_DIR" not in os.environ:  # pgserver keeps its lock files there
            runtime = Path(tempfile.gettempdir()) / f"astute-xero-runtime-{os.getuid()}"
            runtime.mkdir(mode=0o700, exist_ok=True)
            os.environ["XDG_RUNTIME_DIR"] = str(runtime)
        # pgserver logs from an atexit hook, after test runners have closed their streams.
        logging.getLogger("pgserver").propagate = False
        import pgserver

        _embedded = pgserver.get_server(EMBEDDED_DATA_DIR, cleanup_mode="stop")
    return _embedded.get_uri()


def with_database(url: str, dbname: str) -> str:
    params = conninfo.conninfo_to_dict(url)
    params["dbname"] = dbname
    return conninfo.make_conninfo(**params)


def create_database(server: str, dbname: str) -> str:
    """(Re)create an empty database on the server; return its URL."""
    with psycopg.connect(server, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(dbname)))
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(dbname)))
    return with_database(server, dbname)


def drop_database(server: str, dbname: str) -> None:
    with psycopg.connect(server, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(dbname)))


def load_astute_schema(conn: psycopg.Connection) -> None:
    """Astute's tables as the pipeline finds them, and no xero_sync state: a clean slate."""
    conn.execute("DROP SCHEMA IF EXISTS xero_sync CASCADE")
    conn.execute("DROP SCHEMA IF EXISTS astute CASCADE")
    conn.execute(SCHEMA_SQL.read_text(encoding="utf-8"))


def airflow_connection_json(url: str) -> str:
    """The astute_db Airflow connection (AIRFLOW_CONN_ASTUTE_DB) for a libpq URL."""
    params = conninfo.conninfo_to_dict(url)
    connection = {
        "conn_type": "postgres",
        "host": params.get("host"),
        "port": int(params["port"]) if params.get("port") else None,
        "login": params.get("user"),
        "password": params.get("password") or None,
        "schema": params.get("dbname"),
    }
    return json.dumps({k: v for k, v in connection.items() if v is not None})
