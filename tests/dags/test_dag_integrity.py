"""Every DAG imports cleanly and follows the project's policy (the Astro template's integrity test)."""

from __future__ import annotations

import datetime as dt

import pytest

from tests.conftest import REPO_ROOT


@pytest.fixture(scope="module")
def dagbag():
    from airflow.dag_processing.dagbag import DagBag

    return DagBag(dag_folder=str(REPO_ROOT / "dags"), known_pools={"xero_api"})


def test_dags_import_without_errors(dagbag):
    assert dagbag.import_errors == {}
    assert set(dagbag.dag_ids) == {
        "xero_invoice_export", "xero_historical_mock_export", "xero_reset_for_export", "xero_remove_contact_link",
        "xero_housekeeping", "xero_status_sync",
    }


# What only a running task needs: parsing a DAG file (the dag-processor's every few minutes, and every task
# process before its task) must not pay for it (astute_xero.lazy). Not xero_housekeeping: its form's default
# comes from the retention module, and it runs four tasks a day.
TASK_ONLY_MODULES = ("astute_xero.export.tasks", "astute_xero.readback.tasks", "astute_xero.operations.retention",
                     "psycopg", "xero_python", "pandas", "great_expectations")


@pytest.mark.parametrize("dag_file", sorted(p.name for p in (REPO_ROOT / "dags").glob("xero_*.py")
                                           if p.name != "xero_housekeeping.py"))
def test_parsing_a_dag_file_does_not_import_the_task_bodies(dag_file):
    import subprocess
    import sys

    probe = (
        "import runpy, sys, json; import airflow.sdk; "
        f"runpy.run_path({str(REPO_ROOT / 'dags' / dag_file)!r}); "
        f"print(json.dumps([m for m in {TASK_ONLY_MODULES!r} if m in sys.modules and "
        "type(sys.modules[m]).__name__ != '_LazyModule']))"
    )
    found = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True, cwd=REPO_ROOT)
    assert found.stdout.strip().splitlines()[-1] == "[]", f"{dag_file} imports at parse time: {found.stdout}"


def test_every_dag_has_docs_tags_an_owner_and_retries(dagbag):
    for dag_id, dag in dagbag.dags.items():
        assert dag.doc_md and len(dag.doc_md) > 200, f"{dag_id} needs doc_md for the Airflow UI"
        assert dag.tags, f"{dag_id} has no tags"
        for task in dag.tasks:
            assert task.owner != "airflow", f"{dag_id}.{task.task_id} has no owner"
            assert task.retries >= 1, f"{dag_id}.{task.task_id} is never retried"


def test_every_task_has_an_execution_timeout_fit_for_what_it_does(dagbag):
    for dag_id, dag in dagbag.dags.items():
        for task in dag.tasks:
            timeout = task.execution_timeout
            assert timeout is not None, f"{dag_id}.{task.task_id} could hang forever (no execution_timeout)"
            assert dt.timedelta(minutes=1) <= timeout <= dt.timedelta(hours=6), f"{dag_id}.{task.task_id}: {timeout}"
    export = dagbag.dags["xero_invoice_export"]
    lane = {export.get_task(name).execution_timeout for name in ("export_invoice_chunks", "export_credit_note_chunks")}
    assert len(lane) == 1 and lane.pop() <= dt.timedelta(minutes=45), "a lane is 50 calls at most: minutes"
    chunk_timeout = export.get_task("export_invoice_chunks").execution_timeout
    for long_step in ("validate_documents", "resolve_contacts", "allocate_credit_notes"):
        assert export.get_task(long_step).execution_timeout > chunk_timeout, f"{long_step} works a whole run"


def test_export_dag_shape(dagbag):
    dag = dagbag.dags["xero_invoice_export"]
    order = ["start_export_run", "extract_documents", "validate_documents", "resolve_contacts",
             "plan_chunks", "invoice_lanes", "export_invoice_chunks", "credit_note_lanes", "export_credit_note_chunks",
             "allocate_credit_notes",
             "write_back_run", "summarise_run"]
    assert sorted(dag.task_ids) == sorted(order + ["continue_backlog"])
    for upstream, downstream in zip(order, order[1:]):
        assert downstream in dag.get_task(upstream).downstream_task_ids, f"{upstream} >> {downstream}"
    for name in ("export_invoice_chunks", "export_credit_note_chunks", "allocate_credit_notes"):
        assert dag.get_task(name).pool == "xero_api"
    # Credit notes go once every invoice lane is done, whatever became of it: theirs wait if it did not go.
    assert dag.get_task("credit_note_lanes").trigger_rule == "all_done"
    assert set(dag.params) == {"billing_entity_ids", "date_from", "date_to", "preview", "continues_run_id"}
    # The preview is a checkbox in the trigger form, off unless ticked, explained by its title and description.
    preview = dag.params.get_param("preview")
    assert preview.value is False and preview.schema["type"] == "boolean"
    assert preview.schema["title"] and "Xero" in preview.description
    assert dag.get_task("continue_backlog").trigger_rule == "all_done", "a backlog goes on whatever one chunk did"
    assert "write_back_run" in dag.get_task("continue_backlog").upstream_task_ids
    # Both leaves: a summary that finds documents unfinished fails the run, whatever the continuation did.
    assert {t.task_id for t in dag.leaves} == {"summarise_run", "continue_backlog"}
    assert type(dag.timetable).__name__ == "CronDataIntervalTimetable", "backfills need real data intervals"
    assert dag.max_active_runs == 1


def test_operations_dags_are_never_scheduled(dagbag):
    for dag_id in ("xero_historical_mock_export", "xero_reset_for_export", "xero_remove_contact_link"):
        timetable = dagbag.dags[dag_id].timetable
        assert type(timetable).__name__ == "NullTimetable", f"{dag_id} runs only when a person triggers it"


def test_housekeeping_runs_daily_and_purges_and_archives_after_the_migrations(dagbag):
    dag = dagbag.dags["xero_housekeeping"]
    assert type(dag.timetable).__name__ == "CronTriggerTimetable" and dag.timetable.expression == "30 3 * * *", \
        "retention runs by itself, every day"
    assert dag.catchup is False, "a missed day is covered by the next purge"
    assert set(dag.params) == {"retention_days", "archive_api_log_before"}
    assert dag.params["archive_api_log_before"] is None, "archiving happens only when asked for"
    assert dag.get_task("apply_migrations").downstream_task_ids == {"purge_work_rows", "archive_api_log"}


def test_every_dag_alerts_when_a_run_fails(dagbag):
    from astute_xero.notifications import XeroAlertNotifier

    for dag_id, dag in dagbag.dags.items():
        callbacks = dag.on_failure_callback if isinstance(dag.on_failure_callback, list) else [dag.on_failure_callback]
        assert any(isinstance(callback, XeroAlertNotifier) for callback in callbacks), f"{dag_id} sends no alert"


def test_the_export_has_a_deadline_alert_once_configured(dagbag, monkeypatch):
    from airflow.dag_processing.dagbag import DagBag
    from airflow.sdk.definitions.callback import AsyncCallback

    assert not dagbag.dags["xero_invoice_export"].deadline  # off by default
    monkeypatch.setenv("AIRFLOW__ASTUTE_XERO__EXPORT_DEADLINE_HOURS", "6")
    export = DagBag(dag_folder=str(REPO_ROOT / "dags" / "xero_invoice_export.py"), known_pools={"xero_api"}).dags[
        "xero_invoice_export"]
    deadlines = export.deadline if isinstance(export.deadline, list) else [export.deadline]
    assert len(deadlines) == 1 and deadlines[0].interval == dt.timedelta(hours=6)
    assert isinstance(deadlines[0].callback, AsyncCallback)
    assert deadlines[0].callback.path.endswith("XeroAlertNotifier")


def test_status_sync_reads_each_organisation_in_its_own_task_after_the_export(dagbag):
    dag = dagbag.dags["xero_status_sync"]
    assert type(dag.timetable).__name__ == "CronTriggerTimetable" and dag.timetable.expression == "0 6 * * *"
    assert set(dag.params) == {"billing_entity_ids", "full_reconciliation"}
    sync = dag.get_task("sync_organisation")
    assert sync.pool == "xero_api", "its calls count against the same pool as the export's"
    assert "organisations_to_read" in sync.upstream_task_ids
    assert dag.get_task("summarise_status_sync").trigger_rule == "all_done", "one organisation's failure is its own"
