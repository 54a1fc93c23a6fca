"""Play sequences: enrolling an account in a play's steps, pausing, resuming and stopping it, and delivering the
steps that come due, each exactly once.

Enrolment (`enrollment_start`, `enrollments_start_automatic`) creates the Enrollment and one StepRun per step,
due `delay_days` after the trigger (`playbooks.sequences.step_due_at`). The account's arm in the play's running
experiment is assigned and stored then; the control group is refused (it gets nothing from the play) and its
assignment is kept, as the experiment's results need it. The variant is stored on the enrolment and fixed for
its life: every step falls back to the variant's content, then the play's.

Stopping (`enrollment_stop`, `enrollments_stop`) ends an active or paused enrolment and cancels its pending
steps (status cancelled, the reason in their detail): the account upgraded (any expansion MRR movement: the
`accounts.ingest.mrr_expanded` signal, and a won close), its opportunity closed (won, lost, snoozed, cleared),
a user stopped it, the account churned or the play was deactivated (both found by each delivery run). An
opt-out does not stop the sequence: email steps to the address are skipped when they come due, whatever the
account or play, for good; the other steps go on.

Pausing keeps the pending steps pending (a paused enrolment's steps do not run); resuming moves them on by the
length of the pause (`playbooks.sequences.resumed_due_at`): the clock stops while paused.

Delivery (`steps_deliver_due`, every minute from Celery beat) and its guarantee:

1. Claim, set-based, in one transaction: the pending step runs due by `at` of active enrolments, oldest first,
   up to `limit` (on PostgreSQL `SELECT ... FOR UPDATE SKIP LOCKED`, so concurrent workers take disjoint
   rows), then one conditional `UPDATE ... SET status = 'claimed', claim_token, claimed_at, attempts + 1
   WHERE status = 'pending'`. A row is claimed by one worker only: the second UPDATE finds it no longer
   pending (SQLite, which has no row locks, relies on that alone).
2. Steps that only write to this database (task, notification, prompt) are executed inside that same
   transaction, each in a savepoint: the claim and the outcome commit together or not at all, so they are
   exactly-once by construction. One that raises is rolled back whole and retried at the next run, up to
   MAX_ATTEMPTS claims, then failed.
3. An email leaves the database, so it is at most once: after the claim commits, a short transaction locks the
   account (two emails to one account never pass pitch fatigue together), re-checks the enrolment, the
   contact, the opt-out and fatigue, and records the touch; then the mail is sent; then the outcome is
   written (sent, or failed with the mailer's error and the touch removed). A failed email is never retried;
   a preparation that raised sent nothing and was rolled back, so it is retried like a database-only step.
   A row left claimed by a worker that died (claimed more than CLAIM_TIMEOUT ago) is failed by the next run,
   "delivery interrupted", and not retried: the customer may have got it, and is never emailed twice.
4. Pitch fatigue (`playbooks.fatigue`): an email or prompt step that would exceed the play's gap or the 30-day
   cap waits (back to pending, due when the caps allow, `waited_until` set) or is skipped, per the step's
   `when_fatigued`; its detail says which and why.
5. An enrolment whose steps are all done (none pending or claimed) completes.

Every outcome keeps its words in the step run's `detail`, which the account's timeline shows.
"""

from __future__ import annotations

import datetime as dt
import logging
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from django.contrib.auth.models import AbstractBaseUser
from django.core.mail import EmailMessage
from django.db import IntegrityError, connection, transaction
from django.db.models import Exists, F, OuterRef, Q
from django.utils import timezone

from accounts.models import Account, Contact, Notification, Task
from accounts.work_services import notify, task_create
from playbooks.experiment_services import experiment_assign, experiment_assignments_record, play_content_for
from playbooks.models import Assignment, Enrollment, Experiment, Play, ScoringPolicy, SequenceStep, StepRun, Touch
from playbooks.prompts import account_merge_values
from playbooks.sandbox import Kind, TemplateRefused, sandbox_render
from playbooks.selectors import recent_touches
from playbooks.sequences import (
    FatigueAction,
    FatigueDecision,
    day_label,
    fatigue_decision,
    pause_length,
    step_content,
    step_due_at,
)
from playbooks.services import touch_record
from playbooks.unsubscribe import email_opted_out, unsubscribable_email

logger = logging.getLogger(__name__)

LIVE = (Enrollment.Status.ACTIVE, Enrollment.Status.PAUSED)
CLAIM_TIMEOUT = dt.timedelta(minutes=15)
MAX_ATTEMPTS = 5
INTERRUPTED = "Delivery interrupted; not retried so the customer is never emailed twice."
DETAIL_MAX = StepRun._meta.get_field("detail").max_length
DB_ONLY_KINDS = (SequenceStep.Kind.TASK, SequenceStep.Kind.NOTIFY, SequenceStep.Kind.PROMPT)


class SequenceRefused(Exception):
    """The account cannot start, pause, resume or stop this sequence; the message says why."""


@dataclass
class DeliveryReport:
    """What one delivery run did: step runs claimed, and their outcomes."""

    claimed: int = 0
    sent: int = 0
    skipped: int = 0
    failed: int = 0
    waiting: int = 0
    cancelled: int = 0
    retried: int = 0
    interrupted: int = 0
    completed: int = 0
    stopped: dict[str, int] = field(default_factory=dict)


def _clip(text: str) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= DETAIL_MAX else text[: DETAIL_MAX - 1] + "…"


def _lower_first(text: str) -> str:
    return text[:1].lower() + text[1:]


def _name(user) -> str:
    return (user.get_full_name() or user.get_username()) if user is not None else "nobody"


# --- Enrolment ----------------------------------------------------------------------------------------------


def enrollment_start(
    *,
    account: Account,
    play: Play,
    at: dt.datetime,
    by: AbstractBaseUser | None = None,
    opportunity_id: int | None = None,
) -> Enrollment:
    """Enrol `account` in `play`'s sequence at `at` (the trigger): one Enrollment, one pending StepRun per step
    due at `at` + the step's delay. `by` None = started automatically.

    Refused (SequenceRefused) when the play is inactive or has no steps, the account has churned or already
    runs the play (one live enrolment per account and play, also a constraint in the database), or the
    account is in the control group of the play's running experiment. The arm is assigned and stored before
    that last check, in its own statement, so a refused control account stays recorded as held out.
    """
    if not play.active:
        raise SequenceRefused(f"“{play.name}” is not active.")
    if account.status == Account.Status.CHURNED:
        raise SequenceRefused("The account has churned.")
    steps = list(SequenceStep.objects.filter(play=play).order_by("position"))
    if not steps:
        raise SequenceRefused(f"“{play.name}” has no steps yet.")
    if Enrollment.objects.filter(account=account, play=play, status__in=LIVE).exists():
        raise SequenceRefused(f"The account already runs “{play.name}”.")
    arm = experiment_assign(account=account, play=play, at=at)
    if arm is not None and arm[1] is None:
        raise SequenceRefused(
            f"This account is in the control group of experiment “{arm[0].name}”: the play sends it nothing."
        )
    try:
        with transaction.atomic():
            enrollment = Enrollment.objects.create(
                play=play,
                account=account,
                variant=arm[1] if arm is not None else None,
                opportunity_id=opportunity_id,
                started_at=at,
                started_by=by,
            )
            StepRun.objects.bulk_create(_step_runs(enrollment.pk, account.pk, steps, started_at=at))
    except IntegrityError as error:
        raise SequenceRefused(f"The account already runs “{play.name}”.") from error
    return enrollment


def _step_runs(enrollment_id: int, account_id: int, steps: Iterable[SequenceStep], *, started_at: dt.datetime):
    return [
        StepRun(
            enrollment_id=enrollment_id,
            step=step,
            account_id=account_id,
            due_at=step_due_at(started_at=started_at, delay_days=step.delay_days),
        )
        for step in steps
    ]


def enrollments_start_automatic(*, opportunities: Iterable[tuple[int, int, int]], at: dt.datetime) -> int:
    """Enrol each (opportunity id, account id, play id) whose play is active, automatic and has steps, as
    flagging opens the opportunities. Set-based, in the caller's transaction: a fixed number of queries
    whatever the number of opportunities (one when no play is automatic).

    The arms are assigned and stored first (`experiment_assignments_record`); control-group accounts are not
    enrolled. An account already running the play keeps its enrolment (ON CONFLICT DO NOTHING on the one-live
    constraint). Returns the number of enrolments started.
    """
    wanted = list(opportunities)
    if not wanted:
        return 0
    steps: dict[int, list[SequenceStep]] = {}
    for step in SequenceStep.objects.filter(
        play_id__in={play_id for _, _, play_id in wanted}, play__active=True, play__run_mode=Play.RunMode.AUTOMATIC
    ).order_by("play_id", "position"):
        steps.setdefault(step.play_id, []).append(step)
    wanted = [row for row in wanted if row[2] in steps]
    if not wanted:
        return 0
    pairs = [(account_id, play_id) for _, account_id, play_id in wanted]
    experiment_assignments_record(pairs=pairs, at=at)
    arms = {
        (account_id, play_id): variant_id
        for account_id, play_id, variant_id in Assignment.objects.filter(
            experiment__status=Experiment.Status.RUNNING,
            experiment__play_id__in={play_id for _, play_id in pairs},
            account_id__in={account_id for account_id, _ in pairs},
        ).values_list("account_id", "experiment__play_id", "variant_id")
    }
    held_out = {pair for pair, variant_id in arms.items() if variant_id is None}
    Enrollment.objects.bulk_create(
        [
            Enrollment(
                play_id=play_id,
                account_id=account_id,
                variant_id=arms.get((account_id, play_id)),
                opportunity_id=opportunity_id,
                started_at=at,
            )
            for opportunity_id, account_id, play_id in wanted
            if (account_id, play_id) not in held_out
        ],
        ignore_conflicts=True,
    )
    started = list(
        Enrollment.objects.filter(
            account_id__in={account_id for account_id, _ in pairs},
            play_id__in=steps,
            opportunity_id__in={opportunity_id for opportunity_id, _, _ in wanted},
            status=Enrollment.Status.ACTIVE,
            started_at=at,
            started_by__isnull=True,
        ).values_list("pk", "account_id", "play_id")
    )
    StepRun.objects.bulk_create(
        [
            run
            for pk, account_id, play_id in started
            for run in _step_runs(pk, account_id, steps[play_id], started_at=at)
        ],
        ignore_conflicts=True,
    )
    return len(started)


# --- Pause, resume, stop --------------------------------------------------------------------------------------


@transaction.atomic
def enrollment_pause(*, enrollment: Enrollment, by: AbstractBaseUser, at: dt.datetime) -> Enrollment:
    """A CSM holds the sequence: active -> paused. Its pending steps stay pending and do not run until it is
    resumed. A conditional UPDATE on the status: pausing twice, or a sequence that ended, is refused."""
    paused = Enrollment.objects.filter(pk=enrollment.pk, status=Enrollment.Status.ACTIVE).update(
        status=Enrollment.Status.PAUSED, paused_at=at
    )
    if not paused:
        raise SequenceRefused(f"Only a running sequence can be paused; this one is {_status_of(enrollment)}.")
    enrollment.refresh_from_db()
    return enrollment


@transaction.atomic
def enrollment_resume(*, enrollment: Enrollment, by: AbstractBaseUser, at: dt.datetime) -> Enrollment:
    """paused -> active, with every pending step moved on by the length of the pause
    (`playbooks.sequences.resumed_due_at`): the
    steps left keep their gaps, and a step due before the pause is due at once. The row is locked for the
    read of `paused_at` and the two updates."""
    row = Enrollment.objects.select_for_update().filter(pk=enrollment.pk).first()
    if row is None or row.status != Enrollment.Status.PAUSED:
        raise SequenceRefused(f"Only a paused sequence can be resumed; this one is {_status_of(enrollment)}.")
    shift = pause_length(paused_at=row.paused_at or at, resumed_at=at)
    if shift:
        StepRun.objects.filter(enrollment=row, status=StepRun.Status.PENDING).update(due_at=F("due_at") + shift)
    Enrollment.objects.filter(pk=row.pk).update(status=Enrollment.Status.ACTIVE, paused_at=None)
    enrollment.refresh_from_db()
    return enrollment


def _status_of(enrollment: Enrollment) -> str:
    status = Enrollment.objects.filter(pk=enrollment.pk).values_list("status", flat=True).first()
    return Enrollment.Status(status).label.lower() if status else "deleted"


@transaction.atomic
def enrollment_stop(
    *, enrollment: Enrollment, reason: str, at: dt.datetime, by: AbstractBaseUser | None = None
) -> Enrollment:
    """End a running or paused sequence for `reason` (an Enrollment.StopReason) and cancel its pending steps.
    An ended one is refused."""
    if not _stop(Enrollment.objects.filter(pk=enrollment.pk), reason=reason, at=at, by=by):
        raise SequenceRefused(f"This sequence has already ended ({_status_of(enrollment)}).")
    enrollment.refresh_from_db()
    return enrollment


def enrollments_stop(
    *,
    account_ids: Iterable[int] | None = None,
    opportunity_ids: Iterable[int] | None = None,
    reason: str,
    at: dt.datetime,
) -> int:
    """Stop every live enrolment of the accounts `account_ids` or working for the opportunities
    `opportunity_ids`, for `reason`, cancelling their pending steps. Set-based: three queries (one when none
    is live). Returns the number stopped."""
    match = Q(pk__in=[])
    if account_ids is not None:
        match |= Q(account_id__in=list(account_ids))
    if opportunity_ids is not None:
        match |= Q(opportunity_id__in=list(opportunity_ids))
    with transaction.atomic(savepoint=False):
        return _stop(Enrollment.objects.filter(match), reason=reason, at=at)


def _stop(enrollments, *, reason: str, at: dt.datetime, by: AbstractBaseUser | None = None) -> int:
    """Stop the live ones among `enrollments`: a conditional UPDATE on the status, then their pending step runs
    cancelled with the reason."""
    reason = Enrollment.StopReason(reason)
    ids = list(enrollments.filter(status__in=LIVE).values_list("pk", flat=True))
    if not ids:
        return 0
    stopped = Enrollment.objects.filter(pk__in=ids, status__in=LIVE).update(
        status=Enrollment.Status.STOPPED, stop_reason=reason, ended_at=at, paused_at=None
    )
    why = f"stopped by {_name(by)}" if reason == Enrollment.StopReason.STOPPED_BY_USER and by else reason.label
    StepRun.objects.filter(enrollment_id__in=ids, status=StepRun.Status.PENDING).update(
        status=StepRun.Status.CANCELLED,
        claim_token=None,
        executed_at=at,
        detail=_clip(f"Cancelled: {_lower_first(why)}."),
    )
    return stopped


def _stop_lapsed(at: dt.datetime, report: DeliveryReport) -> None:
    """Stop the live enrolments of churned accounts and of deactivated plays (a few queries)."""
    for reason, match in (
        (Enrollment.StopReason.CHURNED, Q(account__status=Account.Status.CHURNED)),
        (Enrollment.StopReason.PLAY_INACTIVE, Q(play__active=False)),
    ):
        with transaction.atomic():
            stopped = _stop(Enrollment.objects.filter(match), reason=reason, at=at)
        if stopped:
            report.stopped[reason.value] = report.stopped.get(reason.value, 0) + stopped


# --- Delivery -----------------------------------------------------------------------------------------------


def steps_deliver_due(*, at: dt.datetime, limit: int = 500) -> DeliveryReport:
    """Deliver the step runs due by `at`, at most `limit` of them, each exactly once (see the module docstring
    for the guarantee). Safe to run from several workers at once and to run again at any time."""
    report = DeliveryReport()
    report.interrupted = StepRun.objects.filter(
        status=StepRun.Status.CLAIMED, claimed_at__lt=at - CLAIM_TIMEOUT
    ).update(status=StepRun.Status.FAILED, claim_token=None, executed_at=at, detail=INTERRUPTED)
    _stop_lapsed(at, report)
    token = uuid.uuid4()
    with transaction.atomic():
        due = StepRun.objects.filter(
            status=StepRun.Status.PENDING, due_at__lte=at, enrollment__status=Enrollment.Status.ACTIVE
        ).order_by("due_at", "pk")
        if connection.features.has_select_for_update_skip_locked:
            due = due.select_for_update(skip_locked=True, of=("self",))
        ids = list(due.values_list("pk", flat=True)[:limit])
        if not ids:
            return _finish(report, enrollment_ids=[], at=at)
        report.claimed = StepRun.objects.filter(pk__in=ids, status=StepRun.Status.PENDING).update(
            status=StepRun.Status.CLAIMED, claim_token=token, claimed_at=at, attempts=F("attempts") + 1
        )
        runs = list(
            StepRun.objects.filter(claim_token=token, status=StepRun.Status.CLAIMED)
            .select_related("step", "enrollment__play", "enrollment__variant", "account__owner", "account__plan")
            .order_by("due_at", "pk")
        )
        for run in runs:
            if run.step.kind in DB_ONLY_KINDS:
                _deliver_in_database(run, at=at, report=report)
    for run in runs:
        if run.step.kind == SequenceStep.Kind.EMAIL:
            try:
                _deliver_email(run, at=at, report=report)
            except Exception:  # e.g. the database went away after the send: the next emails still get their turn
                logger.exception("Step run %s: no outcome recorded; left claimed, failed as interrupted later.", run.pk)
    return _finish(report, enrollment_ids={run.enrollment_id for run in runs}, at=at)


def enrollments_complete_finished(*, play: Play, at: dt.datetime) -> int:
    """Complete the play's live enrolments with no step left to run: after a step was deleted, the ones whose
    only remaining step it was would otherwise stay running with nothing to do. One query."""
    open_runs = StepRun.objects.filter(
        enrollment=OuterRef("pk"), status__in=[StepRun.Status.PENDING, StepRun.Status.CLAIMED]
    )
    return (
        Enrollment.objects.filter(play=play, status__in=[Enrollment.Status.ACTIVE, Enrollment.Status.PAUSED])
        .exclude(Exists(open_runs))
        .update(status=Enrollment.Status.COMPLETED, ended_at=at, paused_at=None)
    )


def _finish(report: DeliveryReport, *, enrollment_ids: Iterable[int], at: dt.datetime) -> DeliveryReport:
    """Complete the enrolments among `enrollment_ids` with no step left to run. One query."""
    enrollment_ids = list(enrollment_ids)
    if enrollment_ids:
        open_runs = StepRun.objects.filter(
            enrollment=OuterRef("pk"), status__in=[StepRun.Status.PENDING, StepRun.Status.CLAIMED]
        )
        report.completed = (
            Enrollment.objects.filter(pk__in=enrollment_ids, status=Enrollment.Status.ACTIVE)
            .exclude(Exists(open_runs))
            .update(status=Enrollment.Status.COMPLETED, ended_at=at)
        )
    if report.claimed or report.interrupted or report.stopped:
        logger.info("Sequence steps delivered at %s: %s", at.isoformat(), report)
    return report


def _outcome(run: StepRun, status: str, detail: str, *, at: dt.datetime, report: DeliveryReport, **fields) -> None:
    """Write a claimed run's outcome, conditional on its claim still being this one (a run reaped as interrupted
    keeps that outcome)."""
    StepRun.objects.filter(pk=run.pk, status=StepRun.Status.CLAIMED, claim_token=run.claim_token).update(
        status=status, detail=_clip(detail), executed_at=at, **fields
    )
    setattr(report, status, getattr(report, status) + 1)


def _wait_or_skip(run: StepRun, decision: FatigueDecision, *, at: dt.datetime, report: DeliveryReport) -> None:
    """Pitch fatigue holds the step: back to pending, due when the caps allow; or skipped."""
    if decision.action == FatigueAction.WAIT:
        until = timezone.localtime(decision.until)
        StepRun.objects.filter(pk=run.pk, status=StepRun.Status.CLAIMED, claim_token=run.claim_token).update(
            status=StepRun.Status.PENDING,
            claim_token=None,
            due_at=decision.until,
            waited_until=decision.until,
            detail=_clip(f"Waiting: pitch fatigue until {day_label(until)}. {decision.reason}"),
        )
        report.waiting += 1
        return
    _outcome(run, StepRun.Status.SKIPPED, f"Skipped: pitch fatigue. {decision.reason}", at=at, report=report)


def _fatigue(run: StepRun, *, at: dt.datetime) -> FatigueDecision:
    play = run.enrollment.play
    return fatigue_decision(
        recent_touches(account=run.account, play=play, now=at, days=play.min_days_between_touches),
        play_gap_days=play.min_days_between_touches,
        max_per_30_days=ScoringPolicy.current().max_touches_per_30_days,
        now=at,
        when_fatigued=run.step.when_fatigued,
    )


class _Render:
    """A step's templates rendered for its account; the merge values are loaded once, and only when a template
    uses one."""

    def __init__(self, run: StepRun, *, at: dt.datetime) -> None:
        self.run = run
        self.at = at
        enrollment = run.enrollment
        self.content = play_content_for(play=enrollment.play, variant=enrollment.variant)
        self.texts = step_content(
            kind=run.step.kind,
            subject=run.step.subject,
            body=run.step.body,
            content=self.content,
            play_name=enrollment.play.name,
            position=run.step.position,
        )
        self._values: dict | None = None

    def _merge_values(self) -> dict:
        if self._values is None:
            self._values = account_merge_values(
                account=self.run.account,
                play=self.run.enrollment.play,
                trial_days=self.content.trial_days,
                text=self.texts.subject + self.texts.body,
                at=self.at,
            )
        return self._values

    def render(self, text: str, *, kind: Kind) -> str:
        """Raises TemplateRefused."""
        values = self._merge_values() if "{" in text else {}
        return sandbox_render(text, values, kind=kind).strip()


def _deliver_in_database(run: StepRun, *, at: dt.datetime, report: DeliveryReport) -> None:
    """A task, notification or prompt step, inside the claim's transaction (a savepoint of its own): the claim
    and the outcome commit together. One that raises is released to pending, and failed after MAX_ATTEMPTS."""
    try:
        with transaction.atomic():
            _EXECUTORS[run.step.kind](run, at=at, report=report)
    except Exception as error:  # the step's own bug or a database error: rolled back, retried, then failed
        logger.exception("Step run %s raised; rolled back.", run.pk)
        _release_or_fail(run, error, at=at, report=report)


def _release_or_fail(run: StepRun, error: Exception, *, at: dt.datetime, report: DeliveryReport) -> None:
    """A run whose execution raised and was rolled back (nothing left the database): back to pending for the
    next run, or failed once it has been claimed MAX_ATTEMPTS times."""
    if run.attempts >= MAX_ATTEMPTS:
        _outcome(run, StepRun.Status.FAILED, f"Failed after {run.attempts} attempts: {error}", at=at, report=report)
        return
    StepRun.objects.filter(pk=run.pk, status=StepRun.Status.CLAIMED, claim_token=run.claim_token).update(
        status=StepRun.Status.PENDING, claim_token=None, detail=_clip(f"Retrying: {error}")
    )
    report.retried += 1


def _deliver_task(run: StepRun, *, at: dt.datetime, report: DeliveryReport) -> None:
    owner = run.account.owner
    if owner is None:
        _outcome(
            run, StepRun.Status.SKIPPED, "Skipped: the account has no owner to give the task to.", at=at, report=report
        )
        return
    texts = _Render(run, at=at)
    try:
        title = texts.render(texts.texts.subject, kind=Kind.SUBJECT)
        detail = texts.render(texts.texts.body, kind=Kind.TEXT)
    except TemplateRefused as refused:
        _outcome(run, StepRun.Status.FAILED, f"Failed: the step's template is refused. {refused}", at=at, report=report)
        return
    due_on = timezone.localdate(at) + dt.timedelta(days=run.step.task_due_days)
    task = task_create(
        account=run.account,
        assignee=owner,
        title=title or texts.texts.subject,
        due_on=due_on,
        at=at,
        detail=detail,
        source=Task.Source.PLAY,
        opportunity_id=run.enrollment.opportunity_id,
    )
    _outcome(
        run,
        StepRun.Status.SENT,
        f"Task for {_name(owner)}, due {due_on:%b} {due_on.day}: {task.title}",
        at=at,
        report=report,
        task=task,
    )


def _deliver_notify(run: StepRun, *, at: dt.datetime, report: DeliveryReport) -> None:
    owner = run.account.owner
    if owner is None:
        _outcome(run, StepRun.Status.SKIPPED, "Skipped: the account has no owner to notify.", at=at, report=report)
        return
    texts = _Render(run, at=at)
    try:
        title = texts.render(texts.texts.subject, kind=Kind.SUBJECT)
    except TemplateRefused as refused:
        _outcome(run, StepRun.Status.FAILED, f"Failed: the step's template is refused. {refused}", at=at, report=report)
        return
    notification = notify(
        recipient=owner,
        kind=Notification.Kind.PLAY_STEP,
        title=f"{run.account.name}: {title}",
        at=at,
        url=run.account.get_absolute_url(),
        account=run.account,
        dedupe_key=f"step-run:{run.pk}",
    )
    if notification is None:
        _outcome(
            run,
            StepRun.Status.SKIPPED,
            f"Skipped: {_name(owner)} does not receive play-step notifications.",
            at=at,
            report=report,
        )
        return
    _outcome(run, StepRun.Status.SENT, f"Notified {_name(owner)}: {title}", at=at, report=report)


def _deliver_prompt(run: StepRun, *, at: dt.datetime, report: DeliveryReport) -> None:
    """The play's prompt (the step's text, else the variant's, else the play's) becomes available to the
    account through the prompts API until the enrolment ends (`playbooks.prompts`). Showing it is the
    product's to report, and that impression is the touch: the step records none, but waits or is skipped
    like one when pitch fatigue would refuse a touch now."""
    texts = _Render(run, at=at)
    if not texts.texts.body.strip():
        _outcome(run, StepRun.Status.SKIPPED, "Skipped: the play has no prompt text.", at=at, report=report)
        return
    decision = _fatigue(run, at=at)
    if decision.action != FatigueAction.GO:
        _wait_or_skip(run, decision, at=at, report=report)
        return
    _outcome(
        run,
        StepRun.Status.SENT,
        f"{run.enrollment.play.get_prompt_kind_display()} prompt offered in the product until the sequence ends.",
        at=at,
        report=report,
    )


_EXECUTORS: dict[str, Callable[..., None]] = {
    SequenceStep.Kind.TASK: _deliver_task,
    SequenceStep.Kind.NOTIFY: _deliver_notify,
    SequenceStep.Kind.PROMPT: _deliver_prompt,
}


def _deliver_email(run: StepRun, *, at: dt.datetime, report: DeliveryReport) -> None:
    """Prepare (checks and the touch, account locked), send, then record: see the module docstring. A
    preparation that raises was rolled back and sent nothing: the run is released like a database-only step's."""
    try:
        message = _email_prepare(run, at=at, report=report)
    except Exception as error:
        logger.exception("Step run %s: preparing the email raised; rolled back, nothing sent.", run.pk)
        _release_or_fail(run, error, at=at, report=report)
        return
    if message is None:
        return
    try:
        message.send()
    except Exception as error:  # the mailer's failure, whatever its kind: recorded, never retried
        logger.warning("Step run %s: the email was not sent (%s).", run.pk, error)
        with transaction.atomic():
            Touch.objects.filter(pk=run.touch_id).delete()
            _outcome(run, StepRun.Status.FAILED, f"Failed: the mailer refused it ({error}).", at=at, report=report)
        return
    _outcome(run, StepRun.Status.SENT, f"Sent to {message.to[0]}: {message.subject}", at=at, report=report)


@transaction.atomic
def _email_prepare(run: StepRun, *, at: dt.datetime, report: DeliveryReport) -> EmailMessage | None:
    """Lock the account then the enrolment, check everything again, record the touch; the message to send, or
    None when the run got another outcome here."""
    Account.objects.select_for_update(no_key=True).filter(pk=run.account_id).first()
    enrollment = Enrollment.objects.select_for_update(no_key=True).filter(pk=run.enrollment_id).first()
    if enrollment is None or enrollment.status not in LIVE:
        reason = "the sequence ended"
        if enrollment is not None and enrollment.stop_reason:
            reason = Enrollment.StopReason(enrollment.stop_reason).label
        _outcome(run, StepRun.Status.CANCELLED, f"Cancelled: {_lower_first(reason)}.", at=at, report=report)
        return None
    if enrollment.status == Enrollment.Status.PAUSED:
        # Paused between the claim and now: back to pending, to run on resume.
        StepRun.objects.filter(pk=run.pk, claim_token=run.claim_token).update(
            status=StepRun.Status.PENDING, claim_token=None
        )
        return None
    account = run.account
    contact = Contact.objects.filter(account_id=account.pk, is_primary=True).first()
    if contact is None:
        _outcome(run, StepRun.Status.SKIPPED, "Skipped: no contact to email.", at=at, report=report)
        return None
    opt_out = email_opted_out(contact.email)
    if opt_out is not None:
        on = timezone.localdate(opt_out.opted_out_at)
        _outcome(
            run,
            StepRun.Status.SKIPPED,
            f"Skipped: {opt_out.email} unsubscribed on {on:%b} {on.day}, {on.year}; no play emails it again.",
            at=at,
            report=report,
            contact=contact,
        )
        return None
    texts = _Render(run, at=at)
    if not texts.texts.subject.strip() or not texts.texts.body.strip():
        _outcome(
            run,
            StepRun.Status.FAILED,
            "Failed: no email subject or body in the step, the variant or the play.",
            at=at,
            report=report,
        )
        return None
    try:
        subject = texts.render(texts.texts.subject, kind=Kind.SUBJECT)
        body = texts.render(texts.texts.body, kind=Kind.TEXT)
    except TemplateRefused as refused:
        _outcome(run, StepRun.Status.FAILED, f"Failed: the step's template is refused. {refused}", at=at, report=report)
        return None
    decision = _fatigue(run, at=at)
    if decision.action != FatigueAction.GO:
        _wait_or_skip(run, decision, at=at, report=report)
        return None
    touch = touch_record(
        account=account,
        play=enrollment.play,
        variant=enrollment.variant,
        kind=Touch.Kind.EMAIL,
        by=None,
        at=at,
        detail=subject,
    )
    StepRun.objects.filter(pk=run.pk).update(touch=touch, contact=contact)
    run.touch_id = touch.pk
    return _email_message(run, contact=contact, subject=subject, body=body)


def _email_message(run: StepRun, *, contact: Contact, subject: str, body: str) -> EmailMessage:
    """The email with its unsubscribe link (footer and List-Unsubscribe headers) and a Message-ID that names the
    step run, so a resend could be recognised (`playbooks.unsubscribe.unsubscribable_email`)."""
    owner = run.account.owner
    return unsubscribable_email(
        to=contact.email,
        account_id=run.account_id,
        account_name=run.account.name,
        reply_to=owner.email if owner is not None else None,
        subject=subject,
        body=body,
        message_id=f"step-run-{run.pk}",
        step_run_id=run.pk,
    )
