"""In-app prompts for the customer's product: which plays' prompts an account should see now, and what the
customer did with them.

A play's prompt is offered to an account when all of these hold:

- the play is active and has prompt text: its own, or the variant's the account is assigned to;
- the play applies to the account today: at least one of the play's enabled rules fires on the account's
  stored indicators and engagement, the facts flagging scores (`playbooks.facts`); or a prompt step of the
  play's sequence has been reached for the account (`playbooks.sequence_services`). A reached prompt step
  counts as "the play applies" until the enrolment ends, and not while it is paused: at once when it stops
  (upgrade, closed opportunity, a user, churn, the play switched off), PROMPT_STEP_AFTER_DAYS after it
  completes (its last step done: so a prompt that is the last step still shows for a while). The step's
  own text, when it has one, replaces the prompt text (see `playbooks.sequences.step_content`). A play
  without an enabled rule prompts only through its sequence; a churned account gets no prompt. An open
  opportunity is not required: opportunities sit downstream of playbooks, and a prompt is the play's own,
  automatic touch;
- the account is not in the control group of the play's running experiment. Reading the prompts stores
  nothing: the arm is the stored one, else the one the account will get (the assignment is deterministic,
  `experiment_services.experiment_arms`). It is stored when the product reports what happened to a prompt
  (`prompt_event_record`), as flagging and enrolment store it when they start the play;
- frequency cap: fewer than the play's `prompt_max_per_week` impressions of its prompt to the account in
  the last 7 days, (now − 7 days, now];
- pitch fatigue (`playbooks.fatigue`): the play's gap since its last touch of the account has passed, and
  the account has had fewer than `max_touches_per_30_days` touches by all plays in the last 30 days. An
  impression is a touch, so with a gap of N days a prompt shows at most once every N days: the stricter of
  the two limits wins.

When several prompts qualify they come most points first (the weights of the play's rules that fired;
ties: the oldest play), and no more of them than the touches the 30-day cap has left.

Showing a prompt is the product's to report (`prompt_event_record`); reading the prompts records nothing at
all, so a GET writes nothing. A prompt's id is signed and names the account, the play and the variant, so an
event can only be recorded for a prompt that was offered to that account.
"""

from __future__ import annotations

import datetime as dt
import logging
import re
from dataclasses import dataclass, replace

from django.core import signing
from django.db.models import Count, Exists, OuterRef, Prefetch, Q, QuerySet, Subquery, TextField

from accounts.models import Account, AccountEngagement, AccountIndicator, Metric, Plan
from playbooks import rules as scoring
from playbooks.experiment_services import experiment_arms, experiment_assignments_record, play_content_for
from playbooks.facts import INDICATOR_FIELDS, account_facts
from playbooks.fatigue import WINDOW_DAYS, fatigue_check
from playbooks.models import Enrollment, Experiment, Play, Rule, ScoringPolicy, SequenceStep, StepRun, Touch, Variant
from playbooks.sandbox import Kind, TemplateRefused, sandbox_render
from playbooks.selectors import RecentTouch, past_touches, premium_feature_uses, recent_touches_by_account
from playbooks.sequences import step_content
from playbooks.services import touch_record

logger = logging.getLogger(__name__)

CAP_DAYS = 7
"""The frequency cap counts impressions over this many days."""
PROMPT_STEP_AFTER_DAYS = 7
"""A sequence that completed (its last step done) keeps offering the prompt of a reached prompt step this many
days, so a prompt that is the sequence's last step is not withdrawn the moment it is reached."""
PREMIUM_FEATURE_DAYS = 90
EVENT_KINDS = {
    "impression": Touch.Kind.PROMPT_IMPRESSION,
    "click": Touch.Kind.PROMPT_CLICK,
    "dismiss": Touch.Kind.PROMPT_DISMISS,
}
_SIGNER = signing.Signer(salt="playbooks.prompt")
_REF_RE = re.compile(r"(\d+)-(\d+)-(\d+)")


class UnknownPrompt(Exception):
    """The prompt id was not issued by this app (or was altered), or its play has been deleted."""


class PromptNotOffered(Exception):
    """The prompt was offered to another account than the one the event names."""


@dataclass(frozen=True, slots=True)
class PromptRef:
    """What a prompt id stands for: the prompt of `play_id` (in `variant_id`, or none) offered to `account_id`."""

    account_id: int
    play_id: int
    variant_id: int | None


@dataclass(frozen=True, slots=True)
class Prompt:
    """A prompt to show, as the API returns it."""

    id: str
    play: str
    kind: str
    text: str
    cta_label: str
    cta_url: str
    variant: str | None


def prompt_id(ref: PromptRef) -> str:
    """The id of a prompt offered to an account: "<account>-<play>-<variant or 0>:<signature>".

    Stable for one account, play and variant, so the product can tell a prompt it has shown already.
    """
    return _SIGNER.sign(f"{ref.account_id}-{ref.play_id}-{ref.variant_id or 0}")


def prompt_ref(value: str) -> PromptRef | None:
    """The prompt an id stands for; None when the id was not issued here or was altered."""
    try:
        unsigned = _SIGNER.unsign(value)
    except signing.BadSignature:
        return None
    match = _REF_RE.fullmatch(unsigned)
    if match is None:
        return None
    account_id, play_id, variant_id = (int(part) for part in match.groups())
    return PromptRef(account_id=account_id, play_id=play_id, variant_id=variant_id or None)


# --- What to show -----------------------------------------------------------------------------------------


def _reached_prompt_steps(account_id: int, *, at: dt.datetime) -> QuerySet[StepRun]:
    """The prompt steps of `OuterRef("pk")` (a play) that the account has reached in its sequence: the step
    run is done and the enrolment is active, or completed less than PROMPT_STEP_AFTER_DAYS ago; the latest
    step first. A paused or stopped enrolment offers nothing."""
    live = Q(enrollment__status=Enrollment.Status.ACTIVE) | Q(
        enrollment__status=Enrollment.Status.COMPLETED,
        enrollment__ended_at__gt=at - dt.timedelta(days=PROMPT_STEP_AFTER_DAYS),
    )
    return (
        StepRun.objects.filter(
            account_id=account_id,
            enrollment__play=OuterRef("pk"),
            status=StepRun.Status.SENT,
            step__kind=SequenceStep.Kind.PROMPT,
        )
        .filter(live)
        .order_by("-step__position")
    )


def _prompt_plays(account_id: int, *, at: dt.datetime) -> list[Play]:
    """Active plays with prompt text (their own, or a variant's in a running experiment) or a prompt step the
    account has reached, with their enabled rules (metric and plans loaded, for `Rule.as_spec`) and target
    plan. Each play carries `reached_step` (whether the account reached a prompt step of its sequence) and
    `step_text` (the latest reached step's own text, blank for the play's or variant's). Three queries."""
    variant_prompts = Variant.objects.filter(
        experiment__play=OuterRef("pk"), experiment__status=Experiment.Status.RUNNING
    ).exclude(prompt_text="")
    enabled_rules = Rule.objects.filter(enabled=True).select_related("metric").prefetch_related("plans")
    reached = _reached_prompt_steps(account_id, at=at)
    return list(
        Play.objects.active()
        .annotate(
            reached_step=Exists(reached),
            step_text=Subquery(reached.values("step__body")[:1], output_field=TextField()),
        )
        .filter(Q(prompt_text__gt="") | Q(Exists(variant_prompts)) | Q(reached_step=True))
        .select_related("target_plan")
        .prefetch_related(Prefetch("rules", queryset=enabled_rules))
        .order_by("pk")
    )


def _facts(account: Account, *, with_percentile: bool) -> scoring.AccountFacts:
    """The account's facts from its stored indicators and engagement, as flagging builds them. Three queries,
    four with the login percentile (the share of accounts logging in less often, counted in the database)."""
    metrics = {m.pk: m for m in Metric.objects.filter(kind=Metric.Kind.LIMIT)}
    indicators = AccountIndicator.objects.filter(account_id=account.pk, metric_id__in=list(metrics)).values(
        *INDICATOR_FIELDS
    )
    engagement = (
        AccountEngagement.objects.filter(account_id=account.pk)
        .values("account_id", "logins_per_week", "locked_feature_hits", "trial_feature_uses")
        .first()
    )
    facts = account_facts(
        account={"id": account.pk, "plan_id": account.plan_id, "industry": account.industry, "region": account.region},
        indicators=indicators,
        engagement=engagement,
        metrics=metrics,
        logins_sorted=[],
    )
    if with_percentile and facts.logins_per_week:
        # percentile_of: the share of every account's logins strictly below this one's, in percent.
        counts = AccountEngagement.objects.aggregate(
            total=Count("pk"), below=Count("pk", filter=Q(logins_per_week__lt=facts.logins_per_week))
        )
        if counts["total"]:
            facts = replace(facts, login_percentile=counts["below"] / counts["total"] * 100)
    return facts


@dataclass(frozen=True, slots=True)
class _Applicable:
    play: Play
    reasons: list[scoring.Reason]

    @property
    def points(self) -> int:
        return sum(reason.points for reason in self.reasons)


def _applicable(plays: list[Play], facts: scoring.AccountFacts) -> list[_Applicable]:
    """The plays with at least one rule firing for the account, or whose prompt step it has reached in a live
    sequence, most points first (ties: the oldest play)."""
    applicable = []
    for play in plays:
        reasons = [r for r in (scoring.evaluate(rule.as_spec(), facts) for rule in play.rules.all()) if r]
        if reasons or play.reached_step:
            reasons.sort(key=lambda r: (-r.points, r.rule_id))
            applicable.append(_Applicable(play=play, reasons=reasons))
    applicable.sort(key=lambda a: (-a.points, a.play.pk))
    return applicable


def _impressions(touches: list[RecentTouch], *, play_id: int, now: dt.datetime) -> int:
    since = now - dt.timedelta(days=CAP_DAYS)
    return sum(
        1
        for t in touches
        if t.play_id == play_id and t.kind == Touch.Kind.PROMPT_IMPRESSION and since < t.occurred_at <= now
    )


def prompts_offer(*, account: Account, at: dt.datetime) -> list[Prompt]:
    """The prompts to show `account` at `at` (see the module docstring for when a play's prompt is offered).

    `account` needs its plan and owner loaded. A fixed number of queries whatever the number of plays (about
    a dozen), all of them reads.
    A stored prompt template the sandbox refuses (saved around the settings page's check) is skipped.
    """
    if account.status == Account.Status.CHURNED:
        return []
    plays = _prompt_plays(account.pk, at=at)
    if not plays:
        return []
    with_percentile = any(rule.min_login_percentile is not None for play in plays for rule in play.rules.all())
    facts = _facts(account, with_percentile=with_percentile)
    applicable = _applicable(plays, facts)
    if not applicable:
        return []
    arms = experiment_arms(account=account, play_ids=[a.play.pk for a in applicable])
    policy = ScoringPolicy.current()
    longest_gap = max(a.play.min_days_between_touches for a in applicable)
    touches = recent_touches_by_account(account_ids=[account.pk], now=at, days=max(longest_gap, CAP_DAYS)).get(
        account.pk, []
    )
    window_start = at - dt.timedelta(days=WINDOW_DAYS)
    left = policy.max_touches_per_30_days - sum(1 for t in touches if t.occurred_at > window_start)
    merge = _MergeValues(account, facts=facts, at=at)
    offered: list[Prompt] = []
    for item in applicable:
        if len(offered) >= left:
            break
        play = item.play
        experiment, variant = arms.get(play.pk, (None, None))
        if experiment is not None and variant is None:
            continue  # held out: the control group gets nothing from the play
        content = play_content_for(play=play, variant=variant)
        prompt_text = step_content(
            kind=SequenceStep.Kind.PROMPT,
            subject="",
            body=play.step_text or "",
            content=content,
            play_name=play.name,
            position=0,
        ).body
        if not prompt_text.strip():
            continue
        if _impressions(touches, play_id=play.pk, now=at) >= play.prompt_max_per_week:
            continue
        if fatigue_check(
            past_touches(touches, play_id=play.pk),
            play_gap_days=play.min_days_between_touches,
            max_per_30_days=policy.max_touches_per_30_days,
            now=at,
        ):
            continue
        try:
            text = sandbox_render(
                prompt_text,
                merge.values(play=play, reasons=item.reasons, trial_days=content.trial_days, text=prompt_text),
                kind=Kind.TEXT,
            )
        except TemplateRefused as refused:
            logger.warning("Prompt of play %s not offered: its template is refused (%s).", play.pk, refused)
            continue
        offered.append(
            Prompt(
                id=prompt_id(
                    PromptRef(account_id=account.pk, play_id=play.pk, variant_id=variant.pk if variant else None)
                ),
                play=play.name,
                kind=content.prompt_kind,
                text=text.strip(),
                cta_label=content.prompt_cta_label,
                cta_url=content.prompt_cta_url,
                variant=variant.name if variant is not None else None,
            )
        )
    return offered


def account_merge_values(*, account: Account, play: Play, trial_days: int | None, text: str, at: dt.datetime) -> dict:
    """The merge fields `text` can use about `account` for `play`, as a prompt gets them (no ROI note, value
    proposition or trial end: no opportunity): for the play's sequence emails, tasks and notifications. The
    metric is the one nearest its limit. `account` needs its plan and owner loaded. Four queries, a few more
    when `text` names the premium features or the play has no target plan."""
    merge = _MergeValues(account, facts=_facts(account, with_percentile=False), at=at)
    return merge.values(play=play, reasons=[], trial_days=trial_days, text=text)


class _MergeValues:
    """The merge fields a prompt can use about an account, without an opportunity (no ROI note, value
    proposition or trial end): loaded once per request, plans and premium features only when needed."""

    def __init__(self, account: Account, *, facts: scoring.AccountFacts, at: dt.datetime) -> None:
        self.account = account
        self.metrics = facts.metrics
        self.at = at
        self._plans: list[Plan] | None = None
        self._premium: list[str] | None = None

    def _target(self, play: Play) -> Plan | None:
        """The play's target plan, else the cheapest active plan above the account's."""
        if play.target_plan is not None:
            return play.target_plan
        if self._plans is None:
            self._plans = list(Plan.objects.active().order_by("tier_rank", "pk"))
        rank = self.account.plan.tier_rank if self.account.plan_id else -1
        return next((plan for plan in self._plans if plan.tier_rank > rank), None)

    def _premium_features(self) -> list[str]:
        if self._premium is None:
            since = self.at - dt.timedelta(days=PREMIUM_FEATURE_DAYS)
            self._premium = [
                f"{feature} ({uses} time{'s' if uses != 1 else ''})"
                for feature, uses in premium_feature_uses(account=self.account, since=since)
            ]
        return self._premium

    def values(
        self, *, play: Play, reasons: list[scoring.Reason], trial_days: int | None, text: str
    ) -> dict[str, object]:
        """price_delta = target plan's monthly price − current plan's (empty without both). The metric is the
        one of the play's highest-scoring fired rule that names one, else the one nearest its limit."""
        account = self.account
        current = account.plan if account.plan_id else None
        target = self._target(play)
        named = next((self.metrics[r.metric] for r in reasons if r.metric in self.metrics), None)
        measured = [m for m in self.metrics.values() if m.utilization is not None]
        focus = named or max(measured, key=lambda m: m.utilization, default=None)
        utilization = focus.utilization if focus else None
        owner = account.owner
        values: dict[str, object] = {
            "account_name": account.name,
            "current_plan": current.name if current else "current",
            "target_plan": target.name if target else "the next plan",
            "target_price": f"{target.monthly_price:,.2f} {target.currency}" if target else "",
            "price_delta": f"{target.monthly_price - current.monthly_price:,.2f} {target.currency}"
            if target and current
            else "",
            "metric": focus.label if focus else "",
            "utilization": f"{utilization * 100:.0f}%" if utilization is not None else "",
            "projected_limit_date": focus.projected_limit_on if focus else None,
            "trial_days": trial_days,
            "csm_name": (owner.get_full_name() or owner.get_username()) if owner else "",
            "csm_email": owner.email if owner else "",
        }
        if "premium_features" in text:
            values["premium_features"] = self._premium_features()
        return values


# --- What the customer did --------------------------------------------------------------------------------


def prompt_event_record(*, prompt: str, account: Account, event: str, at: dt.datetime) -> Touch:
    """Record that `account` saw, clicked or dismissed the prompt `prompt` (an id from `prompts_offer`) at
    `at`: a touch of kind prompt_impression / prompt_click / prompt_dismiss, with the prompt's play and
    variant. Impressions count against the frequency cap and pitch fatigue from then on.

    Raises UnknownPrompt for an id not issued here or whose play is gone, PromptNotOffered when the id was
    issued to another account. The event is recorded even when a cap has been reached since the prompt was
    offered: it happened. A variant deleted since is recorded as none. The account's arm in the play's
    running experiment is stored here, the first time the product reports a prompt of the play.
    """
    ref = prompt_ref(prompt)
    if ref is None:
        raise UnknownPrompt("No such prompt.")
    if ref.account_id != account.pk:
        raise PromptNotOffered("This prompt was not offered to this account.")
    play = Play.objects.filter(pk=ref.play_id).first()
    if play is None:
        raise UnknownPrompt("The play of this prompt has been deleted.")
    # The account met the play: its arm in a running experiment is stored now (the GET that offered the
    # prompt wrote nothing). Idempotent: the first stored arm stays.
    experiment_assignments_record(pairs=[(account.pk, play.pk)], at=at)
    variant = None
    if ref.variant_id is not None:
        variant = Variant.objects.filter(pk=ref.variant_id, experiment__play=play).first()
    return touch_record(
        account=account,
        play=play,
        variant=variant,
        kind=EVENT_KINDS[event],
        by=None,
        at=at,
        detail=f"{play.get_prompt_kind_display()} prompt",
    )
