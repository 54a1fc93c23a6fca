"""Two delivery workers at once on PostgreSQL: each sequence step is delivered once, by one of them.

Each worker is a thread with its own connection, released together on a barrier (tests/test_concurrency.py).
SQLite takes one writer at a time, so the scenario proves nothing there: it runs on PostgreSQL only.
"""

import datetime as dt
from collections import Counter

import pytest
from django.core import mail
from django.db import connection

from accounts.models import Contact, Task
from playbooks.models import Play, SequenceStep, StepRun, Touch
from playbooks.sequence_services import enrollment_start, steps_deliver_due
from tests.factories import AccountFactory, plan
from tests.test_concurrency import run_together

pytestmark = pytest.mark.skipif(connection.vendor != "postgresql", reason="needs PostgreSQL's concurrent writers")

AT = dt.datetime(2026, 11, 20, 6, 0, tzinfo=dt.UTC)
ACCOUNTS = 8


def test_two_workers_delivering_at_once_send_each_step_once(committed_db, csm):
    play = Play.objects.create(
        name="Seats upgrade",
        target_plan=plan("Pro"),
        email_subject="{{ account_name }}: room on {{ target_plan }}",
        email_body="Hi",
        min_days_between_touches=0,
    )
    for position, kind in enumerate(["email", "task", "email"], start=1):
        SequenceStep.objects.create(play=play, position=position, delay_days=0, kind=kind, subject=f"Step {position}")
    for i in range(ACCOUNTS):
        account = AccountFactory(owner=csm)
        Contact.objects.create(account=account, email=f"buyer{i}@example.com", is_primary=True)
        enrollment_start(account=account, play=play, at=AT)

    def worker(i: int) -> int:
        # Small batches, run until nothing is left: the two workers keep meeting over the same due rows.
        claimed = 0
        for _ in range(50):
            report = steps_deliver_due(at=AT, limit=3)
            if not report.claimed:
                break
            claimed += report.claimed
        return claimed

    results = run_together(worker, threads=2)

    errors = [r for r in results if isinstance(r, Exception)]
    assert errors == [], errors
    assert sum(results) == 3 * ACCOUNTS
    assert len(mail.outbox) == 2 * ACCOUNTS
    assert Counter(m.to[0] for m in mail.outbox) == {f"buyer{i}@example.com": 2 for i in range(ACCOUNTS)}
    assert len({m.extra_headers["Message-ID"] for m in mail.outbox}) == 2 * ACCOUNTS
    assert Task.objects.count() == ACCOUNTS
    assert Touch.objects.filter(kind=Touch.Kind.EMAIL).count() == 2 * ACCOUNTS
    assert Counter(StepRun.objects.values_list("status", "attempts")) == {("sent", 1): 3 * ACCOUNTS}
