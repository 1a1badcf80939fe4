"""Real things for the tests: a PostgreSQL database, the Xero sandbox over HTTP, an Airflow home.

Airflow reads its configuration when first imported, so the environment is set
here, at import time, before any test module imports it.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from cryptography.fernet import Fernet

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED_DIR = REPO_ROOT.parent / "shared"

_AIRFLOW_HOME = tempfile.mkdtemp(prefix="astute-xero-airflow-")
os.environ.update(
    {
        "AIRFLOW_HOME": _AIRFLOW_HOME,
        "AIRFLOW__CORE__DAGS_FOLDER": str(REPO_ROOT / "dags"),
        "AIRFLOW__CORE__PLUGINS_FOLDER": str(REPO_ROOT / "plugins"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__LOGGING__LOGGING_LEVEL": "INFO",
        "GX_ANALYTICS_ENABLED": "false",
        # Xero tokens are stored encrypted with Airflow's Fernet key: one key for the session's processes.
        "AIRFLOW__CORE__FERNET_KEY": os.environ.get("AIRFLOW__CORE__FERNET_KEY") or Fernet.generate_key().decode(),
    }
)

from devtools import astute_db  # noqa: E402
from devtools.xero_setup import XeroApp, airflow_connection_json, authorise_app  # noqa: E402
from xero_sandbox import XeroSandbox  # noqa: E402


@pytest.fixture(scope="session")
def database_url() -> Iterator[str]:
    """A database of the test session's own on ASTUTE_DB_URL's server, or on an embedded PostgreSQL."""
    server = astute_db.server_url()
    name = f"astute_xero_test_{uuid.uuid4().hex[:8]}"
    url = astute_db.create_database(server, name)
    yield url
    astute_db.drop_database(server, name)


@pytest.fixture
def db(database_url: str) -> Iterator[psycopg.Connection]:
    """An autocommit connection to a database holding Astute's empty schema and no xero_sync state."""
    with psycopg.connect(database_url, autocommit=True) as conn:
        astute_db.load_astute_schema(conn)
        yield conn


@pytest.fixture(scope="session")
def sandbox() -> Iterator[XeroSandbox]:
    server = XeroSandbox.start(host="127.0.0.1", port=0)
    yield server
    server.stop()


@pytest.fixture
def xero(sandbox: XeroSandbox, monkeypatch: pytest.MonkeyPatch) -> XeroSandbox:
    """The sandbox, emptied, with nothing authorised yet."""
    sandbox.backend.reset()
    return sandbox


@pytest.fixture(scope="session")
def airflow_home() -> str:
    """A migrated Airflow metadata database (SQLite) and the xero_api pool."""
    airflow = [sys.executable, "-m", "airflow"]
    subprocess.run([*airflow, "db", "migrate"], check=True, capture_output=True)
    subprocess.run([*airflow, "pools", "set", "xero_api", "5", "Xero API"], check=True, capture_output=True)
    return _AIRFLOW_HOME


def connect_airflow(monkeypatch: pytest.MonkeyPatch, database_url: str, app: XeroApp, sandbox_url: str) -> None:
    """Point the astute_db and xero_default connections at this test's database and sandbox."""
    monkeypatch.setenv("AIRFLOW_CONN_ASTUTE_DB", astute_db.airflow_connection_json(database_url))
    monkeypatch.setenv("AIRFLOW_CONN_XERO_DEFAULT", airflow_connection_json(app, sandbox_url))


__all__ = ["connect_airflow", "authorise_app", "REPO_ROOT", "SHARED_DIR"]
