"""Rate limits and idempotency: Xero's per-tenant fixed windows, concurrency
cap, app-wide minute window, and the short-lived Idempotency-Key cache.

The limiter also keeps what a benchmark asks of it: per tenant, the calls it
admitted, the most it had in progress at once, and every refusal with its time
and problem (``stats``, ``refusals``)."""

from __future__ import annotations

import hashlib
import math
import threading
from dataclasses import dataclass, field
from typing import Callable

from .records import Limits


@dataclass
class _Window:
    start: float = 0.0
    count: int = 0

    def roll(self, now: float, length: float) -> None:
        if now >= self.start + length:
            self.start, self.count = now, 0

    def retry_after(self, now: float, length: float) -> int:
        return max(1, math.ceil(self.start + length - now))


@dataclass
class _TenantUsage:
    minute: _Window = field(default_factory=_Window)
    day: _Window = field(default_factory=_Window)
    in_flight: int = 0
    # Not windows: what happened since the last reset.
    admitted: int = 0
    peak_in_flight: int = 0
    refused: dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True)
class Refusal:
    """One 429 the limiter answered: when (sandbox clock), to which tenant, for which limit."""

    at: float
    tenant_id: str
    problem: str


@dataclass(frozen=True)
class TenantCallStats:
    """One tenant's rate-limited calls since the last reset: ``admitted`` calls, the ``peak_in_flight``
    (most in progress at once) and the 429s by problem (``concurrent``, ``minute``, ``day``, ``appminute``)."""

    tenant_id: str
    admitted: int
    peak_in_flight: int
    refused: dict[str, int]

    @property
    def refused_total(self) -> int:
        return sum(self.refused.values())


@dataclass
class Admission:
    """The limiter's verdict. When refused, ``problem`` names the limit."""

    admitted: bool
    headers: dict[str, str]
    problem: str | None = None
    retry_after: int | None = None


class RateLimiter:
    """Fixed windows of ``limits.minute_s`` and ``limits.day_s`` seconds, each starting at the
    first call after the previous one ended; Retry-After is the rest of the window, in whole seconds."""

    def __init__(self, clock: Callable[[], float], limits: Limits) -> None:
        self._clock = clock
        self._limits = limits
        self._lock = threading.Lock()
        self._tenants: dict[str, _TenantUsage] = {}
        self._apps: dict[str, _Window] = {}
        self._refusals: list[Refusal] = []

    def reset(self) -> None:
        with self._lock:
            self._tenants.clear()
            self._apps.clear()
            self._refusals.clear()

    def acquire(self, tenant_id: str, client_id: str) -> Admission:
        """Count one call and take a concurrency slot, or refuse with the
        limit that was hit. Refused calls are not counted."""
        with self._lock:
            usage, app = self._current(tenant_id, client_id)
            now = self._clock()
            lim = self._limits
            refusal: tuple[str, int | None] | None = None
            if usage.in_flight >= lim.concurrent:
                refusal = ("concurrent", None)
            elif usage.day.count >= lim.day_limit(tenant_id):
                refusal = ("day", usage.day.retry_after(now, lim.day_s))
            elif usage.minute.count >= lim.per_minute:
                refusal = ("minute", usage.minute.retry_after(now, lim.minute_s))
            elif app.count >= lim.app_per_minute:
                refusal = ("appminute", app.retry_after(now, lim.minute_s))
            if refusal is None:
                usage.minute.count += 1
                usage.day.count += 1
                app.count += 1
                usage.in_flight += 1
                usage.admitted += 1
                usage.peak_in_flight = max(usage.peak_in_flight, usage.in_flight)
            else:
                usage.refused[refusal[0]] = usage.refused.get(refusal[0], 0) + 1
                self._refusals.append(Refusal(now, tenant_id, refusal[0]))
            headers = self._headers(tenant_id, usage, app)
            if refusal is None:
                return Admission(True, headers)
            return Admission(False, headers, refusal[0], refusal[1])

    def release(self, tenant_id: str) -> None:
        with self._lock:
            usage = self._tenants.get(tenant_id)
            if usage and usage.in_flight > 0:
                usage.in_flight -= 1

    def headers(self, tenant_id: str, client_id: str) -> dict[str, str]:
        with self._lock:
            return self._headers(tenant_id, *self._current(tenant_id, client_id))

    def stats(self, tenant_id: str) -> TenantCallStats:
        """What the tenant's calls met since the last reset (zeros for a tenant never called)."""
        with self._lock:
            usage = self._tenants.get(tenant_id.lower(), _TenantUsage())
            return TenantCallStats(tenant_id.lower(), usage.admitted, usage.peak_in_flight, dict(usage.refused))

    def refusals(self, tenant_id: str | None = None) -> list[Refusal]:
        """Every 429 the limiter answered since the last reset, oldest first (one tenant's, or all)."""
        with self._lock:
            return [r for r in self._refusals if tenant_id is None or r.tenant_id == tenant_id.lower()]

    def _current(self, tenant_id: str, client_id: str) -> tuple[_TenantUsage, _Window]:
        """The tenant's and the app's usage, their fixed windows rolled to now. Call under the lock."""
        now = self._clock()
        usage = self._tenants.setdefault(tenant_id, _TenantUsage())
        app = self._apps.setdefault(client_id, _Window())
        usage.minute.roll(now, self._limits.minute_s)
        usage.day.roll(now, self._limits.day_s)
        app.roll(now, self._limits.minute_s)
        return usage, app

    def _headers(self, tenant_id: str, usage: _TenantUsage, app: _Window) -> dict[str, str]:
        lim = self._limits
        return {
            "X-DayLimit-Remaining": str(max(0, lim.day_limit(tenant_id) - usage.day.count)),
            "X-MinLimit-Remaining": str(max(0, lim.per_minute - usage.minute.count)),
            "X-AppMinLimit-Remaining": str(max(0, lim.app_per_minute - app.count)),
        }


@dataclass
class StoredAnswer:
    fingerprint: str
    status: int
    body: bytes
    content_type: str | None
    stored_at: float


@dataclass
class Claim:
    """What the cache says about a key as a request arrives: an answer to
    replay, another request with the key still in progress (``busy``, with
    its fingerprint), or neither, in which case this request now holds the key."""

    answer: StoredAnswer | None = None
    busy_fingerprint: str | None = None

    @property
    def mine(self) -> bool:
        return self.answer is None and self.busy_fingerprint is None


class IdempotencyCache:
    """Answers kept per (tenant, key) for ``idempotency_ttl_s`` seconds, and
    the keys of requests still being acted on."""

    MAX_KEY_LENGTH = 128

    def __init__(self, clock: Callable[[], float], limits: Limits) -> None:
        self._clock = clock
        self._limits = limits
        self._lock = threading.Lock()
        self._answers: dict[tuple[str, str], StoredAnswer] = {}
        self._in_progress: dict[tuple[str, str], str] = {}

    def reset(self) -> None:
        with self._lock:
            self._answers.clear()
            self._in_progress.clear()

    def claim(self, tenant_id: str, key: str, fingerprint: str) -> Claim:
        """Atomically: the stored answer, or the request in progress, or take the key."""
        with self._lock:
            answer = self._live_answer(tenant_id, key)
            if answer is not None:
                return Claim(answer=answer)
            busy = self._in_progress.get((tenant_id, key))
            if busy is not None:
                return Claim(busy_fingerprint=busy)
            self._in_progress[(tenant_id, key)] = fingerprint
            return Claim()

    def release(self, tenant_id: str, key: str) -> None:
        """The request holding the key ended without an answer worth keeping (5xx)."""
        with self._lock:
            self._in_progress.pop((tenant_id, key), None)

    @staticmethod
    def fingerprint(method: str, path: str, query: str, body: bytes) -> str:
        """The same key is only a replay when method, target and body agree."""
        digest = hashlib.sha256()
        for part in (method.upper().encode(), path.lower().encode(), query.encode(), body):
            digest.update(len(part).to_bytes(8, "big"))
            digest.update(part)
        return digest.hexdigest()

    def lookup(self, tenant_id: str, key: str) -> StoredAnswer | None:
        with self._lock:
            return self._live_answer(tenant_id, key)

    def store(self, tenant_id: str, key: str, fingerprint: str, status: int, body: bytes,
              content_type: str | None) -> None:
        with self._lock:
            self._in_progress.pop((tenant_id, key), None)
            self._answers[(tenant_id, key)] = StoredAnswer(fingerprint, status, body, content_type, self._clock())

    def _live_answer(self, tenant_id: str, key: str) -> StoredAnswer | None:
        answer = self._answers.get((tenant_id, key))
        if answer and self._clock() - answer.stored_at > self._limits.idempotency_ttl_s:
            del self._answers[(tenant_id, key)]
            return None
        return answer
