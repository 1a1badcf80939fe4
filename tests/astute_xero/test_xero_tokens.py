"""The shared token chain against the sandbox's rotating refresh tokens, over HTTP through xero-python."""

from __future__ import annotations

import datetime as dt
import io
import logging
import multiprocessing
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor

import psycopg
import pytest
from cryptography.fernet import Fernet

from astute_xero.xero import tokens as xero_tokens
from astute_xero.operations.migrations import apply_migrations
from astute_xero.xero.tokens import (
    TokenCipher,
    TokenStore,
    XeroAuthorisationError,
    XeroConnectionSettings,
    fingerprint,
    obtain_with_sdk,
)
from devtools.xero_setup import authorise_app
from astute_xero.xero.scopes import GRANULAR_SCOPES


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
        return TokenStore(lambda: psycopg.connect(database_url, autocommit=True), settings, obtain_with_sdk)

    store.app = app  # type: ignore[attr-defined]
    store.tenant = tenant  # type: ignore[attr-defined]
    return store


def token_calls(xero) -> list:
    return [r for r in xero.backend.requests if r.path.endswith("/connect/token")]


def refresh_in_a_worker_process(database_url: str, settings: XeroConnectionSettings, barrier) -> str:
    """What an Airflow task does first: get an access token, here forcing a refresh, all at once."""
    store = TokenStore(lambda: psycopg.connect(database_url, autocommit=True), settings, obtain_with_sdk)
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
    fresh = xero.backend.authorise(chain.app.client_id, [chain.tenant], scope=GRANULAR_SCOPES)
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


# --- tokens at rest, in logs, and a token endpoint that never answers (issue 9) --------------------


@pytest.fixture
def fernet_key(monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[[str], None]]:
    """Switch Airflow's [core] fernet_key for this test (get_fernet caches its answer)."""
    from airflow.sdk.crypto import get_fernet

    def use(key: str) -> None:
        monkeypatch.setenv("AIRFLOW__CORE__FERNET_KEY", key)
        get_fernet.cache_clear()

    yield use
    get_fernet.cache_clear()  # the environment is restored by monkeypatch right after


def issued_tokens(xero) -> set[str]:
    """Every access and refresh token the sandbox ever issued in this test."""
    identity = xero.backend.identity
    return set(identity.refresh_grants) | set(identity.access_grants)


def plaintext_at_rest(db: psycopg.Connection, xero) -> list[str]:
    """The columns of xero_sync.oauth_token that hold a token Xero issued, as Xero issued it."""
    cursor = db.execute("SELECT * FROM xero_sync.oauth_token")
    names = [column.name for column in cursor.description]
    tokens = issued_tokens(xero)
    return [
        name
        for row in cursor.fetchall()
        for name, value in zip(names, row)
        if isinstance(value, str) and any(token in value for token in tokens)
    ]


def issue_outside_the_pipeline(xero, refresh_token: str):
    """A refresh done by someone else (the old code, another process): its tokens were never masked here."""
    identity = xero.backend.identity
    app = identity.apps[identity.refresh_grants[refresh_token].client_id]
    return identity.refresh(app, refresh_token)


def write_as_the_old_code_did(db: psycopg.Connection, store: TokenStore, refresh_token: str,
                              access_token: str | None, expires_at) -> None:
    """The row as the plaintext version of the pipeline wrote it (its token_seed and token_store)."""
    settings = store._settings
    db.execute("DELETE FROM xero_sync.oauth_token")
    db.execute(
        "INSERT INTO xero_sync.oauth_token (connection_id, seed_fingerprint, refresh_token, access_token,"
        " access_expires_at, scope) VALUES (%s, %s, %s, %s, %s, %s)",
        (settings.connection_id, fingerprint(settings.seed_refresh_token), refresh_token, access_token,
         expires_at, settings.scope),
    )


def masked_in_logs(text: str) -> str:
    """`text` as a task log would show it: through the processor Airflow runs on every task log line, and
    through Airflow's masking filter on a standard logging handler."""
    from airflow.sdk._shared.secrets_masker import SecretsMasker, _secrets_masker
    from airflow.sdk.log import mask_logs

    event = mask_logs(None, "info", {"event": text})["event"]
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.addFilter(_secrets_masker())
    logger = logging.getLogger("test_xero_tokens.masking")
    logger.addHandler(handler)
    was_enabled = SecretsMasker.is_log_masking_enabled()
    SecretsMasker.enable_log_masking()
    try:
        logger.warning("%s", text)
    finally:
        logger.removeHandler(handler)
        if not was_enabled:
            SecretsMasker.disable_log_masking()
    return event + "\n" + stream.getvalue()


def test_after_a_refresh_the_table_holds_no_plaintext_token(chain, xero, db):
    first = chain().access_token()
    assert issued_tokens(xero) and plaintext_at_rest(db, xero) == []
    second = chain().access_token(force_refresh=True, rejected=first.value)  # as after a 401
    assert second.value != first.value and second.value in xero.backend.identity.access_grants
    assert plaintext_at_rest(db, xero) == []
    # What is stored still works: the next worker reads the access token back, and refreshes from the stored one.
    assert chain().access_token().value == second.value
    assert chain().access_token(force_refresh=True, rejected=second.value).value != second.value
    assert plaintext_at_rest(db, xero) == []


def test_a_row_written_in_plaintext_by_the_old_code_still_refreshes(chain, xero, db):
    store = chain()
    grant = issue_outside_the_pipeline(xero, chain.app.refresh_token)
    expired = dt.datetime.now(dt.timezone.utc) - dt.timedelta(minutes=1)
    write_as_the_old_code_did(db, store, grant.refresh_token, grant.access_token, expired)
    token = store.access_token()  # the stored access token expired: refreshes from the plaintext refresh token
    assert token.value != grant.access_token and token.value in xero.backend.identity.access_grants
    assert [r.status for r in token_calls(xero)] == [200]
    assert plaintext_at_rest(db, xero) == []  # the next store wrote it encrypted
    assert chain().access_token(force_refresh=True, rejected=token.value).value != token.value  # the chain goes on
    assert [r.status for r in token_calls(xero)] == [200, 200]


def test_a_valid_plaintext_row_is_used_and_encrypted_on_first_read(chain, xero, db):
    store = chain()
    grant = issue_outside_the_pipeline(xero, chain.app.refresh_token)
    valid = dt.datetime.now(dt.timezone.utc) + dt.timedelta(minutes=30)
    write_as_the_old_code_did(db, store, grant.refresh_token, grant.access_token, valid)
    assert store.access_token().value == grant.access_token
    assert token_calls(xero) == []
    assert plaintext_at_rest(db, xero) == []
    # Read from the table: registered with Airflow's masker as soon as this process holds them.
    shown = masked_in_logs(f"Authorization: Bearer {grant.access_token} refresh={grant.refresh_token}")
    assert grant.access_token not in shown and grant.refresh_token not in shown and "***" in shown


def test_tokens_are_masked_in_logs_as_soon_as_they_exist(chain, xero, db):
    token = chain().access_token()  # refreshed from the connection's refresh token just now
    (rotated,) = xero.backend.identity.refresh_grants[chain.app.refresh_token].children
    shown = masked_in_logs(f"Bearer {token.value} and the new refresh token {rotated}")
    assert token.value not in shown and rotated not in shown and shown.count("***") >= 2

    # Tokens another worker process refreshed and stored (encrypted), read from the table here, are masked too.
    outside = issue_outside_the_pipeline(xero, rotated)
    cipher = TokenCipher.from_airflow()
    db.execute(
        "UPDATE xero_sync.oauth_token SET refresh_token = %s, access_token = %s, access_expires_at = %s",
        (cipher.seal(outside.refresh_token), cipher.seal(outside.access_token),
         dt.datetime.now(dt.timezone.utc) + dt.timedelta(minutes=30)),
    )
    assert plaintext_at_rest(db, xero) == []
    assert chain().access_token().value == outside.access_token
    shown = masked_in_logs(f"{outside.access_token} {outside.refresh_token}")
    assert outside.access_token not in shown and outside.refresh_token not in shown


@pytest.mark.parametrize("key", ["", "not-a-fernet-key"], ids=["none", "invalid"])
def test_without_a_usable_fernet_key_nothing_is_stored_and_the_message_says_how_to_set_it(
    chain, xero, db, fernet_key, key
):
    fernet_key(key)
    with pytest.raises(Exception) as caught:
        chain().access_token()
    message = str(caught.value)
    assert "AIRFLOW__CORE__FERNET_KEY" in message and "fernet_key" in message
    assert isinstance(caught.value, XeroAuthorisationError)  # a setup error: the task fails, no retries
    assert chain.app.refresh_token not in message and chain.app.client_secret not in message
    assert db.execute("SELECT count(*) FROM xero_sync.oauth_token").fetchone() == (0,)
    assert token_calls(xero) == []


def test_a_fernet_key_that_cannot_read_the_stored_tokens_is_named_and_nothing_is_sent(chain, xero, db, fernet_key):
    old, new = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    fernet_key(old)
    chain().access_token()
    db.execute("UPDATE xero_sync.oauth_token SET access_expires_at = now()")
    fernet_key(new)
    with pytest.raises(XeroAuthorisationError) as caught:
        chain().access_token()
    message = str(caught.value)
    assert "Fernet key" in message and "re-authorise" in message
    assert len(token_calls(xero)) == 1, "no undecryptable token was sent to Xero"
    # Airflow's key rotation: the new key first, the old one still listed, reads and re-encrypts.
    fernet_key(f"{new},{old}")
    assert chain().access_token().value
    fernet_key(new)
    assert chain().access_token().value  # the refresh above stored everything under the new key
    # Without the old key at all, re-authorising restarts the chain.
    fernet_key(Fernet.generate_key().decode())
    fresh = xero.backend.authorise(chain.app.client_id, [chain.tenant], scope=GRANULAR_SCOPES)
    assert chain(fresh).access_token().value
    assert plaintext_at_rest(db, xero) == []


def test_a_token_endpoint_that_never_answers_fails_within_the_timeout_and_keeps_the_chain(chain, xero, db, monkeypatch):
    store = chain()
    token = store.access_token()
    (before,) = db.execute("SELECT refresh_token FROM xero_sync.oauth_token").fetchone()
    monkeypatch.setattr(xero_tokens, "TOKEN_TIMEOUT_S", (2, 0.3), raising=False)
    xero.backend.faults.latency(2.0, path_prefix="/connect/token")
    started = time.monotonic()
    with pytest.raises(RuntimeError) as caught:
        store.access_token(force_refresh=True, rejected=token.value)
    elapsed = time.monotonic() - started
    xero.backend.faults.latency(0, path_prefix="/connect/token")
    message = str(caught.value)
    assert elapsed < 1.5, f"waited {elapsed:.1f} s for a token endpoint that does not answer"
    assert "token endpoint" in message and "0.3" in message and "kept for the retry" in message
    assert db.execute("SELECT refresh_token FROM xero_sync.oauth_token").fetchone() == (before,)
    # Xero acted on the lost request after its delay (wait for it); the retry reuses the kept token.
    deadline = time.monotonic() + 10
    while len(token_calls(xero)) < 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert len(token_calls(xero)) == 2
    assert store.access_token(force_refresh=True, rejected=token.value).value != token.value
    assert [r.status for r in token_calls(xero)] == [200, 200, 200]


def test_waiting_for_the_chains_row_lock_is_bounded(chain, xero, db, database_url, monkeypatch):
    import threading

    store = chain()
    token = store.access_token()
    monkeypatch.setattr(xero_tokens, "TOKEN_LOCK_WAIT_S", 0.3, raising=False)
    holder = psycopg.connect(database_url)  # another worker, stuck while holding the chain's row lock
    holder.execute("SELECT 1 FROM xero_sync.oauth_token FOR UPDATE")
    release = threading.Timer(3.0, holder.rollback)
    release.start()
    try:
        started = time.monotonic()
        with pytest.raises(RuntimeError) as caught:
            store.access_token(force_refresh=True, rejected=token.value)
        elapsed = time.monotonic() - started
    finally:
        release.cancel()
        holder.rollback()
        holder.close()
    assert elapsed < 1.5, f"waited {elapsed:.1f} s for the row lock"
    message = str(caught.value)
    assert "xero_default" in message and "lock" in message and "0.3" in message
    assert token_calls(xero) and len(token_calls(xero)) == 1  # nothing was refreshed meanwhile
    assert store.access_token(force_refresh=True, rejected=token.value).value != token.value


def test_the_chains_row_lock_dies_with_a_holder_that_stopped_mid_refresh(chain, xero, db, database_url):
    """A worker stops while it refreshes (killed, its host gone): its session sits idle in the transaction that
    holds the chain's row lock, and its TCP connection may stay open for hours. The server ends that session
    once it has been idle longer than a refresh can take, and the lock goes with it: the next worker refreshes."""
    import threading

    store = chain()
    token = store.access_token()
    stopped = threading.Event()
    frozen = threading.Event()

    def frozen_refresh(*args, **kwargs):
        frozen.set()
        stopped.wait(60)  # the holder never comes back
        raise RuntimeError("gone")

    settings = store._settings
    dead = TokenStore(lambda: psycopg.connect(database_url, autocommit=True), settings, frozen_refresh,
                      holder_timeout_s=1.0)
    holder = threading.Thread(target=lambda: _quietly(dead.access_token, force_refresh=True, rejected=token.value))
    holder.start()
    try:
        assert frozen.wait(10), "the holder took the lock and called Xero's token endpoint"
        started = time.monotonic()
        fresh = store.access_token(force_refresh=True, rejected=token.value)
        elapsed = time.monotonic() - started
    finally:
        stopped.set()
        holder.join(10)
    assert fresh.value != token.value
    assert 0.5 <= elapsed < 10, f"the lock came back after {elapsed:.1f} s"


def _quietly(call, **kwargs):
    try:
        call(**kwargs)
    except Exception:  # noqa: BLE001 - the frozen holder's end is not under test
        pass
