"""The demo's world: two live entities, one unlinked, one not yet live; good invoices, credit notes and the usual mistakes."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import psycopg

from devtools.astute_data import AstuteData, Line
from xero_sandbox import SandboxBackend

AU_ORG = "Astute Staffing AU (Xero)"
NZ_ORG = "Astute Staffing NZ (Xero)"
GO_LIVE_AU = dt.date(2026, 7, 1)
GO_LIVE_NZ = dt.date(2026, 9, 1)


def seed_xero(backend: SandboxBackend) -> dict[str, str]:
    """The organisations as they are in Xero before the first export: one Contact and one invoice already there."""
    tenants = {
        AU_ORG: backend.add_tenant(AU_ORG, base_currency="AUD", currencies=["AUD", "USD"]),
        NZ_ORG: backend.add_tenant(NZ_ORG, base_currency="NZD", currencies=["NZD"]),
    }
    acme = backend.add_contact(tenants[AU_ORG], "ACME MINING PTY LTD")
    # Someone keyed this number into Xero by hand: Astute's invoice with the same number will be refused.
    backend.seed_invoice(tenants[AU_ORG], contact_id=acme, invoice_number="AU-10042")
    return tenants


def load_astute(conn: psycopg.Connection, tenants: dict[str, str]) -> None:
    data = AstuteData(conn)
    data.regions()
    au = data.entity("Astute Staffing AU", region="AU", tenant_id=tenants[AU_ORG], go_live=GO_LIVE_AU)
    nz = data.entity("Astute Staffing NZ", region="NZ", tenant_id=tenants[NZ_ORG], go_live=GO_LIVE_NZ)
    data.entity("Astute Labour Hire UK", region="UK", tenant_id=None, go_live=None)
    data.entity("Astute Trial Entity", region="AU", tenant_id=tenants[AU_ORG], go_live=None)

    customers = [
        data.customer(name)
        for name in ("Acme Mining Pty Ltd", "Harbour Constructions", "Zoë's Café & Bar", "O'Brien & Sons", "Metro Health")
    ]
    kiwi = data.customer("Kiwi Builders Ltd")

    # 230 good AU invoices since go-live: three chunks (100/100/30).
    day = GO_LIVE_AU
    au_invoices = []
    for n in range(230):
        day = GO_LIVE_AU + dt.timedelta(days=n % 120)
        au_invoices.append(data.invoice(
            au, customers[n % len(customers)], number=f"AU-{10000 + n}", invoice_date=day,
            currency="USD" if n % 50 == 7 else None,
            lines=[
                Line(description=f"Labour hire, week ending {day:%d %b %Y}", quantity=Decimal("38.0000"),
                     unit_amount=Decimal("52.3750") + n % 7),
                Line(description="Site allowance", quantity=Decimal("5.0000"), unit_amount=Decimal("12.3333")),
            ],
        ))
    # The usual mistakes, each held back with its reason (the valid invoices still go).
    held_au = data.invoice(au, customers[1], number="AU-20001", lines=[Line(account_code=None)], invoice_date=day)
    data.invoice(au, customers[2], number="AU-20002", lines=[Line(tax_type="GSTONIMPORTS")], invoice_date=day)
    data.invoice(au, customers[3], number="AU-20003", currency="EUR", invoice_date=day)
    data.invoice(au, customers[4], number="AU-20004", lines=[], invoice_date=day)
    # Not Sent, or history from before go-live: never exported.
    data.invoice(au, customers[0], number="AU-30001", status="Draft", invoice_date=day)
    data.invoice(au, customers[0], number="AU-30002", status="Void", invoice_date=day)
    data.invoice(au, customers[0], number="AU-09999", invoice_date=GO_LIVE_AU - dt.timedelta(days=3))

    first_au = au_invoices[0]
    # Credit notes: one for an over-charged week (allocated to its invoice), one bigger than what its invoice
    # owes (allocated up to the amount due, the rest stays as credit), one crediting no invoice, and one whose
    # invoice is held back above (it waits for it).
    credit = [Line(description="Credit: hours over-charged", quantity=Decimal("4.0000"), unit_amount=Decimal("52.3750"))]
    data.credit_note(au, customers[0], invoice_id=first_au, number="AU-CN-001", credit_date=day, lines=credit)
    data.credit_note(au, customers[0], invoice_id=first_au, number="AU-CN-002", credit_date=day,
                     lines=[Line(description="Credit: rate corrected", quantity=Decimal("1"), unit_amount=Decimal("5000"))])
    data.credit_note(au, customers[2], number="AU-CN-003", credit_date=day,
                     lines=[Line(description="Goodwill credit", quantity=Decimal("1"), unit_amount=Decimal("150"))])
    data.credit_note(au, customers[1], invoice_id=held_au, number="AU-CN-004", credit_date=day, lines=credit)

    for n in range(12):
        data.invoice(nz, kiwi, number=f"NZ-{500 + n}", invoice_date=GO_LIVE_NZ + dt.timedelta(days=n),
                     lines=[Line(tax_type="OUTPUT", unit_amount=Decimal("61.2500"))])
    data.flush()
