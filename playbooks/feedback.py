"""Downgrade and churn feedback: an account whose MRR went down or to zero is asked why.

When billing records a contraction or a churn (the subscriptions API, the Stripe webhook, a CSV import: all
through `accounts.ingest.subscription_changes_apply`, which sends `mrr_contracted` inside its transaction),
each such movement gets one feedback request on the downgrade and churn feedback survey
(`playbooks.surveys.churn_feedback_survey`, created with its defaults on the first need). The account's CSM
gets a task, due FEEDBACK_DUE_DAYS later, to collect the answer (with the survey's link, on APP_URL, when it
is an email-link survey), and a notification. The request is one-to-one with its movement, so the same billing
change sent twice (recorded once) asks once.

A movement dated more than FEEDBACK_WINDOW_DAYS before it was recorded is history (an import of past
billing): nobody is asked about it.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

from django.contrib.auth import get_user_model
from django.db import transaction
from django.dispatch import receiver
from django.utils import timezone

from accounts.ingest import mrr_contracted
from accounts.models import MrrMovement, Notification, Plan, Task
from accounts.work_services import notify, task_create
from playbooks.models import FeedbackRequest, Survey
from playbooks.surveys import churn_feedback_survey, survey_link_url

FEEDBACK_DUE_DAYS = 2
FEEDBACK_WINDOW_DAYS = 30
ASKED_KINDS = (MrrMovement.Kind.CONTRACTION, MrrMovement.Kind.CHURN)


def _what(movement: MrrMovement) -> str:
    return "left" if movement.kind == MrrMovement.Kind.CHURN else "downgraded"


def _detail(movement: MrrMovement, survey: Survey, request: FeedbackRequest, plans: dict[int, str]) -> str:
    amounts = f"{movement.mrr_before:,.2f} → {movement.mrr_after:,.2f} {movement.currency}"
    lines = [
        f"MRR {amounts} on {movement.occurred_on:%Y-%m-%d}"
        + (
            f" ({plans.get(movement.plan_before_id, 'no plan')} → {plans.get(movement.plan_after_id, 'no plan')})."
            if movement.plan_before_id != movement.plan_after_id
            else "."
        ),
        f"Ask them why with the survey “{survey.name}”.",
    ]
    if survey.channel == Survey.Channel.EMAIL:
        url = survey_link_url(account_id=movement.account_id, survey_id=survey.pk, request_id=request.pk)
        lines.append(f"Send them this link: {url}")
    else:
        lines.append("It is shown to them in the product until someone answers.")
    return "\n".join(lines)


def feedback_requests_create(*, movements: Sequence[MrrMovement], at: dt.datetime) -> list[FeedbackRequest]:
    """Ask each account with a recent contraction or churn in `movements` for feedback: one request per
    movement (none for a movement that has one, or is dated over FEEDBACK_WINDOW_DAYS before `at`), and for
    the account's CSM a task (source feedback, due `at`'s day + FEEDBACK_DUE_DAYS) and a notification (kind
    feedback). Nothing when every downgrade and churn feedback survey is switched off. Returns the requests.
    Queries: the survey (and its creation on first need), requests already made, owners and plans, one
    insert of requests, then per request with an owner a task, a notification and one update of the tasks.
    """
    today = timezone.localdate(at)
    since = today - dt.timedelta(days=FEEDBACK_WINDOW_DAYS)
    wanted = [m for m in movements if m.kind in ASKED_KINDS and m.pk is not None and m.occurred_on >= since]
    if not wanted:
        return []
    with transaction.atomic(savepoint=False):
        survey = churn_feedback_survey(at=at)
        if survey is None:
            return []
        taken = set(
            FeedbackRequest.objects.filter(movement_id__in=[m.pk for m in wanted]).values_list("movement_id", flat=True)
        )
        fresh = [m for m in wanted if m.pk not in taken]
        if not fresh:
            return []
        requests = FeedbackRequest.objects.bulk_create(
            FeedbackRequest(survey=survey, account_id=m.account_id, movement=m, created_at=at) for m in fresh
        )
        owner_ids = {m.account.owner_id for m in fresh if m.account.owner_id is not None}
        owners = {u.pk: u for u in get_user_model().objects.filter(pk__in=owner_ids, is_active=True)}
        plan_ids = {pk for m in fresh for pk in (m.plan_before_id, m.plan_after_id) if pk is not None}
        plans = dict(Plan.objects.filter(pk__in=plan_ids).values_list("pk", "name"))
        with_task = []
        for movement, request in zip(fresh, requests, strict=True):
            account = movement.account
            owner = owners.get(account.owner_id)
            if owner is None:
                continue
            request.task = task_create(
                account=account,
                assignee=owner,
                title=f"Ask {account.name} why they {_what(movement)}",
                detail=_detail(movement, survey, request, plans),
                due_on=today + dt.timedelta(days=FEEDBACK_DUE_DAYS),
                at=at,
                source=Task.Source.FEEDBACK,
            )
            with_task.append(request)
            notify(
                recipient=owner,
                kind=Notification.Kind.FEEDBACK,
                title=f"{account.name} {_what(movement)}: ask them why",
                at=at,
                url=account.get_absolute_url(),
                account=account,
                dedupe_key=f"feedback-request-{request.pk}",
            )
        if with_task:
            FeedbackRequest.objects.bulk_update(with_task, ["task"])
    return requests


@receiver(mrr_contracted)
def ask_for_feedback(sender, *, movements: list[MrrMovement], at: dt.datetime, **kwargs) -> None:
    """Sent inside the transaction that recorded the movements: the requests commit with them or not at all."""
    feedback_requests_create(movements=movements, at=at)
