"""The help article's workflow from the Xero Integration pages: Preview, Export (and its banner), Reset for
export, Remove link; and who may. A real Airflow (API server, scheduler, dag-processor, LocalExecutor) with
two SimpleAuthManager users of different roles, the Xero sandbox over HTTP, and Chromium driving the UI.

Every action goes from the page's button through Airflow's REST API to an ordinary run of the DAG, which the
scheduler runs: nothing between the page and the DAG is replaced. What the banner says is checked against the
sandbox and against SQL written here.
"""

from __future__ import annotations

import json
import re
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from urllib.parse import parse_qs, urlsplit

import pytest

from devtools.astute_data import Line
from tests.report.conftest import ARTIFACTS, ReportUI, log_in, report_ui
from tests.report.dataset import AU_TENANT, CUSTOMER_NAME
from xero_sandbox import XeroSandbox

pytestmark = pytest.mark.e2e

FINANCE, READER = "admin", "viewer"  # SimpleAuthManager roles: admin may trigger the DAGs, viewer only reads
EXPORT, RESET, REMOVE = "xero_invoice_export", "xero_reset_for_export", "xero_remove_contact_link"
RUN_TIMEOUT_MS = 240_000


@pytest.fixture(scope="module")
def ui(database_url: str, sandbox: XeroSandbox) -> Iterator[ReportUI]:
    with report_ui(database_url, sandbox, users={FINANCE: "admin", READER: "viewer"}) as running:
        for dag_id in (RESET, REMOVE):
            running.airflow.unpause(dag_id)
        # New work since the scheduled export: three invoices that go, one held back (no GL account code).
        data = running.data
        customer = running.dataset.customer
        for n in range(3):
            data.invoice(running.dataset.entity, customer, number=f"NEW-{n}")
        data.invoice(running.dataset.entity, customer, number="NEW-NO-GL", lines=[Line(account_code=None)])
        data.flush()
        yield running


@pytest.fixture(scope="module")
def finance(ui: ReportUI, browser):
    context = log_in(browser, ui, FINANCE)
    yield context
    context.close()


@pytest.fixture(scope="module")
def reader(ui: ReportUI, browser):
    context = log_in(browser, ui, READER)
    yield context
    context.close()


def token(ui: ReportUI, username: str) -> str:
    request = urllib.request.Request(f"{ui.base_url}/auth/token", method="POST",
                                     data=json.dumps({"username": username, "password": ui.password_of(username)}).encode(),
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.load(response)["access_token"]


def post(url: str, form: dict[str, str], headers: dict[str, str]) -> int:
    request = urllib.request.Request(url, method="POST", data="&".join(f"{k}={v}" for k, v in form.items()).encode(),
                                     headers={"Content-Type": "application/x-www-form-urlencoded", **headers})
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status
    except urllib.error.HTTPError as error:
        return error.code


def airflow_run(ui: ReportUI, dag_id: str, run_id: str) -> dict:
    request = urllib.request.Request(f"{ui.base_url}/api/v2/dags/{dag_id}/dagRuns/{urllib.request.quote(run_id)}",
                                     headers={"Authorization": f"Bearer {token(ui, FINANCE)}"})
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.load(response)


def keep(page, name: str) -> str:
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / name), full_page=True)
    return str(ARTIFACTS / name)


def _following(url: str) -> str | None:
    return parse_qs(urlsplit(url).query).get("follow_run", [None])[0]


def followed_run(page, ui: ReportUI, before: str | None = None) -> tuple[str, str]:
    """The run the page follows after a button: the DAG and run id in its address (the redirect after the POST)."""
    try:
        page.wait_for_url(lambda url: _following(url) not in (None, before))
    except Exception:
        frame = page.frames[-1]
        full = (ui.airflow.logs_dir / "api-server.log").read_text(errors="replace")
        (ARTIFACTS / "xero_actions_api_server.log").write_text(full)  # kept for the failure's traceback
        log = "\n".join(line for line in full.splitlines() if "[http.access]" not in line)[-6000:]
        raise AssertionError(f"no run followed at {page.url}: {frame.content()[:2000]}\nAPI server:\n{log}") from None
    query = parse_qs(urlsplit(page.url).query)
    return query["follow_dag"][0], query["follow_run"][0]


def wait_for_banner(frame):
    """The banner once its run ended (the page reloads itself then)."""
    banner = frame.locator("#banner .banner[data-done='1']")
    banner.wait_for(timeout=RUN_TIMEOUT_MS)
    return banner


def banner_counts(frame) -> tuple[int, int, int]:
    counts = frame.locator("#banner [data-banner-invoices]")
    return (int(counts.get_attribute("data-banner-invoices")), int(counts.get_attribute("data-banner-credit-notes")),
            int(counts.get_attribute("data-banner-not-exported")))


def test_preview_then_export_from_the_page_with_the_banner_agreeing_with_xero_and_the_report(
        ui: ReportUI, finance, sandbox: XeroSandbox, capsys):
    entity = ui.dataset.entity
    page = finance.new_page()
    page.goto("/plugin/xero-integration")
    frame = page.frame_locator("iframe[title='Xero Integration']")
    runs_before = len(ui.airflow.dag_runs(EXPORT))

    # Preview: what would go and what would be held back; nothing sent.
    in_xero = (len(sandbox.backend.invoices(AU_TENANT)), len(sandbox.backend.credit_notes(AU_TENANT)))
    frame.get_by_role("button", name="Preview").click()
    dag_id, preview_run = followed_run(page, ui)
    assert dag_id == EXPORT

    # Pressed again while it runs: the page shows the run already going, and starts none.
    form = frame.locator("#export-actions")
    fields = {name: form.locator(f"input[name={name}]").get_attribute("value")
              for name in ("csrf_token", "billing_entity_id", "date_from", "date_to")}
    again = finance.request.post(f"{ui.base_url}/xero/actions/export", form={**fields, "mode": "export"},
                                 headers={"Origin": ui.base_url}, max_redirects=0)
    assert again.status == 303 and parse_qs(urlsplit(again.headers["location"]).query)["follow_run"] == [preview_run]
    assert len(ui.airflow.dag_runs(EXPORT)) == runs_before + 1, "not started twice"

    banner = wait_for_banner(frame)
    assert banner.get_attribute("data-state") == "success"
    would_go_invoices, would_go_credit_notes, held = banner_counts(frame)
    (preview_id,) = ui.db.execute("SELECT run_id FROM xero_sync.export_run WHERE airflow_run_id = %s",
                                  (preview_run,)).fetchone()
    stages = dict(ui.db.execute(
        "SELECT kind || ':' || stage, count(*) FROM xero_sync.run_document WHERE run_id = %s GROUP BY 1",
        (preview_id,)).fetchall())
    assert (would_go_invoices, would_go_credit_notes) == (stages.get("invoice:ready", 0),
                                                          stages.get("credit_note:ready", 0))
    assert held == stages.get("invoice:held", 0) + stages.get("credit_note:held", 0) >= 4
    assert would_go_invoices >= 3
    # The report's own "Latest preview" section says the same.
    assert frame.locator("[data-preview-run]").get_attribute("data-preview-run") == str(preview_id)
    assert frame.locator("[data-preview='would-go']").inner_text().startswith(
        f"{would_go_invoices} invoice(s), {would_go_credit_notes} credit note(s)")
    no_gl = frame.locator("#banner li").filter(has_text="NEW-NO-GL")
    assert "What to fix: A line has no GL account code" in no_gl.inner_text()
    assert (len(sandbox.backend.invoices(AU_TENANT)), len(sandbox.backend.credit_notes(AU_TENANT))) == in_xero
    preview_shot = keep(page, "xero_actions_preview_banner.png")
    assert airflow_run(ui, EXPORT, preview_run)["triggering_user_name"] == FINANCE

    # Export Invoices: the run follows, then the banner says what went and what did not, and why.
    frame.get_by_role("button", name="Export Invoices").click()
    _, export_run = followed_run(page, ui, before=preview_run)
    assert export_run != preview_run
    frame.locator("#banner .banner").first.wait_for()
    keep(page, "xero_actions_export_running.png")
    banner = wait_for_banner(frame)
    assert banner.get_attribute("data-state") == "success"
    invoices, credit_notes, not_exported = banner_counts(frame)
    (export_id,) = ui.db.execute("SELECT run_id FROM xero_sync.export_run WHERE airflow_run_id = %s",
                                 (export_run,)).fetchone()
    # ... equal to what the sandbox now holds beyond what it held before ...
    assert invoices == len(sandbox.backend.invoices(AU_TENANT)) - in_xero[0]
    assert credit_notes == len(sandbox.backend.credit_notes(AU_TENANT)) - in_xero[1]
    new = {row["InvoiceNumber"] for row in sandbox.backend.invoices(AU_TENANT)}
    assert {"NEW-0", "NEW-1", "NEW-2"} <= new and "NEW-NO-GL" not in new
    # ... to xero_sync ...
    exported, failed = ui.db.execute(
        "SELECT count(*) FILTER (WHERE status = 'exported'), count(*) FILTER (WHERE status = 'failed') "
        "FROM xero_sync.document_export WHERE run_id = %s", (export_id,)).fetchone()
    assert invoices + credit_notes == exported and invoices >= 3
    (held,) = ui.db.execute("SELECT count(*) FROM xero_sync.run_document WHERE run_id = %s AND stage IN "
                            "('held', 'waiting')", (export_id,)).fetchone()
    assert not_exported == failed + held > 0
    # ... and to the report's line for the run.
    row = frame.locator(f"#runs tr[data-run-id='{export_id}']")
    assert row.locator("td").nth(5).inner_text() == f"{invoices} + {credit_notes}"
    clash = frame.locator("#banner li").filter(has_text="CLASH")
    assert "Xero already holds a sales invoice CLASH" in clash.inner_text()
    assert clash.get_by_role("link", name="show it in the report").get_attribute("href") == \
        f"#invoice-{ui.dataset.clash}"
    assert frame.locator(f"#invoice-{ui.dataset.clash}").count() == 1, "the link goes to its row, with what to fix"
    export_shot = keep(page, "xero_actions_export_banner.png")
    assert airflow_run(ui, EXPORT, export_run)["triggering_user_name"] == FINANCE
    with capsys.disabled():
        print(f"\nPreview banner: {preview_shot}\nExport banner: {export_shot} "
              f"({invoices} invoice(s) + {credit_notes} credit note(s) exported, {not_exported} not)")
    page.close()


def test_reset_for_export_of_a_historical_invoice_from_the_page(ui: ReportUI, finance):
    (old,) = ui.db.execute("SELECT id FROM astute.invoice WHERE invoice_number = 'OLD'").fetchone()
    assert ui.db.execute("SELECT count(*) FROM xero_sync.invoice_export WHERE invoice_id = %s", (old,)).fetchone() == (0,)
    page = finance.new_page()
    page.goto("/plugin/xero-integration")
    frame = page.frame_locator("iframe[title='Xero Integration']")
    row = frame.locator(f"#resettable tr[data-document='invoice-{old}']")
    assert "before go-live" in row.inner_text()
    to_export = int(frame.locator("[data-count='Invoices still to export']").inner_text())
    row.get_by_role("link", name="Reset for export…").click()
    confirm = frame.locator("#confirm-reset")
    assert confirm.get_attribute("data-document") == f"invoice-{old}"
    assert "Reset Invoice OLD (2026-02-28, dated before go-live, never sent) for export?" in confirm.inner_text()
    assert ui.db.execute("SELECT count(*) FROM xero_sync.invoice_export WHERE invoice_id = %s", (old,)).fetchone() == \
        (0,), "asking resets nothing"
    confirm.get_by_role("button", name="Reset for export").click()
    dag_id, run_id = followed_run(page, ui)
    assert dag_id == RESET
    banner = wait_for_banner(frame)
    assert banner.get_attribute("data-state") == "success" and "Reset for export done." in banner.inner_text()
    assert ui.db.execute("SELECT status FROM xero_sync.invoice_export WHERE invoice_id = %s", (old,)).fetchone() == \
        ("reset",)
    assert frame.locator(f"#resettable tr[data-document='invoice-{old}']").count() == 0
    assert int(frame.locator("[data-count='Invoices still to export']").inner_text()) == to_export + 1
    assert airflow_run(ui, RESET, run_id)["conf"] == {"invoice_ids": [old], "credit_note_ids": []}
    assert airflow_run(ui, RESET, run_id)["triggering_user_name"] == FINANCE
    keep(page, "xero_actions_reset.png")
    page.close()


def test_remove_link_after_a_confirmation_naming_customer_organisation_and_contact(ui: ReportUI, finance):
    customer = ui.dataset.customer
    (contact_id, contact_name) = ui.db.execute(
        "SELECT xero_contact_id::text, xero_contact_name FROM xero_sync.contact_link WHERE customer_id = %s "
        "AND tenant_id = %s", (customer, AU_TENANT)).fetchone()
    page = finance.new_page()
    page.goto(f"/plugin/xero-contact-links/xero/contact-links?customer_id={customer}")
    frame = page.frame_locator("iframe[title='Link to Xero']")
    frame.locator(f"#links tr[data-tenant-id='{AU_TENANT}']").get_by_role("link", name="Remove link…").click()
    confirm = frame.locator("#confirm-remove")
    text = confirm.inner_text()
    assert CUSTOMER_NAME in text and contact_name in text and contact_id in text and AU_TENANT in text
    assert "Astute AU" in text, "the organisation, by the billing entity exporting to it"
    keep(page, "xero_actions_remove_link_confirm.png")
    assert ui.db.execute("SELECT count(*) FROM xero_sync.contact_link WHERE customer_id = %s",
                         (customer,)).fetchone() != (0,), "asking removes nothing"
    confirm.get_by_role("button", name="Remove the link").click()
    dag_id, run_id = followed_run(page, ui)
    assert dag_id == REMOVE
    banner = wait_for_banner(frame)
    assert banner.get_attribute("data-state") == "success"
    assert ui.db.execute("SELECT count(*) FROM xero_sync.contact_link WHERE customer_id = %s AND tenant_id = %s",
                         (customer, AU_TENANT)).fetchone() == (0,)
    frame.get_by_text("Not linked to any Xero Contact").wait_for()
    run = airflow_run(ui, REMOVE, run_id)
    assert run["conf"] == {"customer_id": customer, "tenant_id": AU_TENANT} and run["triggering_user_name"] == FINANCE
    keep(page, "xero_actions_remove_link_done.png")
    page.close()


def test_a_reader_sees_no_button_and_a_forged_or_anonymous_action_is_refused(ui: ReportUI, reader, finance):
    page = reader.new_page()
    page.goto("/plugin/xero-integration")
    frame = page.frame_locator("iframe[title='Xero Integration']")
    frame.locator("[data-count]").first.wait_for()
    for name in ("Preview", "Export Invoices"):
        assert frame.get_by_role("button", name=name).count() == 0, name
    assert "may read this report but not start an export" in frame.locator("[data-no-actions]").inner_text()
    assert frame.locator("#resettable tbody tr").count() > 0, "what may be reset is listed ..."
    assert frame.get_by_role("link", name="Reset for export…").count() == 0, "... without the action"
    keep(page, "xero_actions_viewer_no_buttons.png")
    page.goto(f"/plugin/xero-contact-links/xero/contact-links?customer_id={ui.dataset.customer}")
    links_frame = page.frame_locator("iframe[title='Link to Xero']")
    links_frame.locator("#customer").wait_for()
    assert links_frame.get_by_role("link", name="Remove link…").count() == 0
    page.close()

    runs = {dag_id: len(ui.airflow.dag_runs(dag_id)) for dag_id in (EXPORT, RESET, REMOVE)}
    export = f"{ui.base_url}/xero/actions/export"
    form = {"billing_entity_id": str(ui.dataset.entity), "mode": "export", "date_from": "", "date_to": ""}
    same_origin = {"Origin": ui.base_url}
    # The reader, with a real token and the page's origin: Airflow's auth manager does not let a viewer trigger.
    assert post(export, form, {**same_origin, "Authorization": f"Bearer {token(ui, READER)}"}) == 403
    # Nobody's credentials: 401.
    assert post(export, form, same_origin) == 401
    # The finance user's credentials, but another site's form (its Origin, no token of this page's).
    finance_token = token(ui, FINANCE)
    assert post(export, form, {"Origin": "http://evil.example", "Authorization": f"Bearer {finance_token}"}) == 403
    # The same origin without the form's token, or with a token made for another login.
    assert post(export, form, {**same_origin, "Authorization": f"Bearer {finance_token}"}) == 403
    finance_page = finance.new_page()
    finance_page.goto(f"{ui.base_url}/xero/integration")
    page_token = finance_page.locator("#export-actions input[name=csrf_token]").get_attribute("value")
    finance_page.close()
    assert post(export, {**form, "csrf_token": page_token},
                {**same_origin, "Authorization": f"Bearer {finance_token}"}) == 403, "bound to the browser's login"
    remove = f"{ui.base_url}/xero/actions/remove-link"
    assert post(remove, {"customer_id": str(ui.dataset.customer), "tenant_id": AU_TENANT, "csrf_token": page_token},
                {**same_origin, "Authorization": f"Bearer {token(ui, READER)}"}) == 403
    assert {dag_id: len(ui.airflow.dag_runs(dag_id)) for dag_id in runs} == runs, "nothing was started"

    # Every action, and every refusal of a logged-in user's, is in the API server's log with the user.
    log = (ui.airflow.logs_dir / "api-server.log").read_text(errors="replace")
    for dag_id in (EXPORT, RESET, REMOVE):
        assert f"Xero Integration page: {FINANCE} started {dag_id} run" in log, dag_id
    assert f"refused an action by {FINANCE}: posted from another origin (http://evil.example)" in log
    assert f"refused an action by {FINANCE}: no valid form token" in log


def test_the_trigger_form_offers_the_billing_entities_by_name(ui: ReportUI, finance):
    """xero_housekeeping keeps the names in an Airflow Variable; the export's trigger form offers them as a list."""
    from playwright.sync_api import expect

    ui.airflow.unpause("xero_housekeeping")  # its scheduled run of the latest interval
    assert ui.airflow.wait_until_idle("xero_housekeeping", timeout_s=150, settle_s=2)
    assert [run.state for run in ui.airflow.dag_runs("xero_housekeeping")] == ["success"]
    headers = {"Authorization": f"Bearer {token(ui, FINANCE)}"}
    with urllib.request.urlopen(urllib.request.Request(
            f"{ui.base_url}/api/v2/variables/xero_billing_entity_choices", headers=headers), timeout=30) as response:
        assert json.loads(json.load(response)["value"]) == {str(ui.dataset.entity): f"Astute AU ({ui.dataset.entity})"}

    deadline = time.monotonic() + 150  # until the dag-processor parsed the DAG file again
    while True:
        with urllib.request.urlopen(urllib.request.Request(
                f"{ui.base_url}/api/v2/dags/{EXPORT}/details", headers=headers), timeout=30) as response:
            schema = json.load(response)["params"]["billing_entity_ids"]["schema"]
        if schema.get("examples"):
            break
        assert time.monotonic() < deadline, "the DAG was not parsed again"
        time.sleep(3)
    assert schema["values_display"] == {str(ui.dataset.entity): f"Astute AU ({ui.dataset.entity})"}

    page = finance.new_page()
    page.goto(f"/dags/{EXPORT}")
    page.get_by_role("button", name="Trigger Dag").click()
    form = page.get_by_role("dialog")
    expect(form).to_contain_text("Billing entities")
    form.locator("#element_billing_entity_ids").click()
    page.get_by_role("option", name=f"Astute AU ({ui.dataset.entity})").click()
    expect(form.locator("#element_billing_entity_ids")).to_contain_text(f"Astute AU ({ui.dataset.entity})")
    keep(page, "xero_trigger_form_entities_by_name.png")
    page.keyboard.press("Escape")
    page.close()
