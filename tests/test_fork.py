"""Fork safety: a child never uses the parent's sockets or buffered operations."""

from __future__ import annotations

import asyncio
import os
import warnings

import pytest

from customerio_async import BatchConfig, ClientStateError, CustomerIO
from customerio_async.testing import FakeCustomerIO

pytestmark = pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")


async def test_a_forked_child_cannot_use_the_parents_client(fake: FakeCustomerIO) -> None:
    async with CustomerIO(
        fake.site_id, fake.api_key, track_url=fake.url, batch=BatchConfig(linger=60)
    ) as cio:
        await cio.identify("parent", a=1)  # buffered in the parent, not yet sent
        read_fd, write_fd = os.pipe()
        with warnings.catch_warnings():
            # 3.12+ warns about fork() in a process with threads; the child only reports.
            warnings.simplefilter("ignore", DeprecationWarning)
            pid = os.fork()
        if pid == 0:  # pragma: no cover - runs in the child; reported through the pipe
            code = 0
            try:
                try:
                    asyncio.new_event_loop().run_until_complete(cio.identify("child", a=1))
                except ClientStateError as exc:
                    os.write(write_fd, b"refused:" + str(exc).encode()[:200])
                else:
                    os.write(write_fd, b"accepted")
            except BaseException:
                code = 1
            finally:
                os._exit(code)
        os.close(write_fd)
        _, status = await asyncio.to_thread(os.waitpid, pid, 0)
        message = os.read(read_fd, 4096).decode()
        os.close(read_fd)
        assert os.waitstatus_to_exitcode(status) == 0
        assert message.startswith("refused:")
        assert "another process" in message
        await cio.flush(timeout=5)
    # Only the parent's operation reached the server, exactly once.
    assert [op.identifiers for op in fake.operations] == [{"id": "parent"}]
