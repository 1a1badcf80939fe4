"""The export's scope from its trigger form and its run: defaults, and backfills."""

from __future__ import annotations

import datetime as dt

import pytest
from airflow.sdk.exceptions import AirflowFailException

from astute_xero.export.tasks import run_scope

UTC = dt.timezone.utc


def test_a_regular_run_takes_everything_outstanding_up_to_its_interval_end():
    scope = run_scope({}, dt.datetime(2026, 6, 2, tzinfo=UTC))
    assert (scope.billing_entity_ids, scope.date_from, scope.date_to) == (None, None, dt.date(2026, 6, 1))


def test_a_backfill_run_looks_only_within_its_own_interval():
    scope = run_scope({}, dt.datetime(2026, 6, 2, tzinfo=UTC), backfill_interval_start=dt.datetime(2026, 6, 1, tzinfo=UTC))
    assert (scope.date_from, scope.date_to) == (dt.date(2026, 6, 1), dt.date(2026, 6, 1))


def test_the_form_wins_over_the_defaults():
    scope = run_scope({"billing_entity_ids": [3], "date_from": "2026-01-01", "date_to": "2026-03-31"},
                      dt.datetime(2026, 6, 2, tzinfo=UTC))
    assert (scope.billing_entity_ids, scope.date_from, scope.date_to) == ([3], dt.date(2026, 1, 1), dt.date(2026, 3, 31))


def test_dates_out_of_order_fail_with_a_clear_message():
    with pytest.raises(AirflowFailException, match=r"Dated from \(date_from\) 2026-05-01 is after Dated up to "
                                                   r"\(date_to\) 2026-04-01.*Set Dated from on or before Dated up to"):
        run_scope({"date_from": "2026-05-01", "date_to": "2026-04-01"}, None)


def test_entities_chosen_from_the_forms_list_come_as_text_and_are_ids_all_the_same():
    scope = run_scope({"billing_entity_ids": ["3", 4]}, dt.datetime(2026, 6, 2, tzinfo=UTC))
    assert scope.billing_entity_ids == [3, 4]
    with pytest.raises(AirflowFailException, match=r"Billing entities \(billing_entity_ids\): 'Astute AU' is not a "
                                                   r"billing entity id\. Choose the entities from the list"):
        run_scope({"billing_entity_ids": ["Astute AU"]}, None)
