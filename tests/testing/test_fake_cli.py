"""``python -m customerio_async.testing``: the startup banner shows every credential."""

from __future__ import annotations

import re
import signal

import pytest

from customerio_async.testing import FakeCustomerIO
from customerio_async.testing import __main__ as cli


def test_the_banner_shows_every_credential_and_the_url(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    original = cli.announce
    seen: list[FakeCustomerIO] = []

    def announce_then_terminate(server: FakeCustomerIO) -> None:
        original(server)
        seen.append(server)
        signal.raise_signal(signal.SIGTERM)  # the loop's handler stops the server cleanly

    monkeypatch.setattr(cli, "announce", announce_then_terminate)
    argv = ["--port", "0", "--site-id", "s", "--api-key", "k", "--app-api-key", "a"]
    assert cli.main([*argv, "--pipelines-write-key", "w", "--region", "eu"]) == 0
    captured = capsys.readouterr()
    (fake,) = seen
    assert fake.app_api_key == "a"
    assert fake.pipelines_write_key == "w"
    # stdout: the stable one-liner scripts parse.
    assert re.fullmatch(
        r"FakeCustomerIO listening url=(http://127\.0\.0\.1:\d+) site_id=s api_key=k region=eu\n",
        captured.out,
    )
    url = captured.out.split("url=")[1].split()[0]
    # stderr: the full banner, every credential a client needs, and the URL.
    banner = captured.err
    for expected in (url, "site_id=s", "api_key=k", "app_api_key=a", "pipelines_write_key=w"):
        assert expected in banner
    assert "empty password" in banner


async def test_the_defaults_are_printed_too() -> None:
    async with FakeCustomerIO() as fake:
        banner = cli.credentials_banner(fake)
    assert "site_id=fake-site api_key=fake-key" in banner
    assert "app_api_key=fake-app-key" in banner
    assert "pipelines_write_key=fake-write-key" in banner
