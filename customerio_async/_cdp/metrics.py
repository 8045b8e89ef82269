"""The Pipelines client's Prometheus families (see :class:`~customerio_async.Metrics`).

Request latency joins the shared ``customerio_http_request_duration_seconds`` family with
``api="pipelines"``; everything else is named ``customerio_pipelines_*`` so a Pipelines
client and a Track client of the same region can share one :class:`Metrics`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .._metrics import counter, gauge, histogram_family

if TYPE_CHECKING:
    from prometheus_client.core import Metric

    from .._http.stack import HTTPStack
    from .._pipeline.ledger import Ledger
    from .._pipeline.receipt import Statistics

__all__ = ["pipelines_metric_families"]


def pipelines_metric_families(
    region: str, stats: Statistics, ledger: Ledger, http: HTTPStack, prefix: str
) -> list[Metric]:
    """Turn one Pipelines client's counters and histograms into Prometheus families.

    Args:
        region: The ``region`` label (``"us"``/``"eu"``).
        stats: A statistics snapshot of the client.
        ledger: The pipeline's outcome histograms.
        http: The client's HTTP stack (latency per attempt).
        prefix: The metric name prefix (``"customerio_"``).
    """
    name = f"{prefix}pipelines_"
    only = ["region"]
    latency = [
        ([region, api, endpoint, status], hist)
        for (api, endpoint, _, status), hist in list(http.accounting.latency.series.items())
    ]
    histograms = (
        ("operation_duration_seconds", "Admission to terminal outcome.", ledger.end_to_end),
        ("batch_operations", "Messages per /v1/batch request.", ledger.batch_ops),
        ("batch_bytes", "Body bytes per /v1/batch request, before gzip.", ledger.batch_bytes),
    )
    gauges = (
        ("buffered_operations", "Messages admitted, not yet decided.", stats.buffered_ops),
        ("buffered_bytes", "Bytes admitted, not yet decided.", stats.buffered_bytes),
        ("in_flight_requests", "Requests on the wire now.", stats.in_flight_requests),
    )
    return [
        histogram_family(
            f"{prefix}http_request_duration_seconds",
            "HTTP request latency per attempt (endpoint templates only).",
            ["region", "api", "endpoint", "status_class"],
            latency,
        ),
        *_counters(name, region, stats),
        *(histogram_family(name + n, d, only, [([region], h)]) for n, d, h in histograms),
        *(gauge(name + n, d, only, [([region], v)]) for n, d, v in gauges),
    ]


def _counters(name: str, region: str, stats: Statistics) -> list[Metric]:
    outcomes: list[tuple[list[str], float]] = [
        ([region, "delivered", ""], stats.delivered),
        *(([region, "rejected", k], v) for k, v in stats.rejected_by_reason.items()),
        *(([region, "dropped", k], v) for k, v in stats.dropped_by_reason.items()),
    ]
    return [
        counter(
            f"{name}operations",
            "Messages by terminal outcome and reason.",
            ["region", "outcome", "reason"],
            outcomes,
        ),
        counter(
            f"{name}retries",
            "Retried attempts by cause.",
            ["region", "cause"],
            [([region, k], v) for k, v in stats.retries_by_cause.items()],
        ),
        counter(
            f"{name}operations_accepted",
            "Messages admitted.",
            ["region"],
            [([region], stats.accepted)],
        ),
        counter(
            f"{name}bytes_sent",
            "Request body bytes sent (after gzip).",
            ["region"],
            [([region], stats.bytes_sent)],
        ),
    ]
