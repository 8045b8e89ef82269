"""``customerio-async region``, and how failures read."""

from __future__ import annotations

import pytest

from customerio_async import _cli
from customerio_async.testing import FakeCustomerIO, Fault

from ._helpers import CREDS


async def test_region(
    fake: FakeCustomerIO, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    assert await _cli.run(["region", *CREDS, "--track-url", fake.url]) == 0
    assert capsys.readouterr().out == "us (environment 1, https://track.customer.io)\n"
    assert await _cli.run(["region", *CREDS, "--track-url", fake.url, "--region", "auto"]) == 0
    monkeypatch.delenv("CUSTOMERIO_SITE_ID", raising=False)
    monkeypatch.delenv("CUSTOMERIO_API_KEY", raising=False)
    assert await _cli.run(["region", "--track-url", fake.url]) == 2
    fake.add_fault(Fault(status=404, body=b"{}"))
    assert await _cli.run(["region", *CREDS, "--track-url", fake.url]) == 1
    # In words, not a class name (it used to print "NotFoundError: ...").
    err = capsys.readouterr().err
    assert f"error: {fake.url} answered HTTP 404 (not found)" in err
    assert "NotFoundError" not in err


@pytest.mark.parametrize(
    ("url", "sentence"),
    [
        ("http://127.0.0.1:9", "cannot reach http://127.0.0.1:9: connection refused"),
        ("http://name.invalid", "cannot reach http://name.invalid: the host name does not resolve"),
    ],
)
async def test_region_errors_say_what_went_wrong_in_words(
    url: str, sentence: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert await _cli.run(["region", *CREDS, "--track-url", url]) == 2
    err = capsys.readouterr().err
    assert err == f"customerio-async: error: {sentence}\n" or err.startswith(
        f"customerio-async: error: {sentence}"
    ), err
    assert "Client" not in err  # no aiohttp class names (ClientConnectorError, ...)
    assert "Error" not in err
