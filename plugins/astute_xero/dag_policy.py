"""What every DAG of the project shares: owner, start date, retries, tags."""

from __future__ import annotations

import datetime as dt
from typing import Any

OWNER = "data-engineering"
START_DATE = dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc)

# The operations DAGs: triggered by a person with a form, never scheduled.
OPERATIONS_DAG: dict[str, Any] = {
    "schedule": None,
    "start_date": START_DATE,
    "catchup": False,
    "default_args": {"owner": OWNER, "retries": 1, "retry_delay": dt.timedelta(seconds=30)},
    "tags": ["xero", "astute", "operations"],
}
