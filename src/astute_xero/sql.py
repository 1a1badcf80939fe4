"""Every SQL statement the pipeline runs lives in include/sql/; this module finds them.

In the repository (and an editable install) they are read from include/sql/; a built wheel carries the
same files inside the package as astute_xero/sql_files/ (pyproject.toml).
"""

from __future__ import annotations

from functools import cache
from pathlib import Path

_PACKAGE_DIR = Path(__file__).resolve().parent
SQL_DIR = next(path for path in (_PACKAGE_DIR / "sql_files", _PACKAGE_DIR.parents[1] / "include" / "sql") if path.is_dir())


@cache
def load_sql(name: str) -> str:
    """The text of include/sql/<name>.sql."""
    return (SQL_DIR / f"{name}.sql").read_text(encoding="utf-8")


def migration_files() -> list[Path]:
    """The numbered xero_sync migrations, in the order they apply."""
    return sorted((SQL_DIR / "migrations").glob("[0-9][0-9][0-9]_*.sql"))
