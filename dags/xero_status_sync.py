"""
### Read back from Xero what happened to the exported invoices and credit notes

Daily at 06:00 UTC (after the export), per Xero organisation of the linked, live billing entities, side by
side, each within its own call budget (shared with the export through the same pacer):

1. **organisations_to_read** applies the `xero_sync` migrations and lists the organisations.
2. **sync_organisation** (one mapped task per organisation) reads what changed in Xero since its last
   successful read of each kind, less a minute (`If-Modified-Since`, pages of 1,000 read so that a document
   changing meanwhile skips none, sales invoices, and credit notes when the
   organisation has ours; ours are those Astute exported, or carrying an Astute invoice's link as their Url,
   whichever Xero app reads them) into `xero_sync.xero_document`: status, amount due, paid and credited, the date
   fully paid and the last payment date. Then it records **drift**, once while it lasts, each with what to
   do: a document voided or deleted in Xero, a total in Xero that differs from its lines in Astute, a
   document moved to another Contact (merged), an invoice with an Astute link that Astute does not know, and
   (full reconciliation only, after asking Xero for it by id) one Xero no longer holds. Every open drift is
   looked at again each sync and closes when both sides agree. Nothing is changed to make them agree.
3. **summarise_status_sync** logs the picture per organisation: paid, part-paid, awaiting payment, overdue,
   and the drift still open.

An incremental read compares with Astute only what Xero changed that a drift is about (not a payment), and
every open drift. A **full reconciliation** reads and compares every document, not only what changed: the only way
to find documents Xero no longer holds, or an exported document Astute edited since. An organisation's first read
is always full, and so is its scheduled read once its last full one was 7 days ago (`[astute_xero]
full_reconciliation_days`; 0: only when asked); trigger with **Full reconciliation** (and the billing entities of
one organisation) for one now. Views for Astute and BI tools: `xero_sync.invoice_payment` (per invoice) and
`xero_sync.pay_run_payment` (per pay run).
"""

from __future__ import annotations

import datetime as dt

from airflow.sdk import Param, dag, get_current_context, task

from astute_xero.dag_policy import FAILURE_ALERT, OWNER, SMALL_STEP_TIMEOUT, START_DATE
from astute_xero.lazy import lazy_module

tasks = lazy_module("astute_xero.readback.tasks")  # imported by the task that runs, not by every parse (astute_xero.lazy)

# An organisation's read is bound by Xero's rate limit: a page of 1,000 documents per call, 60 calls a minute.
# A first (full) read of a million invoices is 1,000 calls: 17 minutes at Xero's pace; 2 hours leaves room
# for a slow Xero and an export sharing the budget.
ORGANISATION_READ_TIMEOUT = dt.timedelta(hours=2)


@dag(
    dag_id="xero_status_sync",
    doc_md=__doc__,
    schedule="0 6 * * *",
    start_date=START_DATE,
    catchup=False,
    max_active_runs=1,
    on_failure_callback=FAILURE_ALERT,
    default_args={"owner": OWNER, "retries": 3, "retry_delay": dt.timedelta(minutes=1),
                  "retry_exponential_backoff": 2.0, "execution_timeout": SMALL_STEP_TIMEOUT},
    tags=["xero", "astute", "payments", "reconciliation"],
    params={
        "billing_entity_ids": Param(
            None, type=["null", "array"], items={"type": "integer"}, title="Billing entities",
            description="Read back only the organisations of these Astute billing entities. Empty: every linked, "
                        "live entity's organisation.",
        ),
        "full_reconciliation": Param(
            False, type="boolean", title="Full reconciliation",
            description="Read every document this app exported, not only what changed since the last read: finds "
                        "documents Xero no longer holds. Costs one call per 1,000 documents of the organisation.",
        ),
    },
)
def xero_status_sync():
    @task
    def organisations_to_read() -> list[dict]:
        return tasks.organisations_to_read(dict(get_current_context()["params"]))

    @task(pool="xero_api", map_index_template="{{ organisation_label }}", execution_timeout=ORGANISATION_READ_TIMEOUT)
    def sync_organisation(organisation: dict) -> dict:
        context = get_current_context()
        context["organisation_label"] = organisation["label"]  # names the mapped task in the UI
        return tasks.sync_organisation(organisation, bool(context["params"]["full_reconciliation"]), context["run_id"])

    @task(trigger_rule="all_done")
    def summarise_status_sync(outcomes: list[dict]) -> str:
        return tasks.summarise_status_sync([o for o in outcomes if o])

    summarise_status_sync(sync_organisation.expand(organisation=organisations_to_read()))


xero_status_sync()
