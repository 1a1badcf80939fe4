"""Astute rows for the demo, the tests and the benchmarks, written with COPY in bulk."""

from __future__ import annotations

import datetime as dt
import itertools
from dataclasses import dataclass
from decimal import Decimal

import psycopg


@dataclass(frozen=True)
class Line:
    description: str = "Labour hire - week ending"
    quantity: Decimal = Decimal("38.0000")
    unit_amount: Decimal = Decimal("52.3750")
    account_code: str | None = "200"
    tax_type: str | None = "OUTPUT"
    tracking_name: str | None = None
    tracking_option: str | None = None


class AstuteData:
    """Builds Astute data in memory; flush() writes it. Ids are assigned here, as Astute would."""

    REGIONS = [("AU", "Australia", "AUD"), ("NZ", "New Zealand", "NZD"), ("UK", "United Kingdom", "GBP")]

    def __init__(self, conn: psycopg.Connection):
        self._conn = conn
        self._ids = itertools.count(1)
        self._line_ids = itertools.count(1)
        self._entities: list[tuple] = []
        self._customers: list[tuple] = []
        self._invoices: list[tuple] = []
        self._lines: list[tuple] = []
        self._credit_notes: list[tuple] = []
        self._credit_note_lines: list[tuple] = []

    def regions(self) -> None:
        with self._conn.cursor() as cursor:
            cursor.executemany("INSERT INTO astute.regulatory_region VALUES (%s, %s, %s)", self.REGIONS)

    def entity(self, name: str, *, region: str = "AU", tenant_id: str | None = None, go_live: dt.date | None = None) -> int:
        entity_id = next(self._ids)
        self._entities.append((entity_id, name, region, tenant_id, go_live))
        return entity_id

    def customer(self, name: str) -> int:
        customer_id = next(self._ids)
        self._customers.append((customer_id, name))
        return customer_id

    def invoice(
        self,
        entity_id: int,
        customer_id: int,
        *,
        number: str | None = None,
        status: str = "Sent",
        invoice_date: dt.date = dt.date(2026, 6, 1),
        due_date: dt.date | None = None,
        currency: str | None = None,
        reference: str | None = None,
        line_amount_types: str = "Exclusive",
        lines: list[Line] | None = None,
    ) -> int:
        invoice_id = next(self._ids)
        self._invoices.append(
            (
                invoice_id,
                entity_id,
                customer_id,
                number,
                reference,
                status,
                invoice_date,
                due_date or invoice_date + dt.timedelta(days=14),
                currency,
                line_amount_types,
                dt.datetime.combine(invoice_date, dt.time(9), dt.timezone.utc) if status == "Sent" else None,
            )
        )
        for line_no, line in enumerate([Line()] if lines is None else lines, start=1):
            self._lines.append(
                (
                    next(self._line_ids),
                    invoice_id,
                    line_no,
                    line.description,
                    line.quantity,
                    line.unit_amount,
                    line.account_code,
                    line.tax_type,
                    line.tracking_name,
                    line.tracking_option,
                )
            )
        return invoice_id

    def credit_note(
        self,
        entity_id: int,
        customer_id: int,
        *,
        invoice_id: int | None = None,
        number: str | None = None,
        status: str = "Sent",
        credit_date: dt.date = dt.date(2026, 6, 10),
        currency: str | None = None,
        reference: str | None = None,
        lines: list[Line] | None = None,
    ) -> int:
        """A credit note, crediting `invoice_id` when given (its lines are positive amounts, as in Astute)."""
        credit_note_id = next(self._ids)
        sent_at = dt.datetime.combine(credit_date, dt.time(9), dt.timezone.utc) if status == "Sent" else None
        self._credit_notes.append((credit_note_id, entity_id, customer_id, invoice_id, number, reference, status,
                                   credit_date, currency, "Exclusive", sent_at))
        for line_no, line in enumerate([Line(quantity=Decimal("1"))] if lines is None else lines, start=1):
            self._credit_note_lines.append((next(self._line_ids), credit_note_id, line_no, line.description,
                                            line.quantity, line.unit_amount, line.account_code, line.tax_type,
                                            line.tracking_name, line.tracking_option))
        return credit_note_id

    def flush(self) -> None:
        tables = [
            ("astute.billing_entity (id, name, default_regulatory_region, xero_tenant_id, xero_go_live_date)", self._entities),
            ("astute.customer (id, name)", self._customers),
            (
                "astute.invoice (id, billing_entity_id, customer_id, invoice_number, reference, status, invoice_date, "
                "due_date, currency, line_amount_types, sent_at)",
                self._invoices,
            ),
            (
                "astute.invoice_line (id, invoice_id, line_no, description, quantity, unit_amount, account_code, "
                "tax_type, tracking_name, tracking_option)",
                self._lines,
            ),
            (
                "astute.credit_note (id, billing_entity_id, customer_id, invoice_id, credit_note_number, reference, "
                "status, credit_date, currency, line_amount_types, sent_at)",
                self._credit_notes,
            ),
            (
                "astute.credit_note_line (id, credit_note_id, line_no, description, quantity, unit_amount, "
                "account_code, tax_type, tracking_name, tracking_option)",
                self._credit_note_lines,
            ),
        ]
        with self._conn.transaction(), self._conn.cursor() as cursor:
            for table, rows in tables:
                if rows:
                    with cursor.copy(f"COPY {table} FROM STDIN") as copy:
                        for row in rows:
                            copy.write_row(row)
                rows.clear()
