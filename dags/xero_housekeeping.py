"""
### Housekeeping: purge old runs' work rows, archive the API log on request

Runs daily at 03:30 UTC (and can be triggered with the form).

**Purge** (every run): the work rows of export runs that finished more than `retention_days` days
ago are deleted: their work list (`run_document`), validation issues (`validation_issue`) and chunks
(`export_chunk`). A run still `running` is never touched. Kept for ever: each run's summary
(`export_run`, `run_entity`: the report's recent runs), the export flags (what went to Xero) and the
API log. The default is `XERO_SYNC_RETENTION_DAYS` (else 90), read when the DAG is parsed.

**Archive the API log** (only when `archive_api_log_before` is given): every `api_log` row of a call
started before that date (midnight UTC) is written to a gzip-compressed CSV file with a header,
`api_log_before_<date>_ids_<first id>-<last id>.csv.gz`, in `XERO_ARCHIVE_DIR`: a directory or any URL
Airflow's object storage writes (`s3://<conn id>@<bucket>/<prefix>/`, `file:///shared/archive/`;
default `$AIRFLOW_HOME/archive`, one machine's disk). Only once the file is written and read back are
exactly those rows deleted. If the file cannot be written, nothing is deleted; an archive whose rows
were never deleted (a worker lost in between) is replaced by the next one. A date in the future is
refused.

**Billing entities for the export's form** (every run): their names are kept in the Airflow Variable
`xero_billing_entity_choices`, which `xero_invoice_export`'s trigger form offers as a list.
"""

from __future__ import annotations

from airflow.sdk import Param, dag, get_current_context, task

from astute_xero.operations import entity_choices, retention
from astute_xero.dag_policy import DATABASE_STEP_TIMEOUT, OPERATIONS_DAG, SMALL_STEP_TIMEOUT


@dag(
    dag_id="xero_housekeeping",
    doc_md=__doc__,
    **{**OPERATIONS_DAG, "schedule": "30 3 * * *", "tags": ["xero", "astute", "housekeeping"]},
    max_active_runs=1,
    params={
        "retention_days": Param(
            retention.retention_days_default(), type="integer", minimum=1, title="Keep run work rows for (days)",
            description="The work rows of runs that finished longer ago than this are purged. "
                        "Run summaries, export flags and the API log are kept.",
        ),
        "archive_api_log_before": Param(
            None, type=["null", "string"], format="date", title="Archive the API log before",
            description="Empty: no archive. A date: API log rows of calls started before it (UTC) are written "
                        "to a .csv.gz file in XERO_ARCHIVE_DIR (a directory or an object storage URL), "
                        "read back, then deleted.",
        ),
    },
)
def xero_housekeeping():
    @task(execution_timeout=SMALL_STEP_TIMEOUT)  # a few DDL statements, usually none
    def apply_migrations() -> list:
        return retention.apply_migrations_task()

    @task(execution_timeout=DATABASE_STEP_TIMEOUT)  # set-based DELETEs, a batch of runs per transaction
    def purge_work_rows() -> dict:
        return retention.purge_work_rows_task(dict(get_current_context()["params"]))

    @task(execution_timeout=DATABASE_STEP_TIMEOUT)  # one COPY streamed to a file, then one DELETE
    def archive_api_log() -> dict:
        return retention.archive_api_log_task(dict(get_current_context()["params"]))

    # The billing entities' names for xero_invoice_export's trigger form (read there from an Airflow Variable:
    # a DAG file may not query the Astute database while it is parsed).
    @task(execution_timeout=SMALL_STEP_TIMEOUT)
    def remember_billing_entities() -> dict:
        return entity_choices.remember_choices_task()

    migrated = apply_migrations()
    migrated >> [purge_work_rows(), archive_api_log()]
    remember_billing_entities()


xero_housekeeping()
