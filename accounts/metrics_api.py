"""GET /api/v1/metrics: the revenue metrics of a period, the same numbers as the managers' metrics page."""

from __future__ import annotations

import datetime as dt
import json
import re
from decimal import Decimal

from django.http import HttpRequest, HttpResponse
from ninja import Query, Router, Schema

from accounts.api_errors import Detail, Invalid, invalid_response
from accounts.revenue import FIGURE_KEYS, RevenueMetrics
from accounts.revenue_selectors import revenue_metrics

router = Router(tags=["metrics"])

_DATE_RE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
DATE_MESSAGE = "Use a date as YYYY-MM-DD."
INVALID_PERIOD = "The period is invalid: start and end are dates as YYYY-MM-DD, end not before start."


class MetricsOut(Schema):
    start: dt.date
    end: dt.date
    customers_at_start: int
    mrr_at_start: float
    upgraded_customers: int
    conversion_rate: float | None
    expansion_mrr: float
    reactivation_mrr: float
    contraction_mrr: float
    churned_mrr: float
    ndr: float | None
    avg_upgrade_value: float | None
    time_to_upsell_days_median: float | None
    time_to_upsell_days_mean: float | None
    arpu: float | None
    monthly_churn_rate: float | None
    ltv: float | None


class PeriodQuery(Schema):
    start: str | None = None
    end: str | None = None


def _parse(value: str | None) -> tuple[dt.date | None, str | None]:
    if value is None or value == "":
        return None, "Required: a date as YYYY-MM-DD."
    if not _DATE_RE.match(value):
        return None, DATE_MESSAGE
    try:
        return dt.date.fromisoformat(value), None
    except ValueError:
        return None, "Not a valid date."


def metrics_json(metrics: RevenueMetrics) -> bytes:
    """The figures as JSON, money and percentages written with their two decimals (112.50, not 112.5).

    Numbers are written from the Decimals themselves, so nothing passes through a float.
    """

    def literal(value: object) -> str:
        if value is None:
            return "null"
        if isinstance(value, Decimal):
            return f"{value:f}"
        if isinstance(value, dt.date):
            return json.dumps(value.isoformat())
        return json.dumps(value)

    body = metrics.as_dict()
    keys = ("start", "end", *FIGURE_KEYS)
    return ("{" + ", ".join(f"{json.dumps(key)}: {literal(body[key])}" for key in keys) + "}").encode()


@router.get(
    "/metrics",
    response={200: MetricsOut, 401: Detail, 422: Invalid},
    summary="Revenue metrics of a period",
)
def metrics_get(request: HttpRequest, period: Query[PeriodQuery]):
    """The revenue metrics of `[start, end]` (both days included), by the formulas the metrics page shows:
    money with two decimals, percentages as numbers such as 112.5, null where a figure is undefined (NDR
    with no MRR at start, LTV with no churn...)."""
    start, start_error = _parse(period.start)
    end, end_error = _parse(period.end)
    errors = []
    if start_error:
        errors.append({"pointer": "/query/start", "message": start_error})
    if end_error:
        errors.append({"pointer": "/query/end", "message": end_error})
    if not errors and end < start:
        errors.append({"pointer": "/query/end", "message": "Is before start."})
    if errors:
        return invalid_response(errors, detail=INVALID_PERIOD)
    metrics = revenue_metrics(start=start, end=end)
    return HttpResponse(metrics_json(metrics), content_type="application/json")
