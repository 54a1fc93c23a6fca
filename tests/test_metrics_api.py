"""GET /api/v1/metrics: the revenue metrics of a period, with the API token."""

import datetime as dt
import json
from decimal import Decimal

import pytest

from accounts.models import MrrMovement
from accounts.tokens import api_token_create
from tests.factories import AccountFactory

URL = "/api/v1/metrics"
KEYS = [
    "start",
    "end",
    "customers_at_start",
    "mrr_at_start",
    "upgraded_customers",
    "conversion_rate",
    "expansion_mrr",
    "reactivation_mrr",
    "contraction_mrr",
    "churned_mrr",
    "ndr",
    "avg_upgrade_value",
    "time_to_upsell_days_median",
    "time_to_upsell_days_mean",
    "arpu",
    "monthly_churn_rate",
    "ltv",
]


@pytest.fixture
def token(db):
    _, raw = api_token_create(name="finance")
    return raw


def get(client, query: str, token: str | None = None):
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return client.get(f"{URL}?{query}" if query else URL, headers=headers)


def movement(account, on: str, before: str, after: str, kind: str) -> None:
    MrrMovement.objects.create(
        account=account,
        occurred_on=dt.date.fromisoformat(on),
        mrr_before=Decimal(before),
        mrr_after=Decimal(after),
        kind=kind,
    )


@pytest.fixture
def book(db):
    """Two customers paying $100 and $60 since 2025, one new in February."""
    grower = AccountFactory(mrr=Decimal("150.00"), first_purchase_on=dt.date(2025, 3, 1))
    movement(grower, "2025-03-01", "0", "100", MrrMovement.Kind.NEW)
    movement(grower, "2026-01-20", "100", "150", MrrMovement.Kind.EXPANSION)
    leaver = AccountFactory(mrr=Decimal("0.00"), first_purchase_on=dt.date(2025, 4, 1))
    movement(leaver, "2025-04-01", "0", "60", MrrMovement.Kind.NEW)
    movement(leaver, "2026-02-10", "60", "0", MrrMovement.Kind.CHURN)
    newcomer = AccountFactory(mrr=Decimal("90.00"), first_purchase_on=dt.date(2026, 2, 1))
    movement(newcomer, "2026-02-01", "0", "90", MrrMovement.Kind.NEW)


def test_it_answers_every_figure_of_the_period(client, token, book):
    response = get(client, "start=2026-01-01&end=2026-03-31", token)

    assert response.status_code == 200
    body = response.json()
    assert list(body) == KEYS
    # Cohort: grower 100 + leaver 60 = 160 over 2; newcomer joined in February.
    # Expansion 50 (1 upgrade), churned 60: NDR (160 + 50 − 60) / 160 = 93.75%.
    # Conversion 1 / 2 = 50%. Time to upsell: 2025-03-01 -> 2026-01-20 = 325 days.
    # ARPU at Mar 31: (150 + 90) / 2 = 120. Churn rate 1 / 2 / (90 / 30.4375) = 16.91%;
    # LTV 120 / 0.169097… = 709.65.
    assert body == {
        "start": "2026-01-01",
        "end": "2026-03-31",
        "customers_at_start": 2,
        "mrr_at_start": 160.0,
        "upgraded_customers": 1,
        "conversion_rate": 50.0,
        "expansion_mrr": 50.0,
        "reactivation_mrr": 0.0,
        "contraction_mrr": 0.0,
        "churned_mrr": 60.0,
        "ndr": 93.75,
        "avg_upgrade_value": 50.0,
        "time_to_upsell_days_median": 325.0,
        "time_to_upsell_days_mean": 325.0,
        "arpu": 120.0,
        "monthly_churn_rate": 16.91,
        "ltv": 709.65,
    }


def test_it_writes_money_and_percentages_with_two_decimals(client, token, book):
    response = get(client, "start=2026-01-01&end=2026-03-31", token)

    assert response["Content-Type"] == "application/json"
    text = response.content.decode()
    assert '"mrr_at_start": 160.00' in text
    assert '"ndr": 93.75' in text
    assert '"conversion_rate": 50.00' in text
    json.loads(text)  # and it is still plain JSON


def test_it_answers_null_where_a_figure_is_undefined(client, token, book):
    # Nobody pays on 2025-01-01: the first purchase is in March 2025.
    body = get(client, "start=2025-01-01&end=2025-01-31", token).json()

    assert body["customers_at_start"] == 0
    assert body["mrr_at_start"] == 0
    for key in ("conversion_rate", "ndr", "avg_upgrade_value", "time_to_upsell_days_median", "monthly_churn_rate"):
        assert body[key] is None, key
    # Nobody pays at the end of January 2025 either (first purchases from March 2025): neither ARPU nor LTV.
    assert body["arpu"] is None
    assert body["ltv"] is None


def test_it_answers_a_day_long_period(client, token, book):
    body = get(client, "start=2026-01-20&end=2026-01-20", token).json()
    assert body["expansion_mrr"] == 50.0


def test_it_refuses_a_request_without_a_token(client, book):
    response = get(client, "start=2026-01-01&end=2026-03-31")
    assert response.status_code == 401


def test_it_refuses_a_revoked_or_unknown_token(client, book):
    response = get(client, "start=2026-01-01&end=2026-03-31", "not-a-token")
    assert response.status_code == 401


@pytest.mark.parametrize(
    ("query", "errors"),
    [
        ("", [("/query/start", "Required: a date as YYYY-MM-DD."), ("/query/end", "Required: a date as YYYY-MM-DD.")]),
        ("start=2026-01-01", [("/query/end", "Required: a date as YYYY-MM-DD.")]),
        ("start=01/01/2026&end=2026-03-31", [("/query/start", "Use a date as YYYY-MM-DD.")]),
        ("start=20260101&end=2026-03-31", [("/query/start", "Use a date as YYYY-MM-DD.")]),
        ("start=2026-02-30&end=2026-03-31", [("/query/start", "Not a valid date.")]),
        ("start=2026-03-31&end=2026-01-01", [("/query/end", "Is before start.")]),
        ("start=2026-01-01&end=9999-99-99", [("/query/end", "Not a valid date.")]),
    ],
)
def test_it_answers_422_naming_the_bad_parameter(client, token, query, errors):
    response = get(client, query, token)

    assert response.status_code == 422
    body = response.json()
    assert body["detail"].startswith("The period is invalid")
    assert [(e["pointer"], e["message"]) for e in body["errors"]] == errors


def test_it_answers_the_widest_period_without_overflowing(client, token, book):
    response = get(client, "start=0001-01-01&end=9999-12-31", token)
    assert response.status_code == 200
    assert response.json()["customers_at_start"] == 0


def test_it_documents_the_endpoint_in_the_schema(client):
    schema = client.get("/api/v1/openapi.json").json()
    operation = schema["paths"]["/api/v1/metrics"]["get"]
    assert {p["name"] for p in operation["parameters"]} == {"start", "end"}
