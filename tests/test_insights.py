"""accounts.insights: lift and its interval, who is exposed and when, adoption shares and cohort cells, on
histories written in the tests (no database)."""

import datetime as dt
import math
import random
from decimal import Decimal as D

import pytest

from accounts import insights
from accounts.insights import (
    AccountSegment,
    CohortMember,
    FeatureUse,
    Move,
    Signal,
    SignalLift,
    Timeline,
    adoption,
    adoption_by_segment,
    adoption_trend,
    cohort_comparison,
    cohort_feature_shares,
    cohort_metric_medians,
    drawn_index,
    most_and_least_used,
    ranked,
    risk_ratio,
    signal_lift,
)

d = dt.date
START, LAST = d(2026, 1, 1), d(2026, 6, 30)
INDEX = d(2026, 3, 1)
REPORTS = Signal("feature:reports", "Uses reports", "feature")


def paying(account_id: int, *moves: Move, plan_id: int = 1) -> Timeline:
    """An account paying $29 since 2025 (no movement before the window), with `moves`."""
    return Timeline(account_id, plan_id, D("29"), d(2025, 1, 1), tuple(moves))


def upgrade(on: dt.date, before="29", after="99", plan_before=None, plan_after=None) -> Move:
    return Move(on, D(before), D(after), plan_before, plan_after)


# --- Lift and its interval -------------------------------------------------------------------------------


def test_the_lift_is_the_ratio_of_the_rates_with_the_katz_interval_computed_by_hand():
    lift = risk_ratio(exposed_n=30, exposed_upgraded=15, unexposed_n=60, unexposed_upgraded=10)

    # 15/30 = 50% against 10/60 = 16.7%: 3 times as often.
    assert lift.rate_exposed == 50
    assert lift.rate_unexposed == pytest.approx(16.667, abs=1e-3)
    assert lift.lift == pytest.approx(3.0)
    # SE = √(1/15 − 1/30 + 1/10 − 1/60) = √0.11667 = 0.34157; 3 · exp(∓1.95996 · 0.34157) = 1.536 and 5.860.
    assert lift.ci_low == pytest.approx(1.536, abs=5e-4)
    assert lift.ci_high == pytest.approx(5.860, abs=5e-4)
    assert lift.ci_low < lift.lift < lift.ci_high
    assert not lift.corrected


def test_the_interval_is_symmetric_around_the_lift_on_the_log_scale():
    lift = risk_ratio(exposed_n=120, exposed_upgraded=18, unexposed_n=400, unexposed_upgraded=40)

    assert lift.lift == pytest.approx(1.5)
    assert math.log(lift.lift) - math.log(lift.ci_low) == pytest.approx(math.log(lift.ci_high) - math.log(lift.lift))


def test_a_group_without_an_upgrade_adds_half_to_every_cell():
    lift = risk_ratio(exposed_n=25, exposed_upgraded=0, unexposed_n=50, unexposed_upgraded=6)

    # (0.5 / 26) / (6.5 / 51) = 0.1509, finite, with a finite interval around it.
    assert lift.corrected
    assert lift.lift == pytest.approx(0.5 / 26 / (6.5 / 51))
    assert 0 < lift.ci_low < lift.lift < lift.ci_high
    # The counts shown stay the real ones.
    assert (lift.exposed_n, lift.exposed_upgraded) == (25, 0)


def test_an_empty_group_has_no_lift():
    lift = risk_ratio(exposed_n=0, exposed_upgraded=0, unexposed_n=40, unexposed_upgraded=8)

    assert lift.lift is None and lift.ci_low is None
    assert lift.too_few_to_rank


def test_it_refuses_more_upgraded_than_accounts():
    with pytest.raises(ValueError):
        risk_ratio(exposed_n=3, exposed_upgraded=4, unexposed_n=40, unexposed_upgraded=8)


@pytest.mark.parametrize(
    ("counts", "why"),
    [
        ((19, 10, 100, 10), "19 exposed accounts (fewer than 20)"),
        ((40, 10, 19, 3), "19 unexposed accounts (fewer than 20)"),
        ((40, 2, 200, 2), "4 upgrades in all (fewer than 5)"),
    ],
)
def test_small_groups_and_rare_upgrades_are_too_few_to_rank(counts, why):
    lift = risk_ratio(
        exposed_n=counts[0], exposed_upgraded=counts[1], unexposed_n=counts[2], unexposed_upgraded=counts[3]
    )

    assert lift.too_few_to_rank
    assert lift.too_few_because == why


def test_groups_of_20_with_5_upgrades_are_enough():
    lift = risk_ratio(exposed_n=20, exposed_upgraded=4, unexposed_n=20, unexposed_upgraded=1)

    assert not lift.too_few_to_rank
    assert lift.too_few_because == ""


def test_ranking_orders_by_the_low_end_of_the_interval_and_leaves_small_groups_unranked():
    steady = SignalLift(Signal("a", "Steady", "feature"), risk_ratio(
        exposed_n=400, exposed_upgraded=80, unexposed_n=800, unexposed_upgraded=80))  # fmt: skip
    noisy = SignalLift(Signal("b", "Noisy", "feature"), risk_ratio(
        exposed_n=20, exposed_upgraded=3, unexposed_n=800, unexposed_upgraded=40))  # fmt: skip
    tiny = SignalLift(Signal("c", "Tiny", "feature"), risk_ratio(
        exposed_n=5, exposed_upgraded=5, unexposed_n=800, unexposed_upgraded=40))  # fmt: skip

    result = ranked([tiny, noisy, steady])

    # Noisy has the larger lift (3 against 2) but the lower interval (1.01 against 1.50): steady ranks first.
    assert noisy.lift.lift > steady.lift.lift and noisy.lift.ci_low < steady.lift.ci_low
    assert [(r.signal.label, r.rank) for r in result] == [("Steady", 1), ("Noisy", 2), ("Tiny", None)]


# --- Who is exposed, when, and what follows ----------------------------------------------------------------


def test_a_feature_whose_adopters_upgraded_three_times_as_often_has_a_lift_of_3():
    # 30 adopters first used it on Mar 1: 15 upgraded within 90 days, 3 more on day 91 (too late), 2 on the
    # index day itself (not after it). 60 others: 10 upgraded within 90 days of their (drawn) Mar 1 index date,
    # 5 before it.
    adopters = [paying(i, upgrade(INDEX + dt.timedelta(days=30))) for i in range(15)]
    adopters += [paying(i, upgrade(INDEX + dt.timedelta(days=91))) for i in range(15, 18)]
    adopters += [paying(i, upgrade(INDEX)) for i in range(18, 20)]
    adopters += [paying(i) for i in range(20, 30)]
    others = [paying(100 + i, upgrade(INDEX + dt.timedelta(days=60))) for i in range(10)]
    others += [paying(110 + i, upgrade(INDEX - dt.timedelta(days=20))) for i in range(5)]
    others += [paying(120 + i) for i in range(45)]
    first_seen = {t.account_id: INDEX for t in adopters}

    lift = signal_lift(REPORTS, first_seen=first_seen, timelines=adopters + others, start=START, last=LAST)

    assert (lift.exposed_n, lift.exposed_upgraded, lift.unexposed_n, lift.unexposed_upgraded) == (30, 15, 60, 10)
    assert lift.lift == pytest.approx(3.0)
    assert not lift.too_few_to_rank


def test_a_feature_without_effect_has_a_lift_near_1():
    rng = random.Random(7)
    timelines, first_seen = [], {}
    for account_id in range(600):
        day = START + dt.timedelta(days=rng.randrange(120))
        if rng.random() < 0.4:
            first_seen[account_id] = day
        # Whether it uses the feature or not, a 20% chance of an upgrade some day of the year.
        moves = (upgrade(START + dt.timedelta(days=rng.randrange(300))),) if rng.random() < 0.2 else ()
        timelines.append(paying(account_id, *moves))

    lift = signal_lift(REPORTS, first_seen=first_seen, timelines=timelines, start=START, last=LAST)

    assert lift.exposed_n + lift.unexposed_n == 600
    assert 0.6 < lift.lift < 1.6
    assert lift.ci_low < 1 < lift.ci_high


def test_unexposed_accounts_start_on_the_exposed_accounts_index_dates_not_the_window_start():
    # Exposed on Jun 1; an unexposed account that upgraded in February is not credited with that upgrade:
    # its follow-up starts on one of the exposed index dates, like theirs.
    exposed = [paying(i) for i in range(20)]
    early_upgrader = paying(99, upgrade(d(2026, 2, 10)))
    first_seen = {t.account_id: d(2026, 6, 1) for t in exposed}

    lift = signal_lift(REPORTS, first_seen=first_seen, timelines=[*exposed, early_upgrader], start=START, last=LAST)

    assert (lift.unexposed_n, lift.unexposed_upgraded) == (1, 0)


def test_the_drawn_index_date_is_one_of_the_exposed_dates_and_always_the_same():
    days = [d(2026, 2, 1), d(2026, 3, 15), d(2026, 5, 2)]

    drawn = {drawn_index("feature:reports", account_id, days) for account_id in range(200)}

    assert drawn == set(days)
    assert drawn_index("feature:reports", 42, days) == drawn_index("feature:reports", 42, days)


def test_an_account_not_paying_on_its_index_date_is_in_neither_group():
    # Bought on Apr 1, first used the feature on Mar 1 during its trial.
    trialist = Timeline(1, 1, D("29"), d(2026, 4, 1), (Move(d(2026, 4, 1), D("0"), D("29"), None, 1),))
    # Churned in December, before the window: not paying on any index date.
    churned = Timeline(2, None, D("0"), d(2025, 1, 1), (Move(d(2025, 12, 1), D("29"), D("0"), 1, None),))

    lift = signal_lift(REPORTS, first_seen={1: INDEX}, timelines=[trialist, churned], start=START, last=LAST)

    assert (lift.exposed_n, lift.unexposed_n) == (0, 0)


def test_a_plan_filter_counts_an_account_on_the_plan_it_had_on_its_index_date():
    # On Basic (1) when it used the feature, upgraded to Pro (2) after: counted, and upgraded, among Basic.
    upgraded = paying(1, upgrade(d(2026, 4, 1), plan_before=1, plan_after=2), plan_id=2)
    pro_all_along = paying(2, plan_id=2)

    basic = signal_lift(
        REPORTS, first_seen={1: INDEX, 2: INDEX}, timelines=[upgraded, pro_all_along], start=START, last=LAST, plan_id=1
    )

    assert (basic.exposed_n, basic.exposed_upgraded) == (1, 1)


def test_first_days_outside_the_window_do_not_expose():
    timeline = paying(1, upgrade(d(2026, 8, 1)))

    lift = signal_lift(REPORTS, first_seen={1: d(2026, 7, 15)}, timelines=[timeline], start=START, last=LAST)

    assert lift.exposed_n == 0


def test_the_follow_up_leaves_out_the_last_90_days():
    assert insights.follow_up_last_day(end=d(2026, 11, 30), today=d(2026, 11, 30)) == d(2026, 9, 1)
    assert insights.follow_up_last_day(end=d(2026, 6, 30), today=d(2026, 11, 30)) == d(2026, 6, 30)


def test_a_timeline_knows_the_mrr_and_plan_in_effect_before_a_day():
    t = Timeline(
        1,
        3,
        D("99"),
        d(2026, 1, 10),
        (Move(d(2026, 1, 10), D("0"), D("29"), None, 1), Move(d(2026, 3, 5), D("29"), D("99"), 1, 2)),
    )

    assert t.mrr_at_beginning_of(d(2026, 1, 10)) == 0
    assert t.mrr_at_beginning_of(d(2026, 1, 11)) == 29
    assert t.mrr_at_beginning_of(d(2026, 3, 5)) == 29
    assert t.mrr_at_beginning_of(d(2026, 3, 6)) == 99
    # Before its first purchase no movement records a plan: the account's own; after, the last movement's.
    assert t.plan_at_beginning_of(d(2026, 1, 1)) == 3
    assert t.plan_at_beginning_of(d(2026, 3, 5)) == 1
    assert t.plan_at_end_of(d(2026, 3, 5)) == 2
    assert t.upgraded_within(d(2026, 3, 4), days=1) and not t.upgraded_within(d(2026, 3, 5))


def test_login_bands_are_counted_in_logins_a_month():
    assert [insights.logins_in_month_for(band) for band in (1, 5, 10)] == [5, 22, 44]
    assert insights.login_signal(5).rule == {"min_logins_per_week": 5}
    assert insights.limit_signal("seats", "Seats").rule == {"metric": "seats", "min_utilization": 100}


# --- Adoption ----------------------------------------------------------------------------------------------


def test_adoption_is_the_share_of_active_accounts_and_depth_is_events_per_user():
    uses = [
        FeatureUse(1, "reports", events=10, users=2),
        FeatureUse(2, "reports", events=2, users=1),
        FeatureUse(1, "sso", events=1, users=1),
        FeatureUse(9, "sso", events=50, users=5),  # not active in the slice: left out
    ]

    rows = {a.feature: a for a in adoption(uses, active=[1, 2, 3, 4], features=["exports"])}

    assert (rows["reports"].using, rows["reports"].active, rows["reports"].share) == (2, 4, 50.0)
    assert rows["reports"].depth == 4.0  # 12 events / 3 users
    assert (rows["sso"].share, rows["sso"].depth) == (25.0, 1.0)
    assert (rows["exports"].share, rows["exports"].depth) == (0.0, None)


def test_adoption_by_segment_divides_by_each_segments_active_accounts():
    segments = {
        1: AccountSegment(1, "Basic", "Retail", "11–50", "EMEA"),
        2: AccountSegment(2, "Basic", "Retail", "11–50", "EMEA"),
        3: AccountSegment(3, "Pro", "Retail", "11–50", "APAC"),
        4: AccountSegment(4, "Pro", "Retail", "11–50", "APAC"),
        5: AccountSegment(5, "Pro", "Retail", "11–50", "APAC"),
    }
    uses = [FeatureUse(1, "reports", 3, 1), FeatureUse(3, "reports", 1, 1), FeatureUse(4, "reports", 1, 1)]

    rows = adoption_by_segment(
        uses, segments=segments, active=segments, dimension="plan", features=["reports"], order=["Basic", "Pro"]
    )

    assert [(r.value, r.active, r.features["reports"].share) for r in rows] == [
        ("Basic", 2, 50.0),
        ("Pro", 3, pytest.approx(66.667, abs=1e-3)),
    ]


def test_the_most_and_least_used_features_never_overlap_and_leave_out_unused_ones():
    segments = {i: AccountSegment(i, "Basic", "", "", "") for i in range(1, 11)}
    uses = [
        FeatureUse(i, f, 1, 1) for f, n in (("a", 9), ("b", 7), ("c", 5), ("d", 3), ("e", 1)) for i in range(1, n + 1)
    ]
    [row] = adoption_by_segment(
        uses, segments=segments, active=segments, dimension="plan", features=["a", "b", "c", "d", "e", "sso"]
    )

    most, least = most_and_least_used(row, count=3)

    assert [a.feature for a in most] == ["a", "b", "c"]
    # sso: nobody on the plan used it (0%), not a least-used feature.
    assert [a.feature for a in least] == ["e", "d"]


def test_the_trend_divides_each_month_by_that_months_active_accounts():
    months = [d(2026, 1, 1), d(2026, 2, 1), d(2026, 3, 1)]

    trend = adoption_trend(
        months=months,
        active_by_month={months[0]: 10, months[1]: 4},
        using_by_month={("reports", months[0]): 5, ("reports", months[1]): 3},
        features=["reports"],
    )

    assert trend == {"reports": [50.0, 75.0, None]}


# --- Cohorts -----------------------------------------------------------------------------------------------


def test_cohort_cells_are_the_share_of_accounts_that_reached_the_month_and_used_the_feature():
    today = d(2026, 4, 15)
    members = [
        CohortMember(1, "2026-01", d(2026, 1, 5)),
        CohortMember(2, "2026-01", d(2026, 1, 20)),
        CohortMember(3, "2026-01", d(2026, 1, 31)),
        CohortMember(4, "2026-03", d(2026, 3, 2)),
    ]
    # January: month 0 (Jan) 1 of 3, month 1 (Feb) 2 of 3, month 3 (Apr) 3 of 3. March: month 1 (Apr) 1 of 1.
    used = {(1, d(2026, 1, 1)), (1, d(2026, 2, 1)), (2, d(2026, 2, 1))}
    used |= {(1, d(2026, 4, 1)), (2, d(2026, 4, 1)), (3, d(2026, 4, 1)), (4, d(2026, 4, 1))}

    rows = cohort_feature_shares(
        members, used=used, today=today, labels={"2026-01": "Jan 2026"}, order=["2026-01", "2026-03"]
    )

    january, march = rows
    assert (january.label, january.size, january.measured) == ("Jan 2026", 3, (3, 3, 3, 3))
    assert january.values == (pytest.approx(33.333, abs=1e-3), pytest.approx(66.667, abs=1e-3), 0.0, 100.0)
    assert (march.size, march.values) == (1, (0.0, 100.0))


def test_cohort_metric_cells_are_the_median_utilization_of_the_accounts_measured():
    members = [CohortMember(i, "plan-1", d(2026, 1, 10)) for i in (1, 2, 3)]
    utilization = {(1, d(2026, 1, 1)): 0.2, (2, d(2026, 1, 1)): 0.6, (3, d(2026, 1, 1)): 0.9, (1, d(2026, 2, 1)): 1.1}

    [row] = cohort_metric_medians(
        members, utilization=utilization, today=d(2026, 2, 10), labels={"plan-1": "Basic"}, order=["plan-1"]
    )

    assert row.values == (pytest.approx(60.0), pytest.approx(110.0))
    assert row.measured == (3, 1)


def test_comparing_two_cohorts_gives_the_difference_in_points():
    a = insights.CohortRow("a", "Jan 2026", 3, (10.0, 20.0, 30.0), (3, 3, 3))
    b = insights.CohortRow("b", "Mar 2026", 2, (15.0, 5.0), (2, 2))

    months = cohort_comparison(a, b)

    assert [(m.month, m.difference) for m in months] == [(0, 5.0), (1, -15.0), (2, None)]
