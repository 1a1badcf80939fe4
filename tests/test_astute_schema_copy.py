"""include/sql/astute_schema.sql is Astute's contract, copied: it must not drift from the shared one."""

from __future__ import annotations

import re

import pytest

from tests.conftest import REPO_ROOT, SHARED_DIR

SHARED_SCHEMA = SHARED_DIR / "astute" / "schema.sql"


@pytest.mark.skipif(not SHARED_SCHEMA.exists(), reason="../shared is not beside this checkout")
def test_the_copy_matches_the_shared_schema():
    assert (REPO_ROOT / "include" / "sql" / "astute_schema.sql").read_bytes() == SHARED_SCHEMA.read_bytes()


# Reading Astute's tables (a view) is fine; defining, altering, indexing or writing them never is.
CHANGES_ASTUTE = re.compile(
    r"(create|alter|drop|comment\s+on|grant|revoke)\s+(or\s+replace\s+)?(unique\s+)?"
    r"(table|view|index|schema|function|trigger|type|sequence|materialized\s+view)\s+"
    r"(if\s+(not\s+)?exists\s+)?astute\b"
    r"|\bon\s+astute\."
    r"|(insert\s+into|update|delete\s+from|truncate(\s+table)?)\s+astute\."
)


def test_migrations_never_change_astutes_schema():
    for path in sorted((REPO_ROOT / "include" / "sql" / "migrations").glob("*.sql")):
        code = re.sub(r"--[^\n]*", "", path.read_text()).lower()
        assert not CHANGES_ASTUTE.search(code), f"{path.name} must only create objects in xero_sync"


@pytest.mark.parametrize("statement", [
    "CREATE TABLE astute.x (id int)", "ALTER TABLE astute.invoice ADD COLUMN y int",
    "CREATE INDEX i ON astute.invoice (id)", "UPDATE astute.invoice SET status = 'Sent'",
    "CREATE OR REPLACE VIEW astute.v AS SELECT 1", "DROP SCHEMA IF EXISTS astute CASCADE",
])
def test_the_policy_catches_changes_to_astute(statement):
    assert CHANGES_ASTUTE.search(statement.lower())


def test_the_policy_allows_reading_astute():
    assert not CHANGES_ASTUTE.search("create or replace view xero_sync.v as select i.id from astute.invoice i")
