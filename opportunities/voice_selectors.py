"""Reads for the win/loss insights: the opportunities decided in a period, as plain records for
`opportunities.voice_stats`, in one query whatever the number of accounts or opportunities."""

from __future__ import annotations

import datetime as dt

from django.utils import timezone

from opportunities.models import Opportunity, Outcome
from opportunities.pipeline_selectors import EVERYTHING, PipelineFilters, period_bounds
from opportunities.voice_stats import Decision

DECISION_FIELDS = (
    "pk",
    "outcome",
    "closed_at",
    "owner_id",
    "owner__username",
    "owner__first_name",
    "owner__last_name",
    "play_id",
    "play__name",
    "lost_reason__label",
    "actual_mrr_delta",
)


def decisions(*, start: dt.date, end: dt.date, filters: PipelineFilters = EVERYTHING) -> list[Decision]:
    """The opportunities of `filters` (the CSM owning the opportunity; the account's plan, industry, size
    and region) closed won or lost in [start, end], with owner, play and lost reason. One query."""
    since, until = period_bounds(start, end)
    rows = (
        filters.apply(Opportunity.objects.all())
        .filter(outcome__in=(Outcome.WON, Outcome.LOST), closed_at__gte=since, closed_at__lt=until)
        .order_by("closed_at", "pk")
        .values_list(*DECISION_FIELDS)
    )
    zone = timezone.get_current_timezone()
    result = []
    for pk, outcome, closed_at, owner_id, username, first, last, play_id, play, reason, delta in rows:
        result.append(
            Decision(
                id=pk,
                outcome=outcome,
                closed_at=closed_at.astimezone(zone),
                owner_id=owner_id,
                owner_name=f"{first or ''} {last or ''}".strip() or username or "",
                play_id=play_id,
                play_name=play or "",
                lost_reason=(reason or "") if outcome == Outcome.LOST else "",
                mrr_delta=delta if outcome == Outcome.WON else None,
            )
        )
    return result
