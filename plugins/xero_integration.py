"""The Xero Integration report in the Airflow UI: its pages, and their entries in the UI's nav.

Airflow imports this file in every process (scheduler, dag-processor, triggerer, API server), so it
imports only the pages' names and routes (astute_xero.report.pages, no dependencies). The pages
themselves (FastAPI, Jinja2, the Astute database) are built by the API server on the first request
(astute_xero.report.web); each requires an Airflow login.
"""

from __future__ import annotations

from typing import Any

from airflow.plugins_manager import AirflowPlugin

from astute_xero.report import pages


class _ReportApp:
    """The ASGI app mounted at /xero: astute_xero.report.web's FastAPI app, created when first called."""

    def __init__(self) -> None:
        self._app: Any = None

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if self._app is None:
            from astute_xero.report.web import create_app

            # The API server's own app (the one that mounted this): the actions call its REST API.
            self._app = create_app(scope.get("app"))
        await self._app(scope, receive, send)


class XeroIntegrationPlugin(AirflowPlugin):
    name = "xero_integration"
    fastapi_apps = [{"app": _ReportApp(), "url_prefix": pages.URL_PREFIX, "name": "Xero Integration report"}]
    external_views = [
        {
            "name": page.title,
            "href": page.href,  # relative: the API server's /xero/…, shown in an iframe
            "url_route": page.url_route,  # the UI's /plugin/<url_route>
            "destination": "nav",
            "nav_top_level": page.top_level,  # the report gets a nav button; the others are under Plugins
        }
        for page in pages.PAGES
    ]
