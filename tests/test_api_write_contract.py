"""What every write endpoint of the API promises: token auth, 400 / 413 / 422 answers, all-or-nothing
batches, idempotency keys, and no 500 whatever the body."""

import datetime as dt
import json
from dataclasses import dataclass
from typing import Any

import pytest
from django.test import RequestFactory

from accounts.api_errors import MAX_BODY_BYTES, limit_body
from accounts.models import Account, EngagementEvent, IdempotencyKey, MrrMovement, UsageSnapshot
from accounts.tokens import api_token_create
from tests.api_helpers import pointers, post_json


@dataclass
class Endpoint:
    url: str
    collection: str
    model: Any
    bad_field: str  # a field of `item` that `bad_value` makes invalid
    bad_value: Any

    def item(self, account, i: int) -> dict:
        day = (dt.date(2023, 1, 1) + dt.timedelta(days=i)).isoformat()
        return {
            "accounts": {"external_id": f"new-{i}", "name": f"New {i}"},
            "snapshots": {"account": account.external_id, "metric": "seats", "value": i, "date": day},
            "events": {"id": f"e-{i}", "account": account.external_id, "type": "login", "timestamp": f"{day}T10:00Z"},
            "changes": {"account": account.external_id, "date": day, "plan": "Pro", "mrr": 99 + i},
        }[self.collection]

    def body(self, account, n: int = 1, **replace) -> dict:
        items = [self.item(account, i) for i in range(n)]
        for index, values in replace.items():
            items[int(index.removeprefix("i"))].update(values)
        return {self.collection: items}

    def rows(self) -> tuple:
        return (self.model.objects.count(), list(Account.objects.order_by("pk").values_list("mrr", "plan_id")))


ENDPOINTS = {
    "accounts": Endpoint("/api/v1/accounts", "accounts", Account, "first_purchase_on", "2026-13-01"),
    "usage": Endpoint("/api/v1/usage", "snapshots", UsageSnapshot, "value", -1),
    "events": Endpoint("/api/v1/events", "events", EngagementEvent, "type", "sneezed"),
    "subscriptions": Endpoint("/api/v1/subscriptions", "changes", MrrMovement, "plan", "Platinum"),
}


@pytest.fixture(params=list(ENDPOINTS))
def endpoint(request) -> Endpoint:
    return ENDPOINTS[request.param]


@pytest.fixture
def token(db):
    return api_token_create(name="integration")[1]


def test_it_stores_a_valid_batch_and_answers_with_counts(client, account, token, endpoint):
    response = post_json(client, endpoint.url, endpoint.body(account, 3), token=token)

    assert response.status_code == 200
    assert response.json() == {"created": 3, "updated": 0, "duplicates": 0}


def test_it_answers_401_without_a_valid_token_and_stores_nothing(client, account, token, endpoint):
    before = endpoint.rows()

    assert post_json(client, endpoint.url, endpoint.body(account)).status_code == 401
    assert post_json(client, endpoint.url, endpoint.body(account), token=token + "x").status_code == 401
    assert post_json(client, endpoint.url, endpoint.body(account), token="upc_nope").status_code == 401
    assert endpoint.rows() == before


@pytest.mark.parametrize(
    "body",
    [b'{"items": [', b"", b"{'single': 'quotes'}", b"\xff\xfe{}", b'{"a": NaN}', b'{"a": -Infinity}', b"[" * 50_000],
)
def test_it_answers_400_for_a_body_that_is_not_json(client, account, token, endpoint, body):
    response = post_json(client, endpoint.url, body, token=token)

    assert response.status_code == 400
    assert response.json()["detail"]


def test_it_answers_413_over_one_megabyte_before_reading_it(client, account, token, endpoint):
    body = endpoint.body(account)
    body["padding"] = "x" * MAX_BODY_BYTES

    response = post_json(client, endpoint.url, body, token=token)

    assert response.status_code == 413
    assert "1,048,576 bytes" in response.json()["detail"]


def test_it_checks_the_bytes_read_as_well_as_the_declared_length(rf: RequestFactory):
    # Servers may hand over a body without a Content-Length (chunked uploads behind ASGI).
    request = rf.post("/api/v1/usage", data=b"{}", content_type="application/json")
    request.META["CONTENT_LENGTH"] = "0"
    request._body = b" " * (MAX_BODY_BYTES + 1)

    response = limit_body(lambda request: pytest.fail("the view ran"))(request)

    assert response.status_code == 413


def test_it_names_every_bad_item_by_json_pointer(client, account, token, endpoint):
    # Item 1 fails a check (the schema's or the database's), item 3 the schema: both are named.
    body = endpoint.body(account, 4, i1={endpoint.bad_field: endpoint.bad_value}, i3={"surprise": 1})

    response = post_json(client, endpoint.url, body, token=token)

    assert response.status_code == 422
    assert response.json()["detail"] == "The request is invalid; nothing was stored."
    c, f = endpoint.collection, endpoint.bad_field
    assert pointers(response) == [f"/{c}/1/{f}", f"/{c}/3/surprise"]
    assert all(e["message"] for e in response.json()["errors"])


def test_it_stores_nothing_when_one_item_of_a_full_batch_is_invalid(client, account, token, endpoint):
    before = endpoint.rows()
    body = endpoint.body(account, 1000, i999={endpoint.bad_field: endpoint.bad_value})

    response = post_json(client, endpoint.url, body, token=token)

    assert response.status_code == 422
    assert pointers(response) == [f"/{endpoint.collection}/999/{endpoint.bad_field}"]
    assert endpoint.rows() == before


def test_it_refuses_more_than_1000_items(client, account, token, endpoint):
    response = post_json(client, endpoint.url, endpoint.body(account, 1001), token=token)

    assert response.status_code == 422
    assert pointers(response) == [f"/{endpoint.collection}"]


def test_it_replays_the_first_answer_for_the_same_key_and_body(client, account, token, endpoint):
    body = endpoint.body(account, 2)
    first = post_json(client, endpoint.url, body, token=token, **{"Idempotency-Key": "k-1"})
    rows = endpoint.rows()

    again = post_json(client, endpoint.url, body, token=token, **{"Idempotency-Key": "k-1"})

    assert (again.status_code, again.content) == (first.status_code, first.content)
    assert again.json() == {"created": 2, "updated": 0, "duplicates": 0}
    assert again["Idempotent-Replayed"] == "true"
    assert endpoint.rows() == rows


def test_it_refuses_a_key_reused_with_another_body(client, account, token, endpoint):
    post_json(client, endpoint.url, endpoint.body(account, 1), token=token, **{"Idempotency-Key": "k-1"})
    rows = endpoint.rows()

    response = post_json(client, endpoint.url, endpoint.body(account, 2), token=token, **{"Idempotency-Key": "k-1"})

    assert response.status_code == 422
    assert "another request" in response.json()["errors"][0]["message"]
    assert endpoint.rows() == rows


def test_it_does_not_remember_a_key_whose_request_was_rejected(client, account, token, endpoint):
    bad = endpoint.body(account, 1, i0={endpoint.bad_field: endpoint.bad_value})
    assert post_json(client, endpoint.url, bad, token=token, **{"Idempotency-Key": "k-2"}).status_code == 422

    fixed = post_json(client, endpoint.url, endpoint.body(account, 1), token=token, **{"Idempotency-Key": "k-2"})

    assert fixed.status_code == 200 and fixed.json()["created"] == 1


@pytest.mark.parametrize("key", ["", "x" * 256, "naïve"])
def test_it_answers_400_for_an_unusable_idempotency_key(client, account, token, key):
    body = ENDPOINTS["usage"].body(account)

    response = post_json(client, "/api/v1/usage", body, token=token, **{"Idempotency-Key": key})

    assert response.status_code == 400


def test_keys_belong_to_their_token_and_expire_after_a_day(client, account, token):
    usage = ENDPOINTS["usage"]
    other = api_token_create(name="other exporter")[1]
    post_json(client, usage.url, usage.body(account, 1), token=token, **{"Idempotency-Key": "k"})

    response = post_json(client, usage.url, usage.body(account, 2), token=other, **{"Idempotency-Key": "k"})
    assert response.status_code == 200 and response.json()["created"] == 1

    IdempotencyKey.objects.update(created_at=dt.datetime(2020, 1, 1, tzinfo=dt.UTC))
    response = post_json(client, usage.url, usage.body(account, 3), token=token, **{"Idempotency-Key": "k"})
    assert response.status_code == 200 and response.json()["created"] == 1


def _garbage(endpoint: Endpoint, account) -> list:
    """Bodies of many wrong shapes; none may cause an error page."""
    item = endpoint.item(account, 0)
    c = endpoint.collection
    long = "x" * 10_000
    shapes = [
        b"null", b"[]", b"{}", b'"text"', b"1", b"true", b"[1, 2]", b"1e999",
        {c: None}, {c: {}}, {c: "x"}, {c: [None]}, {c: [[]]}, {c: [{}]}, {c: [1]}, {c: []},
        {c: [{k: None for k in item}]},
        {c: [{k: [] for k in item}]},
        {c: [{k: {"nested": {"deeper": None}} for k in item}]},
        {c: [{k: True for k in item}]},
        {c: [{k: long for k in item}]},
        {c: [{k: 10**30 for k in item}]},
        {c: [{k: -(10**30) for k in item}]},
        {c: [{k: 1.5 for k in item}]},
        {c: [{**item, "unknown": "field"}]},
        {c: [item], "also": "unknown"},
        {c: [{**item, **{k: "2026-02-30" for k in item if k not in ("external_id", "id", "account")}}]},
        {c: [{**item, **{k: "9999-12-31" for k in item if k not in ("external_id", "id", "account")}}]},
        {c: [{**item, **{k: "0001-01-01T00:00:00+14:00" for k in item if k not in ("external_id", "id")}}]},
        {c: [{**item, **{k: "\u0000\ud800" for k in item}}]},
    ]  # fmt: skip
    huge_number = b"1" + b"0" * 5000
    raw = [
        json.dumps({c: [{**item, k: "__N__"}]}).replace('"__N__"', token).encode()
        for k in item
        for token in ("1e999", "-1e999", huge_number.decode(), "0.0000000000000000000001", "-0")
    ]
    return shapes + raw


def test_it_never_answers_500_whatever_the_body(client, account, token, endpoint):
    for body in _garbage(endpoint, account):
        response = post_json(client, endpoint.url, body, token=token)

        assert response.status_code in (200, 400, 409, 422), (body, response.content[:300])
        assert "detail" in response.json() or set(response.json()) == {"created", "updated", "duplicates"}


def test_an_empty_batch_stores_nothing_and_says_so(client, account, token, endpoint):
    response = post_json(client, endpoint.url, {endpoint.collection: []}, token=token)

    assert response.json() == {"created": 0, "updated": 0, "duplicates": 0}


def test_the_openapi_schema_documents_the_writes_and_webhooks(client, db):
    paths = client.get("/api/v1/openapi.json").json()["paths"]

    for path in ["/accounts", "/usage", "/events", "/subscriptions", "/segment", "/webhooks/stripe"]:
        assert "post" in paths[f"/api/v1{path}"], path
    assert "get" in paths["/api/v1/accounts/{external_id}"]
    usage = paths["/api/v1/usage"]["post"]
    assert {p["name"] for p in usage["parameters"]} == {"Idempotency-Key"}
    assert set(usage["responses"]) == {"200", "400", "401", "409", "413", "422"}
