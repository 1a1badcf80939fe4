"""The two kinds of Astute document that go to Xero: invoices and credit notes.

Everything a run does (select, validate, link contacts, chunk, export, write back)
is the same for both; what differs is named here once: the export flag table
each kind keeps in xero_sync, its lease keys and its words.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from psycopg import sql

from astute_xero.sql import load_sql


@dataclass(frozen=True)
class DocumentKind:
    name: str  # the `kind` stored in xero_sync's work tables
    label: str  # "Invoice 42", "Credit note CN-7"
    plural: str
    export_table: str  # the kind's own export flag, in xero_sync
    id_column: str
    xero_id_column: str

    def describe(self, document_id: int, number: str | None) -> str:
        return f"{self.label} {number}" if number else f"{self.label} id {document_id} (no number)"

    def sql(self, name: str) -> sql.Composed:
        """include/sql/<name>.sql with {export_table}, {id_column} and {xero_id_column} filled in for this kind."""
        return sql.SQL(load_sql(name)).format(
            export_table=sql.Identifier("xero_sync", self.export_table),
            id_column=sql.Identifier(self.id_column),
            xero_id_column=sql.Identifier(self.xero_id_column),
        )

    def lease_key(self, document_id: int) -> str:
        """The lease a worker holds on the document while it sends it (see astute_xero.leases)."""
        return f"{self.name}:{document_id}"

    def lease_keys(self, document_ids: Iterable[int]) -> dict[str, int]:
        return {self.lease_key(document_id): document_id for document_id in document_ids}


INVOICE = DocumentKind("invoice", "Invoice", "invoices", "invoice_export", "invoice_id", "xero_invoice_id")
CREDIT_NOTE = DocumentKind(
    "credit_note", "Credit note", "credit notes", "credit_note_export", "credit_note_id", "xero_credit_note_id"
)
KINDS = {kind.name: kind for kind in (INVOICE, CREDIT_NOTE)}
