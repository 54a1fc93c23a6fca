"""Reads for the experiment pages: the list, and the results of one experiment per arm with the statistics.

What counts as a conversion. The control group gets no touches, so no win can ever be credited to it; a rate
of credited wins would be zero for control by construction and every variant would "beat" it. The comparison
between arms therefore uses one definition for every arm, intention-to-treat:

    an assigned account converted when it has an upgrade (an accounts.MrrMovement of kind expansion) dated
    from the day of its assignment to `attribution_days` days after it, both days included.

Rates, Wilson intervals, lift, p-values and the winner are computed on that. Expansion MRR is the sum of
those upgrades' deltas. Next to it, each variant shows its credited wins: assigned accounts with a PlayCredit
for this play and that variant won within the same window after assignment, and the credited MRR. Credits say
which touch got the win (attribution); upgrades say whether the arm did better than doing nothing (the test).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from decimal import Decimal

from django.db.models import (
    Count,
    DateField,
    DateTimeField,
    DecimalField,
    Exists,
    ExpressionWrapper,
    F,
    OuterRef,
    Q,
    QuerySet,
    Subquery,
    Sum,
    Value,
)
from django.db.models.functions import Coalesce, TruncDate

from accounts.models import MrrMovement
from playbooks.experiments import (
    ArmComparison,
    lift,
    pick_winner,
    rate,
    sample_size_per_arm,
    two_proportion_p_value,
    wilson_interval,
)
from playbooks.models import Assignment, Experiment, PlayCredit, Variant

MONEY = DecimalField(max_digits=14, decimal_places=2)


def experiments_for_list() -> QuerySet[Experiment]:
    """Every experiment, newest first, with its play, its number of variants and of assigned accounts."""
    return (
        Experiment.objects.select_related("play")
        .annotate(
            variant_count=Count("variants", distinct=True),
            assigned_count=Subquery(
                Assignment.objects.filter(experiment=OuterRef("pk"))
                .order_by()
                .values("experiment")
                .annotate(n=Count("pk"))
                .values("n")
            ),
        )
        .order_by("-created_at", "-pk")
    )


@dataclass
class ArmResult:
    """One arm of the results table; variant None is the control group."""

    variant: Variant | None
    assigned: int = 0
    upgraded: int = 0
    expansion_mrr: Decimal = Decimal("0.00")
    credited: int = 0
    credited_mrr: Decimal = Decimal("0.00")
    rate: float | None = None
    interval: tuple[float, float] | None = None
    lift: float | None = None
    p_value: float | None = None
    is_winner: bool = False
    # Where the interval and the rate sit on the chart's scale, in percent of its width.
    bar_left: float = 0.0
    bar_width: float = 0.0
    bar_point: float = 0.0

    @property
    def is_control(self) -> bool:
        return self.variant is None

    @property
    def label(self) -> str:
        return "Control (holdout)" if self.variant is None else self.variant.name


@dataclass
class ExperimentResults:
    experiment: Experiment
    control: ArmResult
    variants: list[ArmResult]
    winner: ArmResult | None
    alpha: float
    total_assigned: int
    # With no winner: accounts per arm needed to detect the best variant's observed difference (80% power).
    needed_per_arm: int | None = None
    leader: ArmResult | None = None
    arms: list[ArmResult] = field(default_factory=list)

    @property
    def interval_max(self) -> float:
        """The top of the chart's scale: the widest upper bound, rounded up to a tenth (at least 10%)."""
        highest = max((a.interval[1] for a in self.arms if a.interval), default=0.0)
        return max(0.1, min(1.0, (int(highest * 10) + 1) / 10))


def _upgrades(experiment: Experiment) -> QuerySet[MrrMovement]:
    """Upgrades of the outer assignment's account dated from its day of assignment to `attribution_days`
    later, both included (the outer query annotates `assigned_on` and `window_end_on`)."""
    return MrrMovement.objects.filter(
        account_id=OuterRef("account_id"),
        kind=MrrMovement.Kind.EXPANSION,
        occurred_on__gte=OuterRef("assigned_on"),
        occurred_on__lte=OuterRef("window_end_on"),
    )


def _credits(experiment: Experiment) -> QuerySet[PlayCredit]:
    return PlayCredit.objects.filter(
        account_id=OuterRef("account_id"),
        play_id=experiment.play_id,
        variant_id=OuterRef("variant_id"),
        won_at__gte=OuterRef("assigned_at"),
        won_at__lte=ExpressionWrapper(
            OuterRef("assigned_at") + dt.timedelta(days=experiment.attribution_days), output_field=DateTimeField()
        ),
    )


def _sum_of(queryset: QuerySet, expression) -> Subquery:
    """Σ expression over the correlated rows, 0 when none (one scalar subquery)."""
    return Coalesce(
        Subquery(
            queryset.order_by().values("account_id").annotate(total=Sum(expression)).values("total"),
            output_field=MONEY,
        ),
        Value(Decimal("0.00")),
        output_field=MONEY,
    )


def experiment_results(*, experiment: Experiment) -> ExperimentResults:
    """Accounts, conversions, rate with its 95% Wilson interval, expansion MRR, credited wins, lift and
    p-value against control per arm, and the winner (see the module docstring for the definitions).

    Two queries whatever the number of assignments: the variants, and one aggregate over the assignments
    grouped by arm with correlated subqueries for upgrades and credits.
    """
    variants = list(experiment.variants.order_by("pk"))
    upgrades = _upgrades(experiment)
    credits = _credits(experiment)
    rows = (
        Assignment.objects.filter(experiment=experiment)
        .annotate(
            assigned_on=TruncDate("assigned_at"),
            window_end_on=ExpressionWrapper(
                TruncDate("assigned_at") + dt.timedelta(days=experiment.attribution_days), output_field=DateField()
            ),
        )
        .order_by()
        .values("variant_id")
        .annotate(
            assigned=Count("pk"),
            upgraded=Count("pk", filter=Q(Exists(upgrades))),
            expansion_mrr=Sum(_sum_of(upgrades, F("mrr_after") - F("mrr_before")), output_field=MONEY),
            credited=Count("pk", filter=Q(Exists(credits))),
            credited_mrr=Sum(_sum_of(credits, F("mrr_delta")), output_field=MONEY),
        )
    )
    by_variant = {row["variant_id"]: row for row in rows}

    def arm(variant: Variant | None) -> ArmResult:
        row = by_variant.get(variant.pk if variant else None, {})
        result = ArmResult(
            variant=variant,
            assigned=row.get("assigned", 0),
            upgraded=row.get("upgraded", 0),
            expansion_mrr=Decimal(row.get("expansion_mrr") or 0).quantize(Decimal("0.01")),
            credited=row.get("credited", 0) if variant else 0,
            credited_mrr=Decimal((row.get("credited_mrr") if variant else 0) or 0).quantize(Decimal("0.01")),
        )
        result.rate = rate(result.upgraded, result.assigned)
        result.interval = wilson_interval(result.upgraded, result.assigned)
        return result

    control = arm(None)
    arms = [arm(v) for v in variants]
    for a in arms:
        a.lift = lift(a.rate, control.rate)
        a.p_value = two_proportion_p_value(a.upgraded, a.assigned, control.upgraded, control.assigned)
    verdict = pick_winner(
        control_conversions=control.upgraded,
        control_n=control.assigned,
        variants=[
            ArmComparison(variant_id=a.variant.pk, conversions=a.upgraded, n=a.assigned, p_value=a.p_value)
            for a in arms
        ],
    )
    winner = next((a for a in arms if a.variant.pk == verdict.winner), None)
    if winner is not None:
        winner.is_winner = True
    results = ExperimentResults(
        experiment=experiment,
        control=control,
        variants=arms,
        winner=winner,
        alpha=verdict.alpha,
        total_assigned=control.assigned + sum(a.assigned for a in arms),
        arms=[control, *arms],
    )
    scale = results.interval_max
    for a in results.arms:
        if a.interval is not None:
            a.bar_left = round(a.interval[0] / scale * 100, 2)
            a.bar_width = round((a.interval[1] - a.interval[0]) / scale * 100, 2)
            a.bar_point = round(a.rate / scale * 100, 2)
    if winner is None:
        measured = [a for a in arms if a.rate is not None]
        if measured and control.rate is not None:
            results.leader = max(measured, key=lambda a: (a.rate, -(a.p_value or 1)))
            results.needed_per_arm = sample_size_per_arm(control.rate, results.leader.rate, alpha=verdict.alpha)
    return results
