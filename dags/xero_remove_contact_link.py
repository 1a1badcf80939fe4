"""
### Remove a customer's Contact link

For when Contacts were merged or tidied in Xero and a customer should start afresh: the link
between the Astute customer and its Xero Contact is removed (in one organisation, or in every
organisation when `tenant_id` is empty). The next export for that customer finds the Contact
by name, or creates it, and stores the new link.
"""

from __future__ import annotations

from airflow.sdk import Param, dag, get_current_context, task

from astute_xero.lazy import lazy_module
from astute_xero.dag_policy import OPERATIONS_DAG, SMALL_STEP_TIMEOUT

tasks = lazy_module("astute_xero.export.tasks")  # imported by the task that runs, not by every parse (astute_xero.lazy)


@dag(
    dag_id="xero_remove_contact_link",
    doc_md=__doc__,
    **OPERATIONS_DAG,
    params={
        "customer_id": Param(type="integer", title="Customer", description="The Astute customer id."),
        "tenant_id": Param(
            None, type=["null", "string"], title="Xero organisation (tenant id)",
            description="Empty: remove the customer's link in every organisation.",
        ),
    },
)
def xero_remove_contact_link():
    @task(execution_timeout=SMALL_STEP_TIMEOUT)  # one DELETE of a customer's links
    def remove_contact_link() -> list:
        return tasks.remove_contact_link(dict(get_current_context()["params"]))

    remove_contact_link()


xero_remove_contact_link()
