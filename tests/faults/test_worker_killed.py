"""A Celery worker SIGKILLed in the middle of the indicator refresh: the refresh completes afterwards, and
its indicators equal a clean recompute.

To kill the refresh "in the middle" every time, the scenario holds a row lock on one account's indicators in
the refresh's second chunk: the worker commits the first chunk, then waits on that row, and is killed there.
"""

from __future__ import annotations

import datetime as dt
import os
import signal
import time
from collections.abc import Iterator
from contextlib import contextmanager

import psycopg
import pytest

from accounts.services import CHUNK_SIZE
from opportunities.pipeline import LOCK_KEY, LOCK_TTL_SECONDS
from tests.faults import stack as st
from tests.faults.conftest import MIGRATED

pytestmark = pytest.mark.faults

ACCOUNTS = 5000
AS_OF = dt.datetime.now(dt.UTC).date()
LIMIT_METRICS = 5
# Django's cache keys carry a version prefix.
CACHE_LOCK_KEY = f":1:{LOCK_KEY}"
FLAGGED = r"opportunities\.flag_candidates\[[^\]]+\] succeeded"


@pytest.fixture(scope="module")
def seeded(postgres_cluster: st.PostgresCluster) -> dict:
    """5,000 accounts with 30 days of usage, their indicators refreshed yesterday: a database to copy."""
    postgres_cluster.ensure_running()
    postgres_cluster.create_database("faults_seeded", template=MIGRATED)
    env = st.app_env(
        database_url=postgres_cluster.url("faults_seeded"), cache_url="locmemcache://", broker_url="memory://"
    )
    started = time.monotonic()
    data = st.app_command(
        env,
        "seed",
        accounts=ACCOUNTS,
        as_of=AS_OF.isoformat(),
        refreshed_as_of=(AS_OF - dt.timedelta(days=1)).isoformat(),
        username="casey",
        password="casey-password",
    )
    return {**data, "template": "faults_seeded", "seconds": time.monotonic() - started}


@contextmanager
def refresh_held_in_second_chunk(stack: st.Stack, account_ids: list[int]) -> Iterator[psycopg.Connection]:
    """Lock the indicator rows of an account the refresh reaches in its second chunk, until the block ends."""
    held = sorted(account_ids)[CHUNK_SIZE + CHUNK_SIZE // 4]  # the refresh needs more than one chunk
    blocker = psycopg.connect(stack.postgres.url(stack.database), connect_timeout=5)
    try:
        rows = blocker.execute(
            "SELECT id FROM accounts_accountindicator WHERE account_id = %s FOR UPDATE", [held]
        ).fetchall()
        assert rows, "the seeded refresh left no indicators to hold"
        yield blocker
    finally:
        blocker.rollback()
        blocker.close()


def waiting_on(db: psycopg.Connection, blocker: psycopg.Connection) -> int | None:
    """The session waiting on the blocker's lock (the refresh's), if any."""
    row = db.execute(
        "SELECT pid FROM pg_stat_activity WHERE %s = ANY(pg_blocking_pids(pid))", [blocker.info.backend_pid]
    ).fetchone()
    return row[0] if row else None


def session_alive(db: psycopg.Connection, pid: int) -> bool:
    return db.execute("SELECT 1 FROM pg_stat_activity WHERE pid = %s", [pid]).fetchone() is not None


def accounts_refreshed_as_of(db: psycopg.Connection, as_of: dt.date) -> int:
    return db.execute(
        "SELECT count(DISTINCT account_id) FROM accounts_accountindicator WHERE as_of = %s", [as_of]
    ).fetchone()[0]


def assert_equal_to_clean_recompute(stack: st.Stack) -> dict:
    compared = stack.app_command("compare_with_clean_recompute", as_of=AS_OF.isoformat())
    expected_rows = ACCOUNTS * (LIMIT_METRICS + 1)  # an indicator per limit metric, plus the engagement row
    assert compared["differences"] == 0, f"rows differ from a clean recompute: {compared['examples']}"
    assert compared["stored"] == compared["clean"] == expected_rows
    return compared


def test_it_completes_the_refresh_on_a_new_worker_after_the_whole_worker_was_killed_mid_run(
    make_stack, seeded, measured
):
    stack = make_stack(template=seeded["template"])
    worker = stack.start_worker("worker-1")
    with stack.db() as db:
        with refresh_held_in_second_chunk(stack, seeded["account_ids"]) as blocker:
            stack.send_task("opportunities.run_pipeline", queue="pipeline", as_of=AS_OF.isoformat())
            refresh_session = st.wait_until(
                lambda: waiting_on(db, blocker), timeout=60, what="the refresh to reach its second chunk"
            )
            worker.kill()
            killed_at = time.monotonic()
        # The killed worker's session finishes its statement once the row is free, finds its client gone,
        # and rolls the chunk back.
        st.wait_until(
            lambda: not session_alive(db, refresh_session), timeout=30, what="the killed worker's session to end"
        )
        half_done = accounts_refreshed_as_of(db, AS_OF)
        assert 0 < half_done < ACCOUNTS, f"the worker was not killed mid-refresh ({half_done} accounts refreshed)"

        lock = stack.redis.client(db=1)
        ttl = lock.ttl(CACHE_LOCK_KEY)
        assert ttl == -2 or 0 < ttl <= LOCK_TTL_SECONDS, f"the killed run's pipeline lock never expires (TTL {ttl})"
        new_worker = stack.start_worker("worker-2")
        if ttl > 0:
            # The killed run never released its lock: the next run can only start once it expires, which
            # the scenario fast-forwards.
            lock.pexpire(CACHE_LOCK_KEY, 1)
            st.wait_until(lambda: not lock.exists(CACHE_LOCK_KEY), timeout=5, what="the lock to expire")
        rerun_at = time.monotonic()
        stack.send_task("opportunities.run_pipeline", queue="pipeline", as_of=AS_OF.isoformat())
        new_worker.wait_for_log(FLAGGED, timeout=60)
        rerun_seconds = time.monotonic() - rerun_at
        assert accounts_refreshed_as_of(db, AS_OF) == ACCOUNTS
        assert not lock.exists(CACHE_LOCK_KEY), "the completed run left the pipeline lock behind"
        lock.close()

    compared = assert_equal_to_clean_recompute(stack)
    measured(
        f"seeded {ACCOUNTS:,} accounts ({seeded['snapshots']:,} snapshots) in {seeded['seconds']:.1f} s; "
        f"worker SIGKILLed mid-refresh with {half_done:,}/{ACCOUNTS:,} accounts refreshed; "
        f"its pipeline lock left behind, expiring by itself in {ttl} s (fast-forwarded); "
        f"next run on a new worker completed in {rerun_seconds:.1f} s "
        f"({time.monotonic() - killed_at:.1f} s after the kill); "
        f"{compared['stored']:,}/{compared['clean']:,} indicator rows equal a clean recompute"
    )


def test_it_redelivers_and_completes_the_refresh_when_its_pool_process_is_killed(make_stack, seeded, measured):
    stack = make_stack(template=seeded["template"])
    worker = stack.start_worker("worker-1")
    with stack.db() as db:
        with refresh_held_in_second_chunk(stack, seeded["account_ids"]) as blocker:
            stack.send_task("opportunities.run_pipeline", queue="pipeline", as_of=AS_OF.isoformat())
            st.wait_until(lambda: waiting_on(db, blocker), timeout=60, what="the refresh to reach its second chunk")
            half_done = accounts_refreshed_as_of(db, AS_OF)
            (pool_process,) = worker.children()
            os.kill(pool_process, signal.SIGKILL)
            killed_at = time.monotonic()
        # acks_late + reject_on_worker_lost: the task goes back to the queue, and a new pool process runs it.
        worker.wait_for_log(FLAGGED, timeout=60)
        completed_seconds = time.monotonic() - killed_at
        assert "WorkerLostError" in worker.text()
        assert accounts_refreshed_as_of(db, AS_OF) == ACCOUNTS
        with stack.redis.client(db=1) as lock:
            assert not lock.exists(CACHE_LOCK_KEY), "the redelivered run left the pipeline lock behind"

    compared = assert_equal_to_clean_recompute(stack)
    measured(
        f"pool process SIGKILLed mid-refresh with {half_done:,}/{ACCOUNTS:,} accounts refreshed; "
        f"the task was redelivered and the pipeline completed {completed_seconds:.1f} s later, lock released; "
        f"{compared['stored']:,}/{compared['clean']:,} indicator rows equal a clean recompute"
    )
