"""``mypy --strict`` on a sample consumer project passes with no stubs.

``consumer.py`` is copied into an empty directory (no project configuration, so only
``--strict`` applies) and checked in a subprocess against the installed package, as a user's
CI would. A deliberately wrong consumer must fail, proving the package's types are really
seen (an untyped package would make everything ``Any`` and pass vacuously).
"""

from __future__ import annotations

import importlib.util
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent

pytestmark = pytest.mark.skipif(
    importlib.util.find_spec("mypy") is None, reason="mypy is not installed"
)


def mypy_strict(directory: Path, *files: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(  # noqa: S603 - our own interpreter, fixed arguments
        [
            sys.executable,
            "-m",
            "mypy",
            "--strict",
            "--cache-dir",
            str(directory / ".cache"),
            "--no-error-summary",
            *files,
        ],
        cwd=directory,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_strict_consumer_type_checks(tmp_path: Path) -> None:
    shutil.copy(HERE / "consumer.py", tmp_path / "consumer.py")
    (tmp_path / "wrong.py").write_text(
        "from customerio_async import CustomerIO\n\n\n"
        "async def wrong(cio: CustomerIO) -> int:\n"
        '    receipt: int = await cio.track("1", "x")\n'
        "    return receipt\n"
    )
    good = mypy_strict(tmp_path, "consumer.py")
    assert good.returncode == 0, good.stdout + good.stderr
    bad = mypy_strict(tmp_path, "wrong.py")
    assert bad.returncode == 1
    assert 'Incompatible types in assignment (expression has type "Receipt"' in bad.stdout
