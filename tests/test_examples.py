"""Every recipe in ``examples/`` runs for real: served on loopback and poked over HTTP, or
run as a subprocess (the SIGTERM recipe is sent a real SIGTERM and must drain)."""

from __future__ import annotations

import asyncio
import importlib.util
import json
import os
import signal
import socket
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path
from types import ModuleType
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from customerio_async.testing import FakeCustomerIO

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
KEY = "fake-signing-key"


def load(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(f"example_{name}", EXAMPLES / f"{name}.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def webhook_event(event_id: str) -> dict[str, Any]:
    return {
        "event_id": event_id,
        "object_type": "email",
        "metric": "delivered",
        "timestamp": int(time.time()),
        "data": {"identifiers": {"id": "42"}, "delivery_id": "dlv_1"},
    }


async def run_example(*argv: str, env: dict[str, str] | None = None) -> tuple[int, str, str]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        *argv,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(proc.communicate(), 30)
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


async def test_aiohttp_app_recipe() -> None:
    module = load("aiohttp_app")
    app = module.create_app(fake=True)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    base = f"http://127.0.0.1:{port}"
    try:
        fake: FakeCustomerIO = app[module.FAKE]
        async with aiohttp.ClientSession() as http:
            async with http.post(f"{base}/signup", json={"user_id": "42", "email": "a@b.co"}) as r:
                assert r.status == 202
            async with http.post(f"{base}/orders", json={"user_id": "42", "total": 9}) as r:
                assert r.status == 200
                assert (await r.json()) == {"delivered": True}
            # The docstring's promise: once wait=True returned, the signup's operations
            # (same person, so the same lane) are delivered too, without waiting for linger.
            async with http.get(f"{base}/healthz") as r:
                assert (await r.json())["delivered"] == 3
            await fake.wait_for_operations(3)
            assert fake.people()["id:42"]["email"] == "a@b.co"
            async with http.get(f"{base}/metrics") as r:
                text = await r.text()
                assert r.status == 200
                assert r.content_type == "text/plain"
                assert (
                    'customerio_operations_total{outcome="delivered",reason="",region="us"}' in text
                )
            async with http.get(f"{base}/healthz") as r:
                assert (await r.json())["accepted"] == 3
        url = f"{base}/webhooks/customerio"
        assert await fake.emit_webhook(url, webhook_event("01HWEBHOOK1"), KEY) == 200
        assert await fake.emit_webhook(url, webhook_event("01HWEBHOOK2"), "wrong-key") == 401
        for _ in range(100):
            if app[module.EVENTS]:
                break
            await asyncio.sleep(0.01)
        assert [e.event_id for e in app[module.EVENTS]] == ["01HWEBHOOK1"]
    finally:
        await runner.cleanup()  # cleanup_ctx: the client drains, then the fake stops


async def test_fastapi_app_recipe() -> None:
    pytest.importorskip("fastapi")
    uvicorn = pytest.importorskip("uvicorn")
    module = load("fastapi_app")
    app = module.create_app(fake=True)
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    config = uvicorn.Config(app, lifespan="on", log_level="warning")
    server = uvicorn.Server(config)
    serving = asyncio.ensure_future(server.serve(sockets=[sock]))
    try:
        for _ in range(500):
            if server.started:
                break
            await asyncio.sleep(0.01)
        assert server.started
        base = f"http://127.0.0.1:{port}"
        fake: FakeCustomerIO = app.state.fake
        async with aiohttp.ClientSession() as http:
            body = {"user_id": "7", "email": "g@h.io", "plan": "pro"}
            async with http.post(f"{base}/signup", json=body) as r:
                assert r.status == 202
                assert await r.json() == {"accepted": True}
            async with http.post(f"{base}/signup", json={"user_id": "7"}) as r:
                assert r.status == 422  # FastAPI validates the body before our code runs
            await fake.wait_for_operations(2)
            assert fake.people()["id:7"] == {"email": "g@h.io", "plan": "pro"}
            async with http.get(f"{base}/metrics") as r:
                assert "customerio_operations_accepted_total" in await r.text()
        url = f"{base}/webhooks/customerio"
        assert await fake.emit_webhook(url, webhook_event("01HFASTAPI1"), KEY) == 200
        assert await fake.emit_webhook(url, webhook_event("01HFASTAPI1"), KEY) == 200  # dup
        for _ in range(100):
            if app.state.webhook_events:
                break
            await asyncio.sleep(0.01)
        assert [e.event_id for e in app.state.webhook_events] == ["01HFASTAPI1"]
    finally:
        server.should_exit = True
        await asyncio.wait_for(serving, 10)
        sock.close()


async def test_worker_recipe() -> None:
    status, out, err = await run_example(str(EXAMPLES / "worker.py"), "--fake", "--jobs", "300")
    assert status == 0, err
    result = json.loads(out.strip().splitlines()[-1])
    assert result["accepted"] == result["delivered"] == 600
    assert result["pending"] == 0


async def test_pipelines_recipe() -> None:
    status, out, err = await run_example(str(EXAMPLES / "pipelines.py"), "--fake", "--users", "50")
    assert status == 0, err
    result = json.loads(out.strip().splitlines()[-1])
    assert result["messages"] == result["delivered"] == result["accepted_by_fake"] == 350
    assert result["rejected"] == result["dropped"] == 0


@pytest.fixture
async def external_fake() -> AsyncIterator[FakeCustomerIO]:
    async with FakeCustomerIO(site_id="recipe-site", api_key="recipe-key") as fake:
        yield fake


async def test_graceful_shutdown_recipe_drains_on_sigterm(external_fake: FakeCustomerIO) -> None:
    fake = external_fake
    env = {**os.environ, "CUSTOMERIO_SITE_ID": "recipe-site", "CUSTOMERIO_API_KEY": "recipe-key"}
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        str(EXAMPLES / "graceful_shutdown.py"),
        "--track-url",
        fake.url,
        "--linger",
        "60",  # nothing leaves the buffer on its own during the test
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        assert proc.stdout is not None
        first = await asyncio.wait_for(proc.stdout.readline(), 15)
        assert b"send SIGTERM to stop" in first
        await asyncio.sleep(0.3)  # produce a few dozen events into the buffer
        assert fake.operations == []  # all buffered, none sent yet
        started = time.monotonic()
    finally:
        proc.send_signal(signal.SIGTERM)
    out, err = await asyncio.wait_for(proc.communicate(), 15)
    assert proc.returncode == 0, err.decode()
    assert time.monotonic() - started < 10  # drained now, not after the 60 s linger
    result = json.loads(out.decode().strip().splitlines()[-1])
    assert result["buffered_at_sigterm"] > 0
    assert result["accepted"] == result["delivered"] == len(fake.operations) > 0
    assert result["dropped"] == 0
