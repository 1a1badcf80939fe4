"""The Xero Integration report's dataset, and the SQL that says what the report must show, written apart from
the report's own queries (include/sql/report_*.sql) so that the two can disagree.

One billing entity live since GO_LIVE with: invoices that export, invoices held back by validation (no GL
code; an unknown tax type and account code), one Xero refuses (its number is taken in Xero), one dated
before go-live (history) and a draft; credit notes that export and are allocated, that wait for a held
invoice, that are held themselves, and a draft; two pay runs among the outstanding invoices.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import psycopg

from devtools.astute_data import AstuteData, Line
from tests.dags.conftest import AU_TENANT, NZ_TENANT  # the organisations of the export world

__all__ = ["AU_TENANT", "NZ_TENANT", "ReportDataset", "load_report_dataset", "expected_counts"]

GO_LIVE = dt.date(2026, 3, 1)
CUSTOMER_NAME = "Harbour <Constructions> & Co"


@dataclass(frozen=True)
class ReportDataset:
    entity: int
    customer: int
    no_gl: int  # an invoice held back: line 1 has no GL account code
    clash: int  # an invoice Xero refuses: its number is taken in Xero


def load_report_dataset(data: AstuteData, db: psycopg.Connection, xero_backend) -> ReportDataset:
    """Astute rows and the Xero organisations' state before the export runs (the tenants exist)."""
    entity = data.entity("Astute AU", tenant_id=AU_TENANT, go_live=GO_LIVE)
    customer = data.customer(CUSTOMER_NAME)
    ok = [data.invoice(entity, customer, number=f"OK-{n}") for n in range(6)]
    no_gl = data.invoice(entity, customer, number="NO-GL", lines=[Line(account_code=None)])
    data.invoice(entity, customer, number="BAD-TAX", lines=[Line(tax_type="GSTX"), Line(account_code="999")])
    clash = data.invoice(entity, customer, number="CLASH")
    data.invoice(entity, customer, number="OLD", invoice_date=GO_LIVE - dt.timedelta(days=1))
    data.invoice(entity, customer, number="DRAFT", status="Draft")
    data.flush()
    db.execute("INSERT INTO astute.pay_run VALUES (1, %s, '2026-06-07', 'Finalised', NULL), "
               "(2, %s, '2026-06-14', 'Finalised', NULL)", (entity, entity))
    db.execute("UPDATE astute.invoice SET pay_run_id = 1 WHERE invoice_number IN ('NO-GL', 'CLASH')")
    db.execute("UPDATE astute.invoice SET pay_run_id = 2 WHERE invoice_number = 'BAD-TAX'")
    data.credit_note(entity, customer, invoice_id=ok[0], number="CN-1")  # goes, and is allocated
    data.credit_note(entity, customer, invoice_id=no_gl, number="CN-WAIT")  # its invoice is held back
    data.credit_note(entity, customer, number="CN-EMPTY", lines=[])  # held back itself
    data.credit_note(entity, customer, number="CN-DRAFT", status="Draft")  # never
    data.flush()
    contact = xero_backend.add_contact(AU_TENANT, "Someone Else")
    xero_backend.seed_invoice(AU_TENANT, contact_id=contact, invoice_number="CLASH")
    return ReportDataset(entity, customer, no_gl, clash)


# What is still to export, by the help article's rule: Sent, not exported or mock-exported, and dated on or
# after go-live unless the pipeline has handled it before (failed, reset).
_SENT = """
WITH documents AS (
    SELECT 'invoice' AS kind, i.id, i.invoice_date AS dated, i.pay_run_id, NULL::bigint AS credits, x.status
    FROM astute.invoice i LEFT JOIN xero_sync.invoice_export x ON x.invoice_id = i.id
    WHERE i.billing_entity_id = %(entity)s AND i.status = 'Sent'
    UNION ALL
    SELECT 'credit_note', c.id, c.credit_date, NULL, c.invoice_id, x.status
    FROM astute.credit_note c LEFT JOIN xero_sync.credit_note_export x ON x.credit_note_id = c.id
    WHERE c.billing_entity_id = %(entity)s AND c.status = 'Sent'
), outstanding AS (
    SELECT * FROM documents
    WHERE COALESCE(status, '') NOT IN ('exported', 'mock_exported')
      AND (dated >= %(go_live)s OR status IS NOT NULL)
      AND (%(date_from)s::date IS NULL OR dated >= %(date_from)s::date)
      AND (%(date_to)s::date IS NULL OR dated <= %(date_to)s::date)
)
"""
OUTSTANDING_SQL = _SENT + """
SELECT count(*) FILTER (WHERE kind = 'invoice'), count(DISTINCT pay_run_id), count(*) FILTER (WHERE kind = 'credit_note')
FROM outstanding
"""
# What blocks them: held back by the latest validation (document_hold), refused by Xero (failed), a credit
# note whose invoice is not in Xero, and credit notes in Xero that Xero would not allocate.
BLOCKED_SQL = _SENT + """
SELECT
  (SELECT count(*) FROM outstanding o
   WHERE EXISTS (SELECT 1 FROM xero_sync.document_hold h WHERE h.kind = o.kind AND h.document_id = o.id))
  + (SELECT count(*) FROM outstanding o
     WHERE o.status = 'failed'
       AND NOT EXISTS (SELECT 1 FROM xero_sync.document_hold h WHERE h.kind = o.kind AND h.document_id = o.id))
  + (SELECT count(*) FROM outstanding o
     WHERE o.kind = 'credit_note' AND o.credits IS NOT NULL AND o.status IS DISTINCT FROM 'failed'
       AND NOT EXISTS (SELECT 1 FROM xero_sync.document_hold h WHERE h.kind = o.kind AND h.document_id = o.id)
       AND NOT EXISTS (SELECT 1 FROM xero_sync.invoice_export x
                       WHERE x.invoice_id = o.credits AND x.status IN ('exported', 'mock_exported')))
  + (SELECT count(*) FROM xero_sync.credit_note_export x JOIN astute.credit_note c ON c.id = x.credit_note_id
     WHERE c.billing_entity_id = %(entity)s AND x.allocation_status = 'failed'
       AND (%(date_from)s::date IS NULL OR c.credit_date >= %(date_from)s::date)
       AND (%(date_to)s::date IS NULL OR c.credit_date <= %(date_to)s::date))
"""


def expected_counts(db: psycopg.Connection, entity: int, date_from: dt.date | None = None,
                    date_to: dt.date | None = None) -> dict[str, int]:
    """The Report Summary's four tiles, from the SQL above."""
    params = {"entity": entity, "go_live": GO_LIVE, "date_from": date_from, "date_to": date_to}
    invoices, pay_runs, credit_notes = db.execute(OUTSTANDING_SQL, params).fetchone()
    (blocked,) = db.execute(BLOCKED_SQL, params).fetchone()
    return {"Invoices still to export": invoices, "Pay runs still to export": pay_runs,
            "Credit notes still to export": credit_notes,
            "Validation errors, failures and waiting credit notes": blocked}
