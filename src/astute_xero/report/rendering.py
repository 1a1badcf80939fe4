"""The report's HTML, rendered with Jinja2 from templates/ (autoescaped): one way to render each page.

The same templates make the pages of the Airflow UI (astute_xero.report.web, `Links.in_ui`) and the
self-contained HTML file the export writes per billing entity (integration.write_html): there the
settings form, the page tabs and the script are left out, and links to Airflow are absolute, or
absent when [api] base_url is not set.
"""

from __future__ import annotations

import datetime as dt
import os
from dataclasses import dataclass
from functools import cache
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, urlsplit

from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape

from astute_xero.report import pages

if TYPE_CHECKING:
    from astute_xero.report.integration import IntegrationReport


@dataclass(frozen=True)
class Links:
    """Where a page's links go.

    airflow: the Airflow UI's address, "" when the page is served on the same origin (the API server),
      "https://airflow.example.com" in a file; None: unknown, nothing links to Airflow.
    astute_invoice: the Astute portal's invoice page, with {invoice_id} (ASTUTE_INVOICE_URL, when set).
    in_ui: the page is served by the API server, inside the Airflow UI.
    """

    airflow: str | None = None
    astute_invoice: str | None = None
    in_ui: bool = False

    def _airflow(self, path: str) -> str | None:
        return None if self.airflow is None else f"{self.airflow}{path}"

    def dag(self, dag_id: str) -> str | None:
        """The DAG's page in the Airflow UI (its Trigger button opens the DAG's form)."""
        return self._airflow(f"/dags/{quote(dag_id, safe='')}")

    def dag_run(self, dag_id: str | None, run_id: str | None) -> str | None:
        """A DAG run in the Airflow UI: /dags/<dag_id>/runs/<run_id>."""
        if not dag_id or not run_id:
            return None
        return self._airflow(f"/dags/{quote(dag_id, safe='')}/runs/{quote(run_id, safe='')}")

    def page(self, page: pages.Page, **query: Any) -> str | None:
        """One of the report's pages, inside the Airflow UI."""
        return self._airflow(page.ui_path(**query))

    def invoice(self, invoice_id: int) -> str | None:
        """The invoice in the Astute portal."""
        return self.astute_invoice.format(invoice_id=invoice_id) if self.astute_invoice else None


def _astute_invoice_url() -> str | None:
    template = os.environ.get("ASTUTE_INVOICE_URL", "")
    return template if "{invoice_id}" in template and template.startswith(("https://", "http://")) else None


def _airflow_base_url() -> str | None:
    """[api] base_url, as set for this deployment (None when it is not: Airflow cannot guess it)."""
    try:
        from airflow.configuration import conf

        return conf.get("api", "base_url", fallback=None) or None
    except Exception:  # noqa: BLE001 - outside a configured Airflow the file simply has no links to it
        return None


def links_for_file() -> Links:
    """For a page read outside Airflow (the file the export writes): absolute links, where known."""
    base = _airflow_base_url()
    absolute = base if base and urlsplit(base).scheme in ("http", "https") else None
    return Links(airflow=absolute.rstrip("/") if absolute else None, astute_invoice=_astute_invoice_url())


def links_in_ui() -> Links:
    """For a page the API server serves: links to the UI on the same origin (under base_url's path)."""
    base = _airflow_base_url()
    return Links(airflow=urlsplit(base).path.rstrip("/") if base else "", astute_invoice=_astute_invoice_url(),
                 in_ui=True)


def _words(value: str | None) -> str:
    return (value or "").replace("_", " ")


def _when(value: dt.datetime | dt.date | None, pattern: str = "%Y-%m-%d %H:%M") -> str:
    if value is None:
        return ""
    if isinstance(value, dt.datetime) and value.tzinfo is not None:
        value = value.astimezone(dt.timezone.utc)
    return value.strftime(pattern)


@cache
def environment() -> Environment:
    env = Environment(
        loader=PackageLoader("astute_xero.report", "templates"),
        autoescape=select_autoescape(["html"]),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["words"] = _words
    env.filters["when"] = _when
    env.globals["pages"] = pages
    return env


def render(template: str, **context: Any) -> str:
    return environment().get_template(template).render(**context)


def render_integration(
    report: IntegrationReport | None,
    links: Links,
    *,
    entities: list[Any] = (),
    form: dict[str, str] | None = None,
    errors: list[str] = (),
    permissions: Any = None,
    resettable: list[Any] = (),
    banner: Any = None,
    banner_query: str = "",
    already_running: bool = False,
    confirm_reset: Any = None,
    query: Any = None,
) -> str:
    """The Xero Integration report. In the UI, the Report Settings form offers `entities` and shows the
    values asked for (`form`) and what was wrong with them (`errors`); `report` is None until one is chosen.
    The actions the user may take (`permissions`, web.Permissions: none in the file) and the banner of the run
    an action started (`banner`, actions.Banner, polled at actions/status?`banner_query` while it runs)."""
    from astute_xero.report import integration

    kinds = {name: getattr(integration, name)
             for name in ("VALIDATION_ERROR", "FAILED_IN_XERO", "WAITING_FOR_INVOICE", "NOT_ALLOCATED")}
    return render("integration.html", report=report, links=links, page=pages.INTEGRATION, kinds=kinds,
                  export_dag_id=pages.EXPORT_DAG_ID, entities=list(entities), form=form or {}, errors=list(errors),
                  permissions=permissions, resettable=list(resettable), banner=banner, banner_query=banner_query,
                  already_running=already_running, confirm_reset=confirm_reset,
                  query=query or (lambda **changes: ""))
