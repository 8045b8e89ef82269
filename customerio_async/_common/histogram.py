"""Fixed-bucket histograms cheap enough for hot paths (no locks: one event loop)."""

from __future__ import annotations

import bisect
from collections.abc import Sequence

__all__ = ["LATENCY_BUCKETS", "Histogram", "LabelledHistograms"]

# Sub-millisecond through multi-second: loopback and in-process paths land in the first
# buckets, cross-ocean requests and retried operations in the last ones.
LATENCY_BUCKETS = (
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
    30.0, 60.0, 300.0,
)  # fmt: skip


class Histogram:
    """Counts per upper bound (the last slot is ``+Inf``) and the sum of observed values."""

    __slots__ = ("buckets", "counts", "sum")

    def __init__(self, buckets: Sequence[float] = LATENCY_BUCKETS) -> None:
        self.buckets = tuple(buckets)
        self.counts = [0] * (len(self.buckets) + 1)
        self.sum = 0.0

    def observe(self, value: float, count: int = 1) -> None:
        """Record ``count`` observations of ``value`` (a batch records all of its operations
        with one call)."""
        self.counts[bisect.bisect_left(self.buckets, value)] += count
        self.sum += value * count

    @property
    def count(self) -> int:
        """Values recorded."""
        return sum(self.counts)


class LabelledHistograms:
    """Histograms keyed by a label tuple, created on first use (bounded label sets only)."""

    __slots__ = ("_buckets", "series")

    def __init__(self, buckets: Sequence[float] = LATENCY_BUCKETS) -> None:
        self._buckets = tuple(buckets)
        self.series: dict[tuple[str, ...], Histogram] = {}

    def get(self, key: tuple[str, ...]) -> Histogram:
        """The histogram for ``key``."""
        hist = self.series.get(key)
        if hist is None:
            hist = self.series[key] = Histogram(self._buckets)
        return hist
