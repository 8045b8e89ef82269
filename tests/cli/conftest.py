"""Fixtures of the command-line tests."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest_asyncio

Spawn = Callable[..., Awaitable[asyncio.subprocess.Process]]


@pytest_asyncio.fixture
async def spawn() -> AsyncIterator[Spawn]:
    """Start a child process with piped output; whatever is still running when the test
    ends (a failed assertion, a timeout) is killed, so no stray import outlives its test."""
    children: list[asyncio.subprocess.Process] = []

    async def start(*argv: str, env: dict[str, str] | None = None) -> asyncio.subprocess.Process:
        proc = await asyncio.create_subprocess_exec(
            *argv, env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
        )
        children.append(proc)
        return proc

    yield start
    for proc in children:
        if proc.returncode is None:
            proc.kill()
            await proc.communicate()
