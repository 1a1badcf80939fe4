"""The pages' actions as plain Python: the form's token, what each action asks its DAG for, which run covers an entity."""

from __future__ import annotations

import datetime as dt

import pytest

from astute_xero.report import actions
from astute_xero.report.airflow_api import DagRun

SECRET = "the API server's secret key"


def test_the_form_token_is_bound_to_the_user_and_the_very_airflow_token():
    token = actions.csrf_token(SECRET, "admin", "jwt-1")
    assert actions.csrf_valid(SECRET, "admin", "jwt-1", token)
    assert not actions.csrf_valid(SECRET, "viewer", "jwt-1", token), "another user"
    assert not actions.csrf_valid(SECRET, "admin", "jwt-2", token), "another login (or the token renewed)"
    assert not actions.csrf_valid("another server's key", "admin", "jwt-1", token)
    assert not actions.csrf_valid(SECRET, "admin", "jwt-1", ""), "no token"


def test_each_action_asks_its_dag_for_exactly_the_pages_values():
    assert actions.export_conf(3, dt.date(2026, 6, 1), None, preview=True) == {
        "billing_entity_ids": [3], "date_from": "2026-06-01", "date_to": None, "preview": True}
    assert actions.reset_conf("credit_note", 9) == {"invoice_ids": [], "credit_note_ids": [9]}
    assert actions.remove_link_conf(5, "tenant") == {"customer_id": 5, "tenant_id": "tenant"}
    with pytest.raises(ValueError):
        actions.reset_conf("payment", 1)


@pytest.mark.parametrize(("conf", "covers"), [
    ({"billing_entity_ids": [1]}, True), ({"billing_entity_ids": ["1", "2"]}, True), ({}, True),
    ({"billing_entity_ids": None}, True), ({"billing_entity_ids": [2]}, False),
])
def test_a_run_going_covers_the_entity_it_exports_or_every_entity(conf, covers):
    run = DagRun("xero_invoice_export", "manual__1", "running", conf, "admin")
    assert actions.exports_entity(run, 1) is covers
