"""The A/B test pages of the admin settings: the list of experiments, the form that creates one, and each
experiment's results with its start and stop buttons."""

from __future__ import annotations

from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from accounts.roles import is_admin
from playbooks import experiment_services
from playbooks.experiment_forms import MAX_VARIANTS, ExperimentForm, VariantFormSet
from playbooks.experiment_selectors import experiment_results, experiments_for_list
from playbooks.experiment_services import ExperimentNotAllowed
from playbooks.models import Experiment

VARIANT_PREFIX = "variants"


def _require_admin(request: HttpRequest) -> None:
    if not is_admin(request.user):
        raise PermissionDenied("Experiments are configured by admins.")


@require_GET
def experiments(request: HttpRequest) -> HttpResponse:
    """Every experiment, newest first, with its play, status, variants and assigned accounts."""
    _require_admin(request)
    return render(request, "settings/experiments/list.html", {"experiments": experiments_for_list()})


@require_http_methods(["GET", "POST"])
def experiment_create(request: HttpRequest) -> HttpResponse:
    """GET: the form with two variant rows and a spare one. POST: a draft experiment, then its page; bad input
    answers 422 with the errors by their fields and stores nothing."""
    _require_admin(request)
    status = 200
    if request.method == "POST":
        form = ExperimentForm(request.POST)
        variants = VariantFormSet(request.POST, prefix=VARIANT_PREFIX)
        if form.is_valid() and variants.is_valid():
            data = form.cleaned_data
            try:
                with transaction.atomic():
                    experiment = experiment_services.experiment_create(
                        play=data["play"],
                        name=data["name"],
                        hypothesis=data["hypothesis"],
                        control_share=data["control_percent"] / 100,
                        attribution_days=data["attribution_days"],
                        variants=[f.spec() for f in variants.filled()],
                        by=request.user,
                        at=timezone.now(),
                    )
            except ExperimentNotAllowed as error:
                form.add_error(None, str(error))
            else:
                messages.success(request, f"“{experiment.name}” is saved as a draft: start it when you are ready.")
                return redirect("settings:experiment_detail", pk=experiment.pk)
        status = 422
    else:
        form = ExperimentForm(initial={"play": request.GET.get("play")})
        variants = VariantFormSet(prefix=VARIANT_PREFIX, initial=[{"name": "A"}, {"name": "B"}])
    context = {"form": form, "variants": variants, "max_variants": MAX_VARIANTS}
    return render(request, "settings/experiments/form.html", context, status=status)


def _detail(request: HttpRequest, experiment: Experiment, *, status: int = 200, error: str = "") -> HttpResponse:
    results = experiment_results(experiment=experiment)
    return render(request, "settings/experiments/detail.html", {"results": results, "error": error}, status=status)


@require_GET
def experiment_detail(request: HttpRequest, pk: int) -> HttpResponse:
    """The experiment and its results per arm: rates with 95% intervals, lift, p-values and the verdict."""
    _require_admin(request)
    experiment = get_object_or_404(Experiment.objects.select_related("play", "created_by"), pk=pk)
    return _detail(request, experiment)


@require_POST
def experiment_start(request: HttpRequest, pk: int) -> HttpResponse:
    """Start a draft; refused (409, the page with the reason) when another experiment runs on the play."""
    _require_admin(request)
    experiment = get_object_or_404(Experiment.objects.select_related("play", "created_by"), pk=pk)
    try:
        experiment_services.experiment_start(experiment=experiment, by=request.user, at=timezone.now())
    except ExperimentNotAllowed as error:
        return _detail(request, experiment, status=409, error=str(error))
    messages.success(request, f"“{experiment.name}” is running: accounts meeting the play are assigned from now on.")
    return redirect("settings:experiment_detail", pk=experiment.pk)


@require_POST
def experiment_stop(request: HttpRequest, pk: int) -> HttpResponse:
    """Stop a running experiment: no new assignments, the control group gets the play again."""
    _require_admin(request)
    experiment = get_object_or_404(Experiment.objects.select_related("play", "created_by"), pk=pk)
    try:
        experiment_services.experiment_stop(experiment=experiment, by=request.user, at=timezone.now())
    except ExperimentNotAllowed as error:
        return _detail(request, experiment, status=409, error=str(error))
    messages.success(request, f"“{experiment.name}” is stopped; its results stay here.")
    return redirect("settings:experiment_detail", pk=experiment.pk)
