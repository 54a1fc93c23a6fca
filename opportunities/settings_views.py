"""Admin settings for the opportunities app: the lost reasons a CSM picks from when an opportunity is lost.

Reasons are never deleted (lost opportunities keep pointing at them): an admin deactivates one instead, and
it leaves the CSMs' list while its history stays readable.
"""

from __future__ import annotations

from django import forms
from django.contrib import messages
from django.db.models import Max
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from accounts.settings_crud import catalogue_row_edit
from accounts.settings_forms import NoColonForm
from accounts.settings_services import config_row_move, config_row_save
from accounts.settings_views import admin_required, history_url
from opportunities.models import LostReason


class LostReasonForm(NoColonForm, forms.ModelForm):
    class Meta:
        model = LostReason
        fields = ["label", "key", "active"]
        help_texts = {
            "key": "A short identifier for exports, e.g. no_budget.",
            "active": "Inactive reasons leave the list CSMs pick from; opportunities lost for them keep them.",
        }


@admin_required
@require_GET
def lost_reasons(request: HttpRequest) -> HttpResponse:
    """The reasons in the order CSMs see them, with buttons to reorder and (de)activate them."""
    rows = list(LostReason.objects.order_by("display_order", "pk"))
    context = {"reasons": rows, "history_url": history_url("opportunities.LostReason")}
    return render(request, "settings/catalogue/lost_reasons.html", context)


@admin_required
@require_http_methods(["GET", "POST"])
def lost_reason_edit(request: HttpRequest, pk: int | None = None) -> HttpResponse:
    reason = get_object_or_404(LostReason, pk=pk) if pk is not None else LostReason()

    def save(data: dict[str, object]) -> LostReason:
        if reason.pk is None:
            # A new reason goes to the end of the list.
            last = LostReason.objects.aggregate(last=Max("display_order"))["last"]
            data = {**data, "display_order": (last or 0) + 1}
        return config_row_save(obj=reason, data=data, by=request.user, at=timezone.now())

    return catalogue_row_edit(
        request,
        form=LostReasonForm(request.POST or None, instance=reason),
        save=save,
        saved_message=lambda saved: f"Saved the lost reason “{saved.label}”.",
        list_url="settings:lost_reasons",
        page=lambda: {
            "title": f"Lost reason “{reason.label}”" if reason.pk else "New lost reason",
            "intro": "CSMs pick one of these when they close an opportunity as lost; the pipeline page counts them.",
            "back_url": reverse("settings:lost_reasons"),
            "back_label": "Lost reasons",
            "history_url": history_url("opportunities.LostReason", reason.pk) if reason.pk else None,
        },
    )


@admin_required
@require_POST
def lost_reason_move(request: HttpRequest, pk: int) -> HttpResponse:
    """One place up or down the list CSMs pick from."""
    reason = get_object_or_404(LostReason, pk=pk)
    direction = request.POST.get("direction")
    if direction not in ("up", "down"):
        return HttpResponse("direction must be up or down.", status=422, content_type="text/plain")
    config_row_move(obj=reason, rows=LostReason.objects.all(), up=direction == "up", by=request.user, at=timezone.now())
    return redirect("settings:lost_reasons")


@admin_required
@require_POST
def lost_reason_set_active(request: HttpRequest, pk: int) -> HttpResponse:
    """Take a reason off the CSMs' list, or put it back."""
    reason = get_object_or_404(LostReason, pk=pk)
    active = request.POST.get("active")
    if active not in ("0", "1"):
        return HttpResponse("active must be 0 or 1.", status=422, content_type="text/plain")
    saved = config_row_save(obj=reason, data={"active": active == "1"}, by=request.user, at=timezone.now())
    state = "back on" if saved.active else "off"
    messages.success(request, f"“{saved.label}” is {state} the list CSMs pick from.")
    return redirect("settings:lost_reasons")
