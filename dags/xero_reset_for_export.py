"""
### Reset for export: send items again on purpose

Makes the next `xero_invoice_export` run send the chosen Sent invoices and credit notes, whatever
their date: history that was never sent, mock-exported items, or items that failed. Choose them
by `invoice_ids` / `credit_note_ids`, or by `billing_entity_id` with `date_from` and `date_to`.

A successfully exported item cannot be reset (it is in Xero already): the task then fails and
its log names each such item and why; the others are reset all the same. The exception: an exported
item that `xero_status_sync` found gone from Xero (no longer held, voided or deleted there: an open
drift in the Xero Integration report) can be reset, and its drift is then closed.
"""

from __future__ import annotations

from airflow.sdk import Param, dag, get_current_context, task

from astute_xero.lazy import lazy_module
from astute_xero.dag_policy import OPERATIONS_DAG

tasks = lazy_module("astute_xero.export.tasks")  # imported by the task that runs, not by every parse (astute_xero.lazy)


@dag(
    dag_id="xero_reset_for_export",
    doc_md=__doc__,
    **OPERATIONS_DAG,
    params={
        "invoice_ids": Param(
            [], type="array", items={"type": "integer"}, title="Invoice ids",
            description="Astute invoice ids to reset. Or leave empty and choose an entity and dates.",
        ),
        "credit_note_ids": Param(
            [], type="array", items={"type": "integer"}, title="Credit note ids",
            description="Astute credit note ids to reset.",
        ),
        "billing_entity_id": Param(
            None, type=["null", "integer"], title="Billing entity",
            description="With the dates: every Sent invoice and credit note of this entity dated in the range.",
        ),
        "date_from": Param(None, type=["null", "string"], format="date", title="Invoices dated from"),
        "date_to": Param(None, type=["null", "string"], format="date", title="Invoices dated up to"),
    },
)
def xero_reset_for_export():
    @task  # a refusal fails at once (AirflowFailException): only faults are retried
    def reset_invoices_for_export() -> dict:
        return tasks.reset_for_export(dict(get_current_context()["params"]))

    reset_invoices_for_export()


xero_reset_for_export()
