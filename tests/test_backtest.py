"""The rules backtest: indicators recomputed as of past month-ends, flagged accounts against the base rate."""

import dataclasses
import datetime as dt
from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from accounts.models import AccountIndicator, EngagementEvent, MrrMovement, UsageSnapshot
from playbooks.backtest import month_ends
from playbooks.backtest_selectors import rule_backtest
from playbooks.rules import RuleSpec
from tests.factories import AccountFactory, EngagementEventFactory, MrrMovementFactory, metric, plan

TODAY = dt.date(2026, 10, 15)
STORAGE_AT_80 = RuleSpec(id=0, name="Storage at 80%", weight=35, metric_key="storage_gb", min_utilization=0.8)


def days(first: dt.date, last: dt.date, step: int = 1) -> list[dt.date]:
    return [first + dt.timedelta(days=k) for k in range(0, (last - first).days + 1, step)]


def twice_a_month(first: dt.date, last: dt.date) -> list[dt.date]:
    """The 1st and the 15th of each month: series that do not report daily."""
    return [d for d in days(first, last) if d.day in (1, 15)]


def storage(account, values: dict[dt.date, float]) -> None:
    UsageSnapshot.objects.bulk_create(
        UsageSnapshot(account=account, metric=metric("storage_gb"), captured_on=day, value=value)
        for day, value in values.items()
    )


def upgrade(account, on: dt.date) -> None:
    """Basic ($29) to Pro ($99) on `on`; the account is on Pro today."""
    MrrMovementFactory(
        account=account,
        occurred_on=on,
        kind=MrrMovement.Kind.EXPANSION,
        mrr_before=Decimal("29.00"),
        mrr_after=Decimal("99.00"),
        plan_before=plan("Basic"),
        plan_after=plan("Pro"),
    )
    account.plan, account.mrr = plan("Pro"), Decimal("99.00")
    account.save()


def test_it_takes_the_last_day_of_each_of_the_six_months_before_this_one():
    assert month_ends(dt.date(2026, 3, 10)) == [
        dt.date(2025, 9, 30),
        dt.date(2025, 10, 31),
        dt.date(2025, 11, 30),
        dt.date(2025, 12, 31),
        dt.date(2026, 1, 31),
        dt.date(2026, 2, 28),
    ]


@pytest.fixture
def history(csm):
    """Five accounts on Basic (storage limit 10 GB), all paying $29 since June 2025 except Elm.

    - Alder: daily snapshots, 5 GB, then 9 GB (90%) from 15 Apr; upgraded to Pro on 10 Jun.
    - Birch: snapshots on the 1st and 15th, 4 GB, then 8.5 GB (85%) from 15 Jun; upgraded to Pro on 20 Aug.
    - Cedar: 8.2 GB (82%) throughout, never upgrades.
    - Dogwood: 2 GB (20%) throughout; upgraded to Pro on 5 May.
    - Elm: 9.5 GB (95%) throughout, but only paying from its first purchase on 10 Jul.
    """
    start, end = dt.date(2026, 3, 1), TODAY - dt.timedelta(days=1)
    alder = AccountFactory(owner=csm, name="Alder")
    storage(alder, {d: 9.0 if d >= dt.date(2026, 4, 15) else 5.0 for d in days(start, end)})
    upgrade(alder, dt.date(2026, 6, 10))
    birch = AccountFactory(owner=csm, name="Birch")
    storage(birch, {d: 8.5 if d >= dt.date(2026, 6, 15) else 4.0 for d in twice_a_month(start, end)})
    upgrade(birch, dt.date(2026, 8, 20))
    cedar = AccountFactory(owner=csm, name="Cedar")
    storage(cedar, dict.fromkeys(twice_a_month(start, end), 8.2))
    dogwood = AccountFactory(owner=csm, name="Dogwood")
    storage(dogwood, dict.fromkeys(twice_a_month(start, end), 2.0))
    upgrade(dogwood, dt.date(2026, 5, 5))
    elm = AccountFactory(owner=csm, name="Elm", first_purchase_on=dt.date(2026, 7, 10))
    storage(elm, dict.fromkeys(twice_a_month(start, end), 9.5))
    MrrMovementFactory(
        account=elm,
        occurred_on=dt.date(2026, 7, 10),
        kind=MrrMovement.Kind.NEW,
        mrr_before=Decimal("0"),
        mrr_after=Decimal("29.00"),
        plan_after=plan("Basic"),
    )


def test_it_counts_flagged_accounts_their_upgrades_and_the_base_rate_month_by_month(history):
    # Worked by hand (upgrade window: the 90 days after each month-end; plans as they were that day):
    #   30 Apr: paying A B C D; flagged A (90% of Basic's 10 GB) C (82%); upgrades by 29 Jul: A, D.
    #           -> flagged 2, upgraded 1 (A), share 1/2; base 2/4.
    #   31 May: paying A B C D; flagged A C; upgrades by 29 Aug: A, B -> 1 of 2; base 2/4.
    #   30 Jun: A is on Pro (9 of 100 GB); flagged B (8.5 GB, 15 Jun) C; upgrades by 28 Sep: B -> 1 of 2; base 1/4.
    #   31 Jul: Elm pays since 10 Jul: paying 5; flagged B C E; upgrades by 29 Oct: B -> 1 of 3; base 1/5.
    #   31 Aug: B is on Pro; flagged C E; no upgrades after -> 0 of 2; base 0/5.
    #   30 Sep: flagged C E -> 0 of 2; base 0/5; only 15 of the 90 days have passed by 15 Oct.
    months = rule_backtest(rule=STORAGE_AT_80, today=TODAY)

    assert [m.as_of for m in months] == month_ends(TODAY)
    assert [(m.paying, m.flagged, m.flagged_upgraded, m.upgraded) for m in months] == [
        (4, 2, 1, 2),
        (4, 2, 1, 2),
        (4, 2, 1, 1),
        (5, 3, 1, 1),
        (5, 2, 0, 0),
        (5, 2, 0, 0),
    ]
    assert [m.flagged_share for m in months] == [0.5, 0.5, 0.5, pytest.approx(1 / 3), 0.0, 0.0]
    assert [m.base_rate for m in months] == [0.5, 0.5, 0.25, 0.2, 0.0, 0.0]
    assert [m.lift for m in months] == [1.0, 1.0, 2.0, pytest.approx(5 / 3), None, None]
    assert [m.observed_days for m in months] == [90, 90, 90, 76, 45, 15]
    assert [m.window_complete for m in months] == [True, True, True, False, False, False]
    assert [m.measured for m in months] == [4, 4, 4, 5, 5, 5]  # every paying account has storage data


def test_it_writes_no_indicator_rows(history):
    rule_backtest(rule=STORAGE_AT_80, today=TODAY)

    assert not AccountIndicator.objects.exists()


def test_it_applies_the_rules_plan_filter_to_the_plan_of_the_day(history):
    on_pro = dataclasses.replace(STORAGE_AT_80, plan_ids=frozenset({plan("Pro").pk}))

    months = rule_backtest(rule=on_pro, today=TODAY)

    # Nobody is on Pro at 80% of its 100 GB: Alder and Birch are on Pro only with 9 and 8.5 GB.
    assert [m.flagged for m in months] == [0, 0, 0, 0, 0, 0]
    assert [m.upgraded for m in months] == [2, 2, 1, 1, 0, 0]


def test_it_counts_engagement_in_the_30_days_up_to_each_month_end(csm):
    curious = AccountFactory(owner=csm, name="Curious")
    for k, day in enumerate([dt.date(2026, 5, 10), dt.date(2026, 5, 20), dt.date(2026, 5, 31)]):
        EngagementEventFactory(
            account=curious,
            kind=EngagementEvent.Kind.LOCKED_FEATURE_HIT,
            feature="sso",
            occurred_at=dt.datetime.combine(day, dt.time(12), tzinfo=dt.UTC),
            external_id=f"hit-{k}",
        )
    locked = RuleSpec(id=0, name="3 locked hits", weight=20, min_locked_feature_hits=3)

    months = rule_backtest(rule=locked, today=TODAY)

    # All three hits fall in [2 May, 31 May]; by 30 Jun the first two are out of the window.
    assert [m.flagged for m in months] == [0, 1, 0, 0, 0, 0]
    # Events of the 60 days up to the month-end (this window and the one before) count as data.
    assert [m.measured for m in months] == [0, 1, 1, 0, 0, 0]


def _book(csm, size: int) -> None:
    for k in range(size):
        account = AccountFactory(owner=csm)
        storage(account, dict.fromkeys(twice_a_month(dt.date(2026, 3, 1), dt.date(2026, 10, 1)), 8.0 + k % 2))
        if k % 3 == 0:
            upgrade(account, dt.date(2026, 6, 1))


@pytest.mark.parametrize("size", [3, 30])
def test_it_runs_a_fixed_number_of_queries_whatever_the_number_of_accounts(csm, size):
    _book(csm, size)
    with CaptureQueriesContext(connection) as queries:
        rule_backtest(rule=STORAGE_AT_80, today=TODAY)

    # 4 up front (metrics, limits, accounts, movements), then 2 a month: window sums and, for series not
    # reporting on the month-end, their latest values.
    assert len(queries) == 4 + 2 * 6
