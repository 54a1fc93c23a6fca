"""The managers' pipeline dashboard: funnel, conversion, win rate, time in stage, open pipeline by CSM and
segment, lost reasons, snoozes coming back, and the CSM leaderboard, for a period and a slice of the book."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence
from dataclasses import replace
from decimal import Decimal
from urllib.parse import urlencode

from django import forms
from django.contrib.auth import get_user_model
from django.core.exceptions import PermissionDenied
from django.db.models import Exists, OuterRef, Q, QuerySet
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render
from django.urls import reverse
from django.utils import timezone
from django.utils.cache import patch_vary_headers
from django.views.decorators.http import require_GET
from django_htmx.http import push_url

from accounts.csv_export import csv_response
from accounts.models import Account, Plan
from accounts.roles import Role, is_manager_or_admin
from opportunities.metrics_views import PRESETS, PeriodForm, preset_period
from opportunities.models import STAGE_ORDER, Opportunity, Stage
from opportunities.pipeline_selectors import PipelineFilters, pipeline_dashboard
from opportunities.pipeline_stats import (
    LEADERBOARD_DEFAULT_SORT,
    LEADERBOARD_SORTS,
    PipelineStats,
    leaderboard_sorted,
)

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


def _canonical_params(
    form: PipelineFilterForm, *, period_key: str, start: dt.date, end: dt.date, sort: str
) -> dict[str, str]:
    """The query of what is shown: the preset or the days, the filters that are set, the sort if chosen."""
    params = {"period": period_key} if period_key != "custom" else {"start": start.isoformat(), "end": end.isoformat()}
    params |= {name: form.data.get(name) for name in SEGMENT_FIELDS if form.cleaned_data.get(name)}
    if sort:
        params["sort"] = sort
    return params


def _page_url(params: dict[str, str]) -> str:
    return f"{reverse('pipeline:page')}?{urlencode(params)}" if params else reverse("pipeline:page")


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
    &size=&region=`), with the leaderboard sorted by `?sort=`. HTMX gets the results partial; `?export=<table>`
    downloads one of its tables as CSV, for the same period and slice."""
    if not is_manager_or_admin(request.user):
        raise PermissionDenied("The pipeline is for managers and admins.")
    export = request.GET.get("export", "")
    if export and export not in EXPORTS:
        # A download link to a table the page does not have: a 404 rather than the page saved as a .csv.
        raise Http404(f"No table {export!r} to export.")
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
        leaderboard = leaderboard_sorted(stats.leaderboard, key=sort_key, descending=sort_descending)
        if export:
            return _export(export, replace(stats, leaderboard=leaderboard))
        params = _canonical_params(
            form,
            period_key=period_key,
            start=start,
            end=end,
            sort=context["sort_value"] if request.GET.get("sort") else "",
        )
        context |= {
            "period_key": period_key,
            "presets": PRESETS,
            "start": start,
            "end": end,
            "stats": stats,
            "leaderboard": leaderboard,
            "funnel_chart": _funnel_chart_data(stats),
            "filtered": form.active_count() > 0,
            "export_urls": {name: _page_url({**params, "export": name}) for name in EXPORTS},
        }
        canonical = _page_url(params)
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


# --- CSV exports -------------------------------------------------------------------------------------------

CENTS = Decimal("0.01")


def _money(value: Decimal) -> Decimal:
    return value.quantize(CENTS)


def _funnel_rows(stats: PipelineStats) -> tuple[list[str], list[list]]:
    header = ["stage", "open", "expected_mrr", "priced"]
    return header, [[s.label, s.count, _money(s.expected_mrr), s.priced] for s in stats.funnel]


def _stages_rows(stats: PipelineStats) -> tuple[list[str], list[list]]:
    header = [
        "stage",
        "reached",
        "next_stage",
        "reached_next",
        "conversion_percent",
        "stays",
        "avg_days_in_stage",
    ]
    rows = [
        [step.from_label, step.reached_from, step.to_label, step.reached_to, step.rate, stay.stays, stay.avg_days]
        for step, stay in stats.stage_steps
    ]
    return header, rows


def _by_csm_rows(stats: PipelineStats) -> tuple[list[str], list[list]]:
    header = ["csm", *(stage.value for stage in STAGE_ORDER), "open", "expected_mrr"]
    rows = [[row.label, *row.by_stage, row.count, _money(row.expected_mrr)] for row in stats.by_owner]
    return header, rows


def _by_segment_rows(stats: PipelineStats) -> tuple[list[str], list[list]]:
    header = ["segment", "value", "open", "expected_mrr"]
    rows = [
        [heading, row.label, row.count, _money(row.expected_mrr)]
        for heading, groups in stats.by_segment
        for row in groups
    ]
    return header, rows


def _lost_reasons_rows(stats: PipelineStats) -> tuple[list[str], list[list]]:
    return ["reason", "lost", "share_percent"], [[row.label, row.count, row.share] for row in stats.lost_reasons]


def _snoozed_rows(stats: PipelineStats) -> tuple[list[str], list[list]]:
    header = ["account", "owner", "stage", "snoozed_until"]
    rows = [
        [o.account_name, o.owner_name or "Unassigned", Stage(o.stage).label, o.snoozed_until]
        for o in stats.snoozed_returning
    ]
    return header, rows


def _leaderboard_rows(stats: PipelineStats) -> tuple[list[str], list[list]]:
    header = ["csm", "worked", "won", "lost", "win_rate_percent", "expansion_mrr", "avg_cycle_days"]
    rows = [
        [row.name, row.worked, row.won, row.lost, row.win_rate, _money(row.expansion_mrr), row.avg_cycle_days]
        for row in stats.leaderboard
    ]
    return header, rows


EXPORTS: dict[str, Callable[[PipelineStats], tuple[Sequence[str], list[list]]]] = {
    "funnel": _funnel_rows,
    "stages": _stages_rows,
    "by_csm": _by_csm_rows,
    "by_segment": _by_segment_rows,
    "lost_reasons": _lost_reasons_rows,
    "snoozed": _snoozed_rows,
    "leaderboard": _leaderboard_rows,
}
"""The tables of the page by `?export=` name, each as (header, rows): money with two decimals, percentages
and days as numbers with one decimal (empty where the page shows a dash), dates as ISO days."""


def _export(name: str, stats: PipelineStats) -> HttpResponse:
    """One table of `stats` as CSV: the period and slice the page shows, the leaderboard in its sort."""
    header, rows = EXPORTS[name](stats)
    filename = f"pipeline-{name.replace('_', '-')}-{stats.start:%Y%m%d}-{stats.end:%Y%m%d}.csv"
    return csv_response(filename=filename, header=header, rows=rows)
