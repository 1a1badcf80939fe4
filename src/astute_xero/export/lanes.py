"""Lanes: the export's mapped tasks, each a slice of a run's chunks of one kind, worked a few at a time.

A chunk (at most 100 documents) stays the unit of work: one Xero call, one API-log row, its own state in
`xero_sync.export_chunk`, exported by the protocol of `chunk_export`. What changed is what one Airflow task
does. A mapped task per chunk paid a whole task start (the task process parsing the DAG file, the supervisor,
the scheduler: about 2 CPU-seconds, BENCHMARKS.md) for one 2.5 s call and about 0.03 s of our own work. A lane
pays it once for up to `LANE_CHUNKS` chunks, and works them with a few threads, so that an organisation's calls
still go up to its concurrency (the pacer holds the organisation's limits across threads, processes and hosts).

How a run's chunks become lanes (`plan_lanes`), sized from the run:

* an organisation's chunks are cut in slices of at most `LANE_CHUNKS` (a slice at Xero's bound, 60 calls a
  minute, lasts under a minute or a few: the unit Airflow shows, retries and times out);
* slices smaller than that, of different organisations, share a lane (fifty organisations with three chunks
  each are three lanes, not fifty or a hundred and fifty tasks);
* a lane's threads: an organisation with one slice gets its concurrency (5) in it; one with several slices
  shares its concurrency among them (their lanes run side by side in the `xero_api` pool); and each slice one
  thread more than its share, which claims and builds its next chunk while the others are at Xero and takes
  the first slot that frees (the pacer keeps the organisation at its concurrency); at most `LANE_THREADS` in
  one lane (each thread holds two database connections: its own and its pacer's);
* lanes are listed round-robin over organisations (every organisation's first slice, then every second):
  Airflow starts mapped tasks in this order, so a large backlog never queues ahead of a small one.

A lane's chunks go round-robin over its organisations; one chunk's failure never stops the others: the lane
finishes what it can, then fails naming each failed chunk, and Airflow's retry (or clearing the task) exports
only what is unfinished (a finished chunk is skipped without a call: the protocol is safe to repeat).
"""

from __future__ import annotations

import dataclasses
import math
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import psycopg

from astute_xero.export.chunk_export import ChunkKey, ChunkResult, export_chunk
from astute_xero.xero.client import XeroClient

LANE_CHUNKS = 50
LANE_THREADS = 6  # an organisation's 5 calls at Xero, and one more getting its next chunk ready


@dataclass(frozen=True)
class Lane:
    """What crosses XCom for one mapped export task: its chunks' keys and how many to work at once."""

    lane_no: int
    lane_count: int
    threads: int
    chunks: tuple[ChunkKey, ...]

    @property
    def label(self) -> str:
        """The mapped task's name in the UI: its organisations and chunks (one organisation: which of them)."""
        kind = self.chunks[0].document_kind.plural
        by_organisation = _by_organisation(self.chunks)
        if len(by_organisation) == 1:
            (keys,) = by_organisation.values()
            numbers = [key.chunk_no for key in keys]
            span = f"chunk {numbers[0]}" if len(numbers) == 1 else f"chunks {numbers[0]}-{numbers[-1]}"
            return f"{keys[0].organisation} · {kind} · {span} of {keys[0].chunk_count}"
        names = sorted({keys[0].organisation for keys in by_organisation.values()})
        shown = ", ".join(names[:3]) + (f" and {len(names) - 3} more" if len(names) > 3 else "")
        return f"{shown} · {kind} · {len(self.chunks)} chunks"

    def to_xcom(self) -> dict[str, Any]:
        return {"lane_no": self.lane_no, "lane_count": self.lane_count, "threads": self.threads,
                "chunks": [dataclasses.asdict(key) for key in self.chunks]}

    @classmethod
    def from_xcom(cls, value: dict[str, Any]) -> Lane:
        return cls(value["lane_no"], value["lane_count"], value["threads"],
                   tuple(ChunkKey(**key) for key in value["chunks"]))


class LaneFailed(RuntimeError):
    """Some of a lane's chunks failed (each named); the others are done."""


@dataclass(frozen=True)
class ChunkFailure:
    key: ChunkKey
    error: Exception


@dataclass
class LaneResult:
    results: dict[str, ChunkResult] = dataclasses.field(default_factory=dict)  # by chunk label
    failures: list[ChunkFailure] = dataclasses.field(default_factory=list)
    peak_threads: int = 0
    cpu_s: float = 0.0  # the lane's own CPU (this process, every thread): what the export costs beside Airflow

    def totals(self) -> dict[str, int]:
        fields = ("exported", "failed", "reconciled", "skipped", "waiting", "held")
        totals = {name: sum(getattr(result, name) for result in self.results.values()) for name in fields}
        totals["chunks_done"] = len(self.results)
        totals["chunks_failed"] = len(self.failures)
        totals["chunks_stopped"] = sum(1 for result in self.results.values() if result.stopped)
        totals["own_cpu_ms"] = round(self.cpu_s * 1000)
        return totals


def plan_lanes(
    keys: Iterable[ChunkKey], concurrency: Callable[[str], int], *, lane_chunks: int = LANE_CHUNKS,
    lane_threads: int = LANE_THREADS,
) -> list[Lane]:
    """The run's chunks of one kind as lanes (see the module's docstring); `concurrency(tenant_id)` is how many
    calls the organisation may have in progress at once."""
    by_organisation = _by_organisation(keys)
    # Every organisation's chunks in slices of near-equal size, at most lane_chunks each.
    slices: dict[str, list[list[ChunkKey]]] = {}
    for tenant_id, chunks in by_organisation.items():
        count = math.ceil(len(chunks) / lane_chunks)
        size = math.ceil(len(chunks) / count)
        slices[tenant_id] = [chunks[i:i + size] for i in range(0, len(chunks), size)]
    # Round-robin over organisations; a partial slice joins an open lane with room for it.
    lanes: list[list[list[ChunkKey]]] = []
    open_lane: list[list[ChunkKey]] | None = None
    for round_no in range(max((len(s) for s in slices.values()), default=0)):
        for tenant_id in by_organisation:
            if round_no >= len(slices[tenant_id]):
                continue
            piece = slices[tenant_id][round_no]
            if len(piece) == lane_chunks:
                lanes.append([piece])
                continue
            if open_lane is None or sum(map(len, open_lane)) + len(piece) > lane_chunks:
                open_lane = [piece]
                lanes.append(open_lane)
            else:
                open_lane.append(piece)
    planned = []
    for number, pieces in enumerate(lanes, start=1):
        threads = sum(
            min(len(piece), math.ceil(concurrency(piece[0].tenant_id) / len(slices[piece[0].tenant_id])) + 1)
            for piece in pieces
        )
        chunks = tuple(_round_robin(pieces))
        planned.append(Lane(number, len(lanes), max(1, min(lane_threads, threads)), chunks))
    return planned


def export_lane(
    lane: Lane, connect: Callable[[], psycopg.Connection], make_client: Callable[[], XeroClient],
) -> LaneResult:
    """Export the lane's chunks, `lane.threads` at once, each thread with its own connection and Xero client
    (neither is shared between threads); every chunk has its turn whatever another's outcome. A client that
    cannot be made (the app's authorisation refused) fails the lane with its own error, once the lane's other
    threads are done."""
    result = LaneResult()
    lock = threading.Lock()
    local = threading.local()
    opened: list[Any] = []
    in_progress = 0

    def one(key: ChunkKey) -> None:
        nonlocal in_progress
        if not hasattr(local, "client"):
            local.conn = connect()
            with lock:
                opened.append(local.conn)
            local.client = make_client()
            with lock:
                opened.append(local.client)
        with lock:
            in_progress += 1
            result.peak_threads = max(result.peak_threads, in_progress)
        try:
            outcome = export_chunk(local.conn, local.client, key)
        except Exception as error:  # noqa: BLE001 - every chunk has its turn; the lane reports them all after
            with lock:
                result.failures.append(ChunkFailure(key, error))
            if local.conn.closed or local.conn.info.transaction_status == psycopg.pq.TransactionStatus.INERROR:
                _reconnect(local, connect, lock, opened)
        else:
            with lock:
                result.results[key.label] = outcome
        finally:
            with lock:
                in_progress -= 1

    cpu_before = time.process_time()
    try:
        with ThreadPoolExecutor(max_workers=lane.threads, thread_name_prefix="lane") as pool:
            list(pool.map(one, lane.chunks))
    finally:
        for resource in opened:
            _close_quietly(resource)
    result.cpu_s = time.process_time() - cpu_before
    return result


def deadline_for(seconds: float) -> Callable[[XeroClient], XeroClient]:
    """Tell each thread's client the lane's own deadline (the task's timeout, from the lane's start)."""
    finish_by = time.monotonic() + seconds

    def bound(client: XeroClient) -> XeroClient:
        client.finish_within(finish_by - time.monotonic())
        return client

    return bound


def _by_organisation(keys: Iterable[ChunkKey]) -> dict[str, list[ChunkKey]]:
    """Chunks per organisation, organisations in their first chunk's order, chunks by number."""
    grouped: dict[str, list[ChunkKey]] = defaultdict(list)
    for key in keys:
        grouped[key.tenant_id].append(key)
    return {tenant_id: sorted(chunks, key=lambda k: k.chunk_no) for tenant_id, chunks in grouped.items()}


def _round_robin(pieces: list[list[ChunkKey]]) -> Iterable[ChunkKey]:
    for position in range(max(map(len, pieces))):
        for piece in pieces:
            if position < len(piece):
                yield piece[position]


def _reconnect(local: threading.local, connect: Callable[[], psycopg.Connection], lock: threading.Lock,
               opened: list[Any]) -> None:
    """A chunk that failed inside a transaction (a lost connection) leaves the thread a fresh connection."""
    _close_quietly(local.conn)
    local.conn = connect()
    with lock:
        opened.append(local.conn)


def _close_quietly(resource: Any) -> None:
    try:
        resource.close()
    except Exception:  # noqa: BLE001 - closing after the work; nothing to save
        pass
