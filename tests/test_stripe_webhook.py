"""POST /api/v1/webhooks/stripe with events built around Stripe's own subscription fixture."""

import copy
import hashlib
import hmac
import json
import time
from decimal import Decimal
from pathlib import Path

import pytest
from django.utils import timezone

from accounts.models import Account, MrrMovement, StripeEvent, StripePriceMapping
from accounts.stripe_events import subscription_mrr
from opportunities.models import OpportunityEvent, Outcome, Stage
from tests.factories import AccountFactory, OpportunityFactory, plan

URL = "/api/v1/webhooks/stripe"
SECRET = "whsec_test_secret"
FIXTURE = Path(__file__).resolve().parents[2] / "shared" / "fixtures" / "stripe" / "subscription.json"
CUSTOMER = "cus_NZbFQAsc0ptasX"
PRICE = "price_1MoS37LgUG5tbmjcCA3GTNX8"


@pytest.fixture(autouse=True)
def _secret(settings):
    settings.STRIPE_WEBHOOK_SECRET = SECRET


@pytest.fixture
def subscription() -> dict:
    """Stripe's fixture: one item, price $20.00 a month, quantity 1, customer cus_NZbFQAsc0ptasX."""
    return json.loads(FIXTURE.read_text())


@pytest.fixture
def customer(csm):
    """Acme, on Basic at $29, known to Stripe as the fixture's customer."""
    return AccountFactory(owner=csm, name="Acme Analytics", stripe_customer_id=CUSTOMER)


def event(subscription: dict, type="customer.subscription.updated", id="evt_1NG8Du2eZvKYlo2CUI79vXWy", **extra):
    return {
        "id": id,
        "object": "event",
        "api_version": "2022-11-15",
        "created": int(time.time()),
        "type": type,
        "data": {"object": subscription, "previous_attributes": {"items": {}}},
        "livemode": False,
        "pending_webhooks": 1,
        "request": {"id": None, "idempotency_key": None},
        **extra,
    }


def sign(body: bytes, *, secret: str = SECRET, at: int | None = None) -> str:
    t = int(time.time()) if at is None else at
    signature = hmac.new(secret.encode(), f"{t}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={t},v1={signature}"


def deliver(client, payload, *, signature=None):
    body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    headers = {"Stripe-Signature": sign(body) if signature is None else signature}
    return client.post(URL, data=body, content_type="application/json", headers=headers)


def upgraded_to_pro(subscription: dict, seats: int = 5) -> dict:
    """The fixture with 5 seats of its price, which an admin mapped to Pro: $100.00 a month."""
    StripePriceMapping.objects.get_or_create(price_id=PRICE, defaults={"plan": plan("Pro")})
    subscription["items"]["data"][0]["quantity"] = seats
    return subscription


def stored_rows() -> tuple:
    return (
        MrrMovement.objects.count(),
        StripeEvent.objects.count(),
        list(Account.objects.order_by("pk").values_list("plan_id", "mrr", "stripe_customer_id")),
        list(OpportunityEvent.objects.values_list("pk", flat=True)),
    )


def test_an_upgrade_sets_plan_and_mrr_records_the_movement_and_wins_the_open_opportunity(
    client, customer, subscription
):
    opportunity = OpportunityFactory(account=customer, stage=Stage.PRESENT, identified_at=timezone.now())

    response = deliver(client, event(upgraded_to_pro(subscription)))

    assert response.status_code == 200
    assert response.json() == {"status": "applied", "detail": "Expansion: MRR 29.00 → 100.00."}
    customer.refresh_from_db()
    assert (customer.plan, customer.mrr, customer.billing_period, customer.status) == (
        plan("Pro"),
        Decimal("100.00"),
        "monthly",
        "active",
    )
    movement = MrrMovement.objects.get(account=customer)
    assert (movement.kind, movement.mrr_before, movement.mrr_after, movement.plan_before, movement.plan_after) == (
        "expansion",
        Decimal("29.00"),
        Decimal("100.00"),
        plan("Basic"),
        plan("Pro"),
    )
    assert (movement.source, movement.external_ref, movement.occurred_on) == (
        "stripe",
        "evt_1NG8Du2eZvKYlo2CUI79vXWy",
        timezone.localdate(),
    )
    opportunity.refresh_from_db()
    assert (opportunity.outcome, opportunity.stage, opportunity.actual_mrr_delta, opportunity.target_plan) == (
        Outcome.WON,
        Stage.CLOSE,
        Decimal("71.00"),
        plan("Pro"),
    )
    assert opportunity.closed_at is not None and opportunity.version == 2
    closed = OpportunityEvent.objects.get(opportunity=opportunity)
    assert (closed.kind, closed.actor) == ("closed", None)
    assert closed.message.startswith("Closed as won by the billing system (Stripe)")
    assert "Basic → Pro" in closed.message and "(+71.00)" in closed.message


def test_the_same_event_twice_is_applied_once(client, customer, subscription):
    payload = event(upgraded_to_pro(subscription))
    deliver(client, payload)
    rows = stored_rows()

    response = deliver(client, payload)

    assert response.status_code == 200 and response.json()["status"] == "duplicate"
    assert stored_rows() == rows


def test_a_wrong_signature_is_refused_and_stores_nothing(client, customer, subscription):
    body = json.dumps(event(upgraded_to_pro(subscription))).encode()
    rows = stored_rows()

    for signature in [sign(body, secret="whsec_other"), sign(body + b" "), "", "t=,v1=", "v1=abc", "t=1,v0=abc"]:
        response = deliver(client, body, signature=signature)
        assert response.status_code == 400, signature

    assert stored_rows() == rows


def test_an_old_timestamp_is_refused_and_stores_nothing(client, customer, subscription):
    body = json.dumps(event(upgraded_to_pro(subscription))).encode()
    rows = stored_rows()

    response = deliver(client, body, signature=sign(body, at=int(time.time()) - 301))

    assert response.status_code == 400
    assert "tolerance" in response.json()["detail"]
    assert stored_rows() == rows


def test_any_of_several_v1_signatures_may_match(client, customer, subscription):
    body = json.dumps(event(upgraded_to_pro(subscription))).encode()
    t, good = sign(body).split(",")
    response = deliver(client, body, signature=f"{t},v1={'0' * 64},{good},v0=ignored")

    assert response.status_code == 200 and response.json()["status"] == "applied"


def test_the_endpoint_is_off_without_a_secret(client, customer, subscription, settings):
    settings.STRIPE_WEBHOOK_SECRET = ""

    assert deliver(client, event(subscription)).status_code == 400
    assert not MrrMovement.objects.exists()


def test_other_event_types_are_acknowledged_and_ignored(client, customer, subscription):
    response = deliver(client, event(subscription, type="invoice.paid"))

    assert response.status_code == 200
    assert response.json()["status"] == "ignored"
    assert not StripeEvent.objects.exists() and not MrrMovement.objects.exists()


def test_a_deleted_subscription_is_a_churn(client, customer, subscription):
    deliver(client, event(subscription, type="customer.subscription.deleted"))

    customer.refresh_from_db()
    assert (customer.mrr, customer.status) == (Decimal("0.00"), "churned")
    assert MrrMovement.objects.get().kind == "churn"


def test_a_customer_is_found_by_the_subscriptions_account_metadata_and_linked(client, subscription, account):
    subscription["metadata"] = {"account_external_id": account.external_id}
    subscription["items"]["data"][0]["price"]["lookup_key"] = "PRO"
    subscription["items"]["data"][0]["quantity"] = 5

    deliver(client, event(subscription))

    account.refresh_from_db()
    assert (account.stripe_customer_id, account.plan, account.mrr) == (CUSTOMER, plan("Pro"), Decimal("100.00"))


def test_an_event_for_an_unknown_customer_is_ignored_and_not_remembered(client, db, subscription):
    response = deliver(client, event(subscription))

    assert response.json()["status"] == "ignored"
    assert not StripeEvent.objects.exists()


def test_mrr_sums_quantity_times_unit_amount_per_month(subscription):
    items = subscription["items"]["data"]
    yearly = copy.deepcopy(items[0])
    yearly["price"].update(unit_amount=99000, unit_amount_decimal="99000", recurring={"interval": "year"})
    yearly["quantity"] = 2
    items.append(yearly)

    # $20.00 a month, plus 2 × $990.00 a year / 12
    assert subscription_mrr(subscription) == Decimal("20.00") + Decimal("165.00")
    # Yen have no cents
    in_yen = {"currency": "jpy", "items": {"data": [{"quantity": 3, "price": {"unit_amount": 1000}}]}}
    assert subscription_mrr(in_yen) == Decimal("3000.00")


def test_signed_garbage_is_a_400_or_ignored_never_an_error_page(client, customer, subscription):
    shapes = [
        b"not json", b"null", b"[]", b'{"a": NaN}', b"{}",
        {"id": 5, "type": "customer.subscription.updated"},
        {"id": "evt_x", "type": "customer.subscription.updated"},
        {"id": "evt_x", "type": "customer.subscription.updated", "data": {"object": []}},
        event({**subscription, "items": None}, id="evt_a"),
        event({**subscription, "items": {"data": [None]}}, id="evt_b"),
        event({**subscription, "items": {"data": [{"price": {"unit_amount": "lots"}}]}}, id="evt_c"),
        event({**subscription, "items": {"data": [{"price": {"unit_amount": 10**30}}]}}, id="evt_d"),
        event({**subscription, "items": {"data": [{"price": {"recurring": {"interval": "fortnight"}}}]}}, id="evt_e"),
        event({**subscription, "items": {"data": [{"price": {"recurring": {"interval_count": 0}}}]}}, id="evt_f"),
        event({**subscription, "customer": {"id": ["x"]}, "metadata": "x"}, id="evt_g"),
        event(subscription, id="evt_h", created="yesterday"),
        event({**subscription, "currency": 7}, id="evt_i"),
    ]  # fmt: skip
    for payload in shapes:
        response = deliver(client, payload)

        assert response.status_code in (200, 400), (payload, response.content)
