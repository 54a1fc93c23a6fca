"""The demo's older engagement: from each account's first purchase up to the recent EVENT_DAYS days, which
`opportunities.demo.account_events` fills in detail.

The insights pages read history: "what precedes upgrades" counts signals up to 90 days before today (every
signal needs 90 days of follow-up) and the usage cohorts follow accounts month by month since signup. This
history is sparser than the recent window (month by month, a few logins and feature uses a month) but tells
the same story the product is built on:

- **Adoption grows with tenure.** Each account adopts each feature in some month (a monthly chance, higher for
  more engaged accounts) and, once it has, uses it in most months after: the share of a signup cohort using a
  feature rises with the months since signup.
- **Upgrades have a run-up.** In an upgrade's run-up (RUN_UP: from 88 to 30 days before it) accounts often
  adopt automations, advanced reporting and (less often) exports, hit features their plan locks, try the next
  plan's features in a trial and log in more; accounts that never upgrade adopt those features less.
- **Some features say nothing.** Search and sharing (NEUTRAL_FEATURES) are adopted the same way by accounts
  that upgrade and those that do not, so the page shows a spread of lifts, not only winners.

Deterministic like the rest of the demo: one `demo._rng` stream per account ("history"), every day dated from
`as_of`. Bounded: about 200 rows per account over up to three years (some 100,000 for the default 500
accounts); a demo of more than BIG_DEMO_ACCOUNTS accounts gets half the login and feature volume and only the
months since HISTORY_REACH_MONTHS before as_of's month (what the insights pages show by default). External ids start
with HISTORY_EVENT_PREFIX ("demo-hist-"), never one of the recent window's ("demo-acct-...").
"""

from __future__ import annotations

import bisect
import datetime as dt
import math
import random
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from accounts.insights import add_months, month_end, month_start, months_between
from accounts.models import EngagementEvent
from opportunities.demo import (
    BASE_FEATURES,
    BIG_DEMO_ACCOUNTS,
    EVENT_DAYS,
    PREMIUM_FEATURES,
    AccountSpec,
    Move,
    Tier,
    _insert,
    _rng,
)

Kind = EngagementEvent.Kind

HISTORY_EVENT_PREFIX = "demo-hist-"
HISTORY_REACH_MONTHS = 13
"""In a big demo, history starts at most this many calendar months before as_of's month."""
RUN_UP = (30, 88)
"""An upgrade's run-up, in days before it: where the planted signals show, so an upgrade follows them within
the 90 days the insights measure."""


@dataclass(frozen=True, slots=True)
class Habit:
    """How accounts take up a feature.

    fit: share of accounts that ever adopt it on their own (× `quieter` for accounts that never upgrade);
    adopt: monthly chance such an account adopts it (× 0.5 + engagement, × the share of the month it paid);
    use: chance an adopter uses it in a later month; events: mean events in a month it is used (at least one);
    run_up: chance an upgrade's run-up brings its adoption, fit or not (0: neutral).
    """

    fit: float
    adopt: float
    use: float
    events: float
    run_up: float = 0.0
    quieter: float = 1.0


HABITS = {
    "reporting": Habit(fit=0.97, adopt=0.2, use=0.85, events=3.0),
    "dashboards": Habit(fit=0.85, adopt=0.15, use=0.8, events=2.5),
    "exports": Habit(fit=0.6, adopt=0.1, use=0.7, events=1.5, run_up=0.15),
    "automations": Habit(fit=0.45, adopt=0.1, use=0.8, events=2.5, run_up=0.3, quieter=0.75),
    "search": Habit(fit=0.6, adopt=0.12, use=0.75, events=2.0),
    "sharing": Habit(fit=0.5, adopt=0.1, use=0.7, events=1.5),
    "advanced_reporting": Habit(fit=0.5, adopt=0.1, use=0.75, events=2.0, run_up=0.35, quieter=0.75),
    "audit_log": Habit(fit=0.4, adopt=0.08, use=0.5, events=1.0),
    "sso": Habit(fit=0.5, adopt=0.15, use=0.9, events=1.0),
    "sandbox": Habit(fit=0.35, adopt=0.08, use=0.5, events=1.5),
    "custom_reporting": Habit(fit=0.4, adopt=0.1, use=0.6, events=2.0),
}
"""Every feature the demo uses (demo.BASE_FEATURES and PREMIUM_FEATURES)."""
NEUTRAL_FEATURES = ("search", "sharing")
"""Features adopted alike by accounts that upgrade and accounts that do not."""

RUN_UP_LOCKED = 0.35
"""Chance an upgrade's run-up has a burst of locked-feature hits (6–14, mostly on what the upgrade unlocks)."""
RUN_UP_TRIAL = 0.2
"""Chance an upgrade's run-up has a two-week trial of the plan it went to."""
RUN_UP_LOGINS = 0.35
"""Chance an upgrade's run-up has 1.6 to 2.8 times the usual logins."""
LOCKED_MONTHLY = 0.07
"""Monthly chance (× 0.5 + engagement) of a stray locked-feature hit or three, on a plan that locks some."""
LOCKED_BURST_MONTHLY = 0.045
"""Monthly chance of 5–8 locked-feature hits with no upgrade to follow."""
TRIAL_MONTHLY = 0.03
"""Monthly chance of trying a higher plan's features without buying it."""
TRIAL_DAYS = 14
WORKDAY_START = dt.time(7)
WORKDAY = 13 * 3600
"""Events happen from 07:00 to 19:59 UTC, as in the recent window."""


@dataclass(frozen=True, slots=True)
class RunUp:
    """An upgrade (MRR up from a paid plan) and the days before it where its signals show."""

    upgrade_on: dt.date
    tier_before: int
    tier_after: int

    @property
    def first(self) -> dt.date:
        return self.upgrade_on - dt.timedelta(days=RUN_UP[1])

    @property
    def last(self) -> dt.date:
        return self.upgrade_on - dt.timedelta(days=RUN_UP[0])

    def day(self, rng: random.Random) -> dt.date:
        return self.upgrade_on - dt.timedelta(days=rng.randint(*RUN_UP))


class _Plans:
    """The account's plan tier on any day, from its MRR movements (None: not paying)."""

    def __init__(self, moves: list[Move]) -> None:
        self.days = [m.on for m in moves]
        self.tiers = [m.tier_after if m.mrr_after > 0 else None for m in moves]

    def on(self, day: dt.date) -> int | None:
        i = bisect.bisect_right(self.days, day)
        return self.tiers[i - 1] if i else None


def _poisson(rng: random.Random, mean: float) -> int:
    """A Poisson draw (Knuth's method; a rounded normal above 30)."""
    if mean <= 0:
        return 0
    if mean > 30:
        return max(0, round(rng.gauss(mean, math.sqrt(mean))))
    limit, k, p = math.exp(-mean), 0, rng.random()
    while p > limit:
        k += 1
        p *= rng.random()
    return k


def _features(tier: int) -> tuple[list[str], list[str]]:
    """The features a tier includes and the ones it locks."""
    included = BASE_FEATURES + [f for f, t in PREMIUM_FEATURES.items() if t <= tier]
    return included, [f for f, t in PREMIUM_FEATURES.items() if t > tier]


def history_bounds(spec: AccountSpec, *, as_of: dt.date, reach: dt.date | None = None) -> tuple[dt.date, dt.date]:
    """The days of the account's older history: from its first purchase (not before `reach`) to the day before
    the recent window of EVENT_DAYS days. Empty (first > last) for a trial or an account that joined since."""
    last = as_of - dt.timedelta(days=EVENT_DAYS)
    if spec.first_purchase_on is None:
        return last + dt.timedelta(days=1), last
    first = max(spec.first_purchase_on, reach) if reach else spec.first_purchase_on
    return first, last


def account_history(
    spec: AccountSpec, *, seed: int, as_of: dt.date, tiers: list[Tier], scale: float = 1.0, reach: dt.date | None = None
) -> list[tuple[str, str, str, str, dt.datetime]]:
    """The account's engagement before the recent window, month by month while it paid (see the module's
    docstring): (external_id, kind, feature, user_ref, occurred_at), oldest first."""
    first, last = history_bounds(spec, as_of=as_of, reach=reach)
    if first > last or not spec.moves:
        return []
    rng = _rng(seed, "history", spec.index)
    plans = _Plans(spec.moves)
    top = len(tiers) - 1
    run_ups = [
        RunUp(m.on, m.tier_before, m.tier_after)
        for m in spec.moves
        if m.mrr_after > m.mrr_before > 0 and m.tier_before is not None and m.tier_after is not None
    ]
    # Engagement drifts: partly what the account shows today, partly its own past.
    e = 0.4 * spec.engagement + 0.6 * rng.uniform(0.15, 0.9)
    # Logins a month once settled in: a few for most accounts, 20 and more for the busiest.
    logins = (2 + 20 * e * e) * rng.lognormvariate(0, 0.45)
    # The same users as the recent window's (demo.account_events), the first ones the busiest.
    seat_limit = tiers[spec.usage_tier].limits.get("seats")
    pool = max(1, min(spec.employees, int(seat_limit or spec.employees), 2 + round(18 * spec.engagement)))
    users = [f"user-{k:03d}" for k in range(1, pool + 1)]
    user_weights = [1 / k for k in range(1, pool + 1)]

    # The run-ups' planted behaviour, drawn once per upgrade.
    adopted_by: dict[str, dt.date] = {}
    surges: list[tuple[dt.date, dt.date, float]] = []
    planted: list[tuple[dt.date, str, str]] = []
    for run_up in run_ups:
        included, locked = _features(run_up.tier_before)
        for feature, habit in HABITS.items():
            if habit.run_up and feature in included and rng.random() < habit.run_up:
                day = run_up.day(rng)
                adopted_by[feature] = min(adopted_by.get(feature, day), day)
        if locked and rng.random() < RUN_UP_LOCKED:
            unlocks = [f for f in locked if PREMIUM_FEATURES[f] <= run_up.tier_after] or locked
            for _ in range(rng.randint(6, 14)):
                feature = rng.choice(unlocks) if rng.random() < 0.8 else rng.choice(locked)
                planted.append((run_up.day(rng), Kind.LOCKED_FEATURE_HIT, feature))
        if rng.random() < RUN_UP_TRIAL:
            trying = [f for f, t in PREMIUM_FEATURES.items() if run_up.tier_before < t <= run_up.tier_after]
            start = run_up.upgrade_on - dt.timedelta(days=rng.randint(45, 75))
            for _ in range(rng.randint(3, 12) if trying else 0):
                planted.append(
                    (
                        start + dt.timedelta(days=rng.randint(0, TRIAL_DAYS - 1)),
                        Kind.TRIAL_FEATURE_USED,
                        rng.choice(trying),
                    )
                )
        if rng.random() < RUN_UP_LOGINS:
            surges.append((run_up.first, run_up.last, rng.uniform(1.6, 2.8)))
    # The features this account would ever take up on its own.
    fits = {f for f, habit in HABITS.items() if rng.random() < habit.fit * (1.0 if run_ups else habit.quieter)}

    drawn: list[tuple[dt.date, str, str]] = [p for p in planted if first <= p[0] <= last and plans.on(p[0]) is not None]
    adopted: dict[str, dt.date] = {}
    signup = spec.first_purchase_on
    month = month_start(first)
    while month <= last:
        days = [
            d
            for d in (month + dt.timedelta(days=k) for k in range((month_end(month) - month).days + 1))
            if first <= d <= last and plans.on(d) is not None
        ]
        month, this_month = add_months(month, 1), month
        if not days:
            continue
        tier = plans.on(days[0])
        included, locked = _features(tier)
        share = len(days) / (month_end(this_month).day)
        tenure = months_between(signup, this_month)

        # Logins: a few a month, more for engaged and longer-standing accounts, many more in a run-up.
        weights = [next((factor for lo, hi, factor in surges if lo <= d <= hi), 1.0) for d in days]
        settled = 0.6 + 0.4 * (1 - math.exp(-tenure / 3))
        mean = logins * settled * scale * sum(weights) / month_end(this_month).day
        for d in rng.choices(days, weights, k=_poisson(rng, mean)):
            drawn.append((d, Kind.LOGIN, ""))

        # Features: adopted once (by chance, or in an upgrade's run-up), then used in most months.
        for feature, habit in HABITS.items():
            if feature not in included:
                continue
            since = adopted.get(feature)
            if since is None:
                run_up_day = adopted_by.get(feature)
                if run_up_day is not None and days[0] <= run_up_day <= days[-1]:
                    since = next(d for d in days if d >= run_up_day)
                else:
                    if feature not in fits or rng.random() >= habit.adopt * (0.5 + e) * share:
                        continue
                    since = rng.choice(days)
                adopted[feature] = since
                later = [d for d in days if d >= since]
                drawn.append((since, Kind.FEATURE_USED, feature))
                count = _poisson(rng, habit.events * share * scale * len(later) / len(days))
            elif rng.random() < habit.use:
                later = days
                count = max(1, _poisson(rng, habit.events * (0.5 + e) * scale))
            else:
                continue
            drawn.extend((d, Kind.FEATURE_USED, feature) for d in rng.choices(later, k=count))

        # A stray locked-feature hit now and then; rarely a burst with no upgrade to follow.
        if locked:
            if rng.random() < LOCKED_MONTHLY * (0.5 + e) * share:
                hits = rng.choices([1, 2, 3], [6, 3, 1])[0]
                drawn.extend((rng.choice(days), Kind.LOCKED_FEATURE_HIT, rng.choice(locked)) for _ in range(hits))
            if rng.random() < LOCKED_BURST_MONTHLY * share:
                burst = rng.choice(days)
                drawn.extend(
                    (
                        min(days[-1], burst + dt.timedelta(days=rng.randint(0, 6))),
                        Kind.LOCKED_FEATURE_HIT,
                        rng.choice(locked),
                    )
                    for _ in range(rng.randint(5, 8))
                )
        # Trying the next plan's features, and not buying it.
        if tier < top and rng.random() < TRIAL_MONTHLY * share:
            trying = [f for f, t in PREMIUM_FEATURES.items() if t == tier + 1] or locked
            start = rng.choice(days)
            for _ in range(rng.randint(1, 8)):
                d = start + dt.timedelta(days=rng.randint(0, TRIAL_DAYS - 1))
                if d <= last and plans.on(d) is not None:
                    drawn.append((d, Kind.TRIAL_FEATURE_USED, rng.choice(trying)))

    who = rng.choices(users, user_weights, k=len(drawn))
    events = sorted(
        (
            dt.datetime.combine(day, WORKDAY_START, tzinfo=dt.UTC) + dt.timedelta(seconds=int(rng.random() * WORKDAY)),
            str(kind),
            feature,
            user,
        )
        for (day, kind, feature), user in zip(drawn, who, strict=True)
    )
    return [
        (f"{HISTORY_EVENT_PREFIX}{spec.external_id}-{n:05d}", kind, feature, user, at)
        for n, (at, kind, feature, user) in enumerate(events, start=1)
    ]


def history_scale(*, accounts: int, as_of: dt.date) -> tuple[float, dt.date | None]:
    """The volume factor and the earliest month of history: all of it at full volume up to BIG_DEMO_ACCOUNTS
    accounts, else half the volume since HISTORY_REACH_MONTHS months before as_of's month."""
    if accounts <= BIG_DEMO_ACCOUNTS:
        return 1.0, None
    return 0.5, add_months(month_start(as_of), -HISTORY_REACH_MONTHS)


def demo_history_seed(
    *,
    seed: int,
    as_of: dt.date,
    specs: list[AccountSpec],
    ids: dict[str, int],
    tiers: list[Tier],
    log: Callable[[str], None] | None = None,
) -> int:
    """Write every account's older engagement (account_history) in one bulk load; returns the rows written."""
    scale, reach = history_scale(accounts=len(specs), as_of=as_of)

    def rows() -> Iterator[tuple]:
        for spec in specs:
            account_id = ids[spec.external_id]
            for external_id, kind, feature, user, at in account_history(
                spec, seed=seed, as_of=as_of, tiers=tiers, scale=scale, reach=reach
            ):
                yield account_id, kind, feature, user, at, external_id

    count = _insert(EngagementEvent, ["account", "kind", "feature", "user_ref", "occurred_at", "external_id"], rows())
    if log:
        log(f"engagement history: {count}")
    return count
