"""Contract: every JSON body the sandbox produces validates against Xero's
own OpenAPI spec (components/schemas), made stricter rather than looser:
unknown properties are refused, ``x-is-msdate`` strings must be Microsoft
dates and uuids must be uuids. Only the spec's documented flaws are patched
(boolean properties with string defaults)."""

from __future__ import annotations

import copy
import datetime as dt
import json
import re
from decimal import Decimal
from pathlib import Path
from typing import Any, Callable

import pytest
import urllib3
from xero_python.accounting import (Allocation, Allocations, Contact, Contacts, CreditNote, CreditNotes,
                                    CurrencyCode, Invoice, Invoices, LineItem, LineItemTracking)
from xero_python.exceptions import HTTPStatusException

from .sandbox_helpers import Xero, raw_call

SPEC_DIR = Path(__file__).resolve().parents[2] / ".." / "shared" / "xero"

pytestmark = pytest.mark.skipif(
    not (SPEC_DIR / "xero_accounting.yaml").exists(),
    reason=f"Xero OpenAPI specs not found at {SPEC_DIR.resolve()} (CI always provides them)",
)

MS_DATE = r"^/Date\(-?\d+([+-]\d{4})?\)/$"
ENVELOPE = {"Id": str, "Status": str, "ProviderName": str, "DateTimeUTC": str}
# Left open: Xero's error Elements are whole documents (checked as such below);
# the identity spec's AccessToken omits "scope", which Xero does return.
LOOSE = {"Element", "AccessToken"}


def _harden(node: Any, definition: str | None = None, under_schemas: bool = False) -> Any:
    """Patch the known flaws, then tighten: no unknown properties on any
    named schema (components/schemas/*), MS dates where the spec says so."""
    if isinstance(node, dict):
        out = {k: _harden(v, k if under_schemas else None, k == "schemas") for k, v in node.items()}
        if out.get("type") == "boolean" and isinstance(out.get("default"), str):
            out["default"] = out["default"].lower() == "true"  # 23 such properties in the spec
        if out.get("x-is-msdate") or out.get("x-is-msdate-time"):
            out["pattern"] = MS_DATE
        if definition is not None and "properties" in out and definition not in LOOSE:
            out.setdefault("additionalProperties", False)
        return out
    if isinstance(node, list):
        return [_harden(v) for v in node]
    return node


@pytest.fixture(scope="module")
def validate() -> Callable[[str, Any], None]:
    return build_validator()


def build_validator() -> Callable[[str, Any], None]:
    """``check(schema_uri, instance)`` over both specs, hardened."""
    yaml = pytest.importorskip("yaml")
    jsonschema = pytest.importorskip("jsonschema")
    referencing = pytest.importorskip("referencing")
    from referencing.jsonschema import DRAFT7

    accounting = _harden(yaml.safe_load((SPEC_DIR / "xero_accounting.yaml").read_text()))
    identity = _harden(yaml.safe_load((SPEC_DIR / "xero-identity.yaml").read_text()))
    registry = referencing.Registry().with_resources([
        ("urn:xero:accounting", referencing.Resource(accounting, DRAFT7)),
        ("urn:xero:identity", referencing.Resource(identity, DRAFT7)),
    ])
    checker = jsonschema.FormatChecker(["uuid"])

    def check(schema_ref: str, instance: Any) -> None:
        schema = {"$ref": schema_ref}
        validator = jsonschema.Draft7Validator(schema, registry=registry, format_checker=checker)
        errors = sorted(validator.iter_errors(instance), key=lambda e: list(e.path))
        assert not errors, "\n".join(f"{list(e.path)}: {e.message}" for e in errors[:10])

    return check


def _body(call: Callable[[], Any]) -> tuple[int, dict[str, Any]]:
    """Drive the SDK but keep the raw body (success or HTTP error)."""
    try:
        response = call()
        return response.status, json.loads(response.data, parse_float=Decimal)
    except HTTPStatusException as exc:
        return exc.status, json.loads(exc.body, parse_float=Decimal)


def _check_accounting(validate: Callable[[str, Any], None], schema: str, body: dict[str, Any]) -> None:
    body = dict(body)
    for key, kind in ENVELOPE.items():
        assert isinstance(body.pop(key), kind)
    validate(f"urn:xero:accounting#/components/schemas/{schema}", body)


def test_all_resources_validate(xero: Xero, validate: Callable[[str, Any], None]) -> None:
    t, api = xero.tenant_id, xero.accounting
    raw = {"_preload_content": False}
    for call, schema in ((lambda: api.get_organisations(t, **raw), "Organisations"),
                         (lambda: api.get_accounts(t, **raw), "Accounts"),
                         (lambda: api.get_tax_rates(t, **raw), "TaxRates"),
                         (lambda: api.get_currencies(t, **raw), "Currencies")):
        status, body = _body(call)
        assert status == 200
        _check_accounting(validate, schema, body)

    # Contacts: create (OK and ERROR elements), list, one, paged, summarised error.
    status, body = _body(lambda: api.create_contacts(t, Contacts(contacts=[
        Contact(name="Ōtaki Ltd", email_address="a@example.com"), Contact(name="ōtaki ltd")]),
        summarize_errors=False, **raw))
    assert status == 200 and [c["StatusAttributeString"] for c in body["Contacts"]] == ["OK", "ERROR"]
    _check_accounting(validate, "Contacts", body)
    contact_id = body["Contacts"][0]["ContactID"]
    xero.backend.add_contact(t, "Merged Away", status="ARCHIVED", merged_to_contact_id=contact_id)
    for call in (lambda: api.get_contacts(t, include_archived=True, **raw),
                 lambda: api.get_contacts(t, page=1, page_size=1, **raw),
                 lambda: api.get_contact(t, contact_id, **raw),
                 lambda: api.update_contact(t, contact_id, Contacts(contacts=[Contact(name="Otaki Limited")]), **raw)):
        status, body = _body(call)
        assert status == 200
        _check_accounting(validate, "Contacts", body)
    status, body = _body(lambda: api.create_contacts(t, Contacts(contacts=[Contact(name="OTAKI LIMITED")]), **raw))
    assert status == 400
    validate("urn:xero:accounting#/components/schemas/Error", body)
    for element in body["Elements"]:
        validate("urn:xero:accounting#/components/schemas/Contact", element)

    # Invoices: good + every kind of bad element, both modes, GET variants.
    line = LineItem(description="Widget", quantity=Decimal("2"), unit_amount=Decimal("10.125"), account_code="200")
    good = Invoice(type="ACCREC", contact=Contact(contact_id=contact_id), date=dt.date(2026, 7, 1),
                   due_date=dt.date(2026, 7, 31), invoice_number="C-1", reference="ref", status="AUTHORISED",
                   line_items=[line], currency_code=CurrencyCode.AUD)
    bad = [
        Invoice(type="ACCREC", contact=Contact(contact_id=contact_id), invoice_number="C-2", currency_code=CurrencyCode.USD,
                line_items=[LineItem(description="x", quantity=1, unit_amount=1, account_code="999", tax_type="NOPE")]),
        Invoice(type="ACCREC", contact=Contact(contact_id=contact_id), invoice_number="C-1", line_items=[line]),
        Invoice(type="ACCREC", contact=Contact(name="No ID"), line_items=[]),
    ]
    status, body = _body(lambda: api.create_invoices(t, Invoices(invoices=[good, *bad]), summarize_errors=False,
                                                     unitdp=4, **raw))
    assert status == 200 and [i["StatusAttributeString"] for i in body["Invoices"]] == ["OK", "ERROR", "ERROR", "ERROR"]
    _check_accounting(validate, "Invoices", body)
    invoice_id = body["Invoices"][0]["InvoiceID"]
    status, body = _body(lambda: api.create_invoices(t, Invoices(invoices=[bad[0]]), **raw))
    assert status == 400
    validate("urn:xero:accounting#/components/schemas/Error", body)
    for element in body["Elements"]:
        validate("urn:xero:accounting#/components/schemas/Invoice", element)

    # Credit notes and allocations (success and refused).
    note = CreditNote(type="ACCRECCREDIT", contact=Contact(contact_id=contact_id), date=dt.date(2026, 7, 2),
                      status="AUTHORISED", line_items=[LineItem(description="Refund", quantity=1,
                                                                unit_amount=Decimal("5"), account_code="200")])
    status, body = _body(lambda: api.create_credit_notes(t, CreditNotes(credit_notes=[note]), summarize_errors=False, **raw))
    assert status == 200
    _check_accounting(validate, "CreditNotes", body)
    note_id = body["CreditNotes"][0]["CreditNoteID"]
    for amount, summarize in ((Decimal("2.50"), True), (Decimal("999"), False)):
        status, body = _body(lambda: api.create_credit_note_allocation(t, note_id, Allocations(allocations=[
            Allocation(amount=amount, invoice=Invoice(invoice_id=invoice_id), date=dt.date(2026, 7, 3))]),
            summarize_errors=summarize, **raw))
        assert status == 200
        _check_accounting(validate, "Allocations", body)

    for call, schema in ((lambda: api.get_invoices(t, invoice_numbers=["C-1"], **raw), "Invoices"),
                         (lambda: api.get_invoices(t, page=1, **raw), "Invoices"),
                         (lambda: api.get_invoice(t, invoice_id, **raw), "Invoices"),
                         (lambda: api.update_invoice(t, invoice_id, Invoices(invoices=[Invoice(reference="new")]),
                                                     **raw), "Invoices"),
                         (lambda: api.get_credit_notes(t, page=1, **raw), "CreditNotes"),
                         (lambda: api.get_credit_note(t, note_id, **raw), "CreditNotes")):
        status, body = _body(call)
        assert status == 200
        _check_accounting(validate, schema, body)


def test_tracking_bills_and_urls_validate(xero: Xero, validate: Callable[[str, Any], None]) -> None:
    """Tracking categories, tracked lines (saved and echoed), bills, Urls, and what the
    sandbox drops from a credit note or an over-long echo."""
    t, api, backend = xero.tenant_id, xero.accounting, xero.backend
    raw = {"_preload_content": False}
    status, body = _body(lambda: api.get_tracking_categories(t, **raw))
    assert status == 200 and body["TrackingCategories"] == []
    _check_accounting(validate, "TrackingCategories", body)
    region = backend.add_tracking_category(t, "Region", ["North", "South"])
    backend.add_tracking_category(t, "Old", ["Gone"], status="ARCHIVED")
    backend.set_tracking_option_status(t, region, "South", "ARCHIVED")
    for call in (lambda: api.get_tracking_categories(t, **raw),
                 lambda: api.get_tracking_categories(t, include_archived=True, **raw),
                 lambda: api.get_tracking_category(t, region, **raw)):
        status, body = _body(call)
        assert status == 200 and body["TrackingCategories"]
        _check_accounting(validate, "TrackingCategories", body)

    customer = backend.add_contact(t, "Tracked Ltd")
    supplier = backend.add_contact(t, "Supplier Ltd")
    backend.seed_bill(t, supplier, "T-1")
    tracked = LineItem(description="Tracked", quantity=1, unit_amount=Decimal("10"), account_code="200",
                       tracking=[LineItemTracking(name="region", option="north")])
    untracked_bad = LineItem(description="Bad", quantity=1, unit_amount=Decimal("1"), account_code="200",
                             tracking=[LineItemTracking(name="Region", option="South"), LineItemTracking(name="Nope")])
    invoices = [Invoice(type="ACCREC", contact=Contact(contact_id=customer), invoice_number="T-1", status="AUTHORISED",
                        date=dt.date(2026, 7, 1), url="https://astute.example.com/i/1", line_items=[tracked]),
                Invoice(type="ACCREC", contact=Contact(contact_id=customer), invoice_number="T-2",
                        url="not a url", line_items=[untracked_bad])]
    status, body = _body(lambda: api.create_invoices(t, Invoices(invoices=invoices), summarize_errors=False, **raw))
    assert [i["StatusAttributeString"] for i in body["Invoices"]] == ["OK", "ERROR"]
    assert body["Invoices"][0]["LineItems"][0]["Tracking"][0]["Name"] == "Region"
    _check_accounting(validate, "Invoices", body)
    status, body = _body(lambda: api.create_invoices(t, Invoices(invoices=invoices[1:]), **raw))
    assert status == 400
    validate("urn:xero:accounting#/components/schemas/Error", body)
    for element in body["Elements"]:
        validate("urn:xero:accounting#/components/schemas/Invoice", element)
    status, body = _body(lambda: api.get_invoices(t, invoice_numbers=["T-1"], **raw))
    assert sorted(i["Type"] for i in body["Invoices"]) == ["ACCPAY", "ACCREC"]
    _check_accounting(validate, "Invoices", body)

    # A raw client: an over-long tracking name echoed safely, a Url on a credit note dropped.
    line = {"Description": "x", "Quantity": 1, "UnitAmount": 1, "AccountCode": "200",
            "Tracking": [{"Name": "R" * 101, "Option": "North", "TrackingCategoryID": "not-a-uuid"}]}
    status, body = raw_call(xero, "PUT", "/api.xro/2.0/Invoices?summarizeErrors=false", {"Invoices": [{
        "Type": "ACCREC", "Contact": {"ContactID": customer}, "LineItems": [line]}]})
    assert body["Invoices"][0]["StatusAttributeString"] == "ERROR"
    _check_accounting(validate, "Invoices", body)
    for lines in ([line], [{**line, "Tracking": [{"Name": "Region", "Option": "North"}]}]):
        status, body = raw_call(xero, "PUT", "/api.xro/2.0/CreditNotes?summarizeErrors=false", {"CreditNotes": [{
            "Type": "ACCRECCREDIT", "Contact": {"ContactID": customer}, "Url": "https://astute.example.com/c/1",
            "LineItems": lines}]})
        assert status == 200
        _check_accounting(validate, "CreditNotes", body)
    assert body["CreditNotes"][0]["StatusAttributeString"] == "OK"
    status, body = raw_call(xero, "PUT", "/api.xro/2.0/Contacts?summarizeErrors=false", {"Contacts": [{"Name": "n" * 256}]})
    _check_accounting(validate, "Contacts", body)


def test_readback_shapes_validate(xero: Xero, validate: Callable[[str, Any], None]) -> None:
    """What the pipeline reads back after an export: invoices with payments and allocations, paged
    (with ``pagination``), summaryOnly, If-Modified-Since, createdByMyApp, VOIDED and DELETED ones,
    credit notes, payments (listed, paged, one, deleted), a merged contact, a refused order."""
    t, api, backend = xero.tenant_id, xero.accounting, xero.backend
    raw = {"_preload_content": False}
    customer = backend.add_contact(t, "Readback Ltd")
    duplicate = backend.add_contact(t, "Readback Ltd (dup)")
    line = LineItem(description="Work", quantity=1, unit_amount=Decimal("100"), account_code="200")
    created = api.create_invoices(t, Invoices(invoices=[
        Invoice(type="ACCREC", contact=Contact(contact_id=customer), invoice_number=f"RB-{n}", status=status,
                date=dt.date(2026, 7, 1), due_date=dt.date(2026, 7, 31), line_items=[line])
        for n, status in enumerate(("AUTHORISED", "AUTHORISED", "AUTHORISED", "DRAFT", "AUTHORISED"))]),
        summarize_errors=False).invoices
    paid, part, voided, deleted, edited = (i.invoice_id for i in created)
    note_id = api.create_credit_notes(t, CreditNotes(credit_notes=[CreditNote(
        type="ACCRECCREDIT", contact=Contact(contact_id=customer), status="AUTHORISED", date=dt.date(2026, 7, 2),
        line_items=[LineItem(description="Refund", quantity=1, unit_amount=Decimal("10"), account_code="200")])]),
        summarize_errors=False).credit_notes[0].credit_note_id
    backend.seed_invoice(t, duplicate, "HAND-1", amount="5")
    since = dt.datetime.fromtimestamp(backend.clock(), dt.timezone.utc)
    backend.advance(1)
    backend.record_payment(t, paid, "110", dt.date(2026, 7, 5), reference="EFT")
    removed = backend.record_payment(t, part, "20")
    backend.record_payment(t, part, "30")
    backend.delete_payment(t, removed)
    backend.allocate_credit_note(t, note_id, part, "11")
    backend.void_document(t, "invoice", voided)
    backend.delete_document(t, "invoice", deleted)
    backend.edit_document_lines(t, "invoice", edited, [{"Description": "More", "Quantity": 2, "UnitAmount": "75.5",
                                                        "AccountCode": "200"}])
    backend.merge_contacts(t, duplicate, customer)

    for call, schema in (
            (lambda: api.get_invoices(t, page=1, page_size=2, **raw), "Invoices"),
            (lambda: api.get_invoices(t, page=1, page_size=5000, summary_only=True, **raw), "Invoices"),
            (lambda: api.get_invoices(t, if_modified_since=since, created_by_my_app=True, statuses=["PAID", "AUTHORISED",
                                      "VOIDED", "DELETED"], order="UpdatedDateUTC DESC", **raw), "Invoices"),
            (lambda: api.get_invoice(t, part, **raw), "Invoices"),
            (lambda: api.get_credit_notes(t, page=1, page_size=1000, if_modified_since=since, **raw), "CreditNotes"),
            (lambda: api.get_payments(t, **raw), "Payments"),
            (lambda: api.get_payments(t, page=2, page_size=1, if_modified_since=since, **raw), "Payments"),
            (lambda: api.get_payment(t, removed, **raw), "Payments"),
            (lambda: api.get_contacts(t, include_archived=True, if_modified_since=since, **raw), "Contacts")):
        status, body = _body(call)
        assert status == 200
        _check_accounting(validate, schema, body)
    status, body = _body(lambda: api.get_invoices(t, page=1, page_size=2, **raw))
    assert body["pagination"] == {"page": 1, "pageSize": 2, "pageCount": 3, "itemCount": 6}
    status, body = _body(lambda: api.get_invoice(t, paid, **raw))
    assert body["Invoices"][0]["Payments"][0]["Reference"] == "EFT" and "FullyPaidOnDate" in body["Invoices"][0]
    status, body = _body(lambda: api.get_invoice(t, part, **raw))
    assert body["Invoices"][0]["CreditNotes"][0]["AppliedAmount"] == Decimal("11.00")
    status, body = _body(lambda: api.get_payment(t, removed, **raw))
    assert body["Payments"][0]["Status"] == "DELETED"
    status, body = raw_call(xero, "GET", "/api.xro/2.0/Invoices?summaryOnly=true&page=1")
    assert status == 200 and "LineItems" not in body["Invoices"][0]
    _check_accounting(validate, "Invoices", body)
    status, body = raw_call(xero, "GET", "/api.xro/2.0/Payments?order=Nope")
    assert status == 400
    validate("urn:xero:accounting#/components/schemas/Error", body)


def test_connections_and_token_validate(xero: Xero, validate: Callable[[str, Any], None]) -> None:
    status, body = _body(lambda: xero.identity.get_connections(_preload_content=False))
    assert status == 200 and len(body) == 1
    validate("urn:xero:identity#/components/schemas/Connection", body[0])
    assert re.match(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{7}$", body[0]["createdDateUtc"])

    refresh_token = xero.backend.authorise("sandbox-client", [xero.tenant_id])
    http = urllib3.PoolManager(retries=False)
    response = http.request("POST", xero.sandbox.url + "/connect/token", encode_multipart=False, fields={
        "grant_type": "refresh_token", "refresh_token": refresh_token,
        "client_id": "sandbox-client", "client_secret": "sandbox-secret-not-real"})
    token = json.loads(response.data)
    assert set(token) == {"id_token", "access_token", "expires_in", "token_type", "refresh_token", "scope"}
    validate("urn:xero:identity#/components/schemas/AccessToken", token)


def test_spec_patch_is_narrow() -> None:
    """Only the 23 documented boolean defaults are changed by the patch."""
    yaml = pytest.importorskip("yaml")
    spec = yaml.safe_load((SPEC_DIR / "xero_accounting.yaml").read_text())
    flawed = []

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            if node.get("type") == "boolean" and isinstance(node.get("default"), str):
                flawed.append(node)
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(copy.deepcopy(spec))
    assert len(flawed) == 23
