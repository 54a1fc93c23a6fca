"""The managers' pipeline figures and the CSM leaderboard: pure math over plain records, no DB, no clock.

The formulas are DOMAIN.md's ("Metrics", last bullet): stage conversion = opportunities that reached the next
stage / those that reached this one; win rate = won / (won + lost) among those closed in the period; cycle
time = days from identify to close.

The period `[start, end]` includes both days. Datetimes arrive in the reporting time zone, so a datetime
falls in the period when its `.date()` does. Durations are exact elapsed time in days (36 hours = 1.5 days),
rounded to one decimal only at the end; percentages are numbers such as 62.5, rounded to one decimal.

**Reached.** Stages are only ever entered forwards (identify -> qualify -> present -> close), but a step
may be skipped: billing closes an opportunity as won from any stage, and a win from Present writes no
separate "entered Close" step. An opportunity has reached a stage when its furthest stage (the latest stage
its events entered, or its current stage) is that stage or a later one: one won straight from Identify has
reached Qualify and Present too, and one lost in Qualify has reached Identify and Qualify whatever it is now.
"""

from __future__ import annotations

import datetime as dt
import statistics
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal
from itertools import pairwise

from opportunities.models import STAGE_ORDER, Outcome, Stage

ZERO = Decimal("0")
HUNDRED = Decimal("100")
ONE_DECIMAL = Decimal("0.1")
DAY = dt.timedelta(days=1)
SNOOZE_WINDOW_DAYS = 7
"""Snoozed opportunities coming back in this many days, today included, are "returning this week"."""

RANK = {stage.value: rank for rank, stage in enumerate(STAGE_ORDER)}
DECIDED = (Outcome.WON, Outcome.LOST)


@dataclass(frozen=True, slots=True)
class StageDates:
    """When an opportunity first entered each stage (from its events); None for a stage it never entered."""

    identify: dt.datetime | None = None
    qualify: dt.datetime | None = None
    present: dt.datetime | None = None
    close: dt.datetime | None = None

    def of(self, stage: str) -> dt.datetime | None:
        return getattr(self, Stage(stage).value)


@dataclass(frozen=True, slots=True)
class PipelineOpportunity:
    """What the pipeline figures need of one opportunity, its account's segment and its owner."""

    id: int
    account_id: int
    account_name: str
    owner_id: int | None
    owner_name: str
    stage: str
    """The current stage."""
    outcome: str
    identified_at: dt.datetime
    entered: StageDates
    closed_at: dt.datetime | None = None
    expected_mrr: Decimal | None = None
    actual_mrr: Decimal | None = None
    """The MRR delta of a win (what billing or the CSM recorded)."""
    snoozed_until: dt.date | None = None
    lost_reason: str = ""
    plan: str = ""
    industry: str = ""
    size_band: str = ""
    """The company-size band as shown ("51–200"); empty when the head count is unknown."""
    region: str = ""
    touched_by: frozenset[int] = frozenset()
    """The users who wrote an event on the opportunity during the period (a note, a step, an email...)."""
    collaborators: tuple[tuple[int, str], ...] = ()
    """(user id, name) of the account executives on it (opportunities.Collaborator), as it stands now."""

    def credited_to(self, user_id: int) -> bool:
        """Whether its outcome counts for `user_id` on the leaderboard: its owner's, and each collaborator's."""
        return self.owner_id == user_id or any(pk == user_id for pk, _name in self.collaborators)

    @property
    def is_open(self) -> bool:
        return self.outcome == Outcome.OPEN

    @property
    def identify_at(self) -> dt.datetime:
        """When it entered Identify: its first event there, or its identification stamp without one."""
        return self.entered.identify or self.identified_at

    @property
    def furthest_rank(self) -> int:
        """The rank in STAGE_ORDER of the furthest stage it entered (per its events) or sits in now."""
        ranks = [RANK[stage] for stage in RANK if self.entered.of(stage) is not None]
        return max([RANK[self.stage], *ranks])

    def reached(self, stage: str) -> bool:
        return self.furthest_rank >= RANK[stage]

    def closed_between(self, start: dt.date, end: dt.date) -> bool:
        return self.closed_at is not None and start <= self.closed_at.date() <= end

    @property
    def cycle_days(self) -> Decimal | None:
        """Days from entering Identify to closing (None while open)."""
        if self.closed_at is None:
            return None
        return days_between(self.identify_at, self.closed_at)


def days_between(start: dt.datetime, end: dt.datetime) -> Decimal:
    """Exact elapsed days from `start` to `end` (36 hours -> 1.5), unrounded."""
    return Decimal((end - start).total_seconds()) / Decimal(86400)


def _one_decimal(value: Decimal) -> Decimal:
    return value.quantize(ONE_DECIMAL, rounding=ROUND_HALF_UP)


def percent(part: int, whole: int) -> Decimal | None:
    """`part / whole × 100` with one decimal; None when `whole` is 0."""
    if not whole:
        return None
    return _one_decimal(Decimal(part) * HUNDRED / Decimal(whole))


def _mean(values: Sequence[Decimal]) -> Decimal | None:
    return _one_decimal(sum(values, ZERO) / len(values)) if values else None


def _median(values: Sequence[Decimal]) -> Decimal | None:
    return _one_decimal(Decimal(statistics.median(values))) if values else None


# --- Open pipeline -----------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class StageTotal:
    stage: str
    label: str
    count: int
    expected_mrr: Decimal
    """Sum of the expected MRR deltas; an opportunity without one (not presented yet) adds nothing."""
    priced: int
    """How many of `count` have an expected MRR delta."""


def funnel(opportunities: Iterable[PipelineOpportunity]) -> list[StageTotal]:
    """Open opportunities per current stage, every stage included, in pipeline order.

    count = open opportunities in the stage; expected MRR = Σ expected MRR delta over them.
    """
    open_ = [o for o in opportunities if o.is_open]
    return [_stage_total(stage, [o for o in open_ if o.stage == stage]) for stage in STAGE_ORDER]


def _stage_total(stage: Stage, opportunities: list[PipelineOpportunity]) -> StageTotal:
    priced = [o.expected_mrr for o in opportunities if o.expected_mrr is not None]
    return StageTotal(stage.value, stage.label, len(opportunities), sum(priced, ZERO), len(priced))


@dataclass(frozen=True, slots=True)
class PipelineGroup:
    """The open pipeline of one CSM or one segment value."""

    key: str
    label: str
    count: int
    expected_mrr: Decimal
    by_stage: tuple[int, ...]
    """Open opportunities per stage, in STAGE_ORDER."""


SEGMENTS: tuple[tuple[str, str, str], ...] = (
    ("plan", "Plan", "No plan"),
    ("industry", "Industry", "Unknown industry"),
    ("size_band", "Company size", "Unknown size"),
    ("region", "Region", "Unknown region"),
)
"""(record attribute, heading, label of an empty value) of each segment the open pipeline is split by."""


def open_pipeline_by(
    opportunities: Iterable[PipelineOpportunity],
    *,
    key: Callable[[PipelineOpportunity], str],
    label: Callable[[PipelineOpportunity], str],
) -> list[PipelineGroup]:
    """Open opportunities grouped by `key`: count, Σ expected MRR delta and count per stage.

    Largest expected MRR first, then most opportunities, then by label.
    """
    groups: dict[str, list[PipelineOpportunity]] = defaultdict(list)
    labels: dict[str, str] = {}
    for o in opportunities:
        if o.is_open:
            groups[key(o)].append(o)
            labels.setdefault(key(o), label(o))
    rows = [
        PipelineGroup(
            key=group_key,
            label=labels[group_key],
            count=len(members),
            expected_mrr=sum((o.expected_mrr for o in members if o.expected_mrr is not None), ZERO),
            by_stage=tuple(sum(1 for o in members if o.stage == stage) for stage in STAGE_ORDER),
        )
        for group_key, members in groups.items()
    ]
    return sorted(rows, key=lambda row: (-row.expected_mrr, -row.count, row.label.casefold()))


def open_pipeline_by_owner(opportunities: Iterable[PipelineOpportunity]) -> list[PipelineGroup]:
    """The open pipeline per CSM (the opportunity's owner); unowned ones together as "Unassigned"."""
    return open_pipeline_by(
        opportunities,
        key=lambda o: "" if o.owner_id is None else str(o.owner_id),
        label=lambda o: o.owner_name if o.owner_id is not None else "Unassigned",
    )


def open_pipeline_by_segment(opportunities: Sequence[PipelineOpportunity]) -> list[tuple[str, list[PipelineGroup]]]:
    """The open pipeline per value of each segment: plan, industry, company size band and region."""
    return [
        (
            heading,
            open_pipeline_by(
                opportunities,
                key=lambda o, attribute=attribute: getattr(o, attribute),
                label=lambda o, attribute=attribute, empty=empty: getattr(o, attribute) or empty,
            ),
        )
        for attribute, heading, empty in SEGMENTS
    ]


# --- Conversion, win rate, time ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Conversion:
    """From one stage to the next (the last step: from Close to won)."""

    from_stage: str
    from_label: str
    to_label: str
    reached_from: int
    reached_to: int
    rate: Decimal | None
    """reached_to / reached_from × 100; None when nothing reached `from_stage`."""


def stage_conversion(opportunities: Iterable[PipelineOpportunity], *, start: dt.date, end: dt.date) -> list[Conversion]:
    """Stage-to-stage conversion of the opportunities identified in the period (a cohort, followed to today).

    conversion(s -> next) = opportunities that reached `next` / opportunities that reached `s` × 100, where
    "reached" counts skipped stages and closed opportunities (see the module docstring); the last step,
    Close -> Won, is won / reached Close.
    """
    cohort = [o for o in opportunities if start <= o.identify_at.date() <= end]
    reached = {stage: sum(1 for o in cohort if o.reached(stage)) for stage in STAGE_ORDER}
    steps = [
        Conversion(
            stage.value,
            stage.label,
            following.label,
            reached[stage],
            reached[following],
            percent(reached[following], reached[stage]),
        )
        for stage, following in pairwise(STAGE_ORDER)
    ]
    won = sum(1 for o in cohort if o.outcome == Outcome.WON)
    last = Stage.CLOSE
    steps.append(Conversion(last.value, last.label, Outcome.WON.label, reached[last], won, percent(won, reached[last])))
    return steps


@dataclass(frozen=True, slots=True)
class WinRate:
    won: int
    lost: int
    rate: Decimal | None
    """won / (won + lost) × 100; None with no decision in the period."""


def win_rate(opportunities: Iterable[PipelineOpportunity], *, start: dt.date, end: dt.date) -> WinRate:
    """win rate = won / (won + lost) × 100 among the opportunities closed in the period.

    Snoozed ("not now") and signal-cleared closings are not decisions: they count on neither side.
    """
    closed = [o for o in opportunities if o.closed_between(start, end)]
    won = sum(1 for o in closed if o.outcome == Outcome.WON)
    lost = sum(1 for o in closed if o.outcome == Outcome.LOST)
    return WinRate(won, lost, percent(won, won + lost))


@dataclass(frozen=True, slots=True)
class StageDuration:
    stage: str
    label: str
    stays: int
    avg_days: Decimal | None


def _stays(o: PipelineOpportunity) -> list[tuple[str, dt.datetime, dt.datetime]]:
    """(stage, entered, left) of each stage the opportunity entered and has left."""
    entries = [(Stage.IDENTIFY.value, o.identify_at)] + [
        (stage.value, o.entered.of(stage)) for stage in STAGE_ORDER[1:]
    ]
    entered = [(stage, at) for stage, at in entries if at is not None]
    stays = []
    for index, (stage, at) in enumerate(entered):
        if index + 1 < len(entered):
            stays.append((stage, at, entered[index + 1][1]))
        elif o.closed_at is not None and o.closed_at > at:
            # The last stage ends with the closing, unless the closing itself entered it (a win from Present).
            stays.append((stage, at, o.closed_at))
    return stays


def days_in_stage(opportunities: Iterable[PipelineOpportunity], *, start: dt.date, end: dt.date) -> list[StageDuration]:
    """Average days spent in each stage, over the stays that ended in the period.

    A stay runs from entering the stage to entering a later one or, in the last stage entered, to the
    closing. average = Σ (left − entered) / number of stays, in days. Stays still running (open
    opportunities in their current stage) do not count; nor do skipped stages.
    """
    by_stage: dict[str, list[Decimal]] = defaultdict(list)
    for o in opportunities:
        for stage, entered, left in _stays(o):
            if start <= left.date() <= end:
                by_stage[stage].append(days_between(entered, left))
    return [
        StageDuration(stage.value, stage.label, len(by_stage[stage]), _mean(by_stage[stage])) for stage in STAGE_ORDER
    ]


@dataclass(frozen=True, slots=True)
class CycleTime:
    won: int
    median_days: Decimal | None
    mean_days: Decimal | None


def cycle_time(opportunities: Iterable[PipelineOpportunity], *, start: dt.date, end: dt.date) -> CycleTime:
    """Cycle time of the opportunities won in the period: days from entering Identify to closing.

    median and mean of (closed − identified) in days, over won opportunities closed in the period.
    """
    days = [o.cycle_days for o in opportunities if o.outcome == Outcome.WON and o.closed_between(start, end)]
    return CycleTime(len(days), _median(days), _mean(days))


# --- Lost reasons and snoozes ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class LostReasonShare:
    label: str
    count: int
    share: Decimal
    """count / all lost in the period × 100."""


def lost_reasons(
    opportunities: Iterable[PipelineOpportunity], *, start: dt.date, end: dt.date
) -> list[LostReasonShare]:
    """Opportunities closed lost in the period per reason: count, and share = count / lost in period × 100.

    Most frequent first. Shares are rounded each on its own, so they may not add up to exactly 100.
    """
    counts: dict[str, int] = defaultdict(int)
    for o in opportunities:
        if o.outcome == Outcome.LOST and o.closed_between(start, end):
            counts[o.lost_reason or "No reason"] += 1
    total = sum(counts.values())
    rows = [LostReasonShare(label, count, percent(count, total)) for label, count in counts.items()]
    return sorted(rows, key=lambda row: (-row.count, row.label.casefold()))


def snoozed_returning(opportunities: Iterable[PipelineOpportunity], *, today: dt.date) -> list[PipelineOpportunity]:
    """Snoozed opportunities whose snooze ends within the next SNOOZE_WINDOW_DAYS days, today included
    (`today ≤ snoozed_until < today + 7`), soonest first."""
    last = today + dt.timedelta(days=SNOOZE_WINDOW_DAYS - 1)
    returning = [
        o
        for o in opportunities
        if o.outcome == Outcome.SNOOZED and o.snoozed_until is not None and today <= o.snoozed_until <= last
    ]
    return sorted(returning, key=lambda o: (o.snoozed_until, o.account_name.casefold(), o.id))


# --- The CSM leaderboard -----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class LeaderboardRow:
    user_id: int
    name: str
    worked: int
    won: int
    lost: int
    win_rate: Decimal | None
    expansion_mrr: Decimal
    avg_cycle_days: Decimal | None


def worked_by(o: PipelineOpportunity, user_id: int, *, start: dt.date, end: dt.date) -> bool:
    """Whether `user_id` worked the opportunity in the period: wrote any event on it then, or owns it (or
    collaborates on it) and it moved on a stage or closed won or lost then (billing closing a win counts for
    its owner and collaborators)."""
    if user_id in o.touched_by:
        return True
    if not o.credited_to(user_id):
        return False
    moved = any(
        at is not None and start <= at.date() <= end for at in (o.entered.qualify, o.entered.present, o.entered.close)
    )
    return moved or (o.outcome in DECIDED and o.closed_between(start, end))


def leaderboard(
    opportunities: Sequence[PipelineOpportunity], *, start: dt.date, end: dt.date, people: Mapping[int, str]
) -> list[LeaderboardRow]:
    """Per person, over the period: one row for each of `people` (id -> name), each owner of an opportunity
    and each collaborator on one (an account executive, Sales role).

    - worked = opportunities they worked in the period (see `worked_by`);
    - won, lost = their opportunities (as owner or collaborator) closed won, lost in the period;
    - win rate = won / (won + lost) × 100;
    - expansion MRR = Σ actual MRR delta of their won ones;
    - average cycle time = mean days from identify to close of their won ones.

    Wins and losses are credited to the owner and to each collaborator, whoever clicked: a CSM is measured
    on their book, an account executive on the deals they were brought onto. Each gets full credit, not a
    share: a win of +100 MRR with one collaborator adds 100 to the owner's expansion MRR and 100 to the
    collaborator's. The rows may therefore add up to more than the team's expansion MRR, which counts
    every win once (`PipelineStats.expansion_mrr_won`); never sum the rows for a team total.
    """
    names = dict(people)
    for o in opportunities:
        if o.owner_id is not None:
            names.setdefault(o.owner_id, o.owner_name)
        for user_id, name in o.collaborators:
            names.setdefault(user_id, name)
    rows = []
    for user_id, name in names.items():
        mine = [o for o in opportunities if o.credited_to(user_id) and o.closed_between(start, end)]
        won = [o for o in mine if o.outcome == Outcome.WON]
        lost = sum(1 for o in mine if o.outcome == Outcome.LOST)
        rows.append(
            LeaderboardRow(
                user_id=user_id,
                name=name,
                worked=sum(1 for o in opportunities if worked_by(o, user_id, start=start, end=end)),
                won=len(won),
                lost=lost,
                win_rate=percent(len(won), len(won) + lost),
                expansion_mrr=sum((o.actual_mrr for o in won if o.actual_mrr is not None), ZERO),
                avg_cycle_days=_mean([o.cycle_days for o in won]),
            )
        )
    return leaderboard_sorted(rows, key="expansion", descending=True)


LEADERBOARD_SORTS: dict[str, Callable[[LeaderboardRow], object]] = {
    "csm": lambda row: row.name.casefold(),
    "worked": lambda row: row.worked,
    "won": lambda row: row.won,
    "win_rate": lambda row: row.win_rate,
    "expansion": lambda row: row.expansion_mrr,
    "cycle": lambda row: row.avg_cycle_days,
}
LEADERBOARD_DEFAULT_SORT = ("expansion", True)


def leaderboard_sorted(rows: Iterable[LeaderboardRow], *, key: str, descending: bool) -> list[LeaderboardRow]:
    """Rows ordered by a LEADERBOARD_SORTS key; empty values (no win rate, no cycle) last either way, then
    by name."""
    value = LEADERBOARD_SORTS[key]
    rows = sorted(rows, key=lambda row: row.name.casefold())
    present = [row for row in rows if value(row) is not None]
    missing = [row for row in rows if value(row) is None]
    return sorted(present, key=value, reverse=descending) + missing


# --- Everything at once ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class PipelineStats:
    start: dt.date
    end: dt.date
    today: dt.date
    funnel: list[StageTotal]
    open_count: int
    open_expected_mrr: Decimal
    conversion: list[Conversion]
    identified: int
    """How many opportunities were identified in the period (the conversion cohort)."""
    win_rate: WinRate
    days_in_stage: list[StageDuration]
    cycle_time: CycleTime
    expansion_mrr_won: Decimal
    """Σ actual MRR delta of the period's wins, each win once however many people the leaderboard credits."""
    by_owner: list[PipelineGroup]
    by_segment: list[tuple[str, list[PipelineGroup]]]
    lost_reasons: list[LostReasonShare]
    snoozed_returning: list[PipelineOpportunity]
    leaderboard: list[LeaderboardRow] = field(default_factory=list)

    @property
    def stage_steps(self) -> list[tuple[Conversion, StageDuration]]:
        """Each stage's conversion to the next with its average stay, in pipeline order."""
        return list(zip(self.conversion, self.days_in_stage, strict=True))

    @property
    def snoozes_until(self) -> dt.date:
        """The last day of the "returning this week" window."""
        return self.today + dt.timedelta(days=SNOOZE_WINDOW_DAYS - 1)


def pipeline_stats(
    opportunities: Sequence[PipelineOpportunity],
    *,
    start: dt.date,
    end: dt.date,
    today: dt.date,
    people: Mapping[int, str],
) -> PipelineStats:
    """Every figure of the pipeline dashboard for the period `[start, end]`, with `today` for the snoozes."""
    stages = funnel(opportunities)
    won = [o for o in opportunities if o.outcome == Outcome.WON and o.closed_between(start, end)]
    return PipelineStats(
        start=start,
        end=end,
        today=today,
        funnel=stages,
        open_count=sum(stage.count for stage in stages),
        open_expected_mrr=sum((stage.expected_mrr for stage in stages), ZERO),
        conversion=stage_conversion(opportunities, start=start, end=end),
        identified=sum(1 for o in opportunities if start <= o.identify_at.date() <= end),
        win_rate=win_rate(opportunities, start=start, end=end),
        days_in_stage=days_in_stage(opportunities, start=start, end=end),
        cycle_time=cycle_time(opportunities, start=start, end=end),
        expansion_mrr_won=sum((o.actual_mrr for o in won if o.actual_mrr is not None), ZERO),
        by_owner=open_pipeline_by_owner(opportunities),
        by_segment=open_pipeline_by_segment(opportunities),
        lost_reasons=lost_reasons(opportunities, start=start, end=end),
        snoozed_returning=snoozed_returning(opportunities, today=today),
        leaderboard=leaderboard(opportunities, start=start, end=end, people=people),
    )
