"""Revenue metrics of a period, exactly as DOMAIN.md ("Metrics") defines them: pure math, no DB, no clock.

The period `[start, end]` includes both days. Every figure but ARPU is computed over the **cohort**: the
accounts paying at the beginning of `start` (MRR > 0 in effect before that day's movements). Movements of
accounts that start paying during the period do not count.

MRR is monthly everywhere: `Account.mrr`, `MrrMovement.mrr_before` and `mrr_after` already hold an annual
plan as annual price / 12 (see `Plan.annual_mrr`, the Stripe and demo imports), so no figure converts again.

Each figure comes with its formula, the inputs it was computed from and the rows behind it (for a
drill-down), so a page can explain every number it shows. Money is rounded to cents and percentages to two
decimals (112.5 means 112.5 %) only at the end: a figure built on another (NDR, LTV) uses the exact value.
"""

from __future__ import annotations

import datetime as dt
import statistics
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal
from typing import Literal

CENT = Decimal("0.01")
ZERO = Decimal("0")
HUNDRED = Decimal("100")
DAYS_PER_MONTH = Decimal("30.4375")
"""The average month: 365.25 / 12 days."""

Kind = Literal["money", "percent", "count", "days"]


@dataclass(frozen=True, slots=True)
class Movement:
    """An MRR change of an account on a day (monthly MRR)."""

    account_id: int
    on: dt.date
    mrr_before: Decimal
    mrr_after: Decimal

    @property
    def is_upgrade(self) -> bool:
        return self.mrr_after > self.mrr_before > 0

    @property
    def is_downgrade(self) -> bool:
        return 0 < self.mrr_after < self.mrr_before

    @property
    def is_churn(self) -> bool:
        return self.mrr_before > 0 and self.mrr_after == 0

    @property
    def is_reactivation(self) -> bool:
        return self.mrr_before == 0 and self.mrr_after > 0


@dataclass(frozen=True, slots=True)
class RevenueAccount:
    """What the formulas need of an account: its first purchase and its current (monthly) MRR."""

    account_id: int
    first_purchase_on: dt.date | None
    mrr: Decimal


@dataclass(frozen=True, slots=True)
class Row:
    """One line of a drill-down: an account, and the movement (or the MRR at start and end) behind a figure."""

    account_id: int
    on: dt.date | None
    mrr_before: Decimal
    mrr_after: Decimal
    days: int | None = None


@dataclass(frozen=True, slots=True)
class Input:
    label: str
    value: Decimal | int | None
    kind: Kind


@dataclass(frozen=True, slots=True)
class Figure:
    """A figure as a page shows it: value, formula, inputs and the rows behind it."""

    key: str
    label: str
    kind: Kind
    value: Decimal | int | None
    formula: str
    inputs: tuple[Input, ...]
    rows: tuple[Row, ...]
    rows_are_movements: bool
    """True: each row is a movement (its date and MRR before/after); False: an account at start and at end."""


@dataclass(frozen=True)
class RevenueMetrics:
    """The figures of a period, their inputs and the rows behind them."""

    start: dt.date
    end: dt.date
    days: int
    customers_at_start: int
    mrr_at_start: Decimal
    cohort_mrr_at_end: Decimal
    upgraded_customers: int
    upgrade_count: int
    conversion_rate: Decimal | None
    expansion_mrr: Decimal
    reactivation_mrr: Decimal
    contraction_mrr: Decimal
    churned_mrr: Decimal
    ndr: Decimal | None
    avg_upgrade_value: Decimal | None
    first_upgrade_count: int
    time_to_upsell_days_median: Decimal | None
    time_to_upsell_days_mean: Decimal | None
    paying_at_end: int
    paying_mrr_at_end: Decimal
    arpu: Decimal | None
    churned_customers: int
    monthly_churn_rate: Decimal | None
    ltv: Decimal | None
    cohort_rows: tuple[Row, ...] = field(repr=False)
    """Each cohort account: MRR at the beginning of `start` -> MRR at the end of `end`."""
    upgrade_rows: tuple[Row, ...] = field(repr=False)
    reactivation_rows: tuple[Row, ...] = field(repr=False)
    contraction_rows: tuple[Row, ...] = field(repr=False)
    churn_rows: tuple[Row, ...] = field(repr=False)
    first_upgrade_rows: tuple[Row, ...] = field(repr=False)
    """Each cohort account's first-ever upgrade when it falls in the period, with days since first purchase."""
    paying_rows: tuple[Row, ...] = field(repr=False)
    """Every account paying at the end of `end`: MRR at the beginning of `start` -> MRR at the end of `end`."""

    def as_dict(self) -> dict:
        """The figures under the API's names (dates and Decimals as they are)."""
        return {"start": self.start, "end": self.end, **{key: getattr(self, key) for key in FIGURE_KEYS}}

    def figures(self) -> list[Figure]:
        """Every figure with its formula, its inputs and its rows, in the order a page shows them."""
        start_in = Input("Customers at start", self.customers_at_start, "count")
        mrr_in = Input("MRR at start", self.mrr_at_start, "money")
        expansion_in = Input("Expansion MRR", self.expansion_mrr, "money")
        upgrades_in = Input("Upgrades", self.upgrade_count, "count")
        days_in = Input("Days in period", self.days, "count")
        churned_in = Input("Cohort accounts that churned", self.churned_customers, "count")
        arpu_in = Input("ARPU", self.arpu, "money")
        rate_in = Input("Monthly churn rate (%)", self.monthly_churn_rate, "percent")
        return [
            Figure(
                "customers_at_start",
                "Customers at start",
                "count",
                self.customers_at_start,
                "Accounts paying at the beginning of the first day (MRR > 0 before that day's movements): "
                "the cohort every figure but ARPU is computed over",
                (),
                self.cohort_rows,
                False,
            ),
            Figure(
                "mrr_at_start",
                "MRR at start",
                "money",
                self.mrr_at_start,
                "Σ MRR of the cohort at the beginning of the first day",
                (start_in,),
                self.cohort_rows,
                False,
            ),
            Figure(
                "upgraded_customers",
                "Upgraded customers",
                "count",
                self.upgraded_customers,
                "Cohort accounts with at least one upgrade (0 < MRR before < MRR after) in the period",
                (start_in, upgrades_in),
                self.upgrade_rows,
                True,
            ),
            Figure(
                "conversion_rate",
                "Upsell conversion rate",
                "percent",
                self.conversion_rate,
                "Upgraded customers / customers at start × 100",
                (Input("Upgraded customers", self.upgraded_customers, "count"), start_in),
                self.upgrade_rows,
                True,
            ),
            Figure(
                "expansion_mrr",
                "Expansion MRR",
                "money",
                self.expansion_mrr,
                "Σ (MRR after − MRR before) over the cohort's upgrades in the period",
                (upgrades_in,),
                self.upgrade_rows,
                True,
            ),
            Figure(
                "reactivation_mrr",
                "Reactivation MRR",
                "money",
                self.reactivation_mrr,
                "Σ MRR after over the cohort's moves from 0 back to paying in the period",
                (Input("Reactivations", len(self.reactivation_rows), "count"),),
                self.reactivation_rows,
                True,
            ),
            Figure(
                "contraction_mrr",
                "Contraction MRR",
                "money",
                self.contraction_mrr,
                "Σ (MRR before − MRR after) over the cohort's downgrades (0 < MRR after < MRR before) in the period",
                (Input("Downgrades", len(self.contraction_rows), "count"),),
                self.contraction_rows,
                True,
            ),
            Figure(
                "churned_mrr",
                "Churned MRR",
                "money",
                self.churned_mrr,
                "Σ MRR before over the cohort's moves to MRR 0 in the period",
                (Input("Churn movements", len(self.churn_rows), "count"),),
                self.churn_rows,
                True,
            ),
            Figure(
                "ndr",
                "Net dollar retention",
                "percent",
                self.ndr,
                "(MRR at start + expansion + reactivation − contraction − churned) / MRR at start × 100 "
                "= the cohort's MRR at the end / its MRR at start × 100",
                (
                    mrr_in,
                    expansion_in,
                    Input("Reactivation MRR", self.reactivation_mrr, "money"),
                    Input("Contraction MRR", self.contraction_mrr, "money"),
                    Input("Churned MRR", self.churned_mrr, "money"),
                    Input("Cohort MRR at end", self.cohort_mrr_at_end, "money"),
                ),
                self.cohort_rows,
                False,
            ),
            Figure(
                "avg_upgrade_value",
                "Average upgrade value",
                "money",
                self.avg_upgrade_value,
                "Expansion MRR / number of upgrades in the period",
                (expansion_in, upgrades_in),
                self.upgrade_rows,
                True,
            ),
            Figure(
                "time_to_upsell_days_median",
                "Time to upsell (median)",
                "days",
                self.time_to_upsell_days_median,
                "Median of the days from first purchase to the first-ever upgrade, over cohort accounts whose "
                "first upgrade falls in the period",
                (Input("First upgrades in the period", self.first_upgrade_count, "count"),),
                self.first_upgrade_rows,
                True,
            ),
            Figure(
                "time_to_upsell_days_mean",
                "Time to upsell (mean)",
                "days",
                self.time_to_upsell_days_mean,
                "Mean of the days from first purchase to the first-ever upgrade, over cohort accounts whose "
                "first upgrade falls in the period",
                (Input("First upgrades in the period", self.first_upgrade_count, "count"),),
                self.first_upgrade_rows,
                True,
            ),
            Figure(
                "arpu",
                "ARPU",
                "money",
                self.arpu,
                "MRR of all paying accounts at the end of the last day / their number",
                (
                    Input("MRR of paying accounts at end", self.paying_mrr_at_end, "money"),
                    Input("Paying accounts at end", self.paying_at_end, "count"),
                ),
                self.paying_rows,
                False,
            ),
            Figure(
                "monthly_churn_rate",
                "Monthly churn rate",
                "percent",
                self.monthly_churn_rate,
                "Cohort accounts that churned / customers at start / (days in period / 30.4375) × 100",
                (churned_in, start_in, days_in),
                self.churn_rows,
                True,
            ),
            Figure(
                "ltv",
                "LTV",
                "money",
                self.ltv,
                "ARPU / monthly churn rate (the rate as a fraction: 2.5 % is 0.025)",
                (arpu_in, rate_in),
                self.churn_rows,
                True,
            ),
        ]

    def figure(self, key: str) -> Figure | None:
        return next((f for f in self.figures() if f.key == key), None)


FIGURE_KEYS = (
    "customers_at_start",
    "mrr_at_start",
    "upgraded_customers",
    "conversion_rate",
    "expansion_mrr",
    "reactivation_mrr",
    "contraction_mrr",
    "churned_mrr",
    "ndr",
    "avg_upgrade_value",
    "time_to_upsell_days_median",
    "time_to_upsell_days_mean",
    "arpu",
    "monthly_churn_rate",
    "ltv",
)
"""The figures, under the names the API answers with."""


def _cents(value: Decimal) -> Decimal:
    return value.quantize(CENT, rounding=ROUND_HALF_UP)


def _ratio_pct(numerator: Decimal | int, denominator: Decimal | int) -> Decimal | None:
    """numerator / denominator × 100, to two decimals; None when the denominator is 0."""
    if not denominator:
        return None
    return _cents(Decimal(numerator) * HUNDRED / Decimal(denominator))


class _History:
    """An account's movements in date order (same-day movements in the order given)."""

    def __init__(self, account: RevenueAccount, moves: list[Movement]):
        self.account = account
        self.moves = sorted(moves, key=lambda m: m.on)  # sorted() is stable: same-day order is kept

    def _fallback(self, paid_from: dt.date) -> Decimal:
        # No movement up to the day: not yet a customer if the first purchase comes later; otherwise what the
        # first movement started from, or (no movement at all) the account's current MRR.
        first = self.account.first_purchase_on
        if first is not None and first >= paid_from:
            return ZERO
        if self.moves:
            return self.moves[0].mrr_before
        return self.account.mrr

    def mrr_at_beginning_of(self, day: dt.date) -> Decimal:
        """MRR in effect at the beginning of `day`, before that day's movements."""
        earlier = [m for m in self.moves if m.on < day]
        return earlier[-1].mrr_after if earlier else self._fallback(day)

    def mrr_at_end_of(self, day: dt.date) -> Decimal:
        """MRR in effect at the end of `day`, after that day's movements."""
        done = [m for m in self.moves if m.on <= day]
        if done:
            return done[-1].mrr_after
        first = self.account.first_purchase_on
        if first is not None and first > day:
            return ZERO
        return self.moves[0].mrr_before if self.moves else self.account.mrr

    def first_purchase_on(self) -> dt.date | None:
        """The account's first purchase; without one recorded, its first movement to a paying MRR."""
        if self.account.first_purchase_on is not None:
            return self.account.first_purchase_on
        return next((m.on for m in self.moves if m.is_reactivation), None)

    def first_upgrade(self) -> Movement | None:
        return next((m for m in self.moves if m.is_upgrade), None)


def revenue_metrics_compute(
    *, start: dt.date, end: dt.date, accounts: Iterable[RevenueAccount], movements: Iterable[Movement]
) -> RevenueMetrics:
    """Every revenue metric of `[start, end]` (both days included), by the formulas of DOMAIN.md.

    `movements` is the whole history of the accounts (MRR at start and first-ever upgrades look before
    `start`); movements of accounts missing from `accounts` are ignored. Same-day movements count in the
    order given.

    - cohort = accounts with MRR > 0 at the beginning of `start`; MRR at start = Σ their MRR then
    - expansion = Σ (after − before) over the cohort's upgrades (after > before > 0) in the period
    - reactivation = Σ after over the cohort's movements 0 -> paying in the period
    - contraction = Σ (before − after) over the cohort's downgrades (0 < after < before) in the period
    - churned = Σ before over the cohort's movements to 0 in the period
    - NDR = (MRR at start + expansion + reactivation − contraction − churned) / MRR at start × 100
      (null when MRR at start is 0)
    - conversion rate = cohort accounts with ≥ 1 upgrade in the period / cohort size × 100
    - average upgrade value = expansion / number of upgrades (null when none)
    - time to upsell = median and mean, over cohort accounts whose first-ever upgrade falls in the period,
      of the days from first purchase to that upgrade (null when none)
    - ARPU = MRR of all paying accounts at the end of `end` / their number (null when none)
    - monthly churn rate = cohort accounts with ≥ 1 movement to 0 in the period / cohort size
      / (days in period / 30.4375), as a percentage (null when the cohort is empty)
    - LTV = ARPU / monthly churn rate, the rate as a fraction (null when no churn or no ARPU)
    """
    if end < start:
        raise ValueError("end is before start")
    days = (end - start).days + 1
    moves_of: dict[int, list[Movement]] = defaultdict(list)
    for movement in movements:
        moves_of[movement.account_id].append(movement)
    histories = [_History(account, moves_of.get(account.account_id, [])) for account in accounts]

    cohort_rows: list[Row] = []
    paying_rows: list[Row] = []
    upgrades: list[Movement] = []
    reactivations: list[Movement] = []
    contractions: list[Movement] = []
    churns: list[Movement] = []
    first_upgrade_rows: list[Row] = []
    for history in histories:
        account_id = history.account.account_id
        at_start = history.mrr_at_beginning_of(start)
        at_end = history.mrr_at_end_of(end)
        if at_end > 0:
            paying_rows.append(Row(account_id, None, at_start, at_end))
        if at_start <= 0:
            continue
        cohort_rows.append(Row(account_id, None, at_start, at_end))
        for m in history.moves:
            if not start <= m.on <= end:
                continue
            if m.is_upgrade:
                upgrades.append(m)
            elif m.is_reactivation:
                reactivations.append(m)
            elif m.is_downgrade:
                contractions.append(m)
            elif m.is_churn:
                churns.append(m)
        first = history.first_upgrade()
        first_purchase = history.first_purchase_on()
        if first is not None and start <= first.on <= end and first_purchase is not None:
            first_upgrade_rows.append(
                Row(account_id, first.on, first.mrr_before, first.mrr_after, (first.on - first_purchase).days)
            )

    customers = len(cohort_rows)
    mrr_at_start = sum((r.mrr_before for r in cohort_rows), ZERO)
    expansion = sum((m.mrr_after - m.mrr_before for m in upgrades), ZERO)
    reactivation = sum((m.mrr_after for m in reactivations), ZERO)
    contraction = sum((m.mrr_before - m.mrr_after for m in contractions), ZERO)
    churned = sum((m.mrr_before for m in churns), ZERO)
    upgraded = len({m.account_id for m in upgrades})
    churned_customers = len({m.account_id for m in churns})

    ndr = _ratio_pct(mrr_at_start + expansion + reactivation - contraction - churned, mrr_at_start)
    waits = [r.days for r in first_upgrade_rows]
    paying_mrr = sum((r.mrr_after for r in paying_rows), ZERO)
    arpu = paying_mrr / len(paying_rows) if paying_rows else None
    churn_fraction = (
        Decimal(churned_customers) / Decimal(customers) / (Decimal(days) / DAYS_PER_MONTH) if customers else None
    )
    ltv = arpu / churn_fraction if arpu is not None and churn_fraction else None

    return RevenueMetrics(
        start=start,
        end=end,
        days=days,
        customers_at_start=customers,
        mrr_at_start=_cents(mrr_at_start),
        cohort_mrr_at_end=_cents(sum((r.mrr_after for r in cohort_rows), ZERO)),
        upgraded_customers=upgraded,
        upgrade_count=len(upgrades),
        conversion_rate=_ratio_pct(upgraded, customers),
        expansion_mrr=_cents(expansion),
        reactivation_mrr=_cents(reactivation),
        contraction_mrr=_cents(contraction),
        churned_mrr=_cents(churned),
        ndr=ndr,
        avg_upgrade_value=_cents(expansion / len(upgrades)) if upgrades else None,
        first_upgrade_count=len(waits),
        time_to_upsell_days_median=_cents(Decimal(str(statistics.median(waits)))) if waits else None,
        time_to_upsell_days_mean=_cents(Decimal(sum(waits)) / len(waits)) if waits else None,
        paying_at_end=len(paying_rows),
        paying_mrr_at_end=_cents(paying_mrr),
        arpu=_cents(arpu) if arpu is not None else None,
        churned_customers=churned_customers,
        monthly_churn_rate=_cents(churn_fraction * HUNDRED) if churn_fraction is not None else None,
        ltv=_cents(ltv) if ltv is not None else None,
        cohort_rows=tuple(cohort_rows),
        upgrade_rows=_rows(upgrades),
        reactivation_rows=_rows(reactivations),
        contraction_rows=_rows(contractions),
        churn_rows=_rows(churns),
        first_upgrade_rows=tuple(first_upgrade_rows),
        paying_rows=tuple(paying_rows),
    )


def _rows(movements: Sequence[Movement]) -> tuple[Row, ...]:
    return tuple(Row(m.account_id, m.on, m.mrr_before, m.mrr_after) for m in movements)
