"""The insights pages for managers and admins: feature adoption, what precedes upgrades, usage cohorts.

One view per section, each rendering its own template (templates/insights/<section>.html on top of
base_insights.html, which holds the sub-navigation); a new section adds a view, a template and a line in
SECTIONS. Every section takes the pipeline dashboard's filters (a period preset or `start` and `end`, and the
accounts' CSM, plan, industry, company size and region), answers htmx with its results partial, and downloads
any of its tables as CSV with `?export=<table>` for the same filters: section_page holds that flow, for the
voice-of-the-customer sections (voice_views) too. The math is accounts.insights; the reads are
accounts.insight_selectors.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from urllib.parse import urlencode

from django import forms
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render
from django.urls import reverse
from django.utils import timezone
from django.utils.cache import patch_vary_headers
from django.views.decorators.http import require_GET
from django_htmx.http import push_url

from accounts.csv_export import csv_response
from accounts.insight_selectors import (
    DIMENSIONS,
    AdoptionOverview,
    CohortsOverview,
    PredictorsOverview,
    adoption_overview,
    feature_keys,
    upgrade_predictors,
    usage_cohorts,
)
from accounts.insights import (
    MIN_GROUP_ACCOUNTS,
    MIN_UPGRADES,
    UPGRADE_WINDOW_DAYS,
    SignalLift,
    cohort_comparison,
    most_and_least_used,
)
from accounts.models import Metric
from accounts.revenue_selectors import Segment
from accounts.roles import is_admin, is_manager_or_admin
from opportunities.metrics_views import PRESETS, preset_period
from opportunities.pipeline_views import SEGMENT_FIELDS, PipelineFilterForm

SECTIONS = [
    ("adoption", "Feature adoption", "insights:adoption"),
    ("predictors", "What precedes upgrades", "insights:predictors"),
    ("cohorts", "Usage cohorts", "insights:cohorts"),
    ("surveys", "Surveys", "insights:surveys"),
    ("feedback", "Downgrades and churn", "insights:feedback"),
    ("winloss", "Win/loss", "insights:winloss"),
]
"""The sub-navigation: (key, label, URL name), in order. A section added to the insights area goes here."""


def _require_manager(request: HttpRequest) -> None:
    if not is_manager_or_admin(request.user):
        raise PermissionDenied("Insights are for managers and admins: they cover every CSM's book.")


class InsightsFilterForm(PipelineFilterForm):
    """The pipeline dashboard's period and slice; here the CSM is the one who owns the account."""

    def segment(self) -> Segment:
        f = self.filters()
        return Segment(owner_id=f.owner_id, plan_id=f.plan_id, industry=f.industry, size=f.size, region=f.region)


@dataclass(frozen=True)
class Filters:
    """What a valid filter form chose: the period (preset key or "custom") and slice, and their query, as of
    `today`."""

    period_key: str
    start: dt.date
    end: dt.date
    segment: Segment
    params: dict[str, str]
    active: int
    today: dt.date


def _chosen(form: InsightsFilterForm, *, today: dt.date) -> Filters:
    """The period and slice of a valid form. Days equal to the preset the form came from stand for the
    preset, so a rolling "last 12 months" stays rolling (as on the pipeline dashboard)."""
    key, start, end = form.chosen_period(today=today)
    preset = form.cleaned_data.get("period")
    if key == "custom" and preset and preset_period(preset, today=today) == (start, end):
        key = preset
    params = {"period": key} if key != "custom" else {"start": start.isoformat(), "end": end.isoformat()}
    params |= {name: form.data.get(name) for name in SEGMENT_FIELDS if form.cleaned_data.get(name)}
    return Filters(key, start, end, form.segment(), params, form.active_count(), today)


def _url(name: str, params: dict[str, str]) -> str:
    query = urlencode({k: v for k, v in params.items() if v not in (None, "")})
    return f"{reverse(name)}?{query}" if query else reverse(name)


def _tabs(current: str, params: dict[str, str]) -> list[dict]:
    """The sections' links, keeping the period and slice (not a section's own options)."""
    return [
        {"key": key, "label": label, "url": _url(name, params), "current": key == current}
        for key, label, name in SECTIONS
    ]


def _export_name(request: HttpRequest, exports: Mapping) -> str:
    export = request.GET.get("export", "")
    if export and export not in exports:
        # A download link to a table the page does not have: a 404 rather than the page saved as a .csv.
        raise Http404(f"No table {export!r} to export.")
    return export


def _render(request: HttpRequest, template: str, context: dict, *, status: int, canonical: str | None) -> HttpResponse:
    if request.htmx and not request.htmx.history_restore_request:
        template += "#results"
    response = render(request, template, context, status=status)
    if request.htmx and canonical:
        # The form sends every field, empty or not: push the tidy address instead.
        push_url(response, canonical)
    patch_vary_headers(response, ["HX-Request"])
    return response


def _page_context(section: str, url_name: str, form: forms.Form, options: forms.Form | None) -> dict:
    return {
        "form": form,
        "options": options,
        "page_url": reverse(url_name),
        "presets": PRESETS,
        "tabs": _tabs(section, {}),
    }


def _filename(section: str, name: str, filters: Filters) -> str:
    return f"insights-{section}-{name.replace('_', '-')}-{filters.start:%Y%m%d}-{filters.end:%Y%m%d}.csv"


def _round(value: float | None, digits: int = 1) -> float | None:
    return None if value is None else round(value, digits)


def _option_params(options: forms.Form, defaults: dict[str, str]) -> dict[str, str]:
    """A section's options that differ from their defaults, for its links."""
    return {
        name: str(options.cleaned_data[name])
        for name in options.fields
        if options.cleaned_data.get(name) and str(options.cleaned_data[name]) != defaults.get(name)
    }


def section_page[F](
    request: HttpRequest,
    *,
    section: str,
    template: str,
    exports: Mapping[str, Callable[[F], tuple[Sequence[str], list[list]]]],
    build: Callable[[InsightsFilterForm, Filters], F],
    context_of: Callable[[F, Filters], dict],
    options: forms.Form | None = None,
    option_defaults: dict[str, str] | None = None,
) -> HttpResponse:
    """The flow of a section: check the role and the table to export, read the filters (and the section's own
    `options`), `build` the figures, then answer the CSV, the results partial (htmx, pushing the tidy address)
    or the page, with 422 and nothing computed when a filter is invalid. The page's context is the filters,
    the tabs and CSV links keeping them, and `context_of` the figures."""
    _require_manager(request)
    export = _export_name(request, exports)
    url_name = {key: name for key, _, name in SECTIONS}[section]
    form = InsightsFilterForm(request.GET)
    context = _page_context(section, url_name, form, options)
    if not form.is_valid() or (options is not None and not options.is_valid()):
        return _render(request, template, context, status=422, canonical=None)
    filters = _chosen(form, today=timezone.localdate())
    figures = build(form, filters)
    if export:
        header, rows = exports[export](figures)
        return csv_response(filename=_filename(section, export, filters), header=header, rows=rows)
    params = filters.params | (_option_params(options, option_defaults or {}) if options is not None else {})
    context |= {
        "filters": filters,
        "tabs": _tabs(section, filters.params),
        "export_urls": {n: _url(url_name, {**params, "export": n}) for n in exports},
        **context_of(figures, filters),
    }
    return _render(request, template, context, status=200, canonical=_url(url_name, params))


# --- Feature adoption ------------------------------------------------------------------------------------


class AdoptionOptions(forms.Form):
    by = forms.ChoiceField(choices=DIMENSIONS, required=False, label="Segment by")


def _adoption_features_rows(o: AdoptionOverview) -> tuple[list[str], list[list]]:
    header = ["feature", "accounts_using", "active_accounts", "share_percent", "events", "users", "events_per_user"]
    rows = [[a.feature, a.using, a.active, _round(a.share), a.events, a.users, _round(a.depth, 2)] for a in o.features]
    return header, rows


def _adoption_segments_rows(o: AdoptionOverview) -> tuple[list[str], list[list]]:
    header = [
        "dimension",
        "segment",
        "feature",
        "accounts_using",
        "active_accounts",
        "share_percent",
        "events_per_user",
    ]
    rows = [
        [o.dimension, row.value or "Unknown", a.feature, a.using, a.active, _round(a.share), _round(a.depth, 2)]
        for row in o.by_segment
        for a in row.features.values()
    ]
    return header, rows


def _adoption_trend_rows(o: AdoptionOverview) -> tuple[list[str], list[list]]:
    header = ["month", "feature", "share_percent", "active_accounts"]
    rows = [
        [month.strftime("%Y-%m"), feature, _round(shares[k]), o.active_by_month.get(month, 0)]
        for feature, shares in o.trend.items()
        for k, month in enumerate(o.months)
    ]
    return header, rows


def _adoption_by_plan_rows(o: AdoptionOverview) -> tuple[list[str], list[list]]:
    header = ["plan", "active_accounts", "which", "rank", "feature", "share_percent"]
    rows = []
    for row in o.by_plan:
        most, least = most_and_least_used(row)
        for which, features in (("most used", most), ("least used", least)):
            rows += [
                [row.value or "No plan", row.active, which, rank, a.feature, _round(a.share)]
                for rank, a in enumerate(features, start=1)
            ]
    return header, rows


ADOPTION_EXPORTS: dict[str, Callable[[AdoptionOverview], tuple[Sequence[str], list[list]]]] = {
    "features": _adoption_features_rows,
    "segments": _adoption_segments_rows,
    "trend": _adoption_trend_rows,
    "by_plan": _adoption_by_plan_rows,
}


def _adoption_charts(o: AdoptionOverview) -> dict:
    keys = o.feature_keys
    return {
        "trend": {
            "months": [m.isoformat() for m in o.months],
            "series": [{"name": f, "values": [_round(v) for v in o.trend[f]]} for f in keys],
        },
        "segments": {
            "features": keys,
            "values": [row.value or "Unknown" for row in o.by_segment],
            "z": [[_round(row.features[f].share) for row in o.by_segment] for f in keys],
        },
    }


@require_GET
def insights_adoption(request: HttpRequest) -> HttpResponse:
    """Feature adoption in the period: share of active accounts using each feature, depth, month-by-month
    trend, by segment (`?by=plan|industry|size|region`) and the most and least used features per plan."""
    options = AdoptionOptions(request.GET)

    def build(form: InsightsFilterForm, filters: Filters) -> AdoptionOverview:
        dimension = options.cleaned_data["by"] or "plan"
        return adoption_overview(start=filters.start, end=filters.end, segment=filters.segment, dimension=dimension)

    def context_of(overview: AdoptionOverview, filters: Filters) -> dict:
        return {
            "overview": overview,
            "dimension_label": dict(DIMENSIONS)[overview.dimension],
            "plan_extremes": [(row, *most_and_least_used(row)) for row in overview.by_plan],
            "segment_table": [(f, [row.features[f] for row in overview.by_segment]) for f in overview.feature_keys],
            "charts": _adoption_charts(overview),
        }

    return section_page(
        request,
        section="adoption",
        template="insights/adoption.html",
        exports=ADOPTION_EXPORTS,
        build=build,
        context_of=context_of,
        options=options,
        option_defaults={"by": "plan"},
    )


# --- What precedes upgrades ------------------------------------------------------------------------------


def _rule_url(item: SignalLift, filters: Filters) -> str | None:
    """The rules editor's new-rule form, filled in with the signal's thresholds, or None when no rule field
    can ask for it (a feature's use, any metric at its limit)."""
    if not item.signal.rule:
        return None
    lift = item.lift
    description = (
        f"From insights: upgrades within {UPGRADE_WINDOW_DAYS} days {lift.rate_exposed:.1f}% vs "
        f"{lift.rate_unexposed:.1f}% (lift {lift.lift:.2f}, 95% CI {lift.ci_low:.2f}–{lift.ci_high:.2f}), "
        f"{filters.start:%b %-d, %Y} – {filters.end:%b %-d, %Y}."
    )
    params = {"name": item.signal.label, "description": description, **item.signal.rule}
    return f"{reverse('settings:rule_create')}?{urlencode(params)}"


def _predictor_rows(o: PredictorsOverview) -> tuple[list[str], list[list]]:
    header = [
        "rank",
        "signal",
        "kind",
        "exposed_accounts",
        "exposed_upgraded",
        "exposed_rate_percent",
        "unexposed_accounts",
        "unexposed_upgraded",
        "unexposed_rate_percent",
        "lift",
        "ci95_low",
        "ci95_high",
        "status",
    ]
    rows = [
        [
            item.rank,
            item.signal.label,
            item.signal.family,
            item.lift.exposed_n,
            item.lift.exposed_upgraded,
            _round(item.lift.rate_exposed),
            item.lift.unexposed_n,
            item.lift.unexposed_upgraded,
            _round(item.lift.rate_unexposed),
            _round(item.lift.lift, 3),
            _round(item.lift.ci_low, 3),
            _round(item.lift.ci_high, 3),
            f"too few to rank: {item.lift.too_few_because}" if item.too_few_to_rank else "ranked",
        ]
        for item in o.signals
    ]
    return header, rows


PREDICTOR_EXPORTS: dict[str, Callable[[PredictorsOverview], tuple[Sequence[str], list[list]]]] = {
    "signals": _predictor_rows,
}


def _predictor_chart(o: PredictorsOverview) -> dict:
    ranked = o.ranked
    return {
        "labels": [item.signal.label for item in ranked],
        "lift": [_round(item.lift.lift, 3) for item in ranked],
        "low": [_round(item.lift.ci_low, 3) for item in ranked],
        "high": [_round(item.lift.ci_high, 3) for item in ranked],
        "exposed": [_round(item.lift.rate_exposed) for item in ranked],
        "unexposed": [_round(item.lift.rate_unexposed) for item in ranked],
    }


TOP_PREDICTORS = 5


@require_GET
def insights_predictors(request: HttpRequest) -> HttpResponse:
    """Which signals preceded upgrades in the period: each signal's upgrade rate within 90 days, exposed
    against unexposed, the lift with its 95% interval, the counts, and a link that drafts a rule from it."""

    def build(form: InsightsFilterForm, filters: Filters) -> PredictorsOverview:
        return upgrade_predictors(start=filters.start, end=filters.end, today=filters.today, segment=filters.segment)

    def context_of(overview: PredictorsOverview, filters: Filters) -> dict:
        can_write_rules = is_admin(request.user)
        # A rule is drafted from a ranked signal followed by more upgrades than its absence (lift above 1).
        rule_urls = {
            item.signal.key: _rule_url(item, filters)
            for item in overview.ranked
            if can_write_rules and (item.lift.lift or 0) > 1
        }
        top = [item for item in overview.ranked if (item.lift.ci_low or 0) > 1][:TOP_PREDICTORS]
        return {
            "overview": overview,
            "top": [{"item": item, "rule_url": rule_urls.get(item.signal.key)} for item in top],
            "rows": [{"item": item, "rule_url": rule_urls.get(item.signal.key)} for item in overview.signals],
            "can_write_rules": can_write_rules,
            "window_days": UPGRADE_WINDOW_DAYS,
            "min_group": MIN_GROUP_ACCOUNTS,
            "min_upgrades": MIN_UPGRADES,
            "chart": _predictor_chart(overview),
        }

    return section_page(
        request,
        section="predictors",
        template="insights/predictors.html",
        exports=PREDICTOR_EXPORTS,
        build=build,
        context_of=context_of,
    )


# --- Usage cohorts ---------------------------------------------------------------------------------------

COHORT_KEY = re.compile(r"^(\d{4}-\d{2}|plan-\d+|plan-none)$")


class CohortOptions(forms.Form):
    """How to group the accounts, what to measure (a feature's use or a metric's utilization), and which
    two cohorts to compare (`YYYY-MM` for a signup month, `plan-<id>` for a plan; empty = first and last)."""

    group = forms.ChoiceField(
        choices=[("signup", "By signup month"), ("plan", "By plan")], required=False, label="Cohorts"
    )
    measure = forms.ChoiceField(required=False, label="Measure")
    a = forms.CharField(required=False, max_length=20, label="Compare")
    b = forms.CharField(required=False, max_length=20, label="with")

    def __init__(self, *args, features: Sequence[str], metrics: Sequence[Metric], **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["measure"].choices = [
            ("Feature used (share of accounts)", [(f"feature:{f}", f.replace("_", " ")) for f in features]),
            ("Utilization (median)", [(f"metric:{m.key}", m.label) for m in metrics]),
        ]
        self.metric_labels = {m.key: m.label for m in metrics}
        self.default_measure = f"feature:{features[0]}" if features else (f"metric:{metrics[0].key}" if metrics else "")

    def clean_a(self) -> str:
        return self._cohort_key("a")

    def clean_b(self) -> str:
        return self._cohort_key("b")

    def _cohort_key(self, name: str) -> str:
        value = self.cleaned_data[name].strip()
        if value and not COHORT_KEY.match(value):
            raise forms.ValidationError("Give a signup month as YYYY-MM or a plan as plan-<id>.")
        return value

    def measure_choice(self) -> tuple[str, str, str]:
        """(kind, key, label) of the measure: ("feature", "reporting", "reporting")."""
        value = self.cleaned_data.get("measure") or self.default_measure
        kind, _, key = value.partition(":")
        label = self.metric_labels.get(key, key) if kind == "metric" else key.replace("_", " ")
        return kind, key, label


def _cohort_matrix_rows(o: CohortsOverview) -> tuple[list[str], list[list]]:
    width = max((len(row.values) for row in o.rows), default=0)
    header = ["cohort", "accounts", *(f"month_{k}" for k in range(width))]
    rows = [
        [row.label, row.size, *(_round(v) for v in row.values), *([None] * (width - len(row.values)))] for row in o.rows
    ]
    return header, rows


def _comparison(o: CohortsOverview, a_key: str, b_key: str) -> dict | None:
    by_key = {row.key: row for row in o.rows}
    if not o.rows:
        return None
    a = by_key.get(a_key) or o.rows[0]
    # By default the newest cohort with three months to compare, else the newest.
    b = by_key.get(b_key) or next(
        (row for row in reversed(o.rows) if row is not a and len(row.values) >= COMPARE_MONTHS), o.rows[-1]
    )
    return {"a": a, "b": b, "months": cohort_comparison(a, b)}


def _cohort_comparison_rows(o: CohortsOverview, comparison: dict | None) -> tuple[list[str], list[list]]:
    header = ["months_since_signup", "cohort_a", "value_a", "cohort_b", "value_b", "difference_points"]
    if comparison is None:
        return header, []
    a, b = comparison["a"], comparison["b"]
    rows = [[m.month, a.label, _round(m.a), b.label, _round(m.b), _round(m.difference)] for m in comparison["months"]]
    return header, rows


COHORT_EXPORTS = ("matrix", "comparison")
COMPARE_MONTHS = 3


def _cohort_charts(o: CohortsOverview, comparison: dict | None) -> dict:
    width = max((len(row.values) for row in o.rows), default=0)
    data: dict = {
        "unit": "%",
        "measure": o.measure_label,
        "kind": o.measure,
        "labels": [f"{row.label} ({row.size})" for row in o.rows],
        "months": list(range(width)),
        "z": [[_round(v) for v in row.values] + [None] * (width - len(row.values)) for row in o.rows],
    }
    if comparison:
        data["comparison"] = {
            "a": comparison["a"].label,
            "b": comparison["b"].label,
            "months": [m.month for m in comparison["months"]],
            "values_a": [_round(m.a) for m in comparison["months"]],
            "values_b": [_round(m.b) for m in comparison["months"]],
        }
    return data


@require_GET
def insights_cohorts(request: HttpRequest) -> HttpResponse:
    """Accounts that signed up in the period, by signup month or plan (`?group=`), and a feature's adoption or
    a metric's median utilization (`?measure=feature:<key>|metric:<key>`) over the months since signup; two
    cohorts side by side (`?a=&b=`)."""
    _require_manager(request)
    export = _export_name(request, dict.fromkeys(COHORT_EXPORTS))
    form = InsightsFilterForm(request.GET)
    context = _page_context("cohorts", "insights:cohorts", form, None)
    today = timezone.localdate()
    metrics = list(Metric.objects.filter(kind=Metric.Kind.LIMIT).order_by("display_order", "key"))
    if not form.is_valid():
        # The options as sent, for the filter bar; nothing is computed.
        context["options"] = CohortOptions(request.GET, features=[], metrics=metrics)
        return _render(request, "insights/cohorts.html", context, status=422, canonical=None)
    filters = _chosen(form, today=today)
    options = CohortOptions(request.GET, features=feature_keys(start=filters.start, end=today), metrics=metrics)
    context["options"] = options
    if not options.is_valid():
        return _render(request, "insights/cohorts.html", context, status=422, canonical=None)
    kind, key, label = options.measure_choice()
    overview = None
    if key:
        overview = usage_cohorts(
            start=filters.start,
            end=filters.end,
            today=today,
            segment=filters.segment,
            group=options.cleaned_data["group"] or "signup",
            measure=kind,
            measure_key=key,
            measure_label=label,
        )
    comparison = _comparison(overview, options.cleaned_data["a"], options.cleaned_data["b"]) if overview else None
    if export:
        if export == "matrix":
            header, rows = _cohort_matrix_rows(overview) if overview else (["cohort", "accounts"], [])
        else:
            header, rows = _cohort_comparison_rows(overview, comparison)
        return csv_response(filename=_filename("cohorts", export, filters), header=header, rows=rows)
    params = filters.params | _option_params(options, {"group": "signup", "measure": options.default_measure})
    context |= {
        "filters": filters,
        "overview": overview,
        "comparison": comparison,
        "cohort_choices": [(row.key, row.label) for row in overview.rows] if overview else [],
        "compare_hidden": [(k, v) for k, v in params.items() if k not in ("a", "b")],
        "charts": _cohort_charts(overview, comparison) if overview else {},
        "tabs": _tabs("cohorts", filters.params),
        "export_urls": {n: _url("insights:cohorts", {**params, "export": n}) for n in COHORT_EXPORTS},
    }
    return _render(request, "insights/cohorts.html", context, status=200, canonical=_url("insights:cohorts", params))
