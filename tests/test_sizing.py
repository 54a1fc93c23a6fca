"""Which plan to suggest and its MRR delta."""

from decimal import Decimal

from opportunities.sizing import PlanOption, expected_mrr_delta, suggest_target_plan

BASIC = PlanOption(1, 1, Decimal("29"), Decimal("290"), {"seats": 5, "storage_gb": 10})
PRO = PlanOption(2, 2, Decimal("99"), Decimal("990"), {"seats": 25, "storage_gb": 100})
ENTERPRISE = PlanOption(3, 3, Decimal("299"), Decimal("2990"), {"seats": None, "storage_gb": 1024})
PLANS = [ENTERPRISE, BASIC, PRO]


def test_it_suggests_the_next_tier_when_it_covers_the_projection():
    assert suggest_target_plan(current_rank=1, plans=PLANS, projected={"seats": 12, "storage_gb": 9}) == PRO


def test_it_skips_a_tier_whose_limits_the_projection_exceeds():
    assert suggest_target_plan(current_rank=1, plans=PLANS, projected={"seats": 40}) == ENTERPRISE


def test_it_falls_back_to_the_top_tier_when_nothing_covers_the_projection():
    assert suggest_target_plan(current_rank=1, plans=PLANS, projected={"storage_gb": 5000}) == ENTERPRISE


def test_it_suggests_nothing_on_the_top_tier():
    assert suggest_target_plan(current_rank=3, plans=PLANS, projected={"seats": 1}) is None


def test_it_values_the_upgrade_on_the_accounts_billing_period():
    assert expected_mrr_delta(target=PRO, billing_period="monthly", current_mrr=Decimal("29")) == Decimal("70")
    assert expected_mrr_delta(target=PRO, billing_period="annual", current_mrr=Decimal("24.17")) == Decimal("58.33")
