"""Rule evaluation and scoring as pure functions."""

import datetime as dt

from playbooks.rules import AccountFacts, MetricFacts, RuleSpec, describe_metric, evaluate, percentile_of, score


def storage(utilization, slope=0.0, days=None, projected=None, limit=100.0):
    return MetricFacts(
        key="storage_gb",
        label="Storage",
        unit="GB",
        latest=None if utilization is None else utilization * limit,
        limit=limit,
        utilization=utilization,
        slope_per_day=slope,
        days_to_limit=days,
        projected_limit_on=projected,
    )


def facts(**kwargs):
    defaults = {"account_id": 1, "plan_id": 1, "industry": "Retail", "region": "EMEA", "metrics": {}}
    return AccountFacts(**(defaults | kwargs))


STORAGE_80 = RuleSpec(id=1, name="Storage 80%", weight=35, metric_key="storage_gb", min_utilization=0.8)


def test_it_explains_a_utilization_rule_in_words_with_the_projected_date():
    account = facts(metrics={"storage_gb": storage(0.92, slope=1.4, days=5.7, projected=dt.date(2026, 12, 3))})

    reason = evaluate(STORAGE_80, account)

    assert reason.text == "Storage at 92% of 100 GB, growing 1.4 GB/day: full around 3 Dec"
    assert reason.points == 35
    assert reason.signals == {"utilization": 0.92}


def test_it_does_not_fire_below_the_threshold_or_without_data():
    assert evaluate(STORAGE_80, facts(metrics={"storage_gb": storage(0.79)})) is None
    assert evaluate(STORAGE_80, facts(metrics={"storage_gb": storage(None)})) is None
    assert evaluate(STORAGE_80, facts()) is None


def test_it_requires_every_threshold_of_a_rule_to_hold():
    rule = RuleSpec(
        id=2, name="Full soon", weight=30, metric_key="storage_gb", min_utilization=0.5, max_days_to_limit=30
    )

    assert evaluate(rule, facts(metrics={"storage_gb": storage(0.6, slope=1, days=40)})) is None
    assert evaluate(rule, facts(metrics={"storage_gb": storage(0.6, slope=1, days=20)})) is not None


def test_it_applies_plan_industry_and_region_filters():
    rule = RuleSpec(id=3, name="Hits", weight=20, min_locked_feature_hits=5, plan_ids=frozenset({2}))
    busy = facts(locked_feature_hits=9)

    assert evaluate(rule, busy) is None
    assert evaluate(rule, facts(plan_id=2, locked_feature_hits=9)) is not None
    assert (
        evaluate(RuleSpec(id=4, name="R", weight=5, min_locked_feature_hits=1, regions=frozenset({"APAC"})), busy)
        is None
    )


def test_it_caps_the_score_at_100_and_orders_reasons_by_points():
    rules = [
        RuleSpec(id=1, name="a", weight=60, min_locked_feature_hits=1),
        RuleSpec(id=2, name="b", weight=70, min_trial_feature_uses=1),
    ]

    result = score(rules, facts(locked_feature_hits=3, trial_feature_uses=4))

    assert result.value == 100
    assert [r.rule for r in result.reasons] == ["b", "a"]


def test_it_scores_zero_when_nothing_fires():
    assert score([STORAGE_80], facts()).value == 0


def test_it_ranks_logins_as_a_percentile():
    assert percentile_of(10.0, [1.0, 2.0, 5.0, 10.0]) == 75.0
    rule = RuleSpec(id=5, name="Top quartile", weight=15, min_login_percentile=75)
    assert evaluate(rule, facts(logins_per_week=10.0, login_percentile=75.0)).text == (
        "Logins in the top 25% of accounts (10 a week)"
    )


def test_it_says_when_a_limit_is_already_reached():
    assert describe_metric(storage(1.05, days=0, projected=dt.date(2026, 11, 20))) == (
        "Storage at 105% of 100 GB: limit reached"
    )


def test_it_does_not_mention_growth_too_small_to_matter():
    # 0.0001 GB a day is 0.003 GB a month against a 100 GB limit: noise, not a trend to tell a customer.
    assert describe_metric(storage(0.5, slope=0.0001)) == "Storage at 50% of 100 GB"
    assert describe_metric(storage(0.5, slope=0.05)) == "Storage at 50% of 100 GB, growing 1.5 GB/month"
    assert describe_metric(storage(0.5, slope=0.5)) == "Storage at 50% of 100 GB, growing 0.5 GB/day"


def test_it_names_the_year_of_a_crossing_more_than_ten_months_away():
    far = storage(0.82, slope=0.02, days=875, projected=dt.date(2028, 12, 5))

    assert describe_metric(far).endswith("full around 5 Dec 2028")


def test_two_rules_on_one_metric_say_different_things():
    storage_soon = RuleSpec(
        id=4, name="Storage within 30 days", weight=30, metric_key="storage_gb", max_days_to_limit=30
    )
    account = facts(metrics={"storage_gb": storage(0.92, slope=1.4, days=5.7, projected=dt.date(2026, 12, 3))})

    by_utilization = evaluate(STORAGE_80, account).text
    by_time_left = evaluate(storage_soon, account).text

    assert by_utilization == "Storage at 92% of 100 GB, growing 1.4 GB/day: full around 3 Dec"
    assert by_time_left == "Storage full in ~6 days, around 3 Dec: 92% of 100 GB now, growing 1.4 GB/day"


def test_a_days_to_limit_rule_says_when_the_limit_is_already_reached():
    storage_soon = RuleSpec(
        id=4, name="Storage within 30 days", weight=30, metric_key="storage_gb", max_days_to_limit=30
    )
    account = facts(metrics={"storage_gb": storage(1.05, days=0)})

    assert evaluate(storage_soon, account).text == "Storage limit reached: 105% of 100 GB now"


def test_it_leaves_out_a_crossing_decades_away_from_a_near_flat_trend():
    flat = storage(0.93, slope=0.0001, days=7700, projected=dt.date(2048, 6, 14))

    assert describe_metric(flat) == "Storage at 93% of 100 GB"
