"""A preview of an export (the export DAG's Param `preview`): what would go, what would be held back and why.

A preview is a run of kind 'preview' (sync_state.PREVIEW) that runs every step of the export before its
first write to Xero (extract, validate against each organisation's chart, contacts, chunk planning) and
stops there. The steps are the export's own: where the export would write, the step asks
sync_state.is_preview and records what it would do instead (contacts: xero_sync.preview_contact); the
chunk, allocation and continuation steps do nothing for a preview.

Two guarantees hold whatever a step does:

- Xero is only read. A preview's Xero client (XeroClient's `read_only`) refuses any call but a GET before it is sent,
  and its reads go through the same client and pacer as the export's, inside each organisation's budget.
- Astute's export state is not touched: no export flag (invoice_export, credit_note_export), no Contact
  link, no document_hold (which steers what the next export selects, so that the export sends what its
  preview said). What the preview writes is its own run: export_run, run_entity, run_document,
  validation_issue, export_chunk, preview_contact and the api_log rows of its reads.
"""

from __future__ import annotations

from collections.abc import Iterable

import psycopg

from astute_xero.sql import load_sql

# What a preview's contact step would do for a customer (xero_sync.preview_contact.action).
CREATE = "create"  # no Contact of the customer's name: the export creates one
MATCH = "match"  # an active Contact has the customer's name: the export links the customer to it
RENAME = "rename"  # the customer was renamed in Astute: the export pushes the new name to its linked Contact
RELINK = "relink"  # its Contact was merged in Xero: the export moves the link to the Contact it was merged into


def record_contacts(
    conn: psycopg.Connection, run_id: int, tenant_id: str, action: str,
    customers: Iterable[tuple[int, str | None, str | None, str]],
) -> None:
    """What the export would do for these customers: (customer_id, Contact id, its name now, Astute's name)."""
    rows = list(customers)
    if not rows:
        return
    customer_ids, contact_ids, contact_names, astute_names = (list(column) for column in zip(*rows))
    conn.execute(load_sql("preview_contact_record"),
                 {"run_id": run_id, "tenant_id": tenant_id, "action": action, "customer_ids": customer_ids,
                  "contact_ids": contact_ids, "contact_names": contact_names, "astute_names": astute_names})
