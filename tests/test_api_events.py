"""POST /api/v1/events: engagement events, stored once per sender id."""

import datetime as dt

import pytest
from django.utils import timezone

from accounts.models import EngagementEvent
from accounts.tokens import api_token_create
from tests.api_helpers import pointers, post_json
from tests.factories import AccountFactory

URL = "/api/v1/events"


@pytest.fixture
def token(db):
    return api_token_create(name="event exporter")[1]


def event(account, id="evt-1", type="feature_used", feature="reporting", **extra):
    return {
        "id": id,
        "account": account.external_id,
        "type": type,
        "feature": feature,
        "user": "u-7",
        "timestamp": "2026-11-20T09:30:00+01:00",
        **extra,
    }


def test_it_stores_events_with_their_kind_feature_user_and_time(client, account, token):
    body = {"events": [event(account), event(account, id="evt-2", type="login", feature="")]}

    response = post_json(client, URL, body, token=token)

    assert response.json() == {"created": 2, "updated": 0, "duplicates": 0}
    stored = EngagementEvent.objects.get(external_id="evt-1")
    assert (stored.account, stored.kind, stored.feature, stored.user_ref) == (
        account,
        "feature_used",
        "reporting",
        "u-7",
    )
    assert stored.occurred_at == dt.datetime(2026, 11, 20, 8, 30, tzinfo=dt.UTC)


def test_a_repeated_id_is_stored_once_and_counted_as_a_duplicate(client, account, token):
    post_json(client, URL, {"events": [event(account)]}, token=token)

    response = post_json(
        client, URL, {"events": [event(account), event(account, id="evt-2"), event(account, id="evt-2")]}, token=token
    )

    assert response.json() == {"created": 1, "updated": 0, "duplicates": 2}
    assert EngagementEvent.objects.count() == 2


def test_a_time_without_offset_is_taken_as_utc(client, account, token):
    post_json(client, URL, {"events": [event(account, timestamp="2026-11-20T09:30:00")]}, token=token)

    assert EngagementEvent.objects.get().occurred_at == dt.datetime(2026, 11, 20, 9, 30, tzinfo=dt.UTC)


def test_it_names_bad_events_by_pointer(client, account, token):
    in_two_days = (timezone.now() + dt.timedelta(days=2)).isoformat()
    body = {
        "events": [
            event(account, feature=""),
            {**event(account, id="e2"), "account": "ghost"},
            event(account, id="e3", type="clicked"),
            event(account, id="e4", timestamp="yesterday"),
            event(account, id="e5", timestamp=in_two_days),
            event(account, id="", type="login"),
        ]
    }

    response = post_json(client, URL, body, token=token)

    assert response.status_code == 422
    assert pointers(response) == [
        "/events/0/feature",
        "/events/1/account",
        "/events/2/type",
        "/events/3/timestamp",
        "/events/4/timestamp",
        "/events/5/id",
    ]
    assert EngagementEvent.objects.count() == 0


def test_new_events_refresh_the_accounts_engagement_once_committed(
    client, account, token, eager_celery, django_capture_on_commit_callbacks
):
    now = timezone.now()
    body = {"events": [event(account, id=f"l{i}", type="login", timestamp=now.isoformat()) for i in range(3)]}

    with django_capture_on_commit_callbacks(execute=True):
        post_json(client, URL, body, token=token)

    account.engagement.refresh_from_db()
    assert account.engagement.logins_per_week > 0


def test_a_full_batch_takes_a_fixed_number_of_queries(client, token, django_assert_max_num_queries):
    accounts = AccountFactory.create_batch(10)
    body = {"events": [event(accounts[i % 10], id=f"e{i}") for i in range(1000)]}
    post_json(client, URL, {"events": []}, token=token)

    with django_assert_max_num_queries(7):
        response = post_json(client, URL, body, token=token)

    assert response.json()["created"] == 1000
