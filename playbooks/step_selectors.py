"""Reads of the sequence editor: a play's steps with what each did so far, and where its enrolments stand."""

from __future__ import annotations

from dataclasses import dataclass, field

from django.db.models import Count, Q

from playbooks.models import Enrollment, Play, SequenceStep, StepRun


@dataclass(frozen=True, slots=True)
class EnrollmentCounts:
    """How many accounts a play holds now (running or paused), finished, and stopped for each reason."""

    running: int = 0
    paused: int = 0
    completed: int = 0
    stopped: int = 0
    stopped_by_reason: list[tuple[str, int]] = field(default_factory=list)

    @property
    def enrolled_now(self) -> int:
        return self.running + self.paused

    @property
    def total(self) -> int:
        return self.enrolled_now + self.completed + self.stopped


def play_steps_with_results(*, play: Play) -> list[SequenceStep]:
    """The play's steps in order, each with `sent`, `skipped`, `failed` and `due` counts of its runs (one query)."""
    return list(
        SequenceStep.objects.filter(play=play)
        .annotate(
            sent=Count("runs", filter=Q(runs__status=StepRun.Status.SENT)),
            skipped=Count("runs", filter=Q(runs__status=StepRun.Status.SKIPPED)),
            failed=Count("runs", filter=Q(runs__status=StepRun.Status.FAILED)),
            due=Count("runs", filter=Q(runs__status__in=[StepRun.Status.PENDING, StepRun.Status.CLAIMED])),
        )
        .order_by("position", "pk")
    )


def play_enrollment_counts(*, play: Play) -> EnrollmentCounts:
    """The play's enrolments counted by status and stop reason, in one aggregate query."""
    rows = (
        Enrollment.objects.filter(play=play)
        .values_list("status", "stop_reason")
        .annotate(n=Count("pk"))
        .order_by("status", "stop_reason")
    )
    by_status: dict[str, int] = {}
    by_reason: dict[str, int] = {}
    for status, reason, n in rows:
        by_status[status] = by_status.get(status, 0) + n
        if status == Enrollment.Status.STOPPED:
            by_reason[reason] = by_reason.get(reason, 0) + n
    labels = dict(Enrollment.StopReason.choices)
    return EnrollmentCounts(
        running=by_status.get(Enrollment.Status.ACTIVE, 0),
        paused=by_status.get(Enrollment.Status.PAUSED, 0),
        completed=by_status.get(Enrollment.Status.COMPLETED, 0),
        stopped=by_status.get(Enrollment.Status.STOPPED, 0),
        stopped_by_reason=sorted(
            ((labels.get(reason, reason or "No reason"), n) for reason, n in by_reason.items()),
            key=lambda item: (-item[1], item[0]),
        ),
    )
