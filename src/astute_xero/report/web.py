"""The report's pages in the Airflow UI: a FastAPI app the API server mounts at /xero (plugins/xero_integration.py).

    /xero/integration    the Xero Integration report: Report Settings (billing entity, dated from/to),
                         Report Summary, what blocks the export and what to fix, the last runs
    /xero/api-log        the API Log: one row per Xero call, by run and organisation, a page at a time
    /xero/contact-links  Link to Xero: a customer's Contact in each organisation, and how to remove the link

Every page is read live from the Astute database (the Airflow connection astute_db), in one read-only
transaction, and rendered with the same Jinja templates as the report file the export writes.

Airflow does not protect a plugin's app: every route here depends on Airflow's own security
dependency, so a request without a valid Airflow token (the UI's `_token` cookie, or a Bearer
token) is refused with 401 (403 for an invalid token), and a user must be allowed to read the runs
of the export DAG.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Iterator
from contextlib import closing, contextmanager
from dataclasses import dataclass
from urllib.parse import urlencode

import psycopg
from fastapi import Depends, FastAPI, Request
from fastapi.responses import HTMLResponse, PlainTextResponse, RedirectResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from airflow.api_fastapi.auth.managers.models.resource_details import DagAccessEntity
from airflow.api_fastapi.core_api.security import requires_access_dag

from astute_xero.report import api_log, contact_links, pages, rendering
from astute_xero.report.integration import build_report
from astute_xero.sql import load_sql

log = logging.getLogger(__name__)

STATEMENT_TIMEOUT = "30s"
RECENT_RUNS = 50

# Reading the report is reading what the export DAG's runs did.
can_read_export_runs = requires_access_dag("GET", DagAccessEntity.RUN, param_dag_id=pages.EXPORT_DAG_ID)


@dataclass(frozen=True)
class EntityChoice:
    id: int
    name: str
    tenant_id: str | None
    live: bool


@dataclass(frozen=True)
class RunChoice:
    run_id: int
    kind: str
    status: str
    started_at: dt.datetime | None
    dag_id: str | None
    airflow_run_id: str | None


@contextmanager
def astute_reading() -> Iterator[psycopg.Connection]:
    """The Astute database (connection astute_db, from the API server's secrets backends and metadata
    database), in one read-only transaction with a statement timeout: a page never writes."""
    from astute_xero.hooks import astute_connection

    with closing(astute_connection()) as conn:
        conn.read_only = True
        with conn.transaction():
            conn.execute(load_sql("ui_statement_timeout"), {"timeout": STATEMENT_TIMEOUT})
            yield conn


def _page(html: str) -> HTMLResponse:
    # Finance data: never cached; framed only by the Airflow UI (the same origin).
    return HTMLResponse(html, headers={"Cache-Control": "no-store", "X-Frame-Options": "SAMEORIGIN",
                                       "Content-Security-Policy": "frame-ancestors 'self'"})


def _int(value: str, name: str, errors: list[str]) -> int | None:
    value = value.strip()
    if not value:
        return None
    if value.isascii() and value.isdigit() and len(value) <= 18:
        return int(value)
    errors.append(f"{name} must be a whole number (got {value!r}).")
    return None


def _date(value: str, name: str, errors: list[str]) -> dt.date | None:
    value = value.strip()
    if not value:
        return None
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        errors.append(f"{name} must be a date, YYYY-MM-DD (got {value!r}).")
        return None


def _query(request: Request, **changes: object) -> str:
    """The request's query string with some parameters changed (None: removed)."""
    params = {key: value for key, value in request.query_params.items() if key not in changes}
    params.update({key: str(value) for key, value in changes.items() if value is not None})
    return urlencode(params)


def integration_page(billing_entity_id: str = "", date_from: str = "", date_to: str = "") -> Response:
    errors: list[str] = []
    entity_id = _int(billing_entity_id, "Billing entity", errors)
    start, end = _date(date_from, "Dated from", errors), _date(date_to, "Dated to", errors)
    if start and end and start > end:
        errors.append(f"Dated from ({start}) is after dated to ({end}).")
    report = None
    with astute_reading() as conn:
        entities = [EntityChoice(*row) for row in conn.execute(load_sql("billing_entities_all"))]
        if entity_id is None and not billing_entity_id:  # the first entity exporting to Xero, as a start
            entity_id = next((e.id for e in entities if e.tenant_id and e.live), entities[0].id if entities else None)
        if entity_id is not None and not errors:
            try:
                report = build_report(conn, entity_id, start, end)
            except ValueError as error:  # no such entity
                errors.append(str(error))
    if not entities:
        errors.append("There is no billing entity in astute.billing_entity.")
    form = {"date_from": date_from.strip(), "date_to": date_to.strip()}
    html = rendering.render_integration(report, rendering.links_in_ui(), entities=entities, form=form, errors=errors)
    return _page(html)


def api_log_page(
    request: Request, run_id: str = "", tenant_id: str = "", errors_only: str = "", before: str = "", limit: str = ""
) -> Response:
    errors: list[str] = []
    size = _int(limit, "Rows a page", errors) or api_log.PAGE_SIZES[0]
    if not 1 <= size <= api_log.MAX_PAGE_SIZE:
        errors.append(f"Rows a page: 1 to {api_log.MAX_PAGE_SIZE}.")
        size = api_log.PAGE_SIZES[0]
    wanted = api_log.ApiLogFilter(
        run_id=_int(run_id, "Run", errors),
        tenant_id=tenant_id.strip() or None,
        errors_only=errors_only.strip() not in ("", "0", "false"),
        before_id=_int(before, "Page", errors),
        limit=size,
    )
    with astute_reading() as conn:
        runs = [RunChoice(*row) for row in conn.execute(load_sql("ui_export_runs"), {"limit": RECENT_RUNS})]
        organisations = conn.execute(load_sql("ui_organisations")).fetchall()
        log = api_log.read_page(conn, wanted)
    if wanted.tenant_id and all(tenant != wanted.tenant_id for tenant, _ in organisations):  # no entity's (now)
        organisations.append((wanted.tenant_id, "no billing entity"))
    if wanted.run_id is not None and all(r.run_id != wanted.run_id for r in runs):  # an older run, asked for by id
        runs.append(RunChoice(wanted.run_id, "export", "", None, None, None))
    html = rendering.render("api_log.html", page=pages.API_LOG, log=log, links=rendering.links_in_ui(), runs=runs,
                            organisations=organisations, organisation_names=dict(organisations),
                            page_sizes=sorted({*api_log.PAGE_SIZES, wanted.limit}), errors=errors,
                            query=lambda **changes: _query(request, **changes))
    return _page(html)


def contact_links_page(request: Request, q: str = "", customer_id: str = "") -> Response:
    errors: list[str] = []
    wanted = _int(customer_id, "Customer", errors)
    customer = None
    with astute_reading() as conn:
        matches = contact_links.search(conn, q)
        if wanted is not None:
            customer = contact_links.customer_links(conn, wanted)
            if customer is None:
                errors.append(f"No customer has id {wanted}.")
        elif len(matches) == 1:  # one match: show it at once
            customer = contact_links.customer_links(conn, matches[0].customer_id)
    html = rendering.render("contact_links.html", page=pages.CONTACT_LINKS, links=rendering.links_in_ui(), q=q.strip(),
                            matches=matches, customer=customer, errors=errors, search_limit=contact_links.SEARCH_LIMIT,
                            remove_dag_id=pages.REMOVE_CONTACT_LINK_DAG_ID, command=contact_links.removal_command,
                            query=lambda **changes: _query(request, **changes))
    return _page(html)


def _refused(request: Request, error: StarletteHTTPException) -> Response:
    """401 and 403 as a page with the way to log in (the status stays: nothing is shown without a login)."""
    if error.status_code not in (401, 403):
        return PlainTextResponse(f"{error.status_code}: {error.detail}", status_code=error.status_code)
    from airflow.api_fastapi.app import get_auth_manager

    # Back to the page, inside the UI, once logged in.
    shown = next((p for p in pages.PAGES if request.url.path.rstrip("/").endswith(f"{pages.URL_PREFIX}/{p.path}")),
                 pages.INTEGRATION)
    login = get_auth_manager().get_url_login(next_url=rendering.links_in_ui().page(shown, **request.query_params))
    html = rendering.render("refused.html", status=error.status_code, detail=str(error.detail), login=login)
    return HTMLResponse(html, status_code=error.status_code, headers=getattr(error, "headers", None))


def _database_error(request: Request, error: psycopg.Error) -> Response:
    """The Astute database unreachable or a query refused (its timeout): said, with the details in the log."""
    log.exception("Xero Integration report: %s %s could not read the Astute database", request.method, request.url.path,
                  exc_info=error)
    return HTMLResponse(rendering.render("unavailable.html"), status_code=503, headers={"Cache-Control": "no-store"})


def _home(request: Request) -> Response:
    return RedirectResponse(request.url_for("integration"))


def create_app() -> FastAPI:
    """The app the API server mounts at pages.URL_PREFIX: every route requires an Airflow login."""
    app = FastAPI(title="Xero Integration report", docs_url=None, redoc_url=None, openapi_url=None,
                  dependencies=[Depends(can_read_export_runs)])
    app.add_api_route("/", _home, methods=["GET"], include_in_schema=False)
    for page, endpoint in ((pages.INTEGRATION, integration_page), (pages.API_LOG, api_log_page),
                           (pages.CONTACT_LINKS, contact_links_page)):
        app.add_api_route(f"/{page.path}", endpoint, methods=["GET"], name=page.path.replace("-", "_"),
                          response_class=HTMLResponse)
    app.add_exception_handler(StarletteHTTPException, _refused)
    app.add_exception_handler(psycopg.Error, _database_error)
    return app

