"""What is Track-specific about sending: the retry rules and the rate-limit class."""

from __future__ import annotations

from types import MappingProxyType

from .._config import RateLimit
from .._http.rules import APIRules

__all__ = ["track_rules"]


def track_rules(rate_limit: RateLimit | None) -> APIRules:
    """Track's rules: the default retry rule (408, 425, 429, network errors, 5xx except 501
    and 505), every request repeatable (events carry ULID ids, the rest is idempotent), one
    rate-limit class per workspace."""
    return APIRules(
        api="track",
        buckets=MappingProxyType({"default": rate_limit}),
        credentials="the site id and API key",
    )
