"""Reads for the screens where accounts meet their opportunities: home, the queue and the account page.

Querysets come back with their joins done, so templates never query.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from decimal import Decimal

from django.db.models import Case, Count, F, IntegerField, Prefetch, Q, QuerySet, When
from django.db.models.functions import Lower

from accounts import selectors as account_selectors
from accounts.models import Account, AccountEngagement, EngagementEvent, MrrMovement, Plan, PlanFeature, PlanLimit
from opportunities.models import STAGE_ORDER, AccountScore, Note, Opportunity, OpportunityEvent, Outcome

# --- Home pages ------------------------------------------------------------------------------------------


def top_open_opportunities(*, user, limit: int = 5) -> QuerySet[Opportunity]:
    """The highest-scored open opportunities `user` works."""
    return (
        Opportunity.objects.visible_to(user)
        .open()
        .select_related("account", "account__plan", "target_plan")
        .order_by("-score", "-identified_at", "pk")[:limit]
    )


def open_opportunity_count(*, user) -> int:
    return Opportunity.objects.visible_to(user).open().count()


def open_opportunities_per_stage() -> list[dict]:
    """Every pipeline stage with its count of open opportunities, zero included, in pipeline order."""
    counts = dict(Opportunity.objects.open().values("stage").annotate(count=Count("pk")).values_list("stage", "count"))
    total = sum(counts.values())
    return [
        {"stage": stage, "label": stage.label, "count": counts.get(stage.value, 0), "total": total}
        for stage in STAGE_ORDER
    ]


# --- The queue -------------------------------------------------------------------------------------------


def queue_filter(*, today: dt.date) -> Q:
    """Open opportunities, and snoozed ones whose snooze has run out: they come back to the queue."""
    return Q(outcome=Outcome.OPEN) | Q(outcome=Outcome.SNOOZED, snoozed_until__lte=today)


def queue(*, user, today: dt.date) -> QuerySet[Opportunity]:
    """The opportunities `user` works (all of them for a manager), with account, plan and owner joined."""
    return (
        Opportunity.objects.visible_to(user)
        .filter(queue_filter(today=today))
        .select_related("account", "account__plan", "owner", "target_plan")
    )


# `?sort=` keys of the queue and the ordering each stands for; "-key" sorts descending.
QUEUE_SORTS = {
    "score": ("score",),
    "account": (Lower("account__name"),),
    "plan": ("account__plan__tier_rank",),
    "mrr": ("account__mrr",),
    "stage": (
        Case(*(When(stage=stage, then=rank) for rank, stage in enumerate(STAGE_ORDER)), output_field=IntegerField()),
    ),
    "days": ("stage_entered_at",),
    "next_step": ("next_step_on",),
    "owner": (Lower("owner__username"),),
}
QUEUE_DEFAULT_SORT = ("score", True)


def parse_queue_sort(value: str | None, *, allowed: set[str] | None = None) -> tuple[str, bool]:
    """(`key`, `descending`) of a `?sort=` value; unknown keys fall back to the highest score first."""
    value = (value or "").strip()
    descending = value.startswith("-")
    key = value.removeprefix("-")
    if key not in QUEUE_SORTS or (allowed is not None and key not in allowed):
        return QUEUE_DEFAULT_SORT
    return key, descending


def queue_sorted(queryset: QuerySet[Opportunity], *, key: str, descending: bool) -> QuerySet[Opportunity]:
    """Order the queue by `key`; the primary key breaks ties so pages never overlap."""
    ordering = []
    for part in QUEUE_SORTS[key]:
        expression = F(part) if isinstance(part, str) else part
        # "Days in stage" grows as the entry date gets older: descending days = ascending date.
        flip = descending != (key == "days")
        ordering.append(expression.desc(nulls_last=True) if flip else expression.asc(nulls_last=True))
    ordering.append("-pk" if descending else "pk")
    return queryset.order_by(*ordering)


# --- The account page ------------------------------------------------------------------------------------


def account_page(*, user) -> QuerySet[Account]:
    """The account page's queryset: the account, its indicators, MRR movements and opportunities."""
    return account_selectors.account_detail(user=user).prefetch_related(
        Prefetch(
            "opportunities",
            queryset=Opportunity.objects.select_related(
                "target_plan", "trial_plan", "owner", "lost_reason", "play"
            ).order_by(
                Case(When(outcome=Outcome.OPEN, then=0), default=1, output_field=IntegerField()),
                "-identified_at",
                "-pk",
            ),
            to_attr="opportunity_list",
        ),
    )


def opportunity_for(*, user, pk: int) -> QuerySet[Opportunity]:
    """The opportunity `pk` if `user` may work it (an empty queryset otherwise, hence a 404)."""
    return (
        Opportunity.objects.visible_to(user)
        .filter(pk=pk)
        .select_related("account", "account__plan", "account__owner", "owner", "target_plan", "trial_plan", "play")
    )


def account_score(account: Account) -> AccountScore | None:
    return AccountScore.objects.filter(account=account).select_related("target_plan").first()


def locked_feature_hits(account: Account, *, since: dt.datetime) -> list[dict]:
    """Locked-feature hits per feature since `since`, most hit first."""
    return list(
        EngagementEvent.objects.filter(
            account=account, kind=EngagementEvent.Kind.LOCKED_FEATURE_HIT, occurred_at__gte=since
        )
        .values("feature")
        .annotate(hits=Count("pk"))
        .order_by("-hits", "feature")
    )


@dataclass(frozen=True)
class PlanComparison:
    current: Plan | None
    suggested: Plan
    limit_rows: list[tuple[str, str, PlanLimit | None, PlanLimit | None]]
    feature_rows: list[tuple[str, PlanFeature | None, PlanFeature | None]]
    price_delta: Decimal | None


def plan_comparison(*, current: Plan | None, suggested: Plan | None) -> PlanComparison | None:
    """The current and the suggested tier side by side: limits per metric, features, monthly price delta."""
    if suggested is None or (current is not None and suggested.pk == current.pk):
        return None
    plan_ids = [plan.pk for plan in (current, suggested) if plan is not None]
    limits = {
        (limit.plan_id, limit.metric_id): limit
        for limit in PlanLimit.objects.filter(plan_id__in=plan_ids).select_related("metric")
    }
    features: dict[tuple[int, str], PlanFeature] = {}
    labels: dict[str, str] = {}
    for feature in PlanFeature.objects.filter(plan_id__in=plan_ids).order_by("display_order", "key"):
        features[(feature.plan_id, feature.key)] = feature
        labels.setdefault(feature.key, feature.label)
    metrics = account_selectors.limit_metrics()
    current_id = current.pk if current else None
    return PlanComparison(
        current=current,
        suggested=suggested,
        limit_rows=[
            (metric.label, metric.unit, limits.get((current_id, metric.pk)), limits.get((suggested.pk, metric.pk)))
            for metric in metrics
        ],
        feature_rows=[
            (label, features.get((current_id, key)), features.get((suggested.pk, key))) for key, label in labels.items()
        ],
        price_delta=suggested.monthly_price - current.monthly_price if current else suggested.monthly_price,
    )


@dataclass(frozen=True)
class TimelineEntry:
    at: dt.datetime
    kind: str
    title: str
    body: str = ""
    actor: object = None
    extra: dict = field(default_factory=dict)


def account_timeline(account: Account, *, movements: list[MrrMovement], limit: int = 50) -> list[TimelineEntry]:
    """Opportunity events, notes and MRR movements of the account, newest first, in three queries."""
    entries: list[TimelineEntry] = []
    events = (
        OpportunityEvent.objects.filter(opportunity__account=account)
        .exclude(kind=OpportunityEvent.Kind.NOTE)
        .select_related("actor")
        .order_by("-occurred_at", "-pk")[:limit]
    )
    for event in events:
        title = event.get_kind_display()
        if event.kind == OpportunityEvent.Kind.STAGE_CHANGED and event.from_stage and event.to_stage:
            title = f"Moved from {event.get_from_stage_display()} to {event.get_to_stage_display()}"
        entries.append(
            TimelineEntry(at=event.occurred_at, kind=event.kind, title=title, body=event.message, actor=event.actor)
        )
    for note in Note.objects.filter(account=account).select_related("author").order_by("-created_at", "-pk")[:limit]:
        entries.append(TimelineEntry(at=note.created_at, kind="note", title="Note", body=note.body, actor=note.author))
    for movement in movements[:limit]:
        at = dt.datetime.combine(movement.occurred_on, dt.time.min, tzinfo=dt.UTC)
        # A movement recorded on its own day (a won upgrade) sorts by when it was written, among that day's events.
        if movement.created_at and movement.created_at.date() == movement.occurred_on:
            at = movement.created_at
        entries.append(
            TimelineEntry(
                at=at,
                kind="mrr",
                title=f"MRR {movement.get_kind_display().lower()}",
                extra={"movement": movement},
            )
        )
    entries.sort(key=lambda entry: entry.at, reverse=True)
    return entries[:limit]


def engagement_trend(account: Account) -> list[dict]:
    """The account's engagement now and in the window before, one dict per figure (empty without data)."""
    engagement = AccountEngagement.objects.filter(account=account).first()
    if engagement is None:
        return []
    return [
        {
            "label": "Logins / week",
            "now": engagement.logins_per_week,
            "before": engagement.logins_per_week_prev,
            "decimals": 1,
        },
        {
            "label": "Active users",
            "now": engagement.active_users,
            "before": engagement.active_users_prev,
            "decimals": 0,
        },
        {
            "label": "Features used",
            "now": engagement.features_used,
            "before": engagement.features_used_prev,
            "decimals": 0,
        },
        {
            "label": "Locked-feature hits",
            "now": engagement.locked_feature_hits,
            "before": engagement.locked_feature_hits_prev,
            "decimals": 0,
        },
    ]


# How far ahead the usage chart draws a projection; a crossing years away would squash the history.
PROJECTION_HORIZON_DAYS = 60


def usage_chart_data(series: account_selectors.UsageSeries) -> dict:
    """A metric's chart data plus its projection: a straight line from the latest value along the trend to
    the limit on the day the trend reaches it (drawn dashed), or to the horizon if that day is further out."""
    data = series.as_chart_data()
    indicator = series.indicator
    if not (indicator and indicator.projected_limit_on and indicator.latest_on and indicator.limit is not None):
        return data
    horizon = indicator.latest_on + dt.timedelta(days=PROJECTION_HORIZON_DAYS)
    if indicator.projected_limit_on <= horizon:
        end_on, end_value = indicator.projected_limit_on, indicator.limit
    elif indicator.slope_per_day:
        end_on, end_value = horizon, indicator.latest + indicator.slope_per_day * PROJECTION_HORIZON_DAYS
    else:
        return data
    data["projection"] = {
        "dates": [indicator.latest_on.isoformat(), end_on.isoformat()],
        "values": [indicator.latest, end_value],
        "crosses": end_on == indicator.projected_limit_on,
    }
    return data
