"""A sample consumer project, type-checked with ``mypy --strict`` by test_typing_consumer.py.

It uses the public API the way an application does, with no stubs and no ``type: ignore``:
if a public name loses its annotations, or a return type turns into ``Any``, strict mode
fails here (``warn_return_any``, ``disallow_any_generics``, ``disallow_untyped_calls``...).
"""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import AsyncIterator

from prometheus_client import generate_latest

from customerio_async import (
    APIClient,
    BatchConfig,
    CustomerIO,
    DeliveryError,
    FlushResult,
    Identifier,
    Metrics,
    Outcome,
    Person,
    RateLimit,
    Receipt,
    Region,
    RegionalCustomerIO,
    RegionInfo,
    RetryPolicy,
    SendEmailRequest,
    SendResult,
    Statistics,
    ValidationError,
)
from customerio_async.pytest_plugin import CustomerIOFake
from customerio_async.testing import AppliedOperation, FakeCustomerIO, Fault
from customerio_async.webhooks import WebhookEvent, parse_event, verify_signature


async def track_signup(cio: CustomerIO, user_id: str, email: str) -> Receipt:
    await cio.identify(user_id, email=email, created_at=dt.datetime.now(dt.timezone.utc))
    receipt: Receipt = await cio.track(user_id, "signed_up", {"plan": "pro"})
    return receipt


async def confirmed(cio: CustomerIO) -> bool:
    try:
        receipt = await cio.track("42", "checkout", wait=True)
    except DeliveryError as exc:
        return exc.outcome is None
    except ValidationError:
        return False
    outcome: Outcome = await receipt.wait(timeout=5.0)
    return outcome.delivered and outcome.reason is None


async def lookup_region(person: Identifier) -> str | None:
    return "eu" if person.type == "id" and person.value.startswith("eu-") else None


async def regional(us: CustomerIO, eu: CustomerIO) -> dict[Region, Statistics]:
    async with RegionalCustomerIO([us, eu], resolver=lookup_region) as cio:
        await cio.using("eu").track("eu-1", "login")
        await cio.send(Person.event("43", "signed_up", {"source": "ads"}))
        flushed: dict[Region, FlushResult] = await cio.flush()
        assert all(r.pending == 0 for r in flushed.values())
        return cio.statistics()


async def send_receipt_email(api: APIClient) -> str:
    request = SendEmailRequest(transactional_message_id=44, to="a@b.co", identifiers={"id": "1"})
    request.attach("receipt.txt", b"paid")
    result: SendResult = await api.send_email(request)
    return result.delivery_id


def on_webhook(body: bytes, timestamp: str | None, signature: str | None) -> str:
    verify_signature(body, timestamp, signature, "key")
    event: WebhookEvent = parse_event(body)
    person: str | None = event.data.identifiers.id
    return f"{event.object_type}/{event.metric}/{person}"


async def with_fake() -> list[AppliedOperation]:
    async with (
        FakeCustomerIO() as fake,
        CustomerIO(
            fake.site_id,
            fake.api_key,
            track_url=fake.url,
            batch=BatchConfig(linger=0.01),
            retry=RetryPolicy(delivery_timeout=5),
            rate_limit=RateLimit(requests_per_second=50, burst=5),
            metrics=Metrics(prefix="app_cio_"),
        ) as cio,
    ):
        fake.add_fault(Fault(status=503, headers={"Retry-After": "1"}))
        await track_signup(cio, "42", "ada@example.com")
        info: RegionInfo = await cio.get_region()
        assert info.region is Region.US
        metrics_text: bytes = generate_latest(cio.metrics.registry)
        assert metrics_text
        return list(fake.operations)


async def plugin_style_test(customerio_fake: CustomerIOFake) -> None:
    await track_signup(customerio_fake.client, "42", "ada@example.com")
    ops: list[AppliedOperation] = await customerio_fake.delivered()
    assert ops[0].action == "identify"
    async with customerio_fake.new_client(batching=False) as direct:
        await direct.delete("42")


async def stream() -> AsyncIterator[int]:
    yield len(await with_fake())


if __name__ == "__main__":
    asyncio.run(with_fake())
