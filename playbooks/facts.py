"""The facts rules are evaluated against, built from indicator rows: shared by flagging and the rules editor.

`account_facts` turns one account's plain rows (as `values()` returns them) into `rules.AccountFacts`; no
queries. `stored_facts` loads today's stored indicators of every account in a fixed number of queries, and
`flagged_by_rules` evaluates any rules (saved or not) against them: the rules editor's "flags N accounts today".
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from accounts.models import Account, AccountEngagement, AccountIndicator, Metric
from playbooks import rules as scoring

INDICATOR_FIELDS = (
    "account_id",
    "metric_id",
    "latest",
    "limit",
    "utilization",
    "slope_per_day",
    "days_to_limit",
    "projected_limit_on",
)
ENGAGEMENT_FIELDS = ("account_id", "logins_per_week", "locked_feature_hits", "trial_feature_uses")


def account_facts(
    *,
    account: Mapping,
    indicators: Iterable[Mapping],
    engagement: Mapping | None,
    metrics: Mapping[int, Metric],
    logins_sorted: list[float],
) -> scoring.AccountFacts:
    """The facts of one account: its plan and segment, one MetricFacts per indicator row, its engagement.

    `account` needs id, plan_id, industry and region; `indicators` rows carry INDICATOR_FIELDS; `engagement`
    (None = no events) carries ENGAGEMENT_FIELDS. The login percentile ranks the account's logins among
    `logins_sorted` (every account's, ascending); no logins rank 0.
    """
    metric_facts = {}
    for row in indicators:
        metric = metrics[row["metric_id"]]
        metric_facts[metric.key] = scoring.MetricFacts(
            key=metric.key,
            label=metric.label,
            unit=metric.unit,
            latest=row["latest"],
            limit=row["limit"],
            utilization=row["utilization"],
            slope_per_day=row["slope_per_day"],
            days_to_limit=row["days_to_limit"],
            projected_limit_on=row["projected_limit_on"],
        )
    logins = engagement["logins_per_week"] if engagement else 0.0
    return scoring.AccountFacts(
        account_id=account["id"],
        plan_id=account["plan_id"],
        industry=account["industry"],
        region=account["region"],
        metrics=metric_facts,
        logins_per_week=logins,
        login_percentile=scoring.percentile_of(logins, logins_sorted) if logins else 0.0,
        locked_feature_hits=engagement["locked_feature_hits"] if engagement else 0,
        trial_feature_uses=engagement["trial_feature_uses"] if engagement else 0,
    )


@dataclass(frozen=True, slots=True)
class StoredFacts:
    facts: list[scoring.AccountFacts]
    names: dict[int, str]


def stored_facts(*, metric_ids: Iterable[int] | None = None) -> StoredFacts:
    """The facts of every account that flagging scores (churned accounts score 0), from the stored indicators.

    Four queries whatever the number of accounts: limit metrics, accounts, indicators (only of `metric_ids`
    when given: a rule looks at one metric), engagement. Login percentiles rank among every account's
    stored engagement, as flagging ranks them.
    """
    metrics = {m.pk: m for m in Metric.objects.filter(kind=Metric.Kind.LIMIT)}
    accounts = list(
        Account.objects.exclude(status=Account.Status.CHURNED)
        .order_by("name", "pk")
        .values("id", "name", "plan_id", "industry", "region")
    )
    indicator_rows = AccountIndicator.objects.filter(metric_id__in=metrics)
    if metric_ids is not None:
        indicator_rows = indicator_rows.filter(metric_id__in=list(metric_ids))
    indicators: dict[int, list[dict]] = {}
    for row in indicator_rows.values(*INDICATOR_FIELDS):
        indicators.setdefault(row["account_id"], []).append(row)
    engagement = {row["account_id"]: row for row in AccountEngagement.objects.values(*ENGAGEMENT_FIELDS)}
    logins_sorted = sorted(row["logins_per_week"] for row in engagement.values())
    facts = [
        account_facts(
            account=account,
            indicators=indicators.get(account["id"], ()),
            engagement=engagement.get(account["id"]),
            metrics=metrics,
            logins_sorted=logins_sorted,
        )
        for account in accounts
    ]
    return StoredFacts(facts=facts, names={a["id"]: a["name"] for a in accounts})


SAMPLE_SIZE = 10


@dataclass(frozen=True, slots=True)
class Flagged:
    count: int
    sample: list[tuple[int, str]]
    """(account id, name) of up to SAMPLE_SIZE flagged accounts, by name."""


def flagged_by_rules(
    rules: Sequence[scoring.RuleSpec], stored: StoredFacts, *, sample_size: int = SAMPLE_SIZE
) -> dict[int, Flagged]:
    """Per rule id, the accounts among `stored` that the rule fires for: how many, and a sample by name."""
    flagged: dict[int, list[int]] = {rule.id: [] for rule in rules}
    for facts in stored.facts:
        for rule in rules:
            if scoring.evaluate(rule, facts) is not None:
                flagged[rule.id].append(facts.account_id)
    return {
        rule_id: Flagged(count=len(ids), sample=[(aid, stored.names[aid]) for aid in ids[:sample_size]])
        for rule_id, ids in flagged.items()
    }
