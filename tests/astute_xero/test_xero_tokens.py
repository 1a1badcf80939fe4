"""The shared token chain against the sandbox's rotating refresh tokens, over HTTP through xero-python."""

from __future__ import annotations

import multiprocessing
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor

import psycopg
import pytest

from astute_xero.migrations import apply_migrations
from astute_xero.xero_tokens import (
    TokenStore,
    XeroAuthorisationError,
    XeroConnectionSettings,
    refresh_with_sdk,
)
from devtools.xero_setup import authorise_app


@pytest.fixture
def chain(db: psycopg.Connection, xero, database_url: str) -> Callable[..., TokenStore]:
    apply_migrations(db)
    tenant = xero.backend.add_tenant("Org")
    app = authorise_app(xero.backend, [tenant])

    def store(refresh_token: str = app.refresh_token) -> TokenStore:
        settings = XeroConnectionSettings(
            connection_id="xero_default", client_id=app.client_id, client_secret=app.client_secret,
            seed_refresh_token=refresh_token, api_url=xero.url, identity_url=xero.url,
        )
        return TokenStore(lambda: psycopg.connect(database_url, autocommit=True), settings, refresh_with_sdk)

    store.app = app  # type: ignore[attr-defined]
    store.tenant = tenant  # type: ignore[attr-defined]
    return store


def token_calls(xero) -> list:
    return [r for r in xero.backend.requests if r.path.endswith("/connect/token")]


def refresh_in_a_worker_process(database_url: str, settings: XeroConnectionSettings, barrier) -> str:
    """What an Airflow task does first: get an access token, here forcing a refresh, all at once."""
    store = TokenStore(lambda: psycopg.connect(database_url, autocommit=True), settings, refresh_with_sdk)
    barrier.wait(30)
    return store.access_token().value


def test_eight_worker_processes_refreshing_one_connection_at_once_break_nothing(chain, xero, database_url, db):
    xero.backend.limits.refresh_race_window_s = 5.0  # Xero fails the loser of two simultaneous refreshes
    store = chain()
    store.access_token()
    # The shared access token is about to expire: every worker starting now needs the next link at once.
    db.execute("UPDATE xero_sync.oauth_token SET access_expires_at = now()")
    settings = store._settings
    context = multiprocessing.get_context("spawn")
    with context.Manager() as manager, ProcessPoolExecutor(8, mp_context=context) as pool:
        barrier = manager.Barrier(8)
        futures = [pool.submit(refresh_in_a_worker_process, database_url, settings, barrier) for _ in range(8)]
        tokens = [f.result(timeout=120) for f in futures]
    assert len(tokens) == 8 and all(tokens)
    answers = [r.status for r in token_calls(xero)]
    assert answers and all(status == 200 for status in answers), f"no invalid_grant: {answers}"
    # The chain is still alive afterwards.
    assert chain().access_token(force_refresh=True).value


def test_a_valid_access_token_is_shared_not_refreshed_again(chain, xero):
    first = chain().access_token()
    second = chain().access_token()
    assert first.value == second.value
    assert len(token_calls(xero)) == 1


def test_a_new_refresh_token_in_the_connection_restarts_the_chain(chain, xero, db):
    chain().access_token()
    fresh = xero.backend.authorise(chain.app.client_id, [chain.tenant])
    token = chain(fresh).access_token()
    assert token.value
    (stored,) = db.execute("SELECT refresh_token FROM xero_sync.oauth_token").fetchone()
    assert stored not in (fresh, chain.app.refresh_token)


def test_a_broken_chain_says_re_authorise_and_shows_no_secret(chain, xero, db):
    chain().access_token()
    db.execute("UPDATE xero_sync.oauth_token SET refresh_token = 'revoked-by-someone', access_token = NULL")
    with pytest.raises(XeroAuthorisationError) as caught:
        chain().access_token()
    message = str(caught.value)
    assert "re-authorise" in message and "invalid_grant" in message
    assert chain.app.client_secret not in message and "revoked-by-someone" not in message
