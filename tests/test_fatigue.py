"""Pitch fatigue: a play waits between two touches of an account, and all plays share a 30-day cap."""

import datetime as dt

from playbooks.fatigue import PastTouch, fatigue_check

NOW = dt.datetime(2026, 11, 20, 12, 0, tzinfo=dt.UTC)


def days_ago(days: float, *, same_play: bool = True) -> PastTouch:
    return PastTouch(occurred_at=NOW - dt.timedelta(days=days), same_play=same_play)


def test_it_lets_a_first_touch_through():
    assert fatigue_check([], play_gap_days=7, max_per_30_days=4, now=NOW) is None


def test_it_refuses_a_touch_within_the_plays_gap_and_says_when_the_next_is_possible():
    reason = fatigue_check([days_ago(3)], play_gap_days=7, max_per_30_days=4, now=NOW)

    assert reason == (
        "This play last touched the account on Nov 17, 2026 and waits 7 days between touches: "
        "next possible on Nov 24, 2026."
    )


def test_it_lets_the_play_touch_again_once_its_gap_has_passed():
    assert fatigue_check([days_ago(7)], play_gap_days=7, max_per_30_days=4, now=NOW) is None


def test_another_plays_recent_touch_does_not_count_against_this_plays_gap():
    assert fatigue_check([days_ago(1, same_play=False)], play_gap_days=7, max_per_30_days=4, now=NOW) is None


def test_a_gap_of_zero_days_never_refuses():
    assert fatigue_check([days_ago(0)], play_gap_days=0, max_per_30_days=4, now=NOW) is None


def test_it_refuses_a_touch_over_the_global_cap_in_a_rolling_30_days():
    touches = [days_ago(d, same_play=False) for d in (2, 10, 20, 29)]

    reason = fatigue_check(touches, play_gap_days=7, max_per_30_days=4, now=NOW)

    # The oldest of the four (29 days ago, Oct 22) leaves the window 30 days after it: Nov 21.
    assert (
        reason
        == "The account has had 4 touches in the last 30 days, the most allowed is 4: next possible on Nov 21, 2026."
    )


def test_touches_older_than_30_days_leave_the_window():
    touches = [days_ago(d, same_play=False) for d in (2, 10, 20, 30)]

    assert fatigue_check(touches, play_gap_days=7, max_per_30_days=4, now=NOW) is None


def test_the_cap_counts_every_play_and_the_next_date_waits_for_enough_touches_to_leave():
    touches = [days_ago(d, same_play=d == 15) for d in (1, 5, 15, 25, 28)]

    reason = fatigue_check(touches, play_gap_days=7, max_per_30_days=3, now=NOW)

    # Five touches and a cap of three: a new one needs the count down to two, so the three oldest must leave;
    # the third oldest (15 days ago) leaves in 15 days.
    assert (
        reason
        == "The account has had 5 touches in the last 30 days, the most allowed is 3: next possible on Dec 5, 2026."
    )


def test_it_gives_both_reasons_when_both_limits_are_reached():
    touches = [days_ago(1), days_ago(5, same_play=False)]

    reason = fatigue_check(touches, play_gap_days=7, max_per_30_days=2, now=NOW)

    assert reason.startswith("This play last touched the account on Nov 19, 2026")
    assert "The account has had 2 touches in the last 30 days, the most allowed is 2" in reason


def test_a_cap_of_zero_allows_no_touch_at_all():
    assert fatigue_check([], play_gap_days=0, max_per_30_days=0, now=NOW) == (
        "The account has had 0 touches in the last 30 days, the most allowed is 0."
    )


def test_touches_after_now_are_ignored():
    assert fatigue_check([days_ago(-1)], play_gap_days=7, max_per_30_days=1, now=NOW) is None
