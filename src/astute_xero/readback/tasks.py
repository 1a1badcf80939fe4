"""The bodies of xero_status_sync's tasks (the DAG file wires them)."""

from __future__ import annotations

import dataclasses
import logging
from contextlib import closing
from typing import Any

from airflow.sdk.exceptions import AirflowFailException

from astute_xero.hooks import XeroHook, astute_connection
from astute_xero.operations.migrations import apply_migrations
from astute_xero.readback import status_sync
from astute_xero.sql import load_sql
from astute_xero.xero.client import XeroCallError
from astute_xero.xero.tokens import XeroAuthorisationError

log = logging.getLogger(__name__)


def organisations_to_read(params: dict[str, Any]) -> list[dict[str, str]]:
    """Applies the migrations; the organisations of the linked, live billing entities (or of those asked for)."""
    with closing(astute_connection()) as conn:
        apply_migrations(conn)
        rows = conn.execute(load_sql("status_sync_organisations"),
                            {"entity_ids": params.get("billing_entity_ids") or None}).fetchall()
    organisations = [{"tenant_id": tenant_id, "label": label} for tenant_id, label in rows]
    log.info("reading back %d organisation(s)%s: %s", len(organisations),
             " in full" if params.get("full_reconciliation") else "", "; ".join(o["label"] for o in organisations))
    return organisations


def full_reconciliation_days() -> int | None:
    """[astute_xero] full_reconciliation_days (AIRFLOW__ASTUTE_XERO__FULL_RECONCILIATION_DAYS where the workers
    run): read an organisation in full when its last full reconciliation was that many days ago or more; 0: only
    when asked. Anything but a whole number of days from 0 fails the task, naming the setting."""
    from airflow.sdk.configuration import conf

    value = (conf.get("astute_xero", "full_reconciliation_days",
                      fallback=str(status_sync.FULL_RECONCILIATION_DAYS)) or "").strip()
    if not value.isdigit():
        raise AirflowFailException(f"[astute_xero] full_reconciliation_days must be a whole number of days (0: only "
                                   f"when asked), not {value!r}")
    return int(value) or None


def sync_organisation(organisation: dict[str, str], full: bool, found_by: str) -> dict[str, Any]:
    """One organisation's read back. Its own trouble (disconnected, its day's calls spent, Xero failing for it)
    stops it for this run, with the reason, and fails nothing else; a lost answer fails the task for Airflow's
    retry."""
    tenant_id = organisation["tenant_id"]
    full_every_days = full_reconciliation_days()
    try:
        client = XeroHook().client()
    except XeroAuthorisationError as error:
        raise AirflowFailException(str(error)) from None
    try:
        with closing(astute_connection()) as conn:
            outcome = status_sync.sync_organisation(conn, client, tenant_id, full=full,
                                                    full_every_days=full_every_days, found_by=found_by)
    except XeroCallError as error:
        reason = error.organisation_stop_reason()
        if reason is None:
            raise
        log.warning("%s: stopped for this run: %s", organisation["label"], reason)
        return {"tenant_id": tenant_id, "stopped": reason}
    finally:
        client.close()
    return dataclasses.asdict(outcome)


def summarise_status_sync(outcomes: list[dict[str, Any]]) -> str:
    """Per organisation: what was read, what stopped it, the open drift and the payment picture."""
    tenants = [o["tenant_id"] for o in outcomes]
    with closing(astute_connection()) as conn:
        pictures = {row[0]: row[1:] for row in conn.execute(load_sql("status_sync_summary"), {"tenants": tenants})}
    lines = [f"Xero status sync: {len(outcomes)} organisation(s)"]
    for outcome in outcomes:
        tenant = outcome["tenant_id"]
        if "stopped" in outcome:
            lines.append(f"  {tenant}: STOPPED - {outcome['stopped']}")
            continue
        open_drift, paid, part_paid, awaiting, overdue, amount_due = pictures[tenant]
        if outcome["full_postponed"]:
            lines.append(f"  {tenant}: {outcome['full_postponed']}: postponed to the next sync")
        lines.append(
            f"  {tenant}: {'full (' + outcome['full_because'] + ')' if outcome['full'] else 'incremental'} read, "
            f"{outcome['calls']} call(s), "
            f"{outcome['documents_read']} read, {outcome['documents_changed']} changed; drift: "
            f"{outcome['drift_found']} new, {outcome['drift_resolved']} resolved, {open_drift} open; invoices: "
            f"{paid} paid, {part_paid} part-paid, {awaiting} awaiting payment, {overdue} overdue ({amount_due} due)")
    summary = "\n".join(lines)
    log.info("%s", summary)
    return summary
