"""The ``customerio_fake`` pytest plugin, used the way a user's test suite uses it.

The plugin is registered through the ``pytest11`` entry point, so the inner pytest sessions
below find it without any ``-p`` or ``pytest_plugins``. (Our own suite runs with
``-p no:customerio_async``: an entry-point plugin is imported before pytest-cov starts,
which would hide this package's module-level lines from coverage.)
"""

from __future__ import annotations

import sys
from collections.abc import Iterator

import pytest

import customerio_async

pytest_plugins = ["pytester"]

USER_TESTS = """
import pytest

from customerio_async import CustomerIO, PipelinesClient
from customerio_async.pytest_plugin import CustomerIOFake


async def signup(cio: CustomerIO, user_id: str) -> None:  # "the application code"
    await cio.identify(user_id, plan="free")
    await cio.track(user_id, "signed_up", {"source": "ads"})


@pytest.mark.asyncio
async def test_signup_is_tracked(customerio_fake: CustomerIOFake) -> None:
    await signup(customerio_fake.client, "42")
    ops = await customerio_fake.delivered()
    assert [op.action for op in ops] == ["identify", "event"]
    assert customerio_fake.server.people()["id:42"] == {"plan": "free"}
    assert customerio_fake.client.batching
    assert customerio_fake.url == customerio_fake.server.url
    assert "CustomerIOFake" in repr(customerio_fake)


@pytest.mark.asyncio
async def test_flush_and_a_second_client(customerio_fake: CustomerIOFake) -> None:
    await customerio_fake.client.track("1", "opened")
    result = await customerio_fake.flush()
    assert result.delivered == 1 and result.pending == 0
    async with customerio_fake.new_client(batching=False) as direct:
        receipt = await direct.track("1", "clicked")
        assert receipt.outcome is not None and receipt.outcome.delivered
    assert len(customerio_fake.server.operations) == 2


@pytest.mark.asyncio
async def test_pipelines_calls_reach_the_same_fake(
    customerio_fake: CustomerIOFake, customerio_pipelines: PipelinesClient
) -> None:
    assert customerio_pipelines is customerio_fake.pipelines
    await customerio_pipelines.identify("42", {"plan": "pro"})
    await customerio_pipelines.track("42", "Order Completed", {"total": 42.5})
    messages = await customerio_fake.pipelines_delivered()
    assert [m.type for m in messages] == ["identify", "track"]
    assert customerio_fake.server.pipelines_profiles() == {"42": {"plan": "pro"}}
    async with customerio_fake.new_pipelines_client(gzip=False) as plain:
        await plain.alias("anon-1", "42", wait=True)
    assert customerio_fake.server.pipelines_drops == []


# A project's own fixtures named like ours (fake, cio) do not clash with the plugin.
@pytest.fixture
def fake() -> str:
    return "mine"


@pytest.fixture
def cio() -> str:
    return "also mine"


@pytest.mark.asyncio
async def test_no_clash(customerio_fake: CustomerIOFake, fake: str, cio: str) -> None:
    assert (fake, cio) == ("mine", "also mine")
"""

DIRECT_MODE_CONFTEST = """
import pytest


@pytest.fixture
def customerio_fake_options():
    return {"batching": False}
"""

DIRECT_MODE_TESTS = """
import pytest

from customerio_async import BadRequestError
from customerio_async.testing import Fault


async def test_direct_mode_raises_api_errors(customerio_fake):
    assert not customerio_fake.client.batching
    customerio_fake.server.add_fault(Fault(status=400))
    with pytest.raises(BadRequestError):
        await customerio_fake.client.identify("42", plan="pro")
"""


@pytest.fixture
def forget_plugin_module() -> Iterator[None]:
    """An in-process inner session imports ``customerio_async.pytest_plugin``; undo that so
    the rest of our suite sees the package exactly as before."""
    loaded = "customerio_async.pytest_plugin" in sys.modules
    yield
    if not loaded:
        sys.modules.pop("customerio_async.pytest_plugin", None)
        if hasattr(customerio_async, "pytest_plugin"):
            delattr(customerio_async, "pytest_plugin")


def test_fixture_in_a_users_suite(pytester: pytest.Pytester, forget_plugin_module: None) -> None:
    pytester.makepyfile(test_user=USER_TESTS)
    pytester.makeini(
        "[pytest]\nasyncio_mode = strict\nasyncio_default_fixture_loop_scope = function\n"
    )
    result = pytester.runpytest("-p", "no:cacheprovider")
    result.assert_outcomes(passed=4)


def test_options_fixture_selects_direct_mode(pytester: pytest.Pytester) -> None:
    pytester.makeconftest(DIRECT_MODE_CONFTEST)
    pytester.makepyfile(test_direct=DIRECT_MODE_TESTS)
    pytester.makeini(
        "[pytest]\nasyncio_mode = auto\nasyncio_default_fixture_loop_scope = function\n"
    )
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(passed=1)


def test_plugin_can_be_disabled(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_direct=DIRECT_MODE_TESTS)
    pytester.makeini(
        "[pytest]\nasyncio_mode = auto\nasyncio_default_fixture_loop_scope = function\n"
    )
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-p", "no:customerio_async")
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*fixture 'customerio_fake' not found*"])
