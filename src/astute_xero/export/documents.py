"""The two kinds of Astute document that go to Xero: invoices and credit notes.

Everything a run does (select, validate, link contacts, chunk, export, write back)
is the same for both; what differs is named here once: the export flag table
each kind keeps in xero_sync, its advisory-lock key space and its words.
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
    lock_sign: int  # invoices lock on their id, credit notes on minus theirs: one bigint key space

    def describe(self, document_id: int, number: str | None) -> str:
        return f"{self.label} {number}" if number else f"{self.label} id {document_id} (no number)"

    def sql(self, name: str) -> sql.Composed:
        """include/sql/<name>.sql with {export_table}, {id_column} and {xero_id_column} filled in for this kind."""
        return sql.SQL(load_sql(name)).format(
            export_table=sql.Identifier("xero_sync", self.export_table),
            id_column=sql.Identifier(self.id_column),
            xero_id_column=sql.Identifier(self.xero_id_column),
        )

    def lock_keys(self, document_ids: Iterable[int]) -> list[int]:
        return [self.lock_sign * document_id for document_id in document_ids]


INVOICE = DocumentKind("invoice", "Invoice", "invoices", "invoice_export", "invoice_id", "xero_invoice_id", 1)
CREDIT_NOTE = DocumentKind(
    "credit_note", "Credit note", "credit notes", "credit_note_export", "credit_note_id", "xero_credit_note_id", -1
)
KINDS = {kind.name: kind for kind in (INVOICE, CREDIT_NOTE)}
