"""The arithmetic of play sequences. Pure: dates, numbers and strings in, dates and strings out; no database.

- When a step is due: `step_due_at` (from the enrolment's trigger) and `resumed_due_at` (after a pause).
- What pitch fatigue means for a step: `fatigue_decision` (go, wait until a moment, or skip).
- What a step says: `step_content`, the step's own text over the variant's over the play's.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum

from playbooks.experiment_services import PlayContent
from playbooks.fatigue import WINDOW_DAYS, PastTouch, fatigue_check

# --- When a step is due ---------------------------------------------------------------------------------


def step_due_at(*, started_at: dt.datetime, delay_days: int) -> dt.datetime:
    """due_at = started_at + delay_days days: the step runs `delay_days` whole days after the trigger (0 = at
    once), at the trigger's time of day."""
    return started_at + dt.timedelta(days=delay_days)


def pause_length(*, paused_at: dt.datetime, resumed_at: dt.datetime) -> dt.timedelta:
    """resumed_at − paused_at, never negative: how far a resume moves the pending steps on."""
    return max(resumed_at - paused_at, dt.timedelta(0))


def resumed_due_at(*, due_at: dt.datetime, paused_at: dt.datetime, resumed_at: dt.datetime) -> dt.datetime:
    """A pending step's due time after a pause: the clock stops while the enrolment is paused.

    due_at' = due_at + (resumed_at − paused_at), the pause's length (never negative). The steps left keep
    their gaps to each other and their distance from the moment of the pause: a step due 2 days after the
    pause is due 2 days after the resume. A step that was already due when the enrolment was paused is
    due at once on resume.
    """
    return due_at + pause_length(paused_at=paused_at, resumed_at=resumed_at)


# --- Pitch fatigue for a step ---------------------------------------------------------------------------


class FatigueAction(StrEnum):
    GO = "go"
    WAIT = "wait"
    SKIP = "skip"


@dataclass(frozen=True, slots=True)
class FatigueDecision:
    """What a step that touches the customer does now: go ahead, wait until `until`, or be skipped.

    `reason` is fatigue's own explanation (the play's gap, the 30-day cap) when the step may not go now.
    """

    action: FatigueAction
    until: dt.datetime | None = None
    reason: str = ""


def fatigue_allows_at(
    touches: Iterable[PastTouch], *, play_gap_days: int, max_per_30_days: int, now: dt.datetime
) -> dt.datetime | None:
    """The earliest moment ≥ now at which one more touch passes both limits of `playbooks.fatigue`, counting
    the touches known now; None when no moment ever will (a cap of 0 touches per 30 days).

    - play gap: latest touch by the play + play_gap_days days;
    - 30-day cap: with n touches in (now − 30 days, now] and n ≥ max, the (n − max + 1)-th oldest of them
      + 30 days (it leaves the window then, leaving max − 1);
    the later of the two (and of now).
    """
    touches = [t for t in touches if t.occurred_at <= now]
    if max_per_30_days <= 0:
        return None
    moment = now
    same_play = [t.occurred_at for t in touches if t.same_play]
    if play_gap_days > 0 and same_play:
        moment = max(moment, max(same_play) + dt.timedelta(days=play_gap_days))
    window_start = now - dt.timedelta(days=WINDOW_DAYS)
    recent = sorted(t.occurred_at for t in touches if t.occurred_at > window_start)
    if len(recent) >= max_per_30_days:
        moment = max(moment, recent[len(recent) - max_per_30_days] + dt.timedelta(days=WINDOW_DAYS))
    return moment


def fatigue_decision(
    touches: Iterable[PastTouch],
    *,
    play_gap_days: int,
    max_per_30_days: int,
    now: dt.datetime,
    when_fatigued: str,
) -> FatigueDecision:
    """Go when `fatigue_check` lets one more touch through at `now`. Otherwise, per the step's
    `when_fatigued`: "skip" skips it; "wait" waits until `fatigue_allows_at` (skipped after all when no
    moment ever allows it: the 30-day cap is 0)."""
    touches = list(touches)
    reason = fatigue_check(touches, play_gap_days=play_gap_days, max_per_30_days=max_per_30_days, now=now)
    if reason is None:
        return FatigueDecision(FatigueAction.GO)
    if when_fatigued == "wait":
        until = fatigue_allows_at(touches, play_gap_days=play_gap_days, max_per_30_days=max_per_30_days, now=now)
        if until is not None:
            return FatigueDecision(FatigueAction.WAIT, until=until, reason=reason)
    return FatigueDecision(FatigueAction.SKIP, reason=reason)


# --- What a step says -------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class StepContent:
    """The templates a step renders: an email's subject and body, a prompt's text (in `body`), a task's
    title and detail, a notification's title (in `subject`)."""

    subject: str
    body: str


def step_content(
    *, kind: str, subject: str, body: str, content: PlayContent, play_name: str, position: int
) -> StepContent:
    """The step's own subject and body where set; blank ones fall back to `content`, the play's content with
    its A/B variant's non-blank fields in place (`experiment_services.play_content_for`), so a step falls back
    to the variant's text, then the play's.

    - email: subject ← step subject | variant/play email subject; body ← step body | variant/play email body.
    - prompt: body ← step body | variant/play prompt text (no subject).
    - task: subject ← step subject | "Follow up on <play>"; body ← step body (may stay blank).
    - notify: subject ← step subject | "<play>: step <position> is due"; body ← step body.
    """
    subject, body = subject.strip(), body.strip()
    if kind == "email":
        return StepContent(subject=subject or content.email_subject, body=body or content.email_body)
    if kind == "prompt":
        return StepContent(subject="", body=body or content.prompt_text)
    if kind == "task":
        return StepContent(subject=subject or f"Follow up on {play_name}", body=body)
    return StepContent(subject=subject or f"{play_name}: step {position} is due", body=body)


def day_label(moment: dt.datetime) -> str:
    """ "Dec 3, 2026 09:00": how a step's detail names a moment."""
    return f"{moment:%b} {moment.day}, {moment.year} {moment:%H:%M}"
