"""Tracking categories: the settings endpoint and tracking on invoice and credit-note lines."""

from __future__ import annotations

import datetime as dt
import json
from decimal import Decimal

import pytest
from xero_python.accounting import (AccountingApi, Contact, CreditNote, CreditNotes, Invoice, Invoices, LineItem,
                                    LineItemTracking)
from xero_python.exceptions import HTTPStatusException

from xero_sandbox import XeroSandbox

from .sandbox_helpers import CLIENT_ID, CLIENT_SECRET, TokenHolder, Xero, make_api_client, raw_call, refresh


@pytest.fixture
def region(xero: Xero) -> str:
    return xero.backend.add_tracking_category(xero.tenant_id, "Region", ["North", "South", "Ōtaki"])


@pytest.fixture
def customer(xero: Xero) -> str:
    return xero.backend.add_contact(xero.tenant_id, "Tracked Customer")


def _line(*tracking: LineItemTracking, **kw) -> LineItem:
    return LineItem(description="Tracked", quantity=1, unit_amount=Decimal("100"), account_code="200",
                    tracking=list(tracking), **kw)


def _invoice(customer: str, *lines: LineItem) -> Invoice:
    return Invoice(type="ACCREC", contact=Contact(contact_id=customer), date=dt.date(2026, 7, 1),
                   status="AUTHORISED", line_items=list(lines))


def _errors(xero: Xero, customer: str, *lines: LineItem) -> list[str]:
    element = xero.accounting.create_invoices(xero.tenant_id, Invoices(invoices=[_invoice(customer, *lines)]),
                                              summarize_errors=False).invoices[0]
    assert element.status_attribute_string == "ERROR"
    return [e.message for e in element.validation_errors]


def test_a_new_organisation_has_no_tracking_categories(xero: Xero) -> None:
    assert xero.accounting.get_tracking_categories(xero.tenant_id).tracking_categories == []
    assert xero.backend.tracking_categories(xero.tenant_id) == []


def test_get_tracking_categories_hides_archived_unless_asked(xero: Xero, region: str) -> None:
    backend, t = xero.backend, xero.tenant_id
    old = backend.add_tracking_category(t, "Cost Centre", ["Legacy"], status="ARCHIVED")
    archived_option = backend.set_tracking_option_status(t, region, "south", "ARCHIVED")

    listed = xero.accounting.get_tracking_categories(t).tracking_categories
    assert [(c.tracking_category_id, c.name, c.status) for c in listed] == [(region, "Region", "ACTIVE")]
    assert [(o.name, o.status) for o in listed[0].options] == [("North", "ACTIVE"), ("Ōtaki", "ACTIVE")]
    assert all(o.tracking_option_id for o in listed[0].options)

    everything = xero.accounting.get_tracking_categories(t, include_archived=True).tracking_categories
    assert [(c.name, c.status) for c in everything] == [("Cost Centre", "ARCHIVED"), ("Region", "ACTIVE")]
    assert [(o.tracking_option_id, o.status) for o in everything[1].options if o.name == "South"] == [
        (archived_option, "ARCHIVED")]
    assert [c.name for c in xero.accounting.get_tracking_category(t, old).tracking_categories] == ["Cost Centre"]
    assert [c.name for c in xero.accounting.get_tracking_categories(
        t, where='Name=="Region"').tracking_categories] == ["Region"]


def test_tracking_categories_need_the_settings_scope(sandbox: XeroSandbox) -> None:
    sandbox.backend.reset()
    backend = sandbox.backend
    backend.register_app(CLIENT_ID, CLIENT_SECRET)
    tenant_id = backend.add_tenant("No Settings")
    backend.add_tracking_category(tenant_id, "Region", ["North"])
    holder = TokenHolder()
    api_client = make_api_client(CLIENT_ID, CLIENT_SECRET, holder)
    for scope, allowed in (("accounting.transactions accounting.contacts", False), ("accounting.settings.read", True)):
        holder.save(refresh(sandbox, api_client, backend.authorise(CLIENT_ID, [tenant_id], scope=scope)))
        accounting = AccountingApi(api_client, base_url=sandbox.url + "/api.xro/2.0")
        if allowed:
            assert [c.name for c in accounting.get_tracking_categories(tenant_id).tracking_categories] == ["Region"]
        else:
            with pytest.raises(HTTPStatusException) as info:
                accounting.get_tracking_categories(tenant_id)
            assert info.value.status == 403
            assert json.loads(info.value.body)["Detail"] == "AuthorizationUnsuccessful"


def test_add_tracking_category_keeps_xeros_limits(xero: Xero, region: str) -> None:
    backend, t = xero.backend, xero.tenant_id
    with pytest.raises(ValueError, match="already exists"):
        backend.add_tracking_category(t, "REGION", ["East"])
    backend.add_tracking_category(t, "Department", ["Sales"])
    with pytest.raises(ValueError, match="at most 2 ACTIVE"):
        backend.add_tracking_category(t, "Project", ["Apollo"])
    backend.add_tracking_category(t, "Old 1", [], status="ARCHIVED")
    backend.add_tracking_category(t, "Old 2", [], status="ARCHIVED")
    with pytest.raises(ValueError, match="at most 4"):
        backend.add_tracking_category(t, "Old 3", [], status="ARCHIVED")
    with pytest.raises(ValueError, match="100 characters"):
        backend.add_tracking_category(xero.backend.add_tenant("Other"), "R" * 101, ["North"])


def test_tracking_by_name_is_saved_with_xeros_ids_and_spelling(xero: Xero, region: str, customer: str) -> None:
    department = xero.backend.add_tracking_category(xero.tenant_id, "Department", ["Sales", "Ops"])
    saved = xero.accounting.create_invoices(xero.tenant_id, Invoices(invoices=[_invoice(
        customer,
        _line(LineItemTracking(name="region", option="NORTH"), LineItemTracking(name="DEPARTMENT", option="ops")),
        _line(),
    )]), summarize_errors=False).invoices[0]
    assert saved.status_attribute_string == "OK"
    categories = {c["TrackingCategoryID"]: c for c in xero.backend.tracking_categories(xero.tenant_id)}
    option_id = {(c["Name"], o["Name"]): o["TrackingOptionID"] for c in categories.values() for o in c["Options"]}
    expected = [(region, option_id[("Region", "North")], "Region", "North"),
                (department, option_id[("Department", "Ops")], "Department", "Ops")]
    assert [(t.tracking_category_id, t.tracking_option_id, t.name, t.option)
            for t in saved.line_items[0].tracking] == expected
    assert saved.line_items[1].tracking == []
    # Read back as stored: every key Xero renders, the caller's casing gone.
    raw = xero.backend.invoices(xero.tenant_id)[0]["LineItems"][0]["Tracking"]
    assert raw == [{"TrackingCategoryID": c, "TrackingOptionID": o, "Name": n, "Option": p} for c, o, n, p in expected]
    fetched = xero.accounting.get_invoice(xero.tenant_id, saved.invoice_id).invoices[0]
    assert [(t.name, t.option) for t in fetched.line_items[0].tracking] == [("Region", "North"), ("Department", "Ops")]


def test_tracking_by_ids_and_on_credit_notes(xero: Xero, region: str, customer: str) -> None:
    south = next(o["TrackingOptionID"] for o in xero.backend.tracking_categories(xero.tenant_id)[0]["Options"]
                 if o["Name"] == "South")
    by_ids = LineItemTracking(tracking_category_id=region, tracking_option_id=south)
    invoice = xero.accounting.create_invoices(xero.tenant_id, Invoices(invoices=[_invoice(customer, _line(by_ids))]),
                                              summarize_errors=False).invoices[0]
    assert [(t.name, t.option) for t in invoice.line_items[0].tracking] == [("Region", "South")]
    note = xero.accounting.create_credit_notes(xero.tenant_id, CreditNotes(credit_notes=[CreditNote(
        type="ACCRECCREDIT", contact=Contact(contact_id=customer), date=dt.date(2026, 7, 2), status="AUTHORISED",
        line_items=[_line(LineItemTracking(name="Region", option="ōtaki"))])]),
        summarize_errors=False).credit_notes[0]
    assert note.status_attribute_string == "OK"
    assert [(t.tracking_category_id, t.name, t.option) for t in note.line_items[0].tracking] == [
        (region, "Region", "Ōtaki")]
    refused = xero.accounting.create_credit_notes(xero.tenant_id, CreditNotes(credit_notes=[CreditNote(
        type="ACCRECCREDIT", contact=Contact(contact_id=customer), date=dt.date(2026, 7, 2),
        line_items=[_line(LineItemTracking(name="Region", option="West"))])]), summarize_errors=False).credit_notes[0]
    assert [e.message for e in refused.validation_errors] == [
        "There is no ACTIVE tracking option with the name 'West' in the tracking category 'Region'"]


def test_tracking_is_validated_as_xero_does(xero: Xero, region: str, customer: str) -> None:
    backend, t = xero.backend, xero.tenant_id
    backend.add_tracking_category(t, "Legacy", ["A"], status="ARCHIVED")
    backend.set_tracking_option_status(t, region, "South", "ARCHIVED")
    other = backend.add_tracking_category(t, "Department", ["Sales"])
    cases = [
        (_line(LineItemTracking(name="Project", option="Apollo")),
         "There is no ACTIVE tracking category with the name 'Project'"),
        (_line(LineItemTracking(name="Legacy", option="A")),
         "There is no ACTIVE tracking category with the name 'Legacy'"),
        (_line(LineItemTracking(name="Region", option="Ostrava")),
         "There is no ACTIVE tracking option with the name 'Ostrava' in the tracking category 'Region'"),
        (_line(LineItemTracking(name="Region", option="South")),
         "There is no ACTIVE tracking option with the name 'South' in the tracking category 'Region'"),
        (_line(LineItemTracking(name="Region", option="otaki")),  # case-insensitive, not accent-insensitive
         "There is no ACTIVE tracking option with the name 'otaki' in the tracking category 'Region'"),
        (_line(LineItemTracking(tracking_category_id=region, tracking_option_id=other)),
         f"There is no ACTIVE tracking option with the TrackingOptionID '{other}' in the tracking category 'Region'"),
        (_line(LineItemTracking(name="Region")),
         "A tracking option must be specified for the tracking category 'Region'."),
        (_line(LineItemTracking(option="North")),
         "A tracking category must be specified for the tracking option 'North'."),
        (_line(LineItemTracking(name="Region", option="North"), LineItemTracking(name="region", option="Ōtaki")),
         "The tracking category 'Region' can only be used once on a line item."),
        (_line(LineItemTracking(name="Region", option="North"), LineItemTracking(name="Department", option="Sales"),
               LineItemTracking(name="Region", option="Ōtaki")),
         "A line item cannot have more than 2 tracking categories."),
        (_line(LineItemTracking(name="Region", option="N" * 101)),
         "Tracking option name must be no more than 100 characters long."),
    ]
    for line, message in cases:
        assert _errors(xero, customer, line) == [message], message
    assert backend.invoices(t) == []


def test_overlong_tracking_category_name_from_a_raw_client(xero: Xero, region: str, customer: str) -> None:
    """xero-python refuses a Name over 100 itself; a raw client gets the element error, echoed safely."""
    status, body = raw_call(xero, "PUT", "/api.xro/2.0/Invoices?summarizeErrors=false", {"Invoices": [{
        "Type": "ACCREC", "Contact": {"ContactID": customer},
        "LineItems": [{"Description": "x", "Quantity": 1, "UnitAmount": 1, "AccountCode": "200",
                       "Tracking": [{"Name": "R" * 101, "Option": "North"}]}]}]})
    element = body["Invoices"][0]
    assert status == 200 and element["ValidationErrors"] == [
        {"Message": "Tracking category name must be no more than 100 characters long."}]
    assert element["LineItems"][0]["Tracking"] == [{"Option": "North"}]  # the SDK could not read the long name
