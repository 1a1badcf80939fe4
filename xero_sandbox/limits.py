"""Rate limits and idempotency: Xero's per-tenant fixed windows, concurrency
cap, app-wide minute window, and the short-lived Idempotency-Key cache."""

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


@dataclass
class Admission:
    """The limiter's verdict. When refused, ``problem`` names the limit."""

    admitted: bool
    headers: dict[str, str]
    problem: str | None = None
    retry_after: int | None = None


class RateLimiter:
    MINUTE = 60.0
    DAY = 86400.0

    def __init__(self, clock: Callable[[], float], limits: Limits) -> None:
        self._clock = clock
        self._limits = limits
        self._lock = threading.Lock()
        self._tenants: dict[str, _TenantUsage] = {}
        self._apps: dict[str, _Window] = {}

    def reset(self) -> None:
        with self._lock:
            self._tenants.clear()
            self._apps.clear()

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
            elif usage.day.count >= lim.per_day:
                refusal = ("day", usage.day.retry_after(now, self.DAY))
            elif usage.minute.count >= lim.per_minute:
                refusal = ("minute", usage.minute.retry_after(now, self.MINUTE))
            elif app.count >= lim.app_per_minute:
                refusal = ("appminute", app.retry_after(now, self.MINUTE))
            if refusal is None:
                usage.minute.count += 1
                usage.day.count += 1
                app.count += 1
                usage.in_flight += 1
            headers = self._headers(usage, app)
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
            return self._headers(*self._current(tenant_id, client_id))

    def _current(self, tenant_id: str, client_id: str) -> tuple[_TenantUsage, _Window]:
        """The tenant's and the app's usage, their fixed windows rolled to now. Call under the lock."""
        now = self._clock()
        usage = self._tenants.setdefault(tenant_id, _TenantUsage())
        app = self._apps.setdefault(client_id, _Window())
        usage.minute.roll(now, self.MINUTE)
        usage.day.roll(now, self.DAY)
        app.roll(now, self.MINUTE)
        return usage, app

    def _headers(self, usage: _TenantUsage, app: _Window) -> dict[str, str]:
        lim = self._limits
        return {
            "X-DayLimit-Remaining": str(max(0, lim.per_day - usage.day.count)),
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
