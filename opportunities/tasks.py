"""Thin Celery tasks: ids and ISO strings in, one service call."""

import datetime as dt
import logging

from celery import chain, shared_task
from django.utils import timezone

from accounts.tasks import refresh_indicators
from opportunities.flagging import opportunities_flag
from opportunities.pipeline import lock_acquire, lock_release

logger = logging.getLogger(__name__)

BUSY_RETRY_SECONDS = 60


@shared_task(name="opportunities.flag_candidates", queue="pipeline", ignore_result=True)
def flag_candidates(*, as_of: str, account_ids: list[int] | None = None, lock_token: str | None = None) -> None:
    try:
        opportunities_flag(as_of=dt.date.fromisoformat(as_of), at=timezone.now(), account_ids=account_ids)
    finally:
        if lock_token:
            lock_release(lock_token)


@shared_task(name="opportunities.release_pipeline_lock", queue="pipeline", ignore_result=True)
def release_pipeline_lock(*args, lock_token: str) -> None:
    lock_release(lock_token)


@shared_task(bind=True, name="opportunities.run_pipeline", queue="pipeline", ignore_result=True, max_retries=30)
def run_pipeline(self, *, as_of: str | None = None, account_ids: list[int] | None = None) -> None:
    """Refresh, then flag, as a chain holding the pipeline lock; the flag task releases it.

    A full run finding the lock held is dropped (the next beat comes soon); a run for given accounts
    (after ingestion) retries later so their new usage is never left unscored.
    """
    as_of = as_of or timezone.localdate().isoformat()
    token = lock_acquire()
    if token is None:
        if account_ids is None:
            logger.info("Pipeline already running; this run is skipped.")
            return
        raise self.retry(countdown=BUSY_RETRY_SECONDS)
    chain(
        refresh_indicators.si(as_of=as_of, account_ids=account_ids),
        flag_candidates.si(as_of=as_of, account_ids=account_ids, lock_token=token),
    ).apply_async(link_error=release_pipeline_lock.si(lock_token=token))
