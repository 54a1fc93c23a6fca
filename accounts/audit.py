"""The audit trail of configuration changes: services call `audit_record` in the transaction of the change."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from decimal import Decimal

from django.db import models

from accounts.models import AuditEntry


def _plain(value: object) -> object:
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, dt.date | dt.datetime):
        return value.isoformat()
    if isinstance(value, models.Model):
        return value.pk
    return value


def audit_snapshot(obj: models.Model, *, fields: Iterable[str] | None = None) -> dict:
    """The object's field values as JSON: foreign keys as ids, many-to-many as sorted id lists, decimals and
    dates as strings. `fields` limits it to those names (default: every concrete and many-to-many field)."""
    wanted = set(fields) if fields is not None else None
    data: dict[str, object] = {}
    for field in obj._meta.concrete_fields:
        if wanted is None or field.name in wanted:
            data[field.name] = _plain(getattr(obj, field.attname))
    if obj.pk is not None:
        for field in obj._meta.many_to_many:
            if wanted is None or field.name in wanted:
                data[field.name] = sorted(getattr(obj, field.name).values_list("pk", flat=True))
    return data


def audit_record(
    *, obj: models.Model, action: str, before: dict | None, after: dict | None, by, at: dt.datetime
) -> AuditEntry | None:
    """Record a change of `obj` by `by` at `at`. An update that changed nothing is not recorded.

    before / after come from `audit_snapshot`; only the fields that differ are kept for an update.
    """
    if action == AuditEntry.Action.UPDATED and before is not None and after is not None:
        changed = {k for k in before.keys() | after.keys() if before.get(k) != after.get(k)}
        if not changed:
            return None
        before = {k: before.get(k) for k in sorted(changed)}
        after = {k: after.get(k) for k in sorted(changed)}
    return AuditEntry.objects.create(
        object_type=obj._meta.label,
        object_id=str(obj.pk),
        object_repr=str(obj)[:200],
        action=action,
        before=before,
        after=after,
        actor=by,
        at=at,
    )
