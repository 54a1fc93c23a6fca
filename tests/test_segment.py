"""POST /api/v1/segment: Segment's identify, group and track calls, as its Webhooks destination sends them."""

import base64
import hashlib
import hmac
import json

import pytest

from accounts.api_errors import MAX_BODY_BYTES
from accounts.models import Account, EngagementEvent, SegmentEventMapping, SegmentUser
from accounts.tokens import api_token_create
from tests.factories import AccountFactory

URL = "/api/v1/segment"
SECRET = "segment-shared-secret"


@pytest.fixture(autouse=True)
def _secret(settings):
    settings.SEGMENT_SHARED_SECRET = SECRET


@pytest.fixture
def exported(db):
    """An admin mapped the product's "Report Exported" event to use of the reporting feature."""
    return SegmentEventMapping.objects.create(event_name="Report Exported", kind="feature_used", feature="reporting")


def send(client, payload, *, headers=None):
    body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    if headers is None:
        headers = {"X-Signature": hmac.new(SECRET.encode(), body, hashlib.sha1).hexdigest()}
    return client.post(URL, data=body, content_type="application/json", headers=headers)


def group(group_id="acme", user_id="u-1", **traits):
    return {"type": "group", "groupId": group_id, "userId": user_id, "traits": traits, "messageId": "g-" + group_id}


def track(event="Report Exported", message_id="m-1", user_id="u-1", **extra):
    return {
        "type": "track",
        "event": event,
        "userId": user_id,
        "messageId": message_id,
        "properties": {"format": "pdf"},
        "timestamp": "2026-11-20T10:00:00.000Z",
        "context": {"ip": "203.0.113.1"},
        **extra,
    }


def test_a_group_call_creates_the_account_and_its_user_s_track_calls_become_events(client, exported):
    assert send(client, group(name="Acme Corp", industry="Retail", employees=120)).json() == {
        "created": 1,
        "updated": 0,
        "duplicates": 0,
        "ignored": 0,
    }

    response = send(client, track())

    assert response.json() == {"created": 1, "updated": 0, "duplicates": 0, "ignored": 0}
    acme = Account.objects.get(external_id="acme")
    assert (acme.name, acme.industry, acme.employees) == ("Acme Corp", "Retail", 120)
    stored = EngagementEvent.objects.get()
    assert (stored.account, stored.kind, stored.feature, stored.user_ref, stored.external_id) == (
        acme,
        "feature_used",
        "reporting",
        "u-1",
        "m-1",
    )
    assert stored.occurred_at.isoformat() == "2026-11-20T10:00:00+00:00"


def test_a_retried_message_is_stored_once(client, exported):
    send(client, group())
    send(client, track())

    assert send(client, track()).json() == {"created": 0, "updated": 0, "duplicates": 1, "ignored": 0}
    assert EngagementEvent.objects.count() == 1


def test_a_batch_links_users_by_identify_and_finds_accounts_by_context_group_id(client, exported, account):
    batch = {
        "batch": [
            {"type": "identify", "userId": "u-9", "traits": {"company": {"id": account.external_id}}},
            track(message_id="m-1", user_id="u-9"),
            track(message_id="m-2", user_id="someone-else", context={"groupId": account.external_id}),
            track(event="Signed In", message_id="m-3", user_id="u-9"),
            track(event="Clicked Around", message_id="m-4", user_id="u-9"),
            track(message_id="m-5", user_id="a-stranger"),
            {"type": "page", "userId": "u-9", "name": "Pricing"},
        ]
    }

    response = send(client, batch)

    assert response.json() == {"created": 3, "updated": 1, "duplicates": 0, "ignored": 3}
    assert SegmentUser.objects.get(user_id="u-9").account == account
    assert sorted(EngagementEvent.objects.filter(account=account).values_list("external_id", "kind")) == [
        ("m-1", "feature_used"),
        ("m-2", "feature_used"),
        ("m-3", "login"),
    ]


def test_a_group_call_for_a_known_account_updates_it_without_renaming_it(client, account):
    response = send(client, [group(account.external_id, industry="Healthcare")])

    assert response.json()["updated"] == 1
    account.refresh_from_db()
    assert (account.name, account.industry) == ("Acme Analytics", "Healthcare")


@pytest.mark.parametrize(
    "credentials",
    [
        {"Authorization": "Basic " + base64.b64encode(f"{SECRET}:".encode()).decode()},
        "bearer token",
    ],
)
def test_it_also_takes_the_secret_as_basic_user_name_or_an_api_token(client, db, credentials):
    if credentials == "bearer token":
        credentials = {"Authorization": "Bearer " + api_token_create(name="segment")[1]}

    assert send(client, group(), headers=credentials).status_code == 200


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"X-Signature": "0" * 40},
        {"X-Signature": "é"},
        {"Authorization": "Basic " + base64.b64encode(b"wrong:").decode()},
        {"Authorization": "Basic !!!"},
        {"Authorization": "Bearer upc_nope"},
    ],
)
def test_it_refuses_requests_without_our_credentials_and_stores_nothing(client, db, headers):
    assert send(client, group(), headers=headers).status_code == 401
    assert not Account.objects.exists()


def test_a_signature_is_refused_when_no_secret_is_set(client, db, settings):
    signed = {"X-Signature": hmac.new(b"", json.dumps(group()).encode(), hashlib.sha1).hexdigest()}
    settings.SEGMENT_SHARED_SECRET = ""

    assert send(client, group(), headers=signed).status_code == 401


def test_bodies_that_are_not_segment_messages(client, db):
    assert send(client, b"{not json").status_code == 400
    assert send(client, b'"text"').status_code == 400
    assert send(client, b'{"x": "' + b"y" * MAX_BODY_BYTES + b'"}').status_code == 413
    too_many = send(client, {"batch": [track(message_id=str(i)) for i in range(1001)]})
    assert too_many.status_code == 422 and too_many.json()["errors"] == [
        {"pointer": "/batch", "message": "At most 1000 messages a request."}
    ]


def test_odd_messages_are_ignored_never_an_error_page(client, exported):
    AccountFactory(external_id="acme")
    long = "x" * 10_000
    odd = [
        None, 1, "track", [], {}, {"type": None}, {"type": "track"}, {"type": "group"},
        group(long), group(name=long, industry=long, employees=10**30), group(employees=True), group(name=5),
        {"type": "group", "groupId": {"id": 1}}, {"type": "identify", "userId": long, "context": {"groupId": "acme"}},
        {"type": "identify", "userId": "u", "traits": {"company": "acme"}},
        track(message_id=long), track(message_id=None), track(event=long), track(timestamp="yesterday"),
        track(timestamp=10), track(context={"groupId": ["acme"]}), track(properties=None),
        track(message_id="m-late", timestamp="2999-01-01T00:00:00Z", context={"groupId": "acme"}),
    ]  # fmt: skip

    response = send(client, {"batch": odd})

    assert response.status_code == 200
    late = EngagementEvent.objects.get(external_id="m-late")
    assert late.occurred_at.year < 2999, "a time in the future is taken as the time of arrival"
