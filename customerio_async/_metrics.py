"""Prometheus metrics, read from the SDK's own counters at scrape time.

The hot path only bumps integers and fixed-bucket histograms it keeps anyway (no locks, no
label lookups per operation); :class:`Metrics` turns them into Prometheus families when the
registry is collected. Every family is prefixed (``customerio_`` by default) and labelled
with ``region`` (and ``api``/``endpoint``/``status_class`` where relevant) — endpoint
templates only, never an identifier, so cardinality stays bounded.

Expose them with ``prometheus_client.generate_latest(cio.metrics.registry)`` or the aiohttp
handler in the README.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING, Protocol

from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector, CollectorRegistry

from ._exceptions import ConfigurationError

if TYPE_CHECKING:
    from ._common.histogram import Histogram, LabelledHistograms

__all__ = ["Metrics"]


class MetricsSource(Protocol):
    """What a client exposes to :class:`Metrics` (one per workspace/region)."""

    @property
    def metrics_label(self) -> str:
        """The ``region`` label value."""
        ...

    def metric_families(self, prefix: str) -> Iterable[Metric]:
        """Yield this client's families (labels include ``region``)."""
        ...


def histogram_family(
    name: str,
    doc: str,
    labelnames: list[str],
    series: Iterable[tuple[list[str], Histogram]],
) -> HistogramMetricFamily:
    """Build a Prometheus histogram family from our fixed-bucket histograms."""
    family = HistogramMetricFamily(name, doc, labels=labelnames)
    for labels, hist in series:
        cumulative = 0
        buckets: list[tuple[str, float]] = []
        for bound, count in zip(hist.buckets, hist.counts, strict=False):
            cumulative += count
            buckets.append((_fmt(bound), cumulative))
        cumulative += hist.counts[-1]
        buckets.append(("+Inf", cumulative))
        family.add_metric(labels, buckets, sum_value=hist.sum)
    return family


def request_latency_family(
    prefix: str, region: str, series: LabelledHistograms
) -> HistogramMetricFamily:
    """``<prefix>http_request_duration_seconds`` from a client's per-attempt latency
    histograms, keyed ``(api, endpoint template, region, status class)``."""
    return histogram_family(
        f"{prefix}http_request_duration_seconds",
        "HTTP request latency per attempt (endpoint templates only).",
        ["region", "api", "endpoint", "status_class"],
        [
            ([region, api, endpoint, status], hist)
            for (api, endpoint, _, status), hist in list(series.series.items())
        ],
    )


def _fmt(bound: float) -> str:
    return repr(float(bound)) if not math.isinf(bound) else "+Inf"


def counter(
    name: str, doc: str, labelnames: list[str], values: Iterable[tuple[list[str], float]]
) -> CounterMetricFamily:
    """Build a counter family (``name`` without ``_total``)."""
    family = CounterMetricFamily(name, doc, labels=labelnames)
    for labels, value in values:
        family.add_metric(labels, value)
    return family


def gauge(
    name: str, doc: str, labelnames: list[str], values: Iterable[tuple[list[str], float]]
) -> GaugeMetricFamily:
    """Build a gauge family."""
    family = GaugeMetricFamily(name, doc, labels=labelnames)
    for labels, value in values:
        family.add_metric(labels, value)
    return family


class Metrics(Collector):
    """Prometheus exposure for one or more clients.

    By default every client gets its own ``Metrics`` with a private
    :class:`~prometheus_client.CollectorRegistry`, so two clients never collide. To put
    several clients (say the US and EU workspaces) into your application's registry, create
    one ``Metrics(registry=REGISTRY)`` and pass it to each; they are told apart by the
    ``region`` label.

    Example::

        metrics = Metrics(registry=prometheus_client.REGISTRY)
        us = CustomerIO(US_SITE, US_KEY, region="us", metrics=metrics)
        eu = CustomerIO(EU_SITE, EU_KEY, region="eu", metrics=metrics)

    Args:
        registry: Where to register (default: a new private registry).
        prefix: Metric name prefix.
    """

    def __init__(
        self, registry: CollectorRegistry | None = None, prefix: str = "customerio_"
    ) -> None:
        self.registry: CollectorRegistry = registry if registry is not None else CollectorRegistry()
        self.prefix: str = prefix
        self._sources: dict[str, MetricsSource] = {}
        self._registered = False

    def attach(self, source: MetricsSource) -> None:
        """Start exporting ``source``'s metrics (called by the client).

        Example::

            metrics.attach(cio)      # CustomerIO.open() does this for you

        Raises:
            ConfigurationError: Another attached client already uses the same region label.
        """
        label = source.metrics_label
        if label in self._sources and self._sources[label] is not source:
            raise ConfigurationError(
                f"a client for region {label!r} is already attached to this Metrics; "
                "give each client its own Metrics or registry"
            )
        self._sources[label] = source
        if not self._registered:
            self.registry.register(self)
            self._registered = True

    def detach(self, source: MetricsSource) -> None:
        """Stop exporting ``source`` (its final values are no longer collected).

        Example::

            metrics.detach(cio)      # stop exporting cio's series
        """
        if self._sources.get(source.metrics_label) is source:
            del self._sources[source.metrics_label]

    def collect(self) -> Iterator[Metric]:
        """Called by the registry at scrape time: merge every source's families.

        Example::

            families = list(cio.metrics.collect())   # what generate_latest(registry) reads
        """
        merged: dict[str, Metric] = {}
        for source in list(self._sources.values()):
            for family in source.metric_families(self.prefix):
                existing = merged.get(family.name)
                if existing is None:
                    merged[family.name] = family
                else:
                    existing.samples.extend(family.samples)
        yield from merged.values()

    def describe(self) -> Iterator[Metric]:
        """Nothing up front: families are only known per source, at collect time.

        Example::

            assert list(cio.metrics.describe()) == []
        """
        return iter(())
