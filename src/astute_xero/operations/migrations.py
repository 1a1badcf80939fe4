"""Idempotent migrations of the pipeline's own schema, xero_sync.

Astute's schema is never touched. Each numbered file in include/sql/migrations
applies once, in its own transaction, under an advisory lock so that several
workers starting at once do not race.
"""

from __future__ import annotations

import psycopg

from astute_xero.sql import migration_files

# "XEROSYNC" in ASCII, negated: a transaction-scoped advisory lock, released with the transaction.
_MIGRATION_LOCK_KEY = -int.from_bytes(b"XEROSYNC", "big")


def apply_migrations(conn: psycopg.Connection) -> list[str]:
    """Apply the migrations this database lacks; return the names applied."""
    applied_now: list[str] = []
    with conn.transaction():
        conn.execute("SELECT pg_advisory_xact_lock(%s)", (_MIGRATION_LOCK_KEY,))
        conn.execute("CREATE SCHEMA IF NOT EXISTS xero_sync")
        conn.execute(
            "CREATE TABLE IF NOT EXISTS xero_sync.schema_migration ("
            " name text PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())"
        )
        done = {row[0] for row in conn.execute("SELECT name FROM xero_sync.schema_migration")}
        for path in migration_files():
            if path.name in done:
                continue
            conn.execute(path.read_text(encoding="utf-8"))
            conn.execute("INSERT INTO xero_sync.schema_migration (name) VALUES (%s)", (path.name,))
            applied_now.append(path.name)
    return applied_now
