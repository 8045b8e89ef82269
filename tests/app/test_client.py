"""The client itself: configuration, lifecycle and metrics."""

from __future__ import annotations

import pytest

from customerio_async import (
    APIClient,
    ClientStateError,
    ConfigurationError,
    CustomerIO,
    Metrics,
    Region,
)
from customerio_async.testing import FakeCustomerIO, Fault

from ._support import APP_KEY, FAST_RETRY, NO_LIMITS, email


def test_configuration(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CUSTOMERIO_APP_API_KEY", raising=False)
    with pytest.raises(ConfigurationError, match="CUSTOMERIO_APP_API_KEY"):
        APIClient()
    monkeypatch.setenv("CUSTOMERIO_APP_API_KEY", "from-env")
    client = APIClient(region="EU")
    assert client.region is Region.EU
    assert client.origin == "https://api-eu.customer.io"
    assert APIClient("k").origin == "https://api.customer.io"
    assert APIClient("k", api_url="http://127.0.0.1:1/v1/").origin == "http://127.0.0.1:1"
    assert APIClient("k", url="https://proxy.example").origin == "https://proxy.example"
    with pytest.raises(ConfigurationError, match="not both"):
        APIClient("k", api_url="http://a.example", url="http://b.example")
    with pytest.raises(ConfigurationError, match="whitespace"):
        APIClient("k\r\nX-Evil: 1")
    with pytest.raises(ConfigurationError):
        APIClient("k", region="mars")
    with pytest.raises(ConfigurationError):
        APIClient("k", api_url="ftp://x")


async def test_lifecycle_and_repr(fake: FakeCustomerIO) -> None:
    client = APIClient("super-secret-key", api_url=fake.url)
    assert "super-secret-key" not in repr(client)
    assert "state='new'" in repr(client)
    with pytest.raises(ClientStateError, match="not open"):
        await client.send_email(email())
    async with client:
        assert client.statistics().state == "open"
        with pytest.raises(ClientStateError):
            await client.open()
    assert client.statistics().state == "closed"
    await client.aclose()  # idempotent
    with pytest.raises(ClientStateError, match="closed"):
        await client.trigger_broadcast(1)
    with pytest.raises(ClientStateError, match="closed"):
        await client.get_trigger_errors(1, 1)
    assert fake.requests == []


async def test_metrics_share_a_registry_with_the_track_client(fake: FakeCustomerIO) -> None:
    from prometheus_client import generate_latest

    shared = Metrics()
    fake.add_fault(Fault(status=503, match="/v1/send/email"))
    async with (
        CustomerIO(
            fake.site_id, fake.api_key, track_url=fake.url, batching=False, metrics=shared
        ) as cio,
        APIClient(
            APP_KEY, api_url=fake.url, rate_limits=NO_LIMITS, retry=FAST_RETRY, metrics=shared
        ) as api,
    ):
        assert api.metrics is shared
        assert api.metrics_label == "us:app"
        await cio.identify("42", plan="pro")
        await api.send_email(email())
        text = generate_latest(shared.registry).decode()
        # A second App client for the same region cannot share the same Metrics.
        twin = APIClient(APP_KEY, api_url=fake.url, metrics=shared)
        with pytest.raises(ConfigurationError, match="already attached"):
            await twin.open()
        assert twin.statistics().state == "closed"
    assert 'api="app",endpoint="/v1/send/email",region="us",status_class="2xx"' in text
    assert 'api="app",endpoint="/v1/send/email",region="us",status_class="5xx"' in text
    assert 'api="track"' in text
    assert 'customerio_app_retries_total{cause="http_503",region="us"} 1.0' in text
    assert 'customerio_app_outcome_unknown_total{region="us"} 0.0' in text
    assert 'customerio_app_in_flight_requests{region="us"} 0.0' in text
    sent = sum(len(r.body) for r in fake.requests if r.path == "/v1/send/email")
    assert f'customerio_app_bytes_sent_total{{region="us"}} {float(sent)}' in text
