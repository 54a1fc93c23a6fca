"""The arithmetic of play sequences: due times, pauses, pitch fatigue for a step, and what a step says."""

import datetime as dt
from dataclasses import replace

from playbooks.experiment_services import PlayContent
from playbooks.fatigue import PastTouch
from playbooks.sequences import (
    FatigueAction,
    fatigue_allows_at,
    fatigue_decision,
    resumed_due_at,
    step_content,
    step_due_at,
)

NOW = dt.datetime(2026, 11, 20, 9, 30, tzinfo=dt.UTC)


def days(n: float) -> dt.timedelta:
    return dt.timedelta(days=n)


def touch(days_ago: float, *, same_play: bool = True) -> PastTouch:
    return PastTouch(occurred_at=NOW - days(days_ago), same_play=same_play)


PLAY = PlayContent(
    email_subject="Room on {{ target_plan }}",
    email_body="Hi from the play",
    prompt_kind="banner",
    prompt_text="Play prompt",
    prompt_cta_label="",
    prompt_cta_url="",
    trial_days=14,
)


# --- Due times -------------------------------------------------------------------------------------------


def test_a_step_is_due_its_delay_in_days_after_the_trigger_at_the_triggers_time_of_day():
    assert step_due_at(started_at=NOW, delay_days=0) == NOW
    assert step_due_at(started_at=NOW, delay_days=3) == dt.datetime(2026, 11, 23, 9, 30, tzinfo=dt.UTC)


def test_a_resume_moves_a_step_on_by_the_length_of_the_pause():
    paused_at, resumed_at = NOW, NOW + days(5)

    assert resumed_due_at(due_at=NOW + days(2), paused_at=paused_at, resumed_at=resumed_at) == NOW + days(7)
    assert resumed_due_at(due_at=NOW + days(4), paused_at=paused_at, resumed_at=resumed_at) == NOW + days(9)


def test_a_step_due_before_the_pause_is_due_at_once_on_resume():
    resumed_at = NOW + days(5)

    assert resumed_due_at(due_at=NOW - days(1), paused_at=NOW, resumed_at=resumed_at) <= resumed_at


def test_a_resume_dated_before_the_pause_moves_nothing():
    assert resumed_due_at(due_at=NOW + days(2), paused_at=NOW, resumed_at=NOW - days(1)) == NOW + days(2)


# --- Pitch fatigue ---------------------------------------------------------------------------------------


def test_a_step_goes_ahead_when_fatigue_lets_a_touch_through():
    decision = fatigue_decision([], play_gap_days=7, max_per_30_days=4, now=NOW, when_fatigued="wait")

    assert decision.action == FatigueAction.GO


def test_a_waiting_step_waits_until_the_plays_gap_has_passed():
    decision = fatigue_decision([touch(3)], play_gap_days=7, max_per_30_days=4, now=NOW, when_fatigued="wait")

    assert (decision.action, decision.until) == (FatigueAction.WAIT, NOW + days(4))
    assert "waits 7 days between touches" in decision.reason


def test_a_waiting_step_waits_until_enough_touches_left_the_30_day_window():
    touches = [touch(d, same_play=False) for d in (1, 5, 12, 25)]

    until = fatigue_allows_at(touches, play_gap_days=0, max_per_30_days=4, now=NOW)

    # Four touches in the window, four allowed: the oldest (25 days ago) leaves it 5 days from now.
    assert until == NOW + days(5)


def test_the_wait_ends_at_the_later_of_the_two_limits():
    touches = [touch(1)] + [touch(d, same_play=False) for d in (2, 3)]

    until = fatigue_allows_at(touches, play_gap_days=7, max_per_30_days=3, now=NOW)

    assert until == max(NOW + days(6), NOW - days(3) + days(30))


def test_at_the_moment_the_wait_ends_fatigue_lets_the_touch_through():
    touches = [touch(1)] + [touch(d, same_play=False) for d in (2, 3, 20)]

    until = fatigue_allows_at(touches, play_gap_days=7, max_per_30_days=3, now=NOW)
    then = fatigue_decision(touches, play_gap_days=7, max_per_30_days=3, now=until, when_fatigued="wait")
    just_before = fatigue_decision(
        touches, play_gap_days=7, max_per_30_days=3, now=until - dt.timedelta(seconds=1), when_fatigued="wait"
    )

    assert then.action == FatigueAction.GO
    assert just_before.action == FatigueAction.WAIT


def test_a_skipping_step_is_skipped_with_fatigues_reason():
    decision = fatigue_decision([touch(3)], play_gap_days=7, max_per_30_days=4, now=NOW, when_fatigued="skip")

    assert (decision.action, decision.until) == (FatigueAction.SKIP, None)
    assert decision.reason.startswith("This play last touched the account")


def test_a_waiting_step_is_skipped_when_no_touch_is_ever_allowed():
    decision = fatigue_decision([], play_gap_days=0, max_per_30_days=0, now=NOW, when_fatigued="wait")

    assert decision.action == FatigueAction.SKIP


# --- What a step says ------------------------------------------------------------------------------------


def test_an_email_step_uses_its_own_subject_and_body_when_it_has_them():
    content = step_content(kind="email", subject="Mine", body="My body", content=PLAY, play_name="P", position=1)

    assert (content.subject, content.body) == ("Mine", "My body")


def test_blank_step_fields_fall_back_to_the_variants_then_the_plays():
    with_variant = replace(PLAY, email_subject="Variant subject")

    content = step_content(kind="email", subject=" ", body="", content=with_variant, play_name="P", position=1)

    assert (content.subject, content.body) == ("Variant subject", "Hi from the play")


def test_a_prompt_step_shows_its_text_else_the_prompt_text():
    own = step_content(kind="prompt", subject="", body="Step prompt", content=PLAY, play_name="P", position=2)
    fallback = step_content(kind="prompt", subject="", body="", content=PLAY, play_name="P", position=2)

    assert (own.body, fallback.body) == ("Step prompt", "Play prompt")


def test_a_task_and_a_notification_have_a_title_even_without_a_subject():
    task = step_content(kind="task", subject="", body="Call them", content=PLAY, play_name="Seats", position=3)
    note = step_content(kind="notify", subject="", body="", content=PLAY, play_name="Seats", position=4)

    assert (task.subject, task.body) == ("Follow up on Seats", "Call them")
    assert note.subject == "Seats: step 4 is due"
