"""A Track client's Prometheus families, built at scrape time from its counters."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

from prometheus_client.core import Metric

from .._metrics import counter, gauge, histogram_family, request_latency_family

if TYPE_CHECKING:
    from .._common.histogram import Histogram, LabelledHistograms
    from .._http.accounting import AccountingLayer
    from .._http.transport import AiohttpTransport
    from .._pipeline.ledger import Ledger
    from .._pipeline.receipt import Statistics
    from .client import CustomerIO

__all__ = ["Observables", "client_metric_families"]


@dataclass(frozen=True, slots=True)
class Observables:
    """What the metrics collector reads from a client (no private-field reaching)."""

    ledger: Ledger
    transport: AiohttpTransport
    accounting: AccountingLayer
    dedup_hits: Mapping[str, int]

    @property
    def latency(self) -> LabelledHistograms:
        """Per-attempt request latency histograms."""
        return self.accounting.latency


def client_metric_families(client: CustomerIO, prefix: str) -> list[Metric]:
    """Turn one client's counters and histograms into Prometheus families."""
    region = client.metrics_label
    parts = client.observables()
    stats = client.statistics()
    only = ["region"]
    return [
        request_latency_family(prefix, region, parts.accounting.latency),
        *(
            histogram_family(prefix + n, d, only, [([region], h)])
            for n, d, h in _histograms(parts, stats)
        ),
        *(counter(prefix + n, d, only, [([region], v)]) for n, d, v in _counters(parts, stats)),
        *(gauge(prefix + n, d, only, [([region], v)]) for n, d, v in _gauges(parts, stats)),
        *_labelled(region, prefix, parts, stats),
    ]


def _histograms(parts: Observables, stats: Statistics) -> list[tuple[str, str, Histogram]]:
    ledger = parts.ledger
    return [
        ("operation_duration_seconds", "Admission to terminal outcome.", ledger.end_to_end),
        ("batch_operations", "Operations per batch request.", ledger.batch_ops),
        ("batch_bytes", "Body bytes per batch request.", ledger.batch_bytes),
        (
            "admission_wait_seconds",
            "Waits for buffer space at admission.",
            ledger.admission_waits(stats.accepted),
        ),
    ]


def _counters(parts: Observables, stats: Statistics) -> list[tuple[str, str, float]]:
    transport = parts.transport
    return [
        ("operations_accepted", "Operations admitted.", stats.accepted),
        ("bytes_sent", "Request body bytes sent.", stats.bytes_sent),
        ("pool_connections_created", "Connections opened.", transport.connections_created),
        (
            "pool_connections_reused",
            "Requests on a reused connection.",
            transport.connections_reused,
        ),
    ]


def _gauges(parts: Observables, stats: Statistics) -> list[tuple[str, str, float]]:
    return [
        ("buffered_operations", "Operations admitted, not yet decided.", stats.buffered_ops),
        ("buffered_bytes", "Bytes admitted, not yet decided.", stats.buffered_bytes),
        ("in_flight_requests", "Requests on the wire now.", stats.in_flight_requests),
        (
            "pool_connections_in_use",
            "Connections serving a request.",
            parts.transport.connections_in_use,
        ),
    ]


def _labelled(region: str, prefix: str, parts: Observables, stats: Statistics) -> list[Metric]:
    dedup_hits = dict(parts.dedup_hits)
    outcomes: list[tuple[list[str], float]] = [
        ([region, "delivered", ""], stats.delivered),
        *(([region, "rejected", k], v) for k, v in stats.rejected_by_reason.items()),
        *(([region, "dropped", k], v) for k, v in stats.dropped_by_reason.items()),
    ]
    if dedup_hits:
        outcomes.append(([region, "deduplicated", ""], sum(dedup_hits.values())))
    return [
        counter(
            f"{prefix}operations",
            "Operations by terminal outcome and reason.",
            ["region", "outcome", "reason"],
            outcomes,
        ),
        counter(
            f"{prefix}retries",
            "Retried attempts by cause.",
            ["region", "cause"],
            [([region, k], v) for k, v in stats.retries_by_cause.items()],
        ),
        counter(
            f"{prefix}dedup_hits",
            "Operations skipped as duplicates.",
            ["region", "kind"],
            [([region, k], v) for k, v in dedup_hits.items()],
        ),
    ]
