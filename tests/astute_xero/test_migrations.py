from __future__ import annotations

from astute_xero.operations.migrations import apply_migrations


def test_migrations_apply_once_and_are_idempotent(db):
    first = apply_migrations(db)
    assert first and all(name.endswith(".sql") for name in first)
    assert apply_migrations(db) == []
    tables = {row[0] for row in db.execute(
        "SELECT table_name FROM information_schema.tables WHERE table_schema = 'xero_sync'")}
    assert {"invoice_export", "api_log", "contact_link", "export_run", "oauth_token"} <= tables
    statuses = db.execute(
        "SELECT pg_get_constraintdef(oid) FROM pg_constraint WHERE conname = 'invoice_export_status_check'"
    ).fetchone()[0]
    for status in ("sending", "exported", "failed", "mock_exported", "reset"):
        assert status in statuses
