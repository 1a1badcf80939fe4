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


def test_the_read_back_migrations_keep_what_an_installation_had_read(db, monkeypatch):
    """016 and 017 on a database that has read back before: every row is kept, counted as compared by the syncs
    before (they compared every document they read), and keyed by Xero's id, with room on its pages."""
    import astute_xero.operations.migrations as migrations

    everything = migrations.migration_files()
    monkeypatch.setattr(migrations, "migration_files", lambda: [p for p in everything if p.name < "016"])
    apply_migrations(db)
    db.execute("INSERT INTO xero_sync.xero_document (tenant_id, kind, xero_id, status, updated_in_xero, read_at) "
               "VALUES ('t-1', 'invoice', 'a0000000-0000-4000-8000-000000000001', 'PAID', now(), now())")
    db.execute("INSERT INTO xero_sync.status_sync (tenant_id, last_success_at) VALUES ('t-1', now())")
    monkeypatch.undo()

    assert apply_migrations(db) == ["016_drift_basis.sql", "017_xero_document_key.sql"]

    assert db.execute("SELECT xero_id::text, status, compared_fields_changed_by FROM xero_sync.xero_document"
                      ).fetchall() == [("a0000000-0000-4000-8000-000000000001", "PAID", 0)]
    assert db.execute("SELECT last_success_no FROM xero_sync.status_sync").fetchall() == [(0,)]
    (key,) = db.execute("SELECT pg_get_constraintdef(oid) FROM pg_constraint "
                        "WHERE conname = 'xero_document_pkey'").fetchone()
    assert key == "PRIMARY KEY (xero_id)"
    (options,) = db.execute("SELECT reloptions FROM pg_class WHERE oid = 'xero_sync.xero_document'::regclass"
                            ).fetchone()
    assert options == ["fillfactor=90"]
