"""Issue 22: lanes, the export's mapped tasks, each a slice of a run's chunks worked a few at a time.

How a run's chunks become lanes (pure), then lanes exported against real PostgreSQL and the sandbox over HTTP:
an organisation's chunks go 5 calls at once and never 6, one chunk per call and API-log row, and a chunk that
fails is named while the lane's other chunks are done, its retry sending only what is unfinished.
"""

from __future__ import annotations

from collections import Counter
from contextlib import closing

import pytest

from astute_xero.export import lanes
from astute_xero.report import run_summary
from astute_xero.export.chunk_export import ChunkKey
from tests.astute_xero.test_throughput import ORGS, Orgs


def keys(chunks_per_organisation: dict[str, int], kind: str = "invoice") -> list[ChunkKey]:
    """A run's chunk keys as chunk_planning lists them: round-robin over organisations."""
    listed = [
        ChunkKey(1, tenant, kind, number, count, f"Org {tenant}")
        for tenant, count in chunks_per_organisation.items() for number in range(1, count + 1)
    ]
    return sorted(listed, key=lambda key: (key.chunk_no, key.tenant_id))


FORBIDDEN = (b'{"Type": null, "Title": "Forbidden", "Status": 403, '
             b'"Detail": "AuthenticationUnsuccessful", "Instance": "x"}')


def five(_: str) -> int:
    return 5


def test_fifty_small_organisations_share_three_lanes_of_five_calls_at_once():
    tenants = {f"t{n:02d}": 3 for n in range(50)}
    planned = lanes.plan_lanes(keys(tenants), five)
    assert [len(lane.chunks) for lane in planned] == [48, 48, 48, 6], "whole organisations, up to 50 chunks a lane"
    assert all(lane.threads == 6 for lane in planned), "5 calls at Xero and one getting its next chunk ready"
    assert Counter(key for lane in planned for key in lane.chunks) == Counter(keys(tenants)), "every chunk once"
    for lane in planned:  # an organisation's chunks stay together in one lane
        assert all(len({key.tenant_id for key in lane.chunks if key.tenant_id == t}) <= 1 for t in tenants)
    first = planned[0].chunks
    assert [key.tenant_id for key in first[:16]] == sorted(tenants)[:16], "round-robin over its organisations"
    assert (planned[0].lane_no, planned[0].lane_count) == (1, 4)
    assert planned[0].label == "Org t00, Org t01, Org t02 and 13 more · invoices · 48 chunks"


def test_a_large_organisation_is_sliced_and_its_five_calls_shared_among_its_slices():
    planned = lanes.plan_lanes(keys({"big": 120}), five)
    assert [len(lane.chunks) for lane in planned] == [40, 40, 40]
    assert [lane.threads for lane in planned] == [3, 3, 3], "5 calls at once shared by its 3 lanes, rounded up, +1"
    assert [key.chunk_no for key in planned[1].chunks] == list(range(41, 81)), "consecutive chunks per slice"
    assert planned[1].label == "Org big · invoices · chunks 41-80 of 120"
    sliced = lanes.plan_lanes(keys({"big": 1000}), five)
    assert len(sliced) == 20 and {lane.threads for lane in sliced} == {2}


def test_organisations_each_get_their_own_lane_when_they_fill_one_and_lanes_go_round_robin():
    planned = lanes.plan_lanes(keys({"a": 40, "b": 40, "c": 40}), five)
    assert [{key.tenant_id for key in lane.chunks} for lane in planned] == [{"a"}, {"b"}, {"c"}]
    assert [lane.threads for lane in planned] == [6, 6, 6]
    mixed = lanes.plan_lanes(keys({"big": 150, "small": 2}), five)
    owners = [sorted({key.tenant_id for key in lane.chunks}) for lane in mixed]
    assert owners == [["big"], ["small"], ["big"], ["big"]], "the small one's lane is second, not after the backlog"
    assert mixed[1].threads == 2, "no more threads than chunks"
    assert mixed[0].threads == 3, "its 5 shared by its 3 slices (2 each, rounded up), and one more"


def test_an_organisation_with_a_lower_concurrency_keeps_it():
    planned = lanes.plan_lanes(keys({"slow": 10, "fast": 10}), lambda tenant: 2 if tenant == "slow" else 5)
    (lane,) = planned
    assert lane.threads == 6, "capped at LANE_THREADS: 3 + 6 would be 9"


def test_lanes_cross_xcom_as_keys_only():
    (lane,) = lanes.plan_lanes(keys({"a": 3}), five)
    value = lane.to_xcom()
    assert set(value) == {"lane_no", "lane_count", "threads", "chunks"}
    assert lanes.Lane.from_xcom(value) == lane


def test_a_lane_exports_an_organisations_chunks_five_calls_at_once_never_six(db, xero, database_url):
    orgs = Orgs(db, xero, database_url, {ORGS[0]: 1200})
    run_id, chunk_keys = orgs.prepare()
    (lane,) = lanes.plan_lanes(chunk_keys, five)
    assert (len(lane.chunks), lane.threads) == (12, 6)
    # Held long enough that the lane's first five PUTs are in progress together on a loaded machine (see
    # test_throughput: the in-process sandbox parses each 100-invoice body under the same GIL).
    xero.backend.faults.latency(1.5, path_prefix="/api.xro/2.0/Invoices")

    result = lanes.export_lane(lane, orgs.connect, orgs.client)

    assert result.failures == [] and result.totals()["exported"] == 1200
    stats = xero.backend.call_stats(ORGS[0])
    assert stats.peak_in_flight == 5, "the organisation's 5 calls at once, never 6"
    assert stats.refused == {}
    assert Counter(orgs.in_xero(ORGS[0])) == Counter(f"0-{i}" for i in range(1200)), "each invoice once"
    puts = db.execute("SELECT chunk_no, count(*) FROM xero_sync.api_log WHERE run_id = %s AND method = 'PUT' "
                      "AND endpoint = 'Invoices' "
                      "GROUP BY 1 ORDER BY 1", (run_id,)).fetchall()
    assert puts == [(n, 1) for n in range(1, 13)], "one call and one API-log row per chunk"


def test_an_organisation_stopped_in_a_shared_lane_leaves_the_others_to_finish(db, xero, database_url):
    orgs = Orgs(db, xero, database_url, {ORGS[0]: 300, ORGS[1]: 300})
    run_id, chunk_keys = orgs.prepare()
    (lane,) = lanes.plan_lanes(chunk_keys, five)
    assert {key.tenant_id for key in lane.chunks} == set(ORGS[:2])
    # The first PUT to arrive is refused: the organisation disconnected the app (403).
    xero.backend.faults.error_body_next(1, status=403, body=FORBIDDEN)

    result = lanes.export_lane(lane, orgs.connect, orgs.client)

    assert result.failures == [], "an organisation stopped is its own outcome, not the lane's failure"
    done = orgs.exported()
    (stopped,) = [tenant for tenant in ORGS[:2] if done[tenant] < 300]
    (other,) = set(ORGS[:2]) - {stopped}
    assert done[other] == 300, "the other organisation of the lane finished"
    assert result.totals()["chunks_stopped"] >= 1
    assert db.execute("SELECT decision FROM xero_sync.run_entity WHERE run_id = %s AND tenant_id = %s",
                      (run_id, stopped)).fetchone() == ("stopped",)


def test_a_lane_whose_chunk_call_has_no_answer_fails_naming_it_and_its_retry_finishes(db, xero, database_url):
    orgs = Orgs(db, xero, database_url, {ORGS[0]: 500, ORGS[1]: 200})
    run_id, chunk_keys = orgs.prepare()
    (lane,) = lanes.plan_lanes(chunk_keys, five)
    xero.backend.faults.drop_after_commit_next(1)  # Xero commits the first PUT; its answer never arrives

    first = lanes.export_lane(lane, orgs.connect, orgs.client)

    (failure,) = first.failures
    assert len(first.results) == len(lane.chunks) - 1, "every other chunk was done"
    assert failure.key.label in {key.label for key in lane.chunks}
    assert orgs.exported()[failure.key.tenant_id] < (500 if failure.key.tenant_id == ORGS[0] else 200)
    summary = run_summary.render_summary(run_summary.summarise_run(db, run_id))
    assert "Not finished (a task failed; retry it): 100, in invoices chunk " \
           f"{failure.key.chunk_no} (the lane whose log names the chunk failed" in summary, summary
    puts_before = len([r for r in xero.backend.requests if r.method == "PUT"])

    second = lanes.export_lane(lane, orgs.connect, orgs.client)  # Airflow's retry of the lane

    assert second.failures == []
    assert orgs.exported() == {ORGS[0]: 500, ORGS[1]: 200}
    for tenant, count in ((ORGS[0], 500), (ORGS[1], 200)):
        assert Counter(orgs.in_xero(tenant)) == Counter(f"{ORGS.index(tenant)}-{i}" for i in range(count))
    puts_after = len([r for r in xero.backend.requests if r.method == "PUT"])
    assert puts_after == puts_before, "the retry adopted what Xero committed and sent nothing again"
