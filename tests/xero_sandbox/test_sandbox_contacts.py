"""Contacts: where-lookups as Xero matches them, uniqueness, archiving."""

from __future__ import annotations

import json

import pytest
from xero_python.accounting import Contact, Contacts
from xero_python.exceptions import HTTPStatusException

from .sandbox_helpers import Xero, raw_call


def _where_name(*names: str) -> str:
    """How a careful client builds the filter: escape backslashes and quotes."""
    quoted = ['Name=="{}"'.format(n.replace("\\", "\\\\").replace('"', '\\"')) for n in names]
    return " OR ".join(quoted)


def test_where_name_is_case_and_accent_insensitive(xero: Xero) -> None:
    contact_id = xero.backend.add_contact(xero.tenant_id, "Café Zoë Ltd")
    for probe in ("café zoë ltd", "CAFE ZOE LTD", "Cafe Zoe Ltd"):
        found = xero.accounting.get_contacts(xero.tenant_id, where=_where_name(probe)).contacts
        assert [c.contact_id for c in found] == [contact_id], probe


def test_where_handles_quotes_ampersands_and_or(xero: Xero) -> None:
    tricky = xero.backend.add_contact(xero.tenant_id, 'Smith & "Sons" + Co; 50% off?')
    plain = xero.backend.add_contact(xero.tenant_id, "Plain Pty Ltd")
    xero.backend.add_contact(xero.tenant_id, "Not Wanted")
    found = xero.accounting.get_contacts(
        xero.tenant_id, where=_where_name('smith & "sons" + co; 50% off?', "plain pty ltd")).contacts
    assert sorted(c.contact_id for c in found) == sorted([tricky, plain])


def test_bad_where_is_a_query_parse_400(xero: Xero) -> None:
    with pytest.raises(HTTPStatusException) as info:
        xero.accounting.get_contacts(xero.tenant_id, where='Name=="unterminated')
    assert info.value.status == 400
    assert json.loads(info.value.body)["Type"] == "QueryParseException"


def test_archived_hidden_unless_include_archived_and_merge_is_visible(xero: Xero) -> None:
    survivor = xero.backend.add_contact(xero.tenant_id, "Survivor")
    merged = xero.backend.add_contact(xero.tenant_id, "Old Name", status="ARCHIVED", merged_to_contact_id=survivor)
    where = _where_name("Old Name")
    assert xero.accounting.get_contacts(xero.tenant_id, where=where).contacts == []
    found = xero.accounting.get_contacts(xero.tenant_id, where=where, include_archived=True).contacts
    assert [(c.contact_id, c.contact_status, c.merged_to_contact_id) for c in found] == [(merged, "ARCHIVED", survivor)]
    # IDs= returns what was asked for, archived included.
    assert [c.contact_id for c in xero.accounting.get_contacts(xero.tenant_id, i_ds=[merged]).contacts] == [merged]


def test_name_must_be_unique_across_active_contacts(xero: Xero) -> None:
    xero.backend.add_contact(xero.tenant_id, "Acme Café")
    xero.backend.add_contact(xero.tenant_id, "Archived Acme", status="ARCHIVED")
    result = xero.accounting.create_contacts(
        xero.tenant_id, Contacts(contacts=[Contact(name="ACME CAFE"), Contact(name="Archived Acme"), Contact(name="")]),
        summarize_errors=False)
    statuses = [c.status_attribute_string for c in result.contacts]
    assert statuses == ["ERROR", "OK", "ERROR"]  # an archived name may be reused
    assert result.contacts[0].validation_errors[0].message == (
        "The contact name ACME CAFE is already assigned to another contact. "
        "The contact name must be unique across all active contacts.")
    assert result.contacts[0].has_validation_errors is True
    assert result.contacts[2].validation_errors[0].message == "The contact name must be specified."


def test_summarised_contact_error_is_400_with_elements(xero: Xero) -> None:
    xero.backend.add_contact(xero.tenant_id, "Taken")
    with pytest.raises(HTTPStatusException) as info:
        xero.accounting.create_contacts(xero.tenant_id, Contacts(contacts=[Contact(name="taken"), Contact(name="Free")]))
    body = json.loads(info.value.body)
    assert info.value.status == 400 and body["ErrorNumber"] == 10 and len(body["Elements"]) == 1
    names = [c["Name"] for c in xero.backend.contacts(xero.tenant_id)]
    assert sorted(names) == ["Free", "Taken"]  # the good one was created anyway


def test_rename_archive_and_search(xero: Xero) -> None:
    created = xero.accounting.create_contacts(xero.tenant_id, Contacts(contacts=[
        Contact(name="First Name Co", email_address="ap@first.example")])).contacts[0]
    renamed = xero.accounting.update_contact(
        xero.tenant_id, created.contact_id, Contacts(contacts=[Contact(name="Second Name Co")])).contacts[0]
    assert renamed.name == "Second Name Co" and renamed.email_address == "ap@first.example"
    assert [c.contact_id for c in xero.accounting.get_contacts(xero.tenant_id, search_term="SECOND").contacts] == [
        created.contact_id]
    archived = xero.accounting.update_or_create_contacts(xero.tenant_id, Contacts(contacts=[
        Contact(contact_id=created.contact_id, contact_status="ARCHIVED")])).contacts[0]
    assert archived.contact_status == "ARCHIVED"
    assert xero.accounting.get_contact(xero.tenant_id, created.contact_id).contacts[0].name == "Second Name Co"


def test_paging(xero: Xero) -> None:
    for n in range(5):
        xero.backend.add_contact(xero.tenant_id, f"Contact {n}")
    page = xero.accounting.get_contacts(xero.tenant_id, page=2, page_size=2)
    assert [c.name for c in page.contacts] == ["Contact 2", "Contact 3"]
    assert (page.pagination.page, page.pagination.page_size, page.pagination.page_count,
            page.pagination.item_count) == (2, 2, 3, 5)


def test_contact_name_longer_than_255_from_a_raw_client(xero: Xero) -> None:
    """xero-python refuses a Name over 255 itself; a raw client gets Xero's element error."""
    status, body = raw_call(xero, "PUT", "/api.xro/2.0/Contacts?summarizeErrors=false",
                            {"Contacts": [{"Name": "n" * 255}, {"Name": "m" * 256}]})
    ok, refused = body["Contacts"]
    assert status == 200 and ok["StatusAttributeString"] == "OK" and refused["StatusAttributeString"] == "ERROR"
    assert refused["ValidationErrors"] == [{"Message": "The contact name must not be more than 255 characters long."}]
    assert "Name" not in refused  # echoing it would make xero-python raise
    assert [len(c["Name"]) for c in xero.backend.contacts(xero.tenant_id)] == [255]
