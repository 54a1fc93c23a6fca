"""Win/loss and feedback figures: pure math over plain records, no DB, no clock.

Win rate = won / (won + lost) × 100 over the opportunities decided (closed won or lost) in the period, as on
the pipeline dashboard (DOMAIN.md, "Metrics"); snoozed and signal-cleared closings are not decisions. A
share = count / total × 100. Percentages are rounded to one decimal each on its own, so a column of shares
may not add up to exactly 100.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from decimal import Decimal

from opportunities.models import Outcome
from opportunities.pipeline_stats import percent

NO_REASON = "No reason"
ZERO = Decimal("0")


@dataclass(frozen=True, slots=True)
class Decision:
    """An opportunity closed won or lost: who owned it, which play it came from, when and why."""

    id: int
    outcome: str
    closed_at: dt.datetime
    """In the reporting time zone."""
    owner_id: int | None = None
    owner_name: str = ""
    play_id: int | None = None
    play_name: str = ""
    lost_reason: str = ""
    mrr_delta: Decimal | None = None
    """The MRR a win added (actual delta); None for a loss or a win without one."""

    @property
    def won(self) -> bool:
        return self.outcome == Outcome.WON


@dataclass(slots=True)
class WinLossRow:
    """Won and lost of one group (a CSM, a play, a month, or everything)."""

    key: object
    label: str
    won: int = 0
    lost: int = 0
    expansion_mrr: Decimal = ZERO
    reasons: list[tuple[str, int]] = field(default_factory=list)
    """Lost reasons of the group, most frequent first (ties by label)."""

    @property
    def decided(self) -> int:
        return self.won + self.lost

    @property
    def win_rate(self) -> Decimal | None:
        """won / (won + lost) × 100; None when nothing was decided."""
        return percent(self.won, self.decided)


def _row(key: object, label: str, decisions: Iterable[Decision]) -> WinLossRow:
    row = WinLossRow(key=key, label=label)
    lost = Counter()
    for d in decisions:
        if d.won:
            row.won += 1
            row.expansion_mrr += d.mrr_delta or ZERO
        else:
            row.lost += 1
            lost[d.lost_reason or NO_REASON] += 1
    row.reasons = sorted(lost.items(), key=lambda item: (-item[1], item[0].casefold()))
    return row


def win_loss_total(decisions: Sequence[Decision]) -> WinLossRow:
    return _row(None, "All", decisions)


def win_loss_by(
    decisions: Iterable[Decision], *, key: Callable[[Decision], object], label: Callable[[Decision], str]
) -> list[WinLossRow]:
    """One row per group (`key` of a decision, shown as `label`), most decided first, then by label."""
    groups: dict[object, list[Decision]] = defaultdict(list)
    for d in decisions:
        groups[key(d)].append(d)
    rows = [_row(k, label(members[0]), members) for k, members in groups.items()]
    return sorted(rows, key=lambda r: (-r.decided, r.label.casefold()))


def win_loss_by_csm(decisions: Iterable[Decision]) -> list[WinLossRow]:
    """Per owner of the opportunity when it closed ("Unassigned" without one)."""
    return win_loss_by(decisions, key=lambda d: d.owner_id, label=lambda d: d.owner_name or "Unassigned")


def win_loss_by_play(decisions: Iterable[Decision]) -> list[WinLossRow]:
    """Per play the opportunity came from ("No play": flagged by rules alone or opened by hand)."""
    return win_loss_by(decisions, key=lambda d: d.play_id, label=lambda d: d.play_name or "No play")


def months_between(start: dt.date, end: dt.date) -> list[dt.date]:
    """The first day of every month that has a day in [start, end], in order."""
    months, month = [], start.replace(day=1)
    while month <= end:
        months.append(month)
        month = (month + dt.timedelta(days=32)).replace(day=1)
    return months


def win_loss_by_month(decisions: Iterable[Decision], *, start: dt.date, end: dt.date) -> list[WinLossRow]:
    """Per month of closing, every month of the period in order, empty months included."""
    groups: dict[dt.date, list[Decision]] = defaultdict(list)
    for d in decisions:
        groups[d.closed_at.date().replace(day=1)].append(d)
    return [_row(month, f"{month:%b %Y}", groups.get(month, [])) for month in months_between(start, end)]


@dataclass(frozen=True, slots=True)
class Share:
    label: str
    count: int
    share: Decimal | None


def shares(counts: Counter | dict[str, int]) -> list[Share]:
    """count and share = count / Σ counts × 100 per label, most frequent first (ties by label)."""
    total = sum(counts.values())
    rows = [Share(label, n, percent(n, total)) for label, n in counts.items()]
    return sorted(rows, key=lambda r: (-r.count, r.label.casefold()))


def lost_reason_shares(decisions: Iterable[Decision]) -> list[Share]:
    """The lost opportunities per lost reason, with each reason's share of them."""
    return shares(Counter(d.lost_reason or NO_REASON for d in decisions if not d.won))


# --- Feedback reasons by segment ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class MatrixRow:
    value: str
    total: int
    counts: list[int]
    shares: list[Decimal | None]
    """Each reason's count / the row's total × 100, in the matrix's reason order."""

    @property
    def cells(self) -> list[tuple[int, Decimal | None]]:
        return list(zip(self.counts, self.shares, strict=True))


@dataclass(frozen=True, slots=True)
class ReasonMatrix:
    """Reasons (columns, keys and labels) by the values of one segment dimension (rows, most answers first)."""

    dimension: str
    label: str
    reasons: list[tuple[str, str]]
    rows: list[MatrixRow]


def reason_matrix(
    records: Iterable[object],
    *,
    dimension: str,
    label: str,
    reasons: Sequence[tuple[str, str]],
    unknown: str = "Unknown",
) -> ReasonMatrix:
    """Count the records' `reason` per value of their attribute `dimension` (blank = `unknown`). The columns
    are the `reasons` (key, label) given at least once, in that order; the rows carry each reason's share of
    the row, most answers first then by value."""
    counts: dict[str, Counter] = defaultdict(Counter)
    for record in records:
        counts[getattr(record, dimension) or unknown][record.reason] += 1
    used = [(key, text) for key, text in reasons if any(c[key] for c in counts.values())]
    rows = []
    for value, counter in counts.items():
        total = sum(counter.values())
        rows.append(
            MatrixRow(
                value=value,
                total=total,
                counts=[counter[key] for key, _ in used],
                shares=[percent(counter[key], total) for key, _ in used],
            )
        )
    rows.sort(key=lambda r: (-r.total, r.value.casefold()))
    return ReasonMatrix(dimension=dimension, label=label, reasons=used, rows=rows)
