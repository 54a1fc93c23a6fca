"""The rules backtest: would a rule have found the accounts that went on to upgrade? Pure functions.

For each of the last months' final days (`as_of`), among the accounts paying that day:

- flagged = the accounts the rule fires for, with indicators recomputed as of that day;
- flagged share = flagged accounts with an upgrade (an expansion movement) dated in (as_of, as_of + 90 days]
  / flagged accounts;
- base rate = paying accounts with an upgrade in the same window / paying accounts.

A rule worth its points flags accounts whose share clearly beats the base rate. The selectors
(playbooks.backtest_selectors) load the data; everything here is numbers, dates and facts in, counts out.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass
from decimal import Decimal

from accounts.cohorts import add_months, month_end, month_start
from accounts.ingest import mrr_in_effect
from accounts.models import MrrMovement
from playbooks.rules import AccountFacts, RuleSpec, evaluate

BACKTEST_MONTHS = 6
UPGRADE_WINDOW_DAYS = 90


def month_ends(today: dt.date, months: int = BACKTEST_MONTHS) -> list[dt.date]:
    """The last day of each of the `months` calendar months before today's, oldest first.

    month_ends(15 Jul 2026, 2) = [31 May 2026, 30 Jun 2026].
    """
    this_month = month_start(today)
    return [month_end(add_months(this_month, -k)) for k in range(months, 0, -1)]


@dataclass(frozen=True, slots=True)
class Move:
    """An MRR movement, as `accounts.ingest.mrr_in_effect` reads them."""

    on: dt.date
    kind: str
    mrr_before: Decimal
    mrr_after: Decimal
    plan_before: int | None
    plan_after: int | None


@dataclass(frozen=True, slots=True)
class History:
    """An account today and its MRR movements, date-ordered."""

    account_id: int
    plan_id: int | None
    mrr: Decimal
    first_purchase_on: dt.date | None
    moves: tuple[Move, ...]

    def state_on(self, day: dt.date) -> tuple[Decimal, int | None]:
        """(MRR, plan id) in effect at the end of `day`: after the last movement dated on or before it; before
        the first movement, what that movement started from; with none later, the account's current state."""
        mrr, plan_id = mrr_in_effect(self.moves, day, current=(self.mrr, self.plan_id))
        if self.first_purchase_on is not None and self.first_purchase_on > day:
            return Decimal(0), plan_id
        return mrr, plan_id

    def upgraded_within(self, as_of: dt.date, days: int = UPGRADE_WINDOW_DAYS) -> bool:
        """An expansion movement dated in (as_of, as_of + days]."""
        until = as_of + dt.timedelta(days=days)
        return any(m.kind == MrrMovement.Kind.EXPANSION and as_of < m.on <= until for m in self.moves)


def in_segment(rule: RuleSpec, *, plan_id: int | None, industry: str, region: str) -> bool:
    """The rule's plan, industry and region filters (empty = any); an account outside them cannot fire it."""
    return (
        (not rule.plan_ids or plan_id in rule.plan_ids)
        and (not rule.industries or industry in rule.industries)
        and (not rule.regions or region in rule.regions)
    )


@dataclass(frozen=True, slots=True)
class BacktestMonth:
    as_of: dt.date
    paying: int
    """Accounts paying at the end of as_of: the population of both shares."""
    flagged: int
    flagged_upgraded: int
    upgraded: int
    """Paying accounts (flagged or not) with an upgrade in the window."""
    observed_days: int
    """Days of the 90-day window already past; fewer means later upgrades may still come."""
    measured: int
    """Paying accounts in the rule's segment with data for it that day (usage of its metric, or engagement
    events for a rule on engagement only): none means the history does not reach back that far."""

    @property
    def flagged_share(self) -> float | None:
        """flagged_upgraded / flagged; None when the rule flagged nobody."""
        return self.flagged_upgraded / self.flagged if self.flagged else None

    @property
    def base_rate(self) -> float | None:
        """upgraded / paying; None without paying accounts."""
        return self.upgraded / self.paying if self.paying else None

    @property
    def lift(self) -> float | None:
        """flagged share / base rate: 2.0 = flagged accounts upgraded twice as often as all accounts."""
        if self.flagged_share is None or not self.base_rate:
            return None
        return self.flagged_share / self.base_rate

    @property
    def window_complete(self) -> bool:
        return self.observed_days >= UPGRADE_WINDOW_DAYS


def backtest_month(
    *,
    rule: RuleSpec,
    as_of: dt.date,
    today: dt.date,
    paying: int,
    upgraded: Collection[int],
    facts: Iterable[AccountFacts],
    measured: int,
) -> BacktestMonth:
    """One month of the backtest from the facts of paying accounts as of `as_of` (accounts outside the rule's
    segment may be left out: they cannot fire) and the ids of the paying accounts that upgraded in the window."""
    flagged = {f.account_id for f in facts if evaluate(rule, f) is not None}
    return BacktestMonth(
        as_of=as_of,
        paying=paying,
        flagged=len(flagged),
        flagged_upgraded=len(flagged & set(upgraded)),
        upgraded=len(upgraded),
        observed_days=max(0, min(UPGRADE_WINDOW_DAYS, (today - as_of).days)),
        measured=measured,
    )


def _pct(ratio: float | None) -> float | None:
    return None if ratio is None else round(ratio * 100, 1)


def chart_data(months: Sequence[BacktestMonth]) -> dict:
    """The backtest chart's data: per month, the flagged accounts (bars) and both upgrade shares in percent."""
    return {
        "months": [m.as_of.isoformat() for m in months],
        "labels": [f"{m.as_of:%b %Y}" for m in months],
        "flagged": [m.flagged for m in months],
        "flagged_share": [_pct(m.flagged_share) for m in months],
        "base_rate": [_pct(m.base_rate) for m in months],
        "complete": [m.window_complete for m in months],
        "measured": [m.measured for m in months],
    }
