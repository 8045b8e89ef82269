"""What the App API tests share: the fake's App key, client settings and a valid email."""

from __future__ import annotations

from typing import Any

from customerio_async import AppRateLimits, RetryPolicy, SendEmailRequest

APP_KEY = "fake-app-key"
NO_LIMITS = AppRateLimits(transactional=None, general=None, broadcast=None)
FAST_RETRY = RetryPolicy(backoff_base=0.0, backoff_cap=1.0, direct_attempts=3)
PERSON = {"id": "42"}


def email(**overrides: Any) -> SendEmailRequest:
    """A valid transactional email, with ``overrides`` set on it."""
    request = SendEmailRequest(
        transactional_message_id=44, to="ada@example.com", identifiers=PERSON
    )
    for name, value in overrides.items():
        setattr(request, name, value)
    return request
