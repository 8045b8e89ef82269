"""Per-API retry and pacing rules: data, so every API shares one retry and gate code path."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from .._config import RateLimit

__all__ = ["APIRules"]


@dataclass(frozen=True, slots=True, kw_only=True)
class APIRules:
    """How one API's failed requests are retried and its requests paced.

    The default retry rule (Track and Pipelines, contract §1.8): 408, 425, 429, network
    errors and every 5xx except 501 (not implemented) and 505 (HTTP version) — those two
    will fail the same way again. Everything else (4xx) is final.

    Attributes:
        api: ``"track"``, ``"app"`` or ``"pipelines"`` (metric label, log text).
        retry_statuses: Non-5xx statuses worth another attempt.
        retry_5xx: Whether 5xx statuses are retried.
        never_retry: Statuses excluded from the rule above.
        repeatable_methods: Methods whose request may be sent again when its first outcome
            is unknown (a timeout or a reset after the body was written); ``None`` means all
            (Track events carry ULID ids, Pipelines messages a ``messageId``, and the other
            Track calls are idempotent). App API sends and triggers have no idempotency key:
            only ``GET`` is repeatable there.
        refused_statuses: Statuses that prove the server did not act on the request, so even
            a non-repeatable request is retried on them.
        buckets: The rate-limit classes and their limits (``None``: unlimited).
        credentials: What to check after a 401/403, in words, for the log line.
    """

    api: str
    retry_statuses: frozenset[int] = frozenset({408, 425, 429})
    retry_5xx: bool = True
    never_retry: frozenset[int] = frozenset({501, 505})
    repeatable_methods: frozenset[str] | None = None
    refused_statuses: frozenset[int] = frozenset({408, 425, 429, 503})
    buckets: Mapping[str, RateLimit | None] = field(
        default_factory=lambda: MappingProxyType({"default": None})
    )
    credentials: str = "the credentials"

    def retryable(self, status: int) -> bool:
        """Whether a response with ``status`` is worth another attempt."""
        if status in self.never_retry:
            return False
        return status in self.retry_statuses or (self.retry_5xx and 500 <= status <= 599)

    def repeatable(self, method: str) -> bool:
        """Whether a request may be repeated when its first outcome is unknown."""
        return self.repeatable_methods is None or method in self.repeatable_methods

    def may_retry(self, method: str, status: int) -> bool:
        """Whether a request answered ``status`` is retried (rule + idempotency)."""
        if self.repeatable(method):
            return self.retryable(status)
        return status in self.refused_statuses
