"""Leases: what one worker holds for a while (one of an organisation's call slots, a document it is sending), as
rows of xero_sync.lease that expire on the database's clock unless their holder renews them.

Session advisory locks were freed only when the database saw their connection close: a worker host that died
kept them until TCP keepalive gave up (hours by default), and behind a pooler in transaction mode (PgBouncer)
they bound nothing at all. A lease dies with its holder instead: a live holder renews it (`Heartbeat`), so one
that stops (killed, its host gone, its network cut) loses it within one time-to-live. Every operation is one
autocommitted statement, so a lease means the same through a transaction-mode pooler as on a direct connection.
And a holder checks that it still holds its leases in the statement that records a send (the fence), so a
holder that lost them (frozen past its time-to-live) sends nothing.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import secrets
import socket
import threading
import time
from collections.abc import Callable, Collection

import psycopg

from astute_xero.sql import load_sql

log = logging.getLogger(__name__)

# A document a chunk is sending. Renewed every third of it while the chunk works; a holder that stops loses
# it within a minute, and that is also the longest a chunk waits for documents another holder has.
DOCUMENT_TTL = dt.timedelta(seconds=60)


def new_holder() -> str:
    """One attempt of one worker: its host and process (for the operator reading xero_sync.lease) and a random
    part (two attempts in one process never share a lease)."""
    return f"{socket.gethostname()[:60]}:{os.getpid()}:{secrets.token_hex(6)}"


def acquire(conn: psycopg.Connection, holder: str, keys: Collection[str], ttl: dt.timedelta) -> set[str]:
    """Take the leases among `keys` that are free or already this holder's; return those taken."""
    if not keys:
        return set()
    rows = conn.execute(load_sql("lease_acquire"), {"holder": holder, "keys": list(keys), "ttl": ttl})
    return {row[0] for row in rows}


def renew(conn: psycopg.Connection, holder: str, keys: Collection[str], ttl: dt.timedelta) -> set[str]:
    """One more time-to-live for this holder's leases among `keys`; return those still held."""
    if not keys:
        return set()
    rows = conn.execute(load_sql("lease_renew"), {"holder": holder, "keys": list(keys), "ttl": ttl})
    return {row[0] for row in rows}


def release(conn: psycopg.Connection, holder: str, keys: Collection[str]) -> None:
    if keys:
        conn.execute(load_sql("lease_release"), {"holder": holder, "keys": list(keys)})


def others_hold_for(conn: psycopg.Connection, holder: str, keys: Collection[str]) -> float | None:
    """Seconds until the last lease another holder has among `keys` expires unless renewed; None: none held."""
    (seconds,) = conn.execute(load_sql("lease_others"), {"holder": holder, "keys": list(keys)}).fetchone()
    return seconds


def acquire_waiting(
    conn: psycopg.Connection, holder: str, keys: Collection[str], ttl: dt.timedelta,
    sleep: Callable[[float], None] = time.sleep,
) -> set[str]:
    """Take the leases among `keys`, waiting (at most one time-to-live) for those another holder has: a holder
    that died loses its leases within that time; one still held after it was renewed meanwhile, so its holder is
    alive and working on it, and it is left to that holder."""
    taken = acquire(conn, holder, keys, ttl)
    waited = 0.0
    limit = ttl.total_seconds()
    while len(taken) < len(keys) and waited < limit:
        left = others_hold_for(conn, holder, [key for key in keys if key not in taken])
        if left is not None:
            pause = min(max(left, 0.0) + 0.05, limit - waited)
            sleep(pause)
            waited += pause
        taken = acquire(conn, holder, keys, ttl)  # ours again too: renewed while we waited
    return taken


def reconnect(conn: psycopg.Connection) -> psycopg.Connection:
    """A second autocommit connection to the database `conn` is connected to (for a heartbeat of its own)."""
    return psycopg.connect(**conn.info.get_parameters(), password=conn.info.password or None, autocommit=True)


class Heartbeat:
    """Renews a holder's leases every third of their time-to-live, on a connection of its own, while the `with`
    block runs (a Xero call blocks the worker for up to minutes); releases them when it ends, however it ends."""

    def __init__(self, conn: psycopg.Connection, holder: str, keys: Collection[str], ttl: dt.timedelta):
        self._conn = conn
        self._holder = holder
        self._keys = list(keys)
        self._ttl = ttl
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._beat, name=f"lease-heartbeat-{holder}", daemon=True)

    def __enter__(self) -> Heartbeat:
        if self._keys:
            self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join()
        release(self._conn, self._holder, self._keys)

    def _beat(self) -> None:
        interval = self._ttl.total_seconds() / 3
        try:
            beat_conn = reconnect(self._conn)
        except psycopg.Error as error:  # no heartbeat: the leases expire, and the fence stops any send
            log.warning("lease heartbeat for %s could not connect: %s", self._holder, error)
            return
        with beat_conn:
            while not self._stop.wait(interval):
                try:
                    kept = renew(beat_conn, self._holder, self._keys, self._ttl)
                except psycopg.Error as error:
                    log.warning("lease heartbeat for %s failed (retried in %.0f s): %s", self._holder, interval, error)
                    continue
                if len(kept) < len(self._keys):
                    log.warning("%s lost %d lease(s) (expired and taken by another holder); it sends none of them",
                                self._holder, len(self._keys) - len(kept))
