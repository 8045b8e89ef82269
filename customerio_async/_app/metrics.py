"""The App client's Prometheus families: request latency, retries, unknown outcomes,
bytes sent and requests in flight (see :class:`~customerio_async.Metrics`)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from .._http.stack import HTTPStack
from .._metrics import counter, gauge, request_latency_family

if TYPE_CHECKING:
    from prometheus_client.core import Metric

__all__ = ["app_metric_families"]


def app_metric_families(region: str, http: HTTPStack, prefix: str) -> list[Metric]:
    """Turn an App client's counters and latency histograms into Prometheus families.

    Args:
        region: The client's region (``"us"``/``"eu"``), the ``region`` label.
        http: The client's HTTP stack, whose accounting and retry counters are read.
        prefix: The metric name prefix (``"customerio_"``).
    """
    accounting = http.accounting
    counters = http.counters
    only = ["region"]
    return [
        request_latency_family(prefix, region, accounting.latency),
        counter(
            f"{prefix}app_retries",
            "App API attempts retried, by cause.",
            ["region", "cause"],
            [([region, cause], n) for cause, n in counters.by_cause.items()],
        ),
        counter(
            f"{prefix}app_outcome_unknown",
            "App API sends/triggers that may have been applied and were not retried.",
            only,
            [([region], counters.outcome_unknown)],
        ),
        counter(
            f"{prefix}app_bytes_sent",
            "App API request body bytes sent.",
            only,
            [([region], accounting.bytes_sent)],
        ),
        gauge(
            f"{prefix}app_in_flight_requests",
            "App API requests on the wire now.",
            only,
            [([region], accounting.in_flight)],
        ),
    ]
