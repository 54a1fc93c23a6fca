"""Which plan to suggest and what it is worth: pure functions over plain plan data."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

PROJECTION_DAYS = 90
"""The suggested tier must cover the usage projected this many days out."""


@dataclass(frozen=True, slots=True)
class PlanOption:
    id: int
    rank: int
    monthly_price: Decimal
    annual_price: Decimal
    limits: dict[str, float | None]
    """Limit per metric key; None = unlimited; a metric missing from the plan counts as unlimited."""

    def mrr(self, billing_period: str) -> Decimal:
        """The plan's MRR: the monthly price, or the annual price / 12 for annual billing."""
        if billing_period == "annual":
            return (self.annual_price / 12).quantize(Decimal("0.01"))
        return self.monthly_price

    def covers(self, projected: dict[str, float | None]) -> bool:
        return all(
            value is None or self.limits.get(key) is None or value <= self.limits[key]
            for key, value in projected.items()
        )


def has_higher_tier(current_rank: int | None, plans: list[PlanOption]) -> bool:
    return any(p.rank > (current_rank or 0) for p in plans)


def suggest_target_plan(
    *, current_rank: int | None, plans: list[PlanOption], projected: dict[str, float | None]
) -> PlanOption | None:
    """The cheapest higher tier whose limits cover `projected` usage; the top tier when none does.

    None when the account is already on the highest tier.
    """
    higher = sorted((p for p in plans if p.rank > (current_rank or 0)), key=lambda p: (p.monthly_price, p.rank))
    if not higher:
        return None
    return next((p for p in higher if p.covers(projected)), max(higher, key=lambda p: p.rank))


def expected_mrr_delta(*, target: PlanOption, billing_period: str, current_mrr: Decimal) -> Decimal:
    """target MRR (on the account's billing period) − current MRR, never below zero."""
    return max(target.mrr(billing_period) - current_mrr, Decimal("0.00"))
