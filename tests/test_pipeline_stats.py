"""opportunities.pipeline_stats: each pipeline figure against a small scenario, the arithmetic in a comment."""

import datetime as dt
from dataclasses import replace
from decimal import Decimal

from opportunities.pipeline_stats import (
    PipelineOpportunity,
    StageDates,
    cycle_time,
    days_in_stage,
    funnel,
    leaderboard,
    leaderboard_sorted,
    lost_reasons,
    open_pipeline_by_owner,
    open_pipeline_by_segment,
    pipeline_stats,
    snoozed_returning,
    stage_conversion,
    win_rate,
)

MARCH = {"start": dt.date(2026, 3, 1), "end": dt.date(2026, 3, 31)}
CASEY, OLIVE, PAT = 1, 2, 3
NAMES = {CASEY: "Casey Moreno", OLIVE: "Olive Park", PAT: "Pat Quinn"}


def at(day: str, hour: int = 9) -> dt.datetime:
    return dt.datetime.fromisoformat(f"{day}T{hour:02d}:00:00+00:00")


def opportunity(
    pk: int,
    *,
    identified: str = "2026-03-02",
    qualify: str | None = None,
    present: str | None = None,
    close: str | None = None,
    stage: str | None = None,
    outcome: str = "open",
    closed: str | None = None,
    owner: int | None = CASEY,
    expected: str | None = None,
    actual: str | None = None,
    **fields,
) -> PipelineOpportunity:
    """An opportunity whose events entered Identify on `identified` and the other stages on the days given;
    its current stage is the last one entered unless `stage` says otherwise."""
    entered = StageDates(
        identify=at(identified),
        qualify=at(qualify) if qualify else None,
        present=at(present) if present else None,
        close=at(close) if close else None,
    )
    last = next((s for s, day in (("close", close), ("present", present), ("qualify", qualify)) if day), "identify")
    return PipelineOpportunity(
        id=pk,
        account_id=100 + pk,
        account_name=fields.pop("account_name", f"Account {pk}"),
        owner_id=owner,
        owner_name=NAMES.get(owner, ""),
        stage=stage or last,
        outcome=outcome,
        identified_at=at(identified),
        entered=entered,
        closed_at=at(closed) if closed else None,
        expected_mrr=Decimal(expected) if expected else None,
        actual_mrr=Decimal(actual) if actual else None,
        **fields,
    )


# --- Funnel and open pipeline ------------------------------------------------------------------------------


def test_it_counts_open_opportunities_and_their_expected_mrr_per_stage_leaving_closed_ones_out():
    rows = funnel(
        [
            opportunity(1, expected="70.00"),
            opportunity(2),  # identify, not priced yet
            opportunity(3, qualify="2026-03-03", present="2026-03-05", expected="200.00"),
            opportunity(4, qualify="2026-03-03", present="2026-03-05", expected="70.00"),
            opportunity(5, qualify="2026-03-03", outcome="lost", closed="2026-03-09", expected="999.00"),
        ]
    )

    # Identify: #1 and #2, 70 + nothing = $70 (1 priced); Qualify: #5 is lost; Present: 200 + 70 = $270.
    assert [(r.stage, r.count, r.expected_mrr, r.priced) for r in rows] == [
        ("identify", 2, Decimal("70.00"), 1),
        ("qualify", 0, Decimal("0"), 0),
        ("present", 2, Decimal("270.00"), 2),
        ("close", 0, Decimal("0"), 0),
    ]


def test_it_splits_the_open_pipeline_by_csm_and_by_segment():
    records = [
        opportunity(1, owner=CASEY, expected="70.00", plan="Basic", region="EMEA", size_band="11–50"),
        opportunity(2, owner=CASEY, qualify="2026-03-04", expected="30.00", plan="Basic", region="AMER"),
        opportunity(3, owner=OLIVE, expected="200.00", plan="Pro", region="EMEA"),
        opportunity(4, owner=None, plan="Pro"),
        opportunity(5, owner=OLIVE, outcome="won", closed="2026-03-09", actual="500.00", plan="Pro"),
    ]

    by_owner = open_pipeline_by_owner(records)
    by_segment = dict(open_pipeline_by_segment(records))

    # Olive: #3 = $200 (the won #5 is not open); Casey: 70 + 30 = $100 over 2; the unowned #4: $0.
    assert [(r.label, r.count, r.expected_mrr, r.by_stage) for r in by_owner] == [
        ("Olive Park", 1, Decimal("200.00"), (1, 0, 0, 0)),
        ("Casey Moreno", 2, Decimal("100.00"), (1, 1, 0, 0)),
        ("Unassigned", 1, Decimal("0"), (1, 0, 0, 0)),
    ]
    # Plan: Pro = #3 + #4 = $200 over 2, Basic = $100 over 2. Region: EMEA 70 + 200, AMER 30, none for #4.
    assert [(r.label, r.count, r.expected_mrr) for r in by_segment["Plan"]] == [
        ("Pro", 2, Decimal("200.00")),
        ("Basic", 2, Decimal("100.00")),
    ]
    assert [(r.label, r.count) for r in by_segment["Region"]] == [
        ("EMEA", 2),
        ("AMER", 1),
        ("Unknown region", 1),
    ]
    # Company size: #2, #3, #4 unknown = 30 + 200 = $230 before #1's 11–50 = $70.
    assert [(r.label, r.count) for r in by_segment["Company size"]] == [("Unknown size", 3), ("11–50", 1)]


# --- Conversion ----------------------------------------------------------------------------------------------


def test_it_converts_stage_to_stage_counting_skipped_stages_and_closed_opportunities_as_reached():
    records = [
        opportunity(1),  # still in Identify
        opportunity(2, qualify="2026-03-04", outcome="lost", closed="2026-03-09"),  # lost in Qualify
        opportunity(
            3, qualify="2026-03-04", present="2026-03-06", close="2026-03-10", outcome="won", closed="2026-03-12"
        ),
        # Billing closed it as won straight from Identify: it entered Close only, yet reached Qualify and Present.
        opportunity(4, close="2026-03-20", outcome="won", closed="2026-03-20"),
        opportunity(5, qualify="2026-03-04", present="2026-03-06", outcome="snoozed", closed="2026-03-08"),
        # No stage event at all, but it sits in Present now: it reached Qualify and Present.
        PipelineOpportunity(
            id=6,
            account_id=106,
            account_name="Account 6",
            owner_id=CASEY,
            owner_name="Casey Moreno",
            stage="present",
            outcome="open",
            identified_at=at("2026-03-03"),
            entered=StageDates(),
        ),
        opportunity(7, identified="2026-02-20", qualify="2026-03-02"),  # identified before March: not in the cohort
    ]

    steps = stage_conversion(records, **MARCH)

    # Reached Identify: #1–#6 = 6; Qualify: #2, #3, #4, #5, #6 = 5; Present: #3, #4, #5, #6 = 4;
    # Close: #3, #4 = 2; won: #3, #4 = 2.
    # Identify -> Qualify 5 / 6 = 83.3%; Qualify -> Present 4 / 5 = 80%; Present -> Close 2 / 4 = 50%;
    # Close -> Won 2 / 2 = 100%.
    assert [(s.from_stage, s.reached_from, s.reached_to, s.rate) for s in steps] == [
        ("identify", 6, 5, Decimal("83.3")),
        ("qualify", 5, 4, Decimal("80.0")),
        ("present", 4, 2, Decimal("50.0")),
        ("close", 2, 2, Decimal("100.0")),
    ]


def test_it_has_no_conversion_when_nothing_reached_the_stage():
    steps = stage_conversion([opportunity(1)], **MARCH)

    # 1 reached Identify, 0 Qualify: 0 / 1 = 0%; then 0 / 0 is undefined.
    assert [s.rate for s in steps] == [Decimal("0.0"), None, None, None]


# --- Win rate and cycle time ---------------------------------------------------------------------------------


def test_it_computes_the_win_rate_over_decisions_in_the_period_ignoring_snoozed_cleared_and_open_ones():
    records = [
        opportunity(1, outcome="won", closed="2026-03-05"),
        opportunity(2, outcome="won", closed="2026-03-10"),
        opportunity(3, outcome="won", closed="2026-03-31"),
        opportunity(4, outcome="lost", closed="2026-03-15"),
        opportunity(5, outcome="snoozed", closed="2026-03-16", snoozed_until=dt.date(2026, 4, 20)),
        opportunity(6, outcome="cleared", closed="2026-03-17"),
        opportunity(7),
        opportunity(8, identified="2026-01-10", outcome="won", closed="2026-02-28"),  # won before March
        opportunity(9, outcome="lost", closed="2026-04-01"),  # lost after March
    ]

    rate = win_rate(records, **MARCH)

    # Won in March: #1, #2, #3; lost: #4. 3 / (3 + 1) = 75%.
    assert (rate.won, rate.lost, rate.rate) == (3, 1, Decimal("75.0"))


def test_it_has_no_win_rate_without_a_decision_in_the_period():
    rate = win_rate(
        [opportunity(1, outcome="snoozed", closed="2026-03-05", snoozed_until=dt.date(2026, 5, 1))], **MARCH
    )

    assert (rate.won, rate.lost, rate.rate) == (0, 0, None)


def test_it_gives_the_median_and_mean_cycle_time_of_the_wins_of_the_period():
    records = [
        opportunity(1, identified="2026-02-20", outcome="won", closed="2026-03-02"),  # 10 days
        opportunity(2, identified="2026-02-10", outcome="won", closed="2026-03-02"),  # 20 days
        opportunity(3, identified="2026-02-01", outcome="won", closed="2026-03-03"),  # 30 days
        opportunity(4, identified="2026-01-10", outcome="won", closed="2026-03-11"),  # 60 days
        opportunity(5, identified="2026-01-01", outcome="won", closed="2026-02-15"),  # won in February
        opportunity(6, identified="2026-03-01", outcome="lost", closed="2026-03-30"),  # lost, not a win
    ]

    cycle = cycle_time(records, **MARCH)

    # Days 10, 20, 30, 60: median (20 + 30) / 2 = 25; mean 120 / 4 = 30.
    assert (cycle.won, cycle.median_days, cycle.mean_days) == (4, Decimal("25.0"), Decimal("30.0"))


def test_it_measures_cycle_time_to_the_hour():
    win = opportunity(1, identified="2026-03-02", outcome="won", closed="2026-03-04")

    cycle = cycle_time([replace(win, closed_at=at("2026-03-04", 21))], **MARCH)

    # 9:00 on the 2nd to 21:00 on the 4th = 2.5 days.
    assert cycle.median_days == Decimal("2.5")


# --- Days in stage -------------------------------------------------------------------------------------------


def test_it_averages_the_days_of_each_stay_that_ended_in_the_period():
    records = [
        # Identify 3 days, Qualify 6, Present 2; the win itself entered Close, so no stay there.
        opportunity(
            1,
            identified="2026-03-01",
            qualify="2026-03-04",
            present="2026-03-10",
            close="2026-03-12",
            outcome="won",
            closed="2026-03-12",
        ),
        # Identify 1 day; still in Qualify: that stay has not ended.
        opportunity(2, identified="2026-03-02", qualify="2026-03-03"),
        # Identify 5 days (to Present: Qualify skipped), Present 4 days to the loss.
        opportunity(3, identified="2026-03-05", present="2026-03-10", outcome="lost", closed="2026-03-14"),
        # Left Identify in February: not a stay of the period.
        opportunity(4, identified="2026-02-01", qualify="2026-02-11"),
    ]

    durations = days_in_stage(records, **MARCH)

    # Identify (3 + 1 + 5) / 3 = 3; Qualify 6 / 1 = 6; Present (2 + 4) / 2 = 3; Close: none.
    assert [(d.stage, d.stays, d.avg_days) for d in durations] == [
        ("identify", 3, Decimal("3.0")),
        ("qualify", 1, Decimal("6.0")),
        ("present", 2, Decimal("3.0")),
        ("close", 0, None),
    ]


# --- Lost reasons and snoozes --------------------------------------------------------------------------------


def test_it_shares_lost_reasons_among_the_losses_of_the_period():
    def lost(pk: int, reason: str, on: str = "2026-03-10") -> PipelineOpportunity:
        return opportunity(pk, outcome="lost", closed=on, lost_reason=reason)

    records = [
        lost(1, "No budget"),
        lost(2, "No budget"),
        lost(3, "No budget"),
        lost(4, "Bad timing"),
        lost(5, "Bad timing"),
        lost(6, "Chose a competitor"),
        lost(7, "Chose a competitor", on="2026-02-27"),  # lost in February
        opportunity(8, outcome="won", closed="2026-03-10"),
    ]

    shares = lost_reasons(records, **MARCH)

    # 6 lost in March: budget 3 / 6 = 50%, timing 2 / 6 = 33.3%, competitor 1 / 6 = 16.7%.
    assert [(r.label, r.count, r.share) for r in shares] == [
        ("No budget", 3, Decimal("50.0")),
        ("Bad timing", 2, Decimal("33.3")),
        ("Chose a competitor", 1, Decimal("16.7")),
    ]


def test_it_lists_the_snoozed_opportunities_coming_back_in_the_next_seven_days_soonest_first():
    def snoozed(pk: int, until: str) -> PipelineOpportunity:
        return opportunity(pk, outcome="snoozed", closed="2026-03-01", snoozed_until=dt.date.fromisoformat(until))

    records = [
        snoozed(1, "2026-03-22"),  # today + 6: the last day of the window
        snoozed(2, "2026-03-16"),  # today
        snoozed(3, "2026-03-23"),  # today + 7: next week
        snoozed(4, "2026-03-15"),  # yesterday: already back in the queue
        opportunity(5),
    ]

    returning = snoozed_returning(records, today=dt.date(2026, 3, 16))

    assert [o.id for o in returning] == [2, 1]


# --- Leaderboard ---------------------------------------------------------------------------------------------


def leaderboard_book() -> list[PipelineOpportunity]:
    return [
        # Casey's win, worked by her: +$70 in 10 days.
        opportunity(
            1,
            identified="2026-02-25",
            outcome="won",
            closed="2026-03-07",
            actual="70.00",
            touched_by=frozenset({CASEY}),
        ),
        # Casey's loss in March, closed by nobody we know (no event by her in the record).
        opportunity(2, outcome="lost", closed="2026-03-09"),
        # Olive's, moved to Qualify in March by a stage change (no event of hers in the period otherwise).
        opportunity(3, owner=OLIVE, identified="2026-02-01", qualify="2026-03-03"),
        # Olive's, but Casey wrote a note on it in March: Casey worked it, Olive did not.
        opportunity(4, owner=OLIVE, identified="2026-02-01", touched_by=frozenset({CASEY})),
        # Casey's, closed as won by billing (no actor): +$200 in 30 days.
        opportunity(5, identified="2026-02-15", outcome="won", closed="2026-03-17", actual="200.00"),
        # Casey's, untouched since February.
        opportunity(6, identified="2026-02-01"),
        # Casey's win of January: outside the period.
        opportunity(7, identified="2025-12-01", outcome="won", closed="2026-01-10", actual="900.00"),
    ]


def test_it_credits_each_csm_with_the_opportunities_they_worked_won_and_lost_in_the_period():
    rows = leaderboard(leaderboard_book(), **MARCH, people=NAMES)

    # Casey worked #1 (her event), #2 (her loss), #4 (her note), #5 (her win) = 4; won #1, #5 = 2; lost #2;
    # win rate 2 / 3 = 66.7%; expansion 70 + 200 = $270; cycle (10 + 30) / 2 = 20 days.
    # Olive worked #3 (moved a stage) = 1, nothing decided. Pat has nothing; sorted by expansion, then name.
    assert [(r.name, r.worked, r.won, r.lost, r.win_rate, r.expansion_mrr, r.avg_cycle_days) for r in rows] == [
        ("Casey Moreno", 4, 2, 1, Decimal("66.7"), Decimal("270.00"), Decimal("20.0")),
        ("Olive Park", 1, 0, 0, None, Decimal("0"), None),
        ("Pat Quinn", 0, 0, 0, None, Decimal("0"), None),
    ]


def test_it_adds_owners_missing_from_the_people_to_the_leaderboard():
    rows = leaderboard(leaderboard_book(), **MARCH, people={PAT: "Pat Quinn"})

    assert sorted(r.name for r in rows) == ["Casey Moreno", "Olive Park", "Pat Quinn"]


def test_it_sorts_the_leaderboard_with_empty_values_last_either_way():
    rows = leaderboard(leaderboard_book(), **MARCH, people=NAMES)

    ascending = leaderboard_sorted(rows, key="win_rate", descending=False)
    descending = leaderboard_sorted(rows, key="worked", descending=True)
    by_name = leaderboard_sorted(rows, key="csm", descending=True)

    assert [r.name for r in ascending] == ["Casey Moreno", "Olive Park", "Pat Quinn"]
    assert [r.name for r in descending] == ["Casey Moreno", "Olive Park", "Pat Quinn"]
    assert [r.name for r in by_name] == ["Pat Quinn", "Olive Park", "Casey Moreno"]


def test_it_gathers_every_figure_of_the_period():
    stats = pipeline_stats(leaderboard_book(), **MARCH, today=dt.date(2026, 3, 16), people=NAMES)

    # Open now: #3, #4, #6. Identified in March: #2 only. Won in March: #1, #5 for 70 + 200.
    assert (stats.open_count, stats.identified, stats.expansion_mrr_won) == (3, 1, Decimal("270.00"))
    assert stats.snoozes_until == dt.date(2026, 3, 22)
    assert [step.from_stage for step, _duration in stats.stage_steps] == ["identify", "qualify", "present", "close"]
