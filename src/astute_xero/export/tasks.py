"""The bodies of the export DAG's tasks: connections in, domain calls, small results out.

Between tasks only the run id and chunk keys travel (XCom); everything else is
in the database.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import logging
import os
from contextlib import closing
from pathlib import Path
from typing import Any

from airflow.sdk.exceptions import AirflowFailException, AirflowSkipException

from astute_xero.export import allocation, backlog, chunk_planning, contacts, lanes, organisations, sync_state
from astute_xero.operations import actions as operations
from astute_xero.sql import load_sql
from astute_xero.report import integration as report
from astute_xero.report import run_summary
from astute_xero.export.documents import CREDIT_NOTE, INVOICE, KINDS
from astute_xero.dag_policy import CHUNK_WRITE_BACK_MARGIN, LANE_TIMEOUT
from astute_xero.hooks import XeroHook, astute_connection
from astute_xero.operations.migrations import apply_migrations
from astute_xero.xero.client import ApiCall, XeroClient
from astute_xero.xero.tokens import XeroAuthorisationError

log = logging.getLogger(__name__)


def run_scope(
    params: dict[str, Any],
    data_interval_end: dt.datetime | None,
    *,
    backfill_interval_start: dt.datetime | None = None,
) -> sync_state.RunScope:
    """The trigger form's values, with the defaults: every linked entity, everything up to the interval's end.

    A backfill run re-runs its own past interval: it looks only at items dated within it.
    """
    entity_ids = params.get("billing_entity_ids") or None
    if params.get("date_from"):
        date_from = dt.date.fromisoformat(params["date_from"])
    else:
        date_from = backfill_interval_start.date() if backfill_interval_start else None
    if params.get("date_to"):
        date_to = dt.date.fromisoformat(params["date_to"])
    else:
        end = data_interval_end or dt.datetime.now(dt.timezone.utc)
        date_to = (end - dt.timedelta(microseconds=1)).date()  # the interval's end is exclusive
    if date_from and date_from > date_to:
        raise AirflowFailException(f"Dated from (date_from) {date_from} is after Dated up to (date_to) {date_to}: "
                                   "nothing could match. Set Dated from on or before Dated up to, or leave either empty.")
    ids = []
    for value in entity_ids or []:
        if not str(value).strip().isdigit():
            raise AirflowFailException(f"Billing entities (billing_entity_ids): {value!r} is not a billing entity id. "
                                       "Choose the entities from the list, or give their ids, e.g. [1, 2].")
        ids.append(int(value))
    return sync_state.RunScope(ids or None, date_from, date_to)


def map_limit() -> int:
    """Airflow's [core] max_map_length: the most mapped chunk tasks of one kind a run may have."""
    from airflow.sdk.configuration import conf

    return conf.getint("core", "max_map_length", fallback=chunk_planning.MAX_MAP_LENGTH)


def _day_budgets(conn, run_id: int, tenants: list[str] | None = None) -> dict:
    tenants = tenants if tenants is not None else [tenant for tenant, _ in sync_state.exporting_tenants(conn, run_id)]
    pacer = XeroHook().pacer()
    try:
        return pacer.day_budgets(tenants)
    finally:
        pacer.close()


def _each_organisation(run_id: int) -> organisations.Runner:
    """Every organisation of the step side by side, each with its own connection and Xero client."""
    return organisations.side_by_side(astute_connection, lambda: _xero_client(run_id))


def _xero_client(run_id: int) -> XeroClient:
    """The run's Xero client; a preview's only reads (every other call is refused before it is sent)."""
    def log_retried(call: ApiCall) -> None:
        with closing(astute_connection()) as conn:
            sync_state.record_api_call(conn, run_id, call)

    with closing(astute_connection()) as conn:
        previewing = sync_state.is_preview(conn, run_id)
    try:
        return XeroHook().client(on_retried_call=log_retried, read_only=previewing)
    except XeroAuthorisationError as error:
        raise AirflowFailException(str(error)) from None


def start_export_run(
    dag_id: str,
    airflow_run_id: str,
    params: dict[str, Any],
    data_interval_end: dt.datetime | None,
    backfill_interval_start: dt.datetime | None = None,
) -> int:
    scope = run_scope(params, data_interval_end, backfill_interval_start=backfill_interval_start)
    with closing(astute_connection()) as conn:
        applied = apply_migrations(conn)
        if applied:
            log.info("xero_sync migrations applied: %s", ", ".join(applied))
        kind = sync_state.PREVIEW if params.get("preview") else sync_state.EXPORT
        run_id = sync_state.start_run(conn, kind=kind, dag_id=dag_id, airflow_run_id=airflow_run_id, scope=scope,
                                      continues_run_id=params.get("continues_run_id"))
        try:
            decisions = sync_state.decide_entities(conn, run_id, scope.billing_entity_ids)
        except ValueError as error:
            raise AirflowFailException(str(error)) from None
    for decision in decisions:
        log.info("billing entity %s (%s): %s%s", decision.billing_entity_id, decision.entity_name,
                 decision.decision, f" - {decision.detail}" if decision.detail else "")
    log.info("export run %s: invoices dated %s to %s", run_id, scope.date_from or "the beginning", scope.date_to)
    if kind == sync_state.PREVIEW:
        log.info("export run %s is a PREVIEW: it reads Xero and stops before the first write; nothing is sent, "
                 "no export flag or Contact link changes", run_id)
    return run_id


def extract_documents(run_id: int) -> dict[str, int]:
    """The run's work list: per organisation, what it can send this run (map limit, day's budget) and what
    waits for a fix; the rest of a backlog stays for the runs that continue it."""
    with closing(astute_connection()) as conn:
        scope = sync_state.run_scope(conn, run_id)
        budgets = _day_budgets(conn, run_id)
        capacity = backlog.selection_capacity(backlog.outstanding(conn, run_id, scope), budgets, map_limit())
        selected = sync_state.select_documents(conn, run_id, scope, capacity)
    for tenant_id, documents in capacity.items():
        log.info("organisation %s: room for %d document(s) this run (%d call(s) of its day left)",
                 tenant_id, documents, budgets[tenant_id].remaining)
    log.info("export run %s: %d Sent invoice(s) and %d Sent credit note(s) to export",
             run_id, selected["invoices"], selected["credit_notes"])
    return selected


def validate_documents(run_id: int) -> dict[str, int]:
    # Imported here: validation needs pandas and Great Expectations, which no other task does (every task
    # process parses this DAG's imports, so they would cost every chunk task seconds).
    from astute_xero.export import run_validation
    from astute_xero.export.validation import DocumentValidator

    with closing(astute_connection()) as conn, closing(_xero_client(run_id)) as client:
        result = run_validation.validate_run(conn, client, run_id, DocumentValidator(), _each_organisation(run_id))
    log.info("export run %s: %d checked, %d held back by validation", run_id, result.checked, result.held)
    return dataclasses.asdict(result)


def resolve_contacts(run_id: int) -> dict[str, int]:
    with closing(astute_connection()) as conn, closing(_xero_client(run_id)) as client:
        result = contacts.resolve_contacts(conn, client, run_id, _each_organisation(run_id))
    return dataclasses.asdict(result)


def plan_chunks(run_id: int) -> dict[str, int]:
    with closing(astute_connection()) as conn:
        calls_left = {tenant: budget.remaining for tenant, budget in _day_budgets(conn, run_id).items()}
        keys = chunk_planning.plan_chunks(conn, run_id, sync_state.exporting_tenants(conn, run_id),
                                          map_limit=map_limit(), calls_left=calls_left)
    planned = {kind.plural: sum(1 for key in keys if key.kind == kind.name) for kind in (INVOICE, CREDIT_NOTE)}
    log.info("export run %s: %d invoice chunk(s) and %d credit-note chunk(s) planned",
             run_id, planned[INVOICE.plural], planned[CREDIT_NOTE.plural])
    return planned


def export_lanes(run_id: int, kind: str) -> list[dict[str, Any]]:
    """The run's planned chunks of one kind as lanes, one per mapped export task (keys only, never documents;
    see astute_xero.export.lanes). A preview sends none: its mapped export tasks get no lane (Airflow shows
    them skipped)."""
    from airflow.sdk.configuration import conf

    with closing(astute_connection()) as conn:
        if sync_state.is_preview(conn, run_id):
            (planned,) = conn.execute(load_sql("run_chunks_of_kind"), {"run_id": run_id, "kind": kind}).fetchone()
            log.info("export run %s is a preview: its %d planned %s chunk(s) are not sent", run_id, planned, kind)
            return []
        keys = chunk_planning.chunk_keys(conn, run_id, KINDS[kind])
    limits = XeroHook().limits()
    lane_chunks = conf.getint("astute_xero", "lane_chunks", fallback=lanes.LANE_CHUNKS)
    planned = lanes.plan_lanes(keys, lambda tenant_id: limits.of(tenant_id).concurrent, lane_chunks=lane_chunks)
    for lane in planned:
        log.info("lane %d of %d: %s, %d at once", lane.lane_no, lane.lane_count, lane.label, lane.threads)
    return [lane.to_xcom() for lane in planned]


def lane_label(lane: dict[str, Any]) -> str:
    return lanes.Lane.from_xcom(lane).label


def export_lane(lane_value: dict[str, Any]) -> dict[str, int]:
    """Export a lane's chunks; then, if any failed, fail naming each (Airflow's retry exports only what is
    unfinished)."""
    lane = lanes.Lane.from_xcom(lane_value)
    run_id = lane.chunks[0].run_id
    bound = lanes.deadline_for((LANE_TIMEOUT - CHUNK_WRITE_BACK_MARGIN).total_seconds())  # see dag_policy
    result = lanes.export_lane(lane, astute_connection, lambda: bound(_xero_client(run_id)))
    for label, outcome in result.results.items():
        log.info("%s: %s", label, outcome)
        if outcome.waiting:
            log.info("%s: %d credit note(s) wait for their invoice, which is not in Xero yet", label, outcome.waiting)
    totals = result.totals()
    log.info("%s: %d of %d chunk(s) done, %d failed; %d document(s) exported, %d refused by Xero (at most %d "
             "calls at once)", lane.label, totals["chunks_done"], len(lane.chunks), totals["chunks_failed"],
             totals["exported"], totals["failed"], result.peak_threads)
    if result.failures:
        for failure in result.failures:
            log.error("%s failed: %s", failure.key.label, failure.error)
        named = "; ".join(f"{failure.key.label}: {failure.error}" for failure in result.failures)
        message = (f"{len(result.failures)} of {len(lane.chunks)} chunk(s) failed ({named}). The others are done; "
                   "a retry (or clearing this task) exports only what is unfinished.")
        if all(isinstance(failure.error, AirflowFailException) for failure in result.failures):
            raise AirflowFailException(message)
        raise lanes.LaneFailed(message) from result.failures[0].error
    return totals


def allocate_credit_notes(run_id: int) -> dict[str, int]:
    _skip_for_preview(run_id, "a preview allocates nothing")
    with closing(astute_connection()) as conn, closing(_xero_client(run_id)) as client:
        result = allocation.allocate_run(conn, client, run_id, _each_organisation(run_id))
    log.info("export run %s: %d credit note(s) allocated, %d with nothing to apply, %d refused by Xero",
             run_id, result.allocated, result.nothing, result.failed)
    return dataclasses.asdict(result)


def _skip_for_preview(run_id: int, why: str) -> None:
    """A step after the first write does nothing for a preview: skipped, so the grid says so."""
    with closing(astute_connection()) as conn:
        previewing = sync_state.is_preview(conn, run_id)
    if previewing:
        raise AirflowSkipException(f"export run {run_id} is a preview: {why}")


def write_back_run(run_id: int) -> str:
    with closing(astute_connection()) as conn:
        summary = run_summary.finish_run(conn, run_id, previewed=sync_state.is_preview(conn, run_id))
    return summary.status


def report_directory() -> Path:
    """Where the export writes the Xero Integration report pages (XERO_REPORT_DIR, else $AIRFLOW_HOME/reports)."""
    configured = os.environ.get("XERO_REPORT_DIR")
    return Path(configured) if configured else Path(os.environ.get("AIRFLOW_HOME", "~/airflow")).expanduser() / "reports"


def summarise_run(run_id: int) -> dict[str, Any]:
    with closing(astute_connection()) as conn:
        if sync_state.is_preview(conn, run_id):
            return _summarise_preview(conn, run_id)
        summary = run_summary.summarise_run(conn, run_id)
        scope = sync_state.run_scope(conn, run_id)
        log.info("\n%s\n%s", run_summary.render_summary(summary), "\n".join(
            f"Left for later, organisation {b.tenant_id}: {b.describe()}" for b in _backlogs(conn, run_id, scope)))
        for entity in summary.entities:
            if entity.decision.startswith("skipped"):
                continue
            integration = report.build_report(conn, entity.billing_entity_id, scope.date_from, scope.date_to)
            page = report.write_html(integration, report_directory())
            log.info("\n%s\nHTML report: %s", report.render_text(integration), page)
    if summary.unfinished:
        raise AirflowFailException(
            f"{summary.unfinished} document(s) of export run {run_id} were not finished because an upstream task "
            "failed (see its log); clear the failed tasks to finish them, or the next run picks them up."
        )
    return {"run_id": run_id, "status": summary.status, "exported": summary.exported,
            "failed": summary.failed, "held": summary.held}


def _summarise_preview(conn, run_id: int) -> dict[str, Any]:
    """A preview's summary (what would go, be held back, wait, be left for later) and the report pages, which
    show it as the latest preview."""
    scope = sync_state.run_scope(conn, run_id)
    left = {b.tenant_id: b.budget for b in _backlogs(conn, run_id, scope)}
    summary = run_summary.summarise_preview(conn, run_id, scope.date_from, scope.date_to, left)
    log.info("\n%s", run_summary.render_preview(summary))
    for entity, plan in summary.entities:
        if plan is None:
            continue
        integration = report.build_report(conn, entity.billing_entity_id, scope.date_from, scope.date_to)
        page = report.write_html(integration, report_directory())
        log.info("\n%s\nHTML report: %s", report.render_text(integration), page)
    return {"run_id": run_id, "status": "previewed", "would_go": summary.would_go, "chunks": summary.chunks,
            "contacts_to_create": summary.contacts_to_create, "held": summary.held, "waiting": summary.waiting}


def _backlogs(conn, run_id: int, scope: sync_state.RunScope) -> list[backlog.OrganisationBacklog]:
    """What each organisation of the run leaves waiting, and when Xero's budget returns for it."""
    tenants = [row[0] for row in conn.execute(
        "SELECT DISTINCT tenant_id FROM xero_sync.run_entity WHERE run_id = %s AND decision IN ('export', 'stopped')",
        (run_id,))]
    return backlog.organisation_backlogs(conn, run_id, scope, _day_budgets(conn, run_id, tenants))


def continuation_run_id(airflow_run_id: str, export_run_id: int) -> str:
    """The Airflow run id of the run that continues export run `export_run_id`, started by the Airflow run
    `airflow_run_id`. Unique per Airflow run: xero_sync's run ids start again after the Astute database is
    restored from a backup, Airflow's never repeat (a continuation named after the export run alone was
    refused as already there, and skipped). The same for a retry of the task, which then finds its run
    already triggered. Hashed, as Airflow's run ids can be long; the export run id keeps it readable."""
    digest = hashlib.sha256(airflow_run_id.encode()).hexdigest()[:12]
    return f"continues_{export_run_id}_{digest}"


def continue_backlog(run_id: int) -> dict[str, Any] | None:
    """Whether a run should continue this one's backlog: the continuation's Airflow `run_id`, its trigger form
    (`conf`: the same scope) and when it may start (`not_before`, ISO; None: at once), or None. Logs, per
    organisation, what waits and when Xero's budget returns. A preview is followed by nothing: it is skipped."""
    _skip_for_preview(run_id, "no run follows a preview")
    with closing(astute_connection()) as conn:
        scope = sync_state.run_scope(conn, run_id)
        backlogs = _backlogs(conn, run_id, scope)
        sent, airflow_run_id = conn.execute(load_sql("run_continuation_facts"), {"run_id": run_id}).fetchone()
    decision = backlog.continuation(backlogs, sent, dt.datetime.now(dt.timezone.utc))
    log.info("export run %s: %s: %s", run_id, "a run continues its backlog" if decision.follow else "no run follows",
             decision.reason)
    if not decision.follow:
        return None
    return {"run_id": continuation_run_id(airflow_run_id, run_id), "conf": {**scope.as_json(), "continues_run_id": run_id},
            "not_before": decision.not_before.isoformat() if decision.not_before else None}


def mock_export(dag_id: str, airflow_run_id: str, params: dict[str, Any]) -> str:
    migration_date = dt.date.fromisoformat(params["migration_date"]) if params.get("migration_date") else None
    with closing(astute_connection()) as conn:
        apply_migrations(conn)
        try:
            result = operations.mock_export(conn, billing_entity_id=int(params["billing_entity_id"]),
                                            migration_date=migration_date, dag_id=dag_id, airflow_run_id=airflow_run_id)
        except ValueError as error:
            raise AirflowFailException(str(error)) from None
    log.info("%s", result.describe())
    return result.describe()


def reset_for_export(params: dict[str, Any]) -> dict[str, list[str]]:
    def day(name: str) -> dt.date | None:
        return dt.date.fromisoformat(params[name]) if params.get(name) else None

    with closing(astute_connection()) as conn:
        apply_migrations(conn)
        try:
            result = operations.reset_for_export(
                conn, invoice_ids=[int(i) for i in params.get("invoice_ids") or []],
                credit_note_ids=[int(i) for i in params.get("credit_note_ids") or []],
                billing_entity_id=params.get("billing_entity_id"), date_from=day("date_from"), date_to=day("date_to"),
            )
        except ValueError as error:
            raise AirflowFailException(str(error)) from None
    log.info("reset for export: %d item(s): %s", len(result.reset), ", ".join(result.reset) or "none")
    if result.refused:
        raise AirflowFailException(
            f"{len(result.refused)} item(s) not reset ({len(result.reset)} others were):\n- " + "\n- ".join(result.refused)
        )
    return {"reset": result.reset}


def remove_contact_link(params: dict[str, Any]) -> list[str]:
    with closing(astute_connection()) as conn:
        apply_migrations(conn)
        removed = operations.remove_contact_links(conn, customer_id=int(params["customer_id"]),
                                                  tenant_id=params.get("tenant_id") or None)
    if not removed:
        log.info("customer %s had no Contact link%s: nothing to remove", params["customer_id"],
                 f" in organisation {params['tenant_id']}" if params.get("tenant_id") else "")
    for line in removed:
        log.info("customer %s: link removed, %s; the next export finds or creates its Contact again",
                 params["customer_id"], line)
    return removed
