"""Customers and Contacts (the help article): match by name, create with the Name only, link, reuse.

A customer's first export to an organisation looks its name up among the
organisation's active Contacts (Xero's match is case- and accent-insensitive),
creates the Contact with only a Name when there is none, and stores the link.
Every later export uses the linked ContactID.

The work is done organisation by organisation, side by side (resolve_tenant_contacts), and within
one organisation up to its 5 calls at once (organisations.Organisation.at_once: the checks of existing
links, the renames, the look-ups, the creations). One organisation's 403, spent daily limit or failing
Xero stops that organisation for the run, with its reason, and the others carry on.

A preview (preview.py) does the same lookups and stops short of every write: it records what it would do
(create, match, rename, relink) in xero_sync.preview_contact, and holds back what the export would hold
(an archived Contact, a new name another Contact has), without touching Xero or contact_link.
"""

from __future__ import annotations

import dataclasses
import hashlib
import logging
import threading
import unicodedata
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TypeVar

import psycopg

from astute_xero.export import organisations, preview, sync_state
from astute_xero.sql import load_sql
from astute_xero.xero.client import ApiCall, XeroCallError, XeroClient

log = logging.getLogger(__name__)

NAMES_PER_LOOKUP = 25  # one GET with `Name=="a" OR Name=="b" ...`; keeps the URL well under limits
CONTACTS_PER_CREATE = 100
IDS_PER_CHECK = 50  # ContactIDs per GET when checking existing links

T = TypeVar("T")


@dataclass(frozen=True)
class ContactResolution:
    matched: int
    created: int
    held: int
    relinked: int = 0
    organisations_stopped: int = 0

    def __add__(self, other: ContactResolution) -> ContactResolution:
        return ContactResolution(*(a + b for a, b in zip(dataclasses.astuple(self), dataclasses.astuple(other))))


class ContactsUnfinished(RuntimeError):
    """Some organisation's customers could not be linked for a reason worth Airflow's retry (no answer from
    Xero, a minute limit that persisted); every other organisation's were. The retry looks names up
    before creating anything, so nothing is created twice."""


def name_key(name: str) -> str:
    """How Xero compares Contact names: ignoring case, accents and surrounding spaces."""
    decomposed = unicodedata.normalize("NFKD", name.strip())
    return "".join(ch for ch in decomposed if not unicodedata.combining(ch)).casefold()


def resolve_contacts(
    conn: psycopg.Connection, client: XeroClient, run_id: int, each: organisations.Runner | None = None
) -> ContactResolution:
    """Every organisation of the run (side by side when `each` says so); one organisation's trouble is that
    organisation's."""
    each = each or organisations.one_by_one(conn, client)
    tenants = sync_state.exporting_tenants(conn, run_id)
    outcomes = each(tenants, lambda organisation: resolve_tenant_contacts(organisation, run_id))
    organisations.raise_unexpected(outcomes, XeroCallError)
    total = ContactResolution(0, 0, 0)
    unfinished: list[str] = []
    for (tenant_id, organisation), outcome in zip(tenants, outcomes):
        if isinstance(outcome, XeroCallError):
            log.warning("organisation %s (%s): contacts not resolved, left for the retry: %s", organisation, tenant_id, outcome)
            unfinished.append(f"{organisation} ({tenant_id}): {outcome}")
        else:
            total += outcome
    if unfinished:
        raise ContactsUnfinished(
            f"customers of {len(unfinished)} organisation(s) could not be linked to Xero Contacts "
            f"({'; '.join(unfinished)}); every other organisation's are. Airflow's retry resolves them again: "
            "names are looked up before anything is created, so a Contact Xero created unheard is found, not duplicated."
        )
    return total


def resolve_tenant_contacts(organisation: organisations.Organisation, run_id: int) -> ContactResolution:
    """One organisation's contact step: check its existing links (merges, archives, renames), then match or
    create a Contact for each customer without one. Calls that do not depend on each other (the checks of
    links, the renames, the look-ups of names, the creations) go up to the organisation's concurrency at once.

    Xero refusing the app access to the organisation (403: disconnected), its spent daily limit, or Xero
    failing for it (a 5xx: a read still failing after the client's retries, a write whose outcome is
    unknown) stops this organisation for the run, with the reason and the failed call's api_log row; its
    documents wait for the next run. Anything else (no answer at all, a minute limit that persisted)
    raises, for Airflow's retry.
    """
    conn, tenant_id = organisation.conn, organisation.tenant_id
    if sync_state.tenant_stopped(conn, run_id, tenant_id):
        return ContactResolution(0, 0, 0)
    counts = _Tally()
    previewing = sync_state.is_preview(conn, run_id)  # counts are then of what the export would do
    try:
        _check_existing_links(organisation, run_id, counts, previewing=previewing)
        customers = [(customer_id, name) for _, customer_id, name in conn.execute(
            load_sql("contacts_to_link"), {"run_id": run_id, "tenant_id": tenant_id})]
        if customers:
            _resolve_for_tenant(organisation, run_id, customers, counts, previewing=previewing)
    except XeroCallError as error:
        reason = error.organisation_stop_reason()
        if reason is None:
            raise
        sync_state.stop_tenant(conn, run_id, tenant_id, reason)
        log.warning("organisation %s stopped for this run: %s", tenant_id, reason)
        return ContactResolution(**counts.values(), organisations_stopped=1)
    return ContactResolution(**counts.values())


class _Tally:
    """An organisation's counts, added to from each of its callers' threads."""

    def __init__(self) -> None:
        self._counts = {"matched": 0, "created": 0, "held": 0, "relinked": 0}
        self._lock = threading.Lock()

    def add(self, name: str, count: int) -> None:
        with self._lock:
            self._counts[name] += count

    def __getitem__(self, name: str) -> int:
        return self._counts[name]

    def values(self) -> dict[str, int]:
        with self._lock:
            return dict(self._counts)


def _logged(conn: psycopg.Connection, run_id: int, item_count: int, call_xero: Callable[[], tuple[T, ApiCall]]) -> T:
    """One call to Xero, its api_log row committed whatever became of it."""
    try:
        result, call = call_xero()
    except XeroCallError as error:
        with conn.transaction():
            sync_state.record_api_call(conn, run_id, error.call, item_count=item_count)
        raise
    with conn.transaction():
        sync_state.record_api_call(conn, run_id, call, item_count=item_count)
    return result


def _check_existing_links(
    organisation: organisations.Organisation, run_id: int, counts: _Tally, *, previewing: bool = False
) -> None:
    """Links whose Contact was merged away or archived in Xero since: follow the merge, or hold the invoices;
    Contacts whose customer was renamed in Astute: rename them.

    The checks (IDS_PER_CHECK links per GET) go at once, then what they found to do (a rename, the name of
    the Contact a merge went to). No call to Xero is made inside a database transaction: a failing call's
    api_log row is committed, never rolled back with it.
    """
    tenant_id = organisation.tenant_id
    linked = [tuple(row[1:]) for row in organisation.conn.execute(
        load_sql("contacts_linked"), {"run_id": run_id, "tenant_id": tenant_id})]

    def check(conn: psycopg.Connection, client: XeroClient, batch: Sequence[tuple]) -> list[tuple]:
        """One GET of a batch's Contacts; holds the archived ones' documents; returns what needs a call."""
        contact_ids = sorted({contact_id for _, contact_id, _, _ in batch})
        found = _logged(conn, run_id, len(batch), lambda: client.contacts_by_id(tenant_id, contact_ids))
        current = {str(contact.contact_id).lower(): contact for contact in found}
        to_call: list[tuple] = []
        for customer_id, contact_id, name, astute_name in batch:
            contact = current.get(contact_id.lower())
            status = getattr(contact.contact_status, "value", contact.contact_status) if contact else "MISSING"
            if status == "ACTIVE":
                if name_key(astute_name) != name_key(name):  # a rename, not Xero's spelling of a match
                    to_call.append((customer_id, contact_id, name, astute_name, None))
                continue
            merged_to = contact.merged_to_contact_id if contact else None
            if merged_to:
                to_call.append((customer_id, contact_id, name, astute_name, str(merged_to)))
                continue
            with conn.transaction():
                counts.add("held", conn.execute(
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
                ).rowcount)
        return to_call

    def follow(conn: psycopg.Connection, client: XeroClient, found: tuple) -> None:
        customer_id, contact_id, name, astute_name, merged_to = found
        if merged_to is None:
            push = _preview_rename if previewing else _push_rename
            counts.add("held", push(conn, client, run_id, tenant_id, customer_id, contact_id, name, astute_name))
            return
        target = _contact_name(client, conn, run_id, tenant_id, merged_to)
        with conn.transaction():
            if previewing:
                preview.record_contacts(conn, run_id, tenant_id, preview.RELINK, [(customer_id, merged_to, target, astute_name)])
            else:
                conn.execute(load_sql("contact_link_move"), {"customer_id": customer_id, "tenant_id": tenant_id,
                                                             "contact_id": merged_to, "name": target})
        if not previewing:
            log.info("customer %s: Contact '%s' was merged in Xero; link moved to '%s'", customer_id, name, target)
        counts.add("relinked", 1)

    to_call = [found for batch in organisation.at_once(check, organisations.batches(linked, IDS_PER_CHECK))
               for found in batch]
    organisation.at_once(follow, to_call)


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
        with conn.transaction():
            sync_state.record_api_call(conn, run_id, error.call, item_count=1)
            if error.refused:  # Xero turned the name down (taken by another Contact): hold the customer
                return _hold_refused_rename(conn, run_id, tenant_id, customer_id,
                                            f"The customer was renamed to '{new_name}' in Astute, but Xero refused "
                                            f"that name for its Contact '{old_name}': {error}.")
        # Xero's trouble, not the name's (403, a spent limit, a 5xx, no answer): the organisation stops or the
        # task is retried. Setting a Contact's name is safe to repeat: the same name again changes nothing.
        raise
    with conn.transaction():
        sync_state.record_api_call(conn, run_id, call, item_count=1,
                                   outcome=[{"contact_id": contact_id, "renamed_to": new_name}])
        conn.execute(load_sql("contact_link_move"), {"customer_id": customer_id, "tenant_id": tenant_id,
                                                     "contact_id": contact_id, "name": new_name})
    log.info("customer %s renamed in Astute: Contact '%s' renamed to '%s' in Xero", customer_id, old_name, new_name)
    return 0


def _preview_rename(
    conn: psycopg.Connection, client: XeroClient, run_id: int, tenant_id: str, customer_id: int,
    contact_id: str, old_name: str, new_name: str,
) -> int:
    """What _push_rename would do, without pushing: Xero refuses a name another active Contact has, so look the
    new name up (one GET); taken, the customer's documents are held back as the export would hold them,
    else the rename is recorded. Returns how many documents were held back."""
    new_name = new_name.strip()
    holders = _logged(conn, run_id, 1, lambda: client.contacts_named(tenant_id, [new_name]))
    taken = next((c.name for c in holders
                  if str(c.contact_id).lower() != contact_id.lower() and name_key(c.name or "") == name_key(new_name)
                  and getattr(c.contact_status, "value", c.contact_status) in (None, "ACTIVE")), None)
    with conn.transaction():
        if taken is not None:
            return _hold_refused_rename(conn, run_id, tenant_id, customer_id,
                                        f"The customer was renamed to '{new_name}' in Astute, but Xero would refuse "
                                        f"that name for its Contact '{old_name}': the Contact '{taken}' already has it.")
        preview.record_contacts(conn, run_id, tenant_id, preview.RENAME, [(customer_id, contact_id, old_name, new_name)])
    log.info("customer %s renamed in Astute: the export would rename Contact '%s' to '%s' in Xero",
             customer_id, old_name, new_name)
    return 0


def _hold_refused_rename(conn: psycopg.Connection, run_id: int, tenant_id: str, customer_id: int, why: str) -> int:
    """Hold a renamed customer's documents: Xero refuses (or would refuse) the new name for its Contact."""
    return conn.execute(load_sql("hold_customer_documents"), {
        "run_id": run_id, "tenant_id": tenant_id, "customer_id": customer_id, "rule": "contact_rename_refused",
        "message": f"{why} Rename or archive the other Contact in Xero, or change the name in Astute.",
    }).rowcount


def _contact_name(client: XeroClient, conn: psycopg.Connection, run_id: int, tenant_id: str, contact_id: str) -> str:
    found = _logged(conn, run_id, 1, lambda: client.contacts_by_id(tenant_id, [contact_id]))
    return found[0].name if found else ""


def _resolve_for_tenant(
    organisation: organisations.Organisation, run_id: int, customers: list[tuple[int, str]], counts: _Tally,
    *, previewing: bool = False,
) -> None:
    """Match each customer's name among the organisation's active Contacts, create the missing ones, link.

    The look-ups (NAMES_PER_LOOKUP names per GET) go at once, then the creations (CONTACTS_PER_CREATE per PUT).
    Links are stored as soon as they are known (the matches after the lookups, each created batch with
    its api_log row), so that work done before a failure is kept.
    """
    conn, tenant_id = organisation.conn, organisation.tenant_id
    wanted: dict[str, list[int]] = defaultdict(list)  # name key -> customers
    display: dict[str, str] = {}
    for customer_id, name in customers:
        wanted[name_key(name)].append(customer_id)
        display.setdefault(name_key(name), name.strip())

    def look_up(conn: psycopg.Connection, client: XeroClient, batch: Sequence[str]) -> list:
        names = [display[k] for k in batch]
        return _logged(conn, run_id, len(batch), lambda: client.contacts_named(tenant_id, names))

    found: dict[str, tuple[str, str]] = {}  # name key -> (ContactID, Name)
    keys = list(wanted)
    for contacts in organisation.at_once(look_up, organisations.batches(keys, NAMES_PER_LOOKUP)):
        for contact in contacts:
            status = getattr(contact.contact_status, "value", contact.contact_status)
            key = name_key(contact.name or "")
            if key in wanted and status in (None, "ACTIVE") and key not in found:
                found[key] = (str(contact.contact_id), contact.name)
    matched = len(found)
    missing = [k for k in keys if k not in found]
    if previewing:  # the links and Contacts the export would make, recorded instead of made
        names = dict(customers)
        with conn.transaction():
            preview.record_contacts(conn, run_id, tenant_id, preview.MATCH,
                                    [(c, *found[k], names[c]) for k in found for c in wanted[k]])
            preview.record_contacts(conn, run_id, tenant_id, preview.CREATE,
                                    [(c, None, None, display[k]) for k in missing for c in wanted[k]])
        counts.add("matched", matched)
        counts.add("created", len(missing))
        log.info("organisation %s: %d customer name(s) would match an existing Contact, %d Contact(s) would be "
                 "created", tenant_id, matched, len(missing))
        return
    with conn.transaction():
        _link(conn, tenant_id, found, wanted)
    counts.add("matched", matched)

    def create(conn: psycopg.Connection, client: XeroClient, batch: Sequence[str]) -> None:
        names = [display[k] for k in batch]
        request_key = "astute-contacts-" + hashlib.sha256((tenant_id + "\n".join(names)).encode()).hexdigest()[:64]
        try:
            answered, call = client.create_contacts(tenant_id, names, request_key)
        except XeroCallError as error:
            # A create whose outcome is unknown (a 5xx, or no answer) is safe to repeat, in Airflow's retry or a
            # later run: the request carries an Idempotency-Key derived from the organisation and the names, so a
            # repeat within Xero's key window is answered, not acted on; after that, the lookup by name above
            # runs first and finds any Contact Xero did create (and Xero refuses a second active Contact of the
            # same name anyway). So the organisation can be stopped, or the task retried, without a duplicate.
            with conn.transaction():
                sync_state.record_api_call(conn, run_id, error.call, item_count=len(batch))
            raise
        outcome = []
        created: dict[str, tuple[str, str]] = {}
        refused: dict[str, str] = {}
        for key, element in zip(batch, answered):
            errors = [e.message for e in element.validation_errors or [] if e.message]
            if element.contact_id and not errors and element.status_attribute_string != "ERROR":
                created[key] = (str(element.contact_id), element.name)
                outcome.append({"name": display[key], "status": "created", "contact_id": str(element.contact_id)})
            else:
                refused[key] = "; ".join(errors) or "Xero refused to create the Contact"
                outcome.append({"name": display[key], "status": "failed", "error": refused[key]})
        with conn.transaction():
            sync_state.record_api_call(conn, run_id, call, item_count=len(batch), outcome=outcome)
            _link(conn, tenant_id, created, wanted)
            for key, reason in refused.items():
                for customer_id in wanted[key]:
                    counts.add("held", conn.execute(
                        load_sql("hold_customer_documents"),
                        {
                            "run_id": run_id,
                            "tenant_id": tenant_id,
                            "customer_id": customer_id,
                            "rule": "contact_refused",
                            "message": f"Xero would not create the Contact '{display[key]}': {reason}. "
                            "Fix the customer's name in Astute or the Contact in Xero.",
                        },
                    ).rowcount)
        counts.add("created", len(created))

    organisation.at_once(create, organisations.batches(missing, CONTACTS_PER_CREATE))
    if matched or counts["created"]:
        log.info("organisation %s: %d customer name(s) matched an existing Contact, %d Contact(s) created",
                 tenant_id, matched, counts["created"])


def _link(
    conn: psycopg.Connection, tenant_id: str, contacts: dict[str, tuple[str, str]], wanted: dict[str, list[int]]
) -> None:
    """Store the link of every customer whose name key found its Contact (ContactID, Name)."""
    links = [(customer_id, tenant_id, *contacts[key]) for key in contacts for customer_id in wanted[key]]
    if links:
        customer_ids, tenant_ids, contact_ids, names = (list(col) for col in zip(*links))
        conn.execute(
            load_sql("contact_link_insert"),
            {"customer_ids": customer_ids, "tenant_ids": tenant_ids, "contact_ids": contact_ids, "names": names},
        )
