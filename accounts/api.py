"""API endpoints for data in (accounts, usage, events, subscription changes, Segment) and one account out.

Writes take at most 1,000 items, validate all of them before storing any, and answer
`{"created", "updated", "duplicates"}`. They honour an `Idempotency-Key` header (see accounts.idempotency).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

from django.db import IntegrityError
from django.db.models import OuterRef, Subquery
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404
from django.utils import timezone
from ninja import Header, Router, Schema

from accounts import ingest, segment
from accounts.api_errors import Detail, Invalid, ingest_errors_response, invalid_response, json_loads, json_response
from accounts.idempotency import idempotent_write
from accounts.models import Account, Metric, PlanLimit, UsageSnapshot

router = Router(tags=["data in"])

# Declared on each write for the schema and docs; accounts.idempotency reads the header itself.
IDEMPOTENCY_HEADER = Header(
    None,
    alias="Idempotency-Key",
    description="Any unique string (e.g. a UUID). Sent again with the same body, the first answer is replayed.",
)


class WriteCounts(Schema):
    created: int
    updated: int
    duplicates: int


WRITE_RESPONSES = {200: WriteCounts, 400: Detail, 401: Detail, 409: Detail, 413: Detail, 422: Invalid}


def _write(request: HttpRequest, collection: str, apply: Callable[[dt.datetime], ingest.WriteResult]) -> HttpResponse:
    at = timezone.now()

    def write() -> HttpResponse:
        try:
            result = apply(at)
        except ingest.IngestError as exc:
            return ingest_errors_response(exc.errors, collection=collection)
        return json_response(result.as_dict())

    return idempotent_write(request, write, at=at)


@router.post("/accounts", response=WRITE_RESPONSES, summary="Create or update accounts")
def accounts_post(request: HttpRequest, payload: ingest.AccountsIn, idempotency_key: str | None = IDEMPOTENCY_HEADER):
    """Upsert accounts by `external_id`; only `external_id` and `name` are needed to create one. Fields left
    out keep their value. `plan` names a plan (case-insensitive); `owner_email` names the owning CSM."""
    return _write(request, "accounts", lambda at: ingest.accounts_upsert(batch=payload, at=at))


@router.post("/usage", response=WRITE_RESPONSES, summary="Store usage snapshots")
def usage_post(request: HttpRequest, payload: ingest.UsageIn, idempotency_key: str | None = IDEMPOTENCY_HEADER):
    """One value per account, metric and day; sending a day again replaces its value (counted as updated,
    or as a duplicate when the value is the same). The accounts' indicators refresh right after."""
    return _write(
        request,
        "snapshots",
        lambda at: ingest.usage_ingest(batch=payload, today=timezone.localdate(at)),
    )


@router.post("/events", response=WRITE_RESPONSES, summary="Store engagement events")
def events_post(request: HttpRequest, payload: ingest.EventsIn, idempotency_key: str | None = IDEMPOTENCY_HEADER):
    """Logins and feature use. `id` is yours: an id already stored counts as a duplicate. `feature` is
    required for every type but login; timestamps without an offset are UTC."""
    return _write(request, "events", lambda at: ingest.events_ingest(batch=payload, now=at))


@router.post("/subscriptions", response=WRITE_RESPONSES, summary="Record plan and MRR changes")
def subscriptions_post(
    request: HttpRequest, payload: ingest.SubscriptionsIn, idempotency_key: str | None = IDEMPOTENCY_HEADER
):
    """Each change is the account's plan and MRR from `date` on. The movement's kind (new, expansion,
    contraction, churn, reactivation) follows from the MRR in effect before it; the latest change also
    updates the account. A change equal to the state in effect is a duplicate."""
    return _write(request, "changes", lambda at: ingest.subscriptions_ingest(batch=payload, at=at))


class UsageValue(Schema):
    value: float
    date: dt.date


class AccountOut(Schema):
    external_id: str
    name: str
    plan: str | None
    mrr: float
    currency: str
    status: str
    owner_email: str | None
    first_purchase_on: dt.date | None
    limits: dict[str, float | None]
    usage: dict[str, UsageValue]


@router.get("/accounts/{external_id}", response={200: AccountOut, 404: Detail}, summary="Read an account")
def account_get(request: HttpRequest, external_id: str):
    """The account, its plan's limit per limit-bearing metric (null = unlimited) and its latest usage."""
    account = get_object_or_404(Account.objects.select_related("plan", "owner"), external_id=external_id)
    latest = UsageSnapshot.objects.filter(account=account, metric=OuterRef("pk")).order_by("-captured_on")
    limit = PlanLimit.objects.filter(plan_id=account.plan_id, metric=OuterRef("pk")).values("limit")[:1]
    metrics = Metric.objects.annotate(
        latest_value=Subquery(latest.values("value")[:1]),
        latest_on=Subquery(latest.values("captured_on")[:1]),
        plan_limit=Subquery(limit),
    ).order_by("display_order", "key")
    return {
        "external_id": account.external_id,
        "name": account.name,
        "plan": account.plan.name if account.plan else None,
        "mrr": account.mrr,
        "currency": account.currency,
        "status": account.status,
        "owner_email": account.owner.email if account.owner and account.owner.email else None,
        "first_purchase_on": account.first_purchase_on,
        "limits": {m.key: m.plan_limit for m in metrics if m.kind == Metric.Kind.LIMIT},
        "usage": {m.key: {"value": m.latest_value, "date": m.latest_on} for m in metrics if m.latest_on is not None},
    }


class SegmentCounts(WriteCounts):
    ignored: int


@router.post(
    "/segment",
    auth=None,
    response={200: SegmentCounts, 400: Detail, 401: Detail, 409: Detail, 413: Detail, 422: Invalid},
    summary="Segment webhook destination",
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": {"type": "object", "description": segment.BODY_DESCRIPTION}}},
        }
    },
)
def segment_post(request: HttpRequest):
    """Segment `identify`, `group` and `track` calls, one at a time or as `{"batch": [...]}`.

    Authenticate as Segment's Webhooks destination does: its shared secret signs the body (`X-Signature`,
    hex HMAC-SHA1), or set a header `Authorization: Bearer <API token>` in the destination's settings.
    """
    if not segment.segment_request_authenticated(request):
        return json_response({"detail": "Missing or invalid Segment credentials."}, status=401)
    try:
        body = json_loads(request.body)
    except (ValueError, RecursionError):
        return json_response({"detail": "Cannot parse request body"}, status=400)
    try:
        messages = segment.segment_messages(body)
    except segment.SegmentBodyError as exc:
        return json_response({"detail": str(exc)}, status=400)
    if len(messages) > ingest.MAX_ITEMS:
        return invalid_response([{"pointer": "/batch", "message": f"At most {ingest.MAX_ITEMS} messages a request."}])
    try:
        result = segment.segment_messages_ingest(messages=messages, at=timezone.now())
    except IntegrityError:
        return json_response({"detail": "A concurrent request wrote the same rows; send this one again."}, status=409)
    return json_response(result.as_dict())
