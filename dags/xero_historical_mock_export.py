"""
### Historical mock export: go live with Xero without re-sending history

Trigger **once per billing entity** when it goes live with Xero. Every Sent invoice and credit
note of the entity dated **before the migration date** (default: the entity's
`xero_go_live_date`) is recorded as `mock_exported` in `xero_sync`, in one recorded mock run.
Nothing is sent to Xero. From then on the regular export never sends those items unless they
are reset for export (`xero_reset_for_export`).

Safe to trigger again: items already recorded are left as they are, and the log says so.
"""

from __future__ import annotations

from airflow.sdk import Param, dag, get_current_context, task

from astute_xero.lazy import lazy_module
from astute_xero.dag_policy import OPERATIONS_DAG

tasks = lazy_module("astute_xero.export.tasks")  # imported by the task that runs, not by every parse (astute_xero.lazy)


@dag(
    dag_id="xero_historical_mock_export",
    doc_md=__doc__,
    max_active_runs=1,
    **OPERATIONS_DAG,
    params={
        "billing_entity_id": Param(
            type="integer", title="Billing entity", description="The Astute billing entity going live with Xero."
        ),
        "migration_date": Param(
            None, type=["null", "string"], format="date", title="Migration date",
            description="Items dated before this day are history. Empty: the entity's xero_go_live_date.",
        ),
    },
)
def xero_historical_mock_export():
    @task
    def mark_history_as_exported() -> str:
        context = get_current_context()
        return tasks.mock_export(context["dag"].dag_id, context["run_id"], dict(context["params"]))

    mark_history_as_exported()


xero_historical_mock_export()
