"""Reads for the pipeline dashboard: the records `opportunities.pipeline_stats` computes on, in a fixed number
of queries whatever the number of opportunities, accounts or events.

1. the opportunities of the period and segment, with their account, plan, owner and lost reason (one join);
2. when each of them first entered each stage: `Min(occurred_at)` per (opportunity, stage), grouped in SQL;
3. who wrote an event on each of them during the period: distinct (opportunity, actor) pairs;
4. the account executives on each of them (collaborators, credited on the leaderboard with the owner);
5. the CSMs the leaderboard lists.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from django.contrib.auth import get_user_model
from django.db.models import Exists, Min, OuterRef, Q, QuerySet
from django.utils import timezone

from accounts.models import Account, size_band, size_band_filter
from accounts.roles import Role
from opportunities.models import Collaborator, Opportunity, OpportunityEvent, Outcome
from opportunities.pipeline_stats import (
    SNOOZE_WINDOW_DAYS,
    PipelineOpportunity,
    PipelineStats,
    StageDates,
    pipeline_stats,
)


@dataclass(frozen=True, slots=True)
class PipelineFilters:
    """The slice of the pipeline to show; empty values do not filter.

    `owner_id` is the CSM owning the opportunity; plan, industry, company-size band (an `Account.Size`
    value such as "51-200") and region are the account's.
    """

    owner_id: int | None = None
    plan_id: int | None = None
    industry: str = ""
    size: str = ""
    region: str = ""

    def apply(self, opportunities: QuerySet[Opportunity]) -> QuerySet[Opportunity]:
        if self.owner_id is not None:
            opportunities = opportunities.filter(owner_id=self.owner_id)
        if self.plan_id is not None:
            opportunities = opportunities.filter(account__plan_id=self.plan_id)
        if self.industry:
            opportunities = opportunities.filter(account__industry=self.industry)
        if self.size:
            opportunities = opportunities.filter(account__in=Account.objects.filter(size_band_filter(self.size)))
        if self.region:
            opportunities = opportunities.filter(account__region=self.region)
        return opportunities


EVERYTHING = PipelineFilters()

RECORD_FIELDS = (
    "pk",
    "account_id",
    "account__name",
    "account__plan__name",
    "account__industry",
    "account__employees",
    "account__region",
    "owner_id",
    "owner__username",
    "owner__first_name",
    "owner__last_name",
    "stage",
    "outcome",
    "identified_at",
    "closed_at",
    "expected_mrr_delta",
    "actual_mrr_delta",
    "snoozed_until",
    "lost_reason__label",
)


def period_bounds(start: dt.date, end: dt.date) -> tuple[dt.datetime, dt.datetime]:
    """[beginning of `start`, beginning of the day after `end`) in the current time zone."""
    zone = timezone.get_current_timezone()
    return (
        dt.datetime.combine(start, dt.time.min, tzinfo=zone),
        dt.datetime.combine(end + dt.timedelta(days=1), dt.time.min, tzinfo=zone),
    )


def pipeline_opportunities(
    *, start: dt.date, end: dt.date, today: dt.date, filters: PipelineFilters = EVERYTHING
) -> QuerySet[Opportunity]:
    """The opportunities of `filters` that any figure of the period needs: open now, identified or closed
    in the period, worked in it (an event then), or snoozed until a day of the coming week."""
    since, until = period_bounds(start, end)
    events_in_period = OpportunityEvent.objects.filter(
        opportunity=OuterRef("pk"), occurred_at__gte=since, occurred_at__lt=until
    )
    return filters.apply(Opportunity.objects.all()).filter(
        Q(outcome=Outcome.OPEN)
        | Q(identified_at__gte=since, identified_at__lt=until)
        | Q(closed_at__gte=since, closed_at__lt=until)
        | Q(
            outcome=Outcome.SNOOZED,
            snoozed_until__gte=today,
            snoozed_until__lt=today + dt.timedelta(days=SNOOZE_WINDOW_DAYS),
        )
        | Exists(events_in_period)
    )


def _size_label(employees: int | None) -> str:
    band = size_band(employees)
    return Account.Size(band).label if band else ""


def _full_name(first: str | None, last: str | None, username: str | None) -> str:
    return f"{first or ''} {last or ''}".strip() or username or ""


def pipeline_records(
    *, start: dt.date, end: dt.date, today: dt.date, filters: PipelineFilters = EVERYTHING
) -> list[PipelineOpportunity]:
    """The records of `pipeline_opportunities`, with stage entries, the period's actors and the collaborators,
    in four queries.

    Datetimes come back in the current time zone, as `pipeline_stats` expects.
    """
    opportunities = pipeline_opportunities(start=start, end=end, today=today, filters=filters)
    ids = opportunities.values("pk")
    rows = list(opportunities.order_by("pk").values(*RECORD_FIELDS))
    entered: dict[int, dict[str, dt.datetime]] = {}
    for opportunity_id, stage, first in (
        OpportunityEvent.objects.filter(opportunity__in=ids)
        .exclude(to_stage="")
        .values("opportunity_id", "to_stage")
        .annotate(first=Min("occurred_at"))
        .order_by()
        .values_list("opportunity_id", "to_stage", "first")
    ):
        entered.setdefault(opportunity_id, {})[stage] = timezone.localtime(first)
    since, until = period_bounds(start, end)
    touched: dict[int, set[int]] = {}
    for opportunity_id, actor_id in (
        OpportunityEvent.objects.filter(
            opportunity__in=ids, occurred_at__gte=since, occurred_at__lt=until, actor__isnull=False
        )
        .order_by()
        .values_list("opportunity_id", "actor_id")
        .distinct()
    ):
        touched.setdefault(opportunity_id, set()).add(actor_id)
    collaborators: dict[int, list[tuple[int, str]]] = {}
    for opportunity_id, user_id, first, last, username in (
        Collaborator.objects.filter(opportunity__in=ids)
        .order_by("added_at", "pk")
        .values_list("opportunity_id", "user_id", "user__first_name", "user__last_name", "user__username")
    ):
        collaborators.setdefault(opportunity_id, []).append((user_id, _full_name(first, last, username)))
    return [
        PipelineOpportunity(
            id=row["pk"],
            account_id=row["account_id"],
            account_name=row["account__name"],
            owner_id=row["owner_id"],
            owner_name=_full_name(row["owner__first_name"], row["owner__last_name"], row["owner__username"]),
            stage=row["stage"],
            outcome=row["outcome"],
            identified_at=timezone.localtime(row["identified_at"]),
            entered=StageDates(**entered.get(row["pk"], {})),
            closed_at=timezone.localtime(row["closed_at"]) if row["closed_at"] else None,
            expected_mrr=row["expected_mrr_delta"],
            actual_mrr=row["actual_mrr_delta"],
            snoozed_until=row["snoozed_until"],
            lost_reason=row["lost_reason__label"] or "",
            plan=row["account__plan__name"] or "",
            industry=row["account__industry"],
            size_band=_size_label(row["account__employees"]),
            region=row["account__region"],
            touched_by=frozenset(touched.get(row["pk"], ())),
            collaborators=tuple(collaborators.get(row["pk"], ())),
        )
        for row in rows
    ]


def leaderboard_people(*, filters: PipelineFilters = EVERYTHING) -> dict[int, str]:
    """The CSMs the leaderboard lists (id -> name), in one query: every member of the CSM group, or only the
    chosen CSM. Owners of opportunities outside the group join them from the records."""
    users = get_user_model().objects.filter(groups__name=Role.CSM)
    if filters.owner_id is not None:
        users = get_user_model().objects.filter(pk=filters.owner_id)
    return {
        pk: _full_name(first, last, username)
        for pk, first, last, username in users.order_by().values_list("pk", "first_name", "last_name", "username")
    }


def pipeline_dashboard(
    *, start: dt.date, end: dt.date, today: dt.date, filters: PipelineFilters = EVERYTHING
) -> PipelineStats:
    """Every figure of the pipeline dashboard for `[start, end]` and `filters`, in five queries."""
    records = pipeline_records(start=start, end=end, today=today, filters=filters)
    return pipeline_stats(records, start=start, end=end, today=today, people=leaderboard_people(filters=filters))
