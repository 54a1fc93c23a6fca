"""Writes of the rules editor: rules and the scoring policy, each change audit-logged in its transaction."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping

from django.db import transaction

from accounts.audit import audit_record, audit_snapshot
from accounts.models import AuditEntry
from playbooks.models import Rule, ScoringPolicy

RULE_FIELDS = (  # what the editor changes, and what the audit trail records
    "name",
    "description",
    "metric",
    "min_utilization",
    "max_days_to_limit",
    "min_logins_per_week",
    "min_login_percentile",
    "min_locked_feature_hits",
    "min_trial_feature_uses",
    "plans",
    "industries",
    "regions",
    "weight",
    "enabled",
)
POLICY_FIELDS = ("flag_threshold", "clear_margin", "cool_off_days", "max_touches_per_30_days")


@transaction.atomic
def rule_save(*, rule: Rule, data: Mapping, by, at: dt.datetime) -> Rule:
    """Create the rule (no pk yet) or update it from `data` (model field names and units, plans as Plan
    objects or ids), and record who changed what.

    The rule's database checks run first (Model.full_clean): a rule without a threshold, or with a
    utilization or days-to-limit threshold but no metric, raises ValidationError and nothing is stored.
    """
    creating = rule.pk is None
    if creating:
        target, before = Rule(), None
    else:
        target = Rule.objects.select_for_update().get(pk=rule.pk)
        before = audit_snapshot(target, fields=RULE_FIELDS)
    for field, value in data.items():
        if field != "plans":
            setattr(target, field, value)
    target.full_clean()
    target.save()
    if "plans" in data:
        target.plans.set(data["plans"])
    audit_record(
        obj=target,
        action=AuditEntry.Action.CREATED if creating else AuditEntry.Action.UPDATED,
        before=before,
        after=audit_snapshot(target, fields=RULE_FIELDS),
        by=by,
        at=at,
    )
    return target


@transaction.atomic
def rule_set_enabled(*, rule: Rule, enabled: bool, by, at: dt.datetime) -> Rule:
    """Enable or disable a rule (a disabled rule flags nobody); recorded only when it changes."""
    target = Rule.objects.select_for_update().get(pk=rule.pk)
    if target.enabled == enabled:
        return target
    target.enabled = enabled
    target.save(update_fields=["enabled", "updated_at"])
    audit_record(
        obj=target,
        action=AuditEntry.Action.UPDATED,
        before={"enabled": not enabled},
        after={"enabled": enabled},
        by=by,
        at=at,
    )
    return target


@transaction.atomic
def scoring_policy_save(*, data: Mapping, by, at: dt.datetime) -> ScoringPolicy:
    """Update the scoring policy (the single row) from `data` and record who changed what.

    Raises ValidationError for values its database checks refuse (a flag threshold above 100).
    """
    ScoringPolicy.current()
    policy = ScoringPolicy.objects.select_for_update().get(pk=1)
    before = audit_snapshot(policy, fields=POLICY_FIELDS)
    for field in POLICY_FIELDS:
        if field in data:
            setattr(policy, field, data[field])
    policy.full_clean()
    policy.save()
    audit_record(
        obj=policy,
        action=AuditEntry.Action.UPDATED,
        before=before,
        after=audit_snapshot(policy, fields=POLICY_FIELDS),
        by=by,
        at=at,
    )
    return policy
