"""Thin Celery tasks of the playbooks app: ids and ISO strings in, one service call."""

from celery import shared_task
from django.utils import timezone

from playbooks.sequence_services import steps_deliver_due
from playbooks.survey_delivery import survey_emails_send


@shared_task(name="playbooks.deliver_due_steps", ignore_result=True)
def deliver_due_steps() -> None:
    """Every minute (beat): the sequence steps due by now, each delivered once, however many workers run it."""
    steps_deliver_due(at=timezone.now())


@shared_task(name="playbooks.send_survey_emails", ignore_result=True)
def send_survey_emails() -> None:
    """Daily (beat): each email-link survey to the accounts its rule flags, once per survey and account."""
    survey_emails_send(at=timezone.now())
