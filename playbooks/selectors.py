"""Reads about plays and the touches they make, for pages, emails and pitch fatigue."""

from __future__ import annotations

import datetime as dt

from django.db.models import Count, IntegerField, OuterRef, QuerySet, Subquery, Value
from django.db.models.functions import Coalesce

from accounts.models import Account, EngagementEvent
from playbooks.fatigue import FATIGUE_KINDS, WINDOW_DAYS, PastTouch, fatigue_check
from playbooks.models import Play, PlayCredit, ScoringPolicy, Touch


def _count_of(model, **filters) -> Coalesce:
    # A correlated subquery per count: two joined Count() aggregates would multiply each other's rows.
    rows = model.objects.filter(play=OuterRef("pk"), **filters).order_by().values("play").annotate(n=Count("pk"))
    return Coalesce(Subquery(rows.values("n")[:1], output_field=IntegerField()), Value(0))


def plays_for_settings() -> QuerySet[Play]:
    """Every play with its target plan, its rules, and its counts of touches and credited wins."""
    return (
        Play.objects.select_related("target_plan")
        .prefetch_related("rules")
        .annotate(touch_count=_count_of(Touch), win_count=_count_of(PlayCredit))
        .order_by("-active", "name")
    )


def recent_touches(
    *, account: Account, play: Play | None, now: dt.datetime, days: int = WINDOW_DAYS
) -> list[PastTouch]:
    """The account's touches that count against fatigue in the last `days` days (at least the 30-day window),
    each marked whether `play` made it."""
    since = now - dt.timedelta(days=max(days, WINDOW_DAYS))
    rows = Touch.objects.filter(
        account=account, kind__in=FATIGUE_KINDS, occurred_at__gt=since, occurred_at__lte=now
    ).values_list("occurred_at", "play_id")
    play_id = play.pk if play is not None else None
    return [PastTouch(occurred_at=at, same_play=play_id is not None and pid == play_id) for at, pid in rows]


def touch_refusal(*, account: Account, play: Play | None, now: dt.datetime) -> str | None:
    """Why `play` may not touch `account` at `now` (its gap between touches, the global 30-day cap), or None."""
    gap = play.min_days_between_touches if play is not None else 0
    policy = ScoringPolicy.current()
    return fatigue_check(
        recent_touches(account=account, play=play, now=now, days=gap),
        play_gap_days=gap,
        max_per_30_days=policy.max_touches_per_30_days,
        now=now,
    )


def premium_feature_uses(*, account: Account, since: dt.datetime) -> list[tuple[str, int]]:
    """Premium features the account used during a trial since `since`, with how often, most used first."""
    rows = (
        EngagementEvent.objects.filter(
            account=account, kind=EngagementEvent.Kind.TRIAL_FEATURE_USED, occurred_at__gte=since
        )
        .exclude(feature="")
        .values("feature")
        .annotate(uses=Count("pk"))
        .order_by("-uses", "feature")
    )
    return [(row["feature"], row["uses"]) for row in rows]
