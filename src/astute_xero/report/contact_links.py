"""Link to Xero (the help article's section of a customer's Integration tab): which Xero organisation and
Contact an Astute customer is linked to (xero_sync.contact_link), found by the customer's name or id.

Read only: a link is removed by a run of the DAG xero_remove_contact_link, which the page's Remove link button
starts through Airflow's REST API (report.actions, report.web) for a user allowed to trigger it.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass

import psycopg

from astute_xero.report.pages import REMOVE_CONTACT_LINK_DAG_ID
from astute_xero.sql import load_sql

SEARCH_LIMIT = 50


@dataclass(frozen=True)
class CustomerMatch:
    customer_id: int
    name: str
    organisations_linked: int


@dataclass(frozen=True)
class ContactLink:
    tenant_id: str
    xero_contact_id: str
    xero_contact_name: str
    linked_at: dt.datetime
    entity_names: str | None  # the billing entities exporting to that organisation

    def removal_conf(self, customer_id: int) -> dict[str, object]:
        """The trigger form's values that remove this link (and only this one)."""
        return {"customer_id": customer_id, "tenant_id": self.tenant_id}


@dataclass(frozen=True)
class CustomerLinks:
    customer_id: int
    name: str
    links: list[ContactLink]

    @property
    def removal_conf_all(self) -> dict[str, object]:
        """The trigger form's values that remove the customer's link in every organisation."""
        return {"customer_id": self.customer_id, "tenant_id": None}


def removal_command(conf: dict[str, object]) -> str:
    """The same removal from the command line."""
    return f"airflow dags trigger {REMOVE_CONTACT_LINK_DAG_ID} --conf '{json.dumps(conf)}'"


def search(conn: psycopg.Connection, text: str) -> list[CustomerMatch]:
    """Customers whose id is `text`, or whose name contains it (case-insensitive)."""
    text = text.strip()
    if not text:
        return []
    customer_id = int(text) if text.isascii() and text.isdigit() and len(text) <= 18 else None
    pattern = "%" + text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
    rows = conn.execute(load_sql("ui_customer_search"),
                        {"customer_id": customer_id, "name_pattern": pattern, "limit": SEARCH_LIMIT})
    return [CustomerMatch(*row) for row in rows]


def customer_links(conn: psycopg.Connection, customer_id: int) -> CustomerLinks | None:
    """The customer and its Contact link in each organisation; None when no customer has that id."""
    rows = conn.execute(load_sql("ui_customer_links"), {"customer_id": customer_id}).fetchall()
    if not rows:
        return None
    links = [ContactLink(tenant, contact_id, contact_name, linked_at, entities)
             for _, _, tenant, contact_id, contact_name, linked_at, entities in rows if tenant is not None]
    return CustomerLinks(rows[0][0], rows[0][1], links)
