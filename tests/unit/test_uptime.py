from __future__ import annotations

import json
import math
import random

import pytest

from tables.uptime import (
    DAY,
    HOUR,
    UptimeBucket,
    UptimeSummary,
    bin_value,
    bucket_start,
    histogram_bin,
    percentile,
    series,
    summarise,
)

T0 = 1_700_000_000 - 1_700_000_000 % DAY  # a UTC midnight: 2023-11-14T00:00:00Z


def exact_percentile(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[max(1, math.ceil(q * len(ordered) / 100)) - 1]


def bucket_of(start: int, results) -> UptimeBucket:
    bucket = UptimeBucket(start=start)
    for status, ms in results:
        bucket.add(status, ms)
    return bucket


@pytest.mark.parametrize("ts, width, expected", [
    (T0 + 3599.9, HOUR, T0),
    (T0 + 3600, HOUR, T0 + 3600),
    (T0 + 86399, DAY, T0),
    (T0 + 7 * HOUR + 12.5, DAY, T0),
])
def test_bucket_start_floors_to_the_width(ts, width, expected):
    assert bucket_start(ts, width) == expected
    assert isinstance(bucket_start(ts, width), int)


@pytest.mark.parametrize("ms", [0.1, 0.37, 1, 12.3, 250, 999.9, 30_000, 600_000])
def test_bin_value_is_within_2_5_percent_of_any_value_in_the_bin(ms):
    assert bin_value(histogram_bin(ms)) == pytest.approx(ms, rel=0.025)


def test_every_value_from_0_1_ms_to_10_minutes_is_binned_within_2_5_percent():
    ms = 0.1
    while ms <= 600_000:
        assert abs(bin_value(histogram_bin(ms)) - ms) <= 0.025 * ms
        ms *= 1.003


@pytest.mark.parametrize("ms", [0, -5, -0.0])
def test_zero_and_negative_times_go_to_bin_zero(ms):
    assert histogram_bin(ms) == 0
    assert bin_value(0) == 0.0


def test_bins_are_ordered():
    assert histogram_bin(10) < histogram_bin(11) < histogram_bin(1000)


def test_counts_and_uptime_percentage():
    bucket = bucket_of(T0, [("up", 100)] * 2 + [("down", None)])
    summary = summarise([bucket])
    assert (summary.total_checks, summary.up_checks, summary.down_checks) == (3, 2, 1)
    assert summary.uptime_percentage == 66.6667


@pytest.mark.parametrize("up, down, expected", [
    (1, 0, 100.0),
    (0, 1, 0.0),
    (999, 1, 99.9),
    (9999, 1, 99.99),
    (1, 7, 12.5),
])
def test_uptime_percentage_is_exact(up, down, expected):
    bucket = bucket_of(T0, [("up", None)] * up + [("down", None)] * down)
    assert summarise([bucket]).uptime_percentage == expected


def test_unmeasured_response_times_still_count_as_checks():
    bucket = bucket_of(T0, [("up", None), ("down", None), ("up", 50.0)])
    assert bucket.total == 3
    assert bucket.rt_count == 1
    summary = summarise([bucket])
    assert summary.avg_response_time_ms == 50.0
    assert summary.p99_response_time_ms == 50.0


def test_average_min_and_max():
    bucket = bucket_of(T0, [("up", 10.0), ("up", 20.0), ("down", 31.0)])
    summary = summarise([bucket])
    assert summary.avg_response_time_ms == 20.333
    assert summary.min_response_time_ms == 10.0
    assert summary.max_response_time_ms == 31.0


def test_non_finite_response_time_is_not_a_measurement():
    bucket = bucket_of(T0, [("up", float("nan")), ("down", float("inf"))])
    assert bucket.total == 2
    assert bucket.rt_count == 0
    assert bucket.histogram == {}


def test_unknown_status_is_rejected():
    bucket = UptimeBucket(start=T0)
    with pytest.raises(ValueError):
        bucket.add("degraded", 10)
    assert bucket.total == 0


def test_percentiles_of_log_normal_samples_are_within_2_5_percent():
    rng = random.Random(42)
    samples = [rng.lognormvariate(math.log(120), 0.8) for _ in range(10_000)]
    summary = summarise([bucket_of(T0, (("up", ms) for ms in samples))])
    for q, reported in [(50, summary.p50_response_time_ms),
                        (95, summary.p95_response_time_ms),
                        (99, summary.p99_response_time_ms)]:
        assert reported == pytest.approx(exact_percentile(samples, q), rel=0.025)
    assert summary.min_response_time_ms == round(min(samples), 3)
    assert summary.max_response_time_ms == round(max(samples), 3)
    assert summary.avg_response_time_ms == pytest.approx(sum(samples) / len(samples), abs=0.001)


@pytest.mark.parametrize("q", [0, 1, 7, 25, 50, 75, 90, 99.9, 100])
def test_percentile_picks_the_bin_holding_the_nearest_rank(q):
    samples = [float(ms) for ms in range(1, 101)]
    histogram: dict[int, int] = {}
    for ms in samples:
        histogram[histogram_bin(ms)] = histogram.get(histogram_bin(ms), 0) + 1
    assert percentile(histogram, q) == pytest.approx(exact_percentile(samples, q), rel=0.025)


def test_percentile_is_clamped_into_the_observed_range():
    histogram = {histogram_bin(100.0): 1}
    assert percentile(histogram, 50) != 100.0
    assert percentile(histogram, 50, min_value=100.0, max_value=100.0) == 100.0
    assert percentile(histogram, 50, min_value=200.0) == 200.0
    assert percentile(histogram, 50, max_value=50.0) == 50.0


def test_single_sample_percentiles_are_exact():
    summary = summarise([bucket_of(T0, [("up", 123.456)])])
    assert summary.p50_response_time_ms == summary.p99_response_time_ms == 123.456


def test_percentile_of_empty_histogram_is_none():
    assert percentile({}, 50) is None


@pytest.mark.parametrize("q", [-1, 100.1])
def test_percentile_outside_0_100_is_rejected(q):
    with pytest.raises(ValueError):
        percentile({1: 1}, q)


def test_merge_equals_adding_everything_to_one_bucket():
    rng = random.Random(7)
    results = [(rng.choice(["up", "up", "down"]), rng.choice([None, rng.uniform(0, 2000)]))
               for _ in range(500)]
    parts = [bucket_of(T0 + i * HOUR, results[i::3]) for i in range(3)]

    merged = UptimeBucket(start=T0)
    for part in parts:
        merged.merge(part)
    whole = bucket_of(T0, results)

    assert merged.rt_sum == pytest.approx(whole.rt_sum)
    merged.rt_sum = whole.rt_sum  # float addition order differs
    assert merged == whole
    assert summarise(parts) == summarise([whole])


def test_merge_with_an_empty_bucket_changes_nothing():
    bucket = bucket_of(T0, [("up", 5.0)])
    bucket.merge(UptimeBucket(start=T0 + HOUR))
    assert bucket == bucket_of(T0, [("up", 5.0)])


def test_bucket_round_trips_through_json():
    bucket = bucket_of(T0, [("up", 12.5), ("down", None), ("up", 0), ("up", 800.25)])
    data = json.loads(json.dumps(bucket.to_dict()))
    assert all(isinstance(key, str) for key in data["histogram"])
    assert UptimeBucket.from_dict(data) == bucket


def test_empty_summary():
    summary = summarise([])
    assert summary == UptimeSummary(0, 0, 0, None, None, None, None, None, None, None)
    assert json.loads(json.dumps(summary.to_dict()))["uptime_percentage"] is None


def test_summary_to_dict_names_every_field():
    data = summarise([bucket_of(T0, [("up", 1.0)])]).to_dict()
    assert set(data) == {
        "total_checks", "up_checks", "down_checks", "uptime_percentage",
        "avg_response_time_ms", "p50_response_time_ms", "p95_response_time_ms",
        "p99_response_time_ms", "min_response_time_ms", "max_response_time_ms", "maintenance_checks",
    }


def test_hourly_series_is_one_point_per_bucket_sorted_by_time():
    buckets = [
        bucket_of(T0 + 2 * HOUR, [("down", 40.0)]),
        bucket_of(T0, [("up", 10.0), ("up", 30.0)]),
    ]
    assert series(buckets, HOUR) == [
        {"start": "2023-11-14T00:00:00Z", "total_checks": 2, "up_checks": 2, "down_checks": 0,
         "uptime_percentage": 100.0, "avg_response_time_ms": 20.0, "p95_response_time_ms": 30.0},
        {"start": "2023-11-14T02:00:00Z", "total_checks": 1, "up_checks": 0, "down_checks": 1,
         "uptime_percentage": 0.0, "avg_response_time_ms": 40.0, "p95_response_time_ms": 40.0},
    ]


def test_daily_series_groups_hours_by_utc_day():
    buckets = [bucket_of(T0 + h * HOUR, [("up", None), ("down", None)]) for h in range(30)]
    points = series(buckets, DAY)
    assert [p["start"] for p in points] == ["2023-11-14T00:00:00Z", "2023-11-15T00:00:00Z"]
    assert [p["total_checks"] for p in points] == [48, 12]
    assert [p["uptime_percentage"] for p in points] == [50.0, 50.0]
    assert points[0]["avg_response_time_ms"] is None
    assert points[0]["p95_response_time_ms"] is None


def test_series_of_nothing_is_empty():
    assert series([], HOUR) == []


@pytest.mark.parametrize("interval", [0, -3600, 1800, 5000])
def test_series_rejects_intervals_that_are_not_whole_hours(interval):
    with pytest.raises(ValueError):
        series([], interval)
