"""Thin Celery tasks of the playbooks app: ids and ISO strings in, one service call."""

from celery import shared_task
from django.utils import timezone

from playbooks.sequence_services import steps_deliver_due


@shared_task(name="playbooks.deliver_due_steps", ignore_result=True)
def deliver_due_steps() -> None:
    """Every minute (beat): the sequence steps due by now, each delivered once, however many workers run it."""
    steps_deliver_due(at=timezone.now())
