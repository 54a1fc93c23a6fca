"""Insights: which behaviour precedes upgrades, how features are adopted, how cohorts use the product.

Pure functions over plain histories: no database, no clock (accounts.insight_selectors loads the data).

**Upgrade** (DOMAIN.md, "Expansion"): an MRR movement with mrr_after > mrr_before > 0.

**What precedes upgrades.** For a signal S (a feature used, a metric at or over its plan limit, locked-feature
hits, premium features used in a trial, a login activity band) and a history window [start, last]:

- *Index date of an exposed account*: the first day in [start, last] on which it showed S. `last` is the
  window's end pulled back so that every index date has a complete follow-up: last = min(end, today − 90).
- *Index date of an unexposed account* (no S in [start, last]): drawn from the exposed accounts' index dates,
  deterministically from a hash of (signal, account id). Giving every unexposed account the window's first day
  instead would hand them follow-up time from a part of the window that exposed accounts spend before their
  signal (immortal time) and compare different seasons; drawing from the exposed dates ("prescription time
  distribution matching", Zhou et al. 2005, Am J Epidemiol) puts both groups' follow-ups in the same calendar
  time. With no exposed account, the unexposed start on `start`.
- *At risk*: an account counts in its group only when it is paying at the beginning of its index date (MRR > 0
  in effect before that day's movements, as DOMAIN.md's cohorts) and, when a plan is chosen, is on that plan
  then (the plan in effect from the MRR movements: an account that upgraded is still counted on the plan it
  upgraded from). An account showing S while not paying is in neither group.
- *Outcome*: an upgrade dated in (index, index + 90 days]. A same-day upgrade does not count: within a day the
  order of the signal and the upgrade is unknown, so it cannot be said to precede it.
- rate_exposed = exposed upgraded / exposed n; rate_unexposed = unexposed upgraded / unexposed n;
  **lift** = rate_exposed / rate_unexposed (the risk ratio).
- **95% interval** (Katz log method): SE = √(1/a − 1/n₁ + 1/c − 1/n₀) with a, c the upgraded and n₁, n₀ the
  sizes of the exposed and unexposed groups; interval = exp(ln(lift) ± 1.96 · SE). When a or c is 0 the
  logarithm is undefined: 0.5 is added to each of the four cells (Haldane–Anscombe) for the lift and interval.
- **Too few to rank**: fewer than MIN_GROUP_ACCOUNTS (20) accounts in either group, or fewer than MIN_UPGRADES
  (5) upgrades in both groups together. Such signals are listed with their counts, flagged and not ranked.
- Ranked signals are ordered by the lower end of their interval (the lift the data support with 95%
  confidence), then by lift: a large lift measured on a handful of upgrades ranks below a steady one.

**Adoption** over a window: an account is *active* when it shows any engagement event in the window;
share = active accounts that used the feature / active accounts; depth = the feature's events / its distinct
users (a user is an (account, user_ref) pair; events without a user_ref count as one user of their account).

**Usage cohorts**: accounts grouped by signup month (first_purchase_on, else the day the account was created)
or by plan; month k of an account is the k-th calendar month after its signup month (k = 0 is that month).
A cell over the accounts that have reached month k by today: the share that used a feature that month, or
the median utilization of a metric that month (the month's highest value / the limit of the plan in effect at
the month's end).
"""

from __future__ import annotations

import bisect
import datetime as dt
import math
import statistics
import zlib
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal

UPGRADE_WINDOW_DAYS = 90
MIN_GROUP_ACCOUNTS = 20
"""A group (exposed or unexposed) smaller than this is too few to rank."""
MIN_UPGRADES = 5
"""Fewer upgrades than this in both groups together are too few to rank."""
Z95 = 1.959963984540054
"""The standard normal's 97.5th percentile: a two-sided 95% interval."""
DAYS_PER_MONTH = 30.4375
ZERO = Decimal("0")


# --- Dates ---------------------------------------------------------------------------------------------------


def month_start(day: dt.date) -> dt.date:
    return day.replace(day=1)


def add_months(month: dt.date, n: int) -> dt.date:
    index = month.year * 12 + month.month - 1 + n
    return dt.date(index // 12, index % 12 + 1, 1)


def month_end(month: dt.date) -> dt.date:
    return add_months(month, 1) - dt.timedelta(days=1)


def months_between(first: dt.date, last: dt.date) -> int:
    """Calendar months from `first`'s month to `last`'s: 0 within one month."""
    return (last.year - first.year) * 12 + last.month - first.month


def months_of(start: dt.date, end: dt.date) -> list[dt.date]:
    """The first day of each calendar month from `start`'s month to `end`'s."""
    return [add_months(month_start(start), k) for k in range(months_between(start, end) + 1)]


def follow_up_last_day(*, end: dt.date, today: dt.date, days: int = UPGRADE_WINDOW_DAYS) -> dt.date:
    """The last index date with a complete follow-up: min(end, today − days)."""
    return min(end, today - dt.timedelta(days=days))


# --- Lift and its interval -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Lift:
    """Upgrade counts of the exposed and unexposed groups, the risk ratio and its 95% interval (Katz)."""

    exposed_n: int
    exposed_upgraded: int
    unexposed_n: int
    unexposed_upgraded: int
    lift: float | None
    ci_low: float | None
    ci_high: float | None
    corrected: bool = False
    """True when a group had no upgrade and 0.5 was added to each cell (Haldane–Anscombe)."""

    @property
    def rate_exposed(self) -> float | None:
        """Exposed upgraded / exposed n × 100."""
        return self.exposed_upgraded / self.exposed_n * 100 if self.exposed_n else None

    @property
    def rate_unexposed(self) -> float | None:
        """Unexposed upgraded / unexposed n × 100."""
        return self.unexposed_upgraded / self.unexposed_n * 100 if self.unexposed_n else None

    @property
    def upgrades(self) -> int:
        return self.exposed_upgraded + self.unexposed_upgraded

    @property
    def too_few_to_rank(self) -> bool:
        """Fewer than 20 accounts in either group, or fewer than 5 upgrades in both together."""
        return (
            self.exposed_n < MIN_GROUP_ACCOUNTS
            or self.unexposed_n < MIN_GROUP_ACCOUNTS
            or self.upgrades < MIN_UPGRADES
            or self.lift is None
        )

    @property
    def too_few_because(self) -> str:
        """Why the signal is not ranked, in words ('' when it is)."""
        if self.exposed_n < MIN_GROUP_ACCOUNTS:
            return (
                f"{self.exposed_n} exposed account{'' if self.exposed_n == 1 else 's'} "
                f"(fewer than {MIN_GROUP_ACCOUNTS})"
            )
        if self.unexposed_n < MIN_GROUP_ACCOUNTS:
            return (
                f"{self.unexposed_n} unexposed account{'' if self.unexposed_n == 1 else 's'} "
                f"(fewer than {MIN_GROUP_ACCOUNTS})"
            )
        if self.upgrades < MIN_UPGRADES:
            return f"{self.upgrades} upgrade{'' if self.upgrades == 1 else 's'} in all (fewer than {MIN_UPGRADES})"
        if self.lift is None:
            return "no rate to compare"
        return ""


def risk_ratio(*, exposed_n: int, exposed_upgraded: int, unexposed_n: int, unexposed_upgraded: int) -> Lift:
    """Lift = (a / n₁) / (c / n₀) with its 95% interval exp(ln(lift) ± 1.96 · √(1/a − 1/n₁ + 1/c − 1/n₀)).

    a, n₁: upgraded and size of the exposed group; c, n₀: of the unexposed. With a = 0 or c = 0, 0.5 is
    added to each of the four cells (upgraded and not, in each group), so n grows by 1. Undefined (None)
    when a group is empty.
    """
    if not (0 <= exposed_upgraded <= exposed_n and 0 <= unexposed_upgraded <= unexposed_n):
        raise ValueError("upgraded accounts must be between 0 and the group's size")
    counts = {
        "exposed_n": exposed_n,
        "exposed_upgraded": exposed_upgraded,
        "unexposed_n": unexposed_n,
        "unexposed_upgraded": unexposed_upgraded,
    }
    if exposed_n == 0 or unexposed_n == 0:
        return Lift(**counts, lift=None, ci_low=None, ci_high=None)
    a, n1, c, n0 = float(exposed_upgraded), float(exposed_n), float(unexposed_upgraded), float(unexposed_n)
    corrected = a == 0 or c == 0
    if corrected:
        a, n1, c, n0 = a + 0.5, n1 + 1, c + 0.5, n0 + 1
    ratio = (a / n1) / (c / n0)
    se = math.sqrt(1 / a - 1 / n1 + 1 / c - 1 / n0)
    log_ratio = math.log(ratio)
    return Lift(
        **counts,
        lift=ratio,
        ci_low=math.exp(log_ratio - Z95 * se),
        ci_high=math.exp(log_ratio + Z95 * se),
        corrected=corrected,
    )


# --- Account histories -----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Move:
    """An MRR movement: its day, MRR before and after, plan before and after (None: not recorded)."""

    on: dt.date
    mrr_before: Decimal
    mrr_after: Decimal
    plan_before: int | None = None
    plan_after: int | None = None

    @property
    def is_upgrade(self) -> bool:
        """mrr_after > mrr_before > 0."""
        return self.mrr_after > self.mrr_before > 0


@dataclass(frozen=True)
class Timeline:
    """An account's MRR and plan over time, from its movements (date-ordered, same-day ones as recorded)."""

    account_id: int
    plan_id: int | None
    mrr: Decimal
    first_purchase_on: dt.date | None = None
    moves: tuple[Move, ...] = ()
    _days: tuple[dt.date, ...] = field(init=False, repr=False, compare=False)
    _upgrades: tuple[dt.date, ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_days", tuple(m.on for m in self.moves))
        object.__setattr__(self, "_upgrades", tuple(m.on for m in self.moves if m.is_upgrade))

    def mrr_at_beginning_of(self, day: dt.date) -> Decimal:
        """MRR in effect before `day`'s movements: after the last earlier movement; with none, 0 when the first
        purchase is on or after `day`, else what the first movement started from, else the account's MRR."""
        earlier = bisect.bisect_left(self._days, day)
        if earlier:
            return self.moves[earlier - 1].mrr_after
        if self.first_purchase_on is not None and self.first_purchase_on >= day:
            return ZERO
        return self.moves[0].mrr_before if self.moves else self.mrr

    def plan_at_beginning_of(self, day: dt.date) -> int | None:
        """The plan in effect before `day`'s movements: the first recorded of the plan after the last earlier
        movement, the plan before the next movement, the account's plan (as the selectors compute it in SQL)."""
        earlier = bisect.bisect_left(self._days, day)
        plan = self.moves[earlier - 1].plan_after if earlier else None
        if plan is None and earlier < len(self.moves):
            plan = self.moves[earlier].plan_before
        return plan if plan is not None else self.plan_id

    def plan_at_end_of(self, day: dt.date) -> int | None:
        """The plan in effect after `day`'s movements."""
        return self.plan_at_beginning_of(day + dt.timedelta(days=1))

    def at_risk_on(self, day: dt.date, plan_id: int | None = None) -> bool:
        """Paying at the beginning of `day` and, when `plan_id` is given, on that plan then."""
        if not self.moves:  # the usual account: the same MRR and plan all along, after its first purchase
            if self.mrr <= 0 or (self.first_purchase_on is not None and self.first_purchase_on >= day):
                return False
            return plan_id is None or self.plan_id == plan_id
        if self.mrr_at_beginning_of(day) <= 0:
            return False
        return plan_id is None or self.plan_at_beginning_of(day) == plan_id

    def upgraded_within(self, after: dt.date, days: int = UPGRADE_WINDOW_DAYS) -> bool:
        """An upgrade dated in (after, after + days]."""
        if not self._upgrades:
            return False
        i = bisect.bisect_right(self._upgrades, after)
        return i < len(self._upgrades) and self._upgrades[i] <= after + dt.timedelta(days=days)


# --- Signals and what follows them ---------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Signal:
    """A behaviour that may precede an upgrade. `rule` holds the rules editor's fields that ask for it."""

    key: str
    label: str
    family: str
    rule: Mapping[str, object] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class SignalLift:
    signal: Signal
    lift: Lift
    rank: int | None = None

    @property
    def too_few_to_rank(self) -> bool:
        return self.lift.too_few_to_rank


def drawn_index(signal_key: str, account_id: int, exposed_days: Sequence[dt.date]) -> dt.date:
    """The index date of an unexposed account: one of the exposed accounts' (sorted) index dates, picked by
    CRC-32 of "signal:account": the same account and signal always draw the same day."""
    return exposed_days[_draw(zlib.crc32(f"{signal_key}:".encode()), account_id, len(exposed_days))]


def _draw(key_crc: int, account_id: int, count: int) -> int:
    # CRC-32 runs on: continuing "signal:"'s CRC with the account id gives CRC-32 of "signal:account".
    return zlib.crc32(b"%d" % account_id, key_crc) % count


def signal_lift(
    signal: Signal,
    *,
    first_seen: Mapping[int, dt.date],
    timelines: Iterable[Timeline],
    start: dt.date,
    last: dt.date,
    plan_id: int | None = None,
    days: int = UPGRADE_WINDOW_DAYS,
) -> Lift:
    """The upgrade rates within `days` of the accounts that showed `signal` in [start, last] and of those that
    did not, and their lift (see the module's docstring for index dates and who is at risk).

    `first_seen` maps an account to its first day showing the signal in [start, last] (other days ignored).
    """
    exposed: list[tuple[Timeline, dt.date]] = []
    unexposed: list[Timeline] = []
    for timeline in timelines:
        day = first_seen.get(timeline.account_id)
        if day is not None and start <= day <= last:
            if timeline.at_risk_on(day, plan_id):
                exposed.append((timeline, day))
        else:
            unexposed.append(timeline)
    exposed_days = sorted(day for _, day in exposed)
    exposed_upgraded = sum(1 for timeline, day in exposed if timeline.upgraded_within(day, days))
    unexposed_n = unexposed_upgraded = 0
    key_crc, count = zlib.crc32(f"{signal.key}:".encode()), len(exposed_days)
    for timeline in unexposed:
        day = exposed_days[_draw(key_crc, timeline.account_id, count)] if count else start
        if timeline.at_risk_on(day, plan_id):
            unexposed_n += 1
            unexposed_upgraded += timeline.upgraded_within(day, days)
    return risk_ratio(
        exposed_n=len(exposed),
        exposed_upgraded=exposed_upgraded,
        unexposed_n=unexposed_n,
        unexposed_upgraded=unexposed_upgraded,
    )


def ranked(results: Iterable[SignalLift]) -> list[SignalLift]:
    """Rankable signals first, numbered by the lower end of their interval (then lift, then label), highest
    first; then the signals with too few accounts or upgrades, unnumbered, by exposed accounts."""
    results = list(results)
    rankable = sorted(
        (r for r in results if not r.too_few_to_rank),
        key=lambda r: (-(r.lift.ci_low or 0), -(r.lift.lift or 0), r.signal.label),
    )
    too_few = sorted((r for r in results if r.too_few_to_rank), key=lambda r: (-r.lift.exposed_n, r.signal.label))
    return [SignalLift(r.signal, r.lift, rank) for rank, r in enumerate(rankable, start=1)] + [
        SignalLift(r.signal, r.lift, None) for r in too_few
    ]


def logins_in_month_for(per_week: float) -> int:
    """Logins in a calendar month that make `per_week` logins a week: ⌈per_week × 30.4375 / 7⌉."""
    return math.ceil(per_week * DAYS_PER_MONTH / 7)


LOGIN_BANDS = (1, 5, 10)
"""Login activity bands, in logins a week averaged over a calendar month: 1+, 5+ and 10+."""
LOCKED_HIT_LEVELS = (1, 5)
"""Locked-feature hits in a calendar month."""
TRIAL_USE_LEVELS = (1, 3)
"""Premium features used in a trial, uses in a calendar month."""


def _humanize(key: str) -> str:
    return key.replace("_", " ").replace("-", " ")


def feature_signal(feature: str) -> Signal:
    """Used the feature (a `feature_used` event): the first such day in the window."""
    return Signal(f"feature:{feature}", f"Uses {_humanize(feature)}", "feature")


def limit_signal(metric_key: str, metric_label: str) -> Signal:
    """A usage snapshot at or over the limit of the plan in effect that day (utilization ≥ 100%)."""
    return Signal(
        f"limit:{metric_key}",
        f"{metric_label} at or over the plan limit",
        "limit",
        {"metric": metric_key, "min_utilization": 100},
    )


ANY_LIMIT = Signal("limit:any", "Any metric at or over its plan limit", "limit")


def locked_signal(hits: int) -> Signal:
    """`hits` locked-feature hits within one calendar month; the index date is the day of the last of them."""
    label = "A locked-feature hit" if hits == 1 else f"{hits}+ locked-feature hits in a month"
    return Signal(f"locked:{hits}", label, "locked", {"min_locked_feature_hits": hits})


def trial_signal(uses: int) -> Signal:
    """`uses` premium-feature uses during a trial within one calendar month."""
    label = "A premium feature used in a trial" if uses == 1 else f"{uses}+ premium-feature uses in a trial month"
    return Signal(f"trial:{uses}", label, "trial", {"min_trial_feature_uses": uses})


def login_signal(per_week: int) -> Signal:
    """Logins averaging `per_week` a week over a calendar month: ⌈per_week × 30.4375 / 7⌉ logins in it; the
    index date is the day of the login that reached the count."""
    return Signal(
        f"logins:{per_week}",
        f"Login activity: {per_week}+ a week ({logins_in_month_for(per_week)}+ logins in a month)",
        "logins",
        {"min_logins_per_week": per_week},
    )


# --- Feature adoption ------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class AccountSegment:
    """An account's segment values as shown: plan name, industry, company-size band label, region."""

    account_id: int
    plan: str
    industry: str
    size: str
    region: str

    def value(self, dimension: str) -> str:
        return getattr(self, dimension)


@dataclass(frozen=True, slots=True)
class FeatureUse:
    """One account's use of one feature in the window: its events and distinct users."""

    account_id: int
    feature: str
    events: int
    users: int


@dataclass(frozen=True, slots=True)
class Adoption:
    """A feature's adoption in a group of accounts: share = using / active × 100; depth = events / users."""

    feature: str
    using: int
    active: int
    events: int
    users: int

    @property
    def share(self) -> float | None:
        return self.using / self.active * 100 if self.active else None

    @property
    def depth(self) -> float | None:
        return self.events / self.users if self.users else None


def adoption(uses: Iterable[FeatureUse], *, active: Iterable[int], features: Iterable[str] = ()) -> list[Adoption]:
    """Each feature's adoption among the `active` accounts, most adopted first (then by name). Uses by
    accounts outside `active` do not count; `features` adds features nobody used (share 0)."""
    active = set(active)
    using: dict[str, set[int]] = defaultdict(set)
    events: dict[str, int] = defaultdict(int)
    users: dict[str, int] = defaultdict(int)
    for use in uses:
        if use.account_id not in active:
            continue
        using[use.feature].add(use.account_id)
        events[use.feature] += use.events
        users[use.feature] += use.users
    keys = set(using) | set(features)
    rows = [Adoption(f, len(using.get(f, ())), len(active), events.get(f, 0), users.get(f, 0)) for f in keys]
    return sorted(rows, key=lambda r: (-r.using, r.feature))


@dataclass(frozen=True, slots=True)
class SegmentAdoption:
    """Adoption of every feature within one value of a segment dimension (one plan, one region...)."""

    value: str
    active: int
    features: dict[str, Adoption]


def adoption_by_segment(
    uses: Sequence[FeatureUse],
    *,
    segments: Mapping[int, AccountSegment],
    active: Iterable[int],
    dimension: str,
    features: Sequence[str],
    order: Sequence[str] = (),
) -> list[SegmentAdoption]:
    """Adoption of `features` per value of `dimension` ("plan", "industry", "size" or "region"), over the active
    accounts of each value. Values in `order` come first in that order, the rest by name; '' (unknown) last."""
    members: dict[str, set[int]] = defaultdict(set)
    for account_id in active:
        segment = segments.get(account_id)
        if segment is not None:
            members[segment.value(dimension)].add(account_id)
    uses_of: dict[str, list[FeatureUse]] = defaultdict(list)
    for use in uses:
        segment = segments.get(use.account_id)
        if segment is not None:
            uses_of[segment.value(dimension)].append(use)
    position = {value: i for i, value in enumerate(order)}
    values = sorted(members, key=lambda v: (v == "", position.get(v, len(position)), v.casefold()))
    rows = []
    for value in values:
        table = {a.feature: a for a in adoption(uses_of[value], active=members[value], features=features)}
        rows.append(SegmentAdoption(value, len(members[value]), {f: table[f] for f in features}))
    return rows


def most_and_least_used(row: SegmentAdoption, *, count: int = 3) -> tuple[list[Adoption], list[Adoption]]:
    """The `count` most used features of a segment (highest share first) and the `count` least used (lowest
    first) among the rest that its accounts used at all: a feature nobody in the segment used (one its plan
    lacks, often) is not "least used". A feature is never in both lists."""
    used = sorted((a for a in row.features.values() if a.using), key=lambda a: (-(a.share or 0), a.feature))
    most = used[:count]
    least = sorted(used[count:], key=lambda a: (a.share or 0, a.feature))[:count]
    return most, least


def adoption_trend(
    *,
    months: Sequence[dt.date],
    active_by_month: Mapping[dt.date, int],
    using_by_month: Mapping[tuple[str, dt.date], int],
    features: Sequence[str],
) -> dict[str, list[float | None]]:
    """Per feature, its share in each month: accounts using it that month / accounts active that month × 100
    (None for a month without active accounts)."""
    trend = {}
    for feature in features:
        shares: list[float | None] = []
        for month in months:
            active = active_by_month.get(month, 0)
            shares.append(using_by_month.get((feature, month), 0) / active * 100 if active else None)
        trend[feature] = shares
    return trend


# --- Usage cohorts ----------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class CohortMember:
    account_id: int
    cohort: str
    signup_on: dt.date


@dataclass(frozen=True, slots=True)
class CohortRow:
    """One cohort: its key, label, size and the value of each month since signup (None: nobody measured)."""

    key: str
    label: str
    size: int
    values: tuple[float | None, ...]
    measured: tuple[int, ...]
    """Per month since signup, the accounts the value is computed over."""


def _grouped(members: Iterable[CohortMember]) -> dict[str, list[CohortMember]]:
    grouped: dict[str, list[CohortMember]] = defaultdict(list)
    for member in members:
        grouped[member.cohort].append(member)
    return grouped


def _width(members: Sequence[CohortMember], today: dt.date) -> int:
    return max((months_between(m.signup_on, today) + 1 for m in members), default=0)


def cohort_feature_shares(
    members: Iterable[CohortMember],
    *,
    used: set[tuple[int, dt.date]],
    today: dt.date,
    labels: Mapping[str, str],
    order: Sequence[str],
) -> list[CohortRow]:
    """Per cohort and month k since signup: accounts that used the feature in their month k / accounts that
    have reached month k by today × 100. `used` holds (account, first day of a month it used the feature)."""
    grouped = _grouped(members)
    rows = []
    for key in [k for k in order if k in grouped]:
        group = grouped[key]
        width = _width(group, today)
        values: list[float | None] = []
        measured: list[int] = []
        for k in range(width):
            reached = [m for m in group if months_between(m.signup_on, today) >= k]
            hits = sum(1 for m in reached if (m.account_id, add_months(month_start(m.signup_on), k)) in used)
            measured.append(len(reached))
            values.append(hits / len(reached) * 100 if reached else None)
        rows.append(CohortRow(key, labels.get(key, key), len(group), tuple(values), tuple(measured)))
    return rows


def cohort_metric_medians(
    members: Iterable[CohortMember],
    *,
    utilization: Mapping[tuple[int, dt.date], float],
    today: dt.date,
    labels: Mapping[str, str],
    order: Sequence[str],
) -> list[CohortRow]:
    """Per cohort and month k since signup: the median utilization (× 100, a percentage) over the accounts that
    have reached month k and have one that month. `utilization` maps (account, first day of month) to the
    month's highest value / the limit of the plan then."""
    grouped = _grouped(members)
    rows = []
    for key in [k for k in order if k in grouped]:
        group = grouped[key]
        width = _width(group, today)
        values: list[float | None] = []
        measured: list[int] = []
        for k in range(width):
            found = [
                utilization[(m.account_id, add_months(month_start(m.signup_on), k))]
                for m in group
                if months_between(m.signup_on, today) >= k
                and (m.account_id, add_months(month_start(m.signup_on), k)) in utilization
            ]
            measured.append(len(found))
            values.append(statistics.median(found) * 100 if found else None)
        rows.append(CohortRow(key, labels.get(key, key), len(group), tuple(values), tuple(measured)))
    return rows


@dataclass(frozen=True, slots=True)
class ComparisonMonth:
    month: int
    a: float | None
    b: float | None

    @property
    def difference(self) -> float | None:
        """b − a, in percentage points."""
        return self.b - self.a if self.a is not None and self.b is not None else None


def cohort_comparison(a: CohortRow, b: CohortRow) -> list[ComparisonMonth]:
    """The two cohorts month by month since signup, over the longer of the two."""
    width = max(len(a.values), len(b.values))

    def at(row: CohortRow, k: int) -> float | None:
        return row.values[k] if k < len(row.values) else None

    return [ComparisonMonth(k, at(a, k), at(b, k)) for k in range(width)]
