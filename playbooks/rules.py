"""Rule evaluation and scoring: pure functions over plain facts, so every point can be explained.

A rule fires when every threshold it sets holds and the account is in its plan and segment filters.
The score is the sum of the points of the rules that fired, capped at 100. Each fired rule yields a
Reason naming the indicator values behind it, in words a CSM can repeat to a customer.
"""

from __future__ import annotations

import bisect
import datetime as dt
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

MAX_SCORE = 100
HORIZON_DAYS = 3 * 365
"""A projected crossing further away than this is noise from a near-flat trend: the sentence leaves it out."""


@dataclass(frozen=True, slots=True)
class MetricFacts:
    key: str
    label: str
    unit: str
    latest: float | None
    limit: float | None
    utilization: float | None
    slope_per_day: float | None
    days_to_limit: float | None
    projected_limit_on: dt.date | None


@dataclass(frozen=True, slots=True)
class AccountFacts:
    account_id: int
    plan_id: int | None
    industry: str
    region: str
    metrics: dict[str, MetricFacts]
    logins_per_week: float = 0.0
    login_percentile: float = 0.0
    locked_feature_hits: int = 0
    trial_feature_uses: int = 0


@dataclass(frozen=True, slots=True)
class RuleSpec:
    """The part of a playbooks.Rule that evaluation needs (see playbooks.models.Rule)."""

    id: int
    name: str
    weight: int
    metric_key: str | None = None
    min_utilization: float | None = None
    max_days_to_limit: int | None = None
    min_logins_per_week: float | None = None
    min_login_percentile: float | None = None
    min_locked_feature_hits: int | None = None
    min_trial_feature_uses: int | None = None
    plan_ids: frozenset[int] = field(default_factory=frozenset)
    industries: frozenset[str] = field(default_factory=frozenset)
    regions: frozenset[str] = field(default_factory=frozenset)


@dataclass(frozen=True, slots=True)
class Reason:
    rule_id: int
    rule: str
    points: int
    text: str
    metric: str | None = None
    signals: dict = field(default_factory=dict)

    def as_dict(self) -> dict:
        return {
            "rule_id": self.rule_id,
            "rule": self.rule,
            "points": self.points,
            "text": self.text,
            "metric": self.metric,
            "signals": self.signals,
        }


def fmt_number(value: float) -> str:
    """A compact number for sentences: 92, 1.4, 12,500."""
    if value is None:
        return "—"
    if 0 < abs(value) < 0.01:
        return "<0.01"
    if abs(value) >= 100 or float(value).is_integer():
        return f"{value:,.0f}"
    return f"{value:,.1f}" if abs(value) >= 1 else f"{value:.2g}"


def fmt_date(day: dt.date, *, with_year: bool = False) -> str:
    """'3 Dec', or '3 Dec 2028' when the year is not the obvious one."""
    return f"{day.day} {day:%b} {day.year}" if with_year else f"{day.day} {day:%b}"


def is_noticeable_growth(m: MetricFacts) -> bool:
    """Growth worth saying out loud: at least 1% of the limit (or of the latest value) over 30 days."""
    scale = m.limit if m.limit else (m.latest or 0)
    return scale > 0 and (m.slope_per_day or 0) * 30 >= 0.01 * scale


def describe_metric(m: MetricFacts) -> str:
    """'Storage at 92% of 100 GB, growing 1.4 GB/day: full around 3 Dec'."""
    unit = f" {m.unit}" if m.unit else ""
    if m.limit is None:
        text = f"{m.label} at {fmt_number(m.latest)}{unit} (unlimited)"
    elif m.utilization is None:
        text = f"{m.label}: no usage reported against {fmt_number(m.limit)}{unit}"
    else:
        text = f"{m.label} at {m.utilization * 100:.0f}% of {fmt_number(m.limit)}{unit}"
    if m.slope_per_day and m.slope_per_day > 0 and is_noticeable_growth(m):
        text += f", {_growth(m, unit)}"
    if m.days_to_limit == 0:
        text += ": limit reached"
    elif m.projected_limit_on is not None and (m.days_to_limit is None or m.days_to_limit <= HORIZON_DAYS):
        # Beyond ~10 months a bare '5 Dec' would read as this December.
        far = m.days_to_limit is not None and m.days_to_limit > 300
        text += f": full around {fmt_date(m.projected_limit_on, with_year=far)}"
    return text


def _growth(m: MetricFacts, unit: str) -> str:
    # Slow growth reads better per month than as a tiny daily figure.
    if m.slope_per_day >= 0.1 - 1e-9:
        return f"growing {fmt_number(m.slope_per_day)}{unit}/day"
    return f"growing {fmt_number(m.slope_per_day * 30)}{unit}/month"


def describe_time_to_limit(m: MetricFacts) -> str:
    """'Storage full in ~12 days, around 3 Dec: 92% of 100 GB now, growing 1.4 GB/day'.

    The wording of a days-to-limit rule: it leads with the time left, so that it does not repeat the
    sentence of a utilization rule firing on the same metric.
    """
    unit = f" {m.unit}" if m.unit else ""
    now = f"{m.utilization * 100:.0f}% of {fmt_number(m.limit)}{unit} now" if m.utilization is not None else ""
    if m.days_to_limit == 0:
        return f"{m.label} limit reached" + (f": {now}" if now else "")
    days = m.days_to_limit
    left = "within a day" if days < 1 else f"in ~{days:,.0f} day{'s' if round(days) != 1 else ''}"
    text = f"{m.label} full {left}"
    if m.projected_limit_on is not None:
        text += f", around {fmt_date(m.projected_limit_on, with_year=days > 300)}"
    details = [part for part in (now, _growth(m, unit) if m.slope_per_day and m.slope_per_day > 0 else "") if part]
    return text + (f": {', '.join(details)}" if details else "")


def evaluate(rule: RuleSpec, facts: AccountFacts) -> Reason | None:
    """The reason this rule fires for this account, or None when any of its conditions fails."""
    if rule.plan_ids and facts.plan_id not in rule.plan_ids:
        return None
    if rule.industries and facts.industry not in rule.industries:
        return None
    if rule.regions and facts.region not in rule.regions:
        return None

    parts: list[str] = []
    signals: dict = {}
    metric = facts.metrics.get(rule.metric_key) if rule.metric_key else None
    if rule.min_utilization is not None or rule.max_days_to_limit is not None:
        if metric is None:
            return None
        if rule.min_utilization is not None:
            if metric.utilization is None or metric.utilization < rule.min_utilization:
                return None
            signals["utilization"] = round(metric.utilization, 4)
        if rule.max_days_to_limit is not None:
            if metric.days_to_limit is None or metric.days_to_limit > rule.max_days_to_limit:
                return None
            signals["days_to_limit"] = round(metric.days_to_limit, 1)
        days_only = rule.min_utilization is None
        parts.append(describe_time_to_limit(metric) if days_only else describe_metric(metric))
    if rule.min_logins_per_week is not None:
        if facts.logins_per_week < rule.min_logins_per_week:
            return None
        signals["logins_per_week"] = round(facts.logins_per_week, 1)
        parts.append(f"{fmt_number(facts.logins_per_week)} logins a week")
    if rule.min_login_percentile is not None:
        if facts.login_percentile < rule.min_login_percentile:
            return None
        signals["login_percentile"] = round(facts.login_percentile, 1)
        parts.append(
            f"logins in the top {100 - facts.login_percentile:.0f}% of accounts "
            f"({fmt_number(facts.logins_per_week)} a week)"
        )
    if rule.min_locked_feature_hits is not None:
        if facts.locked_feature_hits < rule.min_locked_feature_hits:
            return None
        signals["locked_feature_hits"] = facts.locked_feature_hits
        parts.append(f"{facts.locked_feature_hits} locked-feature hits in 30 days")
    if rule.min_trial_feature_uses is not None:
        if facts.trial_feature_uses < rule.min_trial_feature_uses:
            return None
        signals["trial_feature_uses"] = facts.trial_feature_uses
        parts.append(f"premium features used {facts.trial_feature_uses} times in the trial")
    if not parts:
        return None
    text = "; ".join(parts)
    return Reason(
        rule_id=rule.id,
        rule=rule.name,
        points=rule.weight,
        text=text[0].upper() + text[1:],
        metric=rule.metric_key,
        signals=signals,
    )


@dataclass(frozen=True, slots=True)
class Score:
    value: int
    reasons: list[Reason]

    def reasons_as_data(self) -> list[dict]:
        return [r.as_dict() for r in self.reasons]


def score(rules: Iterable[RuleSpec], facts: AccountFacts) -> Score:
    """Score = min(100, Σ points of the rules that fire); reasons ordered by points, highest first."""
    reasons = [r for r in (evaluate(rule, facts) for rule in rules) if r is not None]
    reasons.sort(key=lambda r: (-r.points, r.rule_id))
    return Score(value=min(MAX_SCORE, sum(r.points for r in reasons)), reasons=reasons)


def percentile_of(value: float, sorted_values: Sequence[float]) -> float:
    """Share of values strictly below `value`, in percent (0 for the lowest, near 100 for the highest)."""
    if not sorted_values:
        return 0.0
    return bisect.bisect_left(sorted_values, value) / len(sorted_values) * 100
