"""Reads for the revenue metrics: what `accounts.revenue` needs, in two queries whatever the number of accounts.

The API and the managers' pages call `revenue_metrics`; dashboards that filter by segment pass a `Segment`.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass

from django.db.models import QuerySet

from accounts import cohorts as cohort_math
from accounts.models import Account, MrrMovement, size_band_filter
from accounts.revenue import Movement, RevenueAccount, RevenueMetrics, revenue_metrics_compute


@dataclass(frozen=True, slots=True)
class Segment:
    """A slice of the book: accounts of one owner (CSM), current plan, industry, company size band and region.

    Empty values do not filter. The size is a band of `Account.Size` (e.g. "51-200").
    """

    owner_id: int | None = None
    plan_id: int | None = None
    industry: str = ""
    size: str = ""
    region: str = ""

    def apply(self, accounts: QuerySet[Account]) -> QuerySet[Account]:
        if self.owner_id is not None:
            accounts = accounts.filter(owner_id=self.owner_id)
        if self.plan_id is not None:
            accounts = accounts.filter(plan_id=self.plan_id)
        if self.industry:
            accounts = accounts.filter(industry=self.industry)
        if self.size:
            accounts = accounts.filter(size_band_filter(self.size))
        if self.region:
            accounts = accounts.filter(region=self.region)
        return accounts

    @property
    def is_everything(self) -> bool:
        return self == Segment()


EVERYTHING = Segment()


def revenue_inputs(*, segment: Segment = EVERYTHING) -> tuple[list[RevenueAccount], list[Movement]]:
    """The accounts of `segment` and their whole MRR history, in two queries.

    The whole history, not just the period: MRR at start and first-ever upgrades look back before it, and
    an account without a movement before a day starts from its first movement's MRR before.
    """
    accounts = segment.apply(Account.objects.all())
    account_rows = accounts.values_list("pk", "first_purchase_on", "mrr")
    movements = MrrMovement.objects.all()
    if not segment.is_everything:
        movements = movements.filter(account__in=accounts.values("pk"))
    movement_rows = movements.order_by("occurred_on", "pk").values_list(
        "account_id", "occurred_on", "mrr_before", "mrr_after"
    )
    return (
        [RevenueAccount(pk, first, mrr) for pk, first, mrr in account_rows],
        [Movement(account_id, on, before, after) for account_id, on, before, after in movement_rows],
    )


def revenue_metrics(*, start: dt.date, end: dt.date, segment: Segment = EVERYTHING) -> RevenueMetrics:
    """The revenue metrics of `[start, end]` over `segment` (two queries; see `accounts.revenue`)."""
    accounts, movements = revenue_inputs(segment=segment)
    return revenue_metrics_compute(start=start, end=end, accounts=accounts, movements=movements)


def revenue_drill_accounts(*, account_ids: Iterable[int]) -> dict[int, Account]:
    """The accounts behind a figure with their owners, by id (one query), for a drill-down list."""
    ids = list(account_ids)
    if not ids:
        return {}
    accounts = (
        Account.objects.filter(pk__in=ids)
        .select_related("owner")
        .only("pk", "name", "external_id", "currency", "owner__first_name", "owner__last_name", "owner__username")
    )
    return {account.pk: account for account in accounts}


@dataclass(frozen=True)
class RevenueOverview:
    """Everything the managers' metrics page shows for a period, from one load of the book's MRR history."""

    metrics: RevenueMetrics
    trends: list[cohort_math.MonthTrend]
    ndr: list[cohort_math.MonthNdr]
    cohorts: list[cohort_math.CohortRow]


def revenue_overview(
    *, start: dt.date, end: dt.date, segment: Segment = EVERYTHING, cohort_months: int = 12
) -> RevenueOverview:
    """The metrics of `[start, end]`, the MRR moved and the NDR of each of its months, and the cohorts of
    the `cohort_months` months of first purchases up to `end` (two queries)."""
    accounts, movements = revenue_inputs(segment=segment)
    by_account: dict[int, list[cohort_math.Movement]] = {}
    first_paid: dict[int, dt.date] = {}
    for m in movements:
        by_account.setdefault(m.account_id, []).append(cohort_math.Movement(m.on, m.mrr_before, m.mrr_after))
        if m.mrr_after > 0:
            first_paid.setdefault(m.account_id, m.on)
    histories = []
    for a in accounts:
        if a.first_purchase_on is not None:
            first_paid[a.account_id] = min(a.first_purchase_on, first_paid.get(a.account_id, a.first_purchase_on))
        histories.append(
            cohort_math.AccountHistory(
                a.account_id, first_paid.get(a.account_id), tuple(by_account.get(a.account_id, ())), a.mrr
            )
        )
    pairs = [(m.account_id, cohort_math.Movement(m.on, m.mrr_before, m.mrr_after)) for m in movements]
    return RevenueOverview(
        metrics=revenue_metrics_compute(start=start, end=end, accounts=accounts, movements=movements),
        trends=cohort_math.monthly_trends(pairs, first_paid=first_paid, start=start, end=end),
        ndr=cohort_math.ndr_by_month(histories, start=start, end=end),
        cohorts=cohort_math.cohorts(histories, as_of=end, months=cohort_months),
    )
