"""Writes behind the admin settings pages: the plan catalogue, catalogue rows and API tokens, each audited.

Every service here validates, writes and records an `AuditEntry` in one transaction (see accounts/audit.py),
so a refused change leaves nothing behind. The comparison of plans and the tier warnings are pure functions
over `PlanDraft`s: the settings pages preview unsaved form data with them.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from decimal import Decimal

from django.core.exceptions import NON_FIELD_ERRORS, ValidationError
from django.db import IntegrityError, models, transaction
from django.db.models import Prefetch
from django.utils import timezone

from accounts.audit import audit_record, audit_snapshot
from accounts.models import Account, ApiToken, AuditEntry, Metric, Plan, PlanFeature, PlanLimit, UsageSnapshot
from accounts.tasks import refresh_after_ingestion
from accounts.tokens import api_token_create, api_token_revoke

PLAN_FIELDS = ("name", "tier_rank", "monthly_price", "annual_price", "currency", "description", "active")
CONCURRENT_CHANGE = "Someone changed this at the same time. Reload the page and make your change again."


class StaleEdit(Exception):
    """The row changed since the form was opened: saving would silently overwrite someone else's change."""


# --- Drafts: plans as the forms hold them, saved or not ---------------------------------------------------


@dataclass(frozen=True, slots=True)
class FeatureDraft:
    key: str
    label: str
    value: str = ""
    display_order: int = 0

    @property
    def is_included(self) -> bool:
        return bool(self.value)


@dataclass(frozen=True, slots=True)
class PlanDraft:
    """A plan with its limits (by metric key; None = unlimited, absent = not set) and its features."""

    name: str
    tier_rank: int
    monthly_price: Decimal
    annual_price: Decimal
    currency: str = "USD"
    description: str = ""
    active: bool = True
    limits: dict[str, float | None] = field(default_factory=dict)
    features: tuple[FeatureDraft, ...] = ()
    pk: int | None = None

    @property
    def annual_mrr(self) -> Decimal:
        """MRR of the plan billed annually: annual price / 12."""
        return (Decimal(self.annual_price) / 12).quantize(Decimal("0.01"))


def plan_draft_of(plan: Plan) -> PlanDraft:
    """The draft of a stored plan; reads `plan.limits` and `plan.features`, prefetched by the caller."""
    return PlanDraft(
        pk=plan.pk,
        **{name: getattr(plan, name) for name in PLAN_FIELDS},
        limits={limit.metric.key: limit.limit for limit in plan.limits.all()},
        features=tuple(
            FeatureDraft(key=f.key, label=f.label, value=f.value, display_order=f.display_order)
            for f in sorted(plan.features.all(), key=lambda f: (f.display_order, f.key))
        ),
    )


def plans_with_catalogue() -> models.QuerySet[Plan]:
    """Plans in tier order with their limits (and metrics) and features: three queries, whatever the count."""
    return Plan.objects.order_by("tier_rank").prefetch_related(
        Prefetch("limits", queryset=PlanLimit.objects.select_related("metric")),
        Prefetch("features", queryset=PlanFeature.objects.order_by("display_order", "key")),
    )


def limit_metrics() -> list[Metric]:
    return list(Metric.objects.filter(kind=Metric.Kind.LIMIT).order_by("display_order", "label"))


# --- The comparison table and the tier warnings (pure) ----------------------------------------------------


@dataclass(frozen=True, slots=True)
class ComparisonCell:
    value: object  # a limit (float, None = unlimited) or a feature value ("" = not included)
    changed: bool = False


@dataclass(frozen=True, slots=True)
class ComparisonRow:
    label: str
    unit: str
    cells: list[ComparisonCell]


@dataclass(frozen=True, slots=True)
class PlanComparison:
    plans: list[PlanDraft]
    limit_rows: list[ComparisonRow]
    feature_rows: list[ComparisonRow]
    edited_index: int | None = None


def plan_comparison(
    *,
    plans: Sequence[PlanDraft],
    metrics: Sequence[Metric],
    edited: PlanDraft | None = None,
    stored: PlanDraft | None = None,
) -> PlanComparison:
    """Plans side by side, like a pricing page: one column per plan in tier order, one row per limit metric
    and per feature. `edited` replaces the stored plan with the same pk (or joins as a new column); its
    cells that differ from `stored` are marked changed. A limit that is not set reads as unlimited, as the
    indicators treat it."""
    columns = [p for p in plans if edited is None or edited.pk is None or p.pk != edited.pk]
    if edited is not None:
        columns.append(edited)
    columns.sort(key=lambda p: (p.tier_rank, p.pk is None, p.pk or 0))
    edited_index = columns.index(edited) if edited is not None else None

    def is_changed(plan: PlanDraft, before: object, after: object) -> bool:
        return plan is edited and stored is not None and before != after

    limit_rows = [
        ComparisonRow(
            label=metric.label,
            unit=metric.unit,
            cells=[
                ComparisonCell(
                    value=plan.limits.get(metric.key),
                    changed=is_changed(
                        plan, stored.limits.get(metric.key) if stored else None, plan.limits.get(metric.key)
                    ),
                )
                for plan in columns
            ],
        )
        for metric in metrics
    ]
    labels: dict[str, str] = {}
    for plan in columns:
        for feature in plan.features:
            labels.setdefault(feature.key, feature.label)
    values = {(i, f.key): f.value for i, plan in enumerate(columns) for f in plan.features}
    stored_values = {f.key: f.value for f in stored.features} if stored else {}
    feature_rows = [
        ComparisonRow(
            label=label,
            unit="",
            cells=[
                ComparisonCell(
                    value=values.get((i, key), ""),
                    changed=is_changed(plan, stored_values.get(key, ""), values.get((i, key), "")),
                )
                for i, plan in enumerate(columns)
            ],
        )
        for key, label in labels.items()
    ]
    return PlanComparison(plans=columns, limit_rows=limit_rows, feature_rows=feature_rows, edited_index=edited_index)


def tier_limit_warnings(*, plans: Iterable[PlanDraft], metrics: Iterable[Metric]) -> list[str]:
    """Where a higher tier includes less of a metric than a lower one: an upgrade would take room away.

    For each metric, plans in tier order: warn when a plan's limit is below the largest limit of the
    lower tiers (unlimited counts as infinite; a limit that is not set counts as unlimited). Advice only:
    a catalogue may do this on purpose.
    """
    ordered = sorted(plans, key=lambda p: p.tier_rank)
    warnings: list[str] = []
    for metric in metrics:
        widest: tuple[float, PlanDraft] | None = None
        for plan in ordered:
            limit = plan.limits.get(metric.key)
            amount = float("inf") if limit is None else float(limit)
            if widest is not None and amount < widest[0]:
                lower = widest[1]
                warnings.append(
                    f"{plan.name} (tier {plan.tier_rank}) includes fewer {metric.label.lower()} "
                    f"({_amount(limit, metric.unit)}) than {lower.name} (tier {lower.tier_rank}, "
                    f"{_amount(lower.limits.get(metric.key), metric.unit)})."
                )
            if widest is None or amount > widest[0]:
                widest = (amount, plan)
    return warnings


def _amount(limit: float | None, unit: str) -> str:
    if limit is None:
        return "unlimited"
    text = f"{limit:,.0f}" if float(limit).is_integer() else f"{limit:,g}"
    return f"{text} {unit}".strip()


def plan_draft_errors(draft: PlanDraft) -> dict[str, list[str]]:
    """What makes a draft unsavable, by field: negative prices or limits, repeated feature keys."""
    errors: dict[str, list[str]] = {}
    for name in ("monthly_price", "annual_price"):
        if Decimal(getattr(draft, name)) < 0:
            errors.setdefault(name, []).append("A price cannot be negative.")
    for key, limit in draft.limits.items():
        if limit is not None and limit < 0:
            errors.setdefault(f"limits.{key}", []).append("A limit cannot be negative; leave it empty for unlimited.")
    seen: set[str] = set()
    for feature in draft.features:
        if feature.key in seen:
            errors.setdefault(f"features.{feature.key}", []).append(f"The feature key {feature.key} is repeated.")
        seen.add(feature.key)
    return errors


# --- Saving a plan -------------------------------------------------------------------------------------


def plan_audit_snapshot(plan: Plan) -> dict:
    """The plan's fields plus one key per limit (`limits.<metric key>`, null = unlimited) and per feature
    attribute (`features.<key>.label|value|display_order`), so the audit log diffs them one by one."""
    data = audit_snapshot(plan, fields=PLAN_FIELDS)
    for limit in PlanLimit.objects.filter(plan=plan).select_related("metric"):
        data[f"limits.{limit.metric.key}"] = limit.limit
    for feature in PlanFeature.objects.filter(plan=plan):
        data[f"features.{feature.key}.label"] = feature.label
        data[f"features.{feature.key}.value"] = feature.value
        data[f"features.{feature.key}.display_order"] = feature.display_order
    return data


def plan_version(snapshot: dict) -> str:
    """A short fingerprint of a plan's audit snapshot: the edit form carries it to detect a stale save."""
    return hashlib.sha256(json.dumps(snapshot, sort_keys=True, default=str).encode()).hexdigest()[:16]


@dataclass(frozen=True, slots=True)
class PlanSaveResult:
    plan: Plan
    entry: AuditEntry | None
    warnings: list[str]
    refreshed_account_ids: list[int]


def plan_save(*, plan: Plan | None, data: PlanDraft, by, at: dt.datetime, version: str | None = None) -> PlanSaveResult:
    """Create (`plan` None) or update a plan with its limits and features, audit it, and refresh the
    indicators of its accounts when a limit changed (after commit, in the background).

    `version` is the `plan_version` the form was opened with: when the plan changed since, `StaleEdit`.
    Raises ValidationError by field (`limits.<key>`, `features.<key>` for those) and stores nothing.
    """
    errors = plan_draft_errors(data)
    if errors:
        raise ValidationError(errors)
    try:
        with transaction.atomic():
            if plan is not None and plan.pk is not None:
                plan = Plan.objects.select_for_update().get(pk=plan.pk)
                before = plan_audit_snapshot(plan)
                if version is not None and version != plan_version(before):
                    raise StaleEdit(plan.pk)
            else:
                plan, before = Plan(), None
            for name in PLAN_FIELDS:
                setattr(plan, name, getattr(data, name))
            plan.full_clean()
            plan.save()
            _plan_limits_write(plan=plan, limits=data.limits)
            _plan_features_write(plan=plan, features=data.features)
            after = plan_audit_snapshot(plan)
            action = AuditEntry.Action.UPDATED if before is not None else AuditEntry.Action.CREATED
            entry = audit_record(obj=plan, action=action, before=before, after=after, by=by, at=at)
            limits_changed = before is not None and any(
                before.get(key) != after.get(key) for key in before.keys() | after.keys() if key.startswith("limits.")
            )
            account_ids: list[int] = []
            if limits_changed:
                # New limits change every utilization and projected date of the plan's accounts.
                account_ids = list(Account.objects.filter(plan=plan).order_by("pk").values_list("pk", flat=True))
                refresh_after_ingestion(account_ids=account_ids, as_of=timezone.localdate(at))
    except IntegrityError as error:
        raise ValidationError({NON_FIELD_ERRORS: [CONCURRENT_CHANGE]}) from error
    stored = [plan_draft_of(p) for p in plans_with_catalogue().filter(active=True)]
    warnings = tier_limit_warnings(plans=stored, metrics=limit_metrics())
    return PlanSaveResult(plan=plan, entry=entry, warnings=warnings, refreshed_account_ids=account_ids)


def _plan_limits_write(*, plan: Plan, limits: dict[str, float | None]) -> None:
    metrics = {m.key: m for m in Metric.objects.filter(key__in=limits)}
    unknown = sorted(set(limits) - set(metrics))
    if unknown:
        raise ValidationError({f"limits.{key}": ["No such metric."] for key in unknown})
    existing = {limit.metric_id: limit for limit in PlanLimit.objects.filter(plan=plan)}
    for key, value in limits.items():
        metric = metrics[key]
        row = existing.get(metric.pk)
        if row is None:
            # An empty limit on a metric with no row stays "not set": both read as unlimited.
            if value is not None:
                PlanLimit.objects.create(plan=plan, metric=metric, limit=value)
        elif row.limit != value:
            row.limit = value
            row.save(update_fields=["limit"])


def _plan_features_write(*, plan: Plan, features: Sequence[FeatureDraft]) -> None:
    wanted = {f.key: f for f in features}
    PlanFeature.objects.filter(plan=plan).exclude(key__in=wanted).delete()
    existing = {f.key: f for f in PlanFeature.objects.filter(plan=plan)}
    for key, draft in wanted.items():
        row = existing.get(key) or PlanFeature(plan=plan, key=key)
        values = {"label": draft.label, "value": draft.value, "display_order": draft.display_order}
        if row.pk is None or any(getattr(row, k) != v for k, v in values.items()):
            for k, v in values.items():
                setattr(row, k, v)
            row.full_clean(exclude=["plan"])
            row.save()


# --- Catalogue rows: metrics, Stripe prices, lost reasons -------------------------------------------------


def config_row_save(*, obj: models.Model, data: dict, by, at: dt.datetime) -> models.Model:
    """Create (unsaved `obj`) or update one configuration row from `data` (field -> value), validated by the
    model (fields, uniqueness, constraints), and audit it. Raises ValidationError by field, storing nothing."""
    model = type(obj)
    try:
        with transaction.atomic():
            if obj.pk is not None:
                obj = model._default_manager.select_for_update().get(pk=obj.pk)
                before = audit_snapshot(obj)
            else:
                before = None
            for name, value in data.items():
                setattr(obj, name, value)
            obj.full_clean()
            obj.save()
            action = AuditEntry.Action.UPDATED if before is not None else AuditEntry.Action.CREATED
            audit_record(obj=obj, action=action, before=before, after=audit_snapshot(obj), by=by, at=at)
    except IntegrityError as error:
        raise ValidationError({NON_FIELD_ERRORS: [CONCURRENT_CHANGE]}) from error
    return obj


def config_row_delete(*, obj: models.Model, by, at: dt.datetime) -> None:
    """Delete one configuration row and audit it with its last values."""
    with transaction.atomic():
        before = audit_snapshot(obj)
        audit_record(obj=obj, action=AuditEntry.Action.DELETED, before=before, after=None, by=by, at=at)
        obj.delete()


def config_row_move(*, obj: models.Model, rows: models.QuerySet, up: bool, by, at: dt.datetime) -> bool:
    """Move a row one place up or down in `rows` (ordered by display_order, then pk) and number the list
    1, 2, 3... again; each row whose display_order changed is audited. False when it is already at the end."""
    with transaction.atomic():
        ordered = list(rows.select_for_update().order_by("display_order", "pk"))
        index = next((i for i, row in enumerate(ordered) if row.pk == obj.pk), None)
        target = None if index is None else index - 1 if up else index + 1
        if target is None or not 0 <= target < len(ordered):
            return False
        ordered[index], ordered[target] = ordered[target], ordered[index]
        for position, row in enumerate(ordered, start=1):
            if row.display_order != position:
                before = audit_snapshot(row)
                row.display_order = position
                row.save(update_fields=["display_order"])
                audit_record(
                    obj=row, action=AuditEntry.Action.UPDATED, before=before, after=audit_snapshot(row), by=by, at=at
                )
    return True


def metric_in_use(metric: Metric) -> bool:
    """Whether usage snapshots carry the metric: its key then names stored history and can no longer change."""
    return metric.pk is not None and UsageSnapshot.objects.filter(metric_id=metric.pk).exists()


def metric_save(*, metric: Metric, data: dict, by, at: dt.datetime) -> Metric:
    """Create or update a metric of the catalogue; the key of a metric that snapshots use cannot change."""
    if metric.pk is not None and "key" in data:
        stored_key = Metric.objects.filter(pk=metric.pk).values_list("key", flat=True).first()
        if data["key"] != stored_key and metric_in_use(metric):
            raise ValidationError({"key": ["Usage snapshots use this key: it can no longer change."]})
    return config_row_save(obj=metric, data=data, by=by, at=at)


# --- API tokens ------------------------------------------------------------------------------------------

TOKEN_AUDIT_FIELDS = ("name", "prefix", "created_by", "revoked_at")  # never the hash


def api_token_create_audited(*, name: str, by, at: dt.datetime) -> tuple[ApiToken, str]:
    """Create a token for the API and audit it; returns the row and the raw token, shown once."""
    with transaction.atomic():
        token, raw = api_token_create(name=name, created_by=by)
        audit_record(
            obj=token,
            action=AuditEntry.Action.CREATED,
            before=None,
            after=audit_snapshot(token, fields=TOKEN_AUDIT_FIELDS),
            by=by,
            at=at,
        )
    return token, raw


def api_token_revoke_audited(*, token: ApiToken, by, at: dt.datetime) -> ApiToken:
    """Revoke a token (once: revoking a revoked token changes and records nothing) and audit it."""
    with transaction.atomic():
        before = audit_snapshot(token, fields=TOKEN_AUDIT_FIELDS)
        token = api_token_revoke(token=token, at=at)
        after = audit_snapshot(token, fields=TOKEN_AUDIT_FIELDS)
        audit_record(obj=token, action=AuditEntry.Action.UPDATED, before=before, after=after, by=by, at=at)
    return token
