"""The managers' metrics page: revenue figures of a period, each with its formula, inputs and accounts."""

from __future__ import annotations

import datetime as dt
import functools
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from urllib.parse import urlencode

from django import forms
from django.core.exceptions import PermissionDenied
from django.core.paginator import Page, Paginator
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.urls import reverse
from django.utils import timezone
from django.utils.cache import patch_vary_headers
from django.views.decorators.http import require_GET

from accounts.csv_export import csv_response
from accounts.revenue import FIGURE_KEYS, Figure, Input, RevenueMetrics, Row
from accounts.revenue_selectors import RevenueOverview, revenue_drill_accounts, revenue_overview
from accounts.roles import is_manager_or_admin
from accounts.templatetags.account_format import EMPTY, money, number

DRILL_PER_PAGE = 50
DEFAULT_PERIOD = "last_12_months"
PRESETS = [
    ("this_month", "This month"),
    ("last_month", "Last month"),
    ("last_quarter", "Last quarter"),
    ("last_12_months", "Last 12 months"),
]
SECTIONS = [
    ("Cohort", "Accounts paying when the period starts", ("customers_at_start", "mrr_at_start", "ndr")),
    (
        "MRR movements",
        "Of the cohort, during the period",
        ("expansion_mrr", "reactivation_mrr", "contraction_mrr", "churned_mrr"),
    ),
    (
        "Upsell",
        "Upgrades of the cohort",
        (
            "upgraded_customers",
            "conversion_rate",
            "avg_upgrade_value",
            "time_to_upsell_days_median",
            "time_to_upsell_days_mean",
        ),
    ),
    ("Unit economics", "ARPU over every account paying at the end", ("arpu", "monthly_churn_rate", "ltv")),
]


def manager_required(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    """Managers and admins only: anyone else gets the 403 page with the reason (the page exists for them too,
    so a 404 would mislead)."""

    @functools.wraps(view)
    def guarded(request: HttpRequest, *args, **kwargs) -> HttpResponse:
        if not is_manager_or_admin(request.user):
            raise PermissionDenied("Metrics are for managers: they cover every CSM's book.")
        return view(request, *args, **kwargs)

    return guarded


# --- The period ------------------------------------------------------------------------------------------


def _month_shift(first_of_month: dt.date, months: int) -> dt.date:
    years, month = divmod(first_of_month.month - 1 + months, 12)
    return dt.date(first_of_month.year + years, month + 1, 1)


def preset_period(key: str, *, today: dt.date) -> tuple[dt.date, dt.date]:
    """The days of a preset: this month (to today), last month, last calendar quarter, or the last 12 months
    (this month to today and the 11 whole months before it)."""
    this_month = today.replace(day=1)
    if key == "this_month":
        return this_month, today
    if key == "last_month":
        return _month_shift(this_month, -1), this_month - dt.timedelta(days=1)
    if key == "last_quarter":
        this_quarter = dt.date(today.year, 3 * ((today.month - 1) // 3) + 1, 1)
        return _month_shift(this_quarter, -3), this_quarter - dt.timedelta(days=1)
    if key == "last_12_months":
        return _month_shift(this_month, -11), today
    raise ValueError(f"unknown period {key!r}")


class PeriodForm(forms.Form):
    """A preset (`period`) or a custom `start` and `end`; dates win over the preset when given."""

    period = forms.ChoiceField(choices=PRESETS, required=False)
    start = forms.DateField(required=False, input_formats=["%Y-%m-%d"], label="From")
    end = forms.DateField(required=False, input_formats=["%Y-%m-%d"], label="To")

    def clean(self) -> dict:
        data = super().clean()
        start, end = data.get("start"), data.get("end")
        if self.errors:
            return data
        if start or end:
            if not start:
                self.add_error("start", "Give the first day of the period.")
            elif not end:
                self.add_error("end", "Give the last day of the period.")
            elif end < start:
                self.add_error("end", "The last day is before the first.")
        return data

    def chosen_period(self, *, today: dt.date) -> tuple[str, dt.date, dt.date]:
        """(preset key or "custom", start, end) of a valid form."""
        data = self.cleaned_data
        if data.get("start") and data.get("end"):
            return "custom", data["start"], data["end"]
        key = data.get("period") or DEFAULT_PERIOD
        return (key, *preset_period(key, today=today))


# --- Cards and drill-downs ---------------------------------------------------------------------------------


def _percent_text(value: Decimal) -> str:
    return f"{value.normalize():,f}%"


def value_text(value: Decimal | int | None, kind: str) -> str:
    """A figure as a card shows it: "$1,234.50", "112.5%", "45.5 days", "1,204"."""
    if value is None:
        return EMPTY
    if kind == "money":
        return money(value)
    if kind == "percent":
        return _percent_text(Decimal(value))
    if kind == "days":
        days = Decimal(value).normalize()
        return f"{days:,f} day{'' if days == 1 else 's'}"
    return number(value)


def _undefined_because(key: str, metrics: RevenueMetrics) -> str:
    if metrics.customers_at_start == 0 and key in ("conversion_rate", "ndr", "monthly_churn_rate", "ltv"):
        return "No customers at start"
    return {
        "avg_upgrade_value": "No upgrades in the period",
        "time_to_upsell_days_median": "No first upgrade in the period",
        "time_to_upsell_days_mean": "No first upgrade in the period",
        "arpu": "No paying account at the end",
        "ltv": "No churn in the period" if metrics.churned_customers == 0 else "No ARPU",
    }.get(key, "")


@dataclass(frozen=True)
class Card:
    key: str
    label: str
    value: str
    formula: str
    inputs: list[tuple[str, str]]
    note: str
    row_count: int
    rows_noun: str
    drill_url: str


def _input_text(item: Input) -> str:
    return value_text(item.value, item.kind)


def _rows_noun(figure: Figure, count: int) -> str:
    if figure.rows_are_movements:
        return "movement" if count == 1 else "movements"
    return "account" if count == 1 else "accounts"


@dataclass(frozen=True)
class DrillRow:
    account_id: int
    name: str
    url: str
    owner: str
    on: dt.date | None
    mrr_before: Decimal
    mrr_after: Decimal
    change: Decimal
    days: int | None


def _sorted_rows(figure: Figure) -> list[Row]:
    if figure.rows_are_movements:
        return sorted(figure.rows, key=lambda r: (r.on, r.account_id))
    return sorted(figure.rows, key=lambda r: (-r.mrr_after, -r.mrr_before, r.account_id))


def _drill_rows(page: Page) -> list[DrillRow]:
    accounts = revenue_drill_accounts(account_ids={row.account_id for row in page.object_list})
    rows = []
    for row in page.object_list:
        account = accounts.get(row.account_id)
        rows.append(
            DrillRow(
                account_id=row.account_id,
                name=account.name if account else f"Account {row.account_id}",
                url=reverse("accounts:detail", kwargs={"pk": row.account_id}),
                owner=(account.owner.get_full_name() or account.owner.get_username())
                if account and account.owner
                else "Unassigned",
                on=row.on,
                mrr_before=row.mrr_before,
                mrr_after=row.mrr_after,
                change=row.mrr_after - row.mrr_before,
                days=row.days,
            )
        )
    return rows


def _url(params: dict) -> str:
    query = urlencode({k: v for k, v in params.items() if v not in (None, "")})
    return f"{reverse('metrics:page')}?{query}" if query else reverse("metrics:page")


@require_GET
@manager_required
def metrics_page(request: HttpRequest) -> HttpResponse:
    """Revenue metrics of a period: a card per figure, with its formula and inputs on hover or focus, and a
    drill-down (`?drill=<figure>`) listing the accounts behind it. HTMX gets the figures or the drill-down."""
    today = timezone.localdate()
    form = PeriodForm(request.GET)
    context: dict = {
        "form": form,
        "page_url": reverse("metrics:page"),
        "preset_urls": [(key, label, _url({"period": key})) for key, label in PRESETS],
    }
    status = 200
    if form.is_valid():
        key, start, end = form.chosen_period(today=today)
        period_params = {"start": start.isoformat(), "end": end.isoformat()} if key == "custom" else {"period": key}
        overview = revenue_overview(start=start, end=end)
        metrics = overview.metrics
        drill_key = request.GET.get("drill", "")
        figures = {figure.key: figure for figure in metrics.figures()}
        context |= {
            "period_key": key,
            "start": start,
            "end": end,
            "metrics": metrics,
            "sections": [
                {
                    "title": title,
                    "text": text,
                    "cards": [_card(figures[k], metrics, period_params) for k in keys],
                }
                for title, text, keys in SECTIONS
            ],
            "close_url": _url(period_params),
            "charts": chart_data(overview),
            "cohorts": overview.cohorts,
        }
        export = request.GET.get("export", "")
        if export in EXPORTS or (export == "drill" and drill_key in FIGURE_KEYS):
            return _export(export, overview, drill_key=drill_key, start=start, end=end)
        context["export_urls"] = {name: _url({**period_params, "export": name}) for name in EXPORTS}
        if drill_key in FIGURE_KEYS:
            context["export_urls"]["drill"] = _url({**period_params, "drill": drill_key, "export": "drill"})
            figure = figures[drill_key]
            page = Paginator(_sorted_rows(figure), DRILL_PER_PAGE).get_page(request.GET.get("page"))
            context["drill"] = {
                "figure": figure,
                "value": value_text(figure.value, figure.kind),
                "page": page,
                "rows": _drill_rows(page),
                "noun": _rows_noun(figure, page.paginator.count),
                "page_urls": {
                    "previous": _url({**period_params, "drill": drill_key, "page": page.previous_page_number()})
                    if page.has_previous()
                    else None,
                    "next": _url({**period_params, "drill": drill_key, "page": page.next_page_number()})
                    if page.has_next()
                    else None,
                },
            }
    else:
        status = 422
    template = "metrics/page.html"
    if request.htmx and not request.htmx.history_restore_request:
        template += "#drill" if request.htmx.target == "drill" and status == 200 else "#metrics"
    response = render(request, template, context, status=status)
    patch_vary_headers(response, ["HX-Request"])
    return response


def _card(figure: Figure, metrics: RevenueMetrics, period_params: dict) -> Card:
    count = len(figure.rows)
    return Card(
        key=figure.key,
        label=figure.label,
        value=value_text(figure.value, figure.kind),
        formula=figure.formula,
        inputs=[(item.label, _input_text(item)) for item in figure.inputs],
        note=_undefined_because(figure.key, metrics) if figure.value is None else "",
        row_count=count,
        rows_noun=_rows_noun(figure, count),
        drill_url=_url({**period_params, "drill": figure.key}),
    )


def chart_data(overview: RevenueOverview) -> dict:
    """The trend and cohort charts' data for `json_script`: months as ISO dates, money as floats."""
    trends = overview.trends
    return {
        "trends": {
            "months": [t.month.isoformat() for t in trends],
            "new": [float(t.new) for t in trends],
            "expansion": [float(t.expansion) for t in trends],
            "reactivation": [float(t.reactivation) for t in trends],
            "contraction": [-float(t.contraction) for t in trends],
            "churn": [-float(t.churn) for t in trends],
            "net": [float(t.net) for t in trends],
        },
        "ndr": {"months": [m.month.isoformat() for m in overview.ndr], "values": [m.ndr for m in overview.ndr]},
        "cohorts": {
            "labels": [f"{c.month:%b %Y} ({c.size})" for c in overview.cohorts],
            "upgraded": [list(c.upgraded_share) for c in overview.cohorts],
            "mrr": [list(c.mrr_relative) for c in overview.cohorts],
        },
    }


# --- CSV exports -------------------------------------------------------------------------------------------

EXPORTS = ("figures", "trends", "cohorts")


def _export(name: str, overview: RevenueOverview, *, drill_key: str, start: dt.date, end: dt.date) -> HttpResponse:
    """The page's tables as CSV for the same period: figures, monthly trends, cohorts, or one figure's rows."""
    suffix = f"{start:%Y%m%d}-{end:%Y%m%d}"
    if name == "figures":
        rows = [
            [f.key, f.label, f.value, f.formula, "; ".join(f"{i.label}: {i.value}" for i in f.inputs)]
            for f in overview.metrics.figures()
        ]
        return csv_response(
            filename=f"metrics-{suffix}.csv", header=["figure", "label", "value", "formula", "inputs"], rows=rows
        )
    if name == "trends":
        ndr = {m.month: m.ndr for m in overview.ndr}
        cents = Decimal("0.01")
        rows = [
            [
                t.month,
                *(v.quantize(cents) for v in (t.new, t.expansion, t.reactivation, t.contraction, t.churn, t.net)),
                ndr.get(t.month),
            ]
            for t in overview.trends
        ]
        header = ["month", "new", "expansion", "reactivation", "contraction", "churn", "net", "ndr_percent"]
        return csv_response(filename=f"mrr-trends-{suffix}.csv", header=header, rows=rows)
    if name == "cohorts":
        width = max((len(c.upgraded_share) for c in overview.cohorts), default=0)
        header = ["cohort", "accounts", "first_month_mrr"]
        header += [f"upgraded_pct_m{k}" for k in range(width)] + [f"mrr_vs_first_pct_m{k}" for k in range(width)]
        rows = [
            [c.month.strftime("%Y-%m"), c.size, c.first_month_mrr]
            + list(c.upgraded_share)
            + [None] * (width - len(c.upgraded_share))
            + list(c.mrr_relative)
            + [None] * (width - len(c.mrr_relative))
            for c in overview.cohorts
        ]
        return csv_response(filename=f"cohorts-{suffix}.csv", header=header, rows=rows)
    # One figure's rows, all of them (the page shows them 50 at a time).
    figure = {f.key: f for f in overview.metrics.figures()}[drill_key]
    rows = _sorted_rows(figure)
    accounts = revenue_drill_accounts(account_ids={row.account_id for row in rows})
    header = ["account", "external_id", "owner", "date", "mrr_before", "mrr_after", "change", "days"]
    lines = []
    for row in rows:
        account = accounts.get(row.account_id)
        owner = account.owner if account else None
        lines.append(
            [
                account.name if account else row.account_id,
                account.external_id if account else "",
                (owner.get_full_name() or owner.get_username()) if owner else "",
                row.on,
                row.mrr_before,
                row.mrr_after,
                row.mrr_after - row.mrr_before,
                row.days,
            ]
        )
    return csv_response(filename=f"{drill_key}-{suffix}.csv", header=header, rows=lines)
