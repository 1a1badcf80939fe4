"""What every DAG of the project shares: owner, start date, retries, timeouts, tags, alerts."""

from __future__ import annotations

import datetime as dt
from typing import Any

from airflow.sdk import AsyncCallback, DeadlineAlert, DeadlineReference

from astute_xero.notifications import XeroAlertNotifier

OWNER = "data-engineering"
START_DATE = dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc)

# Every task has an execution_timeout: a task that hangs (a socket Xero never answers, a lock never
# granted) then fails and is retried, instead of holding a worker (and an `xero_api` pool slot) for
# ever. Each is chosen from what the task does, with room for a large run; the Xero-bound steps of the
# export are in dags/xero_invoice_export.py.

# One set-based SQL statement or a few over an entity's or a run's rows (the bench: 200,000 invoices
# extracted in 2 s, planned in 3 s): seconds to a minute or two even for a million rows on a busy
# server; 30 minutes means something is stuck (a lock held by another session), not slow.
DATABASE_STEP_TIMEOUT = dt.timedelta(minutes=30)
# A handful of small statements (list a run's chunk keys, remove a Contact link): a minute at most.
SMALL_STEP_TIMEOUT = dt.timedelta(minutes=10)
# A lane (astute_xero.export.lanes) exports up to 50 chunks, each one PUT and the reads before it, a few at once:
# at Xero's bound (60 calls a minute per organisation, shared by the organisation's lanes) a few minutes. Its Xero
# clients are told how long the lane has (XeroClient.finish_within: this from the lane's start, less
# CHUNK_WRITE_BACK_MARGIN for recording an outcome), and bound every wait by it (the window in which an earlier
# attempt may still land at Xero, a call slot, the minute budget): a call leaves only if it can be over in time,
# so this timeout never kills a worker in the middle of a call. A chunk that runs out of time stops before its
# call, with nothing unsettled; the lane fails naming it, and Airflow's retry exports what is unfinished.
LANE_TIMEOUT = dt.timedelta(minutes=30)
CHUNK_WRITE_BACK_MARGIN = dt.timedelta(minutes=1)

# Alerts, optional: sent only where the Airflow connection xero_alerts says (e-mail or a webhook; see
# astute_xero.notifications), logged otherwise. Every DAG alerts when a run fails.
FAILURE_ALERT = XeroAlertNotifier()


def export_deadline() -> DeadlineAlert | None:
    """The export run's deadline alert, when [astute_xero] export_deadline_hours is set (airflow.cfg, or
    AIRFLOW__ASTUTE_XERO__EXPORT_DEADLINE_HOURS where the dag-processor runs): an alert when a run is still
    going that many hours after it was queued. The daily export normally ends within an hour (Xero's limits
    bound it, and a backlog continues in the next run), so 6 means stuck or starved (no worker, a pool of 0).
    Off by default: Airflow's deadline alerts are still experimental (and `dag.test()` cannot run a DAG that
    has one)."""
    from airflow.sdk.configuration import conf

    hours = (conf.get("astute_xero", "export_deadline_hours", fallback="") or "").strip()
    if not hours:
        return None
    return DeadlineAlert(
        reference=DeadlineReference.DAGRUN_QUEUED_AT,
        interval=dt.timedelta(hours=float(hours)),
        callback=AsyncCallback(XeroAlertNotifier,
                               kwargs={"subject": f"Astute → Xero export still running {hours} h after it was queued"}),
    )


# The operations DAGs: triggered by a person with a form, never scheduled. None calls Xero.
OPERATIONS_DAG: dict[str, Any] = {
    "schedule": None,
    "start_date": START_DATE,
    "catchup": False,
    "default_args": {"owner": OWNER, "retries": 1, "retry_delay": dt.timedelta(seconds=30),
                     "execution_timeout": DATABASE_STEP_TIMEOUT},
    "tags": ["xero", "astute", "operations"],
    "on_failure_callback": FAILURE_ALERT,
}
