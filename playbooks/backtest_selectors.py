"""Data for the rules backtest: indicators recomputed as of past month-ends, with the refresh's own code.

Nothing is written: `accounts.services.limit_indicators_compute` and `engagement_counts` are the refresh's
computations without its upserts. Queries: four up front (limit metrics, limits, accounts, MRR movements),
then per month and per chunk of CHUNK_SIZE (10,000) accounts at most three for usage and one for engagement, only
for what the rule looks at. Plans are those in effect on each day (from the MRR movements), so an account
that upgraded since is measured against the limits it had then.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator

from accounts import indicators as ind
from accounts.models import Account, Metric, MrrMovement, PlanLimit
from accounts.services import CHUNK_SIZE as REFRESH_CHUNK_SIZE
from accounts.services import engagement_counts, limit_indicators_compute
from playbooks.backtest import BACKTEST_MONTHS, BacktestMonth, History, Move, backtest_month, in_segment, month_ends
from playbooks.facts import account_facts
from playbooks.rules import RuleSpec

# A rule looks at one metric where the refresh computes five: five times the accounts make chunks of the
# refresh's size in rows.
CHUNK_SIZE = REFRESH_CHUNK_SIZE * 5


def _chunks(ids: list[int], size: int) -> Iterator[list[int]]:
    for start in range(0, len(ids), size):
        yield ids[start : start + size]


def account_histories() -> tuple[list[History], dict[int, dict]]:
    """Every account's movement history, and its segment (industry, region), in two queries."""
    fields = ("id", "plan_id", "mrr", "first_purchase_on", "industry", "region")
    accounts = {row["id"]: row for row in Account.objects.order_by("pk").values(*fields)}
    moves: dict[int, list[Move]] = {}
    for row in MrrMovement.objects.order_by("account_id", "occurred_on", "pk").values_list(
        "account_id", "occurred_on", "kind", "mrr_before", "mrr_after", "plan_before_id", "plan_after_id"
    ):
        moves.setdefault(row[0], []).append(Move(*row[1:]))
    histories = [
        History(
            account_id=aid,
            plan_id=row["plan_id"],
            mrr=row["mrr"],
            first_purchase_on=row["first_purchase_on"],
            moves=tuple(moves.get(aid, ())),
        )
        for aid, row in accounts.items()
    ]
    return histories, {aid: {"industry": row["industry"], "region": row["region"]} for aid, row in accounts.items()}


def rule_backtest(
    *, rule: RuleSpec, today: dt.date, months: int = BACKTEST_MONTHS, chunk_size: int = CHUNK_SIZE
) -> list[BacktestMonth]:
    """The rule's backtest over the last `months` month-ends before `today`, oldest first (see playbooks.backtest)."""
    metrics = {m.pk: m for m in Metric.objects.filter(kind=Metric.Kind.LIMIT)}
    metric = next((m for m in metrics.values() if m.key == rule.metric_key), None)
    uses_limit = rule.min_utilization is not None or rule.max_days_to_limit is not None
    metric_ids = [metric.pk] if uses_limit and metric is not None else []
    limits = {(pl.plan_id, pl.metric_id): pl.limit for pl in PlanLimit.objects.filter(metric_id__in=metric_ids)}
    uses_engagement = any(
        threshold is not None
        for threshold in (
            rule.min_logins_per_week,
            rule.min_login_percentile,
            rule.min_locked_feature_hits,
            rule.min_trial_feature_uses,
        )
    )
    histories, segments = account_histories()
    results = []
    for as_of in month_ends(today, months):
        plans: dict[int, int | None] = {}
        upgraded: set[int] = set()
        for history in histories:
            mrr, plan_id = history.state_on(as_of)
            if mrr > 0:
                plans[history.account_id] = plan_id
                if history.upgraded_within(as_of):
                    upgraded.add(history.account_id)
        candidates = {
            aid: plan_id
            for aid, plan_id in plans.items()
            if in_segment(rule, plan_id=plan_id, industry=segments[aid]["industry"], region=segments[aid]["region"])
        }
        indicators: dict[int, list[dict]] = {}
        for chunk in _chunks(list(candidates) if metric_ids else [], chunk_size):
            computed = limit_indicators_compute(
                plans={aid: candidates[aid] for aid in chunk}, as_of=as_of, metric_ids=metric_ids, limits=limits
            )
            for (aid, mid), (result, _) in computed.items():
                indicators.setdefault(aid, []).append(
                    {
                        "metric_id": mid,
                        "latest": result.latest,
                        "limit": result.limit,
                        "utilization": result.utilization,
                        "slope_per_day": result.slope_per_day,
                        "days_to_limit": result.days_to_limit,
                        "projected_limit_on": result.projected_limit_on,
                    }
                )
        engagement, logins_sorted = (
            _engagement_as_of(rule, as_of, candidates=list(candidates), everyone=list(segments), chunk_size=chunk_size)
            if uses_engagement
            else ({}, [])
        )
        facts = [
            account_facts(
                account={"id": aid, "plan_id": plan_id, **segments[aid]},
                indicators=indicators.get(aid, ()),
                engagement=engagement.get(aid),
                metrics=metrics,
                logins_sorted=logins_sorted,
            )
            for aid, plan_id in candidates.items()
        ]
        if metric_ids:
            measured = sum(1 for rows in indicators.values() if any(row["latest"] is not None for row in rows))
        else:
            measured = sum(1 for aid in candidates if aid in engagement)
        results.append(
            backtest_month(
                rule=rule,
                as_of=as_of,
                today=today,
                paying=len(plans),
                upgraded=upgraded,
                facts=facts,
                measured=measured,
            )
        )
    return results


def _engagement_as_of(
    rule: RuleSpec, as_of: dt.date, *, candidates: list[int], everyone: list[int], chunk_size: int
) -> tuple[dict[int, dict], list[float]]:
    """Engagement of the candidates as the refresh would have stored it on `as_of`, and, for a percentile
    rule, every account's logins per week that day (the refresh stores a row for every account)."""
    ids = everyone if rule.min_login_percentile is not None else candidates
    counts: dict[int, dict] = {}
    for chunk in _chunks(ids, chunk_size):
        counts.update(engagement_counts(account_ids=chunk, as_of=as_of))
    engagement = {
        aid: {
            "logins_per_week": ind.per_week(c["logins"]),
            "locked_feature_hits": c["locked"],
            "trial_feature_uses": c["trial"],
        }
        for aid, c in counts.items()
    }
    logins_sorted: list[float] = []
    if rule.min_login_percentile is not None:
        logins_sorted = sorted(engagement[aid]["logins_per_week"] if aid in engagement else 0.0 for aid in everyone)
    return engagement, logins_sorted
