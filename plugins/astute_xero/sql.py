"""Every SQL statement the pipeline runs lives in include/sql/; this module finds them."""

from __future__ import annotations

from functools import cache
from pathlib import Path

SQL_DIR = Path(__file__).resolve().parents[2] / "include" / "sql"


@cache
def load_sql(name: str) -> str:
    """The text of include/sql/<name>.sql."""
    return (SQL_DIR / f"{name}.sql").read_text(encoding="utf-8")


def migration_files() -> list[Path]:
    """The numbered xero_sync migrations, in the order they apply."""
    return sorted((SQL_DIR / "migrations").glob("[0-9][0-9][0-9]_*.sql"))
