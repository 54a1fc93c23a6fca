"""Stripe webhooks: signature check, and customer.subscription.* events turned into subscription changes.

The endpoint lives in the opportunities app (opportunities/webhooks.py), because an upgrade also closes the
account's open opportunity; everything about Stripe's formats is here.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation

from django.db import transaction
from django.utils import timezone

from accounts import ingest
from accounts.models import Account, MrrMovement, Plan, StripeEvent, StripePriceMapping

SIGNATURE_TOLERANCE_SECONDS = 300
"""Stripe's default: a signed request older (or further ahead) than this is refused, against replays."""

SUBSCRIPTION_EVENTS = {
    "customer.subscription.created",
    "customer.subscription.updated",
    "customer.subscription.deleted",
}
# Subscriptions in these states bring no revenue (trials, first payment pending, paused, ended).
NOT_PAYING = {"trialing", "incomplete", "incomplete_expired", "canceled", "paused"}
MONTHS_PER_INTERVAL = {"day": Decimal(12) / 365, "week": Decimal(12) / 52, "month": Decimal(1), "year": Decimal(12)}
# Amounts in these currencies are in whole units, not cents (Stripe's list of zero-decimal currencies).
ZERO_DECIMAL_CURRENCIES = {
    "bif", "clp", "djf", "gnf", "jpy", "kmf", "krw", "mga", "pyg", "rwf", "ugx", "vnd", "vuv", "xaf", "xof", "xpf",
}  # fmt: skip
MAX_MRR = Decimal("9999999999.99")


class SignatureError(ValueError):
    """The Stripe-Signature header is missing, malformed, does not match, or is too old."""


class StripePayloadError(ValueError):
    """A signed body that is not a Stripe event we can read."""


def stripe_signature_verify(*, payload: bytes, header: str, secret: str, now: float) -> None:
    """Check `Stripe-Signature: t=<unix>,v1=<hex>[,v1=<hex>...]` as Stripe specifies.

    expected = hex HMAC-SHA256(secret, "<t>.<raw body>"); any v1 may match (Stripe sends several while a
    secret is being rolled), compared in constant time; then |now − t| must be within the tolerance.
    """
    timestamp, signatures = None, []
    for part in header.split(","):
        name, _, value = part.strip().partition("=")
        if name == "t":
            timestamp = value
        elif name == "v1":
            signatures.append(value)
    if timestamp is None or not timestamp.isascii() or not timestamp.isdigit() or len(timestamp) > 12:
        raise SignatureError("No valid timestamp in the Stripe-Signature header.")
    if not signatures:
        raise SignatureError("No v1 signature in the Stripe-Signature header.")
    expected = hmac.new(secret.encode(), timestamp.encode() + b"." + payload, hashlib.sha256).hexdigest().encode()
    if not any(hmac.compare_digest(expected, s.encode("utf-8", "replace")) for s in signatures):
        raise SignatureError("No signature matches the body.")
    if abs(now - int(timestamp)) > SIGNATURE_TOLERANCE_SECONDS:
        raise SignatureError("The signature's timestamp is outside the tolerance.")


def _items(subscription: dict) -> list[dict]:
    items = subscription.get("items")
    data = items.get("data") if isinstance(items, dict) else None
    if not isinstance(data, list) or not all(isinstance(item, dict) for item in data):
        raise StripePayloadError("The subscription has no items list.")
    return data


def _price(item: dict) -> dict:
    # `price` on current API versions; `plan` on subscriptions created before prices existed.
    price = item.get("price") or item.get("plan") or {}
    return price if isinstance(price, dict) else {}


def subscription_mrr(subscription: dict) -> Decimal:
    """MRR of a subscription: Σ quantity × unit amount over its items, per month.

    unit amounts are in cents (whole units for zero-decimal currencies); a yearly price counts 1/12 a
    month, every `interval_count` months 1/interval_count. Metered items have no fixed amount and count 0.
    """
    total = Decimal(0)
    try:
        for item in _items(subscription):
            price = _price(item)
            recurring = price.get("recurring") if isinstance(price.get("recurring"), dict) else price
            if recurring.get("usage_type") == "metered":
                continue
            unit = price.get("unit_amount_decimal")
            unit = Decimal(str(unit if unit is not None else price.get("unit_amount") or 0))
            quantity = item.get("quantity")
            quantity = Decimal(1 if quantity is None else int(quantity))
            months = MONTHS_PER_INTERVAL[recurring.get("interval") or "month"] * int(
                recurring.get("interval_count") or 1
            )
            currency = str(price.get("currency") or subscription.get("currency") or "").lower()
            divisor = 1 if currency in ZERO_DECIMAL_CURRENCIES else 100
            total += unit * quantity / divisor / months
    except (KeyError, TypeError, ValueError, InvalidOperation, AttributeError, ZeroDivisionError) as exc:
        raise StripePayloadError(f"Cannot read the subscription's prices: {exc!r}.") from exc
    if not 0 <= total <= MAX_MRR:
        raise StripePayloadError("The subscription's MRR is out of range.")
    return total.quantize(Decimal("0.01"))


def subscription_plan(subscription: dict) -> Plan | None:
    """The plan a subscription's prices stand for: the admin's price mapping first, else the price's
    lookup_key or metadata.plan naming a plan (case-insensitive). With several, the highest tier wins."""
    prices = [_price(item) for item in _items(subscription)]
    ids = {p["id"] for p in prices if isinstance(p.get("id"), str)}
    mapped = {m.price_id: m.plan for m in StripePriceMapping.objects.filter(price_id__in=ids).select_related("plan")}
    by_name = {p.name.lower(): p for p in Plan.objects.all()}
    found = []
    for price in prices:
        metadata = price.get("metadata") if isinstance(price.get("metadata"), dict) else {}
        names = [n for n in (price.get("lookup_key"), metadata.get("plan")) if isinstance(n, str)]
        plan = mapped.get(price.get("id")) or next(
            (by_name[n.strip().lower()] for n in names if n.strip().lower() in by_name), None
        )
        if plan is not None:
            found.append(plan)
    return max(found, key=lambda p: p.tier_rank, default=None)


def _billing_period(subscription: dict) -> str:
    intervals = set()
    for item in _items(subscription):
        price = _price(item)
        recurring = price.get("recurring") if isinstance(price.get("recurring"), dict) else price
        intervals.add(recurring.get("interval"))
    return Account.BillingPeriod.ANNUAL if "year" in intervals else Account.BillingPeriod.MONTHLY


@dataclass(frozen=True, slots=True)
class StripeOutcome:
    status: str  # applied | duplicate | ignored
    detail: str
    result: ingest.SubscriptionResult | None = None


def _account_for(subscription: dict) -> tuple[Account | None, str]:
    customer = subscription.get("customer")
    customer_id = customer.get("id") if isinstance(customer, dict) else customer
    customer_id = customer_id if isinstance(customer_id, str) and len(customer_id) <= 100 else ""
    if customer_id:
        account = Account.objects.filter(stripe_customer_id=customer_id).first()
        if account is not None:
            return account, customer_id
    metadata = subscription.get("metadata") if isinstance(subscription.get("metadata"), dict) else {}
    external_id = metadata.get("account_external_id")
    if isinstance(external_id, str) and external_id:
        return Account.objects.filter(external_id=external_id.strip()).first(), customer_id
    return None, customer_id


def stripe_event_apply(*, event: object, at: dt.datetime) -> StripeOutcome:
    """Apply a verified Stripe event once: subscription events become a subscription change.

    Customer -> account by the stored Stripe customer id, else the subscription's
    metadata.account_external_id (which then links the customer to the account). MRR from the items
    (`subscription_mrr`); 0 for a deleted subscription (churn) or one that is not paying; the plan from
    `subscription_plan` (kept when no price names one); dated on the event's creation day. The event id is
    stored with the change in one transaction, so a redelivery is acknowledged as a duplicate. Events for
    accounts we do not know are ignored and not stored, so they apply if Stripe sends them again later.
    """
    if not isinstance(event, dict) or not isinstance(event.get("id"), str) or not isinstance(event.get("type"), str):
        raise StripePayloadError("Not a Stripe event.")
    event_id, event_type = event["id"][:255], event["type"][:100]
    if event_type not in SUBSCRIPTION_EVENTS:
        return StripeOutcome("ignored", f"{event_type} events are not used.")
    data = event.get("data")
    subscription = data.get("object") if isinstance(data, dict) else None
    if not isinstance(subscription, dict):
        raise StripePayloadError("The event has no data.object.")
    created = event.get("created")
    if isinstance(created, int) and not isinstance(created, bool) and 0 < created < 2**33:
        on = timezone.localdate(dt.datetime.fromtimestamp(created, tz=dt.UTC))
    else:
        on = timezone.localdate(at)

    with transaction.atomic():
        if StripeEvent.objects.filter(event_id=event_id).exists():
            return StripeOutcome("duplicate", f"Event {event_id} was already applied.")
        account, customer_id = _account_for(subscription)
        if account is None:
            return StripeOutcome("ignored", f"No account for Stripe customer {customer_id or '(none)'}.")
        ending = event_type == "customer.subscription.deleted" or subscription.get("status") in NOT_PAYING
        mrr = Decimal("0.00") if ending else subscription_mrr(subscription)
        plan = subscription_plan(subscription)
        currency = subscription.get("currency")
        change = ingest.SubscriptionChange(
            account_id=account.pk,
            on=on,
            mrr=mrr,
            plan_id=plan.pk if plan else ingest.KEEP_PLAN,
            external_ref=event_id[:120],
            currency=currency.upper() if isinstance(currency, str) and len(currency) == 3 else "",
            billing_period=_billing_period(subscription),
            status=Account.Status.TRIAL if subscription.get("status") == "trialing" else "",
        )
        if customer_id and not account.stripe_customer_id:
            Account.objects.filter(pk=account.pk).update(stripe_customer_id=customer_id)
        result = ingest.subscription_changes_apply(changes=[change], source=MrrMovement.Source.STRIPE, at=at)
        movement = result.movements[0] if result.movements else None
        detail = (
            f"{movement.get_kind_display()}: MRR {movement.mrr_before} → {movement.mrr_after}."
            if movement
            else "No MRR change."
        )
        StripeEvent.objects.create(event_id=event_id, type=event_type, account=account, outcome=detail, received_at=at)
    return StripeOutcome("applied", detail, result)
