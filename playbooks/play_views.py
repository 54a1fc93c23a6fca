"""The playbooks pages of the admin settings: the list of plays, and one form to create or edit a play with a
live preview of its templates rendered for a sample account."""

from __future__ import annotations

from collections.abc import Mapping

from django.contrib import messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.utils.cache import patch_vary_headers
from django.views.decorators.http import require_GET, require_http_methods

from accounts.models import Plan
from accounts.roles import is_admin
from playbooks import selectors
from playbooks.models import Play
from playbooks.play_forms import PlayForm
from playbooks.sandbox import (
    ALLOWED_FILTERS,
    MAX_TEMPLATE_CHARS,
    MERGE_FIELDS,
    sample_values,
    sandbox_render,
    template_errors,
)
from playbooks.services import PLAY_TEMPLATES, play_save

PREVIEW_LABELS = {
    "email_subject": "Email subject",
    "email_body": "Email body",
    "prompt_text": "Prompt text",
    "downgrade_save_subject": "Downgrade-save subject",
    "downgrade_save_body": "Downgrade-save body",
}


def _require_admin(request: HttpRequest) -> None:
    if not is_admin(request.user):
        raise PermissionDenied("Plays are configured by admins.")


@require_GET
def plays(request: HttpRequest) -> HttpResponse:
    """Every play: target plan, rules, whether it is active, how often it touched accounts and won."""
    _require_admin(request)
    return render(request, "settings/plays/list.html", {"plays": selectors.plays_for_settings()})


@require_http_methods(["GET", "POST"])
def play_create(request: HttpRequest) -> HttpResponse:
    _require_admin(request)
    return _play_form_page(request, Play())


@require_http_methods(["GET", "POST"])
def play_edit(request: HttpRequest, pk: int) -> HttpResponse:
    _require_admin(request)
    return _play_form_page(request, get_object_or_404(Play, pk=pk))


def _play_form_page(request: HttpRequest, play: Play) -> HttpResponse:
    """GET: the form. POST with `preview`: the preview of the posted templates (the partial for HTMX),
    nothing saved. POST: save through play_save, or answer 422 with the errors next to their fields."""
    status = 200
    if request.method == "POST":
        form = PlayForm(request.POST, instance=play)
        if "preview" in request.POST:
            partial = request.htmx and not request.htmx.history_restore_request
            template = "settings/plays/form.html#preview" if partial else "settings/plays/form.html"
            response = render(request, template, _form_context(play, form, data=request.POST, partial=partial))
            patch_vary_headers(response, ["HX-Request"])
            return response
        if form.is_valid():
            try:
                saved = play_save(play=play, data=form.cleaned_data, by=request.user, at=timezone.now())
            except ValidationError as error:
                for field, problems in error.message_dict.items():
                    form.add_error(field if field in form.fields else None, problems)
            else:
                messages.success(request, f"Play “{saved.name}” saved.")
                return redirect("settings:play_edit", pk=saved.pk)
        status = 422
        data: Mapping[str, str] = request.POST
    else:
        form = PlayForm(instance=play)
        data = {name: form[name].value() or "" for name in ("target_plan", "trial_days", *PLAY_TEMPLATES)}
    response = render(request, "settings/plays/form.html", _form_context(play, form, data=data), status=status)
    patch_vary_headers(response, ["HX-Request"])
    return response


def _form_context(play: Play, form: PlayForm, *, data: Mapping[str, object], partial: bool = False) -> dict:
    context = {
        "play": play if play.pk else None,
        "form": form,
        "preview": play_preview(data),
        "merge_fields": MERGE_FIELDS.values(),
        "allowed_filters": ALLOWED_FILTERS,
        "max_chars": f"{MAX_TEMPLATE_CHARS:,}",
    }
    if play.pk and not partial:
        # The step editor sits under the play's form. Imported here: its views preview through this module.
        from playbooks.sequence_views import sequence_editor_context

        context.update(sequence_editor_context(Play.objects.get(pk=play.pk)))
    return context


def _sample_overrides(data: Mapping[str, object]) -> dict[str, object]:
    """The sample account's values that follow the form: the target plan (and the plan below it as the
    current one, for the price delta) and the trial length."""
    overrides: dict[str, object] = {}
    trial_days = str(data.get("trial_days") or "").strip()
    if trial_days.isdigit():
        overrides["trial_days"] = trial_days
    target_id = str(data.get("target_plan") or "")
    if not target_id.isdigit():
        return overrides
    plans = list(Plan.objects.order_by("tier_rank"))
    target = next((plan for plan in plans if plan.pk == int(target_id)), None)
    if target is None:
        return overrides
    below = [plan for plan in plans if plan.tier_rank < target.tier_rank]
    overrides["target_plan"] = target.name
    overrides["target_price"] = f"{target.monthly_price:,.2f} {target.currency}"
    if below:
        current = below[-1]
        overrides["current_plan"] = current.name
        overrides["price_delta"] = f"{target.monthly_price - current.monthly_price:,.2f} {target.currency}"
    return overrides


def play_preview(data: Mapping[str, object]) -> dict:
    """Each template of the posted play rendered for the sample account, or its errors."""
    values = sample_values(**_sample_overrides(data))
    parts = {}
    for name, kind in PLAY_TEMPLATES.items():
        text = str(data.get(name) or "")
        errors = template_errors(text, kind=kind)
        rendered = sandbox_render(text, values, kind=kind) if text and not errors else ""
        parts[name] = {"label": PREVIEW_LABELS[name], "text": text, "rendered": rendered, "errors": errors}
    return {"account": values, "parts": parts}
