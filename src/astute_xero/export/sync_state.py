"""The pipeline's own state in xero_sync: runs, their work lists, and the API log."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

import psycopg
from psycopg.types.json import Jsonb

from astute_xero.sql import load_sql
from astute_xero.xero.client import ApiCall

# export_run.kind of the export DAG's runs: an export, or a preview of one (its Param `preview`), which runs
# every step before the first write to Xero and stops there.
EXPORT = "export"
PREVIEW = "preview"


@dataclass(frozen=True)
class RunScope:
    """What a run was asked to export (the DAG's Params, resolved)."""

    billing_entity_ids: list[int] | None
    date_from: dt.date | None
    date_to: dt.date

    def as_json(self) -> dict[str, Any]:
        return {
            "billing_entity_ids": self.billing_entity_ids,
            "date_from": self.date_from.isoformat() if self.date_from else None,
            "date_to": self.date_to.isoformat(),
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> RunScope:
        return cls(
            data["billing_entity_ids"],
            dt.date.fromisoformat(data["date_from"]) if data["date_from"] else None,
            dt.date.fromisoformat(data["date_to"]),
        )


def is_preview(conn: psycopg.Connection, run_id: int) -> bool:
    """Whether the run only previews an export: it reads Xero, never writes to it, and changes no export flag
    and no Contact link."""
    row = conn.execute("SELECT kind FROM xero_sync.export_run WHERE run_id = %s", (run_id,)).fetchone()
    return row is not None and row[0] == PREVIEW


@dataclass(frozen=True)
class BillingEntity:
    id: int
    name: str
    tenant_id: str | None
    go_live: dt.date | None


def billing_entity(conn: psycopg.Connection, billing_entity_id: int) -> BillingEntity:
    """An Astute billing entity, or a clear error naming the id that does not exist."""
    row = conn.execute(load_sql("billing_entity"), {"billing_entity_id": billing_entity_id}).fetchone()
    if row is None:
        raise ValueError(f"billing entity {billing_entity_id} does not exist in astute.billing_entity.")
    return BillingEntity(*row)


def run_scope(conn: psycopg.Connection, run_id: int) -> RunScope:
    """What a run was asked to export, as start_run recorded it."""
    (params,) = conn.execute("SELECT params FROM xero_sync.export_run WHERE run_id = %s", (run_id,)).fetchone()
    return RunScope.from_json(params)


@dataclass(frozen=True)
class EntityDecision:
    billing_entity_id: int
    entity_name: str
    tenant_id: str | None
    decision: str
    detail: str | None


def start_run(
    conn: psycopg.Connection, *, kind: str, dag_id: str, airflow_run_id: str, scope: RunScope,
    continues_run_id: int | None = None,
) -> int:
    """Open (or reopen, on a retry) the run and rebuild its work tables from scratch."""
    with conn.transaction():
        (run_id,) = conn.execute(
            load_sql("run_start"),
            {"kind": kind, "dag_id": dag_id, "airflow_run_id": airflow_run_id, "params": Jsonb(scope.as_json()),
             "continues_run_id": continues_run_id},
        ).fetchone()
        conn.execute(load_sql("run_reset_work"), {"run_id": run_id})
    return run_id


def decide_entities(conn: psycopg.Connection, run_id: int, entity_ids: list[int] | None) -> list[EntityDecision]:
    """Record, per billing entity in scope, whether it is exported or skipped and why."""
    with conn.transaction():
        if entity_ids:
            known = {row[0] for row in conn.execute("SELECT id FROM astute.billing_entity WHERE id = ANY(%s)", (entity_ids,))}
            unknown = sorted(set(entity_ids) - known)
            if unknown:
                raise ValueError(
                    f"billing_entity_ids {unknown} do not exist in astute.billing_entity; "
                    "check the ids in the trigger form (or leave it empty for every linked entity)."
                )
        conn.execute(load_sql("run_decide_entities"), {"run_id": run_id, "entity_ids": entity_ids or None})
    return [
        EntityDecision(*row)
        for row in conn.execute(
            "SELECT billing_entity_id, entity_name, tenant_id, decision, detail FROM xero_sync.run_entity "
            "WHERE run_id = %s ORDER BY billing_entity_id",
            (run_id,),
        )
    ]


def select_documents(
    conn: psycopg.Connection, run_id: int, scope: RunScope, capacity: dict[str, int] | None = None
) -> dict[str, int]:
    """Put the eligible invoices' and credit notes' ids in the run's work list, oldest first, no more per
    organisation than `capacity` (documents per tenant id; None: every one), plus every document an earlier
    validation held back; return how many of each kind."""
    capacity = capacity or {}
    with conn.transaction():
        conn.execute(
            load_sql("select_documents"),
            {"run_id": run_id, "date_from": scope.date_from, "date_to": scope.date_to,
             "tenants": list(capacity), "capacities": list(capacity.values())},
        )
        selected = dict(
            conn.execute("SELECT kind, count(*) FROM xero_sync.run_document WHERE run_id = %s GROUP BY kind", (run_id,))
        )
        conn.execute(
            "UPDATE xero_sync.export_run SET invoices_selected = %s, credit_notes_selected = %s WHERE run_id = %s",
            (selected.get("invoice", 0), selected.get("credit_note", 0), run_id),
        )
    refresh_work_list_statistics(conn)
    return {"invoices": selected.get("invoice", 0), "credit_notes": selected.get("credit_note", 0)}


def refresh_work_list_statistics(conn: psycopg.Connection) -> None:
    """After a bulk change of the work list (a million rows can change stage at once).

    With stale statistics the planner believes no row is 'ready' (or in a chunk) and picks a nested
    loop over a sequential scan: quadratic. ANALYZE samples, so it costs little at any size.
    """
    conn.execute("ANALYZE xero_sync.run_document")


def exporting_tenants(conn: psycopg.Connection, run_id: int) -> list[tuple[str, str]]:
    """(tenant_id, organisation label) for each organisation this run still exports to."""
    return [tuple(row) for row in conn.execute(load_sql("run_exporting_tenants"), {"run_id": run_id})]


def stop_tenant(conn: psycopg.Connection, run_id: int, tenant_id: str, detail: str) -> None:
    with conn.transaction():
        conn.execute(load_sql("run_stop_tenant"), {"run_id": run_id, "tenant_id": tenant_id, "detail": detail})


def tenant_stopped(conn: psycopg.Connection, run_id: int, tenant_id: str) -> bool:
    row = conn.execute(
        "SELECT 1 FROM xero_sync.run_entity WHERE run_id = %s AND tenant_id = %s AND decision = 'stopped' LIMIT 1",
        (run_id, tenant_id),
    ).fetchone()
    return row is not None


def record_api_call(
    conn: psycopg.Connection,
    run_id: int | None,
    call: ApiCall,
    *,
    chunk_no: int | None = None,
    item_count: int = 0,
    outcome: list[dict[str, Any]] | None = None,
) -> None:
    """One api_log row per HTTP exchange. The caller decides the transaction it belongs to."""
    conn.execute(
        load_sql("api_log_insert"),
        {
            "run_id": run_id,
            "tenant_id": call.tenant_id,
            "method": call.method,
            "endpoint": call.endpoint,
            "chunk_no": chunk_no,
            "item_count": item_count,
            "http_status": call.http_status,
            "started_at": call.started_at,
            "duration_ms": call.duration_ms,
            "idempotency_key": call.idempotency_key,
            "rate_limits": Jsonb(call.rate_limits) if call.rate_limits else None,
            "outcome": Jsonb(outcome) if outcome is not None else None,
            "error": call.error,
        },
    )
