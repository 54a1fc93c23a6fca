"""Billing webhooks. Here rather than in accounts because an upgrade also closes an opportunity as won
(opportunities.billing, connected to the accounts app's `mrr_expanded` signal)."""

from __future__ import annotations

import time

from django.conf import settings
from django.db import IntegrityError
from django.http import HttpRequest
from django.utils import timezone
from ninja import Router, Schema

from accounts.api import Detail
from accounts.api_errors import json_loads, json_response
from accounts.stripe_events import SignatureError, StripePayloadError, stripe_event_apply, stripe_signature_verify
from opportunities import billing  # noqa: F401 - connects the receiver that closes won opportunities

router = Router(tags=["webhooks"])


class StripeAck(Schema):
    status: str
    detail: str


@router.post(
    "/webhooks/stripe",
    auth=None,
    response={200: StripeAck, 400: Detail, 409: Detail, 413: Detail},
    summary="Stripe webhook endpoint",
    openapi_extra={
        "parameters": [
            {"name": "Stripe-Signature", "in": "header", "required": True, "schema": {"type": "string"}},
        ],
        "requestBody": {"required": True, "content": {"application/json": {"schema": {"type": "object"}}}},
    },
)
def stripe_webhook(request: HttpRequest):
    """customer.subscription.created / updated / deleted from Stripe, signed with STRIPE_WEBHOOK_SECRET.

    A bad or old signature is a 400 and changes nothing; an event id seen before, or another event type,
    is acknowledged with 200 and changes nothing.
    """
    secret = settings.STRIPE_WEBHOOK_SECRET
    if not secret:
        return json_response({"detail": "Stripe webhooks are not set up: STRIPE_WEBHOOK_SECRET is empty."}, status=400)
    try:
        stripe_signature_verify(
            payload=request.body, header=request.headers.get("Stripe-Signature", ""), secret=secret, now=time.time()
        )
    except SignatureError as exc:
        return json_response({"detail": str(exc)}, status=400)
    try:
        outcome = stripe_event_apply(event=json_loads(request.body), at=timezone.now())
    except (ValueError, RecursionError) as exc:  # malformed JSON, or StripePayloadError
        detail = str(exc) if isinstance(exc, StripePayloadError) else "Cannot parse request body"
        return json_response({"detail": detail}, status=400)
    except IntegrityError:
        # The same event delivered twice at once: Stripe retries this one and then finds it applied.
        return json_response({"detail": "A concurrent delivery is being applied; retry."}, status=409)
    return json_response({"status": outcome.status, "detail": outcome.detail})
