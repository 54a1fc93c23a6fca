"""The math of A/B tests: assignment, Wilson intervals, the two-proportion z-test, lift and the winner rule.

Expected values are worked out by hand in the comments (z = 1.96 where the test passes it explicitly).
"""

import math
from collections import Counter

import pytest

from playbooks.experiments import (
    Z_95,
    ArmComparison,
    assign_arm,
    assignment_point,
    corrected_alpha,
    lift,
    pick_winner,
    sample_size_per_arm,
    two_proportion_p_value,
    wilson_interval,
)

TWO_EQUAL = [(1, 1), (2, 1)]


def test_it_uses_the_normal_quantile_for_95_percent():
    assert round(Z_95, 6) == 1.959964


def test_it_computes_the_wilson_interval_of_half_the_accounts_converting():
    # x = 50, n = 100, p̂ = 0.5, z² = 3.8416, z²/n = 0.038416, denominator = 1.038416
    # centre = (0.5 + 3.8416/200) / 1.038416 = 0.519208 / 1.038416 = 0.5
    # half = 1.96 / 1.038416 · √(0.25/100 + 3.8416/40000) = 1.887490 · √0.00259604 = 1.887490 · 0.0509513
    #      = 0.0961702  ->  [0.4038298, 0.5961702]
    low, high = wilson_interval(50, 100, z=1.96)
    assert low == pytest.approx(0.4038298, abs=1e-6)
    assert high == pytest.approx(0.5961702, abs=1e-6)


def test_it_computes_an_asymmetric_wilson_interval_for_a_low_rate():
    # x = 8, n = 40, p̂ = 0.2, z²/n = 0.09604, denominator = 1.09604
    # centre = (0.2 + 0.04802) / 1.09604 = 0.226288
    # half = 1.96 / 1.09604 · √(0.2·0.8/40 + 3.8416/6400) = 1.788256 · √0.00460025 = 1.788256 · 0.0678252 = 0.121289
    # -> [0.104999, 0.347577]: not centred on 0.2, unlike the normal approximation
    low, high = wilson_interval(8, 40, z=1.96)
    assert low == pytest.approx(0.104999, abs=1e-5)
    assert high == pytest.approx(0.347576, abs=1e-5)


def test_it_keeps_a_wilson_interval_above_zero_width_when_nobody_converted():
    # x = 0, n = 10: centre = (3.8416/20) / 1.38416 = 0.138770; half = 1.96/1.38416 · √(3.8416/400)
    # = 1.416021 · 0.098 = 0.138770 -> [0, 0.277540]
    low, high = wilson_interval(0, 10, z=1.96)
    assert low == pytest.approx(0.0, abs=1e-12)
    assert high == pytest.approx(0.277540, abs=1e-6)


def test_it_has_no_interval_for_an_empty_arm():
    assert wilson_interval(0, 0) is None


def test_it_computes_the_two_sided_p_value_of_the_pooled_z_test():
    # 60/200 = 0.30 against 40/200 = 0.20; pooled p̂ = 100/400 = 0.25
    # SE = √(0.25 · 0.75 · (1/200 + 1/200)) = √0.001875 = 0.0433013; z = 0.10 / 0.0433013 = 2.309401
    # p = erfc(2.309401 / √2) = erfc(1.632993) = 0.0209213
    assert two_proportion_p_value(60, 200, 40, 200) == pytest.approx(0.0209213, abs=1e-6)
    # Symmetric: the order of the arms does not matter for a two-sided test.
    assert two_proportion_p_value(40, 200, 60, 200) == pytest.approx(0.0209213, abs=1e-6)


def test_it_computes_a_p_value_between_the_corrected_and_the_plain_level():
    # 58/200 = 0.29 against 0.20; pooled p̂ = 98/400 = 0.245
    # SE = √(0.245 · 0.755 · 0.01) = √0.00184975 = 0.0430087; z = 0.09 / 0.0430087 = 2.092600
    # p = erfc(2.092600 / √2) = 0.036385
    assert two_proportion_p_value(58, 200, 40, 200) == pytest.approx(0.036385, abs=1e-5)


def test_it_gives_a_p_value_of_one_when_no_arm_converted_and_none_for_an_empty_arm():
    assert two_proportion_p_value(0, 50, 0, 40) == 1.0
    assert two_proportion_p_value(3, 50, 0, 0) is None


def test_it_computes_lift_relative_to_control_and_none_when_control_never_converts():
    # (0.30 − 0.20) / 0.20 = 0.5, i.e. +50%
    assert lift(0.30, 0.20) == pytest.approx(0.5)
    assert lift(0.15, 0.20) == pytest.approx(-0.25)
    assert lift(0.10, 0.0) is None


def test_it_computes_the_sample_size_per_arm_for_80_percent_power():
    # z = 1.959964 + 0.841621 = 2.801585, z² = 7.848879; variance = 0.2·0.8 + 0.3·0.7 = 0.37
    # n = 7.848879 · 0.37 / 0.1² = 290.41 -> 291
    assert sample_size_per_arm(0.20, 0.30) == 291
    assert sample_size_per_arm(0.2, 0.2) is None


def test_it_declares_a_single_variant_the_winner_below_five_percent():
    verdict = pick_winner(
        control_conversions=40,
        control_n=200,
        variants=[ArmComparison(variant_id="b", conversions=58, n=200, p_value=0.036385)],
    )
    assert verdict.winner == "b"
    assert verdict.alpha == 0.05


def test_it_corrects_for_several_variants_so_p_0_036_no_longer_wins_against_two_comparisons():
    # Bonferroni: 0.05 / 2 = 0.025 per comparison; 0.036 is not below it.
    assert corrected_alpha(2) == 0.025
    verdict = pick_winner(
        control_conversions=40,
        control_n=200,
        variants=[
            ArmComparison(variant_id="a", conversions=58, n=200, p_value=0.036385),
            ArmComparison(variant_id="b", conversions=41, n=200, p_value=0.9),
        ],
    )
    assert verdict.winner is None
    assert verdict.alpha == 0.025


def test_it_never_declares_a_significantly_worse_variant_the_winner():
    verdict = pick_winner(
        control_conversions=60,
        control_n=200,
        variants=[ArmComparison(variant_id="a", conversions=40, n=200, p_value=0.0209)],
    )
    assert verdict.winner is None


def test_it_picks_the_highest_rate_among_several_significant_variants():
    verdict = pick_winner(
        control_conversions=40,
        control_n=200,
        variants=[
            ArmComparison(variant_id="a", conversions=60, n=200, p_value=0.0209),
            ArmComparison(variant_id="b", conversions=70, n=200, p_value=0.0006),
        ],
    )
    assert verdict.winner == "b"


def test_it_assigns_the_same_arm_every_time():
    arms = [
        assign_arm(experiment_id=3, account_id=account_id, control_share=0.1, variants=TWO_EQUAL)
        for account_id in range(1, 200)
    ]
    again = [
        assign_arm(experiment_id=3, account_id=account_id, control_share=0.1, variants=list(reversed(TWO_EQUAL)))
        for account_id in range(1, 200)
    ]
    assert arms == again
    assert set(arms) == {None, 1, 2}


def test_it_places_every_account_at_a_point_of_the_unit_interval():
    points = [assignment_point(experiment_id=1, account_id=i) for i in range(1, 1000)]
    assert all(0 <= u < 1 for u in points)


def test_it_balances_ten_thousand_accounts_within_a_stated_tolerance():
    # Expected: control 10%, each variant 45%. One standard deviation of a share over 10,000 accounts is
    # √(0.1·0.9/10000) = 0.3 points for control and √(0.45·0.55/10000) = 0.5 points for a variant; the
    # tolerances (±1 and ±1.5 points) are about three standard deviations.
    counts = Counter(
        assign_arm(experiment_id=1, account_id=account_id, control_share=0.10, variants=TWO_EQUAL)
        for account_id in range(1, 10_001)
    )
    assert abs(counts[None] / 10_000 - 0.10) <= 0.01
    assert abs(counts[1] / 10_000 - 0.45) <= 0.015
    assert abs(counts[2] / 10_000 - 0.45) <= 0.015


def test_it_splits_variants_by_weight():
    # Weights 3:1 after a 10% holdout: 67.5% and 22.5%.
    counts = Counter(
        assign_arm(experiment_id=7, account_id=account_id, control_share=0.10, variants=[(1, 3), (2, 1)])
        for account_id in range(1, 10_001)
    )
    assert abs(counts[1] / 10_000 - 0.675) <= 0.015
    assert abs(counts[2] / 10_000 - 0.225) <= 0.015


def test_it_holds_out_different_accounts_in_different_experiments():
    control = [
        {
            account_id
            for account_id in range(1, 10_001)
            if assign_arm(experiment_id=experiment_id, account_id=account_id, control_share=0.10, variants=TWO_EQUAL)
            is None
        }
        for experiment_id in (1, 2)
    ]
    # Independent holdouts overlap on about 10% of each (≈ 100 accounts), not on all of them.
    assert len(control[0] & control[1]) < 0.2 * len(control[0])


def test_it_holds_out_nobody_with_a_zero_control_share():
    assert all(
        assign_arm(experiment_id=1, account_id=i, control_share=0.0, variants=TWO_EQUAL) is not None
        for i in range(1, 2000)
    )


def test_it_refuses_an_experiment_without_variants_or_with_a_full_holdout():
    with pytest.raises(ValueError):
        assign_arm(experiment_id=1, account_id=1, control_share=0.1, variants=[])
    with pytest.raises(ValueError):
        assign_arm(experiment_id=1, account_id=1, control_share=1.0, variants=TWO_EQUAL)


def test_it_agrees_with_the_erfc_definition_of_the_normal_tail():
    # erfc(z/√2) = 2·(1 − Φ(z)): at z = 1.959964 that is 0.05.
    assert math.erfc(Z_95 / math.sqrt(2)) == pytest.approx(0.05, abs=1e-9)
