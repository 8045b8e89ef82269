"""The README's first command runs end to end and reports every operation delivered."""

from __future__ import annotations

import pytest

from customerio_async import _cli
from customerio_async.__main__ import main


def test_demo_runs(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["demo", "--people", "20"]) == 0
    out = capsys.readouterr().out
    assert "operations applied by the fake server" in out
    assert "identify" in out
    assert "statuses {200: " in out


def test_cli_requires_a_command(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main([])
    assert info.value.code == 2


async def test_demo_through_run(capsys: pytest.CaptureFixture[str]) -> None:
    assert await _cli.run(["demo", "--people", "5"]) == 0
    assert "operations applied by the fake server" in capsys.readouterr().out
