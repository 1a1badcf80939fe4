"""Customers and Contacts (the help article): match by name, create with the Name only, link, reuse.

A customer's first export to an organisation looks its name up among the
organisation's active Contacts (Xero's match is case- and accent-insensitive),
creates the Contact with only a Name when there is none, and stores the link.
Every later export uses the linked ContactID.
"""

from __future__ import annotations

import hashlib
import logging
import unicodedata
from collections import defaultdict
from dataclasses import dataclass

import psycopg

from astute_xero import sync_state
from astute_xero.sql import load_sql
from astute_xero.xero_client import XeroCallError, XeroClient

log = logging.getLogger(__name__)

NAMES_PER_LOOKUP = 25  # one GET with `Name=="a" OR Name=="b" ...`; keeps the URL well under limits
CONTACTS_PER_CREATE = 100
IDS_PER_CHECK = 50  # ContactIDs per GET when checking existing links


@dataclass(frozen=True)
class ContactResolution:
    matched: int
    created: int
    held: int
    relinked: int = 0


def name_key(name: str) -> str:
    """How Xero compares Contact names: ignoring case, accents and surrounding spaces."""
    decomposed = unicodedata.normalize("NFKD", name.strip())
    return "".join(ch for ch in decomposed if not unicodedata.combining(ch)).casefold()


def resolve_contacts(conn: psycopg.Connection, client: XeroClient, run_id: int) -> ContactResolution:
    relinked, held_archived = _check_existing_links(conn, client, run_id)
    by_tenant: dict[str, list[tuple[int, str]]] = defaultdict(list)
    for tenant_id, customer_id, name in conn.execute(load_sql("contacts_to_link"), {"run_id": run_id}):
        by_tenant[tenant_id].append((customer_id, name))
    matched = created = held = 0
    for tenant_id, customers in by_tenant.items():
        m, c, h = _resolve_for_tenant(conn, client, run_id, tenant_id, customers)
        matched, created, held = matched + m, created + c, held + h
    return ContactResolution(matched, created, held + held_archived, relinked)


def _check_existing_links(conn: psycopg.Connection, client: XeroClient, run_id: int) -> tuple[int, int]:
    """Links whose Contact was merged away or archived in Xero since: follow the merge, or hold the invoices.

    Xero refuses an invoice for an archived Contact; a merged Contact is archived and names the one it
    was merged into.
    """
    links: dict[str, list[tuple[int, str, str, str]]] = defaultdict(list)
    for tenant_id, customer_id, contact_id, name, astute_name in conn.execute(load_sql("contacts_linked"), {"run_id": run_id}):
        links[tenant_id].append((customer_id, contact_id, name, astute_name))
    relinked = held = 0
    for tenant_id, linked in links.items():
        for start in range(0, len(linked), IDS_PER_CHECK):
            batch = linked[start : start + IDS_PER_CHECK]
            found, call = client.contacts_by_id(tenant_id, sorted({contact_id for _, contact_id, _, _ in batch}))
            current = {str(contact.contact_id).lower(): contact for contact in found}
            with conn.transaction():
                sync_state.record_api_call(conn, run_id, call, item_count=len(batch))
                for customer_id, contact_id, name, astute_name in batch:
                    contact = current.get(contact_id.lower())
                    status = getattr(contact.contact_status, "value", contact.contact_status) if contact else "MISSING"
                    if status == "ACTIVE":
                        if name_key(astute_name) != name_key(name):  # a rename, not Xero's spelling of a match
                            held += _push_rename(conn, client, run_id, tenant_id, customer_id, contact_id, name, astute_name)
                        continue
                    merged_to = contact.merged_to_contact_id if contact else None
                    if merged_to:
                        target = _contact_name(client, conn, run_id, tenant_id, str(merged_to))
                        conn.execute(load_sql("contact_link_move"), {"customer_id": customer_id, "tenant_id": tenant_id,
                                                                     "contact_id": str(merged_to), "name": target})
                        log.info("customer %s: Contact '%s' was merged in Xero; link moved to '%s'", customer_id, name, target)
                        relinked += 1
                        continue
                    held += conn.execute(
                        load_sql("hold_customer_documents"),
                        {
                            "run_id": run_id,
                            "tenant_id": tenant_id,
                            "customer_id": customer_id,
                            "rule": "contact_archived",
                            "message": f"The Xero Contact '{name}' linked to this customer is "
                            f"{'archived' if contact else 'gone'} in Xero. Restore it in Xero, or remove the "
                            "customer's Contact link so that the next export finds or creates one by name.",
                        },
                    ).rowcount
    return relinked, held


def _push_rename(
    conn: psycopg.Connection, client: XeroClient, run_id: int, tenant_id: str, customer_id: int,
    contact_id: str, old_name: str, new_name: str,
) -> int:
    """A customer renamed in Astute since its last export: rename its Contact before its invoices go.

    Returns how many invoices were held back (the new name belongs to another Contact in Xero).
    """
    new_name = new_name.strip()
    try:
        _, call = client.rename_contact(tenant_id, contact_id, new_name)
    except XeroCallError as error:
        sync_state.record_api_call(conn, run_id, error.call, item_count=1)
        if not error.outcome_known:
            raise
        return conn.execute(
            load_sql("hold_customer_documents"),
            {
                "run_id": run_id,
                "tenant_id": tenant_id,
                "customer_id": customer_id,
                "rule": "contact_rename_refused",
                "message": f"The customer was renamed to '{new_name}' in Astute, but Xero refused that name for its "
                f"Contact '{old_name}': {error}. Rename or archive the other Contact in Xero, or change the name in Astute.",
            },
        ).rowcount
    sync_state.record_api_call(conn, run_id, call, item_count=1, outcome=[{"contact_id": contact_id, "renamed_to": new_name}])
    conn.execute(load_sql("contact_link_move"), {"customer_id": customer_id, "tenant_id": tenant_id,
                                                 "contact_id": contact_id, "name": new_name})
    log.info("customer %s renamed in Astute: Contact '%s' renamed to '%s' in Xero", customer_id, old_name, new_name)
    return 0


def _contact_name(client: XeroClient, conn: psycopg.Connection, run_id: int, tenant_id: str, contact_id: str) -> str:
    found, call = client.contacts_by_id(tenant_id, [contact_id])
    sync_state.record_api_call(conn, run_id, call, item_count=1)
    return found[0].name if found else ""


def _resolve_for_tenant(
    conn: psycopg.Connection, client: XeroClient, run_id: int, tenant_id: str, customers: list[tuple[int, str]]
) -> tuple[int, int, int]:
    wanted: dict[str, list[int]] = defaultdict(list)  # name key -> customers
    display: dict[str, str] = {}
    for customer_id, name in customers:
        wanted[name_key(name)].append(customer_id)
        display.setdefault(name_key(name), name.strip())

    found: dict[str, tuple[str, str]] = {}  # name key -> (ContactID, Name)
    keys = list(wanted)
    for start in range(0, len(keys), NAMES_PER_LOOKUP):
        batch = keys[start : start + NAMES_PER_LOOKUP]
        contacts, call = client.contacts_named(tenant_id, [display[k] for k in batch])
        with conn.transaction():
            sync_state.record_api_call(conn, run_id, call, item_count=len(batch))
        for contact in contacts:
            status = getattr(contact.contact_status, "value", contact.contact_status)
            key = name_key(contact.name or "")
            if key in wanted and status in (None, "ACTIVE") and key not in found:
                found[key] = (str(contact.contact_id), contact.name)
    matched = len(found)

    missing = [k for k in keys if k not in found]
    refused: dict[str, str] = {}
    for start in range(0, len(missing), CONTACTS_PER_CREATE):
        batch = missing[start : start + CONTACTS_PER_CREATE]
        names = [display[k] for k in batch]
        request_key = "astute-contacts-" + hashlib.sha256((tenant_id + "\n".join(names)).encode()).hexdigest()[:64]
        try:
            answered, call = client.create_contacts(tenant_id, names, request_key)
        except XeroCallError as error:
            with conn.transaction():
                sync_state.record_api_call(conn, run_id, error.call, item_count=len(batch))
            raise
        outcome = []
        for key, element in zip(batch, answered):
            errors = [e.message for e in element.validation_errors or [] if e.message]
            if element.contact_id and not errors and element.status_attribute_string != "ERROR":
                found[key] = (str(element.contact_id), element.name)
                outcome.append({"name": display[key], "status": "created", "contact_id": str(element.contact_id)})
            else:
                refused[key] = "; ".join(errors) or "Xero refused to create the Contact"
                outcome.append({"name": display[key], "status": "failed", "error": refused[key]})
        with conn.transaction():
            sync_state.record_api_call(conn, run_id, call, item_count=len(batch), outcome=outcome)
    created = len(found) - matched

    links = [(customer_id, tenant_id, *found[key]) for key, ids in wanted.items() if key in found for customer_id in ids]
    held = 0
    with conn.transaction():
        if links:
            customer_ids, tenant_ids, contact_ids, names = (list(col) for col in zip(*links))
            conn.execute(
                load_sql("contact_link_insert"),
                {"customer_ids": customer_ids, "tenant_ids": tenant_ids, "contact_ids": contact_ids, "names": names},
            )
        for key, reason in refused.items():
            for customer_id in wanted[key]:
                held += conn.execute(
                    load_sql("hold_customer_documents"),
                    {
                        "run_id": run_id,
                        "tenant_id": tenant_id,
                        "customer_id": customer_id,
                        "rule": "contact_refused",
                        "message": f"Xero would not create the Contact '{display[key]}': {reason}. "
                        "Fix the customer's name in Astute or the Contact in Xero.",
                    },
                ).rowcount
    if matched or created:
        log.info("organisation %s: %d customer name(s) matched an existing Contact, %d Contact(s) created", tenant_id, matched, created)
    return matched, created, held
