"""The Xero Integration report: its counts against SQL on the same data, its page in a real browser."""

from __future__ import annotations

import datetime as dt
import shutil
import subprocess
import tempfile

import pytest

from astute_xero.report import integration as report
from devtools.astute_data import Line
from tests.conftest import REPO_ROOT
from tests.dags.conftest import AU_TENANT

pytestmark = pytest.mark.e2e

GO_LIVE = dt.date(2026, 3, 1)
ARTIFACTS = REPO_ROOT / ".artifacts"

ORACLE = """
SELECT count(*), count(DISTINCT i.pay_run_id)
FROM astute.invoice i
WHERE i.billing_entity_id = %(entity)s AND i.status = 'Sent'
  AND NOT EXISTS (SELECT 1 FROM xero_sync.invoice_export x
                  WHERE x.invoice_id = i.id AND x.status IN ('exported', 'mock_exported'))
  AND (i.invoice_date >= %(go_live)s
       OR EXISTS (SELECT 1 FROM xero_sync.invoice_export x WHERE x.invoice_id = i.id))
"""
CREDIT_NOTE_ORACLE = """
SELECT count(*)
FROM astute.credit_note c
WHERE c.billing_entity_id = %(entity)s AND c.status = 'Sent'
  AND NOT EXISTS (SELECT 1 FROM xero_sync.credit_note_export x
                  WHERE x.credit_note_id = c.id AND x.status IN ('exported', 'mock_exported'))
  AND (c.credit_date >= %(go_live)s
       OR EXISTS (SELECT 1 FROM xero_sync.credit_note_export x WHERE x.credit_note_id = c.id))
"""


@pytest.fixture
def reported(world):
    entity = world.data.entity("Astute AU", tenant_id=AU_TENANT, go_live=GO_LIVE)
    customer = world.data.customer("Harbour <Constructions> & Co")
    ok = [world.data.invoice(entity, customer, number=f"OK-{n}") for n in range(6)]
    no_gl = world.data.invoice(entity, customer, number="NO-GL", lines=[Line(account_code=None)])
    world.data.invoice(entity, customer, number="BAD-TAX", lines=[Line(tax_type="GSTX"), Line(account_code="999")])
    world.data.invoice(entity, customer, number="CLASH")
    world.data.invoice(entity, customer, number="OLD", invoice_date=GO_LIVE - dt.timedelta(days=1))
    world.data.invoice(entity, customer, number="DRAFT", status="Draft")
    world.data.flush()
    world.db.execute("INSERT INTO astute.pay_run VALUES (1, %s, '2026-06-07', 'Finalised', NULL), "
                     "(2, %s, '2026-06-14', 'Finalised', NULL)", (entity, entity))
    world.db.execute("UPDATE astute.invoice SET pay_run_id = 1 WHERE invoice_number IN ('NO-GL', 'CLASH')")
    world.db.execute("UPDATE astute.invoice SET pay_run_id = 2 WHERE invoice_number = 'BAD-TAX'")
    world.data.credit_note(entity, customer, invoice_id=ok[0], number="CN-1")  # goes, and is allocated
    world.data.credit_note(entity, customer, invoice_id=no_gl, number="CN-WAIT")  # its invoice is held back
    world.data.credit_note(entity, customer, number="CN-EMPTY", lines=[])  # held back itself
    world.data.credit_note(entity, customer, number="CN-DRAFT", status="Draft")  # never
    world.data.flush()
    contact = world.xero.backend.add_contact(AU_TENANT, "Someone Else")
    world.xero.backend.seed_invoice(AU_TENANT, contact_id=contact, invoice_number="CLASH")
    ok, _ = world.run()
    assert ok
    return entity


def test_the_reports_counts_equal_sql_on_the_same_data(world, reported):
    built = report.build_report(world.db, reported)
    invoices, pay_runs = world.db.execute(ORACLE, {"entity": reported, "go_live": GO_LIVE}).fetchone()
    assert (built.invoices_to_export, built.pay_runs_to_export) == (invoices, pay_runs) == (3, 2)
    (credit_notes,) = world.db.execute(CREDIT_NOTE_ORACLE, {"entity": reported, "go_live": GO_LIVE}).fetchone()
    assert built.credit_notes_to_export == credit_notes == 2
    blocked = {b.label: (b.kind, b.reason) for b in built.blocked}
    assert blocked["Invoice NO-GL"][0] == "Validation error" and "no GL account code" in blocked["Invoice NO-GL"][1]
    assert "'GSTX'" in blocked["Invoice BAD-TAX"][1] and "'999'" in blocked["Invoice BAD-TAX"][1]
    assert blocked["Invoice CLASH"][0] == "Failed in Xero"
    assert "Xero already holds a sales invoice CLASH" in blocked["Invoice CLASH"][1]
    assert blocked["Invoice CLASH"][1].endswith("(Xero: Invoice # must be unique.)")
    assert blocked["Credit note CN-EMPTY"] == ("Validation error", "It has no lines. Add at least one line in Astute, "
                                               "or void it.")
    kind, reason = blocked["Credit note CN-WAIT"]
    assert kind == "Waiting for its invoice"
    assert reason.startswith("Waits for invoice NO-GL, which is not in Xero yet: it is held back (Line 1 has no GL")
    (last,) = built.runs
    assert (last.chunks, last.invoices_exported, last.credit_notes_exported, last.failed, last.held,
            last.allocated) == (2, 6, 1, 1, 3, 1)

    # After the fixes, a run exports them and the report drops to zero.
    world.db.execute("UPDATE astute.invoice_line SET account_code = '200', tax_type = 'OUTPUT' "
                     "WHERE invoice_id IN (SELECT id FROM astute.invoice WHERE invoice_number IN ('NO-GL', 'BAD-TAX'))")
    world.db.execute("UPDATE astute.invoice SET invoice_number = 'CLASH-2' WHERE invoice_number = 'CLASH'")
    world.db.execute("INSERT INTO astute.credit_note_line (id, credit_note_id, line_no, description, quantity, "
                     "unit_amount, account_code, tax_type) SELECT 9000, id, 1, 'Refund', 1, 5, '200', 'OUTPUT' "
                     "FROM astute.credit_note WHERE credit_note_number = 'CN-EMPTY'")
    ok, _ = world.run()
    assert ok
    after = report.build_report(world.db, reported)
    assert (after.invoices_to_export, after.pay_runs_to_export, after.credit_notes_to_export, after.blocked) == (
        0, 0, 0, [])
    assert world.db.execute(ORACLE, {"entity": reported, "go_live": GO_LIVE}).fetchone() == (0, 0)
    assert world.db.execute(CREDIT_NOTE_ORACLE, {"entity": reported, "go_live": GO_LIVE}).fetchone() == (0,)
    allocated = dict(world.db.execute(
        "SELECT c.credit_note_number, x.allocation_status FROM xero_sync.credit_note_export x "
        "JOIN astute.credit_note c ON c.id = x.credit_note_id"))
    assert allocated == {"CN-1": "allocated", "CN-WAIT": "allocated", "CN-EMPTY": None}


def test_the_export_writes_the_page_and_it_renders_in_a_real_browser(world, reported, tmp_path):
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    assert chromium, "make test installs Debian's chromium; run it through make test"
    page = report.write_html(report.build_report(world.db, reported), tmp_path)
    flags = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
             "--disable-background-networking", "--disable-component-update", "--disable-sync",
             f"--user-data-dir={tempfile.mkdtemp()}"]
    dom = subprocess.run([chromium, *flags, "--dump-dom", page.as_uri()], capture_output=True, text=True,
                         timeout=120, check=True).stdout
    assert 'data-count="Invoices still to export">3<' in dom
    assert 'data-count="Pay runs still to export">2<' in dom
    assert 'data-count="Credit notes still to export">2<' in dom and "Waits for invoice NO-GL" in dom
    assert "Harbour" not in dom or "<Constructions>" not in dom, "names are escaped"
    assert "Invoice # must be unique." in dom and "no GL account code" in dom
    ARTIFACTS.mkdir(exist_ok=True)
    screenshot = ARTIFACTS / "xero_integration_report.png"
    screenshot.unlink(missing_ok=True)
    subprocess.run([chromium, *flags, "--window-size=1280,1100", f"--screenshot={screenshot}", page.as_uri()],
                   capture_output=True, timeout=120, check=True)
    data = screenshot.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 20_000, "a real page, not a blank"


def test_the_report_runs_from_the_command_line_without_an_export(world, reported, database_url, tmp_path, capsys):
    out = tmp_path / "report.html"
    assert report.main(["--billing-entity-id", str(reported), "--db-url", database_url, "--html", str(out)]) == 0
    text = capsys.readouterr().out
    assert "Invoices still to export:     3" in text and "Credit notes still to export: 2" in text
    assert out.read_text().startswith("<!DOCTYPE html>")


def test_the_export_dags_last_task_logs_the_report(world, reported, caplog):
    caplog.clear()
    world.run()
    log = caplog.text  # the task's own log lines
    assert "Xero Integration report - Astute AU" in log and "HTML report:" in log
