"""The rules editor for admins: the rules with whom each flags today, the scoring policy, and a rule's form
with a live preview (posted on every edit, nothing saved) and an on-demand backtest over past months."""

from __future__ import annotations

from django.contrib import messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.cache import patch_vary_headers
from django.views.decorators.http import require_http_methods, require_POST

from accounts.roles import is_admin
from playbooks.backtest import BACKTEST_MONTHS, UPGRADE_WINDOW_DAYS, chart_data
from playbooks.backtest_selectors import rule_backtest
from playbooks.facts import SAMPLE_SIZE, flagged_by_rules, stored_facts
from playbooks.models import Rule, ScoringPolicy
from playbooks.rule_forms import RuleForm, ScoringPolicyForm, rule_initial_from_query, thresholds_in_words
from playbooks.rule_services import rule_save, rule_set_enabled, scoring_policy_save
from playbooks.rules import RuleSpec


def _require_admin(request: HttpRequest) -> None:
    if not is_admin(request.user):
        raise PermissionDenied("The rules are configured by admins.")


def _render(request: HttpRequest, template: str, context: dict, *, status: int = 200) -> HttpResponse:
    response = render(request, template, context, status=status)
    patch_vary_headers(response, ["HX-Request"])
    return response


def _partial(request: HttpRequest) -> bool:
    return bool(request.htmx) and not request.htmx.history_restore_request


@require_http_methods(["GET", "POST"])
def rules(request: HttpRequest) -> HttpResponse:
    """Every rule in words, with how many accounts it flags today; the scoring policy (a POST saves it)."""
    _require_admin(request)
    status, saved = 200, False
    if request.method == "POST":
        form = ScoringPolicyForm(request.POST)
        if form.is_valid():
            try:
                scoring_policy_save(data=form.cleaned_data, by=request.user, at=timezone.now())
            except ValidationError as exc:
                form.add_error(None, exc)
            else:
                if not _partial(request):
                    messages.success(request, "Scoring policy saved.")
                    return redirect("settings:rules")
                saved = True
        status = 422 if form.errors else 200
        if _partial(request):
            return _render(
                request, "settings/rules/list.html#policy", {"policy_form": form, "saved": saved}, status=status
            )
    else:
        form = ScoringPolicyForm.for_policy(ScoringPolicy.current())

    all_rules = list(Rule.objects.select_related("metric").prefetch_related("plans").order_by("-enabled", "name"))
    specs = [rule.as_spec() for rule in all_rules]
    flagged = flagged_by_rules(specs, stored_facts()) if all_rules else {}
    rows = [
        {"rule": rule, "words": _rule_words(rule, spec), "flagged": flagged[rule.pk].count}
        for rule, spec in zip(all_rules, specs, strict=True)
    ]
    context = {"rows": rows, "policy_form": form, "saved": saved}
    return _render(request, "settings/rules/list.html", context, status=status)


@require_http_methods(["GET", "POST"])
def rule_create(request: HttpRequest) -> HttpResponse:
    """A new rule: the form, its live preview and backtest; a valid save opens the saved rule."""
    _require_admin(request)
    return _rule_form(request, Rule(), action=reverse("settings:rule_create"))


@require_http_methods(["GET", "POST"])
def rule_edit(request: HttpRequest, pk: int) -> HttpResponse:
    """One rule's form with its live preview and backtest."""
    _require_admin(request)
    rule = get_object_or_404(Rule.objects.select_related("metric").prefetch_related("plans"), pk=pk)
    return _rule_form(request, rule, action=reverse("settings:rule_edit", args=[pk]))


def _rule_form(request: HttpRequest, rule: Rule, *, action: str) -> HttpResponse:
    """GET: the form. POST with `backtest` or `preview`: that panel for the unsaved values (a partial for htmx,
    the whole page without JavaScript); nothing is stored. Any other POST saves (422 with the errors)."""
    context = {"rule": rule, "action": action, "backtest_months": BACKTEST_MONTHS, "window_days": UPGRADE_WINDOW_DAYS}
    template = "settings/rules/form.html"
    if request.method == "GET":
        # A new rule may come pre-filled from a link (the insights page's "Create a rule from this").
        initial = rule_initial_from_query(request.GET) if rule.pk is None else None
        form = RuleForm(rule=rule, initial=initial)
        preview = _saved_preview(rule) if rule.pk else None
        return _render(request, template, {**context, "form": form, "preview": preview})

    form = RuleForm(request.POST, rule=rule)
    if "backtest" in request.POST:
        backtest = _backtest(form)
        if _partial(request):
            return _render(request, f"{template}#backtest", {**context, "form": form, "backtest": backtest})
        return _render(request, template, {**context, "form": form, "preview": _preview(form), "backtest": backtest})
    if "preview" in request.POST:
        preview = _preview(form)
        if _partial(request):
            return _render(request, f"{template}#preview", {**context, "form": form, "preview": preview})
        return _render(request, template, {**context, "form": form, "preview": preview})

    if form.is_valid():
        try:
            saved = rule_save(rule=rule, data=form.rule_data(), by=request.user, at=timezone.now())
        except ValidationError as exc:
            form.add_error(None, exc)
        else:
            messages.success(request, f"Rule “{saved.name}” saved.")
            return redirect("settings:rule_edit", pk=saved.pk)
    return _render(request, template, {**context, "form": form, "preview": _preview(form)}, status=422)


def _preview(form: RuleForm) -> dict:
    """How many accounts the form's rule flags today, and a sample of them; or why it cannot say."""
    if not form.is_valid():
        return {"errors": _problems(form)}
    metric = form.cleaned_data["metric"]
    preview = _flagged_today(form.spec(), metric_id=metric.pk if metric else None, words=form.words())
    return {**preview, "enabled": form.cleaned_data["enabled"]}


def _rule_words(rule: Rule, spec: RuleSpec) -> list[str]:
    """A stored rule's conditions in words (metric selected, plans prefetched)."""
    metric_label = rule.metric.label if rule.metric else ""
    return thresholds_in_words(spec, metric_label=metric_label, plan_names=[p.name for p in rule.plans.all()])


def _saved_preview(rule: Rule) -> dict:
    """The preview of the rule as stored."""
    spec = rule.as_spec()
    preview = _flagged_today(spec, metric_id=rule.metric_id, words=_rule_words(rule, spec))
    return {**preview, "enabled": rule.enabled}


def _flagged_today(spec: RuleSpec, *, metric_id: int | None, words: list[str]) -> dict:
    flagged = flagged_by_rules([spec], stored_facts(metric_ids=[metric_id] if metric_id else []))[spec.id]
    return {"count": flagged.count, "sample": flagged.sample, "sample_size": SAMPLE_SIZE, "words": words}


def _backtest(form: RuleForm) -> dict:
    """The form's rule evaluated at each of the last month-ends, against the base rate; or why it cannot run."""
    if not form.is_valid():
        return {"errors": _problems(form)}
    months = rule_backtest(rule=form.spec(), today=timezone.localdate())
    return {"months": months, "chart": chart_data(months), "words": form.words()}


def _problems(form: RuleForm) -> list[str]:
    """The form's errors as sentences naming their field."""
    problems = list(form.non_field_errors())
    for name, errors in form.errors.items():
        if name != "__all__":
            problems += [f"{form.fields[name].label or name.replace('_', ' ').capitalize()}: {e}" for e in errors]
    return problems


@require_POST
def rule_toggle(request: HttpRequest, pk: int) -> HttpResponse:
    """Enable or disable a rule (`enabled` = 1 or 0 is the state wanted, so a repeated click changes nothing)."""
    _require_admin(request)
    rule = get_object_or_404(Rule, pk=pk)
    wanted = request.POST.get("enabled")
    if wanted not in ("0", "1"):
        return HttpResponse("Say enabled=1 or enabled=0.", status=422, content_type="text/plain")
    rule = rule_set_enabled(rule=rule, enabled=wanted == "1", by=request.user, at=timezone.now())
    if _partial(request):
        return _render(request, "settings/rules/list.html#toggle", {"rule": rule})
    messages.success(request, f"Rule “{rule.name}” {'enabled' if rule.enabled else 'disabled'}.")
    return redirect("settings:rules")
