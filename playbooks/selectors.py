"""Reads about plays and the touches they make, for pages, emails and pitch fatigue."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass

from django.db.models import Count, IntegerField, OuterRef, QuerySet, Subquery, Value
from django.db.models.functions import Coalesce

from accounts.models import Account, EngagementEvent
from playbooks.fatigue import FATIGUE_KINDS, WINDOW_DAYS, PastTouch, fatigue_check
from playbooks.models import Play, PlayCredit, ScoringPolicy, Touch

PROMPT_KINDS = (Touch.Kind.PROMPT_IMPRESSION, Touch.Kind.PROMPT_CLICK, Touch.Kind.PROMPT_DISMISS)


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


@dataclass(frozen=True, slots=True)
class RecentTouch:
    """A touch that counts against fatigue, as set-based callers load it."""

    occurred_at: dt.datetime
    play_id: int | None
    kind: str


def recent_touches_by_account(
    *, account_ids: Iterable[int], now: dt.datetime, days: int = WINDOW_DAYS
) -> dict[int, list[RecentTouch]]:
    """The touches that count against fatigue in (now − max(days, 30) days, now], by account id. One query
    whatever the number of accounts: flagging and the prompts API read them for many plays at once."""
    since = now - dt.timedelta(days=max(days, WINDOW_DAYS))
    rows = Touch.objects.filter(
        account_id__in=list(account_ids), kind__in=FATIGUE_KINDS, occurred_at__gt=since, occurred_at__lte=now
    ).values_list("account_id", "occurred_at", "play_id", "kind")
    touches: dict[int, list[RecentTouch]] = {}
    for account_id, at, play_id, kind in rows:
        touches.setdefault(account_id, []).append(RecentTouch(occurred_at=at, play_id=play_id, kind=kind))
    return touches


def past_touches(touches: Iterable[RecentTouch], *, play_id: int) -> list[PastTouch]:
    """Loaded touches as `fatigue_check` reads them for the play `play_id`."""
    return [PastTouch(occurred_at=t.occurred_at, same_play=t.play_id == play_id) for t in touches]


@dataclass(frozen=True, slots=True)
class TouchItem:
    """A touch as the account's timeline shows it: the same fields as a timeline entry."""

    at: dt.datetime
    kind: str
    title: str
    body: str
    actor: object


def account_touches(*, account_id: int, limit: int = 50, include_emails: bool = False) -> list[TouchItem]:
    """The account's touches by plays, newest first, as timeline items: "Prompt shown: Seats at the limit
    (variant Urgent)" with the touch's detail as body. One query.

    Emails are left out unless asked for: an email sent from an opportunity is in the timeline already as
    that opportunity's "email sent" event.
    """
    touches = Touch.objects.filter(account_id=account_id)
    if not include_emails:
        touches = touches.exclude(kind=Touch.Kind.EMAIL)
    items = []
    for touch in touches.select_related("play", "variant", "actor").order_by("-occurred_at", "-pk")[:limit]:
        title = touch.get_kind_display()
        if touch.play is not None:
            title += f": {touch.play.name}"
        if touch.variant is not None:
            title += f" (variant {touch.variant.name})"
        items.append(
            TouchItem(at=touch.occurred_at, kind=touch.kind, title=title, body=touch.detail, actor=touch.actor)
        )
    return items


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
