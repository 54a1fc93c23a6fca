"""Segment's Webhooks destination: identify, group and track calls become accounts and engagement events.

Following Segment's spec: a `group` call's groupId is the account's external_id (traits name, industry
and employees describe it; an unknown group creates the account) and ties its userId to the account; an
`identify` call does the same when it carries `context.groupId` or `traits.company.id`. A `track` call
becomes an engagement event when an admin mapped its event name (SegmentEventMapping); its account is
`context.groupId`, else the account its userId was tied to. `messageId` is the event's id, so Segment's
retries are stored once. Messages that cannot be used (other types, unmapped events, unknown accounts)
are acknowledged and counted as ignored: Segment cannot fix them by sending them again.

Unlike the JSON API, unknown fields are ignored: Segment sends many we have no use for.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import hashlib
import hmac
from dataclasses import dataclass

from django.conf import settings
from django.db import transaction
from django.http import HttpRequest
from django.utils import timezone
from django.utils.dateparse import parse_datetime
from django.utils.text import slugify
from pydantic import ValidationError

from accounts import ingest
from accounts.models import Account, EngagementEvent, SegmentEventMapping, SegmentUser
from accounts.tokens import api_token_authenticate

BODY_DESCRIPTION = 'A Segment message (identify, group or track), an array of them, or {"batch": [messages]}.'
EVENT_ID_MAX = EngagementEvent._meta.get_field("external_id").max_length


class SegmentBodyError(ValueError):
    """A body that is JSON but not Segment messages."""


def segment_request_authenticated(request: HttpRequest) -> bool:
    """Whether the request carries credentials of our Segment destination.

    Accepted: `X-Signature` = hex HMAC-SHA1 of the raw body with SEGMENT_SHARED_SECRET (how Segment's
    Webhooks destination signs), HTTP Basic with that secret as user name (how Segment's own HTTP API takes
    a write key), or `Authorization: Bearer <API token>` added as a header in the destination's settings.
    All comparisons are constant-time.
    """
    secret = settings.SEGMENT_SHARED_SECRET
    signature = request.headers.get("X-Signature")
    if secret and signature:
        expected = hmac.new(secret.encode(), request.body, hashlib.sha1).hexdigest()
        return hmac.compare_digest(expected.encode(), signature.strip().lower().encode("utf-8", "replace"))
    scheme, _, credentials = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() == "basic" and secret:
        try:
            decoded = base64.b64decode(credentials.strip(), validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError):
            return False
        username = decoded.partition(":")[0]
        return hmac.compare_digest(username.encode(), secret.encode())
    if scheme.lower() == "bearer":
        return api_token_authenticate(credentials.strip()) is not None
    return False


def segment_messages(body: object) -> list:
    """The messages of a request body: one message, an array, or Segment's `{"batch": [...]}`."""
    if isinstance(body, list):
        return body
    if isinstance(body, dict) and isinstance(body.get("batch"), list):
        return body["batch"]
    if isinstance(body, dict):
        return [body]
    raise SegmentBodyError('Expected a Segment message, an array of them, or {"batch": [...]}.')


@dataclass(slots=True)
class SegmentResult(ingest.WriteResult):
    ignored: int = 0

    def as_dict(self) -> dict[str, int]:
        return {**ingest.WriteResult.as_dict(self), "ignored": self.ignored}


def _id(value: object, max_length: int = 100) -> str:
    """An id as Segment sends it (a string, sometimes a number); "" when missing or too long to store."""
    if isinstance(value, bool) or not isinstance(value, str | int):
        return ""
    text = str(value).strip()
    return text if len(text) <= max_length else ""


def _dict(value: object) -> dict:
    return value if isinstance(value, dict) else {}


def _text(value: object, max_length: int) -> str:
    return value.strip()[:max_length] if isinstance(value, str) else ""


def _when(message: dict, at: dt.datetime) -> dt.datetime:
    """The message's time (timestamp, else originalTimestamp, sentAt, receivedAt); `at` when none is usable."""
    for name in ("timestamp", "originalTimestamp", "sentAt", "receivedAt"):
        raw = message.get(name)
        if not isinstance(raw, str) or len(raw) > 40:
            continue
        try:
            parsed = parse_datetime(raw)
        except ValueError:
            parsed = None
        if parsed is not None:
            parsed = parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.UTC)
            return min(parsed, at)
    return at


def _group_item(group_id: str, traits: dict, *, exists: bool) -> ingest.AccountIn | None:
    values: dict = {"external_id": group_id}
    name = _text(traits.get("name"), 200)
    if name or not exists:
        values["name"] = name or group_id
    if industry := _text(traits.get("industry"), 60):
        values["industry"] = industry
    employees = traits.get("employees")
    if isinstance(employees, int) and not isinstance(employees, bool) and 0 <= employees < 2**31:
        values["employees"] = employees
    try:
        return ingest.AccountIn.model_validate(values)
    except ValidationError:
        return None


def segment_messages_ingest(*, messages: list, at: dt.datetime) -> SegmentResult:
    """Apply Segment messages in one transaction: accounts from group calls, user links, then track events.

    Each message counts once: a group call as its account's created / updated / duplicate, an identify call
    as updated (new link) or duplicate, a track call as created or duplicate (its messageId), else ignored.
    Queries: known groups, the account upsert's few, accounts by id, user links (read, upsert), event
    mappings, and the event insert; none per message.
    """
    result = SegmentResult()
    groups: dict[str, dict] = {}  # group id -> merged traits, later calls win
    links: dict[str, str] = {}  # user id -> group id, from group and identify calls
    identified: list[tuple[str, str]] = []
    tracks: list[dict] = []
    for message in messages:
        message = _dict(message)
        kind = message.get("type")
        user_id = _id(message.get("userId"), 200)
        context, traits = _dict(message.get("context")), _dict(message.get("traits"))
        if kind == "group" and (group_id := _id(message.get("groupId"))):
            if group_id in groups:
                result.duplicates += 1
            groups.setdefault(group_id, {}).update(traits)
            if user_id:
                links[user_id] = group_id
        elif (
            kind == "identify"
            and user_id
            and (group_id := _id(context.get("groupId")) or _id(_dict(traits.get("company")).get("id")))
        ):
            links[user_id] = group_id
            identified.append((user_id, group_id))
        elif kind == "track" and _id(message.get("event"), 200):
            tracks.append(message)
        else:
            result.ignored += 1

    with transaction.atomic(savepoint=False):
        known = set(Account.objects.filter(external_id__in=groups).values_list("external_id", flat=True))
        items = [_group_item(gid, traits, exists=gid in known) for gid, traits in groups.items()]
        result.ignored += sum(1 for item in items if item is None)
        upserted = ingest.accounts_upsert(batch=ingest.AccountsIn(accounts=[i for i in items if i is not None]), at=at)
        result.created += upserted.created
        result.updated += upserted.updated
        result.duplicates += upserted.duplicates

        track_groups = {_id(_dict(m.get("context")).get("groupId")) for m in tracks} - {""}
        accounts = ingest.account_ids_by_external_id(set(links.values()) | track_groups)
        track_users = {_id(m.get("userId"), 200) for m in tracks} - {""}
        stored_links = dict(
            SegmentUser.objects.filter(user_id__in=track_users | links.keys()).values_list("user_id", "account_id")
        )
        new_links = {user: accounts[gid] for user, gid in links.items() if gid in accounts}
        changed = {user: account_id for user, account_id in new_links.items() if stored_links.get(user) != account_id}
        for user_id, group_id in identified:
            if group_id not in accounts:
                result.ignored += 1
            elif user_id in changed:
                result.updated += 1
            else:
                result.duplicates += 1
        SegmentUser.objects.bulk_create(
            [SegmentUser(user_id=user, account_id=account_id, updated_at=at) for user, account_id in changed.items()],
            update_conflicts=True,
            unique_fields=["user_id"],
            update_fields=["account", "updated_at"],
        )
        user_accounts = {**stored_links, **new_links}

        rows = _event_rows(tracks, accounts, user_accounts, at, result) if tracks else []
        inserted = ingest.event_rows_insert(rows=rows, as_of=timezone.localdate(at))
    result.created += inserted.created
    result.duplicates += inserted.duplicates
    return result


def _event_rows(
    tracks: list[dict], accounts: dict[str, int], user_accounts: dict[str, int], at: dt.datetime, result: SegmentResult
) -> list[ingest.EventRow]:
    mappings = {m.event_name.lower(): m for m in SegmentEventMapping.objects.filter(active=True)}
    rows = []
    for message in tracks:
        mapping = mappings.get(_id(message.get("event"), 200).lower())
        message_id = _id(message.get("messageId"), 500)
        user_id = _id(message.get("userId"), 200)
        group_id = _id(_dict(message.get("context")).get("groupId"))
        account_id = accounts.get(group_id) if group_id else user_accounts.get(user_id)
        if mapping is None or not message_id or account_id is None:
            result.ignored += 1
            continue
        if len(message_id) > EVENT_ID_MAX:
            message_id = hashlib.sha256(message_id.encode()).hexdigest()
        feature = mapping.feature or _text(_dict(message.get("properties")).get("feature"), 60)
        if not feature and mapping.kind in ingest.FEATURE_KINDS:
            feature = slugify(_id(message.get("event"), 200))[:60]
        rows.append(
            ingest.EventRow(
                external_id=message_id,
                account_id=account_id,
                kind=mapping.kind,
                feature=feature,
                user_ref=(user_id or _id(message.get("anonymousId"), 200))[:100],
                occurred_at=_when(message, at),
            )
        )
    return rows
