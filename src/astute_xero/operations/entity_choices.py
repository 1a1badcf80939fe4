"""The billing entities the export's trigger form offers by name.

Their names live in the Astute database, and a DAG file may not query it while Airflow parses it (every
parse, in the dag-processor, every 30 seconds). So a task reads them (xero_housekeeping's
`remember_billing_entities`, daily, and whenever triggered) and keeps them in one Airflow Variable; the DAG
file reads that Variable (Airflow's own store, never the Astute database) to fill the Param's choices. Until
the task has run once, the form offers no list and takes ids, as before.
"""

from __future__ import annotations

import json
import logging
from contextlib import closing
from typing import TYPE_CHECKING

from astute_xero.sql import load_sql

if TYPE_CHECKING:  # the DAG file imports this module on every parse: psycopg only where a task reads Astute
    import psycopg

log = logging.getLogger(__name__)

VARIABLE = "xero_billing_entity_choices"


def read_choices(conn: psycopg.Connection) -> dict[str, str]:
    """Billing entity id -> what the form shows: its name and id, and why it would be skipped."""
    choices = {}
    for entity_id, name, tenant_id, live in conn.execute(load_sql("billing_entities_all")):
        why = "" if tenant_id and live else (" - not linked to Xero" if not tenant_id else " - not live")
        choices[str(entity_id)] = f"{name} ({entity_id}){why}"
    return choices


def cached_choices() -> dict[str, str]:
    """The choices the last refresh kept ({} before the first, or when Airflow's store cannot be read)."""
    try:
        from airflow.sdk import Variable

        value = Variable.get(VARIABLE, default=None)
        choices = json.loads(value) if value else {}
        return {str(k): str(v) for k, v in choices.items()} if isinstance(choices, dict) else {}
    except Exception:  # noqa: BLE001 - a form without names is better than a DAG that fails to parse
        return {}


def remember_choices_task() -> dict[str, str]:
    """Read the entities and keep them in the Variable (written only when they changed)."""
    from airflow.sdk import Variable

    from astute_xero.hooks import astute_connection

    with closing(astute_connection()) as conn:
        choices = read_choices(conn)
    if choices != cached_choices():
        Variable.set(VARIABLE, json.dumps(choices))
        log.info("The export's trigger form now offers %d billing entities: %s", len(choices),
                 ", ".join(choices.values()))
    else:
        log.info("The billing entities are unchanged (%d)", len(choices))
    return choices
