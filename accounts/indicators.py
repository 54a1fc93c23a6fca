"""Indicators: the pure math that turns usage snapshots into utilization, trend and a limit forecast.

No database and no clock here: numbers and dates in, numbers and dates out. Definitions are those of
DOMAIN.md ("Indicators"); the refresh (accounts.services) feeds these functions with SQL aggregates, so
the slope is written in terms of the sums a database can compute: n, Σx, Σy, Σxy, Σx², Σy².
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass

WINDOW_DAYS = 30
"""The trend window: [as_of − 29 days, as_of], 30 days inclusive."""

MIN_POINTS = 7
"""Fewer snapshots than this in the window give no slope."""

FLAT_SLOPE = 1e-9
"""|slope| below this is rounding noise (an all-zero series yields ~1e-17), treated as flat."""

# Two-sided 95% Student t quantiles by degrees of freedom (n − 2); 1.96 beyond the table.
_T95 = {
    1: 12.706, 2: 4.303, 3: 3.182, 4: 2.776, 5: 2.571, 6: 2.447, 7: 2.365, 8: 2.306, 9: 2.262, 10: 2.228,
    11: 2.201, 12: 2.179, 13: 2.160, 14: 2.145, 15: 2.131, 16: 2.120, 17: 2.110, 18: 2.101, 19: 2.093,
    20: 2.086, 21: 2.080, 22: 2.074, 23: 2.069, 24: 2.064, 25: 2.060, 26: 2.056, 27: 2.052, 28: 2.048,
    29: 2.045, 30: 2.042,
}  # fmt: skip


def window_start(as_of: dt.date) -> dt.date:
    """First day of the trend window ending on `as_of`: as_of − 29 days."""
    return as_of - dt.timedelta(days=WINDOW_DAYS - 1)


@dataclass(frozen=True, slots=True)
class Sums:
    """Sufficient statistics of a series (x = day offset from as_of, y = value)."""

    n: int
    sx: float
    sy: float
    sxy: float
    sxx: float
    syy: float

    @classmethod
    def of(cls, points: list[tuple[float, float]]) -> Sums:
        """The sums of (x, y) points, as SQL's SUM() would compute them."""
        return cls(
            n=len(points),
            sx=math.fsum(x for x, _ in points),
            sy=math.fsum(y for _, y in points),
            sxy=math.fsum(x * y for x, y in points),
            sxx=math.fsum(x * x for x, _ in points),
            syy=math.fsum(y * y for _, y in points),
        )


@dataclass(frozen=True, slots=True)
class Trend:
    slope: float | None
    """Least-squares slope in units per day; None when the window has fewer than MIN_POINTS snapshots."""
    slope_stderr: float | None
    """Standard error of the slope from the fit's residuals; None with fewer than 3 points."""


def least_squares_trend(sums: Sums) -> Trend:
    """Least-squares slope of y against x, and its standard error.

        Sxx = Σx² − (Σx)²/n      Sxy = Σxy − Σx·Σy/n      Syy = Σy² − (Σy)²/n
        slope = Sxy / Sxx
        SSE = Syy − slope·Sxy    (residual sum of squares)
        stderr = √(SSE / (n − 2) / Sxx)

    The slope is None with fewer than MIN_POINTS points or when all x are equal; |slope| < FLAT_SLOPE
    is returned as 0.0 (flat).
    """
    if sums.n < MIN_POINTS:
        return Trend(None, None)
    sxx = sums.sxx - sums.sx * sums.sx / sums.n
    if sxx <= 0:
        return Trend(None, None)
    sxy = sums.sxy - sums.sx * sums.sy / sums.n
    syy = sums.syy - sums.sy * sums.sy / sums.n
    slope = sxy / sxx
    if abs(slope) < FLAT_SLOPE:
        slope = 0.0
    # Cancellation can leave a tiny negative SSE for a perfect fit.
    sse = max(syy - slope * sxy, 0.0)
    stderr = math.sqrt(sse / (sums.n - 2) / sxx)
    return Trend(slope, stderr)


def utilization(latest: float | None, limit: float | None) -> float | None:
    """latest / limit, as a ratio (0.92 = 92%). None when the limit is unlimited, zero, or there is no data."""
    if latest is None or limit is None or limit <= 0:
        return None
    return latest / limit


def days_to_limit(latest: float | None, limit: float | None, slope: float | None) -> float | None:
    """Days until `latest` reaches `limit` at `slope` units a day.

    0 when latest ≥ limit; (limit − latest) / slope when slope > 0; otherwise None (unlimited, no data,
    flat or shrinking usage: no crossing is projected).
    """
    if latest is None or limit is None:
        return None
    if latest >= limit:
        return 0.0
    if slope is None or slope < FLAT_SLOPE:
        return None
    return (limit - latest) / slope


def projected_date(as_of: dt.date, days: float | None) -> dt.date | None:
    """as_of + ceil(days) days; None when no crossing is projected.

    A day count within a millionth of a day of a whole number is that number: 0.8 / 0.1 is
    8.000000000000002 in floating point, and must not move the date a day later.
    """
    if days is None:
        return None
    try:
        return as_of + dt.timedelta(days=math.ceil(days - 1e-6))
    except OverflowError:
        return None


def t95(dof: int) -> float:
    """Two-sided 95% Student t quantile for `dof` degrees of freedom."""
    return _T95.get(dof, 1.96)


def projected_band(
    as_of: dt.date, latest: float | None, limit: float | None, trend: Trend, n: int
) -> tuple[dt.date | None, dt.date | None]:
    """A 95% band around the projected limit date from the slope's confidence interval.

    earliest = crossing at slope + t·stderr; latest = crossing at slope − t·stderr (None when that
    slope is not positive: the limit may never be reached). Both equal as_of when the limit is reached.
    """
    if latest is None or limit is None:
        return None, None
    if latest >= limit:
        return as_of, as_of
    if trend.slope is None or trend.slope_stderr is None or trend.slope < FLAT_SLOPE:
        return None, None
    margin = t95(n - 2) * trend.slope_stderr
    earliest = projected_date(as_of, days_to_limit(latest, limit, trend.slope + margin))
    last = projected_date(as_of, days_to_limit(latest, limit, trend.slope - margin))
    return earliest, last


@dataclass(frozen=True, slots=True)
class LimitIndicator:
    latest: float | None
    limit: float | None
    utilization: float | None
    slope_per_day: float | None
    days_to_limit: float | None
    projected_limit_on: dt.date | None
    projected_earliest_on: dt.date | None
    projected_latest_on: dt.date | None
    points: int


def limit_indicator(*, as_of: dt.date, latest: float | None, limit: float | None, sums: Sums) -> LimitIndicator:
    """All indicators of one account and metric as of `as_of` (DOMAIN.md, "Indicators").

    `latest` is the most recent value on or before as_of; `sums` cover the 30-day window; a None limit
    is unlimited, which leaves utilization and the projection empty (the slope is still reported).
    """
    trend = least_squares_trend(sums)
    days = days_to_limit(latest, limit, trend.slope)
    earliest, last = projected_band(as_of, latest, limit, trend, sums.n)
    return LimitIndicator(
        latest=latest,
        limit=limit,
        utilization=utilization(latest, limit),
        slope_per_day=trend.slope,
        days_to_limit=days,
        projected_limit_on=projected_date(as_of, days),
        projected_earliest_on=earliest,
        projected_latest_on=last,
        points=sums.n,
    )


def per_week(count: int, days: int = WINDOW_DAYS) -> float:
    """A count over `days` days expressed per week: count / days × 7."""
    return count / days * 7


def per_seat(active_users: int, seats: float | None) -> float | None:
    """Active users per provisioned seat; None without a positive seat count."""
    if not seats or seats <= 0:
        return None
    return active_users / seats


def change(current: float | None, previous: float | None) -> float | None:
    """Relative change against the previous window: (current − previous) / previous; None from zero."""
    if current is None or previous is None or previous == 0:
        return None
    return (current - previous) / previous


def project_value(latest: float | None, slope: float | None, days: int) -> float | None:
    """Usage `days` from now on the current trend: latest + max(slope, 0) · days (never below latest)."""
    if latest is None:
        return None
    return latest + max(slope or 0.0, 0.0) * days
