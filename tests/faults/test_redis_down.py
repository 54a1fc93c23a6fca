"""Redis (cache, broker and pipeline lock) stopped under a running app: pages still load, ingestion still
stores, and the indicators catch up once Redis is back."""

from __future__ import annotations

import datetime as dt
import time
import uuid

import pytest

from tests.faults import stack as st

pytestmark = pytest.mark.faults

AS_OF = dt.datetime.now(dt.UTC).date()
PASSWORD = "casey-password"


def latest_storage(db, account_ids: list[int]) -> dict[int, float | None]:
    rows = db.execute(
        """SELECT i.account_id, i.latest FROM accounts_accountindicator i
           JOIN accounts_metric m ON m.id = i.metric_id
           WHERE m.key = 'storage_gb' AND i.account_id = ANY(%s) AND i.as_of = %s""",
        [account_ids, AS_OF],
    ).fetchall()
    return dict(rows)


def stored_storage(db, account_ids: list[int]) -> dict[int, float]:
    rows = db.execute(
        """SELECT u.account_id, u.value FROM accounts_usagesnapshot u
           JOIN accounts_metric m ON m.id = u.metric_id
           WHERE m.key = 'storage_gb' AND u.account_id = ANY(%s) AND u.captured_on = %s""",
        [account_ids, AS_OF],
    ).fetchall()
    return dict(rows)


def test_it_serves_pages_and_stores_usage_while_redis_is_down_and_refreshes_once_it_is_back(make_stack, measured):
    stack = make_stack()
    data = stack.app_command(
        "seed",
        accounts=30,
        as_of=AS_OF.isoformat(),
        refreshed_as_of=AS_OF.isoformat(),
        username="casey",
        password=PASSWORD,
    )
    web = stack.start_web()
    worker = stack.start_worker("worker")
    cookie = web.log_in("casey", PASSWORD)
    pages = ["/", "/queue/", "/accounts/", f"/accounts/{data['account_ids'][0]}/"]
    for path in pages:  # served once with Redis up, which also fills the cache
        assert web.get(path, cookie).status == 200, path
    assert web.get("/healthz").status == 200

    stack.redis.stop()
    down_at = time.monotonic()
    worker.wait_for_log(r"Connection to broker lost", timeout=30)
    answers = {path: web.get(path, cookie) for path in pages}
    answers["/login/"] = web.get("/login/")
    health = web.get("/healthz")
    web.log_in("casey", PASSWORD)  # a new session, too
    ingested = {account_id: 500.0 + n for n, account_id in enumerate(data["account_ids"][:3])}
    external_ids = dict(zip(data["account_ids"], data["external_ids"], strict=True))
    snapshots = [
        {"account": external_ids[account_id], "metric": "storage_gb", "value": value, "date": AS_OF.isoformat()}
        for account_id, value in ingested.items()
    ]
    write = web.post_json(
        "/api/v1/usage", {"snapshots": snapshots}, token=data["token"], idempotency_key=str(uuid.uuid4())
    )
    with stack.db() as db:
        stored_during_outage = stored_storage(db, list(ingested))
        refreshed_during_outage = latest_storage(db, list(ingested))
    outage_seconds = time.monotonic() - down_at

    failed = {path: answer.status for path, answer in answers.items() if answer.status != 200}
    assert not failed, f"pages failed while Redis was down: {failed}"
    assert health.status == 503
    assert health.json()["checks"]["database"] == "ok"
    assert health.json()["checks"]["broker"] != "ok"
    assert write.status == 200, write.text
    assert write.json() == {"created": 0, "updated": 3, "duplicates": 0}
    assert stored_during_outage == ingested
    assert all(refreshed_during_outage[a] != value for a, value in ingested.items()), "refreshed without a broker?"
    assert "refresh of 3 accounts could not be enqueued" in web.process.text()

    stack.redis.start()
    back_at = time.monotonic()
    # What beat does every hour: the pipeline over every account.
    stack.send_task("opportunities.run_pipeline", queue="pipeline", as_of=AS_OF.isoformat())
    with stack.db() as db:
        st.wait_until(
            lambda: latest_storage(db, list(ingested)) == ingested,
            timeout=60,
            what="the pipeline to refresh the accounts ingested during the outage",
            interval=0.2,
        )
    caught_up_seconds = time.monotonic() - back_at
    assert web.get("/healthz").status == 200
    assert worker.process.poll() is None, "the worker died with the broker"

    slowest = max(answer.seconds for answer in [*answers.values(), health, write])
    measured(
        f"Redis down {outage_seconds:.1f} s: {len(answers)} pages answered 200 "
        f"(slowest request {slowest * 1000:.0f} ms), "
        f"/healthz 503 with the broker failing, a login succeeded, ingestion stored 3/3 snapshots (200) and "
        f"logged the refresh it could not enqueue; after Redis returned the pipeline refreshed them in "
        f"{caught_up_seconds:.1f} s"
    )
