"""Concurrency on PostgreSQL: many writers at once, and the database keeps the invariants.

Each scenario starts its threads together on a barrier; every thread has its own connection. On SQLite,
which takes one writer at a time, the scenarios prove nothing, so they run on PostgreSQL only (.ci/run).
"""

import datetime as dt
import threading
from collections import Counter
from collections.abc import Callable

import pytest
from django.db import close_old_connections, connection
from django.test import Client

from accounts.models import IdempotencyKey, UsageSnapshot
from accounts.tokens import api_token_create
from opportunities.flagging import opportunities_flag
from opportunities.models import Opportunity, OpportunityEvent, Stage
from opportunities.services import Conflict, opportunity_advance
from tests.api_helpers import post_json
from tests.factories import AccountFactory, OpportunityFactory
from tests.test_flagging import AS_OF, AT, set_usage

pytestmark = pytest.mark.skipif(connection.vendor != "postgresql", reason="needs PostgreSQL's concurrent writers")

THREADS = 20


def run_together(work: Callable[[int], object], *, threads: int = THREADS) -> list[object]:
    """Run work(i) in `threads` threads released at the same instant; returns each result or exception."""
    barrier = threading.Barrier(threads)
    results: list[object] = [None] * threads

    def target(i: int) -> None:
        try:
            barrier.wait(timeout=30)
            results[i] = work(i)
        except Exception as exc:  # the outcome under test, gathered for the assertions
            results[i] = exc
        finally:
            close_old_connections()
            connection.close()

    workers = [threading.Thread(target=target, args=(i,)) for i in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=120)
    assert not any(worker.is_alive() for worker in workers), "a thread hung"
    return results


def test_twenty_flagging_runs_at_once_open_one_opportunity(committed_db, csm):
    account = AccountFactory(owner=csm)
    set_usage(account, "storage_gb", 9.2, slope=0.1)  # flagged: 92% of 10 GB

    results = run_together(lambda i: opportunities_flag(as_of=AS_OF, at=AT, account_ids=[account.pk]))

    errors = [r for r in results if isinstance(r, Exception)]
    assert errors == [], errors
    assert Opportunity.objects.open().filter(account=account).count() == 1
    assert sum(r.created for r in results) == 1
    assert OpportunityEvent.objects.filter(opportunity__account=account, kind="created").count() == 1


def test_two_stage_changes_at_once_one_wins_and_the_other_conflicts(committed_db, csm):
    opportunity = OpportunityFactory(account=AccountFactory(owner=csm), stage=Stage.IDENTIFY)
    stale = Opportunity.objects.get(pk=opportunity.pk)

    def advance(i: int):
        mine = Opportunity.objects.get(pk=opportunity.pk)
        return opportunity_advance(
            opportunity=mine, to=Stage.QUALIFY, by=csm, at=dt.datetime.now(dt.UTC), version=stale.version
        )

    results = run_together(advance, threads=2)

    outcomes = Counter(type(r).__name__ for r in results)
    assert outcomes == {"Opportunity": 1, "Conflict": 1}
    assert all(isinstance(r, Opportunity | Conflict) for r in results)
    opportunity.refresh_from_db()
    assert (opportunity.stage, opportunity.version) == (Stage.QUALIFY, stale.version + 1)
    assert OpportunityEvent.objects.filter(opportunity=opportunity, kind="stage_changed").count() == 1


def test_one_batch_sent_twenty_times_at_once_with_one_idempotency_key_is_stored_once(committed_db):
    account = AccountFactory(external_id="acme")
    token = api_token_create(name="exporter")[1]
    body = {
        "snapshots": [
            {"account": "acme", "metric": "seats", "value": n, "date": f"2026-10-{n:02d}"} for n in range(1, 29)
        ]
    }

    def send(i: int):
        return post_json(Client(), "/api/v1/usage", body, token=token, **{"Idempotency-Key": "batch-42"})

    responses = run_together(send)

    statuses = Counter(getattr(r, "status_code", type(r).__name__) for r in responses)
    assert set(statuses) <= {200, 201}, statuses
    bodies = {r.content for r in responses}
    assert len(bodies) == 1, "every sender sees the first answer"
    assert UsageSnapshot.objects.filter(account=account).count() == 28
    assert IdempotencyKey.objects.filter(key="batch-42").count() == 1


def test_batches_sharing_rows_in_opposite_orders_wait_for_each_other_instead_of_deadlocking(committed_db):
    accounts = [AccountFactory(external_id=f"acct-{n}") for n in range(10)]
    token = api_token_create(name="exporter")[1]
    snapshots = [
        {"account": a.external_id, "metric": metric, "value": 7, "date": "2026-11-01"}
        for a in accounts
        for metric in ("seats", "storage_gb", "projects")
    ]
    events = [
        {
            "id": f"evt-{n}",
            "account": accounts[n % 10].external_id,
            "type": "login",
            "timestamp": "2026-11-01T09:00:00Z",
        }
        for n in range(30)
    ]

    def send(i: int):
        order = 1 if i % 2 else -1  # half the senders list the rows backwards
        statuses = []
        for value in range(5):
            body = {"snapshots": [dict(s, value=value) for s in snapshots][::order]}
            statuses.append(post_json(Client(), "/api/v1/usage", body, token=token).status_code)
            statuses.append(post_json(Client(), "/api/v1/events", {"events": events[::order]}, token=token).status_code)
        return statuses

    results = run_together(send, threads=6)

    assert all(isinstance(r, list) for r in results), results
    assert {status for statuses in results for status in statuses} <= {200, 201}
    assert UsageSnapshot.objects.count() == 30
