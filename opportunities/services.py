"""Writes that move an opportunity through its stages. Each one checks the edge it takes, claims the row
with a conditional UPDATE on its version (a stale write raises Conflict), and writes one OpportunityEvent."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from django.contrib.auth.models import AbstractBaseUser
from django.core.mail import EmailMessage
from django.db import IntegrityError, transaction
from django.db.models import F

from accounts.models import Account, MrrMovement, Plan, movement_kind
from accounts.roles import is_manager_or_admin
from opportunities.models import STAGE_ORDER, LostReason, Note, Opportunity, OpportunityEvent, Outcome, Stage
from opportunities.roi import RoiInputs, roi_calculate, roi_note
from playbooks.experiment_services import experiment_assign, play_credit_record
from playbooks.models import Enrollment, Touch
from playbooks.selectors import touch_refusal
from playbooks.sequence_services import enrollments_stop
from playbooks.services import touch_record

# The one stage each stage moves on to; closing (won, lost, snoozed) has services of its own.
NEXT_STAGE = {STAGE_ORDER[i]: STAGE_ORDER[i + 1] for i in range(len(STAGE_ORDER) - 1)}
# When a stage was entered for the first time, by stage.
STAGE_STAMPS = {Stage.QUALIFY: "qualified_at", Stage.PRESENT: "presented_at"}
WIN_STAGES = {Stage.PRESENT, Stage.CLOSE}
QUALIFICATION_KEYS = ("need_confirmed", "business_goals", "blockers", "budget_confirmed", "decision_maker", "timeline")


class Conflict(Exception):
    """Someone else changed the opportunity since the form was drawn: its version moved on."""


class TransitionNotAllowed(Exception):
    """The opportunity cannot take this step from where it is (wrong stage, closed, unanswered questions)."""


class PitchFatigue(TransitionNotAllowed):
    """The account was touched too recently or too often (the play's gap, the 30-day cap): nothing is sent."""


class HeldOut(TransitionNotAllowed):
    """The account is in the control group of the play's running experiment: the play sends it nothing."""


def _claim(
    opportunity: Opportunity, *, version: int, at: dt.datetime, outcomes: tuple[str, ...] = (Outcome.OPEN,), **changes
) -> Opportunity:
    """Write `changes` if the row is still at `version` and in one of `outcomes`; bump the version.

    One conditional UPDATE: whoever commits first wins, the other gets Conflict instead of overwriting.
    """
    claimed = Opportunity.objects.filter(pk=opportunity.pk, version=version, outcome__in=outcomes).update(
        version=F("version") + 1, updated_at=at, **changes
    )
    if not claimed:
        raise Conflict(f"Opportunity {opportunity.pk} changed since version {version}.")
    opportunity.refresh_from_db()
    return opportunity


def _event(
    opportunity: Opportunity,
    *,
    kind: str,
    by: AbstractBaseUser | None,
    at: dt.datetime,
    from_stage: str = "",
    to_stage: str = "",
    changes: dict | None = None,
    message: str = "",
) -> OpportunityEvent:
    return OpportunityEvent.objects.create(
        opportunity=opportunity,
        actor=by,
        occurred_at=at,
        kind=kind,
        from_stage=from_stage,
        to_stage=to_stage,
        changes=changes or {},
        message=message,
    )


def _require_open(opportunity: Opportunity, *, version: int | None = None) -> None:
    """The opportunity is open and, when the form's `version` is given, still at it: a form drawn before
    someone else's change answers Conflict (409, a fresh panel) even when that change also closed it or
    moved it on, rather than a refusal that would hide the other change."""
    if version is not None and opportunity.version != version:
        raise Conflict(f"Opportunity {opportunity.pk} changed since version {version}.")
    if opportunity.outcome != Outcome.OPEN:
        raise TransitionNotAllowed("This opportunity is closed.")


def _require_answered(qualification: dict) -> None:
    missing = [key for key in ("need_confirmed", "budget_confirmed") if qualification.get(key) is None]
    if missing:
        raise TransitionNotAllowed("Answer whether the need and the budget are confirmed before moving on.")


def _stage_changes(to: Stage, *, opportunity: Opportunity, at: dt.datetime) -> dict:
    changes: dict = {"stage": to, "stage_entered_at": at}
    stamp = STAGE_STAMPS.get(to)
    if stamp and getattr(opportunity, stamp) is None:
        changes[stamp] = at
    return changes


@transaction.atomic
def opportunity_advance(
    *, opportunity: Opportunity, to: Stage, by: AbstractBaseUser, at: dt.datetime, version: int
) -> Opportunity:
    """Move an open opportunity one stage on (identify -> qualify -> present -> close), never back or across.

    Leaving Qualify needs the need and budget answered; leaving Present needs a target plan.
    """
    _require_open(opportunity, version=version)
    from_stage = opportunity.stage
    if NEXT_STAGE.get(Stage(from_stage)) != to:
        raise TransitionNotAllowed(f"An opportunity in {Stage(from_stage).label} cannot move to {Stage(to).label}.")
    if from_stage == Stage.QUALIFY:
        _require_answered(opportunity.qualification)
    if from_stage == Stage.PRESENT and opportunity.target_plan_id is None:
        raise TransitionNotAllowed("Choose the plan to present before moving on.")
    _claim(opportunity, version=version, at=at, **_stage_changes(to, opportunity=opportunity, at=at))
    _event(opportunity, kind=OpportunityEvent.Kind.STAGE_CHANGED, by=by, at=at, from_stage=from_stage, to_stage=to)
    return opportunity


@transaction.atomic
def opportunity_qualify(
    *,
    opportunity: Opportunity,
    answers: dict,
    move_on: bool,
    by: AbstractBaseUser,
    at: dt.datetime,
    version: int,
    next_step_on: dt.date | None = None,
) -> Opportunity:
    """Save the qualification answers of an opportunity in Qualify; with `move_on`, go on to Present.

    Moving on requires `need_confirmed` and `budget_confirmed` answered (True or False, not None).
    """
    _require_open(opportunity, version=version)
    if opportunity.stage != Stage.QUALIFY:
        raise TransitionNotAllowed("Only an opportunity in Qualify takes qualification answers.")
    qualification = {key: answers.get(key) for key in QUALIFICATION_KEYS}
    changes: dict = {"qualification": qualification, "next_step_on": next_step_on}
    if move_on:
        _require_answered(qualification)
        changes.update(_stage_changes(Stage.PRESENT, opportunity=opportunity, at=at))
    _claim(opportunity, version=version, at=at, **changes)
    if move_on:
        _event(
            opportunity,
            kind=OpportunityEvent.Kind.STAGE_CHANGED,
            by=by,
            at=at,
            from_stage=Stage.QUALIFY,
            to_stage=Stage.PRESENT,
            changes={"qualification": qualification},
        )
    else:
        _event(opportunity, kind=OpportunityEvent.Kind.UPDATED, by=by, at=at, changes={"qualification": qualification})
    return opportunity


@transaction.atomic
def opportunity_present(
    *,
    opportunity: Opportunity,
    target_plan: Plan,
    value_proposition: str,
    roi: RoiInputs,
    trial_ends_on: dt.date | None,
    move_on: bool,
    by: AbstractBaseUser,
    at: dt.datetime,
    version: int,
    next_step_on: dt.date | None = None,
) -> Opportunity:
    """Record what is presented: the target plan, the value proposition, the ROI (computed here and saved as
    the ROI note) and an optional trial of the target plan; with `move_on`, go on to Close.

    The expected MRR delta is the target plan's monthly price minus the account's MRR today.
    """
    _require_open(opportunity, version=version)
    if opportunity.stage != Stage.PRESENT:
        raise TransitionNotAllowed("Only an opportunity in Present takes a presentation.")
    account = opportunity.account
    if account.plan_id and target_plan.tier_rank <= account.plan.tier_rank:
        raise TransitionNotAllowed("Present a plan above the account's current one.")
    if trial_ends_on is not None and trial_ends_on <= at.date():
        raise TransitionNotAllowed("A trial ends after today.")
    result = roi_calculate(roi)
    note = roi_note(roi, result, currency=account.currency)
    changes: dict = {
        "target_plan": target_plan,
        "expected_mrr_delta": target_plan.monthly_price - account.mrr,
        "roi_inputs": {**roi.as_json(), "value_proposition": value_proposition},
        "roi_note": note,
        "trial_plan": target_plan if trial_ends_on else None,
        "trial_ends_on": trial_ends_on,
        "next_step_on": next_step_on,
    }
    if move_on:
        changes.update(_stage_changes(Stage.CLOSE, opportunity=opportunity, at=at))
    _claim(opportunity, version=version, at=at, **changes)
    logged = {"target_plan": target_plan.name, "roi_note": note, "trial_ends_on": str(trial_ends_on or "")}
    if move_on:
        _event(
            opportunity,
            kind=OpportunityEvent.Kind.STAGE_CHANGED,
            by=by,
            at=at,
            from_stage=Stage.PRESENT,
            to_stage=Stage.CLOSE,
            changes=logged,
            message=note,
        )
    else:
        _event(opportunity, kind=OpportunityEvent.Kind.UPDATED, by=by, at=at, changes=logged, message=note)
    return opportunity


@transaction.atomic
def opportunity_close_won(
    *, opportunity: Opportunity, plan: Plan, mrr_delta: Decimal, by: AbstractBaseUser, at: dt.datetime, version: int
) -> Opportunity:
    """Close as won from Present or Close: the account moves to `plan` at MRR + `mrr_delta`, and the change is
    recorded as an MrrMovement (source "opportunity", kind from `movement_kind`) in the same transaction, and
    the win is credited to the play that touched the account first (playbooks `play_credit_record`)."""
    _require_open(opportunity, version=version)
    if opportunity.stage not in WIN_STAGES:
        raise TransitionNotAllowed("An opportunity is won from Present or Close.")
    # The account row is locked so a billing webhook cannot change the MRR between our read and write.
    account = Account.objects.select_for_update().get(pk=opportunity.account_id)
    mrr_before = account.mrr
    mrr_after = mrr_before + mrr_delta
    if mrr_after < 0:
        raise TransitionNotAllowed("The MRR cannot go below zero.")
    _claim(
        opportunity,
        version=version,
        at=at,
        outcome=Outcome.WON,
        stage=Stage.CLOSE,
        closed_at=at,
        actual_mrr_delta=mrr_delta,
        target_plan=plan,
    )
    plan_before_id = account.plan_id
    paid_before = mrr_before > 0 or account.mrr_movements.filter(mrr_after__gt=0).exists()
    kind = movement_kind(mrr_before=mrr_before, mrr_after=mrr_after, paid_before=paid_before)
    Account.objects.filter(pk=account.pk).update(plan=plan, mrr=mrr_after, plan_started_on=at.date(), updated_at=at)
    if kind is not None:
        MrrMovement.objects.create(
            account=account,
            occurred_on=at.date(),
            kind=kind,
            mrr_before=mrr_before,
            mrr_after=mrr_after,
            currency=account.currency,
            plan_before_id=plan_before_id,
            plan_after=plan,
            source=MrrMovement.Source.OPPORTUNITY,
            external_ref=f"opportunity:{opportunity.pk}",
        )
    _event(
        opportunity,
        kind=OpportunityEvent.Kind.CLOSED,
        by=by,
        at=at,
        from_stage=opportunity.stage,
        to_stage=Stage.CLOSE,
        changes={"outcome": Outcome.WON, "plan": plan.name, "mrr_delta": str(mrr_delta)},
        message=f"Won: {plan.name}, {mrr_delta:+,.2f} {account.currency} MRR",
    )
    play_credit_record(opportunity_id=opportunity.pk, account=account, won_at=at, mrr_delta=mrr_delta)
    # The account's play sequences end: all of them when it upgraded, else the ones working for this one.
    if kind == MrrMovement.Kind.EXPANSION:
        enrollments_stop(account_ids=[account.pk], reason=Enrollment.StopReason.UPGRADED, at=at)
    enrollments_stop(opportunity_ids=[opportunity.pk], reason=Enrollment.StopReason.CLOSED, at=at)
    return opportunity


@transaction.atomic
def opportunity_close_lost(
    *, opportunity: Opportunity, reason: LostReason, detail: str, by: AbstractBaseUser, at: dt.datetime, version: int
) -> Opportunity:
    """Close as lost from any open stage, with a reason from the admin-edited list and free text."""
    _require_open(opportunity, version=version)
    from_stage = opportunity.stage
    _claim(
        opportunity, version=version, at=at, outcome=Outcome.LOST, closed_at=at, lost_reason=reason, lost_detail=detail
    )
    _event(
        opportunity,
        kind=OpportunityEvent.Kind.CLOSED,
        by=by,
        at=at,
        from_stage=from_stage,
        changes={"outcome": Outcome.LOST, "reason": reason.key},
        message=f"Lost: {reason.label}" + (f" ({detail})" if detail else ""),
    )
    enrollments_stop(opportunity_ids=[opportunity.pk], reason=Enrollment.StopReason.CLOSED, at=at)
    return opportunity


@transaction.atomic
def opportunity_snooze(
    *, opportunity: Opportunity, until: dt.date, by: AbstractBaseUser, at: dt.datetime, version: int
) -> Opportunity:
    """Not now: set the opportunity aside until `until` (after today); it returns to the queue on that day."""
    _require_open(opportunity, version=version)
    if until <= at.date():
        raise TransitionNotAllowed("Snooze until a day after today.")
    _claim(opportunity, version=version, at=at, outcome=Outcome.SNOOZED, closed_at=at, snoozed_until=until)
    _event(
        opportunity,
        kind=OpportunityEvent.Kind.CLOSED,
        by=by,
        at=at,
        changes={"outcome": Outcome.SNOOZED, "snoozed_until": until.isoformat()},
        message=f"Snoozed until {until:%b %-d, %Y}",
    )
    enrollments_stop(opportunity_ids=[opportunity.pk], reason=Enrollment.StopReason.CLOSED, at=at)
    return opportunity


@transaction.atomic
def opportunity_reopen(*, opportunity: Opportunity, by: AbstractBaseUser, at: dt.datetime, version: int) -> Opportunity:
    """Take back a snoozed opportunity whose date has come, in the stage it was set aside in."""
    if opportunity.outcome != Outcome.SNOOZED:
        raise TransitionNotAllowed("Only a snoozed opportunity can be reopened.")
    try:
        with transaction.atomic():
            _claim(
                opportunity, version=version, at=at, outcomes=(Outcome.SNOOZED,), outcome=Outcome.OPEN, closed_at=None
            )
    except IntegrityError as error:
        raise TransitionNotAllowed("The account already has another open opportunity.") from error
    _event(opportunity, kind=OpportunityEvent.Kind.REOPENED, by=by, at=at)
    return opportunity


@transaction.atomic
def opportunity_open_manually(
    *, account: Account, by: AbstractBaseUser, at: dt.datetime, target_plan: Plan | None = None
) -> Opportunity:
    """A CSM opens an opportunity by hand, in Identify, owned by them; one open per account still holds."""
    try:
        with transaction.atomic():
            opportunity = Opportunity.objects.create(
                account=account,
                source=Opportunity.Source.MANUAL,
                owner=by,
                currency=account.currency,
                target_plan=target_plan,
                identified_at=at,
                stage_entered_at=at,
            )
    except IntegrityError as error:
        raise TransitionNotAllowed("This account already has an open opportunity.") from error
    _event(
        opportunity, kind=OpportunityEvent.Kind.CREATED, by=by, at=at, to_stage=Stage.IDENTIFY, message="Opened by hand"
    )
    return opportunity


@transaction.atomic
def opportunity_assign(
    *, opportunity: Opportunity, owner: AbstractBaseUser, by: AbstractBaseUser, at: dt.datetime, version: int
) -> Opportunity:
    """A manager hands an opportunity to another CSM."""
    if not is_manager_or_admin(by):
        raise TransitionNotAllowed("Only a manager assigns opportunities.")
    before = opportunity.owner_id
    _claim(opportunity, version=version, at=at, outcomes=(Outcome.OPEN, Outcome.SNOOZED), owner=owner)
    _event(
        opportunity,
        kind=OpportunityEvent.Kind.ASSIGNED,
        by=by,
        at=at,
        changes={"owner_before": before, "owner_after": owner.pk},
        message=f"Assigned to {owner.get_full_name() or owner.get_username()}",
    )
    return opportunity


@transaction.atomic
def opportunity_email_send(
    *,
    opportunity: Opportunity,
    to: list[str],
    subject: str,
    body: str,
    by: AbstractBaseUser,
    at: dt.datetime,
    version: int,
) -> Opportunity:
    """Send the presentation email through Django's mailer and record it in the timeline.

    The version is claimed first, so a stale form sends nothing; the mail goes out only if the
    transaction commits, so a failure afterwards leaves no sent mail without its event. The email is a
    touch of the account by the opportunity's play: refused (PitchFatigue) when the play's gap between
    touches or the 30-day cap would be exceeded, recorded otherwise. When the play runs an experiment, the
    account is assigned to its arm (if it was not yet): the control group is refused (HeldOut), a variant
    is recorded on the touch.
    """
    _require_open(opportunity, version=version)
    arm = experiment_assign(account=opportunity.account, play=opportunity.play, at=at) if opportunity.play else None
    if arm is not None and arm[1] is None:
        raise HeldOut(f"This account is in the control group of experiment “{arm[0].name}”: the play sends it nothing.")
    if refusal := touch_refusal(account=opportunity.account, play=opportunity.play, now=at):
        raise PitchFatigue(refusal)
    _claim(opportunity, version=version, at=at)
    touch_record(
        account=opportunity.account,
        play=opportunity.play,
        variant=arm[1] if arm is not None else None,
        kind=Touch.Kind.EMAIL,
        by=by,
        at=at,
        detail=subject,
    )
    _event(
        opportunity,
        kind=OpportunityEvent.Kind.EMAIL_SENT,
        by=by,
        at=at,
        changes={"to": to, "subject": subject},
        message=subject,
    )
    message = EmailMessage(subject=subject, body=body, to=to, reply_to=[by.email] if by.email else None)
    transaction.on_commit(message.send)
    return opportunity


@transaction.atomic
def note_add(
    *, account: Account, author: AbstractBaseUser, body: str, at: dt.datetime, opportunity: Opportunity | None = None
) -> Note:
    """A note on the account (and one of its opportunities); on an opportunity it also lands in its audit trail."""
    body = body.strip()
    if not body:
        raise TransitionNotAllowed("A note needs some text.")
    if opportunity is not None and opportunity.account_id != account.pk:
        raise TransitionNotAllowed("That opportunity belongs to another account.")
    note = Note.objects.create(account=account, opportunity=opportunity, author=author, body=body, created_at=at)
    if opportunity is not None:
        _event(opportunity, kind=OpportunityEvent.Kind.NOTE, by=author, at=at, changes={"note": note.pk})
    return note
