"""The math of A/B tests on plays: deterministic assignment and the statistics of the results page.

Pure functions (numbers in, numbers out; no database, no clock). Conventions:

- An arm is the control group (variant id None: the play does nothing for these accounts) or a variant.
- A conversion rate is x / n: x accounts of the arm converted out of the n assigned to it.
- Confidence is 95% and tests are two-sided.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Hashable, Sequence
from dataclasses import dataclass
from statistics import NormalDist

ALPHA = 0.05
# z such that P(|Z| < z) = 0.95 for a standard normal Z: 1.959963984540054.
Z_95 = NormalDist().inv_cdf(1 - ALPHA / 2)
_HASH_SPAN = 2**64


def assignment_point(*, experiment_id: int, account_id: int) -> float:
    """The account's fixed point in [0, 1) for this experiment.

    u = first 8 bytes of SHA-256("{experiment_id}:{account_id}") read as a big-endian integer / 2^64.
    SHA-256 spreads consecutive ids uniformly, and the experiment id in the key keeps two experiments from
    holding out the same accounts.
    """
    digest = hashlib.sha256(f"{experiment_id}:{account_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / _HASH_SPAN


def assign_arm[V: Hashable](
    *, experiment_id: int, account_id: int, control_share: float, variants: Sequence[tuple[V, int]]
) -> V | None:
    """The arm of an account: None for the control group, else a variant id. The same inputs give the same arm.

    With u = assignment_point(...): u < control_share -> control. Otherwise the rest of the unit interval is
    cut among the variants, in order of variant id, in proportion to their weights: the variant i is the one
    with  W_(i-1) <= (u - control_share) / (1 - control_share) * W < W_i,  where W_i is the cumulative weight
    of the first i variants and W the total. So P(control) = control_share and
    P(variant i) = (1 - control_share) * w_i / W.
    """
    if not 0 <= control_share < 1:
        raise ValueError("control_share must be in [0, 1).")
    if not variants:
        raise ValueError("An experiment needs at least one variant.")
    if any(weight < 1 for _, weight in variants):
        raise ValueError("Variant weights must be positive.")
    u = assignment_point(experiment_id=experiment_id, account_id=account_id)
    if u < control_share:
        return None
    ordered = sorted(variants, key=lambda pair: pair[0])
    total = sum(weight for _, weight in ordered)
    position = (u - control_share) / (1 - control_share) * total
    cumulative = 0
    for variant_id, weight in ordered:
        cumulative += weight
        if position < cumulative:
            return variant_id
    return ordered[-1][0]  # position == total only through floating-point rounding


def rate(conversions: int, n: int) -> float | None:
    """Conversion rate p̂ = x / n; None for an empty arm."""
    return conversions / n if n else None


def wilson_interval(conversions: int, n: int, *, z: float = Z_95) -> tuple[float, float] | None:
    """The Wilson score interval for a proportion (95% by default); None for an empty arm.

    With p̂ = x / n:
        centre = (p̂ + z²/(2n)) / (1 + z²/n)
        half   = z / (1 + z²/n) · √( p̂(1 − p̂)/n + z²/(4n²) )
        interval = [centre − half, centre + half]
    Unlike p̂ ± z·√(p̂(1−p̂)/n) it stays inside [0, 1] and does not collapse to a point at 0 or n conversions.
    """
    if n <= 0:
        return None
    if not 0 <= conversions <= n:
        raise ValueError("conversions must be between 0 and n.")
    p = conversions / n
    z2 = z * z
    denominator = 1 + z2 / n
    centre = (p + z2 / (2 * n)) / denominator
    half = z / denominator * math.sqrt(p * (1 - p) / n + z2 / (4 * n * n))
    return max(0.0, centre - half), min(1.0, centre + half)


def two_proportion_p_value(x1: int, n1: int, x2: int, n2: int) -> float | None:
    """Two-sided p-value of the pooled two-proportion z-test of H0: p1 = p2; None when an arm is empty.

        p̂1 = x1/n1,  p̂2 = x2/n2,  pooled p̂ = (x1 + x2) / (n1 + n2)
        SE = √( p̂(1 − p̂) · (1/n1 + 1/n2) ),   z = (p̂1 − p̂2) / SE
        p-value = P(|Z| ≥ |z|) = erfc(|z| / √2)
    When SE = 0 (no conversions at all, or every account converted) the two rates are equal: p-value 1.
    The normal approximation is rough when an arm has fewer than about 5 conversions or non-conversions.
    """
    if n1 <= 0 or n2 <= 0:
        return None
    pooled = (x1 + x2) / (n1 + n2)
    se = math.sqrt(pooled * (1 - pooled) * (1 / n1 + 1 / n2))
    if se == 0:
        return 1.0
    z = (x1 / n1 - x2 / n2) / se
    return math.erfc(abs(z) / math.sqrt(2))


def lift(rate_variant: float | None, rate_control: float | None) -> float | None:
    """Relative lift over control: (rate_variant − rate_control) / rate_control (0.25 = +25%).

    None when either rate is unknown or the control rate is 0 (the ratio has no finite value).
    """
    if rate_variant is None or rate_control is None or rate_control == 0:
        return None
    return (rate_variant - rate_control) / rate_control


def sample_size_per_arm(p_control: float, p_variant: float, *, alpha: float = ALPHA, power: float = 0.8) -> int | None:
    """Accounts needed in each arm to detect p_variant against p_control (two-sided test at `alpha`).

        n = (z_(1−α/2) + z_power)² · (p_c(1 − p_c) + p_v(1 − p_v)) / (p_v − p_c)²,  rounded up
    None when the two rates are equal (no sample is large enough to tell them apart).
    """
    if p_control == p_variant:
        return None
    normal = NormalDist()
    z = normal.inv_cdf(1 - alpha / 2) + normal.inv_cdf(power)
    variance = p_control * (1 - p_control) + p_variant * (1 - p_variant)
    return math.ceil(z * z * variance / (p_variant - p_control) ** 2)


@dataclass(frozen=True, slots=True)
class ArmComparison:
    """One variant against control: what the winner rule reads."""

    variant_id: Hashable
    conversions: int
    n: int
    p_value: float | None


@dataclass(frozen=True, slots=True)
class Verdict:
    winner: Hashable | None
    alpha: float  # the per-comparison level after the Bonferroni correction
    comparisons: int


def corrected_alpha(comparisons: int, *, alpha: float = ALPHA) -> float:
    """Bonferroni: with k variants each compared with control, each test is run at α / k, so the chance of
    declaring any false winner stays at most α overall."""
    return alpha / max(1, comparisons)


def pick_winner(*, control_conversions: int, control_n: int, variants: Sequence[ArmComparison]) -> Verdict:
    """The winning variant, or None when no variant beats control significantly.

    A variant wins when its p-value against control is below α / k (Bonferroni over the k variants, α = 0.05)
    and its rate is above control's: a positive lift, or, when control converted nobody (lift undefined),
    any conversions at all. When several qualify, the highest rate wins (then the lowest p-value).
    """
    level = corrected_alpha(len(variants))
    control_rate = rate(control_conversions, control_n)
    qualified = [
        v
        for v in variants
        if v.p_value is not None
        and v.p_value < level
        and control_rate is not None
        and rate(v.conversions, v.n) is not None
        and rate(v.conversions, v.n) > control_rate
    ]
    if not qualified:
        return Verdict(winner=None, alpha=level, comparisons=len(variants))
    best = max(qualified, key=lambda v: (v.conversions / v.n, -v.p_value))
    return Verdict(winner=best.variant_id, alpha=level, comparisons=len(variants))
