"""Pitch fatigue: whether one more touch of an account would be one too many. Pure: touches and a clock in.

Two limits, both counted over touches that push something at the customer (an email, a prompt shown, a
trial offered; clicks and dismissals are the customer's answers, not touches of ours):

- per play: at least `min_days_between_touches` days between two touches of one account by one play;
- overall: at most `max_touches_per_30_days` touches of one account by all plays in any 30 days.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass

WINDOW_DAYS = 30
# Touch.Kind values that count against fatigue.
FATIGUE_KINDS = ("email", "prompt_impression", "trial")


@dataclass(frozen=True, slots=True)
class PastTouch:
    """A touch of the account as fatigue sees it: when, and whether it came from the play about to touch."""

    occurred_at: dt.datetime
    same_play: bool


def fatigue_check(
    touches: Iterable[PastTouch], *, play_gap_days: int, max_per_30_days: int, now: dt.datetime
) -> str | None:
    """Why one more touch at `now` would be too many, or None when it may go ahead.

    - play gap: refused while now − (the play's latest touch) < play_gap_days days (0 = no gap);
      the next touch is possible at latest + play_gap_days days.
    - global cap: refused when the touches in the rolling window (now − 30 days, now] number
      max_per_30_days or more (0 = no touches at all); the next is possible once enough of them
      have left the window: at the (n − max + 1)-th oldest touch's time + 30 days.

    Both reasons are given when both limits are reached.
    """
    touches = [t for t in touches if t.occurred_at <= now]
    reasons = []
    same_play = [t.occurred_at for t in touches if t.same_play]
    if play_gap_days > 0 and same_play:
        latest = max(same_play)
        next_at = latest + dt.timedelta(days=play_gap_days)
        if now < next_at:
            reasons.append(
                f"This play last touched the account on {_day(latest)} and waits {play_gap_days} "
                f"day{'s' if play_gap_days != 1 else ''} between touches: next possible on {_day(next_at)}."
            )
    window_start = now - dt.timedelta(days=WINDOW_DAYS)
    recent = sorted(t.occurred_at for t in touches if t.occurred_at > window_start)
    if len(recent) >= max_per_30_days:
        text = (
            f"The account has had {len(recent)} touch{'es' if len(recent) != 1 else ''} in the last "
            f"{WINDOW_DAYS} days, the most allowed is {max_per_30_days}"
        )
        if max_per_30_days > 0:
            next_at = recent[len(recent) - max_per_30_days] + dt.timedelta(days=WINDOW_DAYS)
            text += f": next possible on {_day(next_at)}"
        reasons.append(text + ".")
    return " ".join(reasons) or None


def _day(moment: dt.datetime) -> str:
    return f"{moment:%b} {moment.day}, {moment.year}"
