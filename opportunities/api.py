"""API endpoints about scores and indicators (they join accounts with the scores flagging writes)."""

import datetime as dt

from django.http import HttpRequest
from django.shortcuts import get_object_or_404
from ninja import Router, Schema

from accounts.models import Account, AccountIndicator
from opportunities.models import AccountScore

router = Router(tags=["scores"])


class IndicatorOut(Schema):
    metric: str
    latest: float | None
    limit: float | None
    utilization: float | None
    slope_per_day: float | None
    days_to_limit: float | None
    projected_limit_date: dt.date | None
    projected_limit_earliest: dt.date | None
    projected_limit_latest: dt.date | None


class ReasonOut(Schema):
    rule: str
    points: int
    text: str
    metric: str | None = None
    signals: dict = {}


class AccountIndicatorsOut(Schema):
    external_id: str
    as_of: dt.date | None
    score: int
    reasons: list[ReasonOut]
    indicators: list[IndicatorOut]


@router.get("/accounts/{external_id}/indicators", response=AccountIndicatorsOut)
def account_indicators(request: HttpRequest, external_id: str):
    """The account's indicators per limit metric, its score and the reasons behind it."""
    account = get_object_or_404(Account, external_id=external_id)
    rows = (
        AccountIndicator.objects.filter(account=account)
        .select_related("metric")
        .order_by("metric__display_order", "metric__key")
    )
    score = AccountScore.objects.filter(account=account).first()
    as_of = score.as_of if score else next((r.as_of for r in rows), None)
    return {
        "external_id": account.external_id,
        "as_of": as_of,
        "score": score.score if score else 0,
        "reasons": score.reasons if score else [],
        "indicators": [
            {
                "metric": r.metric.key,
                "latest": r.latest,
                "limit": r.limit,
                "utilization": r.utilization,
                "slope_per_day": r.slope_per_day,
                "days_to_limit": r.days_to_limit,
                "projected_limit_date": r.projected_limit_on,
                "projected_limit_earliest": r.projected_earliest_on,
                "projected_limit_latest": r.projected_latest_on,
            }
            for r in rows
        ],
    }
