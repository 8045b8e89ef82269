"""De-duplication skips a write only when its effect is known to be applied; region
resolvers see typed identifiers (issue "Correctness at the edges", items 11 and 12).

Each test states how the code before the pipeline rebuild (commit 46e3948) failed it.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
import pytest_asyncio

from customerio_async import (
    BatchConfig,
    ConnectionLostError,
    CustomerIO,
    Identifier,
    OperationRejectedError,
    Person,
    RegionalCustomerIO,
)
from customerio_async.testing import FakeCustomerIO, Fault

from ._edges import API_KEY, SITE_ID, batched, direct

SLOW = BatchConfig(linger=60.0, drain_timeout=5.0, flush_timeout=5.0)


def identifies(fake: FakeCustomerIO) -> list[object]:
    """The plans the fake applied, in order."""
    return [op.body.get("attributes", op.body).get("plan") for op in fake.operations]


# ---------------------------------------------------------------- 11a. unknown outcomes


async def test_an_identify_with_an_unknown_outcome_is_forgotten(fake: FakeCustomerIO) -> None:
    """Before (direct mode): an identify that raised after the server applied it (a lost
    answer) was not forgotten, so going back to the earlier value was skipped as a
    duplicate and the person stayed on the value the caller believed had failed."""
    async with direct(fake) as cio:
        await cio.identify("42", plan="pro")
        # Two: aiohttp itself repeats an idempotent PUT once when a reused connection drops.
        fake.add_fault(Fault(action="reset_after_body", times=2))
        with pytest.raises(ConnectionLostError):
            await cio.identify("42", plan="free")  # applied; the answer is lost
        assert fake.people()["id:42"] == {"plan": "free"}
        await cio.identify("42", plan="pro")
    assert fake.people()["id:42"] == {"plan": "pro"}
    assert identifies(fake) == ["pro", "free", "free", "pro"]


# ---------------------------------------------------------------- 11b. batch() and send()


async def test_an_explicit_batch_invalidates_what_dedup_remembers(fake: FakeCustomerIO) -> None:
    """Before: identify(pro) → batch([identify free]) → identify(pro) skipped the last one
    as a duplicate of the first: final state ``free``."""
    async with batched(fake) as cio:
        await cio.identify("42", plan="pro", wait=True)
        await cio.batch([Person.identify("42", {"plan": "free"})])
        receipt = await cio.identify("42", plan="pro", wait=True)
    assert receipt.outcome is not None
    assert receipt.outcome.status == "delivered"
    assert fake.people()["id:42"] == {"plan": "pro"}


@pytest.mark.parametrize(
    "identifier", [{"id": "cio_abc"}, {"cio_id": "abc"}, {"email": "ada@example.com"}]
)
async def test_a_batch_of_dicts_invalidates_the_same_person(
    fake: FakeCustomerIO, identifier: dict[str, str]
) -> None:
    """The official ``batch()`` input (v2 dicts) names people as the typed calls do: an
    ``id`` ``cio_abc`` is not the ``cio_id`` ``abc``."""
    free = {"type": "person", "action": "identify", "identifiers": identifier}
    async with batched(fake) as cio:
        await cio.identify(identifier, plan="pro", wait=True)
        await cio.batch([{**free, "attributes": {"plan": "free"}}])
        receipt = await cio.identify(identifier, plan="pro", wait=True)
    assert receipt.outcome is not None
    assert receipt.outcome.status == "delivered"
    assert identifies(fake) == ["pro", "free", "pro"]


async def test_send_passes_through_dedup(fake: FakeCustomerIO) -> None:
    """``send(op)`` is remembered and invalidates like the named calls."""
    async with batched(fake) as cio:
        await cio.identify("42", plan="pro", wait=True)
        await cio.send(Person.identify("42", {"plan": "free"}), wait=True)
        await cio.identify("42", plan="pro", wait=True)
        await cio.send(Person.delete("42"), wait=True)
        await cio.identify("42", plan="pro", wait=True)  # re-creates the deleted person
        skipped = await cio.send(Person.identify("42", {"plan": "pro"}), wait=True)
    assert identifies(fake) == ["pro", "free", "pro", None, "pro"]
    assert skipped.outcome is not None
    assert skipped.outcome.status == "deduplicated"
    assert fake.people()["id:42"] == {"plan": "pro"}


# ---------------------------------------------------------------- 11c. a skipped twin's outcome


async def test_wait_on_a_skipped_duplicate_gets_the_twins_rejection(fake: FakeCustomerIO) -> None:
    """Before: a ``wait=True`` identify skipped because an identical one was still pending
    answered "deduplicated" at once, even though that twin was then rejected."""
    fake.add_fault(Fault(action="reject_indexes", indexes=(0,), match="/api/v2/batch"))
    async with batched(fake, batch=SLOW) as cio:
        twin = await cio.identify("42", plan="pro")  # pending: linger is 60 s
        with pytest.raises(OperationRejectedError) as info:
            await cio.identify("42", plan="pro", wait=True)
        assert info.value.outcome.reason == "invalid"
        assert twin.outcome is not None
        assert twin.outcome.status == "rejected"
        # The rejected identify is not remembered: the next one is sent.
        again = await cio.identify("42", plan="pro", wait=True)
        assert again.outcome is not None
        assert again.outcome.delivered
    assert len(fake.operations) == 1  # the rejected one was never applied


async def test_a_skipped_duplicate_of_a_delivered_twin_is_deduplicated(
    fake: FakeCustomerIO,
) -> None:
    async with batched(fake, batch=SLOW) as cio:
        twin = await cio.identify("42", plan="pro")
        mirror = await cio.identify("42", plan="pro")
        outcome = await mirror.wait(timeout=5)
        assert outcome.status == "deduplicated"
        assert twin.outcome is not None
        assert twin.outcome.delivered
        assert cio.statistics().deduplicated == 1
    assert len(fake.operations) == 1


# ---------------------------------------------------------------- 12. typed resolver input


@pytest_asyncio.fixture
async def eu_fake() -> AsyncIterator[FakeCustomerIO]:
    async with FakeCustomerIO(site_id=SITE_ID, api_key=API_KEY, region="eu") as server:
        yield server


async def test_the_region_resolver_gets_a_typed_identifier(
    fake: FakeCustomerIO, eu_fake: FakeCustomerIO
) -> None:
    """Before: the resolver received ``"abc"`` for both ``cio_abc`` (a cio_id) and ``abc``
    (an id), and its cache shared one answer between the two people."""
    asked: list[Identifier] = []

    async def resolver(person: Identifier) -> str | None:
        asked.append(person)
        return "eu" if person.type == "cio_id" else "us"

    clients = [
        CustomerIO(SITE_ID, API_KEY, track_url=fake.url, batching=False),
        CustomerIO(SITE_ID, API_KEY, track_url=eu_fake.url, batching=False, region="eu"),
    ]
    async with RegionalCustomerIO(clients, resolver=resolver) as cio:
        await cio.identify("cio_abc", n=1)
        await cio.identify("abc", n=2)
        await cio.identify({"cio_id": "abc"}, n=3)  # the same person: answered by the cache
        await cio.track("ada@example.com", "e")
    assert asked == [
        Identifier("cio_id", "abc"),
        Identifier("id", "abc"),
        Identifier("email", "ada@example.com"),
    ]
    assert all(isinstance(person, Identifier) for person in asked)
    assert eu_fake.people() == {"cio_id:abc": {"n": 3}}
    assert fake.people() == {"id:abc": {"n": 2}}
