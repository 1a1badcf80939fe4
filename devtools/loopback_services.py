"""The PostgreSQL and Redis a cluster on this machine uses: the ones the machine runs, if they answer on
loopback, else ones started here (the embedded PostgreSQL of devtools.astute_db; Debian's redis-server on a
free port), stopped again afterwards."""

from __future__ import annotations

import contextlib
import secrets
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator

import psycopg
import redis

from devtools import astute_db
from devtools.airflow_deployment import free_port

MACHINE_POSTGRES = "postgresql://postgres@127.0.0.1:5432/postgres"
MACHINE_REDIS = ("127.0.0.1", 6379)


def postgres_server_url() -> str:
    """A PostgreSQL server to create the metadata and Astute databases on: the machine's on loopback when it
    answers, else ASTUTE_DB_URL's or the embedded one (astute_db.server_url)."""
    try:
        with psycopg.connect(MACHINE_POSTGRES, connect_timeout=3) as conn:
            conn.execute("SELECT 1")
        return MACHINE_POSTGRES
    except psycopg.Error:
        return astute_db.server_url()


@contextlib.contextmanager
def redis_broker() -> Iterator[str]:
    """A Redis URL for Celery's broker, on a database of its own (emptied before and after): the machine's
    Redis when it answers, else a redis-server started here on a free port (without persistence)."""
    host, port = MACHINE_REDIS
    if _answers(host, port):
        db = 8 + secrets.randbelow(8)  # not database 0: the machine's Redis may serve others
        client = redis.Redis(host=host, port=port, db=db)
        client.flushdb()
        try:
            yield f"redis://{host}:{port}/{db}"
        finally:
            client.flushdb()
        return
    binary = shutil.which("redis-server")
    if not binary:
        raise RuntimeError("no Redis answers on 127.0.0.1:6379 and redis-server is not installed "
                           "(apt-get install redis-server): the CeleryExecutor needs a broker")
    port = free_port()
    directory = tempfile.mkdtemp(prefix="cluster-redis-")
    process = subprocess.Popen([binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
                                "--dir", directory], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 20
        while not _answers(host, port):
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"redis-server did not start on port {port}")
            time.sleep(0.2)
        yield f"redis://{host}:{port}/0"
    finally:
        process.terminate()
        process.wait(timeout=10)
        shutil.rmtree(directory, ignore_errors=True)


def _answers(host: str, port: int) -> bool:
    try:
        return bool(redis.Redis(host=host, port=port, socket_connect_timeout=2).ping())
    except redis.RedisError:
        return False
