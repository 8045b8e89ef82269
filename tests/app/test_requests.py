"""The ``Send*Request`` classes: attachments, and reprs that never show values."""

from __future__ import annotations

import base64

import pytest

from customerio_async import (
    LimitExceededError,
    ValidationError,
)

from ._support import email


def test_attach() -> None:
    request = email()
    request.attach("a.txt", "é")
    request.attach("b.bin", b"\x00\x01")
    request.attach("c.txt", "aGk=", encode=False)
    request.attach("d.txt", b"aGk=", encode=False)
    assert request.attachments == {
        "a.txt": base64.b64encode("é".encode()).decode(),
        "b.bin": "AAE=",
        "c.txt": "aGk=",
        "d.txt": "aGk=",
    }
    with pytest.raises(ValidationError, match="already exists"):
        request.attach("a.txt", "again")
    with pytest.raises(ValidationError, match="non-empty"):
        request.attach("", "x")
    with pytest.raises(ValidationError, match="base64"):
        request.attach("e.txt", "***", encode=False)
    before = dict(request.attachments)
    with pytest.raises(LimitExceededError) as info:
        request.attach("huge.bin", b"\0" * 2_000_000)
    assert (info.value.size, info.value.limit) == (2_000_008, 2_000_000)
    assert request.attachments == before  # a refused attachment is not added
    request.attach("fits.bin", b"\0" * (2_000_000 - 9))  # total 1,999,999 bytes: < 2 MB


def test_request_repr_hides_values() -> None:
    request = email(message_data={"secret": "s3cr3t"})
    text = repr(request)
    assert text == (
        "SendEmailRequest(fields=[transactional_message_id, to, identifiers, message_data])"
    )
    assert "s3cr3t" not in text
    assert "ada@" not in text
    # The official SDK's private spelling still works.
    assert request._to_dict() == request.to_dict()
