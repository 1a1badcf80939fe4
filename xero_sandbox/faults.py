"""Fault switches: tests arm them to make the sandbox misbehave the way the
real service and network do, and read ``injected`` to report what happened."""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Callable


DEFAULT_ERROR_BODY = b"<html><body>Bad Request</body></html>"


@dataclass
class _Rule:
    # "fail_next" | "error_body" | "drop_after_commit" | "hang_after_commit" | "commit_late" | "rate_limit_next"
    # | "between_requests"
    kind: str
    remaining: int
    path_prefix: str | None
    method: str | None
    status: int = 503
    problem: str = "minute"
    retry_after: int | None = None
    seconds: float = 0.0
    body: bytes = b""
    content_type: str | None = None
    action: Callable[[], None] | None = None
    skip: int = 0  # matching requests let through before this rule applies

    def matches(self, method: str, path: str) -> bool:
        if self.method and self.method.upper() != method.upper():
            return False
        return self.path_prefix is None or path.lower().startswith(self.path_prefix.lower())


@dataclass(frozen=True)
class Fault:
    """What an armed rule asks the API layer to do to one request."""

    kind: str
    status: int = 503
    problem: str = "minute"
    retry_after: int | None = None
    seconds: float = 0.0
    body: bytes = b""
    content_type: str | None = None


class FaultSwitches:
    """Thread-safe; each rule is consumed once per matching request."""

    def __init__(self, expire_tokens: Callable[[], int]) -> None:
        self._lock = threading.Lock()
        self._rules: list[_Rule] = []
        self._latency: list[tuple[float, str | None]] = []
        self._expire_tokens = expire_tokens
        self._injected: dict[str, int] = {}

    # ------------------------------------------------------------ arming
    def fail_next(self, n: int = 1, status: int = 503, path_prefix: str | None = "/api.xro/2.0/Invoices",
                  method: str | None = "PUT") -> None:
        """Answer the next ``n`` matching requests with ``status``, doing nothing."""
        self._arm(_Rule("fail_next", n, path_prefix, method, status=status))

    def error_body_next(self, n: int = 1, status: int = 400, body: bytes = DEFAULT_ERROR_BODY,
                        content_type: str | None = "text/html; charset=utf-8",
                        path_prefix: str | None = "/api.xro/2.0/Invoices", method: str | None = "PUT") -> None:
        """Answer the next ``n`` matching requests with ``status`` and this raw,
        non-JSON body (a proxy's or load balancer's error page), doing nothing."""
        self._arm(_Rule("error_body", n, path_prefix, method, status=status, body=bytes(body),
                        content_type=content_type))

    def drop_after_commit_next(self, n: int = 1, path_prefix: str | None = "/api.xro/2.0/Invoices",
                               method: str | None = "PUT") -> None:
        """Act on the next ``n`` matching requests, then close the socket unanswered."""
        self._arm(_Rule("drop_after_commit", n, path_prefix, method))

    def hang_after_commit_next(self, seconds: float, n: int = 1, path_prefix: str | None = "/api.xro/2.0/Invoices",
                               method: str | None = "PUT") -> None:
        """Act on the next ``n`` matching requests, then wait ``seconds`` before answering: the window in
        which a test kills the worker that is waiting for Xero's answer."""
        self._arm(_Rule("hang_after_commit", n, path_prefix, method, seconds=seconds))

    def commit_late_next(self, seconds: float, n: int = 1, path_prefix: str | None = "/api.xro/2.0/Invoices",
                         method: str | None = "PUT") -> None:
        """Hold the next ``n`` matching requests ``seconds`` before acting on them,
        then act (commit) and answer: the commit lands after a client with a
        shorter read timeout has given up. The held request keeps its
        concurrency slot but not the backend lock, so other requests, a retry
        of this one included, go ahead meanwhile. An answer to a client that
        has hung up is dropped quietly."""
        self._arm(_Rule("commit_late", n, path_prefix, method, seconds=seconds))

    def rate_limit_next(self, n: int = 1, problem: str = "minute", retry_after: int | None = 1,
                        path_prefix: str | None = "/api.xro/2.0", method: str | None = None) -> None:
        """Answer 429 (``X-Rate-Limit-Problem: problem``) to the next ``n`` matching accounting calls."""
        self._arm(_Rule("rate_limit_next", n, path_prefix, method, problem=problem, retry_after=retry_after))

    def between_requests(self, action: Callable[[], None], after: int = 1,
                         path_prefix: str | None = "/api.xro/2.0/Invoices", method: str | None = "GET") -> None:
        """Once the ``after``-th matching request from now has been answered (its answer computed, before the
        next request is read), run ``action`` once: a person working in Xero between two of the client's
        requests, e.g. a payment recorded between two page reads or between the invoice and credit-note reads.
        The action runs with the backend's own methods (record_payment, void_document, ...)."""
        self._arm(_Rule("between_requests", 1, path_prefix, method, action=action, skip=after - 1))

    def latency(self, seconds: float, path_prefix: str | None = None) -> None:
        """Sleep ``seconds`` before answering matching requests until cleared
        (``seconds=0`` removes the delay for that prefix)."""
        with self._lock:
            self._latency = [(s, p) for s, p in self._latency if p != path_prefix]
            if seconds > 0:
                self._latency.append((seconds, path_prefix))

    def expire_access_tokens(self) -> None:
        """Every access token issued so far is expired as of now."""
        self._expire_tokens()
        self._count("expire_access_tokens")

    def clear(self) -> None:
        """Disarm everything and zero the counters."""
        with self._lock:
            self._rules.clear()
            self._latency.clear()
            self._injected.clear()

    @property
    def injected(self) -> dict[str, int]:
        with self._lock:
            return dict(self._injected)

    # ------------------------------------------------------------ consuming
    def take(self, kind: str, method: str, path: str) -> Fault | None:
        with self._lock:
            for rule in self._rules:
                if rule.kind == kind and rule.remaining > 0 and rule.matches(method, path):
                    rule.remaining -= 1
                    self._injected[kind] = self._injected.get(kind, 0) + 1
                    return Fault(kind, rule.status, rule.problem, rule.retry_after, rule.seconds,
                                 rule.body, rule.content_type)
            return None

    def action_after(self, method: str, path: str) -> Callable[[], None] | None:
        """The action of an armed between_requests rule this answered request triggers, if any."""
        with self._lock:
            for rule in self._rules:
                if rule.kind == "between_requests" and rule.remaining > 0 and rule.matches(method, path):
                    if rule.skip > 0:
                        rule.skip -= 1
                        return None
                    rule.remaining -= 1
                    self._injected["between_requests"] = self._injected.get("between_requests", 0) + 1
                    return rule.action
            return None

    def delay_for(self, path: str) -> float:
        with self._lock:
            delays = [s for s, p in self._latency if p is None or path.lower().startswith(p.lower())]
            if delays:
                self._injected["latency"] = self._injected.get("latency", 0) + 1
            return max(delays, default=0.0)

    def _arm(self, rule: _Rule) -> None:
        with self._lock:
            self._rules = [r for r in self._rules if r.remaining > 0]
            self._rules.append(rule)

    def _count(self, kind: str) -> None:
        with self._lock:
            self._injected[kind] = self._injected.get(kind, 0) + 1
