"""Reads for the account screens: querysets with their joins done, so templates never query.

Reads that join accounts to their opportunities (the home page, the account page, the queue) live in
`opportunities.selectors`: accounts never imports the apps downstream of it.
"""

from __future__ import annotations

import copy
import datetime as dt
from dataclasses import dataclass

from django.contrib.auth import get_user_model
from django.db.models import Count, Exists, F, OuterRef, Prefetch, Q, QuerySet, Subquery, Sum
from django.db.models.functions import Lower

from accounts import indicators, reference
from accounts.models import (
    Account,
    AccountIndicator,
    Metric,
    MrrMovement,
    Plan,
    PlanFeature,
    PlanLimit,
    UsageSnapshot,
)
from accounts.roles import Role

# The utilization from which a metric counts as "near its limit" (the first alert band in DOMAIN.md).
NEAR_LIMIT = 0.8
USAGE_HISTORY_DAYS = 90


def limit_metrics() -> list[Metric]:
    """The limit-bearing metrics in display order: the columns of every usage table."""
    return reference.cached(
        "limit-metrics", lambda: list(Metric.objects.filter(kind=Metric.Kind.LIMIT).order_by("display_order", "key"))
    )


def active_plans() -> list[Plan]:
    """The plans on sale, lowest tier first: the choices of every plan menu."""
    return reference.cached("active-plans", lambda: list(Plan.objects.active().order_by("tier_rank")))


def plans_by_id() -> dict[int, Plan]:
    """Every plan, on sale or not, by id (reference data): for rows that name a plan, read without joining it."""
    return reference.cached("plans-by-id", lambda: {plan.pk: plan for plan in Plan.objects.all()})


def attach_plans(rows, *fields: str) -> None:
    """Give each of `rows` its plans named by the foreign keys `fields` from `plans_by_id`, as select_related
    would have, without the joins. Each row gets its own copy, so no request changes another's plan. A plan
    the reference data lacks (created a moment ago in another process) is left to be read when used."""
    plans = plans_by_id()
    for row in rows:
        for name in fields:
            field = row._meta.get_field(name)
            plan = plans.get(getattr(row, field.attname))
            if plan is not None:
                field.set_cached_value(row, copy.copy(plan))


def plan_catalogue_rows() -> tuple[list[PlanLimit], list[PlanFeature]]:
    """Every plan's limits (with their metric) and features, in display order."""
    return reference.cached(
        "plan-catalogue-rows",
        lambda: (
            list(PlanLimit.objects.select_related("metric")),
            list(PlanFeature.objects.order_by("display_order", "key")),
        ),
    )


def _indicators() -> QuerySet[AccountIndicator]:
    """Indicators with their metric, in display order."""
    return AccountIndicator.objects.select_related("metric").order_by("metric__display_order")


def account_indicators(account: Account) -> list[AccountIndicator]:
    """The account's indicators with their metric, in display order, as the account list prefetches them."""
    return list(_indicators().filter(account=account))


def _indicators_prefetch() -> Prefetch:
    return Prefetch("indicators", queryset=_indicators(), to_attr="indicator_list")


def _fullest_utilization() -> Subquery:
    # A subquery rather than Max() over a join: the list's filters join indicators too, and an aggregate
    # over that join would count rows twice.
    return Subquery(
        AccountIndicator.objects.filter(account=OuterRef("pk"), utilization__isnull=False)
        .order_by("-utilization")
        .values("utilization")[:1]
    )


def near_limit_filter(metric_key: str | None = None) -> Exists:
    """Accounts with an indicator at or above NEAR_LIMIT, for one metric or (None) for any."""
    indicators = AccountIndicator.objects.filter(account=OuterRef("pk"), utilization__gte=NEAR_LIMIT)
    if metric_key:
        indicators = indicators.filter(metric__key=metric_key)
    return Exists(indicators)


def account_list(*, user) -> QuerySet[Account]:
    """The accounts `user` may see, with plan, owner, indicators and the fullest metric's utilization."""
    return (
        Account.objects.visible_to(user)
        .select_related("plan", "owner")
        .prefetch_related(_indicators_prefetch())
        .annotate(fullest_utilization=_fullest_utilization())
    )


# `?sort=` keys of the account list and the ordering each stands for; "-key" sorts descending.
ACCOUNT_SORTS = {
    "name": (Lower("name"),),
    "plan": ("plan__tier_rank", Lower("name")),
    "mrr": ("mrr",),
    "usage": (F("fullest_utilization"),),
    "owner": (Lower("owner__first_name"), Lower("owner__last_name"), "owner__username"),
}
DEFAULT_SORT = "name"


def parse_sort(value: str | None, *, allowed: set[str] | None = None) -> tuple[str, bool]:
    """(`key`, `descending`) of a `?sort=` value; unknown keys fall back to the default."""
    value = (value or "").strip()
    descending = value.startswith("-")
    key = value.removeprefix("-")
    if key not in ACCOUNT_SORTS or (allowed is not None and key not in allowed):
        return DEFAULT_SORT, False
    return key, descending


def account_list_sorted(queryset: QuerySet[Account], *, key: str, descending: bool) -> QuerySet[Account]:
    """Order the list by `key`; the primary key breaks ties so pages never overlap."""
    ordering = []
    for part in ACCOUNT_SORTS[key]:
        expression = F(part) if isinstance(part, str) else part
        # Accounts without data (no plan, no indicators, no owner) go last in both directions.
        ordering.append(expression.desc(nulls_last=True) if descending else expression.asc(nulls_last=True))
    ordering.append("-pk" if descending else "pk")
    return queryset.order_by(*ordering)


@dataclass(frozen=True)
class UsageCell:
    metric: Metric
    indicator: AccountIndicator | None
    # Without a plan there is no limit, which is not the same as an unlimited plan.
    planless: bool = False


def usage_cells(account: Account, metrics: list[Metric]) -> list[UsageCell]:
    """One cell per limit metric from the prefetched indicators (None where the account has none)."""
    by_metric = {indicator.metric_id: indicator for indicator in getattr(account, "indicator_list", [])}
    planless = account.plan_id is None
    return [UsageCell(metric=metric, indicator=by_metric.get(metric.pk), planless=planless) for metric in metrics]


# --- Account page ----------------------------------------------------------------------------------------


def account_detail(*, user) -> QuerySet[Account]:
    """The queryset the account page looks an account up in: only accounts `user` may see, with their MRR
    movements. The indicators are read only where they are drawn (`account_indicators`). The plans of the
    account and of its movements are not joined: `account_with_plans` gives them from the catalogue."""
    return (
        Account.objects.visible_to(user)
        .select_related("owner")
        .prefetch_related(
            Prefetch(
                "mrr_movements",
                queryset=MrrMovement.objects.order_by("-occurred_on", "-pk"),
                to_attr="movement_list",
            ),
        )
    )


def account_with_plans(account: Account) -> Account:
    """`account`, read through `account_detail`, with its plan and its movements' plans from the catalogue."""
    attach_plans([account], "plan")
    attach_plans(account.movement_list, "plan_before", "plan_after")
    return account


def account_for_detail(*, user, pk: int) -> Account | None:
    """The account `pk` as `account_detail` reads it, with its plans, or None when `user` may not see it."""
    try:
        return account_with_plans(account_detail(user=user).get(pk=pk))
    except Account.DoesNotExist:
        return None


@dataclass(frozen=True)
class UsageSeries:
    metric: Metric
    indicator: AccountIndicator | None
    dates: list[str]
    values: list[float]
    planless: bool = False

    @property
    def limit(self) -> float | None:
        return self.indicator.limit if self.indicator else None

    def as_chart_data(self) -> dict:
        return {
            "key": self.metric.key,
            "label": self.metric.label,
            "unit": self.metric.unit,
            "limit": self.limit,
            "dates": self.dates,
            "values": self.values,
        }


def account_usage_series(account: Account, metrics: list[Metric], *, until: dt.date) -> list[UsageSeries]:
    """Per limit metric, the daily values of the USAGE_HISTORY_DAYS days up to `until`, in one query."""
    since = until - dt.timedelta(days=USAGE_HISTORY_DAYS - 1)
    points: dict[int, tuple[list[str], list[float]]] = {metric.pk: ([], []) for metric in metrics}
    rows = (
        UsageSnapshot.objects.filter(account=account, captured_on__range=(since, until), metric__in=metrics)
        .order_by("metric_id", "captured_on")
        .values_list("metric_id", "captured_on", "value")
    )
    for metric_id, captured_on, value in rows:
        dates, values = points[metric_id]
        dates.append(captured_on.isoformat())
        values.append(value)
    indicators = {indicator.metric_id: indicator for indicator in getattr(account, "indicator_list", [])}
    return [
        UsageSeries(
            metric=metric,
            indicator=indicators.get(metric.pk),
            dates=points[metric.pk][0],
            values=points[metric.pk][1],
            planless=account.plan_id is None,
        )
        for metric in metrics
    ]


@dataclass(frozen=True)
class UsageSpan:
    """What the usage charts cover. `since` is their first day with usage when that is later than the first
    of the USAGE_HISTORY_DAYS they can show (a young account, or one whose usage stopped coming in for a
    while), else None; `short_trend` says that day is inside the trend's WINDOW_DAYS, so the trend is drawn
    from fewer days."""

    since: dt.date | None
    short_trend: bool


def usage_span(series: list[UsageSeries], *, until: dt.date) -> UsageSpan:
    first = min((dt.date.fromisoformat(item.dates[0]) for item in series if item.dates), default=None)
    if first is None or first <= until - dt.timedelta(days=USAGE_HISTORY_DAYS - 1):
        return UsageSpan(since=None, short_trend=False)
    return UsageSpan(since=first, short_trend=first > indicators.window_start(until))


def mrr_history_chart_data(movements: list[MrrMovement], *, until: dt.date) -> dict:
    """The step chart of MRR after each movement, oldest first, held flat up to `until`.

    `movements` come newest first, as the page's table lists them.
    """
    ordered = list(reversed(movements))
    dates = [movement.occurred_on.isoformat() for movement in ordered]
    mrr = [float(movement.mrr_after) for movement in ordered]
    if ordered and ordered[-1].occurred_on < until:
        dates.append(until.isoformat())
        mrr.append(mrr[-1])
    return {"dates": dates, "mrr": mrr, "currency": ordered[-1].currency if ordered else ""}


# --- Home pages ------------------------------------------------------------------------------------------


def csm_book_totals(*, user) -> dict:
    """Account count and MRR of the accounts `user` owns, MRR per currency."""
    rows = list(
        Account.objects.owned_by(user)
        .values("currency")
        .annotate(accounts=Count("pk"), mrr=Sum("mrr"))
        .order_by("currency")
    )
    return {"accounts": sum(row["accounts"] for row in rows), "mrr_by_currency": rows}


def near_limit_accounts(*, user, limit: int = 10) -> QuerySet[Account]:
    """The fullest accounts of `user`'s book: some metric at or above NEAR_LIMIT, fullest first."""
    return (
        Account.objects.owned_by(user)
        .filter(near_limit_filter())
        .select_related("plan")
        .prefetch_related(
            Prefetch(
                "indicators",
                queryset=AccountIndicator.objects.filter(utilization__gte=NEAR_LIMIT)
                .select_related("metric")
                .order_by("-utilization"),
                to_attr="near_limit_indicators",
            )
        )
        .annotate(fullest_utilization=_fullest_utilization())
        .order_by(F("fullest_utilization").desc(nulls_last=True), "pk")[:limit]
    )


def near_limit_account_count(*, user) -> int:
    return Account.objects.owned_by(user).filter(near_limit_filter()).count()


def organisation_totals() -> dict:
    """Accounts and MRR over all accounts, MRR per currency."""
    rows = list(Account.objects.values("currency").annotate(accounts=Count("pk"), mrr=Sum("mrr")).order_by("currency"))
    return {"accounts": sum(row["accounts"] for row in rows), "mrr_by_currency": rows}


def accounts_per_owner() -> list[dict]:
    """Accounts and MRR per owning CSM (and unassigned), biggest book first."""
    return list(
        Account.objects.values("owner_id", "owner__username", "owner__first_name", "owner__last_name", "currency")
        .annotate(accounts=Count("pk"), mrr=Sum("mrr"), near_limit=Count("pk", filter=Q(near_limit_filter())))
        .order_by("-mrr", "owner__username")
    )


@dataclass(frozen=True)
class CatalogueRow:
    label: str
    unit: str
    cells: list


def plan_catalogue() -> dict:
    """The active plans side by side: limits per metric, features and prices (four queries)."""
    plans = list(
        Plan.objects.active()
        .order_by("tier_rank")
        .prefetch_related(
            Prefetch("limits", queryset=PlanLimit.objects.select_related("metric")),
            Prefetch("features", queryset=PlanFeature.objects.order_by("display_order", "key")),
        )
    )
    metrics = limit_metrics()
    limits = {(limit.plan_id, limit.metric_id): limit for plan in plans for limit in plan.limits.all()}
    limit_rows = [
        CatalogueRow(
            label=metric.label,
            unit=metric.unit,
            cells=[limits.get((plan.pk, metric.pk)) for plan in plans],
        )
        for metric in metrics
    ]
    feature_labels: dict[str, str] = {}
    for plan in plans:
        for feature in plan.features.all():
            feature_labels.setdefault(feature.key, feature.label)
    features = {(feature.plan_id, feature.key): feature for plan in plans for feature in plan.features.all()}
    feature_rows = [
        CatalogueRow(label=label, unit="", cells=[features.get((plan.pk, key)) for plan in plans])
        for key, label in feature_labels.items()
    ]
    return {"plans": plans, "limit_rows": limit_rows, "feature_rows": feature_rows}


def users_in_role(role: Role) -> list:
    """Active users of `role`, by name (reference data): the choices of the assign and add-a-colleague menus."""
    return reference.cached(
        f"users-in-role:{role.value}",
        lambda: list(
            get_user_model()
            .objects.filter(groups__name=role, is_active=True)
            .distinct()
            .order_by("first_name", "last_name", "username")
            .only("pk", "first_name", "last_name", "username")
        ),
    )


def csm_choices() -> list:
    """Active CSMs, by name: who may own accounts (the reassign menus)."""
    return users_in_role(Role.CSM)
