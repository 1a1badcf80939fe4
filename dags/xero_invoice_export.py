"""
### Export Sent invoices from Astute to Xero

Every Sent invoice of every billing entity that is linked to a Xero organisation
(`billing_entity.xero_tenant_id`) and live (`xero_go_live_date`) goes to Xero once,
as an `ACCREC` invoice, `AUTHORISED` (posted, *Awaiting Payment*).

1. **start_export_run** applies the `xero_sync` migrations and records which entities
   are exported or skipped (and why).
2. **extract_sent_invoices** lists the Sent, not-yet-exported invoices (ids only).
3. **validate_invoices** checks them with Great Expectations against each organisation's
   chart (accounts, tax rates, currencies): invalid ones are held back with a reason.
4. **resolve_contacts** links each customer to its Xero Contact (by name; created if absent).
5. **plan_chunks** groups them in chunks of at most 100 invoices (under 3.5 MB).
6. **export_invoice_chunk** sends one chunk per mapped task, in the `xero_api` pool.
7. **write_back_run** records the run's outcome; **summarise_run** logs the summary
   per entity: exported, failed (Xero's reasons), held back (validation reasons), skipped.

State, flags and the API log live in the `xero_sync` schema of the Astute database.
"""

from __future__ import annotations

import datetime as dt

from airflow.sdk import CronDataIntervalTimetable, Param, dag, get_current_context, task

from astute_xero import tasks
from astute_xero.dag_policy import OWNER, START_DATE

RETRIES = {"retries": 3, "retry_delay": dt.timedelta(seconds=30), "retry_exponential_backoff": 2.0,
           "max_retry_delay": dt.timedelta(minutes=10)}


@dag(
    dag_id="xero_invoice_export",
    doc_md=__doc__,
    # Data intervals matter: a run (and a backfill) exports what is dated up to its interval's end.
    schedule=CronDataIntervalTimetable("0 0 * * *", timezone="UTC"),
    start_date=START_DATE,
    catchup=False,
    max_active_runs=1,
    default_args={"owner": OWNER, **RETRIES},
    tags=["xero", "astute", "invoices"],
    params={
        "billing_entity_ids": Param(
            None,
            type=["null", "array"],
            items={"type": "integer"},
            title="Billing entities",
            description="Astute billing entity ids to export. Empty: every entity linked to Xero and live.",
        ),
        "date_from": Param(
            None, type=["null", "string"], format="date", title="Invoices dated from",
            description="Only invoices dated on or after this day. Empty: all outstanding.",
        ),
        "date_to": Param(
            None, type=["null", "string"], format="date", title="Invoices dated up to",
            description="Only invoices dated on or before this day. Empty: up to the run's data interval end.",
        ),
    },
)
def xero_invoice_export():
    @task
    def start_export_run() -> int:
        context = get_current_context()
        backfill = context["dag_run"].run_type == "backfill"
        return tasks.start_export_run(
            context["dag"].dag_id, context["run_id"], dict(context["params"]), context.get("data_interval_end"),
            backfill_interval_start=context.get("data_interval_start") if backfill else None,
        )

    @task
    def extract_sent_invoices(export_run_id: int) -> int:
        return tasks.extract_sent_invoices(export_run_id)

    @task
    def validate_invoices(export_run_id: int) -> dict:
        return tasks.validate_invoices(export_run_id)

    @task
    def resolve_contacts(export_run_id: int) -> dict:
        return tasks.resolve_contacts(export_run_id)

    @task
    def plan_chunks(export_run_id: int) -> list[dict]:
        return tasks.plan_chunks(export_run_id)

    @task(pool="xero_api", map_index_template="{{ chunk_label }}")
    def export_invoice_chunk(chunk: dict) -> dict:
        get_current_context()["chunk_label"] = tasks.chunk_label(chunk)  # names the mapped task in the UI
        return tasks.export_invoice_chunk(chunk)

    @task(trigger_rule="all_done")
    def write_back_run(export_run_id: int) -> str:
        return tasks.write_back_run(export_run_id)

    @task(trigger_rule="all_done")
    def summarise_run(export_run_id: int) -> dict:
        return tasks.summarise_run(export_run_id)

    export_run_id = start_export_run()  # "run_id" is Airflow's own context key: ours is the xero_sync run
    extracted = extract_sent_invoices(export_run_id)
    validated = validate_invoices(export_run_id)
    linked = resolve_contacts(export_run_id)
    chunks = plan_chunks(export_run_id)
    exported = export_invoice_chunk.expand(chunk=chunks)
    written = write_back_run(export_run_id)
    extracted >> validated >> linked >> chunks
    exported >> written >> summarise_run(export_run_id)


xero_invoice_export()
