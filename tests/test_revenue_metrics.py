"""accounts.revenue: every revenue metric of DOMAIN.md against small books written out here, with the arithmetic."""

import datetime as dt
from decimal import Decimal

import pytest

from accounts.models import Account, MrrMovement
from accounts.revenue import FIGURE_KEYS, Movement, RevenueAccount, revenue_metrics_compute
from accounts.revenue_selectors import Segment, revenue_inputs, revenue_metrics
from tests.factories import AccountFactory, UserFactory, plan

D = Decimal
START = dt.date(2026, 1, 1)
END = dt.date(2026, 3, 31)  # 90 days
A, B, C, DD, E, F, G, H, I = range(1, 10)  # noqa: E741 (the accounts as the comments name them)


def day(text: str) -> dt.date:
    return dt.date.fromisoformat(text)


def move(account_id: int, on: str, before, after) -> Movement:
    return Movement(account_id, day(on), D(str(before)), D(str(after)))


# The book, as of the end of March 2026. MRR is monthly: C pays annually, $1,200 a year, stored as $100.
ACCOUNTS = [
    RevenueAccount(A, day("2025-01-10"), D("200")),
    RevenueAccount(B, day("2025-06-01"), D("60")),
    RevenueAccount(C, day("2024-03-01"), D("50")),
    RevenueAccount(DD, day("2026-02-01"), D("400")),
    RevenueAccount(E, day("2024-01-01"), D("50")),  # paying $50 since before any recorded movement
    RevenueAccount(F, day("2024-05-01"), D("0")),
    RevenueAccount(G, None, D("0")),  # a trial that never paid
    RevenueAccount(H, day("2025-12-01"), D("50")),
    RevenueAccount(I, day("2025-11-01"), D("45")),
]
MOVEMENTS = [
    # A: two upgrades in the period, the first one its first ever.
    move(A, "2025-01-10", 0, 100),
    move(A, "2026-01-15", 100, 150),
    move(A, "2026-02-20", 150, 200),
    # B: churns, then comes back at a lower price, both in the period.
    move(B, "2025-06-01", 0, 80),
    move(B, "2026-01-20", 80, 0),
    move(B, "2026-03-01", 0, 60),
    # C: annual plan ($960 then $1,200 a year = $80 then $100 MRR), upgraded before the period, downgraded in it.
    move(C, "2024-03-01", 0, 80),
    move(C, "2025-05-01", 80, 100),
    move(C, "2026-02-10", 100, 50),
    # D joins during the period and upgrades: not in the cohort.
    move(DD, "2026-02-01", 0, 300),
    move(DD, "2026-03-10", 300, 400),
    # F churned before the period.
    move(F, "2024-05-01", 0, 40),
    move(F, "2025-10-01", 40, 0),
    # H and I: first purchase shortly before the period, first upgrade in it.
    move(H, "2025-12-01", 0, 20),
    move(H, "2026-01-31", 20, 50),
    move(I, "2025-11-01", 0, 30),
    move(I, "2026-03-01", 30, 45),
]


def compute(start=START, end=END, accounts=ACCOUNTS, movements=MOVEMENTS):
    return revenue_metrics_compute(start=start, end=end, accounts=accounts, movements=movements)


def test_it_computes_every_metric_of_a_quarter_by_the_formulas():
    m = compute()
    # Cohort (paying at the beginning of Jan 1): A 100, B 80, C 100, E 50, H 20, I 30 -> 6 accounts, $380.
    assert m.customers_at_start == 6
    assert m.mrr_at_start == D("380.00")
    # Expansion: A (150 − 100) + (200 − 150) + H (50 − 20) + I (45 − 30) = 50 + 50 + 30 + 15 = 145, 4 upgrades.
    assert m.expansion_mrr == D("145.00")
    assert m.upgrade_count == 4
    # Reactivation: B 0 -> 60 = 60. Contraction: C 100 -> 50 = 50. Churned: B 80 -> 0 = 80.
    assert m.reactivation_mrr == D("60.00")
    assert m.contraction_mrr == D("50.00")
    assert m.churned_mrr == D("80.00")
    # NDR = (380 + 145 + 60 − 50 − 80) / 380 × 100 = 455 / 380 × 100 = 119.7368… -> 119.74;
    # the cohort's MRR at the end is the same 455: A 200 + B 60 + C 50 + E 50 + H 50 + I 45.
    assert m.ndr == D("119.74")
    assert m.cohort_mrr_at_end == D("455.00")
    # Conversion: A, H and I upgraded, 3 of 6 -> 50%.
    assert m.upgraded_customers == 3
    assert m.conversion_rate == D("50.00")
    # Average upgrade value: 145 / 4 = 36.25.
    assert m.avg_upgrade_value == D("36.25")
    # Time to upsell (first-ever upgrades in the period): A 2025-01-10 -> 2026-01-15 = 370 days,
    # H 2025-12-01 -> 2026-01-31 = 61, I 2025-11-01 -> 2026-03-01 = 120 (30 + 31 + 31 + 28).
    # Median of 61, 120, 370 = 120; mean = 551 / 3 = 183.666… -> 183.67.
    assert sorted(r.days for r in m.first_upgrade_rows) == [61, 120, 370]
    assert m.time_to_upsell_days_median == D("120.00")
    assert m.time_to_upsell_days_mean == D("183.67")
    # ARPU over every account paying at the end of Mar 31 (D included):
    # A 200 + B 60 + C 50 + D 400 + E 50 + H 50 + I 45 = 855 over 7 -> 122.142857… -> 122.14.
    assert (m.paying_at_end, m.paying_mrr_at_end) == (7, D("855.00"))
    assert m.arpu == D("122.14")
    # Monthly churn rate: 1 churned (B) / 6 / (90 / 30.4375) = 0.0563657… -> 5.64%.
    assert m.churned_customers == 1
    assert m.monthly_churn_rate == D("5.64")
    # LTV = ARPU / rate with the exact values: (855 / 7) / (1 / 6 / (90 / 30.4375)) = 2166.9697… -> 2166.97.
    assert m.ltv == D("2166.97")


def test_it_leaves_accounts_that_join_during_the_period_out_of_everything_but_arpu():
    m = compute()
    cohort = {r.account_id for r in m.cohort_rows}
    assert DD not in cohort
    # D's upgrade (300 -> 400 on Mar 10) is not expansion; D still pays at the end, so it is in ARPU.
    assert DD not in {r.account_id for r in m.upgrade_rows}
    assert DD in {r.account_id for r in m.paying_rows}


def test_it_counts_an_account_that_starts_paying_on_the_first_day_as_joining_during_the_period():
    # Bought on Jan 1: not paying at the beginning of Jan 1, before that day's movements.
    m = compute(accounts=[RevenueAccount(1, day("2026-01-01"), D("100"))], movements=[move(1, "2026-01-01", 0, 100)])
    assert m.customers_at_start == 0
    assert m.paying_at_end == 1


def test_it_counts_a_movement_on_the_first_day_in_the_period_and_one_the_day_before_in_the_start():
    accounts = [RevenueAccount(1, day("2025-01-01"), D("130"))]
    movements = [move(1, "2025-01-01", 0, 100), move(1, "2025-12-31", 100, 110), move(1, "2026-01-01", 110, 130)]
    m = compute(accounts=accounts, movements=movements)
    # MRR at start = 110 (after Dec 31, before Jan 1); expansion = 130 − 110 = 20.
    assert m.mrr_at_start == D("110.00")
    assert m.expansion_mrr == D("20.00")


def test_it_counts_a_movement_on_the_last_day():
    accounts = [RevenueAccount(1, day("2025-01-01"), D("0"))]
    m = compute(accounts=accounts, movements=[move(1, "2025-01-01", 0, 100), move(1, "2026-03-31", 100, 0)])
    # Churned on Mar 31: churned MRR 100, NDR (100 − 100) / 100 = 0%; nobody pays at the end, so no ARPU.
    assert m.churned_mrr == D("100.00")
    assert m.ndr == D("0.00")
    assert m.arpu is None and m.ltv is None


def test_it_answers_nulls_when_no_customer_pays_at_the_start():
    # Both accounts buy during the period; D also upgrades.
    accounts = [RevenueAccount(1, day("2026-02-01"), D("400")), RevenueAccount(2, day("2026-03-01"), D("100"))]
    movements = [move(1, "2026-02-01", 0, 300), move(1, "2026-03-10", 300, 400), move(2, "2026-03-01", 0, 100)]
    m = compute(accounts=accounts, movements=movements)
    # Cohort empty: 0 customers, $0; nothing counts; every ratio over the cohort is undefined.
    assert (m.customers_at_start, m.mrr_at_start) == (0, D("0.00"))
    assert (m.expansion_mrr, m.reactivation_mrr, m.contraction_mrr, m.churned_mrr) == (D("0.00"),) * 4
    assert m.ndr is None
    assert m.conversion_rate is None
    assert m.avg_upgrade_value is None
    assert m.time_to_upsell_days_median is None and m.time_to_upsell_days_mean is None
    assert m.monthly_churn_rate is None
    assert m.ltv is None
    # ARPU is over every paying account at the end: (400 + 100) / 2 = 250.
    assert m.arpu == D("250.00")


def test_it_answers_a_period_without_movements_with_zero_flows_and_full_retention():
    m = compute(start=day("2026-04-01"), end=day("2026-04-30"))
    # Cohort on Apr 1: A 200, B 60, C 50, D 400, E 50, H 50, I 45 = 855 over 7 accounts.
    assert (m.customers_at_start, m.mrr_at_start) == (7, D("855.00"))
    assert (m.expansion_mrr, m.reactivation_mrr, m.contraction_mrr, m.churned_mrr) == (D("0.00"),) * 4
    # NDR 855 / 855 = 100%; conversion 0 / 7 = 0%; churn rate 0 / 7 / (30 / 30.4375) = 0%.
    assert m.ndr == D("100.00")
    assert m.conversion_rate == D("0.00")
    assert m.monthly_churn_rate == D("0.00")
    # No upgrade: no average upgrade value, no time to upsell; no churn: no LTV. ARPU 855 / 7 = 122.14.
    assert m.avg_upgrade_value is None
    assert m.time_to_upsell_days_median is None
    assert m.ltv is None
    assert m.arpu == D("122.14")


def test_it_counts_both_upgrades_of_one_account_but_the_account_once():
    m = compute(accounts=[ACCOUNTS[0]], movements=MOVEMENTS[:3])
    # A: 100 -> 150 -> 200: expansion 50 + 50 = 100 over 2 upgrades = 50 each; 1 of 1 upgraded = 100%.
    assert m.expansion_mrr == D("100.00")
    assert m.upgrade_count == 2
    assert m.avg_upgrade_value == D("50.00")
    assert m.upgraded_customers == 1
    assert m.conversion_rate == D("100.00")
    # Time to upsell counts the first upgrade only: 370 days, median and mean.
    assert m.time_to_upsell_days_median == D("370.00")
    assert m.time_to_upsell_days_mean == D("370.00")


def test_it_leaves_an_account_whose_first_upgrade_came_before_the_period_out_of_time_to_upsell():
    # Upgraded in May 2025, then again in February: the second upgrade is expansion, but not a first upgrade.
    accounts = [RevenueAccount(1, day("2024-03-01"), D("150"))]
    movements = [move(1, "2024-03-01", 0, 80), move(1, "2025-05-01", 80, 100), move(1, "2026-02-10", 100, 150)]
    m = compute(accounts=accounts, movements=movements)
    assert m.expansion_mrr == D("50.00")
    assert m.first_upgrade_count == 0
    assert m.time_to_upsell_days_median is None and m.time_to_upsell_days_mean is None


def test_it_counts_churn_and_reactivation_of_one_account_in_the_same_period():
    m = compute(accounts=[ACCOUNTS[1]], movements=MOVEMENTS[3:6])
    # B: 80 -> 0 (churned 80) then 0 -> 60 (reactivated 60): NDR (80 − 80 + 60) / 80 = 75%.
    assert m.churned_mrr == D("80.00")
    assert m.reactivation_mrr == D("60.00")
    assert m.ndr == D("75.00")
    # It churned in the period, so it counts in the churn rate although it pays again at the end:
    # 1 / 1 / (90 / 30.4375) = 0.338194… -> 33.82%; LTV = 60 / 0.338194… = 177.41.
    assert m.monthly_churn_rate == D("33.82")
    assert m.ltv == D("177.41")


def test_it_counts_an_account_churning_twice_once_in_the_churn_rate_and_twice_in_churned_mrr():
    accounts = [RevenueAccount(1, day("2025-01-01"), D("0")), RevenueAccount(2, day("2025-01-01"), D("50"))]
    movements = [
        move(1, "2025-01-01", 0, 100),
        move(1, "2026-01-10", 100, 0),
        move(1, "2026-02-10", 0, 100),
        move(1, "2026-03-10", 100, 0),
        move(2, "2025-01-01", 0, 50),
    ]
    m = compute(accounts=accounts, movements=movements)
    # Churned MRR 100 + 100 = 200; reactivation 100; NDR (150 + 100 − 200) / 150 = 33.33%.
    assert m.churned_mrr == D("200.00")
    assert m.ndr == D("33.33")
    # Churn rate: 1 account of 2 / (90 / 30.4375) = 0.169097… -> 16.91%.
    assert m.churned_customers == 1
    assert m.monthly_churn_rate == D("16.91")


def test_it_takes_the_current_mrr_of_an_account_without_movements_and_the_first_movement_otherwise():
    accounts = [
        RevenueAccount(1, None, D("70")),  # no movement at all: $70 throughout
        RevenueAccount(2, None, D("90")),  # set to $70 without a movement, then upgraded in the period
        RevenueAccount(3, day("2026-02-15"), D("70")),  # first purchase in the period, no movement recorded
    ]
    m = compute(accounts=accounts, movements=[move(2, "2026-02-01", 70, 90)])
    # Cohort: 1 (70) and 2 (70, what its first movement started from); 3 had not bought yet.
    assert {r.account_id: r.mrr_before for r in m.cohort_rows} == {1: D("70"), 2: D("70")}
    assert m.expansion_mrr == D("20.00")
    # Account 2 has no first purchase recorded nor a movement from 0: its time to upsell is unknown.
    assert m.first_upgrade_count == 0
    # ARPU at the end: (70 + 90 + 70) / 3 = 76.67.
    assert m.arpu == D("76.67")


def test_it_refuses_a_period_that_ends_before_it_starts():
    with pytest.raises(ValueError):
        compute(start=END, end=START)


def test_it_lists_the_accounts_behind_each_figure():
    figures = {f.key: f for f in compute().figures()}
    assert list(figures) == list(FIGURE_KEYS)
    ids = {key: sorted(r.account_id for r in f.rows) for key, f in figures.items()}
    assert ids["customers_at_start"] == [A, B, C, E, H, I]
    assert ids["expansion_mrr"] == [A, A, H, I]
    assert ids["reactivation_mrr"] == [B]
    assert ids["contraction_mrr"] == [C]
    assert ids["churned_mrr"] == [B]
    assert ids["time_to_upsell_days_median"] == [A, H, I]
    assert ids["arpu"] == [A, B, C, DD, E, H, I]
    assert figures["expansion_mrr"].rows_are_movements
    assert not figures["arpu"].rows_are_movements


def test_it_gives_each_figure_a_formula_and_its_inputs():
    figures = {f.key: f for f in compute().figures()}
    ndr = figures["ndr"]
    assert ndr.formula.startswith("(MRR at start + expansion + reactivation − contraction − churned) / MRR at start")
    assert {i.label: i.value for i in ndr.inputs} == {
        "MRR at start": D("380.00"),
        "Expansion MRR": D("145.00"),
        "Reactivation MRR": D("60.00"),
        "Contraction MRR": D("50.00"),
        "Churned MRR": D("80.00"),
        "Cohort MRR at end": D("455.00"),
    }
    churn = figures["monthly_churn_rate"]
    assert {i.label: i.value for i in churn.inputs} == {
        "Cohort accounts that churned": 1,
        "Customers at start": 6,
        "Days in period": 90,
    }
    assert all(f.formula for f in figures.values())


def test_it_answers_the_api_figures_by_name():
    body = compute().as_dict()
    assert list(body) == ["start", "end", *FIGURE_KEYS]
    assert body["ndr"] == D("119.74")


# --- Loading from the database ------------------------------------------------------------------------


def _movement(account, on, before, after, kind):
    return MrrMovement.objects.create(
        account=account, occurred_on=day(on), mrr_before=D(before), mrr_after=D(after), kind=kind
    )


@pytest.mark.django_db
def test_it_loads_an_annual_plan_as_annual_price_over_twelve():
    pro = plan("Pro")
    annual = AccountFactory(plan=pro, billing_period=Account.BillingPeriod.ANNUAL, mrr=pro.annual_mrr)
    # An annual plan's MRR is stored monthly (annual price / 12): nothing divides it again.
    _movement(annual, "2025-06-01", "0", str(pro.annual_mrr), MrrMovement.Kind.NEW)

    m = revenue_metrics(start=START, end=END)

    assert m.mrr_at_start == (pro.annual_price / 12).quantize(D("0.01"))
    assert m.arpu == m.mrr_at_start


@pytest.mark.django_db
def test_it_loads_accounts_and_movements_in_two_queries_whatever_their_number(django_assert_num_queries):
    for _ in range(5):
        account = AccountFactory(mrr=D("29.00"))
        _movement(account, "2025-06-01", "0", "29", MrrMovement.Kind.NEW)
    with django_assert_num_queries(2):
        accounts, movements = revenue_inputs(segment=Segment(region="EMEA", industry="Software"))
    assert (len(accounts), len(movements)) == (5, 5)


@pytest.mark.django_db
def test_it_narrows_the_metrics_to_a_segment():
    casey = UserFactory(username="casey-segment")
    mine = AccountFactory(owner=casey, region="EMEA", employees=30, mrr=D("100"))
    other = AccountFactory(region="AMER", employees=500, mrr=D("40"))
    _movement(mine, "2025-06-01", "0", "100", MrrMovement.Kind.NEW)
    _movement(other, "2025-06-01", "0", "40", MrrMovement.Kind.NEW)
    _movement(other, "2026-02-01", "40", "60", MrrMovement.Kind.EXPANSION)

    assert revenue_metrics(start=START, end=END, segment=Segment(owner_id=casey.pk)).mrr_at_start == D("100.00")
    amer = revenue_metrics(start=START, end=END, segment=Segment(region="AMER"))
    assert (amer.mrr_at_start, amer.expansion_mrr) == (D("40.00"), D("20.00"))
    large = revenue_metrics(start=START, end=END, segment=Segment(size=Account.Size.LARGE))
    assert large.customers_at_start == 1 and large.cohort_rows[0].account_id == other.pk
    everyone = revenue_metrics(start=START, end=END)
    assert everyone.mrr_at_start == D("140.00")
