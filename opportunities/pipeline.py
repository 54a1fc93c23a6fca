"""The periodic pipeline: refresh indicators, then score and flag. Cross-app orchestration lives here."""

from __future__ import annotations

import datetime as dt
import logging
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

from django.core.cache import cache
from django.utils import timezone

from accounts.services import account_indicators_refresh
from opportunities.flagging import opportunities_flag

logger = logging.getLogger(__name__)

LOCK_KEY = "upsell:pipeline-lock"
LOCK_TTL_SECONDS = 55 * 60
"""Longer than a full run takes; a lock left by a killed run expires by itself after this."""


class PipelineBusy(Exception):
    """Another pipeline run holds the lock."""


def lock_acquire(ttl: int = LOCK_TTL_SECONDS) -> str | None:
    """Take the pipeline lock (atomic `add` in the shared cache); its token, or None when it is held."""
    token = uuid.uuid4().hex
    return token if cache.add(LOCK_KEY, token, ttl) else None


def lock_release(token: str) -> None:
    """Release the lock if `token` still holds it (a lock that expired and was retaken is left alone)."""
    if cache.get(LOCK_KEY) == token:
        cache.delete(LOCK_KEY)


@contextmanager
def pipeline_lock() -> Iterator[str]:
    token = lock_acquire()
    if token is None:
        raise PipelineBusy("The pipeline is already running.")
    try:
        yield token
    finally:
        lock_release(token)


def run_pipeline(*, as_of: dt.date | None = None, account_ids: list[int] | None = None) -> dict:
    """Refresh indicators and flag candidates in this process, under the lock. Returns what it did."""
    as_of = as_of or timezone.localdate()
    with pipeline_lock():
        refreshed = account_indicators_refresh(as_of=as_of, account_ids=account_ids)
        flagged = opportunities_flag(as_of=as_of, at=timezone.now(), account_ids=account_ids)
    return {
        "as_of": as_of.isoformat(),
        "accounts": refreshed.accounts,
        "indicators": refreshed.indicators,
        "scored": flagged.scored,
        "created": flagged.created,
        "updated": flagged.updated,
        "cleared": flagged.cleared,
        "skipped": flagged.skipped,
    }
