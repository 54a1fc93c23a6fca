"""What billing tells us about opportunities: an upgrade closes the account's open opportunity as won."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

from django.db import transaction
from django.db.models import BigIntegerField, Case, DecimalField, F, Value, When
from django.db.models.functions import Cast
from django.dispatch import receiver
from django.utils import timezone

from accounts.ingest import mrr_expanded
from accounts.models import MrrMovement, Plan
from opportunities.models import Opportunity, OpportunityEvent, Outcome, Stage
from opportunities.notifications import billing_wins_notify
from playbooks.experiment_services import Win, play_credits_record


def opportunities_close_won_by_billing(*, movements: Sequence[MrrMovement], at: dt.datetime) -> list[int]:
    """Close as won the open opportunity of each account with an upgrade (an expansion movement).

    won: stage close, closed_at = at, actual MRR delta = mrr_after − mrr_before, target plan = the plan
    upgraded to (kept when billing named none), version + 1, and a `closed` event with no actor saying the
    billing system closed it. An upgrade dated before the opportunity was identified is not its doing and
    leaves it open. With several upgrades of one account, the latest counts. Each win is credited to the play
    that touched the account first (playbooks.experiment_services.play_credits_record). Returns the closed ids.
    Queries: the open opportunities (locked), one update, one insert of events, three for the credits.
    """
    latest: dict[int, MrrMovement] = {}
    for m in movements:
        if m.kind == MrrMovement.Kind.EXPANSION and (
            m.account_id not in latest or m.occurred_on >= latest[m.account_id].occurred_on
        ):
            latest[m.account_id] = m
    if not latest:
        return []
    with transaction.atomic(savepoint=False):
        candidates = [
            o
            for o in Opportunity.objects.select_for_update()
            .filter(account_id__in=latest, outcome=Outcome.OPEN)
            .order_by("pk")
            if latest[o.account_id].occurred_on >= timezone.localdate(o.identified_at)
        ]
        if not candidates:
            return []
        ids = [o.pk for o in candidates]
        delta = {o.pk: latest[o.account_id].delta for o in candidates}
        plan = {o.pk: latest[o.account_id].plan_after_id or o.target_plan_id for o in candidates}
        Opportunity.objects.filter(pk__in=ids).update(
            outcome=Outcome.WON,
            stage=Stage.CLOSE,
            closed_at=at,
            stage_entered_at=Case(When(stage=Stage.CLOSE, then=F("stage_entered_at")), default=Value(at)),
            actual_mrr_delta=Case(
                *[When(pk=pk, then=Value(d)) for pk, d in delta.items()],
                output_field=DecimalField(max_digits=12, decimal_places=2),
            ),
            target_plan_id=Case(
                *[When(pk=pk, then=Cast(Value(p), BigIntegerField())) for pk, p in plan.items()],
                output_field=BigIntegerField(),
            ),
            version=F("version") + 1,
            updated_at=at,
        )
        plan_ids = (
            {m.plan_before_id for m in latest.values()} | set(plan.values()) | {o.target_plan_id for o in candidates}
        )
        names = dict(Plan.objects.filter(pk__in=plan_ids - {None}).values_list("pk", "name"))
        OpportunityEvent.objects.bulk_create(
            OpportunityEvent(
                opportunity_id=o.pk,
                actor=None,
                occurred_at=at,
                kind=OpportunityEvent.Kind.CLOSED,
                from_stage=o.stage,
                to_stage=Stage.CLOSE,
                changes={
                    "outcome": [Outcome.OPEN, Outcome.WON],
                    "actual_mrr_delta": str(delta[o.pk]),
                    "target_plan": [names.get(o.target_plan_id), names.get(plan[o.pk])],
                },
                message=_message(latest[o.account_id], names),
            )
            for o in candidates
        )
        play_credits_record(
            wins=[
                Win(opportunity_id=o.pk, account_id=o.account_id, won_at=at, mrr_delta=delta[o.pk]) for o in candidates
            ]
        )
        billing_wins_notify(opportunities=candidates, at=at)
    return ids


def _message(m: MrrMovement, names: dict[int, str]) -> str:
    plans = ""
    if m.plan_after_id and m.plan_after_id != m.plan_before_id:
        plans = f", {names.get(m.plan_before_id, 'no plan')} → {names[m.plan_after_id]}"
    return (
        f"Closed as won by the billing system ({m.get_source_display()}): upgrade on {m.occurred_on:%Y-%m-%d}{plans}, "
        f"MRR {m.mrr_before} → {m.mrr_after} {m.currency} (+{m.delta})."
    )


@receiver(mrr_expanded)
def close_won_on_upgrade(sender, *, movements: list[MrrMovement], at: dt.datetime, **kwargs) -> None:
    """Sent inside the transaction that recorded the upgrades: closing in it keeps both or neither."""
    opportunities_close_won_by_billing(movements=movements, at=at)
