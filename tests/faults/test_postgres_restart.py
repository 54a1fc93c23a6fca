"""PostgreSQL restarted under traffic: during the outage every request fails fast with a 503, right after it
every request succeeds, and no acknowledged write is lost (nor any refused one half-stored)."""

from __future__ import annotations

import datetime as dt
import threading
import time
from dataclasses import dataclass

import pytest

from tests.faults import stack as st

pytestmark = pytest.mark.faults

AS_OF = dt.datetime.now(dt.UTC).date()
PASSWORD = "casey-password"
FAST_SECONDS = 2.0
OUTAGE_SECONDS = 3.0
WRITE_BASE = 1000.0


@dataclass(frozen=True)
class Attempt:
    path: str
    started: float
    ended: float
    status: int | str  # the HTTP status, or the exception that stood in for an answer
    body: str
    write: int | None = None  # which write, for POSTs

    @property
    def seconds(self) -> float:
        return self.ended - self.started


class Traffic(threading.Thread):
    """A CSM browsing and an integration writing usage, one request after the other, until stopped.

    Write n stores two snapshots (storage and projects) of one account on one day, both worth 1000 + n: no
    two writes touch the same rows, so each one can be found, whole or not at all.
    """

    def __init__(self, web: st.Web, cookie: str, token: str, external_ids: list[str]):
        super().__init__(daemon=True)
        self.web, self.cookie, self.token, self.external_ids = web, cookie, token, external_ids
        self.attempts: list[Attempt] = []
        self.writes = 0
        self.stopping = threading.Event()

    def payload(self, n: int) -> dict:
        account = self.external_ids[n % len(self.external_ids)]
        on = (AS_OF - dt.timedelta(days=n // len(self.external_ids))).isoformat()
        value = WRITE_BASE + n
        return {
            "snapshots": [
                {"account": account, "metric": metric, "value": value, "date": on}
                for metric in ("storage_gb", "projects")
            ]
        }

    def send(self, path: str, call, write: int | None = None) -> None:
        started = time.monotonic()
        try:
            answer = call()
            status, body = answer.status, answer.text
        except Exception as exc:  # a refused or dropped connection is a result here, not a crash
            status, body = type(exc).__name__, str(exc)
        self.attempts.append(Attempt(path, started, time.monotonic(), status, body, write))

    def run(self) -> None:
        pages = ["/accounts/", "/queue/"]
        while not self.stopping.is_set():
            n = self.writes
            self.writes += 1
            path = pages[n % len(pages)]
            self.send(path, lambda path=path: self.web.get(path, self.cookie))
            self.send(
                "/api/v1/usage",
                lambda n=n: self.web.post_json(
                    "/api/v1/usage", self.payload(n), token=self.token, idempotency_key=f"write-{n}"
                ),
                write=n,
            )
            time.sleep(0.02)

    def count(self, predicate) -> int:
        return sum(1 for attempt in list(self.attempts) if predicate(attempt))


def stored_writes(db, traffic: Traffic) -> dict[int, int]:
    """How many of its two snapshots each write left in the database."""
    rows = db.execute(
        "SELECT value, count(*) FROM accounts_usagesnapshot WHERE value >= %s GROUP BY value", [WRITE_BASE]
    ).fetchall()
    counts = {round(value - WRITE_BASE): count for value, count in rows}
    return {n: counts.get(n, 0) for n in range(traffic.writes)}


def test_it_answers_503_fast_while_postgresql_restarts_and_loses_no_acknowledged_write(make_stack, measured):
    stack = make_stack()
    data = stack.app_command(
        "seed",
        accounts=20,
        as_of=AS_OF.isoformat(),
        refreshed_as_of=AS_OF.isoformat(),
        username="casey",
        password=PASSWORD,
    )
    web = stack.start_web()
    worker = stack.start_worker("worker")
    traffic = Traffic(web, web.log_in("casey", PASSWORD), data["token"], data["external_ids"])
    traffic.start()
    try:
        st.wait_until(
            lambda: traffic.count(lambda a: a.write is not None and a.status == 200) >= 10,
            timeout=30,
            what="writes to be acknowledged before the outage",
        )
        stop_began = time.monotonic()
        stack.postgres.stop("fast")
        stopped = time.monotonic()
        time.sleep(OUTAGE_SECONDS)
        start_began = time.monotonic()
        stack.postgres.start()
        started = time.monotonic()
        st.wait_until(
            lambda: traffic.count(lambda a: a.started >= started and a.write is not None and a.status == 200) >= 10,
            timeout=30,
            what="writes to be acknowledged after the restart",
        )
    finally:
        traffic.stopping.set()
        traffic.join(timeout=30)
    attempts = traffic.attempts

    unexpected = [(a.path, a.status) for a in attempts if a.status not in (200, 503)]
    assert not unexpected, f"answers other than 200 and 503: {unexpected[:10]}"
    slow = [(a.path, a.status, round(a.seconds, 2)) for a in attempts if a.seconds >= FAST_SECONDS]
    assert not slow, f"requests slower than {FAST_SECONDS} s: {slow[:10]}"
    during = [a for a in attempts if a.started >= stopped and a.ended <= start_began]
    assert len(during) >= 10, "too few requests fell inside the outage to tell anything"
    assert all(a.status == 503 for a in during), sorted({a.status for a in during})
    assert all("Temporarily unavailable" in a.body for a in during if a.write is None)
    assert all("database cannot be reached" in a.body for a in during if a.write is not None)
    after = [a for a in attempts if a.started >= started]
    after_ok = sum(1 for a in after if a.status == 200)
    assert after and after_ok == len(after), sorted({a.status for a in after})

    acknowledged = {a.write for a in attempts if a.write is not None and a.status == 200}
    refused = {a.write for a in attempts if a.write is not None and a.status == 503}
    with stack.db() as db:
        stored = stored_writes(db, traffic)
        present = sum(1 for n in acknowledged if stored[n] == 2)
        assert present == len(acknowledged), [n for n in acknowledged if stored[n] != 2]
        assert all(stored[n] in (0, 2) for n in refused), [n for n in refused if stored[n] not in (0, 2)]
        committed_anyway = sum(1 for n in refused if stored[n] == 2)
        # The integration retries what was refused, under the same Idempotency-Key.
        retried = [
            web.post_json("/api/v1/usage", traffic.payload(n), token=data["token"], idempotency_key=f"write-{n}")
            for n in sorted(refused)
        ]
        assert all(answer.status == 200 for answer in retried), sorted({answer.status for answer in retried})
        stored = stored_writes(db, traffic)
        assert all(count == 2 for count in stored.values())

        # The worker lost its connection too: a refresh after the restart still runs.
        refresh_at = time.monotonic()
        account, account_id = data["external_ids"][0], data["account_ids"][0]
        snapshot = {"account": account, "metric": "storage_gb", "value": 9999.0, "date": AS_OF.isoformat()}
        assert web.post_json("/api/v1/usage", {"snapshots": [snapshot]}, token=data["token"]).status == 200
        st.wait_until(
            lambda: db.execute(
                """SELECT 1 FROM accounts_accountindicator i JOIN accounts_metric m ON m.id = i.metric_id
                   WHERE i.account_id = %s AND m.key = 'storage_gb' AND i.latest = 9999""",
                [account_id],
            ).fetchone(),
            timeout=30,
            what="the worker to refresh an account after the restart",
            interval=0.2,
        )
        refreshed_seconds = time.monotonic() - refresh_at
    assert worker.process.poll() is None

    first_ok = min(a.ended for a in attempts if a.started >= start_began and a.status == 200) - started
    unavailable = [a.seconds for a in attempts if a.status == 503]
    measured(
        f"PostgreSQL down {start_began - stop_began:.1f} s (stop {stopped - stop_began:.1f} s, start "
        f"{started - start_began:.1f} s): {len(unavailable)} requests answered 503 in p95 "
        f"{st.quantile(unavailable, 0.95) * 1000:.0f} ms (max {max(unavailable) * 1000:.0f} ms), none 500; "
        f"first 200 {max(first_ok, 0) * 1000:.0f} ms after the restart, {after_ok}/{len(after)} after it 200; "
        f"{present}/{len(acknowledged)} acknowledged writes present; {len(refused)} refused writes: "
        f"none half-stored ({committed_anyway} committed before the error), all stored on retry with their key; "
        f"worker refreshed an account {refreshed_seconds:.1f} s after a write following the restart"
    )
