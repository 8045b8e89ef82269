"""Fixed-bucket histograms: one observation per value, or per batch with a count."""

from __future__ import annotations

from customerio_async._common.histogram import LATENCY_BUCKETS, Histogram, LabelledHistograms


def test_observations_land_in_the_first_bucket_not_below_them() -> None:
    hist = Histogram((1.0, 2.0, 5.0))
    hist.observe(0.5)
    hist.observe(1.0)  # le 1.0
    hist.observe(1.5)
    hist.observe(9.0)  # +Inf
    assert hist.counts == [2, 1, 0, 1]
    assert hist.count == 4
    assert hist.sum == 12.0


def test_a_batch_records_all_its_operations_at_once() -> None:
    hist = Histogram((1.0,))
    hist.observe(0.25, count=2000)
    assert hist.counts == [2000, 0]
    assert hist.sum == 500.0


def test_labelled_histograms_are_created_on_first_use() -> None:
    series = LabelledHistograms()
    a = series.get(("track", "/api/v2/batch", "us", "2xx"))
    assert series.get(("track", "/api/v2/batch", "us", "2xx")) is a
    assert a.buckets == LATENCY_BUCKETS
    assert list(series.series) == [("track", "/api/v2/batch", "us", "2xx")]
