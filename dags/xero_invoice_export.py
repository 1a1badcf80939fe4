"""
### Export Sent invoices and credit notes from Astute to Xero

Every Sent invoice and credit note of every billing entity that is linked to a Xero
organisation (`billing_entity.xero_tenant_id`) and live (`xero_go_live_date`) goes to
Xero once: invoices as `ACCREC`, credit notes as `ACCRECCREDIT`, both `AUTHORISED`.
A credit note is then allocated to the invoice it credits.

1. **start_export_run** applies the `xero_sync` migrations and records which entities
   are exported or skipped (and why).
2. **extract_documents** lists the Sent, not-yet-exported invoices and credit notes (ids only): per
   organisation, oldest first, only as many as this run can send (its share of Airflow's map limit and
   what is left of its day at Xero), plus those held back before (checked again).
3. **validate_documents** checks them with Great Expectations against each organisation's
   chart (accounts, tax rates, currencies, tracking categories) and Xero's field limits:
   invalid ones are held back with a reason.
4. **resolve_contacts** links each customer to its Xero Contact (by name; created if absent),
   every organisation side by side (so do the chart reads and the allocations).
5. **plan_chunks** groups them in chunks of at most 100 documents of one kind (under 3.5 MB).
   A credit note whose invoice is not in Xero (and not going now) waits for it.
6. **invoice_lanes** groups the chunks in lanes of at most 50 (an organisation's slice, or several small
   organisations together) and **export_invoice_chunks** exports one lane per mapped task, in the `xero_api`
   pool, a few chunks at once (one call each), every organisation at most 5 calls at once and within its
   minute and day; then **credit_note_lanes** and **export_credit_note_chunks** the credit notes, once the
   invoices are in.
7. **allocate_credit_notes** applies each credit note to its invoice, for no more than
   Xero allows (the credit left, the amount due).
8. **write_back_run** records the run's outcome; **summarise_run** logs the summary
   per entity and writes the Xero Integration report.
9. **continue_backlog**: while an organisation still has documents waiting, triggers the run that
   continues them (same scope), at once or when Xero's daily budget returns.

State, flags and the API log live in the `xero_sync` schema of the Astute database.

**Preview** (tick *Preview only* in the trigger form, or `--conf '{"preview": true}'`): the same steps 1 to 5
with the same Params, reading Xero only (no Contact, rename, document or allocation is written; no export
flag or Contact link changes), then stop. The export tasks get no lanes and the allocation and continuation
are skipped; **summarise_run** logs what an export would send (documents and chunks per entity), the
Contacts it would create or rename, each document it would hold back with what to fix, the credit notes
that would wait, and what is left for later runs. The Xero Integration report shows it as the latest preview.
"""

from __future__ import annotations

import datetime as dt

from airflow.sdk import CronDataIntervalTimetable, Param, dag, get_current_context, task

from astute_xero.lazy import lazy_module
from astute_xero.operations import entity_choices
from astute_xero.dag_policy import (DATABASE_STEP_TIMEOUT, FAILURE_ALERT, LANE_TIMEOUT, OWNER, SMALL_STEP_TIMEOUT,
                                    START_DATE, export_deadline)

tasks = lazy_module("astute_xero.export.tasks")  # imported by the task that runs, not by every parse (astute_xero.lazy)

RETRIES = {"retries": 3, "retry_delay": dt.timedelta(seconds=30), "retry_exponential_backoff": 2.0,
           "max_retry_delay": dt.timedelta(minutes=10)}

# execution_timeout per task, from what it does (the SQL-only steps and the chunks: dag_policy). A timed-out task is
# retried like any failure, and every step is safe to repeat.
#
# Validation reads each organisation's chart (5 GETs: accounts, tax rates, currencies, tracking) and
# validates every selected document with Great Expectations in batches of 20,000 (the bench: 220,000 documents in 10 s). A large backlog over several
# organisations, with Xero slow on the chart reads, stays within minutes; 1 hour leaves a wide margin.
VALIDATION_TIMEOUT = dt.timedelta(hours=1)
# Contacts and allocations are bound by Xero's rate limit, every organisation side by side (16 at once):
# one call per 25 names looked up, 100 Contacts created, 50 links checked, and one call per credit note
# allocated, at 60 calls a minute. A first export with 10,000 new customers is about 500 calls (9 minutes)
# per organisation; a day's limit (5,000 calls) would be 84 minutes. 3 hours covers a large first run over
# many organisations; work done before a timeout is kept (links, allocations) and the retry goes on.
XERO_BOUND_STEP_TIMEOUT = dt.timedelta(hours=3)
# The summary and one Xero Integration report per entity: queries over the outstanding views.
SUMMARY_TIMEOUT = dt.timedelta(hours=1)
# The trigger form's list of billing entities, by name: from the Airflow Variable xero_housekeeping keeps.
ENTITY_CHOICES = entity_choices.cached_choices()


@dag(
    dag_id="xero_invoice_export",
    doc_md=__doc__,
    # Data intervals matter: a run (and a backfill) exports what is dated up to its interval's end.
    schedule=CronDataIntervalTimetable("0 0 * * *", timezone="UTC"),
    start_date=START_DATE,
    catchup=False,
    max_active_runs=1,
    on_failure_callback=FAILURE_ALERT,
    deadline=export_deadline(),
    default_args={"owner": OWNER, **RETRIES, "execution_timeout": DATABASE_STEP_TIMEOUT},
    tags=["xero", "astute", "invoices", "credit notes"],
    params={
        # Chosen from a list of names (kept by xero_housekeeping in an Airflow Variable: parsing may not query
        # Astute). The form's list gives ids as text, the CLI and the REST API numbers: both are ids.
        "billing_entity_ids": Param(
            None,
            type=["null", "array"],
            items={"type": ["integer", "string"], "pattern": "^[1-9][0-9]*$", "minimum": 1},
            **({"examples": list(ENTITY_CHOICES), "values_display": ENTITY_CHOICES} if ENTITY_CHOICES else {}),
            title="Billing entities",
            description="The Astute billing entities to export, chosen by name. Empty: every entity linked to Xero "
            "and live." + ("" if ENTITY_CHOICES else " (Their names are listed once xero_housekeeping has run; "
                           "until then give ids, e.g. [1].)"),
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
        "preview": Param(
            False, type="boolean", title="Preview only",
            description="Check before you export: run every step up to the first write to Xero and stop. Shows what "
            "would go (documents, chunks, Contacts to create or rename), what would be held back and why, and what "
            "is left for later runs, in summarise_run's log and the Xero Integration report. Reads Xero only; "
            "nothing is sent and no export flag or Contact link changes.",
        ),
        "continues_run_id": Param(
            None, type=["null", "integer"], title="Continues export run",
            description="Set by a run that left a backlog (Xero's daily limit, Airflow's map limit) when it triggers "
            "the run that continues it. Leave empty.",
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

    @task(execution_timeout=VALIDATION_TIMEOUT)
    def validate_documents(export_run_id: int) -> dict:
        return tasks.validate_documents(export_run_id)

    @task(execution_timeout=XERO_BOUND_STEP_TIMEOUT)
    def resolve_contacts(export_run_id: int) -> dict:
        return tasks.resolve_contacts(export_run_id)

    @task
    def plan_chunks(export_run_id: int) -> dict:
        return tasks.plan_chunks(export_run_id)

    @task(execution_timeout=SMALL_STEP_TIMEOUT)
    def invoice_lanes(export_run_id: int) -> list[dict]:
        return tasks.export_lanes(export_run_id, "invoice")

    # Listed once every invoice lane is done, whatever became of it: a credit note whose invoice did
    # not go waits for it.
    @task(trigger_rule="all_done", execution_timeout=SMALL_STEP_TIMEOUT)
    def credit_note_lanes(export_run_id: int) -> list[dict]:
        return tasks.export_lanes(export_run_id, "credit_note")

    @task(pool="xero_api", map_index_template="{{ lane_label }}", execution_timeout=LANE_TIMEOUT)
    def export_invoice_chunks(lane: dict) -> dict:
        get_current_context()["lane_label"] = tasks.lane_label(lane)  # names the mapped task in the UI
        return tasks.export_lane(lane)

    @task(pool="xero_api", map_index_template="{{ lane_label }}", execution_timeout=LANE_TIMEOUT)
    def export_credit_note_chunks(lane: dict) -> dict:
        get_current_context()["lane_label"] = tasks.lane_label(lane)
        return tasks.export_lane(lane)

    @task(pool="xero_api", trigger_rule="all_done", execution_timeout=XERO_BOUND_STEP_TIMEOUT)
    def allocate_credit_notes(export_run_id: int) -> dict:
        return tasks.allocate_credit_notes(export_run_id)

    @task(trigger_rule="all_done")
    def write_back_run(export_run_id: int) -> str:
        return tasks.write_back_run(export_run_id)

    @task(trigger_rule="all_done", execution_timeout=SUMMARY_TIMEOUT)
    def summarise_run(export_run_id: int) -> dict:
        return tasks.summarise_run(export_run_id)

    # The next run of a backlog, with the same scope, once this run's outcome is written back (beside the
    # summary, never before it: both leaves of the run); Airflow's scheduler holds it until `run_after`, so
    # nothing waits on a worker for Xero's day to return. A retried task finds the run already there.
    @task(trigger_rule="all_done", execution_timeout=SMALL_STEP_TIMEOUT)
    def continue_backlog(export_run_id: int) -> str | None:
        from airflow.providers.standard.operators.trigger_dagrun import TriggerDagRunOperator

        context = get_current_context()
        follow = tasks.continue_backlog(export_run_id)
        if follow is None:
            return None
        not_before = dt.datetime.fromisoformat(follow["not_before"]) if follow["not_before"] else None
        TriggerDagRunOperator(
            task_id="continue_backlog", trigger_dag_id=context["dag"].dag_id,
            trigger_run_id=follow["run_id"], conf=follow["conf"], logical_date=None,
            run_after=not_before or dt.datetime.now(dt.timezone.utc), skip_when_already_exists=True,
        ).execute(context)
        return follow["run_id"]

    export_run_id = start_export_run()  # "run_id" is Airflow's own context key: ours is the xero_sync run
    extracted = extract_documents(export_run_id)
    validated = validate_documents(export_run_id)
    linked = resolve_contacts(export_run_id)
    planned = plan_chunks(export_run_id)
    invoice_work = invoice_lanes(export_run_id)
    invoices = export_invoice_chunks.expand(lane=invoice_work)
    credit_note_work = credit_note_lanes(export_run_id)
    credit_notes = export_credit_note_chunks.expand(lane=credit_note_work)
    allocated = allocate_credit_notes(export_run_id)
    written = write_back_run(export_run_id)
    extracted >> validated >> linked >> planned >> invoice_work
    invoices >> credit_note_work
    credit_notes >> allocated >> written
    # Both are leaves: a run whose summary finds documents unfinished is failed (red), whatever the
    # continuation did.
    written >> [summarise_run(export_run_id), continue_backlog(export_run_id)]


xero_invoice_export()
