"""Reads for the insights pages: the rows `accounts.insights` computes on, set-based, in a fixed number of
queries whatever the number of accounts or events (the counts are in each function's docstring).

The slice of the book is a `revenue_selectors.Segment` (the account's owner, plan, industry, size band and
region as they are today), except for "what precedes upgrades", where the plan is the one in effect on each
account's index date (see accounts.insights).
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from dataclasses import dataclass, replace
from decimal import Decimal

from django.db import connection
from django.db.models import (
    Count,
    DateField,
    Exists,
    F,
    Max,
    Min,
    OuterRef,
    QuerySet,
    Window,
)
from django.db.models.functions import Coalesce, RowNumber, TruncDate, TruncMonth
from django.utils import timezone

from accounts import insights
from accounts.insights import (
    ANY_LIMIT,
    LOCKED_HIT_LEVELS,
    LOGIN_BANDS,
    TRIAL_USE_LEVELS,
    AccountSegment,
    Adoption,
    CohortMember,
    CohortRow,
    FeatureUse,
    Move,
    SegmentAdoption,
    Signal,
    SignalLift,
    Timeline,
)
from accounts.models import (
    Account,
    EngagementEvent,
    Metric,
    MrrMovement,
    Plan,
    PlanLimit,
    UsageSnapshot,
    size_band,
)
from accounts.revenue_selectors import EVERYTHING, Segment

Kind = EngagementEvent.Kind
ZERO = Decimal("0")
DIMENSIONS = (("plan", "Plan"), ("industry", "Industry"), ("size", "Company size"), ("region", "Region"))


def period_bounds(start: dt.date, end: dt.date) -> tuple[dt.datetime, dt.datetime]:
    """[beginning of `start`, beginning of the day after `end`) in the current time zone."""
    zone = timezone.get_current_timezone()
    return (
        dt.datetime.combine(start, dt.time.min, tzinfo=zone),
        dt.datetime.combine(end + dt.timedelta(days=1), dt.time.min, tzinfo=zone),
    )


def _events(segment: Segment, *, start: dt.date, end: dt.date) -> QuerySet[EngagementEvent]:
    since, until = period_bounds(start, end)
    events = EngagementEvent.objects.filter(occurred_at__gte=since, occurred_at__lt=until)
    if not segment.is_everything:
        events = events.filter(account__in=segment.apply(Account.objects.all()).values("pk"))
    return events


def _size_label(employees: int | None) -> str:
    band = size_band(employees)
    return Account.Size(band).label if band else ""


def _local_day(moment: dt.datetime, zone: dt.tzinfo) -> dt.date:
    return moment.astimezone(zone).date()


def _month(value: dt.date | dt.datetime) -> dt.date:
    """TruncMonth's value as the month's first day (SQLite may hand back a datetime)."""
    return value.date() if isinstance(value, dt.datetime) else value


def _as_date(value: dt.date | dt.datetime | str) -> dt.date:
    """A date from a raw cursor: SQLite hands back dates as ISO text."""
    if isinstance(value, str):
        value = dt.date.fromisoformat(value[:10])
    return _month(value) if isinstance(value, dt.datetime) else value


def _regrouped(inner: QuerySet, *, select: str, group_by: str) -> list[tuple]:
    """`SELECT {select} FROM (inner) grouped GROUP BY {group_by}`: a second aggregation over the groups of an
    ORM query, which the ORM cannot write. Accounts per month counted as (month, account) groups let
    PostgreSQL hash them where COUNT(DISTINCT) would sort every event. `select` and `group_by` are fixed
    strings of this module; values travel as the inner query's parameters."""
    sql, params = inner.query.sql_with_params()
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT {select} FROM ({sql}) grouped GROUP BY {group_by}", params)  # noqa: S608
        return cursor.fetchall()


# --- Feature adoption ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class AdoptionOverview:
    start: dt.date
    end: dt.date
    dimension: str
    active: int
    features: list[Adoption]
    by_segment: list[SegmentAdoption]
    by_plan: list[SegmentAdoption]
    months: list[dt.date]
    trend: dict[str, list[float | None]]
    active_by_month: dict[dt.date, int]

    @property
    def feature_keys(self) -> list[str]:
        return [a.feature for a in self.features]


def adoption_overview(
    *, start: dt.date, end: dt.date, segment: Segment = EVERYTHING, dimension: str = "plan"
) -> AdoptionOverview:
    """Feature adoption in `[start, end]` over `segment`: per feature, per value of `dimension` and per plan,
    and month by month (see accounts.insights). Five queries: the active accounts with their segment values,
    each (account, feature)'s events and users, the plans' order, the active accounts and the users of each
    feature per month."""
    since, until = period_bounds(start, end)
    in_window = EngagementEvent.objects.filter(account=OuterRef("pk"), occurred_at__gte=since, occurred_at__lt=until)
    segments = {
        pk: AccountSegment(pk, plan or "", industry, _size_label(employees), region)
        for pk, plan, industry, employees, region in segment.apply(Account.objects.all())
        .filter(Exists(in_window))
        .order_by()
        .values_list("pk", "plan__name", "industry", "employees", "region")
    }
    events = _events(segment, start=start, end=end)
    feature_events = events.filter(kind=Kind.FEATURE_USED).exclude(feature="")
    # Events and distinct users of each (account, feature): grouped by user first, then counted.
    per_user = feature_events.values("account_id", "feature", "user_ref").annotate(events=Count("pk")).order_by()
    uses = [
        FeatureUse(account_id, feature, count, users)
        for account_id, feature, count, users in _regrouped(
            per_user,
            select="grouped.account_id, grouped.feature, SUM(grouped.events), COUNT(*)",
            group_by="grouped.account_id, grouped.feature",
        )
    ]
    features = insights.adoption(uses, active=segments)
    keys = [a.feature for a in features]
    plans = list(Plan.objects.order_by("tier_rank").values_list("name", flat=True))
    order = plans if dimension == "plan" else [band.label for band in Account.Size] if dimension == "size" else []
    by_segment = insights.adoption_by_segment(
        uses, segments=segments, active=segments, dimension=dimension, features=keys, order=order
    )
    by_plan = (
        by_segment
        if dimension == "plan"
        else insights.adoption_by_segment(
            uses, segments=segments, active=segments, dimension="plan", features=keys, order=plans
        )
    )
    month = TruncMonth("occurred_at", output_field=DateField())
    active_by_month = {
        _as_date(m): n
        for m, n in _regrouped(
            events.annotate(month=month).values("month", "account_id").order_by().distinct(),
            select="grouped.month, COUNT(*)",
            group_by="grouped.month",
        )
    }
    using_by_month = {
        (feature, _as_date(m)): n
        for feature, m, n in _regrouped(
            feature_events.annotate(month=month).values("feature", "month", "account_id").order_by().distinct(),
            select="grouped.feature, grouped.month, COUNT(*)",
            group_by="grouped.feature, grouped.month",
        )
    }
    months = insights.months_of(start, end)
    trend = insights.adoption_trend(
        months=months, active_by_month=active_by_month, using_by_month=using_by_month, features=keys
    )
    return AdoptionOverview(
        start=start,
        end=end,
        dimension=dimension,
        active=len(segments),
        features=features,
        by_segment=by_segment,
        by_plan=by_plan,
        months=months,
        trend=trend,
        active_by_month=active_by_month,
    )


# --- What precedes upgrades ------------------------------------------------------------------------------


def account_timelines(segment: Segment = EVERYTHING) -> list[Timeline]:
    """The accounts of `segment` with their whole MRR history, in two queries."""
    accounts = segment.apply(Account.objects.all())
    moves: dict[int, list[Move]] = defaultdict(list)
    movements = MrrMovement.objects.all()
    if not segment.is_everything:
        movements = movements.filter(account__in=accounts.values("pk"))
    for account_id, *fields in movements.order_by("account_id", "occurred_on", "pk").values_list(
        "account_id", "occurred_on", "mrr_before", "mrr_after", "plan_before_id", "plan_after_id"
    ):
        moves[account_id].append(Move(*fields))
    return [
        Timeline(pk, plan_id, mrr, first_purchase_on, tuple(moves.get(pk, ())))
        for pk, plan_id, mrr, first_purchase_on in accounts.order_by("pk").values_list(
            "pk", "plan_id", "mrr", "first_purchase_on"
        )
    ]


# The first day each account's snapshots of each limit-bearing metric reached the limit of the plan in effect
# that day. The plan in effect is `Timeline.plan_at_end_of`'s: the plan after the last movement on or before
# the day, else the plan before the next one, else the account's. The movements cut each account's time into
# periods ([day of a movement, day of the next) and the time before the first; an account without movements
# has one period, always), joined to the snapshots by range: one pass over the snapshots, no lookup per row.
# Snapshots under every plan's limit of their metric are dropped first. Plain SQL that SQLite and PostgreSQL
# both run (window functions, CTEs).
CROSSINGS_SQL = """
WITH moves AS (
    SELECT m.account_id, m.occurred_on, m.plan_before_id, m.plan_after_id,
           ROW_NUMBER() OVER (PARTITION BY m.account_id ORDER BY m.occurred_on, m.id) AS n,
           LEAD(m.occurred_on) OVER (PARTITION BY m.account_id ORDER BY m.occurred_on, m.id) AS next_on,
           LEAD(m.plan_before_id) OVER (PARTITION BY m.account_id ORDER BY m.occurred_on, m.id) AS next_plan
    FROM {movement} m
    WHERE TRUE{moves_in}
),
periods AS (
    SELECT a.id AS account_id, CAST(NULL AS DATE) AS from_on, CAST(NULL AS DATE) AS to_on, a.plan_id
    FROM {account} a
    WHERE NOT EXISTS (SELECT 1 FROM moves WHERE moves.account_id = a.id){accounts_in}
    UNION ALL
    SELECT moves.account_id, CAST(NULL AS DATE), moves.occurred_on, COALESCE(moves.plan_before_id, a.plan_id)
    FROM moves JOIN {account} a ON a.id = moves.account_id
    WHERE moves.n = 1
    UNION ALL
    SELECT moves.account_id, moves.occurred_on, moves.next_on,
           COALESCE(moves.plan_after_id, moves.next_plan, a.plan_id)
    FROM moves JOIN {account} a ON a.id = moves.account_id
),
lowest AS (
    SELECT metric_id, MIN({limit}) AS lowest FROM {plan_limit} WHERE {limit} IS NOT NULL GROUP BY metric_id
)
SELECT s.metric_id, s.account_id, MIN(s.captured_on)
FROM {snapshot} s
JOIN lowest ON lowest.metric_id = s.metric_id AND s.value >= lowest.lowest
JOIN periods p ON p.account_id = s.account_id
    AND (p.from_on IS NULL OR s.captured_on >= p.from_on)
    AND (p.to_on IS NULL OR s.captured_on < p.to_on)
JOIN {plan_limit} l ON l.plan_id = p.plan_id AND l.metric_id = s.metric_id
WHERE s.captured_on >= %(start)s AND s.captured_on <= %(last)s
    AND l.{limit} IS NOT NULL AND s.value >= l.{limit}{snapshots_in}
GROUP BY s.metric_id, s.account_id
"""


def limit_crossings(
    *, start: dt.date, last: dt.date, accounts: QuerySet[Account] | None = None
) -> tuple[dict[int, Metric], dict[int, dict[int, dt.date]]]:
    """The limit-bearing metrics, and per metric each account (of `accounts`, default every one) with its first
    day in [start, last] with a snapshot at or over the limit of the plan in effect that day (utilization ≥ 100%;
    an unlimited plan never crosses). Two queries: the metrics, and CROSSINGS_SQL."""
    metrics = {m.pk: m for m in Metric.objects.filter(kind=Metric.Kind.LIMIT).order_by("display_order", "key")}
    crossings: dict[int, dict[int, dt.date]] = {pk: {} for pk in metrics}
    quote = connection.ops.quote_name
    tables = {
        "movement": quote(MrrMovement._meta.db_table),
        "plan_limit": quote(PlanLimit._meta.db_table),
        "snapshot": quote(UsageSnapshot._meta.db_table),
        "account": quote(Account._meta.db_table),
        "limit": quote("limit"),
    }
    params: dict[str, object] = {"start": start, "last": last}
    moves_in = accounts_in = snapshots_in = ""
    if accounts is not None:
        subquery, subquery_params = accounts.values("pk").query.sql_with_params()
        # The subquery's placeholders are positional: name them, for one dict of parameters.
        names = [f"account_{i}" for i in range(len(subquery_params))]
        subquery = subquery % tuple(f"%({name})s" for name in names)
        params |= dict(zip(names, subquery_params, strict=True))
        moves_in = f" AND m.account_id IN ({subquery})"
        accounts_in = f" AND a.id IN ({subquery})"
        snapshots_in = f" AND s.account_id IN ({subquery})"
    # Table and column names come from the models' _meta, the account subquery from the ORM: no input.
    sql = CROSSINGS_SQL.format(**tables, moves_in=moves_in, accounts_in=accounts_in, snapshots_in=snapshots_in)
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        for metric_id, account_id, first in cursor.fetchall():
            if metric_id in crossings:
                crossings[metric_id][account_id] = _as_date(first)
    return metrics, crossings


def _monthly_counts_reached(
    events: QuerySet[EngagementEvent], levels: dict[str, tuple[int, ...]]
) -> dict[tuple[str, int], dict[int, dt.date]]:
    """Per (kind, level) of `levels`, each account's first day on which its events of that kind within one
    calendar month reached the level (the day of the level-th event of the month). One query: the ORM numbers
    the events within (account, kind, month) with a window function; around it, SQL keeps the numbers that are
    levels of their kind and the first time each account reached each (the ORM cannot aggregate over a window)."""
    numbered = (
        events.filter(kind__in=list(levels))
        .annotate(
            n=Window(
                RowNumber(),
                partition_by=[F("account_id"), F("kind"), TruncMonth("occurred_at")],
                order_by=[F("occurred_at").asc(), F("pk").asc()],
            )
        )
        .order_by()
        .values("kind", "account_id", "occurred_at", "n")
    )
    inner, params = numbered.query.sql_with_params()
    wanted, wanted_params = [], []
    for kind, ns in levels.items():
        wanted.append(f"(numbered.kind = %s AND numbered.n IN ({', '.join(['%s'] * len(ns))}))")
        wanted_params += [kind, *ns]
    # Every name is fixed here or compiled by the ORM; every value is a parameter.
    sql = (
        "SELECT numbered.kind, numbered.n, numbered.account_id, MIN(numbered.occurred_at) "  # noqa: S608
        f"FROM ({inner}) numbered WHERE {' OR '.join(wanted)} "
        "GROUP BY numbered.kind, numbered.n, numbered.account_id"
    )
    reached: dict[tuple[str, int], dict[int, dt.date]] = {(k, n): {} for k, ns in levels.items() for n in ns}
    zone = timezone.get_current_timezone()
    with connection.cursor() as cursor:
        cursor.execute(sql, [*params, *wanted_params])
        for kind, n, account_id, first in cursor.fetchall():
            reached[(kind, n)][account_id] = _as_datetime(first).astimezone(zone).date()
    return reached


def _as_datetime(value: dt.datetime | str) -> dt.datetime:
    """An aware datetime from a raw cursor (SQLite hands back aggregated datetimes as UTC text)."""
    if isinstance(value, str):
        value = dt.datetime.fromisoformat(value)
    return value if value.tzinfo else value.replace(tzinfo=dt.UTC)


@dataclass(frozen=True)
class PredictorsOverview:
    """Every signal's lift over `[start, last]`; `last` is `end` pulled back to leave 90 days of follow-up."""

    start: dt.date
    end: dt.date
    last: dt.date
    today: dt.date
    accounts: int
    """Accounts of the slice looked at (before the at-risk and plan conditions)."""
    signals: list[SignalLift]

    @property
    def has_window(self) -> bool:
        return self.last >= self.start

    @property
    def ranked(self) -> list[SignalLift]:
        return [s for s in self.signals if s.rank is not None]

    @property
    def unranked(self) -> list[SignalLift]:
        return [s for s in self.signals if s.rank is None]


def upgrade_predictors(
    *,
    start: dt.date,
    end: dt.date,
    today: dt.date,
    segment: Segment = EVERYTHING,
    days: int = insights.UPGRADE_WINDOW_DAYS,
) -> PredictorsOverview:
    """What precedes upgrades in `[start, end]` for the accounts of `segment` (see accounts.insights for the
    method). Seven queries: the accounts, their MRR movements, the first use of each feature, the days monthly
    counts of logins, locked-feature hits and trial uses reached their levels, the limit metrics and the first
    limit crossings."""
    last = insights.follow_up_last_day(end=end, today=today, days=days)
    plan_id = segment.plan_id
    population = replace(segment, plan_id=None)
    if last < start:
        return PredictorsOverview(start, end, last, today, 0, [])
    timelines = account_timelines(population)
    accounts = None if population.is_everything else population.apply(Account.objects.all())
    events = _events(population, start=start, end=last)

    first_seen: dict[str, dict[int, dt.date]] = {}
    signals: list[Signal] = []
    feature_firsts: dict[str, dict[int, dt.date]] = defaultdict(dict)
    zone = timezone.get_current_timezone()
    for feature, account_id, first in (
        events.filter(kind=Kind.FEATURE_USED)
        .exclude(feature="")
        .values("feature", "account_id")
        .annotate(first=Min("occurred_at"))
        .order_by()
        .values_list("feature", "account_id", "first")
    ):
        feature_firsts[feature][account_id] = _local_day(first, zone)
    for feature in sorted(feature_firsts):
        signal = insights.feature_signal(feature)
        signals.append(signal)
        first_seen[signal.key] = feature_firsts[feature]

    levels = {Kind.LOGIN: tuple(insights.logins_in_month_for(b) for b in LOGIN_BANDS)}
    levels |= {Kind.LOCKED_FEATURE_HIT: LOCKED_HIT_LEVELS, Kind.TRIAL_FEATURE_USED: TRIAL_USE_LEVELS}
    reached = _monthly_counts_reached(events, levels)
    for hits in LOCKED_HIT_LEVELS:
        signal = insights.locked_signal(hits)
        signals.append(signal)
        first_seen[signal.key] = reached[(Kind.LOCKED_FEATURE_HIT, hits)]
    for uses in TRIAL_USE_LEVELS:
        signal = insights.trial_signal(uses)
        signals.append(signal)
        first_seen[signal.key] = reached[(Kind.TRIAL_FEATURE_USED, uses)]
    for band in LOGIN_BANDS:
        signal = insights.login_signal(band)
        signals.append(signal)
        first_seen[signal.key] = reached[(Kind.LOGIN, insights.logins_in_month_for(band))]

    metrics, crossings = limit_crossings(start=start, last=last, accounts=accounts)
    any_limit: dict[int, dt.date] = {}
    for metric_id, metric in metrics.items():
        signal = insights.limit_signal(metric.key, metric.label)
        signals.append(signal)
        first_seen[signal.key] = crossings[metric_id]
        for account_id, day in crossings[metric_id].items():
            if account_id not in any_limit or day < any_limit[account_id]:
                any_limit[account_id] = day
    if len(metrics) > 1:
        signals.append(ANY_LIMIT)
        first_seen[ANY_LIMIT.key] = any_limit

    results = [
        SignalLift(
            signal,
            insights.signal_lift(
                signal,
                first_seen=first_seen[signal.key],
                timelines=timelines,
                start=start,
                last=last,
                plan_id=plan_id,
                days=days,
            ),
        )
        for signal in signals
    ]
    return PredictorsOverview(start, end, last, today, len(timelines), insights.ranked(results))


# --- Usage cohorts ---------------------------------------------------------------------------------------


def feature_keys(*, start: dt.date, end: dt.date) -> list[str]:
    """The features used (a `feature_used` event) in `[start, end]`, most used first: one query."""
    return list(
        _events(EVERYTHING, start=start, end=end)
        .filter(kind=Kind.FEATURE_USED)
        .exclude(feature="")
        .values("feature")
        .annotate(events=Count("pk"))
        .order_by("-events", "feature")
        .values_list("feature", flat=True)
    )


@dataclass(frozen=True)
class CohortsOverview:
    start: dt.date
    end: dt.date
    today: dt.date
    group: str
    measure: str
    """"feature" or "metric"."""
    measure_key: str
    measure_label: str
    rows: list[CohortRow]


def _signed_up(*, start: dt.date, end: dt.date, segment: Segment) -> QuerySet[Account]:
    """The accounts of `segment` that signed up in `[start, end]`: first purchase, else the day created."""
    signup = Coalesce("first_purchase_on", TruncDate("created_at"), output_field=DateField())
    return segment.apply(Account.objects.all()).annotate(signup=signup).filter(signup__gte=start, signup__lte=end)


def _cohort_members(
    accounts: QuerySet[Account], *, group: str
) -> tuple[list[CohortMember], dict[str, str], list[str], dict[int, int | None]]:
    """Each of `accounts` in its cohort (signup month or plan); the cohorts' labels and order; each account's
    plan. One query."""
    rows = accounts.order_by().values_list("pk", "signup", "plan_id", "plan__name", "plan__tier_rank")
    members, labels, ranks, plans = [], {}, {}, {}
    for pk, signup, plan_id, plan_name, tier_rank in rows:
        plans[pk] = plan_id
        if group == "plan":
            key = f"plan-{plan_id}" if plan_id else "plan-none"
            labels[key] = plan_name or "No plan"
            ranks[key] = tier_rank if tier_rank is not None else 10**6
        else:
            key = f"{signup:%Y-%m}"
            labels[key] = f"{signup:%b %Y}"
            ranks[key] = 0
        members.append(CohortMember(pk, key, signup))
    order = sorted(labels, key=lambda k: (ranks[k], k))
    return members, labels, order, plans


def usage_cohorts(
    *,
    start: dt.date,
    end: dt.date,
    today: dt.date,
    segment: Segment = EVERYTHING,
    group: str = "signup",
    measure: str = "feature",
    measure_key: str,
    measure_label: str = "",
) -> CohortsOverview:
    """Cohorts of the accounts that signed up in `[start, end]` (by signup month or by plan) and, for each month
    since signup up to today, the share that used feature `measure_key` or the median utilization of metric
    `measure_key` (see accounts.insights). Feature: two queries (members, feature use by month); metric: five
    (members, monthly peaks, movements, the metric's limits by plan)."""
    signed_up = _signed_up(start=start, end=end, segment=segment)
    members, labels, order, plans = _cohort_members(signed_up, group=group)
    since, _ = period_bounds(insights.month_start(start), today)
    member_accounts = signed_up.values("pk")
    if measure == "feature":
        used = {
            (account_id, _month(m))
            for account_id, m in EngagementEvent.objects.filter(
                kind=Kind.FEATURE_USED, feature=measure_key, occurred_at__gte=since, account__in=member_accounts
            )
            .annotate(month=TruncMonth("occurred_at", output_field=DateField()))
            .order_by()
            .values_list("account_id", "month")
            .distinct()
        }
        rows = insights.cohort_feature_shares(members, used=used, today=today, labels=labels, order=order)
    else:
        peaks = (
            UsageSnapshot.objects.filter(
                metric__key=measure_key, captured_on__gte=insights.month_start(start), account__in=member_accounts
            )
            .annotate(month=TruncMonth("captured_on", output_field=DateField()))
            .values("account_id", "month")
            .annotate(peak=Max("value"))
            .order_by()
            .values_list("account_id", "month", "peak")
        )
        moves: dict[int, list[Move]] = defaultdict(list)
        for account_id, *fields in (
            MrrMovement.objects.filter(account__in=member_accounts)
            .order_by("account_id", "occurred_on", "pk")
            .values_list("account_id", "occurred_on", "mrr_before", "mrr_after", "plan_before_id", "plan_after_id")
        ):
            moves[account_id].append(Move(*fields))
        timelines = {pk: Timeline(pk, plan, ZERO, None, tuple(moves.get(pk, ()))) for pk, plan in plans.items()}
        limits = dict(PlanLimit.objects.filter(metric__key=measure_key).values_list("plan_id", "limit"))
        utilization = {}
        for account_id, m, peak in peaks:
            month = _month(m)
            timeline = timelines.get(account_id)
            if timeline is None:
                continue
            limit = limits.get(timeline.plan_at_end_of(min(insights.month_end(month), today)))
            if limit:
                utilization[(account_id, month)] = peak / limit
        rows = insights.cohort_metric_medians(members, utilization=utilization, today=today, labels=labels, order=order)
    return CohortsOverview(start, end, today, group, measure, measure_key, measure_label or measure_key, rows)
