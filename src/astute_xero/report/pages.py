"""The report's pages in the Airflow UI: where the plugin mounts them and how the UI's nav reaches them.

Imported by the plugin in every Airflow process, so it imports nothing: the pages themselves
(FastAPI, Jinja2, the database) are in astute_xero.report.web, loaded by the API server on the
first request.

The UI shows a nav entry at /plugin/<url_route>, an iframe of <href>; a path after the route is
the iframe's own path (Airflow 3.3 keeps the two in step), so /plugin/xero-api-log/xero/api-log?run_id=7
opens the API Log filtered on run 7.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlencode

URL_PREFIX = "/xero"  # the FastAPI app's mount point in the API server
EXPORT_DAG_ID = "xero_invoice_export"  # whoever may read its runs may read the report
REMOVE_CONTACT_LINK_DAG_ID = "xero_remove_contact_link"
RESET_FOR_EXPORT_DAG_ID = "xero_reset_for_export"


@dataclass(frozen=True)
class Page:
    title: str
    url_route: str  # the UI's route: /plugin/<url_route>
    path: str  # the app's route, under URL_PREFIX
    top_level: bool = False  # its own button in the nav bar; the others are in the nav's Plugins menu

    @property
    def href(self) -> str:
        """The iframe's source: relative, as Airflow wants it for a nav view."""
        return f"{URL_PREFIX.lstrip('/')}/{self.path}"

    def ui_path(self, **query: object) -> str:
        """This page inside the Airflow UI, with a query (empty values left out)."""
        search = urlencode({key: value for key, value in query.items() if value not in (None, "")})
        return f"/plugin/{self.url_route}{URL_PREFIX}/{self.path}" + (f"?{search}" if search else "")


INTEGRATION = Page("Xero Integration", "xero-integration", "integration", top_level=True)
API_LOG = Page("Xero API Log", "xero-api-log", "api-log")
CONTACT_LINKS = Page("Link to Xero", "xero-contact-links", "contact-links")
PAGES = (INTEGRATION, API_LOG, CONTACT_LINKS)
