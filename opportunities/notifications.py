"""What opportunities and experiments tell people, through their notification centre (accounts.work_services):
a new candidate in a CSM's book, an opportunity back from snooze, an upgrade closed by billing, and an
experiment that reached significance. Each is set-based, and each notification is stored once per recipient
(its dedupe key), so a re-run, a retry or an overlapping run adds nothing."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable

from django.contrib.auth import get_user_model
from django.db.models import Q
from django.urls import reverse

from accounts.models import Account, Notification
from accounts.roles import Role
from accounts.work_services import NotificationDraft, notifications_send
from opportunities.models import Opportunity, Outcome
from playbooks.experiment_selectors import experiment_results
from playbooks.models import Experiment

SNOOZE_LOOKBACK_DAYS = 3
"""Snoozes that ran out this many days back are still announced: a day the job did not run is caught up."""


def _opportunity_url(account_id: int, opportunity_id: int) -> str:
    return f"{reverse('accounts:detail', args=[account_id])}#opportunity-{opportunity_id}"


def new_candidates_notify(*, opportunity_ids: Iterable[int], at: dt.datetime) -> int:
    """Tell each owning CSM about the opportunities just opened in their book: one notification per
    opportunity (dedupe key `new-candidate:<id>`). Three queries."""
    rows = Opportunity.objects.filter(pk__in=list(opportunity_ids), owner__isnull=False).values_list(
        "pk", "owner_id", "account_id", "account__name", "score"
    )
    return notifications_send(
        drafts=[
            NotificationDraft(
                recipient_id=owner_id,
                kind=Notification.Kind.NEW_CANDIDATE,
                title=f"New candidate: {name} (score {score})",
                url=_opportunity_url(account_id, pk),
                account_id=account_id,
                dedupe_key=f"new-candidate:{pk}",
            )
            for pk, owner_id, account_id, name, score in rows
        ],
        at=at,
    )


def snoozes_returned_notify(*, on: dt.date, at: dt.datetime) -> int:
    """Tell each owner about their snoozed opportunities whose snooze ran out on or before `on` (within
    SNOOZE_LOOKBACK_DAYS): they are back in the queue. Once per opportunity and snooze date. Three queries."""
    rows = Opportunity.objects.filter(
        outcome=Outcome.SNOOZED,
        owner__isnull=False,
        snoozed_until__lte=on,
        snoozed_until__gt=on - dt.timedelta(days=SNOOZE_LOOKBACK_DAYS),
    ).values_list("pk", "owner_id", "account_id", "account__name", "snoozed_until")
    return notifications_send(
        drafts=[
            NotificationDraft(
                recipient_id=owner_id,
                kind=Notification.Kind.SNOOZE_RETURNED,
                title=f"Back from snooze: {name}",
                url=_opportunity_url(account_id, pk),
                account_id=account_id,
                dedupe_key=f"snooze-returned:{pk}:{until.isoformat()}",
            )
            for pk, owner_id, account_id, name, until in rows
        ],
        at=at,
    )


def billing_wins_notify(*, opportunities: Iterable[Opportunity], at: dt.datetime) -> int:
    """Tell each owner that billing closed their opportunity as won (an upgrade arrived). Three queries."""
    opportunities = [o for o in opportunities if o.owner_id is not None]
    names = dict(Account.objects.filter(pk__in={o.account_id for o in opportunities}).values_list("pk", "name"))
    return notifications_send(
        drafts=[
            NotificationDraft(
                recipient_id=o.owner_id,
                kind=Notification.Kind.BILLING_UPGRADE,
                title=f"Upgrade closed by billing: {names.get(o.account_id, 'an account')}",
                url=_opportunity_url(o.account_id, o.pk),
                account_id=o.account_id,
                dedupe_key=f"billing-won:{o.pk}",
            )
            for o in opportunities
        ],
        at=at,
    )


def experiments_significant_notify(*, at: dt.datetime) -> int:
    """Tell every active admin about each running experiment whose results name a winner (a variant beating
    control significantly; playbooks.experiment_selectors), once per experiment. Two queries per running
    experiment (a handful: one per play at most), then three."""
    winners = []
    for experiment in Experiment.objects.filter(status=Experiment.Status.RUNNING).select_related("play"):
        results = experiment_results(experiment=experiment)
        if results.winner is not None:
            winners.append((experiment, results.winner.label))
    if not winners:
        return 0
    admins = list(
        get_user_model()
        .objects.filter(Q(is_superuser=True) | Q(groups__name=Role.ADMIN), is_active=True)
        .values_list("pk", flat=True)
        .distinct()
    )
    return notifications_send(
        drafts=[
            NotificationDraft(
                recipient_id=admin_id,
                kind=Notification.Kind.EXPERIMENT_SIGNIFICANT,
                title=f"A/B test “{experiment.name}” on {experiment.play.name}: {label} wins",
                url=reverse("settings:experiment_detail", args=[experiment.pk]),
                dedupe_key=f"experiment-significant:{experiment.pk}",
            )
            for experiment, label in winners
            for admin_id in admins
        ],
        at=at,
    )
