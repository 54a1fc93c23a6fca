"""Reads for the screens where accounts meet their opportunities: home, the queue and the account page.

Querysets come back with their joins done, so templates never query.
"""

from __future__ import annotations

import datetime as dt
import functools
import math
from dataclasses import dataclass, field
from decimal import Decimal

from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import ObjectDoesNotExist
from django.core.paginator import Page, Paginator
from django.db.models import Case, Count, Exists, F, IntegerField, OuterRef, Prefetch, Q, QuerySet, When, Window
from django.db.models.fields.json import KT
from django.db.models.functions import Lower

from accounts import reference
from accounts import selectors as account_selectors
from accounts.lookups import AnyOf
from accounts.models import (
    Account,
    AccountEngagement,
    AuditEntry,
    EngagementEvent,
    Metric,
    MrrMovement,
    Plan,
    PlanFeature,
    PlanLimit,
)
from accounts.roles import is_manager_or_admin
from accounts.work_selectors import task_timeline, tasks_due_counts
from opportunities.models import (
    STAGE_ORDER,
    AccountScore,
    Collaborator,
    LostReason,
    Note,
    Opportunity,
    OpportunityEvent,
    Outcome,
)
from playbooks.selectors import account_touches
from playbooks.sequence_selectors import account_step_timeline
from playbooks.survey_selectors import account_survey_answers

# --- Home pages ------------------------------------------------------------------------------------------


def top_open_opportunities(*, user, limit: int = 5) -> QuerySet[Opportunity]:
    """The highest-scored open opportunities `user` works."""
    return (
        Opportunity.objects.visible_to(user)
        .open()
        .select_related("account", "account__plan", "target_plan", "owner")
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
    """The opportunities `user` works (all of them for a manager), without joins: filters and sorts add the
    ones they need, and a page's rows come from `queue_page`."""
    return Opportunity.objects.visible_to(user).filter(queue_filter(today=today))


def queue_cursor(*, user, pk: int) -> QuerySet[Opportunity]:
    """Opportunity `pk`, whatever its outcome, if `user` may see it: where `next_in_queue` starts from."""
    return Opportunity.objects.visible_to(user).filter(pk=pk).only("pk", "score", "account_id")


def next_in_queue(*, user, after: Opportunity, today: dt.date) -> Opportunity | None:
    """The opportunity that follows `after` in `user`'s queue in its default order (highest score first,
    the newest first among equal scores), on another account; None after the last one.

    `after` is a cursor, not a member: an opportunity just closed or snoozed has left the queue, and the
    next one is still the one that followed it."""
    return (
        queue(user=user, today=today)
        .filter(Q(score__lt=after.score) | Q(score=after.score, pk__lt=after.pk))
        .exclude(account_id=after.account_id)
        .order_by("-score", "-pk")
        .only("pk", "account_id")
        .first()
    )


# What a queue row shows, as plain values: the rest of an opportunity (qualification, ROI, notes) stays in
# the database, and no model instances are built for a page of 25 to 50 rows.
QUEUE_ROW_VALUES = (
    "pk",
    "account_id",
    "account__name",
    "account__industry",
    "account__region",
    "account__mrr",
    "account__currency",
    "account__status",
    "account__plan__name",
    "account__plan__tier_rank",
    "stage",
    "outcome",
    "score",
    "snoozed_until",
    "next_step_on",
    "stage_entered_at",
    "version",
)
QUEUE_ROW_OWNER_VALUES = ("owner_id", "owner__username", "owner__first_name", "owner__last_name")


@functools.cache
def _queue_row_values(with_owner: bool) -> QuerySet[Opportunity]:
    """The row query's columns, resolved once per process: building them cost a good part of the query."""
    fields = QUEUE_ROW_VALUES + (QUEUE_ROW_OWNER_VALUES if with_owner else ())
    # The top reason's text only (Opportunity.top_reason), not the whole explanation.
    return Opportunity.objects.values(*fields, top_reason=KT("reasons__0__text"))


def queue_rows(
    ids: list[int], *, today: dt.date, with_owner: bool = False, shared_with: AbstractBaseUser | None = None
) -> list[dict]:
    """The queue rows of the opportunities `ids`, in that order, as dicts of QUEUE_ROW_VALUES, `top_reason`,
    `tasks_due` (open tasks due by `today` on the account), `shared` (whether `shared_with` collaborates on
    it; False without one) and the owner's names `with_owner`: by primary key, with the account and plan
    joined, in two queries.

    The collaboration mark is a subquery of the first; the tasks due are a query of their own, which cost
    less than a correlated count per row."""
    rows = _queue_row_values(with_owner).filter(AnyOf(F("pk"), ids))
    if shared_with is not None:
        rows = rows.annotate(shared=Exists(Collaborator.objects.filter(user=shared_with, opportunity=OuterRef("pk"))))
    by_id = {row["pk"]: row for row in rows}
    ordered = [by_id[pk] for pk in ids if pk in by_id]
    tasks_due = tasks_due_counts(account_ids=[row["account_id"] for row in ordered], today=today)
    for row in ordered:
        row["tasks_due"] = tasks_due.get(row["account_id"], 0)
    return ordered


def queue_page(
    queryset: QuerySet[Opportunity],
    *,
    number,
    per_page: int,
    today: dt.date,
    with_owner: bool = False,
    shared_with: AbstractBaseUser | None = None,
) -> Page:
    """Page `number` of the sorted queue `queryset`, its rows from `queue_rows`, in two queries.

    The ids of the page and the size of the whole queue come from one query (COUNT(*) OVER ()), so the
    visibility rule is worked out once and no row is read wider than its index; then only the page's rows
    are read in full. A page number past the end gives the last page, as Paginator.get_page does.
    """
    try:
        number = max(int(number), 1)
    except (TypeError, ValueError):
        number = 1
    ranked = queryset.annotate(total=Window(Count("pk"))).values_list("pk", "total")
    page = list(ranked[(number - 1) * per_page : number * per_page])
    if page:
        total = page[0][1]
    else:
        total = queryset.count()
        number = max(math.ceil(total / per_page), 1)
        page = list(ranked[(number - 1) * per_page : number * per_page]) if total else []
    paginator = Paginator([], per_page)
    paginator.count = total
    rows = queue_rows([pk for pk, _total in page], today=today, with_owner=with_owner, shared_with=shared_with)
    return Page(rows, number, paginator)


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
# Sort keys whose values can be missing: those sort last either way. The others sort plainly, so that
# PostgreSQL can read the queue in score order from its index instead of sorting every row.
QUEUE_NULLABLE_SORTS = {"plan", "next_step", "owner"}


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
        nulls_last = True if key in QUEUE_NULLABLE_SORTS else None
        ordering.append(expression.desc(nulls_last=nulls_last) if flip else expression.asc(nulls_last=nulls_last))
    ordering.append("-pk" if descending else "pk")
    return queryset.order_by(*ordering)


# --- The account page ------------------------------------------------------------------------------------


def active_lost_reasons_queryset() -> QuerySet[LostReason]:
    return LostReason.objects.filter(active=True).order_by("display_order", "label")


def active_lost_reasons() -> list[LostReason]:
    """The reasons a CSM may give for a loss, in the admin's order (reference data)."""
    return reference.cached("active-lost-reasons", lambda: list(active_lost_reasons_queryset()))


def _account_page(*, user) -> QuerySet[Account]:
    return (
        account_selectors.account_detail(user=user)
        .select_related("score", "engagement")
        .prefetch_related(
            Prefetch(
                "opportunities",
                queryset=Opportunity.objects.select_related("owner", "lost_reason", "play")
                # Most opportunities have no collaborators: the panel then skips reading them.
                .annotate(has_collaborators=Exists(Collaborator.objects.filter(opportunity=OuterRef("pk"))))
                .order_by("-identified_at", "-pk"),
                to_attr="opportunity_list",
            ),
        )
    )


def account_for_page(*, user, pk: int) -> Account | None:
    """The account page's account, or None when `user` may not see it: with its owner, plan, score and
    engagement, its MRR movements, and its opportunities, the open one first and then newest first.

    The plans the opportunities and the score name come from the plan catalogue in the reference data, not
    from joins (`account_selectors.attach_plans`), and the open one is put first here rather than by the
    database: each join and each ordering expression cost more to build in the ORM than to run."""
    try:
        account = account_selectors.account_with_plans(_account_page(user=user).get(pk=pk))
    except Account.DoesNotExist:
        return None
    account.opportunity_list.sort(key=lambda opportunity: opportunity.outcome != Outcome.OPEN)  # stable
    account_selectors.attach_plans(account.opportunity_list, "target_plan", "trial_plan")
    score = account_score(account)
    if score is not None:
        account_selectors.attach_plans([score], "target_plan")
    return account


def opportunity_for(*, user, pk: int) -> QuerySet[Opportunity]:
    """The opportunity `pk` if `user` may work it (an empty queryset otherwise, hence a 404)."""
    return (
        Opportunity.objects.visible_to(user)
        .filter(pk=pk)
        .select_related("account", "account__plan", "account__owner", "owner", "target_plan", "trial_plan", "play")
    )


def workable_opportunity_ids(account: Account, *, user) -> set[int] | None:
    """The account's opportunities `user` may work, when they may not work them all: None for a manager, an
    admin or the account's owner; for anyone else (an account executive brought onto one of them) the ids
    `Opportunity.visible_to` lets through, in one query."""
    if account.owner_id == user.pk or is_manager_or_admin(user):
        return None
    return set(Opportunity.objects.visible_to(user).filter(account=account).values_list("pk", flat=True))


def _one_to_one(account: Account, name: str):
    """The account's `name` row (joined by `account_for_page`, else read now), or None when it has none."""
    try:
        return getattr(account, name)
    except ObjectDoesNotExist:
        return None


def account_score(account: Account) -> AccountScore | None:
    return _one_to_one(account, "score")


def account_engagement(account: Account) -> AccountEngagement | None:
    return _one_to_one(account, "engagement")


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


def plan_comparison(
    *, current: Plan | None, suggested: Plan | None, metrics: list[Metric] | None = None
) -> PlanComparison | None:
    """The current and the suggested tier side by side: limits per metric (`metrics`, the limit metrics
    when None), features, monthly price delta."""
    if suggested is None or (current is not None and suggested.pk == current.pk):
        return None
    plan_ids = {plan.pk for plan in (current, suggested) if plan is not None}
    all_limits, all_features = account_selectors.plan_catalogue_rows()
    limits = {(limit.plan_id, limit.metric_id): limit for limit in all_limits if limit.plan_id in plan_ids}
    features: dict[tuple[int, str], PlanFeature] = {}
    labels: dict[str, str] = {}
    for feature in (feature for feature in all_features if feature.plan_id in plan_ids):
        features[(feature.plan_id, feature.key)] = feature
        labels.setdefault(feature.key, feature.label)
    metrics = account_selectors.limit_metrics() if metrics is None else metrics
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


def _as_entries(items) -> list[TimelineEntry]:
    """Timeline items of the other apps (touches, steps, tasks, survey answers) carry the entry's fields."""
    return [TimelineEntry(at=i.at, kind=i.kind, title=i.title, body=i.body, actor=i.actor) for i in items]


def _touch_entries(account: Account, *, movements, limit: int) -> list[TimelineEntry]:
    # The plays' prompts, clicks and trials (playbooks.selectors), one query.
    return _as_entries(account_touches(account_id=account.pk, limit=limit))


def _step_entries(account: Account, *, movements, limit: int) -> list[TimelineEntry]:
    # Play sequence steps: sent, skipped, failed, waiting, cancelled (playbooks.sequence_selectors), one query.
    return _as_entries(account_step_timeline(account_id=account.pk, limit=limit))


def _owner_entries(account: Account, *, movements, limit: int) -> list[TimelineEntry]:
    owner_changes = (
        AuditEntry.objects.filter(object_type=Account._meta.label, object_id=str(account.pk), after__has_key="owner")
        .select_related("actor")
        .order_by("-at", "-pk")[:limit]
    )
    names = _user_names(
        {entry.after.get("owner") for entry in owner_changes}
        | {entry.before.get("owner") for entry in owner_changes if entry.before}
    )
    entries = []
    for entry in owner_changes:
        before = names.get((entry.before or {}).get("owner"), "nobody")
        after = names.get(entry.after.get("owner"), "nobody")
        entries.append(
            TimelineEntry(
                at=entry.at, kind="owner", title="Owner changed", body=f"From {before} to {after}", actor=entry.actor
            )
        )
    return entries


def _event_entries(account: Account, *, movements, limit: int) -> list[TimelineEntry]:
    events = (
        OpportunityEvent.objects.filter(opportunity__account=account)
        .exclude(kind=OpportunityEvent.Kind.NOTE)
        .select_related("actor")
        .order_by("-occurred_at", "-pk")[:limit]
    )
    entries = []
    for event in events:
        title = event.get_kind_display()
        if event.kind == OpportunityEvent.Kind.STAGE_CHANGED and event.from_stage and event.to_stage:
            title = f"Moved from {event.get_from_stage_display()} to {event.get_to_stage_display()}"
        entries.append(
            TimelineEntry(at=event.occurred_at, kind=event.kind, title=title, body=event.message, actor=event.actor)
        )
    return entries


def _note_entries(account: Account, *, movements, limit: int) -> list[TimelineEntry]:
    notes = Note.objects.filter(account=account).select_related("author").order_by("-created_at", "-pk")[:limit]
    return [TimelineEntry(at=n.created_at, kind="note", title="Note", body=n.body, actor=n.author) for n in notes]


def _movement_entries(account: Account, *, movements, limit: int) -> list[TimelineEntry]:
    entries = []
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
    return entries


def _task_entries(account: Account, *, movements, limit: int) -> list[TimelineEntry]:
    # Tasks created and completed (accounts.work_selectors), one query.
    return _as_entries(task_timeline(account_id=account.pk, limit=limit))


def _survey_entries(account: Account, *, movements, limit: int) -> list[TimelineEntry]:
    # Survey answers (playbooks.survey_selectors), one query.
    return _as_entries(account_survey_answers(account_id=account.pk, limit=limit))


# What the timeline can be narrowed to (`?show=`), with the sources each reads, in the order the filter
# offers them. Without one it reads them all.
TIMELINE_SHOWS = {
    "notes": ("Notes", (_note_entries,)),
    "opportunities": ("Opportunities", (_event_entries,)),
    "billing": ("Billing", (_movement_entries,)),
    "plays": ("Plays", (_touch_entries, _step_entries)),
    "tasks": ("Tasks", (_task_entries,)),
    "surveys": ("Surveys", (_survey_entries,)),
    "owner": ("Owner", (_owner_entries,)),
}


# Every source, in the order entries of the same moment have always listed in.
TIMELINE_SOURCES = (
    _touch_entries,
    _owner_entries,
    _event_entries,
    _note_entries,
    _movement_entries,
    _task_entries,
    _survey_entries,
    _step_entries,
)


def account_timeline(
    account: Account, *, movements: list[MrrMovement], limit: int = 50, show: str | None = None
) -> list[TimelineEntry]:
    """What happened on the account, newest first: opportunity events, notes, MRR movements, the plays'
    touches and sequence steps, tasks, survey answers and changes of owner, one query a source; `show` (a key
    of TIMELINE_SHOWS) reads only those sources."""
    sources = TIMELINE_SHOWS[show][1] if show in TIMELINE_SHOWS else TIMELINE_SOURCES
    entries = [entry for source in sources for entry in source(account, movements=movements, limit=limit)]
    entries.sort(key=lambda entry: entry.at, reverse=True)
    return entries[:limit]


def _user_names(ids: set[int | None]) -> dict[int, str]:
    wanted = [pk for pk in ids if pk is not None]
    if not wanted:
        return {}
    users = get_user_model().objects.filter(pk__in=wanted).only("pk", "first_name", "last_name", "username")
    return {user.pk: user.get_full_name() or user.get_username() for user in users}


def engagement_trend(account: Account) -> list[dict]:
    """The account's engagement now and in the window before, one dict per figure (empty without data)."""
    engagement: AccountEngagement | None = _one_to_one(account, "engagement")
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
