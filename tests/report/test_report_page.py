"""The report's pages in the Airflow UI: a real API server with the plugin, its login, and a real browser.

What the pages show is checked against SQL written here and in tests/report/dataset.py, not the report's own.
"""

from __future__ import annotations

import datetime as dt
import json
import re
import urllib.error
import urllib.request
from urllib.parse import quote, unquote, urlsplit

import pytest

from tests.report.conftest import ARTIFACTS, USER, ReportUI
from tests.report.dataset import AU_TENANT, CUSTOMER_NAME, NZ_TENANT, expected_counts

pytestmark = pytest.mark.e2e

PAGES = ("/xero/integration", "/xero/api-log", "/xero/contact-links", "/xero/")


def http_get(url: str, token: str | None = None) -> tuple[int, str]:
    request = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}"} if token else {})
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()


def airflow_token(ui: ReportUI) -> str:
    request = urllib.request.Request(f"{ui.base_url}/auth/token", method="POST",
                                     data=json.dumps({"username": USER, "password": ui.password}).encode(),
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.load(response)["access_token"]


def keep_screenshot(page, name: str) -> str:
    """The whole window (the UI's nav and the page in its iframe), kept in .artifacts/."""
    ARTIFACTS.mkdir(exist_ok=True)
    path = ARTIFACTS / name
    page.screenshot(path=str(path))
    assert path.stat().st_size > 30_000, "a real page, not a blank"
    return str(path)


def tiles(frame) -> dict[str, int]:
    frame.locator("[data-count]").first.wait_for()
    return {tile.get_attribute("data-count"): int(tile.inner_text()) for tile in frame.locator("[data-count]").all()}


def test_nothing_is_shown_without_an_airflow_login(ui: ReportUI):
    for path in PAGES:
        status, body = http_get(ui.base_url + path)
        assert status == 401, f"{path} answered {status} to an anonymous request"
        assert "Astute AU" not in body and "Log in" in body
        assert http_get(ui.base_url + path, token="not-a-token")[0] == 403, path
    status, body = http_get(f"{ui.base_url}/xero/integration", token=airflow_token(ui))
    assert status == 200 and "<h1>Xero Integration - Astute AU</h1>" in body, "a Bearer token of Airflow's is served"


def test_the_report_in_the_ui_shows_what_sql_says_and_links_each_run_to_airflow(ui: ReportUI, logged_in, capsys):
    page = logged_in.new_page()
    page.goto("/")
    page.get_by_role("link", name="Xero Integration").click()  # the report's own button in the nav
    page.wait_for_url("**/plugin/xero-integration**")
    frame = page.frame_locator("iframe[title='Xero Integration']")
    assert frame.locator("h1").inner_text() == "Xero Integration - Astute AU"

    expected = expected_counts(ui.db, ui.dataset.entity)
    assert tiles(frame) == expected
    assert list(expected.values()) == [3, 2, 2, 5]
    assert frame.locator("#blocked tbody tr").count() == expected["Validation errors, failures and waiting credit notes"]
    screenshot = keep_screenshot(page, "xero_integration_in_airflow_ui.png")
    with capsys.disabled():
        print(f"\nThe Xero Integration report in the Airflow UI: {screenshot}")

    # Each blocked document says what to fix, and where.
    no_gl = frame.locator(f"#invoice-{ui.dataset.no_gl}")
    assert no_gl.get_attribute("data-kind") == "Validation error"
    assert "astute.invoice_line.account_code (line 1)" in no_gl.inner_text()
    no_gl.get_by_role("link", name="A line has no GL account code").click()
    assert frame.locator("#fix-account_code_missing").is_visible()
    clash = frame.locator(f"#invoice-{ui.dataset.clash}")
    (last_error,) = ui.db.execute("SELECT last_error FROM xero_sync.invoice_export WHERE invoice_id = %s",
                                  (ui.dataset.clash,)).fetchone()
    assert clash.get_attribute("data-kind") == "Failed in Xero" and "Xero already holds a sales invoice CLASH" in last_error
    assert last_error in clash.inner_text()
    assert clash.get_by_role("link", name="xero_invoice_export").get_attribute("href") == "/dags/xero_invoice_export"
    waiting = frame.locator("#blocked tr[data-kind='Waiting for its invoice']")
    assert waiting.get_by_role("link", name="its invoice").get_attribute("href") == f"#invoice-{ui.dataset.no_gl}"

    # The last runs: each links to its Airflow run, with its chunk count from the API log.
    runs = ui.db.execute(
        "SELECT r.run_id, r.dag_id, r.airflow_run_id, "
        "       (SELECT count(*) FROM xero_sync.api_log a WHERE a.run_id = r.run_id AND a.tenant_id = %s "
        "          AND a.method = 'PUT' AND a.endpoint IN ('Invoices', 'CreditNotes')) "
        "FROM xero_sync.export_run r WHERE EXISTS (SELECT 1 FROM xero_sync.run_entity e "
        "  WHERE e.run_id = r.run_id AND e.billing_entity_id = %s) ORDER BY r.run_id DESC LIMIT 10",
        (AU_TENANT, ui.dataset.entity)).fetchall()
    assert runs and sum(chunks for *_, chunks in runs) > 0
    rows = frame.locator("#runs tbody tr")
    assert rows.count() == len(runs)
    for row, (run_id, dag_id, airflow_run_id, chunks) in zip(rows.all(), runs):
        assert row.get_attribute("data-run-id") == str(run_id)
        link = row.get_by_role("link", name=f"run {run_id}")
        assert link.get_attribute("href") == f"/dags/{dag_id}/runs/{quote(airflow_run_id, safe='')}"
        assert link.get_attribute("target") == "_top"
        assert int(row.locator("td").nth(4).inner_text()) == chunks

    # A run's link opens the run in the Airflow UI itself, not inside the iframe.
    run_id, dag_id, airflow_run_id, _ = runs[0]
    rows.first.get_by_role("link", name=f"run {run_id}").click()
    # The address holds the run id percent-encoded (a scheduled run's has ':' and '+'): compare it decoded.
    page.wait_for_url(lambda url: unquote(urlsplit(url).path).endswith(f"/dags/{dag_id}/runs/{airflow_run_id}"))
    page.get_by_text(airflow_run_id).first.wait_for()  # Airflow's page of the run ...
    assert page.locator("iframe[title='Xero Integration']").count() == 0  # ... in the whole window
    page.close()


def test_the_report_settings_choose_the_entity_and_date_range(ui: ReportUI, logged_in):
    page = logged_in.new_page()
    page.goto("/plugin/xero-integration")
    frame = page.frame_locator("iframe[title='Xero Integration']")
    assert frame.locator("select[name=billing_entity_id]").input_value() == str(ui.dataset.entity)
    frame.locator("input[name=date_from]").fill("2026-06-05")
    frame.get_by_role("button", name="Show report").click()
    page.wait_for_url(re.compile(r"date_from=2026-06-05"))  # the UI's address follows: a link to this report
    expected = expected_counts(ui.db, ui.dataset.entity, date_from=dt.date(2026, 6, 5))
    assert tiles(frame) == expected
    assert list(expected.values()) == [0, 0, 2, 2], "only the credit notes are dated from 5 June"
    assert frame.locator(".meta").inner_text().count("2026-06-05 to today") == 1

    page.goto("/plugin/xero-integration/xero/integration?billing_entity_id=1&date_from=2026-07-01&date_to=2026-06-01")
    alert = frame.get_by_role("alert")
    assert "Dated from (2026-07-01) is after dated to (2026-06-01)." in alert.inner_text()
    assert frame.locator("[data-count]").count() == 0
    page.close()


def test_the_api_log_filters_by_run_and_organisation_a_page_at_a_time(ui: ReportUI, logged_in):
    page = logged_in.new_page()
    page.goto("/")
    page.get_by_role("button", name="Plugins").click()
    page.get_by_role("menuitem", name="Xero API Log").click()
    frame = page.frame_locator("iframe[title='Xero API Log']")
    (run_id,) = ui.db.execute("SELECT min(run_id) FROM xero_sync.api_log WHERE endpoint = 'Invoices'").fetchone()

    frame.locator("select[name=run_id]").select_option(str(run_id))
    frame.locator("select[name=tenant_id]").select_option(AU_TENANT)
    frame.get_by_role("button", name="Filter").click()
    page.wait_for_url(re.compile(rf"run_id={run_id}&tenant_id={AU_TENANT}"))
    calls = [row[0] for row in ui.db.execute(
        "SELECT id FROM xero_sync.api_log WHERE run_id = %s AND tenant_id = %s ORDER BY id DESC", (run_id, AU_TENANT))]
    assert 0 < len(calls) <= 50
    frame.locator(f"#api-log tr[data-call-id='{calls[-1]}']").wait_for()
    rows = frame.locator("#api-log tbody tr")
    assert [int(row.get_attribute("data-call-id")) for row in rows.all()] == calls
    assert {row.get_attribute("data-run-id") for row in rows.all()} == {str(run_id)}
    assert int(frame.locator("#matching").get_attribute("data-matching")) == len(calls)
    run = rows.first.get_by_role("link", name=f"run {run_id}")
    assert re.fullmatch(r"/dags/xero_invoice_export/runs/.+", run.get_attribute("href"))

    page.goto(f"/plugin/xero-api-log/xero/api-log?tenant_id={NZ_TENANT}")  # authorised, but nothing exported to it
    frame.get_by_text("No call matches.").wait_for()
    assert frame.locator("select[name=tenant_id]").input_value() == NZ_TENANT
    assert ui.db.execute("SELECT count(*) FROM xero_sync.api_log WHERE tenant_id = %s", (NZ_TENANT,)).fetchone() == (0,)

    # A page at a time: newest first, then the older ones, never the whole log.
    newest = [row[0] for row in ui.db.execute("SELECT id FROM xero_sync.api_log ORDER BY id DESC LIMIT 8")]
    assert len(newest) == 8
    page.goto("/plugin/xero-api-log/xero/api-log?limit=5")
    frame.locator("#api-log tbody tr").first.wait_for()
    assert [int(r.get_attribute("data-call-id")) for r in frame.locator("#api-log tbody tr").all()] == newest[:5]
    frame.get_by_role("link", name="Older calls").click()
    frame.locator(f"#api-log tr[data-call-id='{newest[5]}']").wait_for()
    assert [int(r.get_attribute("data-call-id")) for r in frame.locator("#api-log tbody tr").all()][:3] == newest[5:8]
    assert page.url.endswith(f"before={newest[4]}")
    keep_screenshot(page, "xero_api_log_in_airflow_ui.png")
    page.close()


def test_link_to_xero_shows_the_customers_contact_and_removes_it_only_through_the_dag(ui: ReportUI, logged_in):
    links = ui.db.execute("SELECT tenant_id, xero_contact_id::text, xero_contact_name FROM xero_sync.contact_link "
                          "WHERE customer_id = %s ORDER BY tenant_id", (ui.dataset.customer,)).fetchall()
    assert links and links[0][0] == AU_TENANT and links[0][2] == CUSTOMER_NAME
    page = logged_in.new_page()
    page.goto("/")
    page.get_by_role("button", name="Plugins").click()
    page.get_by_role("menuitem", name="Link to Xero").click()
    frame = page.frame_locator("iframe[title='Link to Xero']")

    frame.get_by_label("Customer (name or id)").fill("nobody by this name")
    frame.get_by_role("button", name="Find").click()
    frame.get_by_text("No customer's name or id matches.").wait_for()

    frame.get_by_label("Customer (name or id)").fill("harbour <constr")  # a part of the name, any case
    frame.get_by_role("button", name="Find").click()
    heading = frame.locator("#customer")
    assert heading.get_attribute("data-customer-id") == str(ui.dataset.customer)
    assert heading.inner_text() == f"{CUSTOMER_NAME} (customer {ui.dataset.customer})", "escaped, shown as it is"
    rows = frame.locator("#links tbody tr")
    shown = [(row.get_attribute("data-tenant-id"), row.locator("td").nth(2).inner_text(),
              row.locator("td").nth(1).inner_text()) for row in rows.all()]
    assert shown == links

    removal = frame.locator(f".note[data-tenant-id='{AU_TENANT}']")
    assert json.loads(removal.locator("pre.conf").inner_text()) == {"customer_id": ui.dataset.customer,
                                                                    "tenant_id": AU_TENANT}
    keep_screenshot(page, "link_to_xero_in_airflow_ui.png")
    dag_link = removal.get_by_role("link", name="xero_remove_contact_link")
    assert dag_link.get_attribute("href") == "/dags/xero_remove_contact_link"
    dag_link.click()
    page.wait_for_url(re.compile(r"/dags/xero_remove_contact_link$"))
    page.get_by_role("button", name="Trigger").first.wait_for()  # its trigger form is a click away
    assert ui.db.execute("SELECT tenant_id, xero_contact_id::text, xero_contact_name FROM xero_sync.contact_link "
                         "WHERE customer_id = %s ORDER BY tenant_id", (ui.dataset.customer,)).fetchall() == links, \
        "the page removed nothing"

    page.goto(f"/plugin/xero-contact-links/xero/contact-links?q={ui.dataset.customer}")  # by id
    assert frame.locator("#customer").get_attribute("data-customer-id") == str(ui.dataset.customer)
    page.close()
