"""Flagging: scores every account from its indicators and opens, updates or clears opportunities.

Set-based: per chunk of accounts a fixed number of queries reads accounts, indicators, engagement and
opportunities, and a fixed number writes scores and opportunities. Idempotent: a re-run updates the open
opportunity's score and reasons; the one-open-opportunity constraint backs this up under concurrency.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Iterable
from dataclasses import dataclass, field

from django.db import transaction
from django.db.models import F, Q

from accounts.bulk import upsert
from accounts.indicators import project_value
from accounts.models import Account, AccountEngagement, AccountIndicator, Metric, Plan, PlanLimit
from opportunities.models import AccountScore, Opportunity, OpportunityEvent, Outcome, ScoreHistory, Stage
from opportunities.notifications import new_candidates_notify
from opportunities.sizing import PROJECTION_DAYS, PlanOption, expected_mrr_delta, suggest_target_plan
from playbooks import rules as scoring
from playbooks.experiment_services import experiment_assignments_record
from playbooks.facts import account_facts
from playbooks.fatigue import fatigue_check
from playbooks.models import Enrollment, Play, Rule, ScoringPolicy
from playbooks.selectors import past_touches, recent_touches_by_account
from playbooks.sequence_services import enrollments_start_automatic, enrollments_stop

logger = logging.getLogger(__name__)

CHUNK_SIZE = 2000


@dataclass
class FlagResult:
    scored: int = 0
    created: int = 0
    updated: int = 0
    cleared: int = 0
    skipped: dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True)
class _Context:
    as_of: dt.date
    at: dt.datetime
    rules: list[scoring.RuleSpec]
    policy: ScoringPolicy
    plans: dict[int, PlanOption]
    metrics: dict[int, Metric]
    logins_sorted: list[float]


def plan_options() -> dict[int, PlanOption]:
    """Every active plan with its limits by metric key, in two queries."""
    limits: dict[int, dict[str, float | None]] = {}
    for plan_id, key, limit in PlanLimit.objects.values_list("plan_id", "metric__key", "limit"):
        limits.setdefault(plan_id, {})[key] = limit
    return {
        p.pk: PlanOption(
            id=p.pk,
            rank=p.tier_rank,
            monthly_price=p.monthly_price,
            annual_price=p.annual_price,
            limits=limits.get(p.pk, {}),
        )
        for p in Plan.objects.active()
    }


def enabled_rules() -> list[scoring.RuleSpec]:
    return [
        rule.as_spec() for rule in Rule.objects.filter(enabled=True).select_related("metric").prefetch_related("plans")
    ]


def opportunities_flag(
    *, as_of: dt.date, at: dt.datetime, account_ids: Iterable[int] | None = None, chunk_size: int = CHUNK_SIZE
) -> FlagResult:
    """Score accounts as of `as_of` and open, update or clear their opportunities (all accounts when None).

    - score ≥ policy threshold, no open opportunity, a higher tier exists, not churned, not cooling off
      (a lost or snoozed outcome within `cool_off_days`, or a snooze still running): open one in Identify,
      owned by the account's CSM, with the reasons and the suggested target plan.
    - an open opportunity: its score and reasons follow the account's.
    - an open, untouched (Identify-stage) opportunity opened by rules whose score fell below threshold minus
      the clear margin: closed as "signal cleared". The margin is the hysteresis that stops flapping.
    """
    ctx = _Context(
        as_of=as_of,
        at=at,
        rules=enabled_rules(),
        policy=ScoringPolicy.current(),
        plans=plan_options(),
        metrics={m.pk: m for m in Metric.objects.filter(kind=Metric.Kind.LIMIT)},
        logins_sorted=sorted(AccountEngagement.objects.values_list("logins_per_week", flat=True)),
    )
    if account_ids is None:
        ids = list(Account.objects.order_by("pk").values_list("pk", flat=True))
    else:
        ids = sorted(set(account_ids))
    result = FlagResult()
    for start in range(0, len(ids), chunk_size):
        with transaction.atomic():
            _flag_chunk(ids[start : start + chunk_size], ctx, result)
    logger.info("Flagging as of %s: %s", as_of, result)
    return result


def _flag_chunk(chunk: list[int], ctx: _Context, result: FlagResult) -> None:
    # The chunk's accounts are locked (in id order, so two runs cannot deadlock) for the transaction: a
    # concurrent run over the same accounts waits, then sees the opportunities this one opened, instead of
    # both counting, and recording an event for, the one row the unique constraint lets in.
    accounts = list(
        Account.objects.select_for_update()
        .filter(pk__in=chunk)
        .order_by("pk")
        .values("id", "plan_id", "industry", "region", "status", "owner_id", "billing_period", "mrr", "currency")
    )
    indicators: dict[int, list[dict]] = {}
    for row in AccountIndicator.objects.filter(account_id__in=chunk).values(
        "account_id",
        "metric_id",
        "latest",
        "limit",
        "utilization",
        "slope_per_day",
        "days_to_limit",
        "projected_limit_on",
    ):
        indicators.setdefault(row["account_id"], []).append(row)
    engagement = {
        row["account_id"]: row
        for row in AccountEngagement.objects.filter(account_id__in=chunk).values(
            "account_id", "logins_per_week", "locked_feature_hits", "trial_feature_uses"
        )
    }
    open_opps = {
        o.account_id: o
        for o in Opportunity.objects.open()
        .filter(account_id__in=chunk)
        .only("id", "account_id", "stage", "source", "score", "reasons", "target_plan_id", "version")
    }
    cutoff = ctx.at - dt.timedelta(days=ctx.policy.cool_off_days)
    cooling = set(
        Opportunity.objects.filter(account_id__in=chunk)
        .filter(
            Q(outcome__in=[Outcome.LOST, Outcome.SNOOZED], closed_at__gte=cutoff)
            | Q(outcome=Outcome.SNOOZED, snoozed_until__gt=ctx.as_of)
        )
        .values_list("account_id", flat=True)
    )

    threshold = ctx.policy.flag_threshold
    clear_below = threshold - ctx.policy.clear_margin
    scores: list[dict] = []
    history: list[dict] = []
    to_create: list[Opportunity] = []
    to_update: list[Opportunity] = []
    to_clear: list[Opportunity] = []
    skipped = result.skipped

    for account in accounts:
        facts = account_facts(
            account=account,
            indicators=indicators.get(account["id"], []),
            engagement=engagement.get(account["id"]),
            metrics=ctx.metrics,
            logins_sorted=ctx.logins_sorted,
        )
        current = ctx.plans.get(account["plan_id"])
        churned = account["status"] == Account.Status.CHURNED
        outcome = scoring.Score(0, []) if churned else scoring.score(ctx.rules, facts)
        reasons = outcome.reasons_as_data()
        projected = {key: project_value(m.latest, m.slope_per_day, PROJECTION_DAYS) for key, m in facts.metrics.items()}
        target = suggest_target_plan(
            current_rank=current.rank if current else None, plans=list(ctx.plans.values()), projected=projected
        )
        scores.append(
            {
                "account_id": account["id"],
                "as_of": ctx.as_of,
                "score": outcome.value,
                "reasons": reasons,
                "target_plan_id": target.id if target else None,
                "computed_at": ctx.at,
            }
        )
        if outcome.value:
            history.append({"account_id": account["id"], "scored_on": ctx.as_of, "score": outcome.value})

        existing = open_opps.get(account["id"])
        if existing is not None:
            if (
                existing.stage == Stage.IDENTIFY
                and existing.source == Opportunity.Source.RULES
                and (churned or outcome.value < clear_below)
            ):
                existing.score = outcome.value
                existing.reasons = reasons
                to_clear.append(existing)
            elif existing.score != outcome.value or existing.reasons != reasons:
                existing.score = outcome.value
                existing.reasons = reasons
                existing.version = F("version") + 1
                to_update.append(existing)
            continue
        if outcome.value < threshold:
            continue
        if churned:
            skipped["churned"] = skipped.get("churned", 0) + 1
            continue
        if target is None:
            skipped["top_tier"] = skipped.get("top_tier", 0) + 1
            continue
        if account["id"] in cooling:
            skipped["cooling_off"] = skipped.get("cooling_off", 0) + 1
            continue
        to_create.append(
            Opportunity(
                account_id=account["id"],
                source=Opportunity.Source.RULES,
                stage=Stage.IDENTIFY,
                outcome=Outcome.OPEN,
                owner_id=account["owner_id"],
                score=outcome.value,
                reasons=reasons,
                target_plan_id=target.id,
                currency=account["currency"],
                expected_mrr_delta=expected_mrr_delta(
                    target=target, billing_period=account["billing_period"], current_mrr=account["mrr"]
                ),
                identified_at=ctx.at,
                stage_entered_at=ctx.at,
            )
        )

    upsert(
        AccountScore,
        scores,
        unique_fields=["account"],
        update_fields=["as_of", "score", "reasons", "target_plan", "computed_at"],
    )
    upsert(ScoreHistory, history, unique_fields=["account", "scored_on"], update_fields=["score"])
    result.scored += len(scores)
    _create(to_create, ctx, result)
    if to_update:
        Opportunity.objects.bulk_update(to_update, ["score", "reasons", "version"])
        result.updated += len(to_update)
    _clear(to_clear, ctx, result)


def _create(to_create: list[Opportunity], ctx: _Context, result: FlagResult) -> None:
    if not to_create:
        return
    # A concurrent run (or a CSM opening one by hand) may have won the race for an account: the
    # constraint turns that into a skipped row instead of a second open opportunity.
    _choose_plays(to_create, ctx)
    Opportunity.objects.bulk_create(to_create, ignore_conflicts=True)
    created = list(
        Opportunity.objects.filter(
            account_id__in=[o.account_id for o in to_create],
            outcome=Outcome.OPEN,
            source=Opportunity.Source.RULES,
            identified_at=ctx.at,
        ).values_list("id", "score", "reasons")
    )
    OpportunityEvent.objects.bulk_create(
        OpportunityEvent(
            opportunity_id=pk,
            occurred_at=ctx.at,
            kind=OpportunityEvent.Kind.CREATED,
            to_stage=Stage.IDENTIFY,
            changes={"score": score},
            message="Flagged by rules: " + "; ".join(r["rule"] for r in reasons),
        )
        for pk, score, reasons in created
    )
    result.created += len(created)
    _assign_experiments([pk for pk, _, _ in created], ctx)
    new_candidates_notify(opportunity_ids=[pk for pk, _, _ in created], at=ctx.at)


def _choose_plays(to_create: list[Opportunity], ctx: _Context) -> None:
    """Each new opportunity gets the active play whose rules fired for it with the most points (ties: the
    oldest play) among those that may touch the account now; none when no active play is tied to a rule
    that fired, or when none of those may. Two queries.

    Pitch fatigue, as flagging respects it: flagging touches nobody itself, but it starts a play on the
    account, and the play's email, prompt or trial would be refused. So a play is passed over when, at
    `ctx.at`, its gap since its last touch of the account has not passed, or the account has had its
    `max_touches_per_30_days` touches by all plays (`playbooks.fatigue.fatigue_check`); the next play
    that may touch it is chosen instead. The opportunity itself still opens: a CSM may work it without a
    play. Touches are loaded once for the chunk's new opportunities.
    """
    plays_by_rule: dict[int, list[int]] = {}
    gaps: dict[int, int] = {}
    for rule_id, play_id, gap in Play.rules.through.objects.filter(play__active=True).values_list(
        "rule_id", "play_id", "play__min_days_between_touches"
    ):
        plays_by_rule.setdefault(rule_id, []).append(play_id)
        gaps[play_id] = gap
    if not plays_by_rule:
        return
    touches = recent_touches_by_account(
        account_ids=[o.account_id for o in to_create], now=ctx.at, days=max(gaps.values())
    )
    for opportunity in to_create:
        points: dict[int, int] = {}
        for reason in opportunity.reasons:
            for play_id in plays_by_rule.get(reason["rule_id"], ()):
                points[play_id] = points.get(play_id, 0) + reason["points"]
        recent = touches.get(opportunity.account_id, [])
        for play_id in sorted(points, key=lambda play_id: (-points[play_id], play_id)):
            refusal = fatigue_check(
                past_touches(recent, play_id=play_id),
                play_gap_days=gaps[play_id],
                max_per_30_days=ctx.policy.max_touches_per_30_days,
                now=ctx.at,
            )
            if refusal is None:
                opportunity.play_id = play_id
                break


def _assign_experiments(created_ids: list[int], ctx: _Context) -> None:
    """Accounts whose new opportunity has a play with a running experiment are assigned to an arm now, when
    they first meet the play; those whose play runs automatically are enrolled in its sequence (the control
    group is not: `playbooks.sequence_services.enrollments_start_automatic`). Set-based: a fixed number of
    queries per chunk."""
    if not created_ids:
        return
    rows = list(
        Opportunity.objects.filter(pk__in=created_ids, play__isnull=False).values_list("pk", "account_id", "play_id")
    )
    experiment_assignments_record(pairs=[(account_id, play_id) for _, account_id, play_id in rows], at=ctx.at)
    enrollments_start_automatic(opportunities=rows, at=ctx.at)


def _clear(to_clear: list[Opportunity], ctx: _Context, result: FlagResult) -> None:
    if not to_clear:
        return
    # Conditional on the stage still being Identify: a CSM who just started working it keeps it.
    ids = [o.pk for o in to_clear]
    cleared_ids = list(
        Opportunity.objects.select_for_update()
        .filter(pk__in=ids, outcome=Outcome.OPEN, stage=Stage.IDENTIFY)
        .values_list("pk", flat=True)
    )
    Opportunity.objects.filter(pk__in=cleared_ids, outcome=Outcome.OPEN, stage=Stage.IDENTIFY).update(
        outcome=Outcome.CLEARED, closed_at=ctx.at, version=F("version") + 1
    )
    by_id = {o.pk: o for o in to_clear}
    OpportunityEvent.objects.bulk_create(
        OpportunityEvent(
            opportunity_id=pk,
            occurred_at=ctx.at,
            kind=OpportunityEvent.Kind.CLOSED,
            from_stage=Stage.IDENTIFY,
            to_stage=Stage.IDENTIFY,
            changes={"outcome": [Outcome.OPEN, Outcome.CLEARED], "score": by_id[pk].score},
            message=f"Signal cleared: score fell to {by_id[pk].score}, below the clearing level.",
        )
        for pk in cleared_ids
    )
    if cleared_ids:  # their sequences end with them
        enrollments_stop(opportunity_ids=cleared_ids, reason=Enrollment.StopReason.CLOSED, at=ctx.at)
    result.cleared += len(cleared_ids)
