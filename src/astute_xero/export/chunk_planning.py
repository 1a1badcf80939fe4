"""Chunks: at most 100 invoices (or 100 credit notes) and safely under Xero's 3.5 MB body limit, one API call each.

A chunk holds one kind of document. Per organisation, invoices are numbered first and credit
notes after them, so that a credit note is sent after the invoice it credits. Credit notes whose
invoice is neither in Xero nor going this run wait for it and get no chunk.

The planner streams (document_id, estimated size) pairs and never holds documents.
A run maps one Airflow task per chunk, so a run's chunks of one kind are capped by
Airflow's max_map_length (1024 by default), shared fairly between organisations; and
each organisation sends no more than its day's calls left allow (a chunk is one call, a
credit note that credits an invoice one more, for its allocation). What does not fit is
deferred: the run that continues the backlog takes it (see backlog.py).
"""

from __future__ import annotations

import io
from collections.abc import Iterable, Iterator

import psycopg

from astute_xero.export import sync_state
from astute_xero.export.chunk_export import ChunkKey
from astute_xero.export.documents import CREDIT_NOTE, INVOICE, DocumentKind
from astute_xero.sql import load_sql

MAX_INVOICES_PER_CHUNK = 100
MAX_CHUNK_BYTES = 3_000_000  # under Xero's ~3.5 MB with room for the envelope
MAX_MAP_LENGTH = 1024  # Airflow's [core] max_map_length default; the task passes the configured one


def assign_chunks(
    sizes: Iterable[tuple[int, int]],
    *,
    max_invoices: int = MAX_INVOICES_PER_CHUNK,
    max_bytes: int = MAX_CHUNK_BYTES,
    first_chunk_no: int = 1,
) -> Iterator[tuple[int, int, int]]:
    """(document_id, chunk_no, estimated_bytes) for each (document_id, estimated_bytes), greedily, in order."""
    chunk_no, count, size = first_chunk_no, 0, 0
    for document_id, estimated in sizes:
        if count and (count == max_invoices or size + estimated > max_bytes):
            chunk_no, count, size = chunk_no + 1, 0, 0
        count, size = count + 1, size + estimated
        yield document_id, chunk_no, estimated


def share_chunk_budget(chunks_needed: dict[str, int], budget: int = MAX_MAP_LENGTH) -> dict[str, int]:
    """How many chunks each organisation may send this run: equal shares, unused shares passed on."""
    allowed: dict[str, int] = {}
    remaining = budget
    by_need = sorted(chunks_needed.items(), key=lambda item: item[1])
    for position, (tenant, needed) in enumerate(by_need):
        allowed[tenant] = min(needed, remaining // (len(by_need) - position))
        remaining -= allowed[tenant]
    return allowed


def affordable_chunks(costs: list[int], calls_left: int | None) -> int:
    """How many of an organisation's chunks, in order, fit in the calls left of its day (None: no cap)."""
    if calls_left is None:
        return len(costs)
    spent = 0
    for count, cost in enumerate(costs):
        spent += cost
        if spent > calls_left:
            return count
    return len(costs)


def plan_chunks(
    conn: psycopg.Connection,
    run_id: int,
    tenants: list[tuple[str, str]],
    *,
    map_limit: int = MAX_MAP_LENGTH,
    calls_left: dict[str, int] | None = None,
) -> list[ChunkKey]:
    """Assign every ready document of the run to a chunk (or defer it); return the chunks to export.

    `map_limit` caps the run's mapped tasks (the chunks of each kind); `calls_left` is each organisation's
    day budget (pacing.Pacer.day_budgets), None for no cap. Rows stream from a server-side cursor into a
    COPY buffer (about 30 bytes a document); only per-chunk totals are kept in memory.

    The plan is made once, in one transaction: run again after it committed (a retry, a cleared task), this
    returns the chunks it recorded, whatever the day's budget or the map limit say now.
    """
    recorded = [*chunk_keys(conn, run_id, INVOICE), *chunk_keys(conn, run_id, CREDIT_NOTE)]
    if recorded:
        return recorded
    buffer = io.StringIO()
    totals: dict[tuple[str, int], list] = {}  # (tenant, chunk) -> [kind, documents, estimated bytes, calls]
    needed: dict[str, int] = {}
    with conn.transaction():
        conn.execute(load_sql("credit_notes_waiting"), {"run_id": run_id, "tenant_id": None, "chunk_no": None})
        for tenant_id, _ in tenants:
            for kind in (INVOICE, CREDIT_NOTE):
                with conn.cursor(name=f"chunk_sizes_{run_id}") as cursor:
                    cursor.itersize = 10_000
                    cursor.execute(load_sql("chunk_size_estimates"),
                                   {"run_id": run_id, "tenant_id": tenant_id, "kind": kind.name})
                    follow_ups: dict[int, int] = {}  # calls after the chunk, per document not yet assigned

                    def sizes(rows=cursor, follow_ups=follow_ups):
                        for document_id, size, follow_up_calls in rows:
                            follow_ups[document_id] = follow_up_calls
                            yield document_id, int(size)

                    first = needed.get(tenant_id, 0) + 1
                    for document_id, chunk_no, size in assign_chunks(sizes(), first_chunk_no=first):
                        buffer.write(f"{tenant_id}\t{kind.name}\t{document_id}\t{chunk_no}\n")
                        total = totals.setdefault((tenant_id, chunk_no), [kind.name, 0, 0, 1])
                        total[1] += 1
                        total[2] += size
                        total[3] += follow_ups.pop(document_id)
                        needed[tenant_id] = chunk_no

        # Each organisation's chunks in order, as many as its day's calls allow; then the map limit shared.
        affordable = {
            tenant_id: affordable_chunks(
                [totals[(tenant_id, n)][3] for n in range(1, count + 1)],
                None if calls_left is None else calls_left.get(tenant_id),
            )
            for tenant_id, count in needed.items()
        }
        invoice_chunks = {t: sum(1 for n in range(1, affordable[t] + 1) if totals[(t, n)][0] == INVOICE.name) for t in needed}
        allowed = _share_per_kind(affordable, invoice_chunks, map_limit)
        labels = dict(tenants)
        chunk_rows = [
            (run_id, tenant_id, kind, chunk_no, count, size)
            for (tenant_id, chunk_no), (kind, count, size, _) in sorted(totals.items())
            if chunk_no <= allowed[tenant_id]
        ]
        conn.execute(
            "CREATE TEMP TABLE chunk_assignment (tenant_id text, kind text, document_id bigint, chunk_no int) ON COMMIT DROP"
        )
        with conn.cursor().copy("COPY chunk_assignment (tenant_id, kind, document_id, chunk_no) FROM STDIN") as copy:
            copy.write(buffer.getvalue())
        conn.execute(
            "CREATE TEMP TABLE chunk_allowance (tenant_id text PRIMARY KEY, chunks int) ON COMMIT DROP"
        )
        with conn.cursor() as cursor:
            cursor.executemany("INSERT INTO chunk_allowance VALUES (%s, %s)", list(allowed.items()))
            cursor.executemany(
                "INSERT INTO xero_sync.export_chunk (run_id, tenant_id, kind, chunk_no, document_count, estimated_bytes) "
                "VALUES (%s, %s, %s, %s, %s, %s)",
                chunk_rows,
            )
        conn.execute(load_sql("chunk_assign"), {"run_id": run_id})
        conn.execute(load_sql("run_count_chunks"), {"run_id": run_id, "chunks": len(chunk_rows)})
    sync_state.refresh_work_list_statistics(conn)
    return [
        ChunkKey(run_id, tenant_id, kind, chunk_no, allowed[tenant_id], labels[tenant_id])
        for run_id, tenant_id, kind, chunk_no, _, _ in chunk_rows
    ]


def _share_per_kind(affordable: dict[str, int], invoice_chunks: dict[str, int], map_limit: int) -> dict[str, int]:
    """Each organisation's first chunks within the map limit, which applies to each kind's mapped task: the
    invoice chunks (numbered first) share it, then the credit-note chunks that follow them."""
    invoices = share_chunk_budget({t: invoice_chunks[t] for t in affordable}, map_limit)
    credit_notes = share_chunk_budget(
        {t: affordable[t] - invoice_chunks[t] if invoices[t] == invoice_chunks[t] else 0 for t in affordable}, map_limit
    )
    return {t: invoices[t] + credit_notes[t] for t in affordable}


def chunk_keys(conn: psycopg.Connection, run_id: int, kind: DocumentKind) -> list[ChunkKey]:
    """The chunks of one kind that plan_chunks recorded for the run."""
    return [ChunkKey(*row) for row in conn.execute(load_sql("chunk_keys"), {"run_id": run_id, "kind": kind.name})]
