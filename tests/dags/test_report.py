"""The Xero Integration report: its counts against SQL on the same data, its page in a real browser.

The report's pages in the Airflow UI (a real API server, a real login) are tested in tests/report/.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from astute_xero.report import integration as report
from tests.conftest import REPO_ROOT
from tests.report.dataset import expected_counts, load_report_dataset

pytestmark = pytest.mark.e2e

ARTIFACTS = REPO_ROOT / ".artifacts"


@pytest.fixture
def reported(world):
    dataset = load_report_dataset(world.data, world.db, world.xero.backend)
    ok, _ = world.run()
    assert ok
    return dataset


def test_the_reports_counts_equal_sql_on_the_same_data(world, reported):
    built = report.build_report(world.db, reported.entity)
    expected = expected_counts(world.db, reported.entity)
    assert (built.invoices_to_export, built.pay_runs_to_export, built.credit_notes_to_export, len(built.blocked)) == (
        expected["Invoices still to export"], expected["Pay runs still to export"],
        expected["Credit notes still to export"], expected["Validation errors, failures and waiting credit notes"],
    ) == (3, 2, 2, 5)
    blocked = {b.label: b for b in built.blocked}
    no_gl = blocked["Invoice NO-GL"]
    assert no_gl.kind == report.VALIDATION_ERROR and "no GL account code" in no_gl.reason
    assert (no_gl.document_kind, no_gl.document_id, no_gl.customer_id) == ("invoice", reported.no_gl, reported.customer)
    (problem,) = no_gl.problems
    assert (problem.rule, problem.line_no) == ("account_code_missing", 1)
    assert no_gl.astute_field(problem) == "astute.invoice_line.account_code"
    bad_tax = blocked["Invoice BAD-TAX"]
    assert "'GSTX'" in bad_tax.reason and "'999'" in bad_tax.reason
    assert [(p.rule, p.line_no) for p in bad_tax.problems] == [("tax_type_unknown", 1), ("account_code_unknown", 2)]
    assert blocked["Invoice CLASH"].kind == report.FAILED_IN_XERO
    assert "Xero already holds a sales invoice CLASH" in blocked["Invoice CLASH"].reason
    assert blocked["Invoice CLASH"].reason.endswith("(Xero: Invoice # must be unique.)")
    assert blocked["Invoice CLASH"].problems == ()
    cn_empty = blocked["Credit note CN-EMPTY"]
    assert (cn_empty.kind, cn_empty.reason) == (report.VALIDATION_ERROR,
                                                "It has no lines. Add at least one line in Astute, or void it.")
    assert [p.rule for p in cn_empty.problems] == ["no_lines"]
    cn_wait = blocked["Credit note CN-WAIT"]
    assert cn_wait.kind == report.WAITING_FOR_INVOICE and cn_wait.waits_for_invoice_id == reported.no_gl
    assert cn_wait.reason.startswith("Waits for invoice NO-GL, which is not in Xero yet: it is held back (Line 1 has no GL")
    assert [fix.rule for fix in built.fixes] == ["account_code_missing", "tax_type_unknown", "account_code_unknown",
                                                 "no_lines"]
    (last,) = built.runs
    assert (last.chunks, last.invoices_exported, last.credit_notes_exported, last.failed, last.held,
            last.allocated) == (2, 6, 1, 1, 3, 1)
    assert (last.dag_id, last.airflow_run_id) == world.db.execute(
        "SELECT dag_id, airflow_run_id FROM xero_sync.export_run WHERE run_id = %s", (last.run_id,)).fetchone()
    assert last.dag_id == "xero_invoice_export"

    # After the fixes, a run exports them and the report drops to zero.
    world.db.execute("UPDATE astute.invoice_line SET account_code = '200', tax_type = 'OUTPUT' "
                     "WHERE invoice_id IN (SELECT id FROM astute.invoice WHERE invoice_number IN ('NO-GL', 'BAD-TAX'))")
    world.db.execute("UPDATE astute.invoice SET invoice_number = 'CLASH-2' WHERE invoice_number = 'CLASH'")
    world.db.execute("INSERT INTO astute.credit_note_line (id, credit_note_id, line_no, description, quantity, "
                     "unit_amount, account_code, tax_type) SELECT 9000, id, 1, 'Refund', 1, 5, '200', 'OUTPUT' "
                     "FROM astute.credit_note WHERE credit_note_number = 'CN-EMPTY'")
    ok, _ = world.run()
    assert ok
    after = report.build_report(world.db, reported.entity)
    assert (after.invoices_to_export, after.pay_runs_to_export, after.credit_notes_to_export, after.blocked) == (
        0, 0, 0, [])
    assert list(expected_counts(world.db, reported.entity).values()) == [0, 0, 0, 0]
    allocated = dict(world.db.execute(
        "SELECT c.credit_note_number, x.allocation_status FROM xero_sync.credit_note_export x "
        "JOIN astute.credit_note c ON c.id = x.credit_note_id"))
    assert allocated == {"CN-1": "allocated", "CN-WAIT": "allocated", "CN-EMPTY": None}


def test_the_export_writes_the_page_and_it_renders_in_a_real_browser(world, reported, tmp_path):
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    assert chromium, "make test installs Debian's chromium; run it through make test"
    page = report.write_html(report.build_report(world.db, reported.entity), tmp_path)
    flags = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
             "--disable-background-networking", "--disable-component-update", "--disable-sync",
             f"--user-data-dir={tempfile.mkdtemp()}"]
    dom = subprocess.run([chromium, *flags, "--dump-dom", page.as_uri()], capture_output=True, text=True,
                         timeout=120, check=True).stdout
    for label, count in expected_counts(world.db, reported.entity).items():
        assert f'data-count="{label}">{count}<' in dom
    assert 'data-count="Invoices still to export">3<' in dom
    assert "Waits for invoice NO-GL" in dom and f'href="#invoice-{reported.no_gl}"' in dom
    assert "Harbour" not in dom or "<Constructions>" not in dom, "names are escaped"
    assert "Invoice # must be unique." in dom and "no GL account code" in dom
    assert "astute.invoice_line.account_code" in dom and 'id="fix-account_code_missing"' in dom
    assert "<script" not in dom and "<form" not in dom, "the file is self-contained: no scripts, no settings form"
    ARTIFACTS.mkdir(exist_ok=True)
    screenshot = ARTIFACTS / "xero_integration_report.png"
    screenshot.unlink(missing_ok=True)
    subprocess.run([chromium, *flags, "--window-size=1280,1100", f"--screenshot={screenshot}", page.as_uri()],
                   capture_output=True, timeout=120, check=True)
    data = screenshot.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 20_000, "a real page, not a blank"


def test_the_report_runs_from_the_command_line_without_an_export(world, reported, database_url, tmp_path):
    out = tmp_path / "report.html"
    command = subprocess.run([str(Path(sys.executable).with_name("astute-xero")), "report", "--billing-entity-id",
                              str(reported.entity), "--db-url", database_url, "--html", str(out)],
                             capture_output=True, text=True, timeout=120)
    assert command.returncode == 0, command.stderr
    text = command.stdout
    assert "Invoices still to export:     3" in text and "Credit notes still to export: 2" in text
    assert out.read_text().startswith("<!DOCTYPE html>")


def test_the_export_dags_last_task_logs_the_report(world, reported, caplog):
    caplog.clear()
    world.run()
    log = caplog.text  # the task's own log lines
    assert "Xero Integration report - Astute AU" in log and "HTML report:" in log
