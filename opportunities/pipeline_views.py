"""The managers' pipeline dashboard: funnel, conversion, win rate, time in stage, open pipeline by CSM and
segment, lost reasons, snoozes coming back, and the CSM leaderboard, for a period and a slice of the book."""

from __future__ import annotations

import datetime as dt
from urllib.parse import urlencode

from django import forms
from django.contrib.auth import get_user_model
from django.core.exceptions import PermissionDenied
from django.db.models import Exists, OuterRef, Q, QuerySet
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.urls import reverse
from django.utils import timezone
from django.utils.cache import patch_vary_headers
from django.views.decorators.http import require_GET
from django_htmx.http import push_url

from accounts.models import Account, Plan
from accounts.roles import Role, is_manager_or_admin
from opportunities.metrics_views import PRESETS, PeriodForm, preset_period
from opportunities.models import Opportunity
from opportunities.pipeline_selectors import PipelineFilters, pipeline_dashboard
from opportunities.pipeline_stats import LEADERBOARD_DEFAULT_SORT, LEADERBOARD_SORTS, PipelineStats, leaderboard_sorted

SEGMENT_FIELDS = ("csm", "plan", "industry", "size", "region")


class CsmField(forms.ModelChoiceField):
    def label_from_instance(self, obj) -> str:
        return obj.get_full_name() or obj.get_username()


def _csms() -> QuerySet:
    """Members of the CSM group and anyone else owning an opportunity, by name (no join, so no duplicates)."""
    User = get_user_model()
    in_csm_group = User.groups.through.objects.filter(group__name=Role.CSM).values("user_id")
    owns_one = Exists(Opportunity.objects.filter(owner=OuterRef("pk")))
    return User.objects.filter(Q(pk__in=in_csm_group) | owns_one).order_by("first_name", "last_name", "username")


def _distinct_account_values(field: str) -> list[tuple[str, str]]:
    """The values accounts actually have, so the select never offers an empty segment."""
    values = Account.objects.exclude(**{field: ""}).order_by(field).values_list(field, flat=True).distinct()
    return [(value, value) for value in values]


class PipelineFilterForm(PeriodForm):
    """The metrics page's period (a preset, or `start` and `end`) and the slice of the book: the CSM owning
    the opportunities, and the account's plan, industry, company size and region."""

    csm = CsmField(queryset=get_user_model().objects.none(), required=False, empty_label="Any CSM", label="CSM")
    plan = forms.ModelChoiceField(
        queryset=Plan.objects.order_by("tier_rank"), required=False, empty_label="Any plan", label="Plan"
    )
    industry = forms.ChoiceField(required=False, label="Industry")
    size = forms.ChoiceField(
        choices=[("", "Any company size"), *Account.Size.choices], required=False, label="Company size"
    )
    region = forms.ChoiceField(required=False, label="Region")

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["csm"].queryset = _csms()
        # Read once here: callable choices would be read again by validation and by rendering.
        self.fields["industry"].choices = [("", "Any industry"), *_distinct_account_values("industry")]
        self.fields["region"].choices = [("", "Any region"), *_distinct_account_values("region")]

    def filters(self) -> PipelineFilters:
        data = self.cleaned_data
        return PipelineFilters(
            owner_id=data["csm"].pk if data.get("csm") else None,
            plan_id=data["plan"].pk if data.get("plan") else None,
            industry=data.get("industry") or "",
            size=data.get("size") or "",
            region=data.get("region") or "",
        )

    def active_count(self) -> int:
        return sum(1 for name in SEGMENT_FIELDS if self.cleaned_data.get(name))


def _period_key(form: PipelineFilterForm, *, today: dt.date) -> tuple[str, dt.date, dt.date]:
    """The chosen period. The filter form sends the days it shows along with the preset they came from, so
    days equal to that preset's stand for the preset (a rolling "last 12 months" stays rolling)."""
    key, start, end = form.chosen_period(today=today)
    preset = form.cleaned_data.get("period")
    if key == "custom" and preset and preset_period(preset, today=today) == (start, end):
        return preset, start, end
    return key, start, end


def _canonical_url(form: PipelineFilterForm, *, period_key: str, start: dt.date, end: dt.date, sort: str) -> str:
    """The address of what is shown: the preset or the days, the filters that are set, the sort if chosen."""
    params = {"period": period_key} if period_key != "custom" else {"start": start.isoformat(), "end": end.isoformat()}
    params |= {name: form.data.get(name) for name in SEGMENT_FIELDS if form.cleaned_data.get(name)}
    if sort:
        params["sort"] = sort
    return f"{reverse('pipeline:page')}?{urlencode(params)}"


def parse_leaderboard_sort(value: str | None) -> tuple[str, bool]:
    """(`key`, `descending`) of a `?sort=` value ("-won"); unknown keys fall back to the default."""
    value = (value or "").strip()
    key = value.removeprefix("-")
    if key not in LEADERBOARD_SORTS:
        return LEADERBOARD_DEFAULT_SORT
    return key, value.startswith("-")


def _funnel_chart_data(stats: PipelineStats) -> dict:
    return {
        "stages": [stage.label for stage in stats.funnel],
        "counts": [stage.count for stage in stats.funnel],
        "expected_mrr": [float(stage.expected_mrr) for stage in stats.funnel],
    }


@require_GET
def pipeline_page(request: HttpRequest) -> HttpResponse:
    """The pipeline of a period (`?period=` preset or `?start=&end=`) and a slice (`?csm=&plan=&industry=
    &size=&region=`), with the leaderboard sorted by `?sort=`. HTMX gets the results partial."""
    if not is_manager_or_admin(request.user):
        raise PermissionDenied("The pipeline is for managers and admins.")
    today = timezone.localdate()
    form = PipelineFilterForm(request.GET)
    sort_key, sort_descending = parse_leaderboard_sort(request.GET.get("sort"))
    context: dict = {
        "form": form,
        "page_url": reverse("pipeline:page"),
        "sort_key": sort_key,
        "sort_descending": sort_descending,
        "sort_value": f"{'-' if sort_descending else ''}{sort_key}",
    }
    status = 200
    if form.is_valid():
        period_key, start, end = _period_key(form, today=today)
        stats = pipeline_dashboard(start=start, end=end, today=today, filters=form.filters())
        context |= {
            "period_key": period_key,
            "presets": PRESETS,
            "start": start,
            "end": end,
            "stats": stats,
            "leaderboard": leaderboard_sorted(stats.leaderboard, key=sort_key, descending=sort_descending),
            "funnel_chart": _funnel_chart_data(stats),
            "filtered": form.active_count() > 0,
        }
        canonical = _canonical_url(
            form,
            period_key=period_key,
            start=start,
            end=end,
            sort=context["sort_value"] if request.GET.get("sort") else "",
        )
    else:
        context["presets"] = PRESETS
        status = 422
    template = "pipeline/dashboard.html"
    if request.htmx and not request.htmx.history_restore_request:
        template += "#results"
    response = render(request, template, context, status=status)
    if request.htmx and status == 200:
        # The form sends every field, empty or not, and the days of a preset: push the tidy address instead.
        push_url(response, canonical)
    patch_vary_headers(response, ["HX-Request"])
    return response
