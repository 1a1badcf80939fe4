"""include/sql/astute_schema.sql is Astute's contract, copied: it must not drift from the shared one."""

from __future__ import annotations

import re

import pytest

from tests.conftest import REPO_ROOT, SHARED_DIR

SHARED_SCHEMA = SHARED_DIR / "astute" / "schema.sql"


@pytest.mark.skipif(not SHARED_SCHEMA.exists(), reason="../shared is not beside this checkout")
def test_the_copy_matches_the_shared_schema():
    assert (REPO_ROOT / "include" / "sql" / "astute_schema.sql").read_bytes() == SHARED_SCHEMA.read_bytes()


def test_migrations_never_touch_astutes_schema():
    for path in sorted((REPO_ROOT / "include" / "sql" / "migrations").glob("*.sql")):
        code = re.sub(r"--[^\n]*", "", path.read_text()).lower()
        assert not re.search(r"\bastute\.\w", code), f"{path.name} must only create objects in xero_sync"
