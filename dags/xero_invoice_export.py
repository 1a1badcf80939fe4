"""
### Export Sent invoices and credit notes from Astute to Xero

Every Sent invoice and credit note of every billing entity that is linked to a Xero
organisation (`billing_entity.xero_tenant_id`) and live (`xero_go_live_date`) goes to
Xero once: invoices as `ACCREC`, credit notes as `ACCRECCREDIT`, both `AUTHORISED`.
A credit note is then allocated to the invoice it credits.

1. **start_export_run** applies the `xero_sync` migrations and records which entities
   are exported or skipped (and why).
2. **extract_documents** lists the Sent, not-yet-exported invoices and credit notes (ids only).
3. **validate_documents** checks them with Great Expectations against each organisation's
   chart (accounts, tax rates, currencies): invalid ones are held back with a reason.
4. **resolve_contacts** links each customer to its Xero Contact (by name; created if absent).
5. **plan_chunks** groups them in chunks of at most 100 documents of one kind (under 3.5 MB).
   A credit note whose invoice is not in Xero (and not going now) waits for it.
6. **export_invoice_chunk** sends one invoice chunk per mapped task, in the `xero_api` pool;
   then **export_credit_note_chunk** the credit notes, once the invoices are in.
7. **allocate_credit_notes** applies each credit note to its invoice, for no more than
   Xero allows (the credit left, the amount due).
8. **write_back_run** records the run's outcome; **summarise_run** logs the summary
   per entity and writes the Xero Integration report.

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
    tags=["xero", "astute", "invoices", "credit notes"],
    params={
        "billing_entity_ids": Param(
            None,
            type=["null", "array"],
            items={"type": "integer"},
            title="Billing entities",
            description="Astute billing entity ids to export. Empty: every entity linked to Xero and live.",
        ),
        "date_from": Param(
            None, type=["null", "string"], format="date", title="Dated from",
            description="Only invoices and credit notes dated on or after this day. Empty: all outstanding.",
        ),
        "date_to": Param(
            None, type=["null", "string"], format="date", title="Dated up to",
            description="Only invoices and credit notes dated on or before this day. Empty: up to the run's data "
            "interval end.",
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
    def extract_documents(export_run_id: int) -> dict:
        return tasks.extract_documents(export_run_id)

    @task
    def validate_documents(export_run_id: int) -> dict:
        return tasks.validate_documents(export_run_id)

    @task
    def resolve_contacts(export_run_id: int) -> dict:
        return tasks.resolve_contacts(export_run_id)

    @task
    def plan_chunks(export_run_id: int) -> dict:
        return tasks.plan_chunks(export_run_id)

    @task
    def invoice_chunks(export_run_id: int) -> list[dict]:
        return tasks.chunk_keys(export_run_id, "invoice")

    # Listed once every invoice chunk is done, whatever became of it: a credit note whose invoice did
    # not go waits for it.
    @task(trigger_rule="all_done")
    def credit_note_chunks(export_run_id: int) -> list[dict]:
        return tasks.chunk_keys(export_run_id, "credit_note")

    @task(pool="xero_api", map_index_template="{{ chunk_label }}")
    def export_invoice_chunk(chunk: dict) -> dict:
        get_current_context()["chunk_label"] = tasks.chunk_label(chunk)  # names the mapped task in the UI
        return tasks.export_document_chunk(chunk)

    @task(pool="xero_api", map_index_template="{{ chunk_label }}")
    def export_credit_note_chunk(chunk: dict) -> dict:
        get_current_context()["chunk_label"] = tasks.chunk_label(chunk)
        return tasks.export_document_chunk(chunk)

    @task(pool="xero_api", trigger_rule="all_done")
    def allocate_credit_notes(export_run_id: int) -> dict:
        return tasks.allocate_credit_notes(export_run_id)

    @task(trigger_rule="all_done")
    def write_back_run(export_run_id: int) -> str:
        return tasks.write_back_run(export_run_id)

    @task(trigger_rule="all_done")
    def summarise_run(export_run_id: int) -> dict:
        return tasks.summarise_run(export_run_id)

    export_run_id = start_export_run()  # "run_id" is Airflow's own context key: ours is the xero_sync run
    extracted = extract_documents(export_run_id)
    validated = validate_documents(export_run_id)
    linked = resolve_contacts(export_run_id)
    planned = plan_chunks(export_run_id)
    invoice_keys = invoice_chunks(export_run_id)
    invoices = export_invoice_chunk.expand(chunk=invoice_keys)
    credit_note_keys = credit_note_chunks(export_run_id)
    credit_notes = export_credit_note_chunk.expand(chunk=credit_note_keys)
    allocated = allocate_credit_notes(export_run_id)
    written = write_back_run(export_run_id)
    extracted >> validated >> linked >> planned >> invoice_keys
    invoices >> credit_note_keys
    credit_notes >> allocated >> written >> summarise_run(export_run_id)


xero_invoice_export()
