"""Invoices: per-element validation, both error modes, Xero's arithmetic."""

from __future__ import annotations

import datetime as dt
import json
from decimal import Decimal

import pytest
import urllib3
from xero_python.accounting import Contact, CurrencyCode, Invoice, Invoices, LineAmountTypes, LineItem
from xero_python.exceptions import HTTPStatusException

from .sandbox_helpers import Xero


def _invoice(contact_id: str, number: str | None = None, lines: list[LineItem] | None = None, **kw) -> Invoice:
    kw.setdefault("date", dt.date(2026, 7, 1))
    kw.setdefault("due_date", dt.date(2026, 7, 31))
    kw.setdefault("status", "AUTHORISED")
    return Invoice(type="ACCREC", contact=Contact(contact_id=contact_id), invoice_number=number,
                   line_items=lines if lines is not None else [
                       LineItem(description="Consulting", quantity=Decimal("1"), unit_amount=Decimal("100"),
                                account_code="200")], **kw)


@pytest.fixture
def customer(xero: Xero) -> str:
    return xero.backend.add_contact(xero.tenant_id, "Customer Pty Ltd")


def test_unsummarised_mixed_batch_saves_good_and_explains_bad(xero: Xero, customer: str) -> None:
    archived = xero.backend.add_contact(xero.tenant_id, "Gone Pty Ltd", status="ARCHIVED")
    batch = [
        _invoice(customer, "INV-100"),
        _invoice(customer, "INV-101", currency_code=CurrencyCode.USD),
        _invoice(customer, "INV-102", lines=[LineItem(description="x", quantity=1, unit_amount=1, account_code="999")]),
        _invoice(customer, "INV-103", lines=[LineItem(description="x", quantity=1, unit_amount=1, account_code="200",
                                                      tax_type="NOSUCHTAX")]),
        _invoice(archived, "INV-104"),
        _invoice(customer, "INV-100"),
        _invoice(customer, "INV-106", lines=[]),
        _invoice(customer, "INV-107", date=dt.date(2026, 7, 10), due_date=dt.date(2026, 7, 1)),
        _invoice(customer, "INV-108", lines=[LineItem(description="d" * 4001, quantity=1, unit_amount=1,
                                                      account_code="200")]),
        _invoice(customer, "INV-110"),
    ]
    result = xero.accounting.create_invoices(xero.tenant_id, Invoices(invoices=batch), summarize_errors=False)
    got = [(i.invoice_number, i.status_attribute_string, [e.message for e in i.validation_errors or []])
           for i in result.invoices]
    assert got[0] == ("INV-100", "OK", [])
    assert got[1][1:] == ("ERROR", ["Organisation is not subscribed to currency USD"])
    assert got[2][1:] == ("ERROR", ["Account code '999' is not a valid code for this document."])
    assert got[3][2] == ["The TaxType code 'NOSUCHTAX' does not exist or cannot be used with this type of transaction."]
    assert got[4][2] == ["Unable to assign an Archived contact."]
    assert got[5][2] == ["Invoice # must be unique."]
    assert got[6][2] == ["Invoice must contain at least one line item."]
    assert got[7][2] == ["Due Date must not be earlier than the Date."]
    assert got[8][2] == ["Description must be no more than 4000 characters long."]
    assert got[9] == ("INV-110", "OK", [])
    assert all(i.has_errors for i in result.invoices[1:9])
    assert result.invoices[1].invoice_id == "00000000-0000-0000-0000-000000000000"
    stored = {i["InvoiceNumber"] for i in xero.backend.invoices(xero.tenant_id)}
    assert stored == {"INV-100", "INV-110"}


def test_summarised_mode_400_but_good_elements_are_created(xero: Xero, customer: str) -> None:
    batch = [_invoice(customer, "S-1"), _invoice(customer, "S-2", currency_code=CurrencyCode.USD), _invoice(customer, "S-3")]
    with pytest.raises(HTTPStatusException) as info:
        xero.accounting.create_invoices(xero.tenant_id, Invoices(invoices=batch))
    body = json.loads(info.value.body)
    assert info.value.status == 400
    assert (body["ErrorNumber"], body["Type"], body["Message"]) == (
        10, "ValidationException", "A validation exception occurred")
    assert [e["ValidationErrors"][0]["Message"] for e in body["Elements"]] == [
        "Organisation is not subscribed to currency USD"]
    assert sorted(i["InvoiceNumber"] for i in xero.backend.invoices(xero.tenant_id)) == ["S-1", "S-3"]
    # The product's reconciliation path: look the numbers up.
    found = xero.accounting.get_invoices(xero.tenant_id, invoice_numbers=["S-1", "S-2", "S-3"]).invoices
    assert sorted(i.invoice_number for i in found) == ["S-1", "S-3"]


def test_unit_amount_rounding_depends_on_unitdp(xero: Xero, customer: str) -> None:
    lines = [LineItem(description="Precise", quantity=Decimal("3"), unit_amount=Decimal("10.125"), account_code="200")]
    default = xero.accounting.create_invoices(
        xero.tenant_id, Invoices(invoices=[_invoice(customer, "U-2", lines=lines)]), summarize_errors=False).invoices[0]
    four = xero.accounting.create_invoices(
        xero.tenant_id, Invoices(invoices=[_invoice(customer, "U-4", lines=lines)]), summarize_errors=False,
        unitdp=4).invoices[0]
    assert (default.line_items[0].unit_amount, default.line_items[0].line_amount) == (Decimal("10.13"), Decimal("30.39"))
    assert (four.line_items[0].unit_amount, four.line_items[0].line_amount) == (Decimal("10.125"), Decimal("30.38"))
    assert (default.sub_total, default.total_tax, default.total) == (Decimal("30.39"), Decimal("3.04"), Decimal("33.43"))
    assert (four.sub_total, four.total_tax, four.total) == (Decimal("30.38"), Decimal("3.04"), Decimal("33.42"))
    assert default.amount_due == default.total and default.amount_paid == 0


def test_tax_is_rounded_per_line_and_inclusive_is_backed_out(xero: Xero, customer: str) -> None:
    small = [LineItem(description=f"l{i}", quantity=1, unit_amount=Decimal("0.05"), account_code="200") for i in range(2)]
    exclusive = xero.accounting.create_invoices(xero.tenant_id, Invoices(invoices=[
        _invoice(customer, "T-1", lines=small)]), summarize_errors=False).invoices[0]
    assert [li.tax_amount for li in exclusive.line_items] == [Decimal("0.01"), Decimal("0.01")]
    assert exclusive.total_tax == Decimal("0.02") and exclusive.total == Decimal("0.12")

    inclusive = xero.accounting.create_invoices(xero.tenant_id, Invoices(invoices=[_invoice(
        customer, "T-2", line_amount_types=LineAmountTypes.INCLUSIVE,
        lines=[LineItem(description="incl", quantity=1, unit_amount=Decimal("99.99"), account_code="200")])]),
        summarize_errors=False).invoices[0]
    assert (inclusive.sub_total, inclusive.total_tax, inclusive.total) == (Decimal("90.90"), Decimal("9.09"), Decimal("99.99"))

    no_tax = xero.accounting.create_invoices(xero.tenant_id, Invoices(invoices=[_invoice(
        customer, "T-3", line_amount_types=LineAmountTypes.NOTAX)]), summarize_errors=False).invoices[0]
    assert (no_tax.total_tax, no_tax.total) == (Decimal("0.00"), Decimal("100.00"))

    defaulted = xero.accounting.create_invoices(xero.tenant_id, Invoices(invoices=[_invoice(
        customer, "T-4", lines=[LineItem(description="interest", quantity=1, unit_amount=Decimal("50"),
                                         account_code="270")])]), summarize_errors=False).invoices[0]
    assert defaulted.line_items[0].tax_type == "EXEMPTOUTPUT" and defaulted.total_tax == Decimal("0.00")


def test_defaults_and_wire_format(xero: Xero, customer: str) -> None:
    created = xero.accounting.create_invoices(xero.tenant_id, Invoices(invoices=[Invoice(
        type="ACCREC", contact=Contact(contact_id=customer), date=dt.date(2026, 7, 1),
        line_items=[LineItem(description="x", quantity=1, unit_amount=Decimal("10"), account_code="200")])]),
        summarize_errors=False).invoices[0]
    assert created.status == "DRAFT" and created.currency_code == CurrencyCode.AUD
    assert created.invoice_number == "INV-0001" and created.date == dt.date(2026, 7, 1)
    raw = xero.backend.invoices(xero.tenant_id)[0]
    assert raw["Date"] == "/Date(1782864000000+0000)/"
    assert raw["UpdatedDateUTC"].startswith("/Date(") and raw["HasErrors"] is False


def test_hand_written_client_may_send_iso_dates(xero: Xero, customer: str) -> None:
    body = {"Invoices": [{"Type": "ACCREC", "Contact": {"ContactID": customer}, "Date": "2026-07-01",
                          "DueDate": "/Date(1785456000000+0000)/", "InvoiceNumber": "ISO-1",
                          "LineItems": [{"Description": "x", "Quantity": 1, "UnitAmount": 12.5, "AccountCode": "200"}]}]}
    response = urllib3.PoolManager(retries=False).request(
        "PUT", xero.sandbox.url + "/api.xro/2.0/Invoices?summarizeErrors=false", body=json.dumps(body),
        headers={"Authorization": "Bearer " + xero.holder.token["access_token"], "xero-tenant-id": xero.tenant_id,
                 "Content-Type": "application/json", "Accept": "application/json"})
    assert response.status == 200
    invoice = json.loads(response.data)["Invoices"][0]
    assert invoice["StatusAttributeString"] == "OK"
    assert (invoice["Date"], invoice["DueDate"]) == ("/Date(1782864000000+0000)/", "/Date(1785456000000+0000)/")
    assert invoice["Total"] == 13.75
    assert response.headers["Content-Length"] == str(len(response.data))


def test_overlong_invoice_number_from_a_raw_client(xero: Xero, customer: str) -> None:
    """xero-python refuses > 255 itself; a raw client gets Xero's element error."""
    body = {"Invoices": [{"Type": "ACCREC", "Contact": {"ContactID": customer}, "InvoiceNumber": "X" * 256,
                          "LineItems": [{"Description": "x", "Quantity": 1, "UnitAmount": 1, "AccountCode": "200"}]}]}
    response = urllib3.PoolManager(retries=False).request(
        "PUT", xero.sandbox.url + "/api.xro/2.0/Invoices?summarizeErrors=false", body=json.dumps(body),
        headers={"Authorization": "Bearer " + xero.holder.token["access_token"], "xero-tenant-id": xero.tenant_id})
    element = json.loads(response.data)["Invoices"][0]
    assert element["ValidationErrors"] == [{"Message": "Invoice Number must be no more than 255 characters long."}]
    assert "InvoiceNumber" not in element  # echoing it would make xero-python raise


def test_post_updates_and_status_transitions(xero: Xero, customer: str) -> None:
    draft = xero.accounting.create_invoices(xero.tenant_id, Invoices(invoices=[
        _invoice(customer, "P-1", status="DRAFT")])).invoices[0]
    approved = xero.accounting.update_invoice(xero.tenant_id, draft.invoice_id, Invoices(invoices=[
        Invoice(status="AUTHORISED", reference="PO-9")])).invoices[0]
    assert (approved.status, approved.reference, approved.total) == ("AUTHORISED", "PO-9", Decimal("110.00"))
    # POST with the number of an existing invoice updates it rather than duplicating.
    xero.accounting.update_or_create_invoices(xero.tenant_id, Invoices(invoices=[
        Invoice(type="ACCREC", invoice_number="P-1", reference="PO-10")]))
    assert [i["Reference"] for i in xero.backend.invoices(xero.tenant_id)] == ["PO-10"]
    back_to_draft = xero.accounting.update_or_create_invoices(xero.tenant_id, Invoices(invoices=[
        Invoice(invoice_id=draft.invoice_id, status="DRAFT")]), summarize_errors=False).invoices[0]
    assert back_to_draft.validation_errors[0].message == "Invoice not of valid status for modification"
    voided = xero.accounting.update_invoice(xero.tenant_id, draft.invoice_id, Invoices(invoices=[
        Invoice(status="VOIDED")])).invoices[0]
    assert voided.status == "VOIDED"
    # PUT never updates.
    result = xero.accounting.create_invoices(xero.tenant_id, Invoices(invoices=[
        Invoice(invoice_id=draft.invoice_id, type="ACCREC")]), summarize_errors=False).invoices[0]
    assert result.status_attribute_string == "ERROR"


def test_get_filters(xero: Xero, customer: str) -> None:
    other = xero.backend.add_contact(xero.tenant_id, "Other Customer")
    xero.accounting.create_invoices(xero.tenant_id, Invoices(invoices=[
        _invoice(customer, "F-1"), _invoice(customer, "F-2", status="DRAFT"), _invoice(other, "F-3")]))
    api, t = xero.accounting, xero.tenant_id
    assert sorted(i.invoice_number for i in api.get_invoices(t, invoice_numbers=["f-1", "F-3"]).invoices) == ["F-1", "F-3"]
    assert [i.invoice_number for i in api.get_invoices(t, statuses=["DRAFT"]).invoices] == ["F-2"]
    assert [i.invoice_number for i in api.get_invoices(t, contact_i_ds=[other]).invoices] == ["F-3"]
    assert [i.invoice_number for i in api.get_invoices(
        t, where='Status=="AUTHORISED" AND Contact.ContactID==Guid("%s")' % customer).invoices] == ["F-1"]
    one = api.get_invoices(t, invoice_numbers=["F-1"]).invoices[0]
    assert api.get_invoice(t, one.invoice_id).invoices[0].invoice_number == "F-1"
    paged = api.get_invoices(t, page=1, page_size=2)
    assert len(paged.invoices) == 2 and paged.pagination.item_count == 3


def test_seed_invoice_makes_a_number_clash(xero: Xero, customer: str) -> None:
    invoice_id = xero.backend.seed_invoice(xero.tenant_id, contact_id=customer, invoice_number="HAND-1")
    seeded = xero.accounting.get_invoice(xero.tenant_id, invoice_id).invoices[0]
    assert (seeded.status, seeded.total, seeded.line_items[0].account_code) == ("AUTHORISED", Decimal("110.00"), "200")
    clash = xero.accounting.create_invoices(xero.tenant_id, Invoices(invoices=[_invoice(customer, "hand-1")]),
                                            summarize_errors=False).invoices[0]
    assert clash.validation_errors[0].message == "Invoice # must be unique."
    with pytest.raises(ValueError, match="must be unique"):
        xero.backend.seed_invoice(xero.tenant_id, contact_id=customer, invoice_number="HAND-1")


def test_bills_share_numbers_with_sales_invoices(xero: Xero, customer: str) -> None:
    """Xero keeps ACCREC numbers unique, not ACCPAY ones; InvoiceNumbers= returns every type."""
    supplier = xero.backend.add_contact(xero.tenant_id, "Supplier Pty Ltd")
    bill_id = xero.backend.seed_bill(xero.tenant_id, supplier, "SHARED-1", amount="50.00", date=dt.date(2026, 6, 30))
    second_bill = xero.backend.seed_bill(xero.tenant_id, supplier, "SHARED-1")
    bill = xero.accounting.get_invoice(xero.tenant_id, bill_id).invoices[0]
    assert (bill.type, bill.status, bill.date, bill.line_items[0].account_code, bill.total) == (
        "ACCPAY", "AUTHORISED", dt.date(2026, 6, 30), "310", Decimal("50.00"))
    sale = xero.accounting.create_invoices(xero.tenant_id, Invoices(invoices=[_invoice(customer, "shared-1")]),
                                           summarize_errors=False).invoices[0]
    assert sale.status_attribute_string == "OK"  # the bills' number does not block it
    found = xero.accounting.get_invoices(xero.tenant_id, invoice_numbers=["SHARED-1"]).invoices
    assert sorted((i.type, i.invoice_id) for i in found) == sorted(
        [("ACCPAY", bill_id), ("ACCPAY", second_bill), ("ACCREC", sale.invoice_id)])
    clash = xero.accounting.create_invoices(xero.tenant_id, Invoices(invoices=[_invoice(customer, "SHARED-1")]),
                                            summarize_errors=False).invoices[0]
    assert clash.validation_errors[0].message == "Invoice # must be unique."
    assert xero.backend.contacts(xero.tenant_id)[1]["IsSupplier"] is True


def test_a_line_without_tax_type_gets_the_accounts_default(xero: Xero, customer: str) -> None:
    lines = [LineItem(description="Sales", quantity=1, unit_amount=Decimal("100"), account_code="200"),
             LineItem(description="Interest", quantity=1, unit_amount=Decimal("100"), account_code="270")]
    for lat, tax in ((LineAmountTypes.EXCLUSIVE, [Decimal("10.00"), Decimal("0.00")]),
                     (LineAmountTypes.NOTAX, [Decimal("0.00"), Decimal("0.00")])):
        saved = xero.accounting.create_invoices(xero.tenant_id, Invoices(invoices=[_invoice(
            customer, line_amount_types=lat, lines=lines)]), summarize_errors=False).invoices[0]
        assert saved.status_attribute_string == "OK"
        assert [(li.tax_type, li.tax_amount) for li in saved.line_items] == [("OUTPUT", tax[0]), ("EXEMPTOUTPUT", tax[1])]
        stored = xero.accounting.get_invoice(xero.tenant_id, saved.invoice_id).invoices[0]
        assert [li.tax_type for li in stored.line_items] == ["OUTPUT", "EXEMPTOUTPUT"]


def test_url_is_kept_verbatim_and_must_be_an_absolute_http_url(xero: Xero, customer: str) -> None:
    good = ["https://astute.example.com/invoices/42?tab=lines&x=%20y#top", "http://localhost:8080/i/1",
            "https://[2001:db8::1]/i/1", "https://example.com/" + "a" * (2000 - len("https://example.com/"))]
    saved = xero.accounting.create_invoices(xero.tenant_id, Invoices(invoices=[
        _invoice(customer, f"URL-{i}", url=url) for i, url in enumerate(good)]), summarize_errors=False).invoices
    assert [(i.status_attribute_string, i.url) for i in saved] == [("OK", url) for url in good]
    assert [xero.accounting.get_invoice(xero.tenant_id, i.invoice_id).invoices[0].url for i in saved] == good

    bad = ["/invoices/42", "astute.example.com/invoices/42", "ftp://example.com/i", "https://", "https://exa mple.com",
           "https://example.com/a b", "mailto:finance@example.com", "https://example.com:99999/", "https://-bad-.com/",
           "javascript:alert(1)"]
    refused = xero.accounting.create_invoices(xero.tenant_id, Invoices(invoices=[
        _invoice(customer, f"BAD-{i}", url=url) for i, url in enumerate(bad)]), summarize_errors=False).invoices
    assert [[e.message for e in i.validation_errors] for i in refused] == [["The Url is not a valid URL."]] * len(bad)
    too_long = xero.accounting.create_invoices(xero.tenant_id, Invoices(invoices=[_invoice(
        customer, "LONG", url=good[-1] + "a")]), summarize_errors=False).invoices[0]
    assert [e.message for e in too_long.validation_errors] == ["Url must be no more than 2000 characters long."]
    assert len(xero.backend.invoices(xero.tenant_id)) == len(good)


def test_reference_longer_than_255_is_an_element_error(xero: Xero, customer: str) -> None:
    ok, refused = xero.accounting.create_invoices(xero.tenant_id, Invoices(invoices=[
        _invoice(customer, "REF-1", reference="r" * 255), _invoice(customer, "REF-2", reference="r" * 256)]),
        summarize_errors=False).invoices
    assert ok.status_attribute_string == "OK" and ok.reference == "r" * 255
    assert [e.message for e in refused.validation_errors] == ["Reference must be no more than 255 characters long."]


def test_a_renumbered_invoice_frees_its_old_number_and_takes_the_new_one(xero: Xero, customer: str) -> None:
    """The number index follows an update (POST by InvoiceID): the old number is free, the new one taken."""
    api, t = xero.accounting, xero.tenant_id
    (first,) = api.create_invoices(t, Invoices(invoices=[_invoice(customer, "R-1")])).invoices
    api.update_or_create_invoices(t, Invoices(invoices=[Invoice(invoice_id=first.invoice_id, invoice_number="R-2")]))
    again, clash = api.create_invoices(t, Invoices(invoices=[_invoice(customer, "r-1"), _invoice(customer, "r-2")]),
                                       summarize_errors=False).invoices
    assert again.status_attribute_string == "OK"
    assert [e.message for e in clash.validation_errors] == ["Invoice # must be unique."]
