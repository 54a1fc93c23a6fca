"""The pipeline end to end on a real Celery worker consuming from Redis (run by .ci/run)."""

import datetime as dt
import time

import pytest
from celery.contrib.testing.worker import start_worker
from django.conf import settings

from accounts.models import AccountIndicator, UsageSnapshot
from opportunities.models import Opportunity
from opportunities.pipeline import lock_acquire, lock_release
from opportunities.tasks import run_pipeline
from tests.factories import AccountFactory, metric
from upsell_crm.celery import app

pytestmark = [
    pytest.mark.worker,
    pytest.mark.skipif(
        not settings.CELERY_BROKER_URL.startswith("redis://"), reason="needs CELERY_BROKER_URL=redis://..."
    ),
]

AS_OF = dt.date(2026, 11, 20)


def wait_for(predicate, timeout=60.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.2)
    return False


@pytest.fixture
def worker(committed_db):
    before = app.conf.task_always_eager
    app.conf.task_always_eager = False
    with start_worker(app, perform_ping_check=False, queues=["pipeline", "default"], shutdown_timeout=30):
        yield
    app.conf.task_always_eager = before


def test_a_worker_runs_the_pipeline_from_redis_end_to_end(worker, csm):
    accounts = [AccountFactory(owner=csm) for _ in range(3)]
    for account in accounts:
        UsageSnapshot.objects.bulk_create(
            UsageSnapshot(
                account=account,
                metric=metric("storage_gb"),
                value=6 + 0.12 * d,
                captured_on=AS_OF - dt.timedelta(days=29 - d),
            )
            for d in range(30)
        )

    run_pipeline.delay(as_of=AS_OF.isoformat())

    assert wait_for(lambda: Opportunity.objects.open().count() == 3), "the worker did not flag the accounts"
    assert AccountIndicator.objects.count() == 3 * 5
    # The flagging task released the pipeline lock at the end of the chain.
    assert wait_for(lambda: (token := lock_acquire()) is not None and (lock_release(token) or True))
