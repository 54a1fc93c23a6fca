"""The admin settings pages: the index, plans, metrics, Stripe prices, API tokens and the audit log.

Admins only: anyone else gets PermissionDenied, which the app's 403 page answers. Bad input answers 422
with the form and its errors, and nothing is stored.
"""

from __future__ import annotations

import copy
import datetime as dt
import functools
import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from decimal import Decimal

from django.apps import apps
from django.contrib import messages
from django.contrib.auth import get_user_model
from django.core.exceptions import FieldDoesNotExist, PermissionDenied, ValidationError
from django.core.paginator import Paginator
from django.db.models import Count, Exists, F, OuterRef
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import NoReverseMatch, reverse
from django.utils import timezone
from django.utils.cache import add_never_cache_headers, patch_vary_headers
from django.utils.http import urlencode
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from accounts.models import ApiToken, AuditEntry, Metric, Plan, StripePriceMapping, UsageSnapshot
from accounts.roles import is_admin
from accounts.settings_crud import catalogue_row_edit
from accounts.settings_forms import (
    AuditFilterForm,
    FeatureFormSet,
    LimitFormSet,
    MetricForm,
    PlanForm,
    StripePriceForm,
    TokenForm,
    feature_initial,
    limit_initial,
    object_type_label,
    plan_draft_from_forms,
)
from accounts.settings_services import (
    PLAN_FIELDS,
    PlanDraft,
    StaleEdit,
    api_token_create_audited,
    api_token_revoke_audited,
    config_row_delete,
    config_row_save,
    limit_metrics,
    metric_in_use,
    metric_save,
    plan_audit_snapshot,
    plan_comparison,
    plan_draft_of,
    plan_save,
    plan_version,
    plans_with_catalogue,
    tier_limit_warnings,
)
from accounts.templatetags.account_format import display_name

SETTINGS_FORBIDDEN = "Settings are for admins: they change what every CSM and manager works with."
AUDIT_PER_PAGE = 25
RECENT_CHANGES = 6

# The cards of the settings index, in the order admins reach for them.
AREAS = [
    ("settings:plans", "Plans", "Tiers, prices, limits per metric and features, compared like a pricing page."),
    ("settings:rules", "Rules", "Thresholds that flag upsell candidates, with a live preview and a backtest."),
    ("settings:plays", "Playbooks", "Talking points, email templates, in-app prompts and trial offers."),
    ("settings:experiments", "A/B tests", "Variants of a play against a control group, with honest statistics."),
    ("settings:surveys", "Surveys", "Upcoming needs of flagged accounts, and why accounts downgraded or left."),
    ("settings:metrics", "Metrics", "What usage is measured, in which unit, and in which order it shows."),
    ("settings:lost_reasons", "Lost reasons", "The list a CSM picks from when an opportunity is lost."),
    ("settings:stripe_prices", "Stripe prices", "Which plan each Stripe price stands for."),
    ("settings:tokens", "API tokens", "Bearer tokens for the JSON API: create, see when used, revoke."),
    ("settings:audit", "Audit log", "Who changed which setting, when, and what it was before."),
]

# Where an audited object is edited, by model label; names that do not resolve get no link.
EDIT_URLS = {
    "accounts.Plan": "settings:plan_edit",
    "accounts.Metric": "settings:metric_edit",
    "accounts.StripePriceMapping": "settings:stripe_price_edit",
    "opportunities.LostReason": "settings:lost_reason_edit",
    "playbooks.Rule": "settings:rule_edit",
    "playbooks.Play": "settings:play_edit",
    "playbooks.Experiment": "settings:experiment_detail",
    "playbooks.Survey": "settings:survey_edit",
}


def admin_required(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    """Admins only; anyone else is refused with a 403 before the method is even looked at."""

    @functools.wraps(view)
    def guarded(request: HttpRequest, *args, **kwargs) -> HttpResponse:
        if not is_admin(request.user):
            raise PermissionDenied(SETTINGS_FORBIDDEN)
        return view(request, *args, **kwargs)

    return guarded


def history_url(object_type: str, object_id: object | None = None) -> str:
    """The audit log filtered to one type of setting (and one object of it)."""
    query = {"object_type": object_type}
    if object_id is not None:
        query["object_id"] = object_id
    return f"{reverse('settings:audit')}?{urlencode(query)}"


# --- The index ---------------------------------------------------------------------------------------------


@admin_required
@require_GET
def index(request: HttpRequest) -> HttpResponse:
    """Every settings area as a card, and the latest changes."""
    areas = [{"url": reverse(name), "title": title, "text": text} for name, title, text in AREAS]
    recent = list(AuditEntry.objects.select_related("actor").order_by("-at", "-pk")[:RECENT_CHANGES])
    for entry in recent:
        entry.type_label = object_type_label(entry.object_type)
    return render(request, "settings/index.html", {"areas": areas, "recent": recent})


# --- Plans -------------------------------------------------------------------------------------------------


@admin_required
@require_GET
def plans(request: HttpRequest) -> HttpResponse:
    """Every plan with its prices and accounts, and the active ones compared side by side."""
    rows = list(plans_with_catalogue().annotate(account_count=Count("accounts")))
    metrics = limit_metrics()
    active = [plan_draft_of(plan) for plan in rows if plan.active]
    context = {
        "plans": rows,
        "comparison": plan_comparison(plans=active, metrics=metrics),
        "warnings": tier_limit_warnings(plans=active, metrics=metrics),
        "history_url": history_url("accounts.Plan"),
    }
    return render(request, "settings/plans/list.html", context)


def _blank_plan(stored_plans: Iterable[Plan]) -> PlanDraft:
    next_rank = max((p.tier_rank for p in stored_plans), default=0) + 1
    return PlanDraft(name="", tier_rank=next_rank, monthly_price=Decimal(0), annual_price=Decimal(0))


@dataclass(frozen=True, slots=True)
class _PlanState:
    plan: Plan | None
    stored: PlanDraft | None  # the plan as saved (None for a new plan)
    fallback: PlanDraft  # what a field that does not validate shows in the preview
    others: list[PlanDraft]  # the other active plans, the comparison's other columns
    metrics: list[Metric]


def _plan_state(pk: int | None) -> _PlanState:
    all_plans = list(plans_with_catalogue())
    plan = next((p for p in all_plans if p.pk == pk), None) if pk is not None else None
    if pk is not None and plan is None:
        raise Http404("No such plan.")
    stored = plan_draft_of(plan) if plan is not None else None
    return _PlanState(
        plan=plan,
        stored=stored,
        fallback=stored or _blank_plan(all_plans),
        others=[plan_draft_of(p) for p in all_plans if p.active and p.pk != pk],
        metrics=limit_metrics(),
    )


def _plan_forms(state: _PlanState) -> tuple[PlanForm, LimitFormSet, FeatureFormSet]:
    """The forms as the stored plan (or a blank one) fills them, with the plan's version for stale saves."""
    if state.plan is not None:
        initial = {"version": plan_version(plan_audit_snapshot(state.plan))}
    else:
        initial = {"tier_rank": state.fallback.tier_rank}
    return (
        PlanForm(instance=state.plan, initial=initial),
        LimitFormSet(prefix="limits", metrics=state.metrics, initial=limit_initial(state.stored, state.metrics)),
        FeatureFormSet(prefix="features", initial=feature_initial(state.stored)),
    )


@admin_required
@require_http_methods(["GET", "POST"])
def plan_edit(request: HttpRequest, pk: int | None = None) -> HttpResponse:
    """One plan with its limits and features in one form, and the comparison table as it would read.

    A POST with `preview` renders the comparison from the form without saving (htmx sends it as the form
    changes and swaps the preview in; without JavaScript the Preview button reloads the page with it).
    """
    state = _plan_state(pk)
    if request.method == "GET":
        return _plan_page(request, state=state, forms=_plan_forms(state), draft=state.fallback)

    # A copy: the form writes the posted values onto its instance, and the page still names the stored plan.
    form = PlanForm(request.POST, instance=copy.copy(state.plan) if state.plan is not None else None)
    limits = LimitFormSet(request.POST, prefix="limits", metrics=state.metrics)
    features = FeatureFormSet(request.POST, prefix="features")
    valid = all([form.is_valid(), limits.is_valid(), features.is_valid()])
    draft = plan_draft_from_forms(form=form, limits=limits, features=features, fallback=state.fallback)
    if "preview" in request.POST or not valid:
        status = 200 if valid else 422
        return _plan_page(request, state=state, forms=(form, limits, features), draft=draft, status=status)
    try:
        result = plan_save(
            plan=state.plan,
            data=draft,
            by=request.user,
            at=timezone.now(),
            version=form.cleaned_data["version"] or None,
        )
    except StaleEdit:
        messages.error(request, "Someone saved this plan since you opened it: here it is now. Make your change again.")
        state = _plan_state(pk)
        return _plan_page(request, state=state, forms=_plan_forms(state), draft=state.fallback, status=409)
    except ValidationError as error:
        _plan_errors(error, form=form, limits=limits, features=features)
        return _plan_page(request, state=state, forms=(form, limits, features), draft=draft, status=422)
    messages.success(request, f"Saved {result.plan.name}.")
    for warning in result.warnings:
        messages.warning(request, warning)
    return redirect("settings:plans")


def _plan_page(
    request: HttpRequest, *, state: _PlanState, forms: tuple, draft: PlanDraft, status: int = 200
) -> HttpResponse:
    form, limits, features = forms
    plan = state.plan
    offered = [*state.others, draft] if draft.active else state.others
    invalid = [str(form.fields[name].label) for name in form.errors if name in form.fields]
    invalid += [sub.metric_obj.label for sub in limits.forms if sub.errors and hasattr(sub, "metric_obj")]
    if any(sub.errors for sub in features.forms):
        invalid.append("Features")
    context = {
        "plan": plan,
        "form": form,
        "limits": limits,
        "features": features,
        "draft": draft,
        "invalid": invalid,
        "comparison": plan_comparison(plans=state.others, metrics=state.metrics, edited=draft, stored=state.stored),
        "warnings": tier_limit_warnings(plans=offered, metrics=state.metrics),
        "history_url": history_url("accounts.Plan", plan.pk if plan is not None else None),
    }
    partial = request.htmx and not request.htmx.history_restore_request and "preview" in request.POST
    template = "settings/plans/edit.html#preview" if partial else "settings/plans/edit.html"
    response = render(request, template, context, status=status)
    patch_vary_headers(response, ["HX-Request"])
    return response


def _plan_errors(error: ValidationError, *, form, limits, features) -> None:
    """The service's errors on the form that holds the field: plan fields, `limits.<key>`, `features.<key>`."""
    by_metric = {sub.metric_obj.key: sub for sub in limits.forms if hasattr(sub, "metric_obj")}
    by_feature = {sub.cleaned_data.get("key"): sub for sub in features.forms if getattr(sub, "cleaned_data", None)}
    for name, texts in getattr(error, "message_dict", {None: error.messages}).items():
        prefix, _, key = (name or "").partition(".")
        if prefix == "limits" and key in by_metric:
            by_metric[key].add_error("limit", texts)
        elif prefix == "features" and key in by_feature:
            by_feature[key].add_error("key", texts)
        elif name in PLAN_FIELDS and name in form.cleaned_data:
            form.add_error(name, texts)
        else:
            form.add_error(None, texts)


# --- Metrics -----------------------------------------------------------------------------------------------


@admin_required
@require_GET
def metrics(request: HttpRequest) -> HttpResponse:
    """The metrics catalogue, with which metrics stored usage already uses."""
    rows = Metric.objects.annotate(in_use=Exists(UsageSnapshot.objects.filter(metric_id=OuterRef("pk")))).order_by(
        "display_order", "label"
    )
    return render(
        request, "settings/catalogue/metrics.html", {"metrics": rows, "history_url": history_url("accounts.Metric")}
    )


@admin_required
@require_http_methods(["GET", "POST"])
def metric_edit(request: HttpRequest, pk: int | None = None) -> HttpResponse:
    metric = get_object_or_404(Metric, pk=pk) if pk is not None else Metric()
    return catalogue_row_edit(
        request,
        form=MetricForm(request.POST or None, instance=metric, in_use=metric_in_use(metric)),
        save=lambda data: metric_save(metric=metric, data=data, by=request.user, at=timezone.now()),
        saved_message=lambda saved: f"Saved the metric {saved.label}.",
        list_url="settings:metrics",
        page=lambda: {
            "title": f"Metric {metric.label}" if metric.pk else "New metric",
            "intro": "Limit-bearing metrics get a limit per plan and usage bars; engagement metrics are measured only.",
            "back_url": reverse("settings:metrics"),
            "back_label": "Metrics",
            "history_url": history_url("accounts.Metric", metric.pk) if metric.pk else None,
        },
    )


# --- Stripe prices -----------------------------------------------------------------------------------------


@admin_required
@require_GET
def stripe_prices(request: HttpRequest) -> HttpResponse:
    rows = StripePriceMapping.objects.select_related("plan").order_by("plan__tier_rank", "price_id")
    context = {"mappings": rows, "history_url": history_url("accounts.StripePriceMapping")}
    return render(request, "settings/catalogue/stripe_prices.html", context)


@admin_required
@require_http_methods(["GET", "POST"])
def stripe_price_edit(request: HttpRequest, pk: int | None = None) -> HttpResponse:
    mapping = get_object_or_404(StripePriceMapping, pk=pk) if pk is not None else StripePriceMapping()
    return catalogue_row_edit(
        request,
        form=StripePriceForm(request.POST or None, instance=mapping),
        save=lambda data: config_row_save(obj=mapping, data=data, by=request.user, at=timezone.now()),
        saved_message=lambda saved: f"Saved {saved.price_id} → {saved.plan}.",
        list_url="settings:stripe_prices",
        page=lambda: {
            "title": f"Stripe price {mapping.price_id}" if mapping.pk else "New Stripe price",
            "intro": "Stripe's webhooks name prices; this says which plan a price is. It wins over the price's "
            "lookup_key and metadata.plan.",
            "back_url": reverse("settings:stripe_prices"),
            "back_label": "Stripe prices",
            "history_url": history_url("accounts.StripePriceMapping", mapping.pk) if mapping.pk else None,
            "delete_url": reverse("settings:stripe_price_delete", args=[mapping.pk]) if mapping.pk else None,
            "delete_label": "Delete this mapping",
        },
    )


@admin_required
@require_POST
def stripe_price_delete(request: HttpRequest, pk: int) -> HttpResponse:
    mapping = get_object_or_404(StripePriceMapping.objects.select_related("plan"), pk=pk)
    config_row_delete(obj=mapping, by=request.user, at=timezone.now())
    messages.success(request, f"Deleted the mapping of {mapping.price_id}.")
    return redirect("settings:stripe_prices")


# --- API tokens --------------------------------------------------------------------------------------------


@admin_required
@require_http_methods(["GET", "POST"])
def tokens(request: HttpRequest) -> HttpResponse:
    """Every token, and a form for a new one. A created token shows once, on the page answering the POST:
    only its hash is stored, and nothing keeps the raw token for a redirect."""
    form = TokenForm(request.POST or None)
    status = 200
    if request.method == "POST":
        if form.is_valid():
            token, raw = api_token_create_audited(name=form.cleaned_data["name"], by=request.user, at=timezone.now())
            response = render(request, "settings/catalogue/token_created.html", {"token": token, "raw": raw})
            add_never_cache_headers(response)
            return response
        status = 422
    rows = ApiToken.objects.select_related("created_by").order_by(F("revoked_at").desc(nulls_first=True), "-created_at")
    context = {"form": form, "tokens": rows, "history_url": history_url("accounts.ApiToken")}
    return render(request, "settings/catalogue/tokens.html", context, status=status)


@admin_required
@require_POST
def token_revoke(request: HttpRequest, pk: int) -> HttpResponse:
    token = get_object_or_404(ApiToken, pk=pk)
    if token.is_active:
        token = api_token_revoke_audited(token=token, by=request.user, at=timezone.now())
        messages.success(request, f"Revoked {token.name}: requests with it are refused from now on.")
    return redirect("settings:tokens")


# --- The audit log -----------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Change:
    label: str
    before: str
    after: str


@admin_required
@require_GET
def audit(request: HttpRequest) -> HttpResponse:
    """The latest configuration changes, newest first, filterable by type of setting, object and person."""
    form = AuditFilterForm(request.GET or None)
    entries = AuditEntry.objects.select_related("actor").order_by("-at", "-pk")
    filtered = False
    if form.is_valid():
        for name, lookup in (("object_type", "object_type"), ("actor", "actor_id"), ("object_id", "object_id")):
            if form.cleaned_data[name] not in (None, ""):
                entries = entries.filter(**{lookup: form.cleaned_data[name]})
                filtered = True
    page = Paginator(entries, AUDIT_PER_PAGE).get_page(request.GET.get("page"))
    context = {"form": form, "page": page, "rows": audit_rows(page.object_list), "filtered": filtered}
    partial = request.htmx and not request.htmx.history_restore_request
    template = "settings/audit/list.html#results" if partial else "settings/audit/list.html"
    response = render(request, template, context)
    patch_vary_headers(response, ["HX-Request"])
    return response


def audit_rows(entries: Iterable[AuditEntry]) -> list[tuple[AuditEntry, list[Change]]]:
    """Each entry with its changes field by field, readable: labels, choices, related rows by name.

    Related rows are fetched once per related model on the page, whatever the number of entries.
    """
    entries = list(entries)
    wanted: dict[type, set] = {}
    fields_of: dict[str, dict[str, object]] = {}
    for entry in entries:
        model = _model_of(entry.object_type)
        fields = fields_of.setdefault(entry.object_type, {})
        for key in (entry.before or {}).keys() | (entry.after or {}).keys():
            if key in fields or model is None:
                continue
            try:
                field = model._meta.get_field(key)
            except FieldDoesNotExist:
                field = None
            # A reverse relation (an experiment's variants) is snapshotted as the related rows, not their ids.
            fields[key] = None if field is not None and field.is_relation and field.auto_created else field
        if model is not None:
            for side in (entry.before or {}, entry.after or {}):
                for key, value in side.items():
                    field = fields.get(key)
                    if field is not None and field.is_relation:
                        ids = value if isinstance(value, list) else [value]
                        wanted.setdefault(field.related_model, set()).update(i for i in ids if i is not None)
    names = {model: model._default_manager.in_bulk(sorted(ids)) for model, ids in wanted.items() if ids}
    metric_labels = {}
    if any(key.startswith("limits.") for e in entries for key in (e.before or {}).keys() | (e.after or {}).keys()):
        metric_labels = dict(Metric.objects.values_list("key", "label"))

    rows = []
    for entry in entries:
        entry.type_label = object_type_label(entry.object_type)
        entry.edit_url = _edit_url(entry)
        before, after = entry.before or {}, entry.after or {}
        changes = []
        for key in sorted(before.keys() | after.keys(), key=_change_order):
            field = fields_of.get(entry.object_type, {}).get(key)
            if field is not None and field.primary_key:
                continue
            # A created or deleted row: its empty fields say nothing (an empty limit does: unlimited).
            one_sided = entry.before is None or entry.after is None
            empty = before.get(key) in (None, "") and after.get(key) in (None, "")
            if one_sided and empty and not key.startswith("limits."):
                continue
            changes.append(
                Change(
                    label=_change_label(key, field, metric_labels),
                    before=_display(before.get(key), key, field, names) if entry.before is not None else "",
                    after=_display(after.get(key), key, field, names) if entry.after is not None else "",
                )
            )
        rows.append((entry, changes))
    return rows


def _row_name(row) -> str:
    return display_name(row) if isinstance(row, get_user_model()) else str(row)


def _model_of(object_type: str):
    try:
        return apps.get_model(object_type)
    except (LookupError, ValueError):
        return None


def _edit_url(entry: AuditEntry) -> str | None:
    name = EDIT_URLS.get(entry.object_type)
    if name is None or entry.action == AuditEntry.Action.DELETED:
        return None
    try:
        return reverse(name, args=[entry.object_id])
    except NoReverseMatch:
        return None


def _change_order(key: str) -> tuple:
    # The object's own fields first, then its limits, then its features.
    return (key.count("."), key.split(".")[0] != "limits", key)


def _change_label(key: str, field, metric_labels: dict[str, str]) -> str:
    if key.startswith("limits."):
        metric_key = key.removeprefix("limits.")
        return f"Limit · {metric_labels.get(metric_key, metric_key)}"
    if key.startswith("features."):
        _, feature, attribute = [*key.split("."), "", ""][:3]
        return f"Feature {feature} · {attribute.replace('_', ' ')}"
    if field is not None and hasattr(field, "verbose_name"):
        return str(field.verbose_name).capitalize()
    return key.replace("_", " ").capitalize()


def _display(value: object, key: str, field, names: dict) -> str:
    if value is None:
        return "unlimited" if key.startswith("limits.") else "—"
    if isinstance(value, bool):
        return "Yes" if value else "No"
    if field is not None and field.is_relation:
        rows = names.get(field.related_model, {})
        ids = value if isinstance(value, list) else [value]
        text = ", ".join(_row_name(rows[i]) if i in rows else f"#{i} (deleted)" for i in ids)
        return text or "none"
    if field is not None and getattr(field, "choices", None):
        return str(dict(field.flatchoices).get(value, value))
    if isinstance(value, float):
        return f"{value:,.0f}" if value.is_integer() else f"{value:,g}"
    if isinstance(value, str) and field is not None and field.get_internal_type() == "DateTimeField":
        try:
            return timezone.localtime(dt.datetime.fromisoformat(value)).strftime("%b %-d, %Y %H:%M")
        except ValueError:
            return value
    if isinstance(value, list | dict):
        return json.dumps(value, ensure_ascii=False)
    return "“”" if value == "" else str(value)
