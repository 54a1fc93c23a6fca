"""Reads about play sequences for the account page: its enrolments with their steps, and the steps' outcomes as
timeline entries."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from django.db.models import Prefetch, Q
from django.db.models.functions import Coalesce
from django.utils import timezone

from playbooks.models import Enrollment, SequenceStep, StepRun
from playbooks.sequences import day_label

LIVE = (Enrollment.Status.ACTIVE, Enrollment.Status.PAUSED)


@dataclass(frozen=True, slots=True)
class EnrollmentSummary:
    """One enrolment of the account with its step runs in step order (each with its `step` loaded)."""

    enrollment: Enrollment
    runs: list[StepRun]

    @property
    def is_live(self) -> bool:
        return self.enrollment.status in LIVE

    @property
    def done(self) -> int:
        """Steps with an outcome (sent, skipped, failed or cancelled)."""
        return sum(1 for run in self.runs if run.status not in (StepRun.Status.PENDING, StepRun.Status.CLAIMED))

    @property
    def next_run(self) -> StepRun | None:
        """The next step to run: the pending one due first."""
        pending = [run for run in self.runs if run.status == StepRun.Status.PENDING]
        return min(pending, key=lambda run: (run.due_at, run.pk), default=None)


def account_enrollments(*, account_id: int) -> list[EnrollmentSummary]:
    """The account's enrolments, live ones first, then newest first, with play, variant, who started them and
    their step runs (with steps). Two queries."""
    runs = StepRun.objects.select_related("step").order_by("step__position", "pk")
    enrollments = (
        Enrollment.objects.filter(account_id=account_id)
        .select_related("play", "variant", "started_by")
        .prefetch_related(Prefetch("step_runs", queryset=runs))
        .order_by("-started_at", "-pk")
    )
    summaries = [EnrollmentSummary(enrollment=e, runs=list(e.step_runs.all())) for e in enrollments]
    summaries.sort(key=lambda s: not s.is_live)  # stable: newest first within each group
    return summaries


@dataclass(frozen=True, slots=True)
class StepTimelineItem:
    """A step's outcome as the account's timeline shows it: the same fields as a timeline entry."""

    at: dt.datetime
    kind: str
    title: str
    body: str
    actor: object = None


KIND_WORDS = {
    SequenceStep.Kind.EMAIL: "email",
    SequenceStep.Kind.PROMPT: "in-app prompt",
    SequenceStep.Kind.TASK: "task",
    SequenceStep.Kind.NOTIFY: "notification",
}
OUTCOME_WORDS = {
    StepRun.Status.SENT: "done",
    StepRun.Status.SKIPPED: "skipped",
    StepRun.Status.FAILED: "failed",
    StepRun.Status.CANCELLED: "cancelled",
    StepRun.Status.CLAIMED: "being delivered",
}


def account_step_timeline(*, account_id: int, limit: int = 50) -> list[StepTimelineItem]:
    """The outcomes of the account's sequence steps, newest first: sent, skipped, failed, cancelled, being
    delivered, and waiting (pending after pitch fatigue pushed it back). A pending step that has not come due
    is not an event and is left out. One query.

    Titles read "“Seats upgrade” step 2, email: skipped"; the body is the run's detail ("Skipped: no contact
    to email."), with the wait's end for a step that went out after waiting. kind is "step_<status>", or
    "step_waiting".
    """
    runs = (
        StepRun.objects.filter(account_id=account_id)
        .filter(~Q(status=StepRun.Status.PENDING) | Q(waited_until__isnull=False))
        .annotate(happened_at=Coalesce("executed_at", "claimed_at", "due_at"))
        .select_related("step", "enrollment__play")
        .order_by("-happened_at", "-pk")[:limit]
    )
    items = []
    for run in runs:
        step = run.step
        waiting = run.status == StepRun.Status.PENDING
        word = "waiting" if waiting else OUTCOME_WORDS.get(run.status, run.status)
        if run.status == StepRun.Status.SENT and step.kind == SequenceStep.Kind.EMAIL:
            word = "sent"
        title = f"“{run.enrollment.play.name}” step {step.position}, {KIND_WORDS.get(step.kind, step.kind)}: {word}"
        body = run.detail
        if run.waited_until is not None and not waiting:
            body += f" (Waited for pitch fatigue until {day_label(timezone.localtime(run.waited_until))}.)"
        items.append(
            StepTimelineItem(
                at=run.happened_at, kind="step_waiting" if waiting else f"step_{run.status}", title=title, body=body
            )
        )
    return items
