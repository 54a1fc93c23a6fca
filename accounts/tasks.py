import datetime as dt
import logging

from celery import shared_task
from django.db import transaction
from django.utils import timezone

from accounts.services import account_indicators_refresh
from accounts.signals import indicators_refreshed
from accounts.work_services import digests_send, tasks_due_notify

logger = logging.getLogger(__name__)


@shared_task(name="accounts.refresh_indicators", queue="pipeline", ignore_result=True)
def refresh_indicators(*, as_of: str, account_ids: list[int] | None = None, notify: bool = False) -> None:
    account_indicators_refresh(as_of=dt.date.fromisoformat(as_of), account_ids=account_ids)
    if notify and account_ids:
        indicators_refreshed.send(sender=refresh_indicators, account_ids=account_ids, as_of=as_of)


def refresh_after_ingestion(*, account_ids: list[int], as_of: dt.date) -> None:
    """Enqueue, once the current transaction commits, the refresh of accounts that just got new usage.

    The write stands whether or not the broker takes the refresh: when it cannot (Redis down), the failure
    is logged and the hourly pipeline refreshes every account on its next run.
    """
    ids = sorted(set(account_ids))
    if ids:
        transaction.on_commit(lambda: _refresh_enqueue(as_of=as_of, account_ids=ids))


def _refresh_enqueue(*, as_of: dt.date, account_ids: list[int]) -> None:
    try:
        refresh_indicators.delay(as_of=as_of.isoformat(), account_ids=account_ids, notify=True)
    except refresh_indicators.OperationalError:
        logger.warning(
            "The refresh of %d accounts could not be enqueued; the hourly pipeline will catch up",
            len(account_ids),
            exc_info=True,
        )


@shared_task(name="accounts.purge_idempotency_keys", ignore_result=True)
def purge_idempotency_keys() -> None:
    # Imported here: the API modules import this one to enqueue refreshes.
    from accounts.idempotency import REMEMBERED_FOR, idempotency_keys_purge

    idempotency_keys_purge(before=timezone.now() - REMEMBERED_FOR)


@shared_task(name="accounts.run_import", ignore_result=True)
def run_import(*, job_id: int) -> None:
    # Imported here: the import goes through the ingest services, which import this module.
    from accounts.imports import import_job_run

    import_job_run(job_id=job_id, at=timezone.now())


@shared_task(name="accounts.resume_imports", ignore_result=True)
def resume_imports() -> None:
    from accounts.imports import imports_resume

    imports_resume(now=timezone.now())


class DigestsIncomplete(Exception):
    """Some digests of the day failed to send; a retry sends those (the others are claimed for the day)."""


@shared_task(
    name="accounts.send_daily_digests",
    ignore_result=True,
    autoretry_for=(DigestsIncomplete,),
    retry_backoff=300,
    max_retries=3,
)
def send_daily_digests(*, on: str | None = None) -> None:
    now = timezone.now()
    report = digests_send(on=dt.date.fromisoformat(on) if on else timezone.localdate(now), at=now)
    if report.failed:
        raise DigestsIncomplete(f"{report.failed} digests failed, {report.sent} sent")


@shared_task(name="accounts.notify_tasks_due", ignore_result=True)
def notify_tasks_due(*, on: str | None = None) -> None:
    now = timezone.now()
    tasks_due_notify(on=dt.date.fromisoformat(on) if on else timezone.localdate(now), at=now)
