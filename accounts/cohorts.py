"""Cohorts and monthly MRR trends: pure functions over plain movement histories (no database, no clock).

Cohort analysis (DOMAIN.md): accounts grouped by the month of their first purchase; for each month since,
the share of the cohort that has upgraded at least once by the end of that month, and the cohort's MRR at
the end of that month relative to its MRR at the end of its first month.

Monthly trends: per calendar month, the MRR moved by kind (new, expansion, reactivation, contraction,
churn), summed over every movement dated in the month, whatever the account's cohort.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from decimal import Decimal

ZERO = Decimal("0")


@dataclass(frozen=True, slots=True)
class Movement:
    on: dt.date
    mrr_before: Decimal
    mrr_after: Decimal

    @property
    def is_upgrade(self) -> bool:
        """An expansion: mrr_after > mrr_before > 0."""
        return self.mrr_after > self.mrr_before > 0


@dataclass(frozen=True, slots=True)
class AccountHistory:
    account_id: int
    first_purchase_on: dt.date | None
    movements: tuple[Movement, ...]
    """Date-ordered."""
    mrr: Decimal = ZERO
    """The account's MRR now: what is in effect after the last movement (or with none recorded)."""


def month_start(day: dt.date) -> dt.date:
    return day.replace(day=1)


def add_months(month: dt.date, n: int) -> dt.date:
    index = month.year * 12 + month.month - 1 + n
    return dt.date(index // 12, index % 12 + 1, 1)


def month_end(month: dt.date) -> dt.date:
    return add_months(month, 1) - dt.timedelta(days=1)


def months_between(first: dt.date, last: dt.date) -> int:
    return (last.year - first.year) * 12 + last.month - first.month


def mrr_on(history: AccountHistory, day: dt.date) -> Decimal:
    """MRR in effect at the end of `day`: after the last movement dated on or before it; before the first
    movement, what that movement started from; with no movements, the account's MRR."""
    moves = history.movements
    if not moves:
        return history.mrr
    in_effect = moves[0].mrr_before
    for m in moves:
        if m.on > day:
            break
        in_effect = m.mrr_after
    return in_effect


@dataclass(frozen=True, slots=True)
class CohortRow:
    month: dt.date
    size: int
    first_month_mrr: Decimal
    upgraded_share: tuple[float | None, ...]
    """Per month since the first (0, 1, ...): % of the cohort upgraded at least once by the month's end."""
    mrr_relative: tuple[float | None, ...]
    """Per month since the first: cohort MRR at the month's end / at its first month's end × 100 (None when
    the first month's MRR is 0)."""


def cohorts(histories: Iterable[AccountHistory], *, as_of: dt.date, months: int = 12) -> list[CohortRow]:
    """The cohorts of the last `months` months of first purchases up to `as_of`, oldest first.

    Month k of a cohort counts only when it has begun by `as_of` (the current month is measured as of today).
    upgraded_share[k] = |{a in cohort : first upgrade on or before end of month k}| / |cohort| × 100
    mrr_relative[k]   = Σ MRR(a, end of month k) / Σ MRR(a, end of month 0) × 100
    """
    current = month_start(as_of)
    oldest = add_months(current, -(months - 1))
    grouped: dict[dt.date, list[AccountHistory]] = defaultdict(list)
    for h in histories:
        if h.first_purchase_on is not None and oldest <= month_start(h.first_purchase_on) <= current:
            grouped[month_start(h.first_purchase_on)].append(h)
    rows = []
    for month in sorted(grouped):
        members = grouped[month]
        span = months_between(month, current) + 1
        first_upgrade = [next((m.on for m in h.movements if m.is_upgrade), None) for h in members]
        ends = [min(month_end(add_months(month, k)), as_of) for k in range(span)]
        totals = [ZERO] * span
        for h in members:
            for k, value in enumerate(mrr_at_ends(h, ends)):
                totals[k] += value
        base = totals[0]
        shares, relative = [], []
        for k, end in enumerate(ends):
            upgraded = sum(1 for day in first_upgrade if day is not None and day <= end)
            shares.append(round(upgraded / len(members) * 100, 1))
            relative.append(round(float(totals[k] / base * 100), 1) if base else None)
        rows.append(CohortRow(month, len(members), base, tuple(shares), tuple(relative)))
    return rows


@dataclass(frozen=True, slots=True)
class MonthTrend:
    month: dt.date
    new: Decimal
    expansion: Decimal
    reactivation: Decimal
    contraction: Decimal
    churn: Decimal

    @property
    def net(self) -> Decimal:
        """new + expansion + reactivation − contraction − churn."""
        return self.new + self.expansion + self.reactivation - self.contraction - self.churn


def monthly_trends(
    movements: Sequence[tuple[int, Movement]], *, first_paid: dict[int, dt.date], start: dt.date, end: dt.date
) -> list[MonthTrend]:
    """MRR moved per month from `start`'s month to `end`'s month, by kind.

    Kinds follow DOMAIN.md: expansion mrr_after > mrr_before > 0 (counts after − before); contraction
    0 < mrr_after < mrr_before (before − after); churn mrr_after = 0 < mrr_before (before); from 0 to paying
    is new on the account's first paid day (`first_paid`), reactivation after it (counts after).
    """
    first, last = month_start(start), month_start(end)
    sums: dict[dt.date, dict[str, Decimal]] = {
        add_months(first, k): defaultdict(Decimal) for k in range(months_between(first, last) + 1)
    }
    for account_id, m in movements:
        bucket = sums.get(month_start(m.on))
        if bucket is None:
            continue
        if m.mrr_after > m.mrr_before > 0:
            bucket["expansion"] += m.mrr_after - m.mrr_before
        elif 0 < m.mrr_after < m.mrr_before:
            bucket["contraction"] += m.mrr_before - m.mrr_after
        elif m.mrr_after == 0 < m.mrr_before:
            bucket["churn"] += m.mrr_before
        elif m.mrr_before == 0 < m.mrr_after:
            is_new = first_paid.get(account_id) is None or m.on <= first_paid[account_id]
            bucket["new" if is_new else "reactivation"] += m.mrr_after
    return [
        MonthTrend(
            month=month,
            new=s["new"],
            expansion=s["expansion"],
            reactivation=s["reactivation"],
            contraction=s["contraction"],
            churn=s["churn"],
        )
        for month, s in sums.items()
    ]


def mrr_at_ends(history: AccountHistory, days: Sequence[dt.date]) -> list[Decimal]:
    """`mrr_on(history, day)` for each of the ascending `days`, in one walk over the movements."""
    moves = history.movements
    if not moves:
        return [history.mrr] * len(days)
    values, i, in_effect = [], 0, moves[0].mrr_before
    for day in days:
        while i < len(moves) and moves[i].on <= day:
            in_effect = moves[i].mrr_after
            i += 1
        values.append(in_effect)
    return values


@dataclass(frozen=True, slots=True)
class MonthNdr:
    month: dt.date
    mrr_at_start: Decimal
    mrr_at_end: Decimal

    @property
    def ndr(self) -> float | None:
        """The month's NDR (DOMAIN.md): the cohort's MRR at the end of the month / its MRR at the start × 100,
        the cohort being the accounts paying at the start (before the first day's movements); None when 0."""
        return round(float(self.mrr_at_end / self.mrr_at_start * 100), 1) if self.mrr_at_start else None


def ndr_by_month(histories: Iterable[AccountHistory], *, start: dt.date, end: dt.date) -> list[MonthNdr]:
    """NDR of each calendar month from `start`'s month to `end`'s (the last month measured to `end`)."""
    months = [add_months(month_start(start), k) for k in range(months_between(start, end) + 1)]
    # Boundaries: the day before each month (its start, before the first day's movements) and each month's end.
    days = sorted({m - dt.timedelta(days=1) for m in months} | {min(month_end(m), end) for m in months})
    index = {day: i for i, day in enumerate(days)}
    slots = [(m, index[m - dt.timedelta(days=1)], index[min(month_end(m), end)]) for m in months]
    at_start = dict.fromkeys(months, ZERO)
    at_end = dict.fromkeys(months, ZERO)
    for h in histories:
        if not h.movements:
            # No history: the same MRR at every boundary, counted in every month's cohort when paying.
            if h.mrr > 0:
                for m in months:
                    at_start[m] += h.mrr
                    at_end[m] += h.mrr
            continue
        values = mrr_at_ends(h, days)
        for m, start_at, end_at in slots:
            before = values[start_at]
            if before > 0:
                at_start[m] += before
                at_end[m] += values[end_at]
    return [MonthNdr(m, at_start[m], at_end[m]) for m in months]
