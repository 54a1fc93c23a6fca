"""GET /api/v1/accounts/{external_id}/indicators, and the token auth every API endpoint uses."""

import datetime as dt

import pytest
from django.core.management import call_command
from django.utils import timezone

from accounts.models import ApiToken, UsageSnapshot
from accounts.tokens import api_token_create, api_token_revoke
from opportunities.pipeline import run_pipeline
from tests.factories import metric

AS_OF = dt.date(2026, 11, 20)


@pytest.fixture
def token(db):
    _, raw = api_token_create(name="integration")
    return raw


def get(client, url, token=None):
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return client.get(url, headers=headers)


def test_it_returns_indicators_score_and_reasons_of_an_account(client, account, token):
    UsageSnapshot.objects.bulk_create(
        UsageSnapshot(
            account=account,
            metric=metric("storage_gb"),
            value=6 + 0.1 * d,
            captured_on=AS_OF - dt.timedelta(days=29 - d),
        )
        for d in range(30)
    )
    run_pipeline(as_of=AS_OF)

    response = get(client, f"/api/v1/accounts/{account.external_id}/indicators", token)

    assert response.status_code == 200
    body = response.json()
    assert body["as_of"] == "2026-11-20"
    assert body["score"] == 65
    assert body["reasons"][0]["text"].startswith("Storage at 89% of 10 GB, growing 0.1 GB/day: full around")
    storage = next(i for i in body["indicators"] if i["metric"] == "storage_gb")
    assert storage == {
        "metric": "storage_gb",
        "latest": pytest.approx(8.9),
        "limit": 10.0,
        "utilization": pytest.approx(0.89),
        "slope_per_day": pytest.approx(0.1),
        "days_to_limit": pytest.approx(11.0),
        "projected_limit_date": "2026-12-01",
        "projected_limit_earliest": "2026-12-01",
        "projected_limit_latest": "2026-12-01",
    }
    seats = next(i for i in body["indicators"] if i["metric"] == "seats")
    assert seats["latest"] is None and seats["projected_limit_date"] is None


def test_it_answers_404_for_an_unknown_account(client, token):
    assert get(client, "/api/v1/accounts/nope/indicators", token).status_code == 404


def test_it_refuses_requests_without_a_valid_token(client, account, token):
    url = f"/api/v1/accounts/{account.external_id}/indicators"

    assert get(client, url).status_code == 401
    assert get(client, url, "upc_not-a-real-token").status_code == 401
    assert get(client, url, token + "x").status_code == 401


def test_it_refuses_a_revoked_token(client, account):
    row, raw = api_token_create(name="old")
    api_token_revoke(token=row, at=timezone.now())

    assert get(client, f"/api/v1/accounts/{account.external_id}/indicators", raw).status_code == 401


def test_it_stores_only_a_hash_and_records_last_use(client, account, token):
    row = ApiToken.objects.get()
    assert token not in (row.key_hash, row.prefix) and row.last_used_at is None

    get(client, f"/api/v1/accounts/{account.external_id}/indicators", token)

    row.refresh_from_db()
    assert row.last_used_at is not None


def test_the_command_prints_the_token_alone_on_its_last_line(db, capsys, client, account):
    call_command("create_api_token", "exporter")

    raw = capsys.readouterr().out.strip().splitlines()[-1]
    assert raw.startswith("upc_")
    assert get(client, f"/api/v1/accounts/{account.external_id}/indicators", raw).status_code == 200


def test_the_openapi_schema_lists_the_endpoint(client, db):
    response = client.get("/api/v1/openapi.json")

    assert response.status_code == 200
    assert "/api/v1/accounts/{external_id}/indicators" in response.json()["paths"]


def test_the_interactive_docs_are_for_staff_only(client, csm, admin_user):
    client.force_login(csm)
    assert client.get("/api/v1/docs").status_code == 302

    client.force_login(admin_user)
    assert client.get("/api/v1/docs").status_code == 200
