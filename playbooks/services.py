"""Writes about plays: saving a play (audit-logged) and recording the touches it makes."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping

from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import ValidationError
from django.db import transaction

from accounts.audit import audit_record, audit_snapshot
from accounts.models import Account, AuditEntry
from playbooks.models import Play, Touch, Variant
from playbooks.sandbox import Kind, template_errors

# The play's templates and how each renders.
PLAY_TEMPLATES = {
    "email_subject": Kind.SUBJECT,
    "email_body": Kind.TEXT,
    "prompt_text": Kind.TEXT,
    "downgrade_save_subject": Kind.SUBJECT,
    "downgrade_save_body": Kind.TEXT,
}
PLAY_FIELDS = (
    "name",
    "description",
    "active",
    "run_mode",
    "target_plan",
    "talking_points",
    "case_study_url",
    "email_subject",
    "email_body",
    "prompt_kind",
    "prompt_text",
    "prompt_cta_label",
    "prompt_cta_url",
    "trial_days",
    "downgrade_save_subject",
    "downgrade_save_body",
    "prompt_max_per_week",
    "min_days_between_touches",
)
# What the audit trail keeps of a play: its settings, not its timestamps.
AUDIT_FIELDS = (*PLAY_FIELDS, "rules")


def play_template_errors(data: Mapping[str, object]) -> dict[str, list[str]]:
    """The sandbox's objections to each template field of `data`, by field name (empty when all are fine)."""
    errors = {}
    for name, kind in PLAY_TEMPLATES.items():
        problems = template_errors(str(data.get(name) or ""), kind=kind)
        if problems:
            errors[name] = problems
    return errors


@transaction.atomic
def play_save(*, play: Play, data: Mapping[str, object], by: AbstractBaseUser, at: dt.datetime) -> Play:
    """Create `play` (no pk yet) or update it from `data` (PLAY_FIELDS, plus `rules`), audit-logged.

    The templates are checked by the sandbox again here, whatever form the data came through: an unsafe
    template raises ValidationError and nothing is stored. An update reads the stored row (locked) for
    its "before", so fields a bound form already copied onto `play` do not hide the change.
    """
    errors = play_template_errors(data)
    if errors:
        raise ValidationError(errors)
    if play.pk is None:
        target, before, action = Play(), None, AuditEntry.Action.CREATED
    else:
        target = Play.objects.select_for_update().get(pk=play.pk)
        before, action = audit_snapshot(target, fields=AUDIT_FIELDS), AuditEntry.Action.UPDATED
    for name in PLAY_FIELDS:
        if name in data:
            setattr(target, name, data[name])
    target.full_clean(exclude=["rules"])
    target.save()
    if "rules" in data:
        target.rules.set(data["rules"])
    audit_record(
        obj=target, action=action, before=before, after=audit_snapshot(target, fields=AUDIT_FIELDS), by=by, at=at
    )
    return target


def touch_record(
    *,
    account: Account,
    play: Play | None,
    variant: Variant | None,
    kind: Touch.Kind | str,
    by: AbstractBaseUser | None,
    at: dt.datetime,
    detail: str = "",
) -> Touch:
    """Record a touch of `account` on behalf of `play` (and the experiment's `variant`, None for none)."""
    return Touch.objects.create(
        account=account, play=play, variant=variant, kind=kind, occurred_at=at, actor=by, detail=detail[:300]
    )
