"""POST /api/v1/accounts (upsert by external_id) and GET /api/v1/accounts/{external_id}."""

import datetime as dt
from decimal import Decimal

import pytest

from accounts.models import Account, UsageSnapshot
from accounts.tokens import api_token_create
from tests.api_helpers import pointers, post_json
from tests.factories import AccountFactory, metric, plan

URL = "/api/v1/accounts"


@pytest.fixture
def token(db):
    return api_token_create(name="crm sync")[1]


def get(client, url, token=None):
    return client.get(url, headers={"Authorization": f"Bearer {token}"} if token else {})


def test_it_creates_an_account_from_an_external_id_and_a_name(client, token):
    response = post_json(client, URL, {"accounts": [{"external_id": "ext-1", "name": "Globex"}]}, token=token)

    assert response.json() == {"created": 1, "updated": 0, "duplicates": 0}
    created = Account.objects.get(external_id="ext-1")
    assert (created.name, created.plan, created.mrr, created.status) == ("Globex", None, Decimal("0.00"), "active")


def test_it_sets_every_field_naming_plans_case_insensitively_and_owners_by_email(client, token, csm):
    item = {
        "external_id": "ext-1",
        "name": "Globex",
        "plan": "pRO",
        "mrr": 99,
        "currency": "eur",
        "billing_period": "annual",
        "industry": "Logistics",
        "employees": 420,
        "region": "EMEA",
        "owner_email": "CASEY@example.com",
        "first_purchase_on": "2025-03-01",
        "status": "trial",
        "stripe_customer_id": "cus_123",
    }

    post_json(client, URL, {"accounts": [item]}, token=token)

    a = Account.objects.get(external_id="ext-1")
    assert (a.plan, a.mrr, a.currency, a.billing_period, a.industry, a.employees) == (
        plan("Pro"),
        Decimal("99.00"),
        "EUR",
        "annual",
        "Logistics",
        420,
    )
    assert (a.region, a.owner, a.first_purchase_on, a.status, a.stripe_customer_id) == (
        "EMEA",
        csm,
        dt.date(2025, 3, 1),
        "trial",
        "cus_123",
    )
    assert a.plan_started_on == dt.date(2025, 3, 1)


def test_an_update_changes_only_the_fields_sent_and_null_clears_one(client, token, account):
    body = {"accounts": [{"external_id": account.external_id, "industry": "Retail", "employees": None}]}

    response = post_json(client, URL, body, token=token)

    assert response.json() == {"created": 0, "updated": 1, "duplicates": 0}
    account.refresh_from_db()
    assert (account.name, account.industry, account.employees, account.plan) == (
        "Acme Analytics",
        "Retail",
        None,
        plan("Basic"),
    )


def test_an_update_that_changes_nothing_is_a_duplicate(client, token, account):
    body = {"accounts": [{"external_id": account.external_id, "name": "Acme Analytics", "region": "EMEA"}]}

    assert post_json(client, URL, body, token=token).json() == {"created": 0, "updated": 0, "duplicates": 1}


def test_a_plan_change_refreshes_the_accounts_indicators(client, token, account, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks() as callbacks:
        post_json(client, URL, {"accounts": [{"external_id": account.external_id, "plan": "Pro"}]}, token=token)

    assert len(callbacks) == 1
    account.refresh_from_db()
    assert account.plan == plan("Pro")


def test_it_names_every_bad_account_by_pointer(client, token, account):
    AccountFactory(external_id="taken", stripe_customer_id="cus_taken")
    body = {
        "accounts": [
            {"external_id": "new-1"},
            {"external_id": "new-2", "name": "Two", "plan": "Platinum"},
            {"external_id": "new-3", "name": "Three", "owner_email": "nobody@example.com"},
            {"external_id": account.external_id, "stripe_customer_id": "cus_taken"},
            {"external_id": "new-5", "name": None},
            {"external_id": "new-6", "name": "Six", "status": "asleep", "currency": "EURO"},
            {"external_id": "new-7", "name": "Seven"},
            {"external_id": "new-7", "name": "Seven, again"},
        ]
    }

    response = post_json(client, URL, body, token=token)

    assert response.status_code == 422
    assert pointers(response) == [
        "/accounts/0/name",
        "/accounts/1/plan",
        "/accounts/2/owner_email",
        "/accounts/3/stripe_customer_id",
        "/accounts/4/name",
        "/accounts/5/currency",
        "/accounts/5/status",
        "/accounts/7/external_id",
    ]
    assert not Account.objects.filter(external_id__startswith="new-").exists()


def test_a_full_batch_takes_a_fixed_number_of_queries(client, token, django_assert_max_num_queries):
    existing = AccountFactory.create_batch(500)
    body = {
        "accounts": [{"external_id": a.external_id, "name": a.name + " Inc", "plan": "Pro"} for a in existing]
        + [{"external_id": f"new-{i}", "name": f"New {i}", "plan": "basic"} for i in range(500)]
    }
    post_json(client, URL, {"accounts": []}, token=token)

    with django_assert_max_num_queries(9):
        response = post_json(client, URL, body, token=token)

    assert response.json() == {"created": 500, "updated": 500, "duplicates": 0}


def test_it_returns_an_account_with_its_limits_and_latest_usage(client, token, account, csm):
    UsageSnapshot.objects.create(account=account, metric=metric("seats"), value=3, captured_on=dt.date(2026, 11, 1))
    UsageSnapshot.objects.create(account=account, metric=metric("seats"), value=4, captured_on=dt.date(2026, 11, 2))

    response = get(client, f"/api/v1/accounts/{account.external_id}", token)

    assert response.status_code == 200
    assert response.json() == {
        "external_id": account.external_id,
        "name": "Acme Analytics",
        "plan": "Basic",
        "mrr": 29.0,
        "currency": "USD",
        "status": "active",
        "owner_email": csm.email,
        "first_purchase_on": "2025-06-01",
        "limits": {"seats": 5.0, "storage_gb": 10.0, "integrations": 3.0, "api_calls": 10000.0, "projects": 10.0},
        "usage": {"seats": {"value": 4.0, "date": "2026-11-02"}},
    }


def test_an_unlimited_metric_reads_as_null(client, token):
    enterprise = AccountFactory(plan=plan("Enterprise"), owner=None)

    body = get(client, f"/api/v1/accounts/{enterprise.external_id}", token).json()

    assert body["limits"]["seats"] is None and body["limits"]["storage_gb"] == 1024.0
    assert body["owner_email"] is None and body["usage"] == {}


def test_reading_an_account_needs_a_token_and_an_existing_id(client, token, account, django_assert_max_num_queries):
    assert get(client, f"/api/v1/accounts/{account.external_id}").status_code == 401
    assert get(client, "/api/v1/accounts/nope", token).status_code == 404
    with django_assert_max_num_queries(4):
        assert get(client, f"/api/v1/accounts/{account.external_id}", token).status_code == 200
