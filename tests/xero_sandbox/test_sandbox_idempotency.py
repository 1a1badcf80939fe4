"""Idempotency-Key: replay returns the first answer and does nothing new."""

from __future__ import annotations

import datetime as dt
import json
from decimal import Decimal

import pytest
from xero_python.accounting import Contact, Invoice, Invoices, LineItem
from xero_python.exceptions import HTTPStatusException

from .sandbox_helpers import CLIENT_ID, Xero, refresh


def _batch(contact_id: str, *numbers: str) -> Invoices:
    return Invoices(invoices=[Invoice(
        type="ACCREC", contact=Contact(contact_id=contact_id), invoice_number=n, date=dt.date(2026, 7, 1),
        status="AUTHORISED", line_items=[LineItem(description="x", quantity=1, unit_amount=Decimal("5"),
                                                  account_code="200")]) for n in numbers])


def test_replay_returns_same_ids_and_creates_nothing(xero: Xero) -> None:
    contact_id = xero.backend.add_contact(xero.tenant_id, "Idem Co")
    first = xero.accounting.create_invoices(xero.tenant_id, _batch(contact_id, "I-1", "I-2"),
                                            summarize_errors=False, idempotency_key="chunk-0001")
    again = xero.accounting.create_invoices(xero.tenant_id, _batch(contact_id, "I-1", "I-2"),
                                            summarize_errors=False, idempotency_key="chunk-0001")
    assert [i.invoice_id for i in again.invoices] == [i.invoice_id for i in first.invoices]
    assert [i.status_attribute_string for i in again.invoices] == ["OK", "OK"]  # not "must be unique"
    assert len(xero.backend.invoices(xero.tenant_id)) == 2
    puts = [r for r in xero.backend.requests if r.method == "PUT"]
    assert [(r.idempotency_key, r.replayed) for r in puts] == [("chunk-0001", False), ("chunk-0001", True)]


def test_replay_of_a_400_returns_the_same_400(xero: Xero) -> None:
    contact_id = xero.backend.add_contact(xero.tenant_id, "Idem Co")
    xero.backend.add_contact(xero.tenant_id, "Taken")
    bodies = []
    for _ in range(2):
        with pytest.raises(HTTPStatusException) as info:
            xero.accounting.create_invoices(xero.tenant_id, Invoices(invoices=[
                *_batch(contact_id, "J-1").invoices, Invoice(type="ACCREC", line_items=[])]), idempotency_key="k-400")
        bodies.append((info.value.status, info.value.body))
    assert bodies[0] == bodies[1] and bodies[0][0] == 400
    assert len(xero.backend.invoices(xero.tenant_id)) == 1


def test_same_key_different_body_is_400(xero: Xero) -> None:
    contact_id = xero.backend.add_contact(xero.tenant_id, "Idem Co")
    xero.accounting.create_invoices(xero.tenant_id, _batch(contact_id, "K-1"), idempotency_key="reused")
    with pytest.raises(HTTPStatusException) as info:
        xero.accounting.create_invoices(xero.tenant_id, _batch(contact_id, "K-2"), idempotency_key="reused")
    assert info.value.status == 400
    assert "already been used with a different request" in json.loads(info.value.body)["Detail"]
    assert [i["InvoiceNumber"] for i in xero.backend.invoices(xero.tenant_id)] == ["K-1"]


def test_key_longer_than_128_is_400(xero: Xero) -> None:
    contact_id = xero.backend.add_contact(xero.tenant_id, "Idem Co")
    xero.accounting.create_invoices(xero.tenant_id, _batch(contact_id, "L-0"), idempotency_key="k" * 128)
    with pytest.raises(HTTPStatusException) as info:
        xero.accounting.create_invoices(xero.tenant_id, _batch(contact_id, "L-1"), idempotency_key="k" * 129)
    assert info.value.status == 400
    assert len(xero.backend.invoices(xero.tenant_id)) == 1


def test_keys_are_forgotten_after_the_ttl(xero: Xero) -> None:
    contact_id = xero.backend.add_contact(xero.tenant_id, "Idem Co")
    xero.accounting.create_invoices(xero.tenant_id, _batch(contact_id, "M-1"), idempotency_key="short-lived")
    xero.backend.advance(xero.backend.limits.idempotency_ttl_s + 1)
    late = xero.accounting.create_invoices(xero.tenant_id, _batch(contact_id, "M-1"), summarize_errors=False,
                                           idempotency_key="short-lived")
    # Acted again: the number clash shows the key no longer protects the retry.
    assert late.invoices[0].validation_errors[0].message == "Invoice # must be unique."


def test_keys_are_per_tenant(xero: Xero) -> None:
    second = xero.backend.add_tenant("Second Org")
    consent = xero.backend.authorise(CLIENT_ID, [xero.tenant_id, second])
    xero.holder.save(refresh(xero.sandbox, xero.api_client, consent))
    for tenant in (xero.tenant_id, second):
        contact_id = xero.backend.add_contact(tenant, "Same Name")
        xero.accounting.create_invoices(tenant, _batch(contact_id, "N-1"), idempotency_key="shared-key")
    assert len(xero.backend.invoices(xero.tenant_id)) == 1 and len(xero.backend.invoices(second)) == 1
