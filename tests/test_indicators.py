"""The indicator math against hand-computed values."""

import datetime as dt
import math

import pytest

from accounts import indicators as ind

AS_OF = dt.date(2026, 11, 20)


def series(values, start_offset=None):
    """Points (x, y) for consecutive days ending on AS_OF (x = 0 on AS_OF)."""
    n = len(values)
    first = -(n - 1) if start_offset is None else start_offset
    return [(float(first + i), float(v)) for i, v in enumerate(values)]


def indicator(points, latest=None, limit=100.0):
    latest = points[-1][1] if latest is None and points else latest
    return ind.limit_indicator(as_of=AS_OF, latest=latest, limit=limit, sums=ind.Sums.of(points))


def test_it_reports_a_flat_series_as_flat_with_no_projection():
    result = indicator(series([40] * 30))

    assert result.slope_per_day == 0.0
    assert result.utilization == pytest.approx(0.4)
    assert result.days_to_limit is None
    assert result.projected_limit_on is None


def test_it_projects_the_known_crossing_day_of_exact_linear_growth():
    # 2 units a day, reaching 60 on AS_OF: the limit of 100 is 20 days away, on 10 December.
    result = indicator(series([2 * i + 2 for i in range(30)]))

    assert result.latest == 60
    assert result.slope_per_day == pytest.approx(2.0)
    assert result.days_to_limit == pytest.approx(20.0)
    assert result.projected_limit_on == dt.date(2026, 12, 10)


def test_it_rounds_a_fractional_day_count_up_to_the_next_date():
    result = ind.limit_indicator(
        as_of=AS_OF, latest=95.0, limit=100.0, sums=ind.Sums.of(series([95 - 2 * (29 - i) for i in range(30)]))
    )

    assert result.days_to_limit == pytest.approx(2.5)
    assert result.projected_limit_on == AS_OF + dt.timedelta(days=3)


def test_it_gives_no_slope_with_fewer_than_seven_points():
    result = indicator(series([10, 20, 30, 40, 50, 60]))

    assert result.slope_per_day is None
    assert result.days_to_limit is None
    assert result.points == 6


def test_it_gives_a_slope_with_exactly_seven_points():
    assert indicator(series([10, 20, 30, 40, 50, 60, 70])).slope_per_day == pytest.approx(10.0)


def test_it_leaves_utilization_and_projection_empty_for_an_unlimited_limit():
    result = indicator(series([2 * i for i in range(30)]), limit=None)

    assert result.utilization is None
    assert result.days_to_limit is None
    assert result.projected_limit_on is None
    assert result.slope_per_day == pytest.approx(2.0)


def test_it_reports_zero_days_when_the_latest_value_is_already_over_the_limit():
    result = indicator(series([110] * 10))

    assert result.utilization == pytest.approx(1.1)
    assert result.days_to_limit == 0
    assert result.projected_limit_on == AS_OF
    assert result.projected_earliest_on == AS_OF


def test_it_projects_nothing_for_a_negative_slope():
    result = indicator(series([90 - i for i in range(30)]))

    assert result.slope_per_day == pytest.approx(-1.0)
    assert result.days_to_limit is None
    assert result.projected_limit_on is None


def test_it_fits_over_the_days_that_exist_when_there_are_gaps():
    # Snapshots every third day, growing 3 units between them: still 1 unit a day.
    points = [(float(x), 50.0 + x) for x in range(-27, 1, 3)]
    result = indicator(points)

    assert result.points == 10
    assert result.slope_per_day == pytest.approx(1.0)
    assert result.days_to_limit == pytest.approx(50.0)


def test_it_treats_an_all_zero_series_as_flat_rather_than_a_far_future_date():
    result = indicator(series([0] * 30))

    assert result.slope_per_day == 0.0
    assert result.days_to_limit is None
    assert result.projected_limit_on is None


def test_it_treats_rounding_noise_in_the_slope_as_flat():
    trend = ind.least_squares_trend(ind.Sums(n=30, sx=-435.0, sy=1e-15, sxy=1e-16, sxx=8555.0, syy=0.0))

    assert trend.slope == 0.0


def test_it_computes_the_slope_standard_error_from_the_residuals():
    # y = x + e with residuals +1, −1 alternating over 8 points (hand-computed: Sxx = 42, SSE = 8 - b·Sxy).
    points = [(float(x), x + (1 if x % 2 else -1)) for x in range(-7, 1)]
    sums = ind.Sums.of(points)
    n = len(points)
    mean_x = sum(x for x, _ in points) / n
    mean_y = sum(y for _, y in points) / n
    sxx = sum((x - mean_x) ** 2 for x, _ in points)
    sxy = sum((x - mean_x) * (y - mean_y) for x, y in points)
    slope = sxy / sxx
    sse = sum((y - mean_y - slope * (x - mean_x)) ** 2 for x, y in points)

    trend = ind.least_squares_trend(sums)

    assert sxx == pytest.approx(42.0)
    assert trend.slope == pytest.approx(slope)
    assert trend.slope_stderr == pytest.approx(math.sqrt(sse / (n - 2) / sxx))


def test_it_brackets_the_projected_date_with_a_band_from_noisy_growth():
    noisy = [50 + i + (3 if i % 2 else -3) for i in range(30)]
    result = indicator(series(noisy), latest=79.0)

    assert result.projected_earliest_on <= result.projected_limit_on <= result.projected_latest_on
    assert result.projected_earliest_on < result.projected_latest_on


def test_it_gives_a_zero_width_band_for_a_perfect_fit():
    result = indicator(series([2 * i + 2 for i in range(30)]))

    assert result.projected_earliest_on == result.projected_limit_on == result.projected_latest_on


def test_it_reports_no_utilization_without_data():
    result = ind.limit_indicator(as_of=AS_OF, latest=None, limit=10.0, sums=ind.Sums.of([]))

    assert result.utilization is None
    assert result.days_to_limit is None


@pytest.mark.parametrize(
    ("count", "expected"),
    [(0, 0.0), (30, 7.0), (15, 3.5)],
)
def test_it_expresses_counts_per_week(count, expected):
    assert ind.per_week(count) == pytest.approx(expected)


def test_it_measures_active_users_per_seat_and_refuses_zero_seats():
    assert ind.per_seat(6, 8.0) == pytest.approx(0.75)
    assert ind.per_seat(6, 0.0) is None
    assert ind.per_seat(6, None) is None


def test_it_measures_change_against_the_previous_window():
    assert ind.change(15, 10) == pytest.approx(0.5)
    assert ind.change(5, 0) is None


def test_it_projects_usage_forward_only_on_growth():
    assert ind.project_value(50.0, 2.0, 90) == pytest.approx(230.0)
    assert ind.project_value(50.0, -2.0, 90) == pytest.approx(50.0)


def test_it_does_not_push_the_date_a_day_later_for_floating_point_noise():
    # (10 − 9.2) / 0.1 is 8.000000000000002 in floating point: the limit is reached in 8 days.
    assert ind.projected_date(AS_OF, ind.days_to_limit(9.2, 10.0, 0.1)) == AS_OF + dt.timedelta(days=8)
