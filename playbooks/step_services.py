"""Writes of the sequence editor: adding, editing, deleting and reordering a play's steps, audit-logged.

Steps run in order of their day. A play's steps are stored so that their positions follow their days: a
step added or moved to another day takes its place after the steps of the same day or earlier, and "move
up / down" only reorders steps of the same day (two steps on one day run in position order). Positions are
kept as 1..n.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence

from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Case, F, Value, When

from accounts.audit import audit_record, audit_snapshot
from accounts.models import AuditEntry
from playbooks.models import Play, SequenceStep, StepRun
from playbooks.sandbox import Kind, template_errors
from playbooks.sequence_services import enrollments_complete_finished

MAX_STEPS = 20
STEP_FIELDS = ("delay_days", "kind", "subject", "body", "task_due_days", "when_fatigued")
STEP_AUDIT_FIELDS = ("play", "position", *STEP_FIELDS)
# How each template of a step renders: a subject (or task title) on one line, a body as plain text.
STEP_TEMPLATES = {"subject": Kind.SUBJECT, "body": Kind.TEXT}
# Above any real position: renumbering goes through this range so no two steps share a position midway.
_PARKED = 1000
# Runs that happened: their step keeps the history of what was sent, so it cannot be deleted.
_RAN = (StepRun.Status.CLAIMED, StepRun.Status.SENT, StepRun.Status.SKIPPED, StepRun.Status.FAILED)


class StepRefused(Exception):
    """The change cannot be made; the message says why, in the admin's words."""


def step_template_errors(data: Mapping[str, object]) -> dict[str, list[str]]:
    """The sandbox's objections to the step's subject and body, by field name (empty when both are fine)."""
    errors = {}
    for name, kind in STEP_TEMPLATES.items():
        problems = template_errors(str(data.get(name) or ""), kind=kind)
        if problems:
            errors[name] = problems
    return errors


def _locked_steps(play: Play) -> list[SequenceStep]:
    """The play's steps in order, after locking the play: one editor at a time reorders a sequence."""
    Play.objects.select_for_update().filter(pk=play.pk).first()
    return list(SequenceStep.objects.filter(play=play).order_by("position", "pk"))


def _place(steps: list[SequenceStep], step: SequenceStep) -> int:
    """Where `step` goes among `steps` (which do not hold it): after every step on its day or earlier."""
    index = 0
    for i, other in enumerate(steps):
        if other.delay_days <= step.delay_days:
            index = i + 1
    return index


def _renumber(play: Play, ordered: Sequence[SequenceStep]) -> None:
    """Store positions 1..n in the given order, in two statements that never put two steps on one position:
    first every stored step parks above _PARKED at its new place, then all come down together."""
    stored = [step for step in ordered if step.pk is not None]
    if stored:
        SequenceStep.objects.filter(play=play).update(
            position=Case(
                *(When(pk=step.pk, then=Value(_PARKED + i)) for i, step in enumerate(ordered, 1) if step.pk),
                default=F("position") + _PARKED,
            )
        )
    for i, step in enumerate(ordered, 1):
        step.position = i
        if step.pk is None:
            step.save()
    if stored:
        SequenceStep.objects.filter(play=play, position__gte=_PARKED).update(position=F("position") - _PARKED)


def _validate(step: SequenceStep, data: Mapping[str, object]) -> None:
    errors = step_template_errors(data)
    if errors:
        raise ValidationError(errors)
    for name in STEP_FIELDS:
        if name in data:
            setattr(step, name, data[name])
    step.full_clean(exclude=["position", "play"], validate_unique=False, validate_constraints=False)
    if step.delay_days > 365:
        raise ValidationError({"delay_days": ["A step runs at most 365 days after the account enrolled."]})


@transaction.atomic
def sequence_step_add(*, play: Play, data: Mapping[str, object], by: AbstractBaseUser, at: dt.datetime) -> SequenceStep:
    """Add a step (STEP_FIELDS in `data`) to `play`'s sequence, placed by its day, audit-logged.

    The templates are checked by the sandbox here too, whatever form the data came through: an unsafe
    template raises ValidationError and nothing is stored. A sequence holds at most MAX_STEPS steps.
    """
    steps = _locked_steps(play)
    if len(steps) >= MAX_STEPS:
        raise StepRefused(f"A sequence holds at most {MAX_STEPS} steps.")
    step = SequenceStep(play=play, position=len(steps) + 1)
    _validate(step, data)
    steps.insert(_place(steps, step), step)
    _renumber(play, steps)
    audit_record(
        obj=step,
        action=AuditEntry.Action.CREATED,
        before=None,
        after=audit_snapshot(step, fields=STEP_AUDIT_FIELDS),
        by=by,
        at=at,
    )
    return step


@transaction.atomic
def sequence_step_update(
    *, step: SequenceStep, data: Mapping[str, object], by: AbstractBaseUser, at: dt.datetime
) -> SequenceStep:
    """Change a step from `data` (STEP_FIELDS), audit-logged. A new day that no longer fits between its
    neighbours moves the step to its place among the others' days. Steps not yet run by live enrolments
    run with the new content."""
    steps = _locked_steps(step.play)
    target = next((s for s in steps if s.pk == step.pk), None)
    if target is None:
        raise StepRefused("This step was deleted meanwhile.")
    before = audit_snapshot(target, fields=STEP_AUDIT_FIELDS)
    index = steps.index(target)
    _validate(target, data)
    others = steps[:index] + steps[index + 1 :]
    earlier_ok = index == 0 or steps[index - 1].delay_days <= target.delay_days
    later_ok = index == len(steps) - 1 or steps[index + 1].delay_days >= target.delay_days
    if earlier_ok and later_ok:
        ordered = steps
    else:
        ordered = list(others)
        ordered.insert(_place(others, target), target)
    target.save(update_fields=list(STEP_FIELDS))
    _renumber(step.play, ordered)
    target.refresh_from_db(fields=["position"])
    audit_record(
        obj=target,
        action=AuditEntry.Action.UPDATED,
        before=before,
        after=audit_snapshot(target, fields=STEP_AUDIT_FIELDS),
        by=by,
        at=at,
    )
    return target


@transaction.atomic
def sequence_step_delete(*, step: SequenceStep, by: AbstractBaseUser, at: dt.datetime) -> None:
    """Delete a step that never ran, audit-logged; its pending runs go with it.

    A step that already ran for some account keeps the record of what was sent, skipped or failed: it is
    refused here (edit it instead, or deactivate the play).
    """
    steps = _locked_steps(step.play)
    target = next((s for s in steps if s.pk == step.pk), None)
    if target is None:
        raise StepRefused("This step was deleted meanwhile.")
    ran = StepRun.objects.filter(step=target, status__in=_RAN).count()
    if ran:
        raise StepRefused(
            f"Step {target.position} already ran for {ran:,} enrolment{'s' if ran != 1 else ''}: it stays to keep "
            "that history. Edit it instead, or deactivate the play."
        )
    before = audit_snapshot(target, fields=STEP_AUDIT_FIELDS)
    pk = target.pk
    target.delete()
    target.pk = pk  # the audit entry names the deleted row
    audit_record(obj=target, action=AuditEntry.Action.DELETED, before=before, after=None, by=by, at=at)
    _renumber(step.play, [s for s in steps if s.pk != pk])
    enrollments_complete_finished(play=step.play, at=at)


@transaction.atomic
def sequence_step_move(*, step: SequenceStep, up: bool, by: AbstractBaseUser, at: dt.datetime) -> SequenceStep:
    """Swap a step with the one before (`up`) or after it, audit-logged for both.

    Only steps of the same day trade places: the order of different days is the order of the days, so a
    step moves past another day by changing its day (StepRefused otherwise).
    """
    steps = _locked_steps(step.play)
    target = next((s for s in steps if s.pk == step.pk), None)
    if target is None:
        raise StepRefused("This step was deleted meanwhile.")
    index = steps.index(target)
    other_index = index - 1 if up else index + 1
    if not 0 <= other_index < len(steps):
        raise StepRefused(f"Step {target.position} is already the {'first' if up else 'last'} one.")
    other = steps[other_index]
    if other.delay_days != target.delay_days:
        raise StepRefused(
            f"Steps run in order of their day: step {target.position} runs on day {target.delay_days} and step "
            f"{other.position} on day {other.delay_days}. Change the day to move it past that step."
        )
    befores = {s.pk: audit_snapshot(s, fields=STEP_AUDIT_FIELDS) for s in (target, other)}
    steps[index], steps[other_index] = other, target
    _renumber(step.play, steps)
    for moved in (target, other):
        audit_record(
            obj=moved,
            action=AuditEntry.Action.UPDATED,
            before=befores[moved.pk],
            after=audit_snapshot(moved, fields=STEP_AUDIT_FIELDS),
            by=by,
            at=at,
        )
    return target
