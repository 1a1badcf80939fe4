"""The report's pages in the Airflow UI: a FastAPI app the API server mounts at /xero (plugins/xero_integration.py).

    /xero/integration    the Xero Integration report: Report Settings (billing entity, dated from/to),
                         Report Summary, what blocks the export and what to fix, the last runs
    /xero/api-log        the API Log: one row per Xero call, by run and organisation, a page at a time
    /xero/contact-links  Link to Xero: a customer's Contact in each organisation, and Remove link
    /xero/actions/*      the pages' buttons (POST: Preview and Export, Reset for export, Remove link) and the
                         banner's JSON (GET /xero/actions/status): see astute_xero.report.actions

Every page is read live from the Astute database (the Airflow connection astute_db), in one read-only
transaction, and rendered with the same Jinja templates as the report file the export writes.

Airflow does not protect a plugin's app: every route here depends on Airflow's own security
dependency, so a request without a valid Airflow token (the UI's `_token` cookie, or a Bearer
token) is refused with 401 (403 for an invalid token), and a user must be allowed to read the runs
of the export DAG.

An action (POST) is taken only from a form this server rendered for the same login (a CSRF token bound to
the user's Airflow token), posted from this server's own origin (Origin, else Referer), by a user Airflow's
auth manager allows to trigger that DAG; it starts the DAG's run through Airflow's REST API with the user's
own token (report.airflow_api), so Airflow checks the permission again and records the user as the run's
triggering user. Nothing here writes to the Astute database.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Iterator
from contextlib import closing, contextmanager
from dataclasses import dataclass
from urllib.parse import urlencode

import psycopg
from fastapi import Depends, FastAPI, Form, HTTPException, Request
from fastapi.responses import HTMLResponse, JSONResponse, PlainTextResponse, RedirectResponse, Response
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException

from airflow.api_fastapi.auth.managers.models.resource_details import DagAccessEntity, DagDetails
from airflow.api_fastapi.core_api.security import GetUserDep, requires_access_dag

from astute_xero.report import actions, api_log, contact_links, pages, rendering
from astute_xero.report.airflow_api import AirflowApi, AirflowApiError, DagRun
from astute_xero.report.integration import build_report
from astute_xero.sql import load_sql

log = logging.getLogger(__name__)

STATEMENT_TIMEOUT = "30s"
RECENT_RUNS = 50

# Reading the report is reading what the export DAG's runs did.
can_read_export_runs = requires_access_dag("GET", DagAccessEntity.RUN, param_dag_id=pages.EXPORT_DAG_ID)
# An action is a run of its DAG: whoever may trigger the DAG may press its button (and nobody else sees it).
can_trigger = {dag_id: requires_access_dag("POST", DagAccessEntity.RUN, param_dag_id=dag_id)
               for dag_id in actions.ACTION_DAGS}


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


def _credential(request: Request) -> str:
    """The Airflow token the request was authenticated with: a Bearer token, else the UI's `_token` cookie (the
    order of Airflow's own get_user)."""
    from airflow.api_fastapi.auth.managers.base_auth_manager import COOKIE_NAME_JWT_TOKEN

    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() == "bearer" and token.strip():
        return token.strip()
    return request.cookies.get(COOKIE_NAME_JWT_TOKEN, "")


def _secret() -> str:
    from airflow.configuration import conf

    return conf.get("api", "secret_key")


def _user_id(user) -> str:
    return str(user.get_id() or user.get_name())


@dataclass(frozen=True)
class Permissions:
    """Which actions the user may take: what Airflow's auth manager says of triggering each DAG."""

    export: bool
    reset: bool
    remove_link: bool
    csrf_token: str

    @property
    def any(self) -> bool:
        return self.export or self.reset or self.remove_link


def _permissions(request: Request, user) -> Permissions:
    from airflow.api_fastapi.app import get_auth_manager

    def may(dag_id: str) -> bool:
        return get_auth_manager().is_authorized_dag(method="POST", access_entity=DagAccessEntity.RUN,
                                                    details=DagDetails(id=dag_id), user=user)

    export, reset, remove = (may(dag_id) for dag_id in actions.ACTION_DAGS)
    token = actions.csrf_token(_secret(), _user_id(user), _credential(request)) if export or reset or remove else ""
    return Permissions(export, reset, remove, token)


def _airflow(request: Request) -> AirflowApi:
    return AirflowApi(request.app.state.airflow_app, _credential(request))


def integration_page_sync(request: Request, billing_entity_id: str, date_from: str, date_to: str,
                          permissions: Permissions, following: DagRun | None, active: list[DagRun] | None,
                          reset: str = "") -> Response:
    errors: list[str] = []
    entity_id = _int(billing_entity_id, "Billing entity", errors)
    start, end = _date(date_from, "Dated from", errors), _date(date_to, "Dated to", errors)
    if start and end and start > end:
        errors.append(f"Dated from ({start}) is after dated to ({end}).")
    report = None
    resettable: list[actions.ResettableDocument] = []
    running = None
    with astute_reading() as conn:
        entities = [EntityChoice(*row) for row in conn.execute(load_sql("billing_entities_all"))]
        if entity_id is None and not billing_entity_id:  # the first entity exporting to Xero, as a start
            entity_id = next((e.id for e in entities if e.tenant_id and e.live), entities[0].id if entities else None)
        if entity_id is not None and not errors:
            try:
                report = build_report(conn, entity_id, start, end)
            except ValueError as error:  # no such entity
                errors.append(str(error))
        if report is not None:
            resettable = actions.resettable(conn, entity_id, start, end)
            if following is None and active:
                running = actions.running_for_entity(conn, active, entity_id)
                following = running
        banner = actions.follow(conn, following, entity_id) if following is not None else None
    if not entities:
        errors.append("There is no billing entity in astute.billing_entity.")
    form = {"date_from": date_from.strip(), "date_to": date_to.strip()}
    banner_query = urlencode({"dag_id": following.dag_id, "run_id": following.run_id,
                              "billing_entity_id": entity_id or ""}) if following is not None else ""
    confirm_reset = None
    if reset and permissions.reset:  # "Reset for export…" asks first, naming the document
        confirm_reset = next((d for d in resettable if f"{d.kind}-{d.document_id}" == reset), None)
    html = rendering.render_integration(report, rendering.links_in_ui(), entities=entities, form=form, errors=errors,
                                        permissions=permissions, resettable=resettable, banner=banner,
                                        banner_query=banner_query, already_running=running is not None,
                                        confirm_reset=confirm_reset, query=lambda **changes: _query(request, **changes))
    return _page(html)


async def _followed_run(request: Request, follow_dag: str, follow_run: str) -> DagRun | None:
    if not follow_dag or not follow_run or follow_dag not in actions.ACTION_DAGS:
        return None
    try:
        return await _airflow(request).dag_run(follow_dag, follow_run)
    except AirflowApiError:
        return None  # not (or no longer) there, or not the user's to read: nothing to follow


async def integration_page(request: Request, user: GetUserDep, billing_entity_id: str = "", date_from: str = "",
                           date_to: str = "", follow_dag: str = "", follow_run: str = "", reset: str = "") -> Response:
    permissions = _permissions(request, user)
    following = await _followed_run(request, follow_dag, follow_run)
    active = None
    if following is None:
        try:
            active = await _airflow(request).active_runs(pages.EXPORT_DAG_ID)
        except AirflowApiError as error:
            log.warning("Xero Integration page: could not list the export's active runs: %s", error)
    return await run_in_threadpool(integration_page_sync, request, billing_entity_id, date_from, date_to, permissions,
                                   following, active, reset)


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


def contact_links_page_sync(q: str, customer_id: str, remove: str, permissions: Permissions,
                            following: DagRun | None, request: Request) -> Response:
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
        banner = actions.follow(conn, following, None) if following is not None else None
    confirming = None
    if customer is not None and remove and permissions.remove_link:
        confirming = next((link for link in customer.links if link.tenant_id == remove), None)
    html = rendering.render("contact_links.html", page=pages.CONTACT_LINKS, links=rendering.links_in_ui(), q=q.strip(),
                            matches=matches, customer=customer, errors=errors, search_limit=contact_links.SEARCH_LIMIT,
                            remove_dag_id=pages.REMOVE_CONTACT_LINK_DAG_ID, command=contact_links.removal_command,
                            permissions=permissions, confirming=confirming, banner=banner,
                            banner_query=urlencode({"dag_id": following.dag_id, "run_id": following.run_id})
                            if following is not None else "",
                            query=lambda **changes: _query(request, **changes))
    return _page(html)


async def contact_links_page(request: Request, user: GetUserDep, q: str = "", customer_id: str = "",
                             remove: str = "", follow_dag: str = "", follow_run: str = "") -> Response:
    permissions = _permissions(request, user)
    following = await _followed_run(request, follow_dag, follow_run)
    return await run_in_threadpool(contact_links_page_sync, q, customer_id, remove, permissions, following, request)


# --- The actions ------------------------------------------------------------------------------------------

def _same_origin(request: Request) -> bool:
    """The form was posted from a page of this server: its Origin (else its Referer) is the host it was sent to
    (or [api] base_url's). A browser always sends Origin with a form's POST; another site cannot forge it."""
    from urllib.parse import urlsplit

    claimed = request.headers.get("origin") or request.headers.get("referer") or ""
    if not claimed or claimed == "null":
        return False
    netloc = urlsplit(claimed).netloc.lower()
    allowed = {request.headers.get("host", "").lower()}
    base = rendering._airflow_base_url()
    if base:
        allowed.add(urlsplit(base).netloc.lower())
    return bool(netloc) and netloc in allowed


def _check_form(request: Request, user, csrf_token: str) -> None:
    """Refuse an action not posted from this server's page for this login (a forged cross-site request, a replayed
    form of another login, a request without the user's credentials never gets here: get_user refused it)."""
    if not _same_origin(request):
        log.warning("Xero Integration page: refused an action by %s: posted from another origin (%s)",
                    user.get_name(), request.headers.get("origin") or request.headers.get("referer") or "none given")
        raise HTTPException(403, "Refused: the form was not posted from this Airflow's own page")
    if not actions.csrf_valid(_secret(), _user_id(user), _credential(request), csrf_token):
        log.warning("Xero Integration page: refused an action by %s: no valid form token", user.get_name())
        raise HTTPException(403, "Refused: the form's token is missing or belongs to another login; reload the page "
                                 "and press the button again")


def _page_path(request: Request, page: pages.Page) -> str:
    """A page's path on this server: under the mount point (root_path). Not url_for: the app is mounted behind the
    plugin's lazy ASGI wrapper, which the API server's router cannot look into."""
    return f"{request.scope.get('root_path', '')}/{page.path}"


def _back(request: Request, page: pages.Page, **query: object) -> RedirectResponse:
    """Back to a page (after POST, a GET: reloading it never starts a run twice)."""
    path = _page_path(request, page)
    search = urlencode({key: value for key, value in query.items() if value not in (None, "")})
    return RedirectResponse(path + (f"?{search}" if search else ""), status_code=303)


def _not_started(what: str, error: AirflowApiError) -> Response:
    html = rendering.render("action_refused.html", what=what, status=error.status, detail=error.detail,
                            links=rendering.links_in_ui(), page=pages.INTEGRATION)
    return HTMLResponse(html, status_code=error.status if error.status in (400, 403, 404, 409) else 502,
                        headers={"Cache-Control": "no-store"})


async def _start(request: Request, user, dag_id: str, conf: dict, what: str) -> DagRun:
    run = await _airflow(request).trigger(dag_id, conf, note=f"{what}: from the Xero Integration page")
    log.info("Xero Integration page: %s started %s run %s (%s) with conf %s", user.get_name(), dag_id, run.run_id,
             what, conf)
    return run


async def export_action(
    request: Request, user: GetUserDep, _: None = Depends(can_trigger[pages.EXPORT_DAG_ID]),
    csrf_token: str = Form(""), billing_entity_id: int = Form(...), date_from: str = Form(""),
    date_to: str = Form(""), mode: str = Form(...),
) -> Response:
    """Preview or Export: a run of xero_invoice_export for the entity and dates of the Report Settings, unless one is
    already going for the entity (then the page follows that one)."""
    _check_form(request, user, csrf_token)
    if mode not in ("preview", "export"):
        raise HTTPException(400, "mode must be preview or export")
    errors: list[str] = []
    start, end = _date(date_from, "Dated from", errors), _date(date_to, "Dated to", errors)
    if errors or (start and end and start > end):
        raise HTTPException(400, " ".join(errors) or f"Dated from ({start}) is after dated to ({end}).")
    query = {"billing_entity_id": billing_entity_id, "date_from": date_from, "date_to": date_to}
    api = _airflow(request)
    active = await api.active_runs(pages.EXPORT_DAG_ID)

    def already_going() -> DagRun | None:
        with astute_reading() as conn:
            return actions.running_for_entity(conn, active, billing_entity_id)

    going = await run_in_threadpool(already_going)
    if going is not None:
        log.info("Xero Integration page: %s asked for a %s of entity %s; run %s already going: shown, not started",
                 user.get_name(), mode, billing_entity_id, going.run_id)
        return _back(request, pages.INTEGRATION, **query, follow_dag=going.dag_id, follow_run=going.run_id)
    conf = actions.export_conf(billing_entity_id, start, end, preview=mode == "preview")
    try:
        run = await _start(request, user, pages.EXPORT_DAG_ID, conf, mode.capitalize())
    except AirflowApiError as error:
        return _not_started(mode.capitalize(), error)
    return _back(request, pages.INTEGRATION, **query, follow_dag=run.dag_id, follow_run=run.run_id)


async def reset_action(
    request: Request, user: GetUserDep, _: None = Depends(can_trigger[pages.RESET_FOR_EXPORT_DAG_ID]),
    csrf_token: str = Form(""), kind: str = Form(...), document_id: int = Form(...),
    billing_entity_id: str = Form(""), date_from: str = Form(""), date_to: str = Form(""),
) -> Response:
    """Reset for export: a run of xero_reset_for_export for one document (the DAG applies the rules again)."""
    _check_form(request, user, csrf_token)
    try:
        conf = actions.reset_conf(kind, document_id)
        run = await _start(request, user, pages.RESET_FOR_EXPORT_DAG_ID, conf, "Reset for export")
    except ValueError as error:
        raise HTTPException(400, str(error)) from None
    except AirflowApiError as error:
        return _not_started("Reset for export", error)
    return _back(request, pages.INTEGRATION, billing_entity_id=billing_entity_id, date_from=date_from, date_to=date_to,
                 follow_dag=run.dag_id, follow_run=run.run_id)


async def remove_link_action(
    request: Request, user: GetUserDep, _: None = Depends(can_trigger[pages.REMOVE_CONTACT_LINK_DAG_ID]),
    csrf_token: str = Form(""), customer_id: int = Form(...), tenant_id: str = Form(...),
) -> Response:
    """Remove link (confirmed on the page): a run of xero_remove_contact_link for one customer and organisation."""
    _check_form(request, user, csrf_token)
    try:
        run = await _start(request, user, pages.REMOVE_CONTACT_LINK_DAG_ID,
                           actions.remove_link_conf(customer_id, tenant_id.strip()), "Remove link")
    except AirflowApiError as error:
        return _not_started("Remove link", error)
    return _back(request, pages.CONTACT_LINKS, customer_id=customer_id, follow_dag=run.dag_id, follow_run=run.run_id)


async def action_status(request: Request, dag_id: str, run_id: str, billing_entity_id: str = "") -> Response:
    """The banner's JSON: the run's state from Airflow's REST API (as the user), and what it did from xero_sync."""
    if dag_id not in actions.ACTION_DAGS:
        raise HTTPException(404, "not an action of these pages")
    errors: list[str] = []
    entity_id = _int(billing_entity_id, "Billing entity", errors)
    try:
        run = await _airflow(request).dag_run(dag_id, run_id)
    except AirflowApiError as error:
        return JSONResponse({"error": error.detail}, status_code=error.status, headers={"Cache-Control": "no-store"})

    def read() -> actions.Banner:
        with astute_reading() as conn:
            return actions.follow(conn, run, entity_id)

    banner = await run_in_threadpool(read)
    body = banner.as_json()
    body["html"] = rendering.render("_banner.html", banner=banner, links=rendering.links_in_ui())
    return JSONResponse(body, headers={"Cache-Control": "no-store"})


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
    return RedirectResponse(_page_path(request, pages.INTEGRATION))


def create_app(airflow_app: object = None) -> FastAPI:
    """The app the API server mounts at pages.URL_PREFIX: every route requires an Airflow login. `airflow_app` is
    the API server's own app (whose REST API the actions call), the one that mounted this."""
    app = FastAPI(title="Xero Integration report", docs_url=None, redoc_url=None, openapi_url=None,
                  dependencies=[Depends(can_read_export_runs)])
    app.state.airflow_app = airflow_app
    app.add_api_route("/", _home, methods=["GET"], include_in_schema=False)
    for page, endpoint in ((pages.INTEGRATION, integration_page), (pages.API_LOG, api_log_page),
                           (pages.CONTACT_LINKS, contact_links_page)):
        app.add_api_route(f"/{page.path}", endpoint, methods=["GET"], name=page.path.replace("-", "_"),
                          response_class=HTMLResponse)
    for path, endpoint in (("export", export_action), ("reset", reset_action), ("remove-link", remove_link_action)):
        app.add_api_route(f"/actions/{path}", endpoint, methods=["POST"], name=f"action_{path.replace('-', '_')}")
    app.add_api_route("/actions/status", action_status, methods=["GET"], name="action_status")
    app.add_exception_handler(StarletteHTTPException, _refused)
    app.add_exception_handler(psycopg.Error, _database_error)
    return app

