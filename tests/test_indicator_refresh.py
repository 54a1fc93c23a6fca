"""The set-based refresh: same numbers as the pure math, a fixed number of queries, on any backend."""

import datetime as dt
import random

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from accounts import indicators as ind
from accounts.models import AccountEngagement, AccountIndicator, EngagementEvent, UsageSnapshot
from accounts.services import account_indicators_refresh
from tests.factories import AccountFactory, metric, plan

AS_OF = dt.date(2026, 11, 20)


def usage(account, key, values, end=AS_OF, step=1):
    """Daily snapshots of one metric ending on `end`, the last value on `end`."""
    m = metric(key)
    UsageSnapshot.objects.bulk_create(
        UsageSnapshot(
            account=account, metric=m, value=v, captured_on=end - dt.timedelta(days=(len(values) - 1 - i) * step)
        )
        for i, v in enumerate(values)
    )


def indicator(account, key):
    return AccountIndicator.objects.get(account=account, metric=metric(key))


def test_it_stores_the_indicators_of_a_growing_account(account):
    usage(account, "storage_gb", [2 + 0.25 * i for i in range(40)])  # Basic includes 10 GB; 11.75 GB on AS_OF

    account_indicators_refresh(as_of=AS_OF)

    row = indicator(account, "storage_gb")
    assert row.latest == pytest.approx(11.75)
    assert row.limit == 10
    assert row.utilization == pytest.approx(1.175)
    assert row.slope_per_day == pytest.approx(0.25)
    assert row.days_to_limit == 0
    assert row.projected_limit_on == AS_OF
    assert row.points == 30


def test_it_projects_the_crossing_date_from_the_window_only(account):
    # Flat at 1 for 60 days, then 1 seat a day growth over the 30-day window: 1 → 4 ... Basic has 5 seats.
    values = [1.0] * 60 + [1.0 + i * 0.1 for i in range(30)]
    usage(account, "seats", values)

    account_indicators_refresh(as_of=AS_OF)

    row = indicator(account, "seats")
    assert row.slope_per_day == pytest.approx(0.1)
    assert row.days_to_limit == pytest.approx((5 - 3.9) / 0.1)
    assert row.projected_limit_on == AS_OF + dt.timedelta(days=11)


def test_it_ignores_snapshots_after_as_of(account):
    usage(account, "projects", [5] * 30)
    usage(account, "projects", [9], end=AS_OF + dt.timedelta(days=3))

    account_indicators_refresh(as_of=AS_OF)

    assert indicator(account, "projects").latest == 5


def test_it_keeps_the_latest_value_of_a_series_silent_for_the_whole_window(account):
    usage(account, "integrations", [2, 2, 3], end=AS_OF - dt.timedelta(days=45))

    account_indicators_refresh(as_of=AS_OF)

    row = indicator(account, "integrations")
    assert row.latest == 3
    assert row.latest_on == AS_OF - dt.timedelta(days=45)
    assert row.slope_per_day is None
    assert row.points == 0


def test_it_leaves_unlimited_metrics_without_utilization(csm):
    account = AccountFactory(owner=csm, plan=plan("Enterprise"))
    usage(account, "seats", [100 + i for i in range(30)])

    account_indicators_refresh(as_of=AS_OF)

    row = indicator(account, "seats")
    assert row.limit is None
    assert row.utilization is None
    assert row.projected_limit_on is None
    assert row.slope_per_day == pytest.approx(1.0)


def test_it_upserts_rather_than_duplicating_rows(account):
    usage(account, "seats", [3] * 10)

    account_indicators_refresh(as_of=AS_OF)
    account_indicators_refresh(as_of=AS_OF)

    assert AccountIndicator.objects.filter(account=account).count() == 5


def test_it_matches_the_pure_math_on_random_series_with_gaps_and_backfills(csm):
    """Equality of the SQL sums with the Python reference, whichever database runs the suite."""
    rng = random.Random(7)
    accounts = [AccountFactory(owner=csm, plan=plan(rng.choice(["Basic", "Pro"]))) for _ in range(12)]
    expected = {}
    rows = []
    for account in accounts:
        for key in ("seats", "storage_gb", "api_calls"):
            days = sorted(rng.sample(range(0, 45), rng.randint(3, 40)), reverse=True)
            base, slope = rng.uniform(0, 80), rng.uniform(-2, 5)
            points = [
                (AS_OF - dt.timedelta(days=d), max(0.0, round(base + slope * (45 - d) + rng.gauss(0, 3), 2)))
                for d in days
            ]
            rng.shuffle(points)  # arrive out of date order, as backfills do
            rows += [UsageSnapshot(account=account, metric=metric(key), value=v, captured_on=day) for day, v in points]
            window = [((day - AS_OF).days, v) for day, v in points if ind.window_start(AS_OF) <= day <= AS_OF]
            latest = max(points)[1]
            limit = {
                "Basic": {"seats": 5, "storage_gb": 10, "api_calls": 10000},
                "Pro": {"seats": 25, "storage_gb": 100, "api_calls": 100000},
            }[account.plan.name][key]
            expected[(account.pk, key)] = ind.limit_indicator(
                as_of=AS_OF, latest=latest, limit=limit, sums=ind.Sums.of(window)
            )
    UsageSnapshot.objects.bulk_create(rows)

    account_indicators_refresh(as_of=AS_OF, chunk_size=5)

    for (account_id, key), want in expected.items():
        got = AccountIndicator.objects.get(account_id=account_id, metric__key=key)
        assert got.points == want.points
        assert got.latest == pytest.approx(want.latest)
        assert got.utilization == pytest.approx(want.utilization)
        if want.slope_per_day is None:
            assert got.slope_per_day is None
        else:
            assert got.slope_per_day == pytest.approx(want.slope_per_day, rel=1e-9, abs=1e-9)
        assert got.projected_limit_on == want.projected_limit_on
        assert got.projected_earliest_on == want.projected_earliest_on
        assert got.projected_latest_on == want.projected_latest_on


def count_queries(**kwargs):
    with CaptureQueriesContext(connection) as ctx:
        account_indicators_refresh(as_of=AS_OF, **kwargs)
    return len(ctx.captured_queries)


def test_it_runs_a_fixed_number_of_queries_per_chunk_whatever_its_size(csm):
    def seed(n):
        for _ in range(n):
            a = AccountFactory(owner=csm)
            usage(a, "seats", [1, 2, 3, 4, 5, 6, 7, 8])

    seed(3)
    small = count_queries(chunk_size=100)
    seed(30)
    large = count_queries(chunk_size=100)

    assert small == large


def test_it_counts_engagement_in_this_window_and_the_previous_one(account):
    def event(kind, days_ago, user="u1", feature=""):
        EngagementEvent.objects.create(
            account=account,
            kind=kind,
            user_ref=user,
            feature=feature,
            occurred_at=dt.datetime.combine(AS_OF - dt.timedelta(days=days_ago), dt.time(12), tzinfo=dt.UTC),
            external_id=f"e-{kind}-{days_ago}-{user}-{feature}",
        )

    for d in range(0, 30, 2):  # 15 logins in the window
        event("login", d, user=f"u{d % 3}")
    for d in range(30, 60, 6):  # 5 logins in the previous window
        event("login", d)
    event("feature_used", 1, feature="reports")
    event("feature_used", 2, feature="exports")
    for d in range(6):
        event("locked_feature_hit", d, feature="sso")
    usage(account, "seats", [4] * 10)

    account_indicators_refresh(as_of=AS_OF)

    e = AccountEngagement.objects.get(account=account)
    assert e.logins_per_week == pytest.approx(15 / 30 * 7)
    assert e.logins_per_week_prev == pytest.approx(5 / 30 * 7)
    assert e.active_users == 3
    assert e.active_users_per_seat == pytest.approx(3 / 4)
    assert e.features_used == 2
    assert e.locked_feature_hits == 6
    assert e.locked_feature_hits_prev == 0


@pytest.mark.parametrize("days_back", [1, 4])
def test_it_takes_the_latest_value_of_a_series_that_stopped_reporting_a_few_days_ago(account, days_back):
    usage(account, "seats", [1, 2, 3, 4, 5, 6, 7, 8, 9, 3], end=AS_OF - dt.timedelta(days=days_back))

    account_indicators_refresh(as_of=AS_OF)

    row = indicator(account, "seats")
    assert row.latest == 3
    assert row.latest_on == AS_OF - dt.timedelta(days=days_back)
