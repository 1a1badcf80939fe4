"""
### Remove a customer's Contact link

For when Contacts were merged or tidied in Xero and a customer should start afresh: the link
between the Astute customer and its Xero Contact is removed (in one organisation, or in every
organisation when `tenant_id` is empty). The next export for that customer finds the Contact
by name, or creates it, and stores the new link.
"""

from __future__ import annotations

import datetime as dt

from airflow.sdk import Param, dag, get_current_context, task

from astute_xero import tasks


@dag(
    dag_id="xero_remove_contact_link",
    doc_md=__doc__,
    schedule=None,
    start_date=dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc),
    catchup=False,
    default_args={"owner": "data-engineering", "retries": 1, "retry_delay": dt.timedelta(seconds=30)},
    tags=["xero", "astute", "operations"],
    params={
        "customer_id": Param(type="integer", title="Customer", description="The Astute customer id."),
        "tenant_id": Param(
            None, type=["null", "string"], title="Xero organisation (tenant id)",
            description="Empty: remove the customer's link in every organisation.",
        ),
    },
)
def xero_remove_contact_link():
    @task
    def remove_contact_link() -> list:
        return tasks.remove_contact_link(dict(get_current_context()["params"]))

    remove_contact_link()


xero_remove_contact_link()
