"""Data in: the schemas that validate incoming accounts, usage, events and subscription changes, and the
set-based writes behind them (used by the JSON API, the Segment and Stripe webhooks and the CSV import).

Every write validates the whole batch first and raises `IngestError` naming each bad item; only then does it
write, in one transaction, with a fixed number of queries per batch whatever its size. Counts come back as
`created` (new rows), `updated` (rows whose values changed) and `duplicates` (items that changed nothing).

Unknown fields are refused (422) rather than ignored: a misspelt field name would otherwise drop data silently.
"""

from __future__ import annotations

import datetime as dt
import re
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from decimal import Decimal
from typing import Annotated, ClassVar, Literal

from django.contrib.auth import get_user_model
from django.db import connection, models, transaction
from django.db.models.functions import Lower
from django.dispatch import Signal
from django.utils import timezone
from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PrivateAttr,
    StringConstraints,
    ValidationError,
    model_validator,
)
from pydantic_core import PydanticCustomError

from accounts.models import Account, EngagementEvent, Metric, MrrMovement, Plan, UsageSnapshot, movement_kind
from accounts.tasks import refresh_after_ingestion

MAX_ITEMS = 1000
"""Items per request (and per CSV chunk)."""

FUTURE_SLACK = dt.timedelta(days=1)
"""Dates and times up to a day ahead are accepted: senders in time zones east of ours are already there."""

# Sent inside the writing transaction when subscription changes recorded upgrades, so that higher layers
# (opportunities) can act on them atomically without accounts importing them.
# Arguments: movements (list[MrrMovement] of kind expansion), at (datetime).
mrr_expanded = Signal()
# Sent the same way when they recorded downgrades or churn (playbooks asks those accounts for feedback).
# Arguments: movements (list[MrrMovement] of kind contraction or churn), at (datetime).
mrr_contracted = Signal()


# --- Errors and results --------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class FieldError:
    """What is wrong with one item (index into the batch) or one of its fields (field=None: the whole item)."""

    index: int
    field: str | None
    message: str

    def pointer(self, collection: str) -> str:
        """The JSON pointer (RFC 6901) of the item or field inside the request body."""
        parts = [collection, str(self.index)] + ([self.field] if self.field else [])
        return "/" + "/".join(p.replace("~", "~0").replace("/", "~1") for p in parts)


class IngestError(Exception):
    """A batch that cannot be stored, with every reason found (nothing was written)."""

    def __init__(self, errors: list[FieldError]):
        self.errors = errors
        super().__init__(f"{len(errors)} invalid item(s)")


@dataclass(slots=True)
class WriteResult:
    created: int = 0
    updated: int = 0
    duplicates: int = 0

    def as_dict(self) -> dict[str, int]:
        return {"created": self.created, "updated": self.updated, "duplicates": self.duplicates}


@dataclass(slots=True)
class SubscriptionResult(WriteResult):
    movements: list[MrrMovement] = field(default_factory=list)


# --- Field types ---------------------------------------------------------------------------------------

_DATE_RE = re.compile(r"^\d{4}-\d{2}-\d{2}$")


def _iso_date_string(value: object) -> object:
    # pydantic would also take 1700000000 or "2026-01-01T00:00" as a date; the API promises YYYY-MM-DD.
    if isinstance(value, str) and _DATE_RE.match(value):
        return value
    raise PydanticCustomError("date_format", "Use a date as YYYY-MM-DD.")


def _iso_datetime_string(value: object) -> object:
    if isinstance(value, str) and len(value) <= 40:
        return value
    raise PydanticCustomError("datetime_format", "Use an ISO 8601 date and time, e.g. 2026-11-20T09:30:00Z.")


def _aware(value: dt.datetime) -> dt.datetime:
    """Times without an offset are taken as UTC."""
    return value if value.tzinfo else value.replace(tzinfo=dt.UTC)


def _text(max_length: int, *, min_length: int = 0):
    return Annotated[
        str, StringConstraints(strict=True, strip_whitespace=True, min_length=min_length, max_length=max_length)
    ]


ExternalId = _text(100, min_length=1)
IsoDate = Annotated[dt.date, BeforeValidator(_iso_date_string)]
Timestamp = Annotated[dt.datetime, BeforeValidator(_iso_datetime_string), AfterValidator(_aware)]
Value = Annotated[float, Field(strict=True, ge=0, allow_inf_nan=False)]
Money = Annotated[Decimal, Field(ge=0, max_digits=12, decimal_places=2, allow_inf_nan=False)]
Currency = Annotated[
    str, StringConstraints(strict=True, pattern=r"^[A-Za-z]{3}$"), AfterValidator(lambda code: code.upper())
]
Email = Annotated[str, StringConstraints(strict=True, strip_whitespace=True, max_length=254, pattern=r"^[^@\s]+@\S+$")]
Employees = Annotated[int, Field(strict=True, ge=0, le=2_147_483_647)]


class Item(BaseModel):
    model_config = ConfigDict(extra="forbid")


# pydantic's wording names Python types; integrators read JSON.
MESSAGES = {
    "missing": "Required.",
    "extra_forbidden": "Unknown field.",
    "model_type": "Expected an object.",
    "model_attributes_type": "Expected an object.",
    "dict_type": "Expected an object.",
    "list_type": "Expected an array.",
    "string_type": "Expected a string.",
    "float_type": "Expected a number.",
    "int_type": "Expected an integer.",
    "decimal_type": "Expected a number.",
    "finite_number": "Expected a finite number.",
    "decimal_parsing": "Expected a number.",
    "date_from_datetime_parsing": "Not a valid date.",
    "date_parsing": "Not a valid date.",
    "datetime_from_date_parsing": "Not a valid date and time.",
    "datetime_parsing": "Not a valid date and time.",
}


def error_message(error: dict) -> str:
    return MESSAGES.get(error.get("type", ""), error.get("msg", "Invalid."))


class Batch(Item):
    """A request body holding a list of items under `collection`.

    Items are validated one by one: the invalid ones are set aside with their errors, so that a 422 can
    name every bad item, those failing the schema and those failing the database checks (unknown account,
    metric, plan) alike. Services index the items they got, and `raise_errors` maps back to positions in
    the request.
    """

    collection: ClassVar[str]
    _item_errors: list[FieldError] = PrivateAttr(default_factory=list)
    _positions: list[int] | None = PrivateAttr(default=None)
    _labels: Sequence[str] | None = PrivateAttr(default=None)

    @model_validator(mode="wrap")
    @classmethod
    def _set_invalid_items_aside(cls, data: object, handler):
        try:
            return handler(data)
        except ValidationError as exc:
            errors = exc.errors()
            if not isinstance(data, dict) or not all(_is_item_error(e, cls.collection) for e in errors):
                raise  # the body itself is wrong: not an object, unknown keys, too many items
            items = data[cls.collection]
            bad = {e["loc"][1] for e in errors}
            positions = [i for i in range(len(items)) if i not in bad]
            batch = handler({**data, cls.collection: [items[i] for i in positions]})
            batch._positions = positions
            batch._item_errors = [
                FieldError(e["loc"][1], str(e["loc"][2]) if len(e["loc"]) > 2 else None, error_message(e))
                for e in errors
            ]
            return batch

    def position(self, index: int) -> int:
        """Where the `index`-th valid item was in the request."""
        return index if self._positions is None else self._positions[index]

    def item_label(self, index: int) -> str:
        """How messages name the `index`-th valid item: "item 3" in the API, "row 5" for a CSV file."""
        position = self.position(index)
        return self._labels[position] if self._labels is not None else f"item {position}"

    def label_items(self, labels: Sequence[str]) -> None:
        """Name each item of the request (by position) in messages, e.g. by its row in a CSV file."""
        self._labels = labels

    def raise_errors(self, errors: list[FieldError]) -> None:
        """Raise IngestError with the schema errors and `errors` (indexes of valid items), if any."""
        found = self._item_errors + [replace(e, index=self.position(e.index)) for e in errors]
        if found:
            raise IngestError(sorted(found, key=lambda e: e.index))


def _is_item_error(error: dict, collection: str) -> bool:
    loc = error.get("loc", ())
    return len(loc) >= 2 and loc[0] == collection and isinstance(loc[1], int)


# --- Schemas -------------------------------------------------------------------------------------------


class AccountIn(Item):
    """An account to create or update, by external_id. Fields left out keep their value; null clears it."""

    external_id: ExternalId
    name: _text(200, min_length=1) | None = None
    plan: _text(60, min_length=1) | None = Field(None, description="Plan name, case-insensitive; null = no plan.")
    mrr: Money | None = None
    currency: Currency | None = None
    billing_period: Literal["monthly", "annual"] | None = None
    industry: _text(60) | None = None
    employees: Employees | None = None
    region: _text(40) | None = None
    owner_email: Email | None = Field(None, description="Email of the CSM who owns it; null = unassigned.")
    first_purchase_on: IsoDate | None = None
    status: Literal["active", "trial", "churned"] | None = None
    stripe_customer_id: _text(100) | None = None


class AccountsIn(Batch):
    collection = "accounts"
    accounts: list[AccountIn] = Field(max_length=MAX_ITEMS)


class SnapshotIn(Item):
    """The value of a metric for an account on a day; the same account, metric and day again replaces it."""

    account: ExternalId
    metric: _text(50, min_length=1)
    value: Value
    date: IsoDate


class UsageIn(Batch):
    collection = "snapshots"
    snapshots: list[SnapshotIn] = Field(max_length=MAX_ITEMS)


class EventIn(Item):
    """Something a user did in the product. `id` is the sender's id: a repeated id is stored once."""

    id: ExternalId
    account: ExternalId
    type: Literal["login", "feature_used", "locked_feature_hit", "trial_feature_used"]
    feature: _text(60) = ""
    user: _text(100) = ""
    timestamp: Timestamp


class EventsIn(Batch):
    collection = "events"
    events: list[EventIn] = Field(max_length=MAX_ITEMS)


class SubscriptionChangeIn(Item):
    """The account's plan and MRR from `date` on. Leave plan out (or null) to keep the current plan."""

    account: ExternalId
    date: IsoDate
    plan: _text(60, min_length=1) | None = None
    mrr: Money


class SubscriptionsIn(Batch):
    collection = "changes"
    changes: list[SubscriptionChangeIn] = Field(max_length=MAX_ITEMS)


# --- Shared look-ups -----------------------------------------------------------------------------------


def account_ids_by_external_id(external_ids: set[str]) -> dict[str, int]:
    return dict(Account.objects.filter(external_id__in=external_ids).values_list("external_id", "id"))


def _plans_by_name() -> dict[str, Plan]:
    # The catalogue is a handful of rows: one query, matched case-insensitively in Python.
    return {p.name.lower(): p for p in Plan.objects.all()}


def _check_future(errors: list[FieldError], index: int, name: str, value: dt.date, today: dt.date) -> None:
    if value > today + FUTURE_SLACK:
        errors.append(FieldError(index, name, "Is in the future."))


# --- Accounts ------------------------------------------------------------------------------------------

NOT_NULL = {"name", "mrr", "currency", "billing_period", "status"}
BLANK_FOR_NULL = {"industry", "region", "stripe_customer_id"}


def accounts_upsert(*, batch: AccountsIn, at: dt.datetime) -> WriteResult:
    """Create or update accounts by external_id. Only external_id and name are required to create one.

    Plans are named case-insensitively, owners by email. Setting mrr or plan here states the current
    situation without recording an MRR movement: send subscription changes for revenue history.
    Queries: accounts, plans, owners, Stripe customer ids, one insert and one update.
    """
    today = timezone.localdate(at)
    items = batch.accounts
    result = WriteResult()
    errors: list[FieldError] = []
    first_seen: dict[str, int] = {}
    unique: list[tuple[int, AccountIn, dict]] = []
    for i, item in enumerate(items):
        given = item.model_dump(exclude_unset=True)
        for name in NOT_NULL & given.keys():
            if given[name] is None:
                errors.append(FieldError(i, name, "Cannot be null."))
        j = first_seen.setdefault(item.external_id, i)
        if j != i:
            if items[j].model_dump(exclude_unset=True) == given:
                result.duplicates += 1
            else:
                errors.append(FieldError(i, "external_id", f"Repeats {batch.item_label(j)} with other values."))
            continue
        unique.append((i, item, given))
        if item.first_purchase_on:
            _check_future(errors, i, "first_purchase_on", item.first_purchase_on, today)

    existing = {a.external_id: a for a in Account.objects.filter(external_id__in=first_seen)}
    plans = _plans_by_name()
    emails = {item.owner_email.lower() for _, item, _ in unique if item.owner_email}
    User = get_user_model()
    owners = {}
    if emails:
        for user_id, email in (
            User.objects.annotate(email_lower=Lower("email"))
            .filter(email_lower__in=emails, is_active=True)
            .order_by("pk")
            .values_list("pk", "email_lower")
        ):
            owners.setdefault(email, user_id)
    stripe_ids = {item.stripe_customer_id for _, item, _ in unique if item.stripe_customer_id}
    stripe_owner = {}
    if stripe_ids:
        stripe_owner = dict(
            Account.objects.filter(stripe_customer_id__in=stripe_ids).values_list("stripe_customer_id", "external_id")
        )

    to_create: list[Account] = []
    to_update: list[Account] = []
    updated_fields: set[str] = set()
    plan_changed: list[Account] = []
    claimed_stripe: dict[str, str] = {}
    for i, item, given in unique:
        values: dict[str, object] = {}
        for name, value in given.items():
            if name == "external_id":
                continue
            if name == "plan":
                plan = None if value is None else plans.get(value.lower())
                if value is not None and plan is None:
                    errors.append(FieldError(i, "plan", f"No plan named {value!r}."))
                values["plan_id"] = plan.pk if plan else None
            elif name == "owner_email":
                owner_id = None if value is None else owners.get(value.lower())
                if value is not None and owner_id is None:
                    errors.append(FieldError(i, "owner_email", "No active user has this email."))
                values["owner_id"] = owner_id
            elif name == "stripe_customer_id":
                value = value or ""
                if value:
                    holders = {
                        stripe_owner.get(value, item.external_id),
                        claimed_stripe.setdefault(value, item.external_id),
                    }
                    if holders != {item.external_id}:
                        errors.append(FieldError(i, "stripe_customer_id", "Belongs to another account."))
                values[name] = value
            elif name in BLANK_FOR_NULL:
                values[name] = value or ""
            else:
                values[name] = value
        account = existing.get(item.external_id)
        if account is None:
            if not item.name:
                if "name" not in given:  # a null name was named above
                    errors.append(FieldError(i, "name", "Required to create an account."))
                continue
            account = Account(external_id=item.external_id, **values)
            if account.plan_id:
                account.plan_started_on = account.first_purchase_on or today
            to_create.append(account)
            continue
        changed = {name for name, value in values.items() if getattr(account, name) != value}
        if not changed:
            result.duplicates += 1
            continue
        if "plan_id" in changed:
            account.plan_started_on = today
            changed.add("plan_started_on")
            plan_changed.append(account)
        for name in changed:
            setattr(account, name, values.get(name, getattr(account, name)))
        account.updated_at = at
        updated_fields |= changed
        to_update.append(account)
    batch.raise_errors(errors)

    with transaction.atomic(savepoint=False):
        Account.objects.bulk_create(to_create)
        if to_update:
            Account.objects.bulk_update(
                to_update, sorted(f.removesuffix("_id") for f in updated_fields | {"updated_at"})
            )
        # New limits change utilization: refresh the indicators of accounts that changed plan.
        refresh_after_ingestion(account_ids=[a.pk for a in plan_changed], as_of=today)
    result.created = len(to_create)
    result.updated = len(to_update)
    return result


# --- Usage ---------------------------------------------------------------------------------------------


def usage_ingest(*, batch: UsageIn, today: dt.date) -> WriteResult:
    """Store usage snapshots: one row per account, metric and day; a new value for a day replaces the old one.

    A snapshot equal to the stored one is a duplicate. Queries: accounts, metrics, one upsert (PostgreSQL:
    one `INSERT ... ON CONFLICT ... RETURNING` that also tells inserts from updates).
    The accounts whose usage changed get their indicators refreshed once the transaction commits.
    """
    snapshots = batch.snapshots
    result = WriteResult()
    errors: list[FieldError] = []
    first_seen: dict[tuple[str, str, dt.date], int] = {}
    unique: list[tuple[int, SnapshotIn]] = []
    for i, s in enumerate(snapshots):
        _check_future(errors, i, "date", s.date, today)
        j = first_seen.setdefault((s.account, s.metric, s.date), i)
        if j == i:
            unique.append((i, s))
        elif snapshots[j].value == s.value:
            result.duplicates += 1
        else:
            errors.append(
                FieldError(
                    i, None, f"Repeats {batch.item_label(j)} (same account, metric and date) with another value."
                )
            )

    accounts = account_ids_by_external_id({s.account for _, s in unique})
    metrics = dict(Metric.objects.filter(key__in={s.metric for _, s in unique}).values_list("key", "id"))
    for i, s in unique:
        if s.account not in accounts:
            errors.append(FieldError(i, "account", f"No account with external_id {s.account!r}."))
        if s.metric not in metrics:
            errors.append(FieldError(i, "metric", f"No metric {s.metric!r}."))
    batch.raise_errors(errors)

    # In the unique key's order, so that concurrent batches sharing rows lock them in the same order and wait
    # for each other rather than deadlock.
    rows = sorted(
        ((accounts[s.account], metrics[s.metric], s.value, s.date) for _, s in unique), key=lambda r: (r[0], r[1], r[3])
    )
    with transaction.atomic(savepoint=False):
        if connection.vendor == "postgresql":
            changed = _snapshots_upsert_postgresql(rows)
        else:
            changed = _snapshots_upsert_portable(rows)
        refresh_after_ingestion(account_ids=[account_id for account_id, _ in changed], as_of=today)
    result.created = sum(1 for _, inserted in changed if inserted)
    result.updated = len(changed) - result.created
    result.duplicates += len(rows) - len(changed)
    return result


def _unnest_sql(model: type[models.Model], names: list[str]) -> tuple[str, str]:
    """Column list and `SELECT * FROM unnest(...)` with typed array parameters, for PostgreSQL.

    A handful of array parameters instead of four parameters a row keeps a 1,000-row statement cheap to
    build, send and plan.
    """
    fields = [model._meta.get_field(name) for name in names]
    columns = ", ".join(connection.ops.quote_name(f.column) for f in fields)
    casts = ", ".join(f"%s::{f.rel_db_type(connection) if f.is_relation else f.db_type(connection)}[]" for f in fields)
    return columns, f"SELECT * FROM unnest({casts})"  # noqa: S608 - types come from model metadata


def _snapshots_upsert_postgresql(rows: list[tuple]) -> list[tuple[int, bool]]:
    """(account_id, inserted) of each row written; rows equal to the stored ones are left alone."""
    if not rows:
        return []
    columns, select = _unnest_sql(UsageSnapshot, ["account", "metric", "value", "captured_on"])
    table = connection.ops.quote_name(UsageSnapshot._meta.db_table)
    # xmax is 0 on a freshly inserted row version and set on one written by ON CONFLICT DO UPDATE.
    sql = (
        f"INSERT INTO {table} ({columns}) {select} "
        "ON CONFLICT (account_id, metric_id, captured_on) DO UPDATE SET value = EXCLUDED.value "
        f"WHERE {table}.value IS DISTINCT FROM EXCLUDED.value "
        "RETURNING account_id, (xmax = 0)"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, [_array_literal(column) for column in zip(*rows, strict=True)])
        return cursor.fetchall()


def _array_literal(values: Sequence[int | float | dt.date]) -> str:
    """A PostgreSQL array literal of numbers or dates, e.g. '{1,2,3}': none of them needs quoting.

    One string parameter instead of a list that the driver adapts element by element: a third of the
    request's time for a 1,000-row batch otherwise.
    """
    return "{" + ",".join(map(str, values)) + "}"


def _snapshots_upsert_portable(rows: list[tuple]) -> list[tuple[int, bool]]:
    if not rows:
        return []
    stored = {
        (a, m, d): v
        for a, m, d, v in UsageSnapshot.objects.filter(
            account_id__in={r[0] for r in rows},
            metric_id__in={r[1] for r in rows},
            captured_on__in={r[3] for r in rows},
        ).values_list("account_id", "metric_id", "captured_on", "value")
    }
    changed = [(a, m, v, d) for a, m, v, d in rows if stored.get((a, m, d)) != v]
    UsageSnapshot.objects.bulk_create(
        [UsageSnapshot(account_id=a, metric_id=m, value=v, captured_on=d) for a, m, v, d in changed],
        update_conflicts=True,
        unique_fields=["account", "metric", "captured_on"],
        update_fields=["value"],
    )
    return [(a, (a, m, d) not in stored) for a, m, _, d in changed]


# --- Engagement events ---------------------------------------------------------------------------------

FEATURE_KINDS = {"feature_used", "locked_feature_hit", "trial_feature_used"}


@dataclass(frozen=True, slots=True)
class EventRow:
    external_id: str
    account_id: int
    kind: str
    feature: str
    user_ref: str
    occurred_at: dt.datetime


def events_ingest(*, batch: EventsIn, now: dt.datetime) -> WriteResult:
    """Store engagement events; an id already stored (or repeated in the batch) is a duplicate.

    Queries: accounts, one insert that skips known ids. Refreshes the touched accounts' indicators on commit.
    """
    events = batch.events
    errors: list[FieldError] = []
    accounts = account_ids_by_external_id({e.account for e in events})
    rows: list[EventRow] = []
    for i, e in enumerate(events):
        if e.type in FEATURE_KINDS and not e.feature:
            errors.append(FieldError(i, "feature", f"Required for {e.type} events."))
        if e.timestamp > now + FUTURE_SLACK:
            errors.append(FieldError(i, "timestamp", "Is in the future."))
        if e.account not in accounts:
            errors.append(FieldError(i, "account", f"No account with external_id {e.account!r}."))
            continue
        rows.append(EventRow(e.id, accounts[e.account], e.type, e.feature, e.user, e.timestamp))
    batch.raise_errors(errors)
    return event_rows_insert(rows=rows, as_of=now.date())


def event_rows_insert(*, rows: Sequence[EventRow], as_of: dt.date) -> WriteResult:
    """Insert validated events, skipping ids already stored; counts the skipped ones as duplicates."""
    # Sorted by id, the unique key: concurrent batches sharing events then wait for each other, not deadlock.
    unique = sorted({row.external_id: row for row in reversed(rows)}.values(), key=lambda row: row.external_id)
    with transaction.atomic(savepoint=False):
        if connection.vendor == "postgresql":
            created_accounts = _events_insert_postgresql(unique)
        else:
            created_accounts = _events_insert_portable(unique)
        refresh_after_ingestion(account_ids=created_accounts, as_of=as_of)
    return WriteResult(created=len(created_accounts), duplicates=len(rows) - len(created_accounts))


def _events_insert_postgresql(rows: list[EventRow]) -> list[int]:
    if not rows:
        return []
    names = ["external_id", "account", "kind", "feature", "user_ref", "occurred_at"]
    columns, select = _unnest_sql(EngagementEvent, names)
    table = connection.ops.quote_name(EngagementEvent._meta.db_table)
    sql = f"INSERT INTO {table} ({columns}) {select} ON CONFLICT (external_id) DO NOTHING RETURNING account_id"
    arrays = [
        [r.external_id for r in rows],
        [r.account_id for r in rows],
        [r.kind for r in rows],
        [r.feature for r in rows],
        [r.user_ref for r in rows],
        [r.occurred_at for r in rows],
    ]
    with connection.cursor() as cursor:
        cursor.execute(sql, arrays)
        return [account_id for (account_id,) in cursor.fetchall()]


def _events_insert_portable(rows: list[EventRow]) -> list[int]:
    if not rows:
        return []
    known = set(
        EngagementEvent.objects.filter(external_id__in=[r.external_id for r in rows]).values_list(
            "external_id", flat=True
        )
    )
    new = [r for r in rows if r.external_id not in known]
    EngagementEvent.objects.bulk_create(
        [
            EngagementEvent(
                external_id=r.external_id,
                account_id=r.account_id,
                kind=r.kind,
                feature=r.feature,
                user_ref=r.user_ref,
                occurred_at=r.occurred_at,
            )
            for r in new
        ],
        ignore_conflicts=True,
    )
    return [r.account_id for r in new]


# --- Subscription changes ------------------------------------------------------------------------------

KEEP_PLAN = object()
"""A change that does not name a plan keeps the plan in effect."""


@dataclass(frozen=True, slots=True)
class SubscriptionChange:
    account_id: int
    on: dt.date
    mrr: Decimal
    plan_id: int | object | None = KEEP_PLAN
    external_ref: str = ""
    currency: str = ""
    billing_period: str = ""
    status: str = ""
    """Account status to set when this is the latest change; empty = derived from the MRR."""


@dataclass(slots=True)
class _Move:
    on: dt.date
    mrr_before: Decimal
    mrr_after: Decimal
    plan_before: int | None
    plan_after: int | None


def mrr_in_effect(moves: Sequence[_Move], on: dt.date, *, current: tuple[Decimal, int | None]) -> tuple:
    """(mrr, plan) in effect on `on` (before that day's new change), from a date-ordered movement history.

    A change dated on or after every movement starts from the account's current state; an older one from
    the movement before it, or, when none is older, from what the first later movement started with.
    """
    if not moves or moves[-1].on <= on:
        return current
    earlier = [m for m in moves if m.on <= on]
    if earlier:
        return earlier[-1].mrr_after, earlier[-1].plan_after
    return moves[0].mrr_before, moves[0].plan_before


def subscription_changes_apply(
    *, changes: Sequence[SubscriptionChange], source: str, at: dt.datetime
) -> SubscriptionResult:
    """Record plan and MRR changes as MRR movements and bring each account up to date.

    before = the MRR in effect on the change's date (see `mrr_in_effect`); the kind follows from before and
    after (`movement_kind`). A change that is the account's latest also sets its plan, MRR and status
    (churned at 0, active when paying). A change equal to the state in effect is a duplicate; one that only
    renames the plan at the same MRR updates the account without a movement. Changes of one account apply
    in date order; an external_ref already recorded is a duplicate.
    Queries: accounts (locked), their movements, known refs, one insert, one update.
    """
    result = SubscriptionResult()
    if not changes:
        return result
    with transaction.atomic(savepoint=False):
        ids = {c.account_id for c in changes}
        accounts = {a.pk: a for a in Account.objects.select_for_update().filter(pk__in=ids).order_by("pk")}
        history: dict[int, list[_Move]] = defaultdict(list)
        for m in MrrMovement.objects.filter(account_id__in=ids).order_by("occurred_on", "pk"):
            history[m.account_id].append(
                _Move(m.occurred_on, m.mrr_before, m.mrr_after, m.plan_before_id, m.plan_after_id)
            )
        refs = {c.external_ref for c in changes if c.external_ref}
        seen_refs = set(MrrMovement.objects.filter(external_ref__in=refs).values_list("external_ref", flat=True))

        touched: dict[int, Account] = {}
        plan_changed: set[int] = set()
        ordered = sorted(enumerate(changes), key=lambda pair: (pair[1].account_id, pair[1].on, pair[0]))
        for _, c in ordered:
            if c.external_ref and c.external_ref in seen_refs:
                result.duplicates += 1
                continue
            seen_refs.add(c.external_ref)
            account, moves = accounts[c.account_id], history[c.account_id]
            is_latest = not moves or moves[-1].on <= c.on
            mrr_before, plan_before = mrr_in_effect(moves, c.on, current=(account.mrr, account.plan_id))
            plan_after = plan_before if c.plan_id is KEEP_PLAN else c.plan_id
            # Without a history, only a churned account is known to have paid before.
            paid_before = any(m.mrr_before > 0 or m.mrr_after > 0 for m in moves if m.on <= c.on) or (
                not moves and account.status == Account.Status.CHURNED
            )
            kind = movement_kind(mrr_before=mrr_before, mrr_after=c.mrr, paid_before=paid_before)
            if kind is None:
                if not is_latest or (plan_after == plan_before and not _account_differs(account, c)):
                    result.duplicates += 1
                    continue
                result.updated += 1
            else:
                movement = MrrMovement(
                    account=account,
                    occurred_on=c.on,
                    kind=kind,
                    mrr_before=mrr_before,
                    mrr_after=c.mrr,
                    currency=c.currency or account.currency,
                    plan_before_id=plan_before,
                    plan_after_id=plan_after,
                    source=source,
                    external_ref=c.external_ref,
                )
                result.movements.append(movement)
                bisect_at = next((k for k, m in enumerate(moves) if m.on > c.on), len(moves))
                moves.insert(bisect_at, _Move(c.on, mrr_before, c.mrr, plan_before, plan_after))
            if is_latest:
                if account.plan_id != plan_after:
                    plan_changed.add(account.pk)
                    account.plan_started_on = c.on
                account.plan_id = plan_after
                account.mrr = c.mrr
                account.status = c.status or _status_after(account.status, c.mrr)
                if c.billing_period:
                    account.billing_period = c.billing_period
                if c.currency:
                    account.currency = c.currency
                if c.mrr > 0 and account.first_purchase_on is None:
                    account.first_purchase_on = c.on
                account.updated_at = at
                touched[account.pk] = account
        MrrMovement.objects.bulk_create(result.movements)
        if touched:
            Account.objects.bulk_update(
                touched.values(),
                [
                    "plan",
                    "mrr",
                    "currency",
                    "status",
                    "billing_period",
                    "first_purchase_on",
                    "plan_started_on",
                    "updated_at",
                ],
            )
        result.created = len(result.movements)
        refresh_after_ingestion(account_ids=list(plan_changed), as_of=at.date())
        expansions = [m for m in result.movements if m.kind == MrrMovement.Kind.EXPANSION]
        if expansions:
            mrr_expanded.send(sender=subscription_changes_apply, movements=expansions, at=at)
        contractions = [m for m in result.movements if m.kind in (MrrMovement.Kind.CONTRACTION, MrrMovement.Kind.CHURN)]
        if contractions:
            mrr_contracted.send(sender=subscription_changes_apply, movements=contractions, at=at)
    return result


def _status_after(status: str, mrr: Decimal) -> str:
    if mrr == 0:
        return Account.Status.CHURNED
    return Account.Status.ACTIVE


def _account_differs(account: Account, change: SubscriptionChange) -> bool:
    """Whether a latest change with no MRR or plan difference still updates the account (status, billing)."""
    status = change.status or _status_after(account.status, change.mrr)
    return (
        status != account.status
        or bool(change.billing_period and change.billing_period != account.billing_period)
        or bool(change.currency and change.currency != account.currency)
    )


def subscriptions_ingest(*, batch: SubscriptionsIn, at: dt.datetime) -> SubscriptionResult:
    """Validate subscription changes sent through the API (accounts and plans by name) and apply them."""
    changes = batch.changes
    errors: list[FieldError] = []
    accounts = account_ids_by_external_id({c.account for c in changes})
    plans = _plans_by_name()
    valid: list[SubscriptionChange] = []
    for i, c in enumerate(changes):
        _check_future(errors, i, "date", c.date, timezone.localdate(at))
        plan_id: int | object | None = KEEP_PLAN
        if c.plan is not None:
            plan = plans.get(c.plan.lower())
            if plan is None:
                errors.append(FieldError(i, "plan", f"No plan named {c.plan!r}."))
            else:
                plan_id = plan.pk
        if c.account not in accounts:
            errors.append(FieldError(i, "account", f"No account with external_id {c.account!r}."))
            continue
        valid.append(SubscriptionChange(account_id=accounts[c.account], on=c.date, mrr=c.mrr, plan_id=plan_id))
    batch.raise_errors(errors)
    return subscription_changes_apply(changes=valid, source=MrrMovement.Source.API, at=at)
