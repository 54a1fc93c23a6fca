"""Thin Celery tasks: ids and ISO strings in, one service call."""

import datetime as dt
import logging

from celery import chain, shared_task
from django.core.cache import cache
from django.utils import timezone

from accounts.models import Account
from accounts.services import account_indicators_refresh
from accounts.tasks import refresh_indicators
from opportunities.flagging import opportunities_flag
from opportunities.notifications import experiments_significant_notify, snoozes_returned_notify
from opportunities.pipeline import LOCK_TTL_SECONDS, lock_acquire, lock_release

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


PIPELINE_CHUNK_ACCOUNTS = 2_000
"""Accounts per refresh task of a full run: the chunks are queued together, so every worker takes some."""


def _pending_key(token: str) -> str:
    return f"upsell:pipeline-pending:{token}"


@shared_task(name="opportunities.refresh_chunk", queue="pipeline", ignore_result=True)
def refresh_chunk(*, as_of: str, first_id: int, last_id: int, lock_token: str) -> None:
    """Refresh the accounts with ids in [first_id, last_id]; the last chunk to finish starts the flagging.

    A countdown in the shared cache stands in for a chord (the app keeps no result backend). A chunk
    re-delivered after its worker died refreshes again (the refresh is an idempotent upsert) but counts down
    only once it finishes; one that fails releases the lock, and the next beat runs the whole pipeline again.
    """
    try:
        ids = list(
            Account.objects.filter(pk__gte=first_id, pk__lte=last_id).order_by("pk").values_list("pk", flat=True)
        )
        account_indicators_refresh(as_of=dt.date.fromisoformat(as_of), account_ids=ids)
        remaining = cache.decr(_pending_key(lock_token))
    except Exception:
        lock_release(lock_token)
        raise
    if remaining == 0:
        cache.delete(_pending_key(lock_token))
        flag_candidates.delay(as_of=as_of, lock_token=lock_token)


def id_ranges(ids: list[int], size: int) -> list[tuple[int, int]]:
    """[first, last] id bounds of consecutive runs of `size` ids (ids sorted)."""
    return [(ids[i], ids[min(i + size, len(ids)) - 1]) for i in range(0, len(ids), size)]


@shared_task(bind=True, name="opportunities.run_pipeline", queue="pipeline", ignore_result=True, max_retries=30)
def run_pipeline(self, *, as_of: str | None = None, account_ids: list[int] | None = None) -> None:
    """Refresh, then flag, holding the pipeline lock; the flag task releases it.

    A run for given accounts (after ingestion) is a chain of two tasks. A full run fans the refresh out in
    chunks of PIPELINE_CHUNK_ACCOUNTS accounts that any number of workers share, and flags once the last
    chunk is done. A full run finding the lock held is dropped (the next beat comes soon); a run for given
    accounts retries later so their new usage is never left unscored.
    """
    as_of = as_of or timezone.localdate().isoformat()
    token = lock_acquire()
    if token is None:
        if account_ids is None:
            logger.info("Pipeline already running; this run is skipped.")
            return
        raise self.retry(countdown=BUSY_RETRY_SECONDS)
    if account_ids is not None:
        chain(
            refresh_indicators.si(as_of=as_of, account_ids=account_ids),
            flag_candidates.si(as_of=as_of, account_ids=account_ids, lock_token=token),
        ).apply_async(link_error=release_pipeline_lock.si(lock_token=token))
        return
    ranges = id_ranges(list(Account.objects.order_by("pk").values_list("pk", flat=True)), PIPELINE_CHUNK_ACCOUNTS)
    if not ranges:
        flag_candidates.delay(as_of=as_of, lock_token=token)
        return
    # `add`, not `set`: with Redis unreachable it raises instead of being dropped, so the run fails here and
    # frees its lock rather than leaving chunks that could never count down to the flagging.
    try:
        cache.add(_pending_key(token), len(ranges), LOCK_TTL_SECONDS)
    except Exception:
        lock_release(token)
        raise
    for first_id, last_id in ranges:
        refresh_chunk.delay(as_of=as_of, first_id=first_id, last_id=last_id, lock_token=token)


@shared_task(name="opportunities.notify_snoozes_returned", ignore_result=True)
def notify_snoozes_returned(*, on: str | None = None) -> None:
    now = timezone.now()
    snoozes_returned_notify(on=dt.date.fromisoformat(on) if on else timezone.localdate(now), at=now)


@shared_task(name="opportunities.notify_experiment_results", ignore_result=True)
def notify_experiment_results() -> None:
    experiments_significant_notify(at=timezone.now())
