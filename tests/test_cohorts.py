"""Cohorts by month of first purchase, and MRR moved per month, over histories written in the tests."""

import datetime as dt
from decimal import Decimal as D

from accounts.cohorts import AccountHistory, Movement, cohorts, monthly_trends, mrr_on, ndr_by_month

d = dt.date


def history(account_id, first, *moves, mrr=None):
    movements = tuple(Movement(on, D(before), D(after)) for on, before, after in moves)
    current = D(mrr) if mrr is not None else (movements[-1].mrr_after if movements else D(0))
    return AccountHistory(account_id, first, movements, current)


def test_mrr_in_effect_follows_the_movements_and_starts_from_the_first_ones_before():
    h = history(1, d(2026, 1, 10), (d(2026, 1, 10), 0, 100), (d(2026, 3, 5), 100, 250))

    assert mrr_on(h, d(2026, 1, 9)) == 0
    assert mrr_on(h, d(2026, 1, 10)) == 100
    assert mrr_on(h, d(2026, 3, 4)) == 100
    assert mrr_on(h, d(2026, 3, 5)) == 250


def test_a_cohort_reports_the_share_upgraded_and_the_mrr_relative_to_its_first_month():
    # January cohort: A (100, upgraded to 200 in February), B (100, churned in March), C (100, never moved).
    # Month 0 (Jan): upgraded 0/3 = 0%; MRR 300 / 300 = 100%.
    # Month 1 (Feb): upgraded 1/3 = 33.3%; MRR 200 + 100 + 100 = 400 / 300 = 133.3%.
    # Month 2 (Mar, as of 15 Mar): upgraded 1/3 = 33.3%; MRR 200 + 0 + 100 = 300 / 300 = 100%.
    a = history(1, d(2026, 1, 5), (d(2026, 1, 5), 0, 100), (d(2026, 2, 10), 100, 200))
    b = history(2, d(2026, 1, 20), (d(2026, 1, 20), 0, 100), (d(2026, 3, 1), 100, 0))
    c = history(3, d(2026, 1, 31), (d(2026, 1, 31), 0, 100))
    # February cohort: D (50), upgraded twice in March (to 80, then 120): counted once.
    # Month 0 (Feb): 0%, 50 / 50 = 100%. Month 1 (Mar): 1/1 = 100%, 120 / 50 = 240%.
    e = history(4, d(2026, 2, 14), (d(2026, 2, 14), 0, 50), (d(2026, 3, 2), 50, 80), (d(2026, 3, 9), 80, 120))

    rows = cohorts([a, b, c, e], as_of=d(2026, 3, 15), months=12)

    assert [(r.month, r.size, r.first_month_mrr) for r in rows] == [
        (d(2026, 1, 1), 3, D(300)),
        (d(2026, 2, 1), 1, D(50)),
    ]
    assert rows[0].upgraded_share == (0.0, 33.3, 33.3)
    assert rows[0].mrr_relative == (100.0, 133.3, 100.0)
    assert rows[1].upgraded_share == (0.0, 100.0)
    assert rows[1].mrr_relative == (100.0, 240.0)


def test_cohorts_leave_out_accounts_never_paid_and_months_before_the_window():
    never_paid = history(1, None)
    old = history(2, d(2024, 1, 1), (d(2024, 1, 1), 0, 10))
    recent = history(3, d(2026, 3, 1), (d(2026, 3, 1), 0, 10))

    rows = cohorts([never_paid, old, recent], as_of=d(2026, 3, 15), months=6)

    assert [r.month for r in rows] == [d(2026, 3, 1)]


def test_a_cohort_without_mrr_in_its_first_month_has_no_relative_mrr():
    # A trial that started paying only in its second month: first month MRR 0, relative undefined.
    trial = history(1, d(2026, 1, 1), (d(2026, 2, 3), 0, 40))

    row = cohorts([trial], as_of=d(2026, 2, 10))[0]

    assert row.mrr_relative == (None, None)


def test_monthly_trends_sum_each_kind_of_movement_in_its_month():
    # January: A new 100; B expansion 50 -> 80 (+30); C contraction 200 -> 150 (50).
    # February: B churn (80); A expansion 100 -> 130 (+30); C churn (150).
    # March: B back from 0 to 60 (reactivation, it paid before); nothing else. April: no movements.
    moves = [
        (1, Movement(d(2026, 1, 4), D(0), D(100))),
        (2, Movement(d(2026, 1, 9), D(50), D(80))),
        (3, Movement(d(2026, 1, 30), D(200), D(150))),
        (2, Movement(d(2026, 2, 2), D(80), D(0))),
        (1, Movement(d(2026, 2, 20), D(100), D(130))),
        (3, Movement(d(2026, 2, 27), D(150), D(0))),
        (2, Movement(d(2026, 3, 15), D(0), D(60))),
        (9, Movement(d(2025, 12, 31), D(0), D(999))),  # before the range: left out
    ]
    first_paid = {1: d(2026, 1, 4), 2: d(2025, 6, 1), 3: d(2025, 1, 1), 9: d(2025, 12, 31)}

    trend = monthly_trends(moves, first_paid=first_paid, start=d(2026, 1, 15), end=d(2026, 4, 2))

    assert [(t.month, t.new, t.expansion, t.reactivation, t.contraction, t.churn) for t in trend] == [
        (d(2026, 1, 1), D(100), D(30), D(0), D(50), D(0)),
        (d(2026, 2, 1), D(0), D(30), D(0), D(0), D(230)),
        (d(2026, 3, 1), D(0), D(0), D(60), D(0), D(0)),
        (d(2026, 4, 1), D(0), D(0), D(0), D(0), D(0)),
    ]
    assert trend[0].net == D(80)  # 100 + 30 - 50


def test_ndr_by_month_follows_the_cohort_paying_at_each_months_start():
    # A: 100 from Dec, 150 from 10 Jan, 0 from 5 Feb.  B: 200 from Dec.
    # C: joins 20 Jan at 50 (not in January's cohort).
    # January: start A 100 + B 200 = 300; end A 150 + B 200 = 350 -> 116.7%.
    # February: start A 150 + B 200 + C 50 = 400; end 0 + 200 + 50 = 250 -> 62.5%.
    # March (to 10 Mar): start B 200 + C 50 = 250 (A pays nothing); end 250 -> 100%.
    a = history(1, d(2025, 12, 1), (d(2025, 12, 1), 0, 100), (d(2026, 1, 10), 100, 150), (d(2026, 2, 5), 150, 0))
    b = history(2, d(2025, 12, 1), (d(2025, 12, 1), 0, 200))
    c = history(3, d(2026, 1, 20), (d(2026, 1, 20), 0, 50))

    months = ndr_by_month([a, b, c], start=d(2026, 1, 1), end=d(2026, 3, 10))

    assert [(m.month, m.mrr_at_start, m.mrr_at_end, m.ndr) for m in months] == [
        (d(2026, 1, 1), D(300), D(350), 116.7),
        (d(2026, 2, 1), D(400), D(250), 62.5),
        (d(2026, 3, 1), D(250), D(250), 100.0),
    ]


def test_a_month_with_nobody_paying_at_its_start_has_no_ndr():
    assert ndr_by_month([], start=d(2026, 1, 1), end=d(2026, 1, 31))[0].ndr is None
