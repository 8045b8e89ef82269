"""Processes, for real: a fork (in a subprocess, so pytest's own threads are never forked),
an interpreter exit right after sending (the ``atexit`` drain), and a Flask app under
gunicorn's prefork sync workers."""

from __future__ import annotations

import http.client
import json
import os
import re
import select
import signal
import subprocess
import sys
import textwrap
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from .conftest import API_KEY, SITE_ID, ThreadedFake

HERE = Path(__file__).resolve().parent
pytestmark = pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")

PRELUDE = """
import os, sys, threading
from customerio_async import BatchConfig
from customerio_async.sync import CustomerIO
URL = sys.argv[1]
"""


def run_script(body: str, server: ThreadedFake, timeout: float = 45.0) -> str:
    """Run ``body`` in a fresh interpreter pointed at ``server``; return its stdout."""
    code = textwrap.dedent(PRELUDE) + textwrap.dedent(body)
    done = subprocess.run(  # noqa: S603 - our interpreter, our script
        [sys.executable, "-c", code, server.url],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def names(server: ThreadedFake) -> list[str]:
    """The names of the events the fake applied, in order."""
    return [op.body["name"] for op in server.operations() if op.action == "event"]


def test_a_forked_child_starts_its_own_loop_and_never_resends_the_parents_buffer(
    server: ThreadedFake,
) -> None:
    run_script(
        f"""
        cio = CustomerIO("{SITE_ID}", "{API_KEY}", track_url=URL, batch=BatchConfig(linger=60))
        cio.track("parent", "before-fork")          # buffered in the parent's loop
        pid = os.fork()
        if pid == 0:
            try:
                cio.track("child", "in-child")      # the child's own loop, on first use
                cio.close(timeout=15)
            finally:
                os._exit(0)
        os.waitpid(pid, 0)
        cio.track("parent", "after-fork")
        cio.close(timeout=15)
        """,
        server,
    )
    assert sorted(names(server)) == ["after-fork", "before-fork", "in-child"]


def test_exiting_right_after_sending_delivers_everything(server: ThreadedFake) -> None:
    # No close(): the atexit hook drains. The linger is longer than the whole test, so
    # nothing had been sent before the interpreter began to exit, and the host is a name:
    # the first connection needs a DNS lookup while the interpreter is exiting.
    out = run_script(
        f"""
        named = URL.replace("127.0.0.1", "localhost")
        def main():  # the client is dropped on return, still open: atexit drains it anyway
            batch = BatchConfig(linger=60)
            cio = CustomerIO("{SITE_ID}", "{API_KEY}", track_url=named, batch=batch)
            def send(t):
                for i in range(250):
                    cio.track(f"user-{{t}}-{{i % 7}}", "exit-test", {{"i": i}})
            threads = [threading.Thread(target=send, args=(t,)) for t in range(8)]
            for t in threads: t.start()
            for t in threads: t.join()
            print(cio.statistics().delivered)
        main()
        """,
        server,
    )
    assert out.strip() == "0"  # nothing delivered before exit
    assert len(server.wait_for_operations(2000)) == 2000


def test_a_forked_child_that_exits_drains_its_own_operations_only(server: ThreadedFake) -> None:
    run_script(
        f"""
        cio = CustomerIO("{SITE_ID}", "{API_KEY}", track_url=URL, batch=BatchConfig(linger=60))
        cio.track("parent", "parent-buffered")
        pid = os.fork()
        if pid == 0:
            cio.track("child", "child-buffered")
            sys.exit(0)                               # atexit drains the child's client
        os.waitpid(pid, 0)
        """,
        server,
    )
    assert sorted(names(server)) == ["child-buffered", "parent-buffered"]


# ------------------------------------------------------------------------ gunicorn + Flask


def _gunicorn(server: ThreadedFake) -> tuple[subprocess.Popen[bytes], int]:
    help_text = subprocess.run(
        [sys.executable, "-m", "gunicorn", "--help"], capture_output=True, text=True, check=True
    ).stdout
    extra = ["--no-control-socket"] if "--no-control-socket" in help_text else []
    env = dict(
        os.environ,
        CIO_SITE_ID=SITE_ID,
        CIO_API_KEY=API_KEY,
        CIO_TRACK_URL=server.url,
        PYTHONPATH=str(HERE),
    )
    proc = subprocess.Popen(  # noqa: S603 - our interpreter, our arguments
        [
            *(sys.executable, "-m", "gunicorn", "--preload", "--workers", "2"),
            *("--worker-class", "sync", "--bind", "127.0.0.1:0", "--graceful-timeout", "30"),
            *extra,
            "flask_app:app",
        ],
        cwd=HERE,
        env=env,
        stderr=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
    )
    assert proc.stderr is not None
    deadline = time.monotonic() + 30
    port, booted, log = 0, 0, b""
    while booted < 2 and time.monotonic() < deadline:
        ready, _, _ = select.select([proc.stderr], [], [], 1.0)
        if ready:
            line = proc.stderr.readline()
            log += line
            if found := re.search(rb"Listening at: http://127\.0\.0\.1:(\d+)", line):
                port = int(found.group(1))
            booted += b"Booting worker" in line
    assert port, log.decode(errors="replace")
    assert booted == 2, log.decode(errors="replace")
    return proc, port


def _post(port: int, user: str) -> dict[str, object]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        conn.request("POST", f"/signup/{user}")
        response = conn.getresponse()
        assert response.status == 200
        answer: dict[str, object] = json.loads(response.read())
        return answer
    finally:
        conn.close()


def test_flask_under_gunicorn_prefork_delivers_every_operation(server: ThreadedFake) -> None:
    proc, port = _gunicorn(server)
    try:
        with ThreadPoolExecutor(8) as pool:
            answers = list(pool.map(lambda i: _post(port, f"user-{i}"), range(60)))
    finally:
        proc.send_signal(signal.SIGTERM)  # graceful: workers exit, their atexit drains
        assert proc.wait(60) == 0
        assert proc.stderr is not None
        proc.stderr.close()
    applied = server.wait_for_operations(120, timeout=30)
    assert len(applied) == 120
    event_ids = {op.body["id"] for op in applied if op.action == "event"}
    assert event_ids == {answer["event_id"] for answer in answers}
    identified = sorted(op.identifiers["id"] for op in applied if op.action == "identify")
    assert identified == sorted(f"user-{i}" for i in range(60))
    assert os.getpid() not in {answer["pid"] for answer in answers}
