"""Scenario 9: secrets never leak.

With DEBUG logging on for every logger, each failure path of scenarios 1-7 is driven again
(statuses, resets, timeouts, garbage, blackhole, refused, DNS failure, unsafe redirects,
buffer overflow, shutdown drops, rejected and dropped ``wait=True`` calls, direct mode, the
App API client). Then no log line (message, traceback or stack), no exception raised to the
caller (its whole chain, as a traceback prints it), no outcome and no ``repr()`` of a client,
receipt, operation or statistics may contain:

* the Track API key, the App API key, the ``Basic``/``Bearer`` credentials;
* payload values (an attribute value, event data) or the person's identifier.

Server-side log records of the fake (``aiohttp.server``/``aiohttp.web``) are not the SDK's
and are left out.
"""

from __future__ import annotations

import asyncio
import base64
import dataclasses
import logging
import traceback
from collections.abc import Awaitable, Callable
from typing import Any, Literal

import pytest

from customerio_async import (
    APIClient,
    BatchConfig,
    BufferFullError,
    CustomerIO,
    CustomerIOError,
    DedupConfig,
    PoolLimits,
    RateLimit,
    Receipt,
    RegionalCustomerIO,
    RequestTimeoutError,
    RetryPolicy,
    SendEmailRequest,
    Timeouts,
)
from customerio_async.testing import FakeCustomerIO, Fault

from ._harness import count_figures
from ._proxy import FaultProxy, ProxyFault

SITE = "site-7f3a"
KEY = "trackkey-SECRET-9b1c0d2e"
APP_KEY = "appkey-SECRET-4e2f6a7b"
PERSON = "person-SECRET-5d6e"
VALUE = "value-SECRET-8a9b"
TOKEN = base64.b64encode(f"{SITE}:{KEY}".encode()).decode()
SECRETS = {
    "track API key": KEY,
    "App API key": APP_KEY,
    "Basic credentials": TOKEN,
    "Basic header": f"Basic {TOKEN}",
    "Bearer header": f"Bearer {APP_KEY}",
    "identifier": PERSON,
    "payload value": VALUE,
}
FAST = RetryPolicy(
    backoff_base=0.005,
    backoff_cap=0.02,
    delivery_timeout=0.4,
    max_attempts=10_000,
    auth_pause=0.05,
    direct_attempts=2,
)
SHORT = Timeouts(total=0.5, connect=0.3, sock_read=0.2)


@dataclasses.dataclass
class World:
    fake: FakeCustomerIO
    proxy: FaultProxy
    texts: list[str] = dataclasses.field(default_factory=list)
    raised: list[type[BaseException]] = dataclasses.field(default_factory=list)

    def client(self, **kwargs: Any) -> CustomerIO:
        kwargs.setdefault("retry", FAST)
        kwargs.setdefault("timeouts", SHORT)
        kwargs.setdefault("rate_limit", None)
        kwargs.setdefault("batch", BatchConfig(linger=0))
        url = kwargs.pop("url", self.proxy.url)
        return CustomerIO(SITE, KEY, track_url=url, **kwargs)

    def see(self, *objects: object) -> None:
        """Record what a user could print: reprs and strs."""
        for obj in objects:
            self.texts.extend((repr(obj), str(obj)))

    def saw_exception(self, exc: BaseException) -> None:
        self.raised.append(type(exc))
        self.texts.append("".join(traceback.format_exception(exc)))

    async def call(self, coro: Awaitable[Any]) -> Any:
        """Await ``coro``; an SDK exception is recorded (whole chain) instead of raised."""
        try:
            return await coro
        except CustomerIOError as exc:
            self.saw_exception(exc)
            return None

    async def settle(self, cio: CustomerIO, *receipts: Receipt | None) -> None:
        await self.call(cio.flush(timeout=5))
        for r in receipts:
            if r is not None:
                self.see(r, r.operation, r.outcome)
        self.see(cio, cio.statistics())


Scenario = Callable[[World], Awaitable[None]]


async def track_and_identify(w: World, cio: CustomerIO) -> list[Receipt | None]:
    return [
        await w.call(cio.identify(PERSON, plan=VALUE)),
        await w.call(cio.track(PERSON, "paid", {"secret": VALUE})),
    ]


def batched_fault(*faults: Fault) -> Scenario:
    async def run(w: World) -> None:
        for f in faults:
            w.fake.add_fault(f)
        async with w.client() as cio:
            receipts = await track_and_identify(w, cio)
            await w.settle(cio, *receipts)
            await w.call(cio.track(PERSON, "confirmed", {"v": VALUE}, wait=True))
        w.see(cio)

    return run


def proxy_fault(fault: ProxyFault, *, refuse: bool = False) -> Scenario:
    async def run(w: World) -> None:
        w.proxy.fault = fault
        if refuse:
            await w.proxy.refuse()
        async with w.client() as cio:
            receipts = await track_and_identify(w, cio)
            await w.settle(cio, *receipts)
            await w.call(cio.track(PERSON, "confirmed", {"v": VALUE}, wait=True))
        direct = w.client(batching=False)
        async with direct:
            await w.call(direct.identify(PERSON, plan=VALUE))
            await w.call(direct.track(PERSON, "paid", {"secret": VALUE}))
        w.see(cio, direct)

    return run


async def connect_timeout(w: World) -> None:
    await w.proxy.stall_connects()
    async with w.client() as cio:
        receipts = await track_and_identify(w, cio)
        await w.settle(cio, *receipts)
    async with w.client(batching=False) as direct:
        await w.call(direct.identify(PERSON, plan=VALUE))
    assert RequestTimeoutError in w.raised


def direct_statuses(*statuses: int) -> Scenario:
    async def run(w: World) -> None:
        async with w.client(batching=False, url=w.fake.url) as cio:
            for status in statuses:
                w.fake.add_fault(Fault(status=status, times=2))
                await w.call(cio.identify(PERSON, plan=VALUE))
                w.fake.add_fault(Fault(status=status, times=2))
                await w.call(cio.track(PERSON, "paid", {"secret": VALUE}))
        w.see(cio)

    return run


async def dns_failure(w: World) -> None:
    url = "http://cio-secrets-test.invalid"
    few = dataclasses.replace(FAST, max_attempts=2)  # a couple of lookups, not dozens
    async with w.client(url=url, retry=few) as cio:
        receipts = await track_and_identify(w, cio)
        await w.settle(cio, *receipts)
    async with w.client(url=url, batching=False, retry=few) as direct:
        await w.call(direct.identify(PERSON, plan=VALUE))


async def unsafe_redirect(w: World) -> None:
    target = f"http://other.invalid/api/v1/customers/{PERSON}?k={VALUE}"
    w.fake.add_fault(Fault(status=302, headers={"Location": target}, times=1000))
    async with w.client(url=w.fake.url) as cio:
        receipts = await track_and_identify(w, cio)
        await w.settle(cio, *receipts)
    async with w.client(url=w.fake.url, batching=False) as direct:
        await w.call(direct.identify(PERSON, plan=VALUE))


async def buffer_overflow(w: World) -> None:
    w.proxy.fault = ProxyFault("blackhole")
    policies: list[Literal["drop_newest", "drop_oldest", "raise"]] = [
        "drop_newest",
        "drop_oldest",
        "raise",
    ]
    for policy in policies:
        cfg = BatchConfig(linger=0, max_buffer_ops=2, overflow=policy)
        async with w.client(batch=cfg, retry=dataclasses.replace(FAST, delivery_timeout=30)) as cio:
            receipts = [await w.call(cio.identify(f"{PERSON}{i}", plan=VALUE)) for i in range(5)]
            w.see(*(r for r in receipts if r is not None), cio.statistics())
            await cio.aclose(timeout=0.1)
    assert BufferFullError in w.raised


async def shutdown_drops(w: World) -> None:
    w.proxy.fault = ProxyFault("blackhole")
    cio = w.client(retry=dataclasses.replace(FAST, delivery_timeout=30))
    await cio.open()
    receipts = await track_and_identify(w, cio)
    waiter = asyncio.ensure_future(w.call(cio.track(PERSON, "x", {"v": VALUE}, wait=True)))
    await cio.aclose(timeout=0.1)
    await waiter
    w.see(cio, cio.statistics(), *(r.outcome for r in receipts if r is not None))


async def auth_failure(w: World) -> None:
    async with CustomerIO(
        SITE, "wrong-" + KEY, track_url=w.fake.url, retry=FAST, batch=BatchConfig(linger=0)
    ) as cio:
        receipts = await track_and_identify(w, cio)
        await w.settle(cio, *receipts)


async def app_api(w: World) -> None:
    request = SendEmailRequest(
        transactional_message_id=1, to=f"{PERSON}@example.com", identifiers={"id": PERSON},
        message_data={"secret": VALUE},
    )  # fmt: skip
    for fault in (
        Fault(status=401),
        Fault(status=500),
        Fault(status=429, headers={"Retry-After": "0"}, times=5),
        Fault(action="reset_before_body"),
        Fault(action="reset_after_body"),
        Fault(delay=1.0),
    ):
        w.fake.add_fault(fault)
        async with APIClient(
            APP_KEY, api_url=w.fake.url, retry=FAST, timeouts=SHORT, rate_limits=None
        ) as api:
            await w.call(api.send_email(request))
            w.see(api, request)
    async with APIClient("wrong-" + APP_KEY, api_url=w.fake.url, retry=FAST) as bad:
        await w.call(bad.send_email(request))


SCENARIOS: dict[str, Scenario] = {
    "503-then-ok": batched_fault(Fault(status=503, times=2)),
    "429-retry-after": batched_fault(Fault(status=429, headers={"Retry-After": "0"}, times=2)),
    "401-403-auth-pause": batched_fault(Fault(status=401, times=3), Fault(status=403, times=3)),
    "400-rejected": batched_fault(Fault(status=400, body=b'{"meta":{"error":"bad"}}', times=50)),
    "207-partial": batched_fault(Fault(action="reject_indexes", indexes=(0, 1), times=3)),
    "413-split": batched_fault(Fault(status=413, times=4)),
    "reset-before-body": batched_fault(Fault(action="reset_before_body", times=3)),
    "reset-after-body": batched_fault(Fault(action="reset_after_body", times=3)),
    "drip-timeout": batched_fault(Fault(action="drip", delay=0.5, times=3)),
    "503-forever": batched_fault(Fault(status=503, times=10_000)),
    "garbage": proxy_fault(ProxyFault("garbage", body=b"NOT HTTP\r\n\r\n")),
    "answer-lost": proxy_fault(ProxyFault("close_after_response")),
    "cut-mid-response": proxy_fault(ProxyFault("cut_response", cut_after=30)),
    "blackhole": proxy_fault(ProxyFault("blackhole")),
    "refused": proxy_fault(ProxyFault("pass"), refuse=True),
    "connect-timeout": connect_timeout,
    "dns-failure": dns_failure,
    "unsafe-redirect": unsafe_redirect,
    "buffer-overflow": buffer_overflow,
    "shutdown-drops": shutdown_drops,
    "wrong-key": auth_failure,
    "direct-statuses": direct_statuses(400, 401, 403, 404, 413, 422, 429, 500, 503),
    "app-api": app_api,
}


def _log_texts(records: list[logging.LogRecord]) -> list[str]:
    formatter = logging.Formatter()
    out = []
    for record in records:
        if record.name.startswith(("aiohttp.server", "aiohttp.web", "aiohttp.access")):
            continue  # the fake's own server logs, not the SDK's
        out.append(f"{record.name}: {record.getMessage()}")
        if record.exc_info:
            out.append(formatter.formatException(record.exc_info))
        if record.stack_info:
            out.append(record.stack_info)
    return out


@pytest.mark.parametrize("scenario", list(SCENARIOS))
async def test_no_secret_or_payload_in_logs_errors_outcomes_or_reprs(
    scenario: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)  # every logger: ours, aiohttp's, asyncio's
    async with (
        FakeCustomerIO(site_id=SITE, api_key=KEY, app_api_key=APP_KEY) as fake,
        FaultProxy(fake.port) as proxy,
    ):
        world = World(fake, proxy)
        await SCENARIOS[scenario](world)
    logs = _log_texts(caplog.records)
    texts = world.texts + logs
    assert caplog.records or world.raised, "the scenario exercised nothing"
    count_figures(
        "secrets",
        failure_paths=1,
        log_records_checked=len(logs),
        exceptions_checked=len(world.raised),
        texts_checked=len(texts),
    )
    for label, secret in SECRETS.items():
        leaks = [t for t in texts if secret in t]
        assert not leaks, f"{label} leaked in {scenario}:\n" + "\n---\n".join(leaks[:3])


def test_reprs_of_clients_and_configuration_hide_keys() -> None:
    clients: list[object] = [
        CustomerIO(SITE, KEY),
        CustomerIO(SITE, KEY, region="eu", batching=False),
        APIClient(APP_KEY),
        RegionalCustomerIO([CustomerIO(SITE, KEY), CustomerIO(SITE, KEY, region="eu")]),
    ]
    configs: list[object] = [
        BatchConfig(),
        RetryPolicy(),
        RateLimit(),
        Timeouts(),
        PoolLimits(),
        DedupConfig(),
    ]
    for obj in clients + configs:
        for text in (repr(obj), str(obj)):
            for label, secret in SECRETS.items():
                assert secret not in text, f"{label} in repr of {type(obj).__name__}: {text}"
