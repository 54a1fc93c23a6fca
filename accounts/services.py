"""Writes of the accounts app: the set-based indicator refresh."""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from django.db import connection, models, transaction
from django.db.models import Count, F, Max, Q, Sum, Window
from django.db.models.functions import RowNumber
from django.utils import timezone

from accounts import indicators as ind
from accounts.bulk import upsert
from accounts.models import (
    Account,
    AccountEngagement,
    AccountIndicator,
    EngagementEvent,
    Metric,
    PlanLimit,
    UsageSnapshot,
)

logger = logging.getLogger(__name__)

CHUNK_SIZE = 2000


class DayOffset(models.Func):
    """Whole days from a fixed date to a date column: `column − as_of` (≤ 0 inside the window).

    Written per backend so the sums behind the least-squares slope are computed in the database with the
    same integers on PostgreSQL (date subtraction) and SQLite (julianday difference).
    """

    output_field = models.FloatField()

    def __init__(self, expression, as_of: dt.date, **extra):
        self.as_of = as_of
        super().__init__(expression, **extra)

    def as_sql(self, compiler, connection, **extra_context):
        column, params = compiler.compile(self.source_expressions[0])
        return f"CAST(({column} - %s::date) AS double precision)", (*params, self.as_of.isoformat())

    def as_sqlite(self, compiler, connection, **extra_context):
        column, params = compiler.compile(self.source_expressions[0])
        return f"CAST(julianday({column}) - julianday(%s) AS REAL)", (*params, self.as_of.isoformat())


@dataclass(frozen=True, slots=True)
class RefreshResult:
    accounts: int
    indicators: int
    chunks: int


def _chunks(ids: list[int], size: int) -> Iterator[list[int]]:
    for start in range(0, len(ids), size):
        yield ids[start : start + size]


def account_indicators_refresh(
    *, as_of: dt.date, account_ids: Iterable[int] | None = None, chunk_size: int = CHUNK_SIZE
) -> RefreshResult:
    """Recompute and upsert the indicators of the given accounts (all when None) as of `as_of`.

    Works in chunks of accounts with a fixed number of queries per chunk, whatever the chunk's size:
    accounts, window sums, latest values (plus one fallback for series silent for 30 days), engagement
    counts, and two upserts. Each chunk commits on its own, so a run killed half-way leaves whole chunks
    and the next run repairs the rest.
    """
    metrics = {m.id: m for m in Metric.objects.filter(kind=Metric.Kind.LIMIT)}
    limits = {(pl.plan_id, pl.metric_id): pl.limit for pl in PlanLimit.objects.filter(metric_id__in=metrics)}
    seats_metric_id = next((mid for mid, m in metrics.items() if m.key == "seats"), None)
    if account_ids is None:
        ids = list(Account.objects.order_by("pk").values_list("pk", flat=True))
    else:
        ids = sorted(set(account_ids))
    refreshed_at = timezone.now()
    written = 0
    chunks = 0
    for chunk in _chunks(ids, chunk_size):
        chunks += 1
        with transaction.atomic():
            _tune_batch_session()
            written += _refresh_chunk(chunk, as_of, metrics, limits, seats_metric_id, refreshed_at)
    logger.info("Refreshed indicators of %d accounts as of %s in %d chunks", len(ids), as_of, chunks)
    return RefreshResult(accounts=len(ids), indicators=written, chunks=chunks)


def _tune_batch_session() -> None:
    """Settings for this transaction only, on PostgreSQL: JIT compilation costs ~100 ms a query here and
    saves nothing on these short aggregates, and a chunk's sort fits in memory with a little more work_mem.
    """
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SET LOCAL jit = off; SET LOCAL work_mem = '32MB'")


def _refresh_chunk(chunk, as_of, metrics, limits, seats_metric_id, refreshed_at) -> int:
    plans = dict(Account.objects.filter(pk__in=chunk).values_list("pk", "plan_id"))
    computed = limit_indicators_compute(plans=plans, as_of=as_of, metric_ids=list(metrics), limits=limits)
    rows = []
    for (account_id, metric_id), (result, latest_on) in computed.items():
        rows.append(
            {
                "account_id": account_id,
                "metric_id": metric_id,
                "as_of": as_of,
                "latest": result.latest,
                "latest_on": latest_on,
                "limit": result.limit,
                "utilization": result.utilization,
                "slope_per_day": result.slope_per_day,
                "days_to_limit": result.days_to_limit,
                "projected_limit_on": result.projected_limit_on,
                "projected_earliest_on": result.projected_earliest_on,
                "projected_latest_on": result.projected_latest_on,
                "points": result.points,
                "refreshed_at": refreshed_at,
            }
        )
    upsert(
        AccountIndicator,
        rows,
        unique_fields=["account", "metric"],
        update_fields=[name for name in rows[0] if name not in ("account_id", "metric_id")] if rows else [],
    )
    seats = {aid: computed[(aid, seats_metric_id)][0].latest if seats_metric_id else None for aid in plans}
    _refresh_engagement(list(plans), as_of, seats, refreshed_at)
    return len(rows)


def limit_indicators_compute(
    *, plans: dict[int, int | None], as_of: dt.date, metric_ids: list[int], limits: dict[tuple[int, int], float | None]
) -> dict[tuple[int, int], tuple[ind.LimitIndicator, dt.date | None]]:
    """The indicators of each account (id -> its plan id) and metric as of `as_of`, with the latest value's day.

    Computed, not stored: the refresh stores them, the rules backtest evaluates them as of past dates. At
    most three queries whatever the number of accounts: window sums, latest values (only for series not
    reporting daily), and one fallback for series silent for the whole window.
    """
    start = ind.window_start(as_of)
    in_window = window_snapshots(list(plans), metric_ids, as_of)
    sums = {}
    latest: dict[tuple[int, int], tuple[float, dt.date]] = {}
    for row in window_sums(in_window, as_of):
        key = (row["account_id"], row["metric_id"])
        sums[key] = ind.Sums(n=row["n"], sx=row["sx"], sy=row["sy"], sxy=row["sxy"], sxx=row["sxx"], syy=row["syy"])
        # Most series report daily: their latest value is the one on as_of (or the day before), which the
        # same scan reads. Only the others need the ranked look-up below.
        if row["on_as_of"] and row["last_on"] == as_of:
            latest[key] = (row["value_on_as_of"], as_of)
        elif row["on_day_before"] and row["last_on"] == as_of - dt.timedelta(days=1):
            latest[key] = (row["value_on_day_before"], row["last_on"])
    unresolved = {aid for aid in plans for mid in metric_ids if (aid, mid) in sums and (aid, mid) not in latest}
    if unresolved:
        latest.update(_latest_values(in_window.filter(account_id__in=unresolved)))
    silent = {aid for aid in plans for mid in metric_ids if (aid, mid) not in latest}
    if silent:
        # Series with nothing in the window still have a latest value from before it.
        older = UsageSnapshot.objects.filter(account_id__in=silent, metric_id__in=metric_ids, captured_on__lt=start)
        latest.update({key: value for key, value in _latest_values(older).items() if key not in latest})

    empty = ind.Sums(0, 0.0, 0.0, 0.0, 0.0, 0.0)
    computed = {}
    for account_id, plan_id in plans.items():
        for metric_id in metric_ids:
            value, latest_on = latest.get((account_id, metric_id), (None, None))
            computed[(account_id, metric_id)] = (
                ind.limit_indicator(
                    as_of=as_of,
                    latest=value,
                    limit=limits.get((plan_id, metric_id)),
                    sums=sums.get((account_id, metric_id), empty),
                ),
                latest_on,
            )
    return computed


def window_snapshots(account_ids: list[int], metric_ids: list[int], as_of: dt.date):
    """The snapshots of the 30-day window ending on `as_of`, served by the (account, metric, day) index."""
    return UsageSnapshot.objects.filter(
        account_id__in=account_ids,
        metric_id__in=metric_ids,
        captured_on__gte=ind.window_start(as_of),
        captured_on__lte=as_of,
    )


def window_sums(snapshots, as_of: dt.date):
    """n, Σx, Σy, Σxy, Σx², Σy² per account and metric, x = days from as_of: one grouped query.

    Also the last day in the window and the values on as_of and the day before (one row per day at most).
    """
    x = DayOffset("captured_on", as_of)
    day_before = as_of - dt.timedelta(days=1)
    return snapshots.values("account_id", "metric_id").annotate(
        last_on=Max("captured_on"),
        on_as_of=Count("id", filter=Q(captured_on=as_of)),
        value_on_as_of=Sum("value", filter=Q(captured_on=as_of)),
        on_day_before=Count("id", filter=Q(captured_on=day_before)),
        value_on_day_before=Sum("value", filter=Q(captured_on=day_before)),
        n=Count("id"),
        sx=Sum(x),
        sy=Sum("value"),
        sxy=Sum(x * F("value")),
        sxx=Sum(x * x),
        syy=Sum(F("value") * F("value")),
    )


def _latest_values(snapshots) -> dict[tuple[int, int], tuple[float, dt.date]]:
    """The most recent (value, day) per account and metric among `snapshots`, in one query."""
    ranked = snapshots.annotate(
        rank=Window(RowNumber(), partition_by=[F("account_id"), F("metric_id")], order_by=F("captured_on").desc())
    ).filter(rank=1)
    return {
        (aid, mid): (value, day)
        for aid, mid, value, day in ranked.values_list("account_id", "metric_id", "value", "captured_on")
    }


def _day_start(day: dt.date) -> dt.datetime:
    return dt.datetime.combine(day, dt.time.min, tzinfo=dt.UTC)


def _refresh_engagement(account_ids: list[int], as_of: dt.date, seats: dict, refreshed_at) -> None:
    """Engagement of each account over the 30-day window and the 30 days before it, in one query."""
    counts = engagement_counts(account_ids=account_ids, as_of=as_of)
    none: dict = {}
    rows = []
    for account_id in account_ids:
        c = counts.get(account_id, none)
        users, users_prev = c.get("users", 0), c.get("users_prev", 0)
        rows.append(
            {
                "account_id": account_id,
                "as_of": as_of,
                "logins_per_week": ind.per_week(c.get("logins", 0)),
                "logins_per_week_prev": ind.per_week(c.get("logins_prev", 0)),
                "active_users": users,
                "active_users_prev": users_prev,
                "active_users_per_seat": ind.per_seat(users, seats.get(account_id)),
                "active_users_per_seat_prev": ind.per_seat(users_prev, seats.get(account_id)),
                "features_used": c.get("features", 0),
                "features_used_prev": c.get("features_prev", 0),
                "locked_feature_hits": c.get("locked", 0),
                "locked_feature_hits_prev": c.get("locked_prev", 0),
                "trial_feature_uses": c.get("trial", 0),
                "trial_feature_uses_prev": c.get("trial_prev", 0),
                "refreshed_at": refreshed_at,
            }
        )
    upsert(
        AccountEngagement,
        rows,
        unique_fields=["account"],
        update_fields=[name for name in rows[0] if name != "account_id"] if rows else [],
    )


def engagement_counts(*, account_ids: list[int], as_of: dt.date) -> dict[int, dict]:
    """Event counts per account in the 30-day window ending on `as_of` and in the 30 days before, one query.

    Keys: logins, users, features, locked, trial and the same with `_prev`; accounts without events are absent.
    """
    now_start = _day_start(ind.window_start(as_of))
    prev_start = now_start - dt.timedelta(days=ind.WINDOW_DAYS)
    end = _day_start(as_of + dt.timedelta(days=1))
    cur = Q(occurred_at__gte=now_start)
    prev = Q(occurred_at__lt=now_start)
    kind = EngagementEvent.Kind
    return {
        row["account_id"]: row
        for row in EngagementEvent.objects.filter(
            account_id__in=account_ids, occurred_at__gte=prev_start, occurred_at__lt=end
        )
        .values("account_id")
        .annotate(
            logins=Count("id", filter=cur & Q(kind=kind.LOGIN)),
            logins_prev=Count("id", filter=prev & Q(kind=kind.LOGIN)),
            users=Count("user_ref", distinct=True, filter=cur & ~Q(user_ref="")),
            users_prev=Count("user_ref", distinct=True, filter=prev & ~Q(user_ref="")),
            features=Count("feature", distinct=True, filter=cur & Q(kind=kind.FEATURE_USED)),
            features_prev=Count("feature", distinct=True, filter=prev & Q(kind=kind.FEATURE_USED)),
            locked=Count("id", filter=cur & Q(kind=kind.LOCKED_FEATURE_HIT)),
            locked_prev=Count("id", filter=prev & Q(kind=kind.LOCKED_FEATURE_HIT)),
            trial=Count("id", filter=cur & Q(kind=kind.TRIAL_FEATURE_USED)),
            trial_prev=Count("id", filter=prev & Q(kind=kind.TRIAL_FEATURE_USED)),
        )
    }


def latest_snapshot_day() -> dt.date | None:
    """The most recent day any usage was captured (the demo's and backfills' natural `as_of`)."""
    return UsageSnapshot.objects.aggregate(day=Max("captured_on"))["day"]
