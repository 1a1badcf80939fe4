from __future__ import annotations

import datetime as dt
import json

from xero_python.api_client.serializer import serialize

from astute_xero.export.chunk_planning import assign_chunks, plan_chunks, share_chunk_budget
from astute_xero.export.chunk_export import load_chunk
from astute_xero.export.mapping import to_xero
from astute_xero.operations.migrations import apply_migrations
from astute_xero.export import sync_state
from devtools.astute_data import AstuteData, Line


def test_350_invoices_make_chunks_of_100_100_100_50():
    chunks = [chunk for _, chunk, _ in assign_chunks((i, 1000) for i in range(350))]
    assert [chunks.count(n) for n in sorted(set(chunks))] == [100, 100, 100, 50]


def test_a_chunk_closes_before_it_would_pass_the_byte_budget():
    sizes = [(1, 600), (2, 600), (3, 600), (4, 100)]
    assert [c for _, c, _ in assign_chunks(sizes, max_bytes=1000)] == [1, 2, 3, 3]


def test_an_invoice_larger_than_the_budget_still_gets_a_chunk_of_its_own():
    assert [c for _, c, _ in assign_chunks([(1, 10), (2, 5000), (3, 10)], max_bytes=1000)] == [1, 2, 3]


def test_the_chunk_budget_is_shared_fairly_and_unused_shares_pass_on():
    allowed = share_chunk_budget({"a": 3, "b": 900, "c": 900}, budget=1000)
    assert allowed["a"] == 3 and sorted([allowed["b"], allowed["c"]]) == [498, 499]
    assert share_chunk_budget({"a": 10, "b": 20}, budget=1000) == {"a": 10, "b": 20}
    assert sum(share_chunk_budget({str(i): 50 for i in range(40)}, budget=1000).values()) == 1000


def test_the_size_estimate_bounds_the_real_request_body(db):
    """The planner's SQL estimate must never be below the JSON the SDK really sends."""
    apply_migrations(db)
    data = AstuteData(db)
    data.regions()
    entity = data.entity("E", tenant_id="t-1", go_live=dt.date(2026, 1, 1))
    customer = data.customer("C")
    tricky = 'Ünïcødé "quoted" \\ back\nslash \x01 ' * 100 + "😀" * 500
    for n in range(5):
        data.invoice(entity, customer, number=f"N{n}", reference="ref é" * n,
                     lines=[Line(description=tricky, tracking_name="Region", tracking_option="Nörth")] * (n + 1))
    data.flush()
    run_id = sync_state.start_run(db, kind="export", dag_id="t", airflow_run_id="r",
                                  scope=sync_state.RunScope(None, None, dt.date(2026, 12, 31)))
    sync_state.decide_entities(db, run_id, None)
    sync_state.select_documents(db, run_id, sync_state.RunScope(None, None, dt.date(2026, 12, 31)))
    db.execute("UPDATE xero_sync.run_document SET stage = 'ready'")
    db.execute("INSERT INTO xero_sync.contact_link VALUES (%s, 't-1', gen_random_uuid(), 'C')", (customer,))
    keys = plan_chunks(db, run_id, [("t-1", "Org")])
    (estimate,) = db.execute("SELECT sum(estimated_bytes) FROM xero_sync.export_chunk").fetchone()
    actual = sum(
        len(json.dumps(serialize({"Invoices": [to_xero(i) for i in load_chunk(db, key)]})).encode())
        for key in keys
    )
    assert actual < estimate < actual * 8
