"""POST /api/v1/usage: snapshots per account, metric and day, stored set-based, refreshing indicators."""

import datetime as dt

import pytest
from django.utils import timezone

from accounts.models import AccountIndicator, UsageSnapshot
from accounts.tokens import api_token_create
from tests.api_helpers import pointers, post_json
from tests.factories import AccountFactory

URL = "/api/v1/usage"


@pytest.fixture
def token(db):
    return api_token_create(name="usage exporter")[1]


def snapshot(account, value=3, day="2026-11-01", metric="seats"):
    return {"account": account.external_id, "metric": metric, "value": value, "date": day}


def stored(account) -> dict:
    return {
        (s.metric.key, s.captured_on.isoformat()): s.value
        for s in UsageSnapshot.objects.filter(account=account).select_related("metric")
    }


def test_it_stores_snapshots_of_several_accounts_and_metrics(client, account, token):
    other = AccountFactory()
    body = {
        "snapshots": [
            snapshot(account, 3),
            snapshot(account, 7.5, metric="storage_gb"),
            snapshot(other, 12, day="2026-11-02"),
        ]
    }

    response = post_json(client, URL, body, token=token)

    assert response.json() == {"created": 3, "updated": 0, "duplicates": 0}
    assert stored(account) == {("seats", "2026-11-01"): 3.0, ("storage_gb", "2026-11-01"): 7.5}
    assert stored(other) == {("seats", "2026-11-02"): 12.0}


def test_the_same_day_again_replaces_the_value_and_an_equal_value_is_a_duplicate(client, account, token):
    post_json(client, URL, {"snapshots": [snapshot(account, 3), snapshot(account, 4, day="2026-11-02")]}, token=token)

    response = post_json(
        client, URL, {"snapshots": [snapshot(account, 5), snapshot(account, 4, day="2026-11-02")]}, token=token
    )

    assert response.json() == {"created": 0, "updated": 1, "duplicates": 1}
    assert stored(account) == {("seats", "2026-11-01"): 5.0, ("seats", "2026-11-02"): 4.0}


def test_a_snapshot_repeated_in_one_batch_is_a_duplicate_unless_its_value_differs(client, account, token):
    same = post_json(client, URL, {"snapshots": [snapshot(account, 3), snapshot(account, 3)]}, token=token)
    assert same.json() == {"created": 1, "updated": 0, "duplicates": 1}

    conflicting = post_json(client, URL, {"snapshots": [snapshot(account, 3), snapshot(account, 9)]}, token=token)
    assert conflicting.status_code == 422
    assert pointers(conflicting) == ["/snapshots/1"]
    assert "Repeats item 0" in conflicting.json()["errors"][0]["message"]


def test_it_names_unknown_accounts_metrics_bad_values_and_dates(client, account, token):
    tomorrow_but_one = (timezone.localdate() + dt.timedelta(days=2)).isoformat()
    body = {
        "snapshots": [
            snapshot(account),
            {**snapshot(account), "account": "nobody"},
            {**snapshot(account), "metric": "sheep"},
            {**snapshot(account), "value": -2},
            {**snapshot(account), "date": "2026-11-31"},
            {**snapshot(account), "date": "20261101"},
            {**snapshot(account), "date": tomorrow_but_one},
            {**snapshot(account), "value": "12"},
        ]
    }

    response = post_json(client, URL, body, token=token)

    assert response.status_code == 422
    errors = {e["pointer"]: e["message"] for e in response.json()["errors"]}
    assert errors == {
        "/snapshots/1/account": "No account with external_id 'nobody'.",
        "/snapshots/2/metric": "No metric 'sheep'.",
        "/snapshots/3/value": "Input should be greater than or equal to 0",
        "/snapshots/4/date": "Not a valid date.",
        "/snapshots/5/date": "Use a date as YYYY-MM-DD.",
        "/snapshots/6/date": "Is in the future.",
        "/snapshots/7/value": "Expected a number.",
    }
    assert UsageSnapshot.objects.count() == 0


def test_new_usage_refreshes_the_indicators_of_the_accounts_it_changed_once_committed(
    client, account, token, eager_celery, django_capture_on_commit_callbacks
):
    today = timezone.localdate()
    days = [(today - dt.timedelta(days=d)).isoformat() for d in range(3)]
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        post_json(client, URL, {"snapshots": [snapshot(account, 4, day=d) for d in days]}, token=token)

    assert len(callbacks) >= 1
    seats = AccountIndicator.objects.get(account=account, metric__key="seats")
    assert (seats.latest, seats.limit, seats.as_of) == (4.0, 5.0, today)

    with django_capture_on_commit_callbacks() as callbacks:
        post_json(client, URL, {"snapshots": [snapshot(account, 4, day=d) for d in days]}, token=token)
    assert callbacks == [], "a batch of duplicates changes nothing and refreshes nothing"


def test_a_full_batch_takes_a_fixed_number_of_queries(client, token, django_assert_max_num_queries):
    accounts = AccountFactory.create_batch(200)
    metrics = ["seats", "storage_gb", "integrations", "api_calls", "projects"]
    body = {"snapshots": [snapshot(a, i, metric=m) for i, a in enumerate(accounts) for m in metrics]}
    assert len(body["snapshots"]) == 1000
    post_json(client, URL, {"snapshots": []}, token=token)  # records the token's last use

    # token, accounts, metrics, upsert (+ a read of stored values off PostgreSQL); savepoint and release
    # only because the test runs inside a transaction
    with django_assert_max_num_queries(7):
        response = post_json(client, URL, body, token=token)

    assert response.json() == {"created": 1000, "updated": 0, "duplicates": 0}
