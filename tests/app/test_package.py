"""The package as a whole: its public surface is documented."""

from __future__ import annotations

from customerio_async import (
    APIClient,
    SendEmailRequest,
    SendInAppRequest,
    SendInboxMessageRequest,
    SendPushRequest,
    SendSMSRequest,
    SendWhatsAppRequest,
)


def test_public_methods_have_docstrings() -> None:
    import inspect

    classes = (
        APIClient,
        SendEmailRequest,
        SendPushRequest,
        SendSMSRequest,
        SendWhatsAppRequest,
        SendInboxMessageRequest,
        SendInAppRequest,
    )
    for cls in classes:
        assert cls.__doc__
        for name, member in inspect.getmembers(cls):
            if not name.startswith("_") and callable(member):
                assert member.__doc__, f"{cls.__name__}.{name}"
