"""Customer accounts, the plan catalogue, and what comes in about them: usage, engagement and MRR."""

from __future__ import annotations

from decimal import Decimal

from django.conf import settings
from django.db import models
from django.db.models import F, Q
from django.db.models.functions import Lower
from django.urls import reverse

from accounts.roles import Role, role_of

CURRENCY_DEFAULT = "USD"


class Metric(models.Model):
    """A measured quantity: limit-bearing (seats, storage...) or an engagement measure."""

    class Kind(models.TextChoices):
        LIMIT = "limit", "Limit-bearing"
        ENGAGEMENT = "engagement", "Engagement"

    key = models.SlugField(max_length=50, unique=True, help_text="Key used by the API and CSV, e.g. storage_gb.")
    label = models.CharField(max_length=100)
    unit = models.CharField(max_length=30, blank=True, help_text="Shown after values, e.g. GB or users.")
    kind = models.CharField(max_length=12, choices=Kind, default=Kind.LIMIT)
    display_order = models.PositiveSmallIntegerField(default=0)
    description = models.TextField(blank=True)

    def __str__(self) -> str:
        return self.label


class PlanQuerySet(models.QuerySet):
    def active(self) -> PlanQuerySet:
        return self.filter(active=True)

    def by_name(self, name: str) -> Plan | None:
        """The plan whose name matches case-insensitively, as the API and CSV name plans."""
        return self.filter(name__iexact=name.strip()).first()


class Plan(models.Model):
    """A tier of the product. Higher `tier_rank` means a higher-value tier."""

    name = models.CharField(max_length=60)
    tier_rank = models.PositiveSmallIntegerField(help_text="Order of tiers; an upgrade goes to a higher rank.")
    monthly_price = models.DecimalField(max_digits=12, decimal_places=2)
    annual_price = models.DecimalField(max_digits=12, decimal_places=2)
    currency = models.CharField(max_length=3, default=CURRENCY_DEFAULT)
    active = models.BooleanField(default=True, help_text="Inactive plans are kept for history but not offered.")
    description = models.CharField(max_length=200, blank=True)

    objects = PlanQuerySet.as_manager()

    class Meta:
        constraints = [
            models.UniqueConstraint(Lower("name"), name="plan_name_unique_ci"),
            models.UniqueConstraint(fields=["tier_rank"], name="plan_tier_rank_unique"),
            models.CheckConstraint(
                condition=Q(monthly_price__gte=0) & Q(annual_price__gte=0), name="plan_prices_non_negative"
            ),
        ]

    def __str__(self) -> str:
        return self.name

    @property
    def annual_mrr(self) -> Decimal:
        """MRR of the plan billed annually: annual price / 12."""
        return (self.annual_price / 12).quantize(Decimal("0.01"))


class PlanLimit(models.Model):
    """How much of a limit-bearing metric a plan includes. A null limit means unlimited."""

    plan = models.ForeignKey(Plan, on_delete=models.CASCADE, related_name="limits")
    metric = models.ForeignKey(Metric, on_delete=models.PROTECT, related_name="plan_limits")
    limit = models.FloatField(null=True, blank=True, help_text="Empty = unlimited.")

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["plan", "metric"], name="plan_limit_unique_metric"),
            models.CheckConstraint(condition=Q(limit__isnull=True) | Q(limit__gte=0), name="plan_limit_non_negative"),
        ]

    def __str__(self) -> str:
        return f"{self.plan} · {self.metric}: {'unlimited' if self.limit is None else f'{self.limit:g}'}"

    @property
    def is_unlimited(self) -> bool:
        return self.limit is None


class PlanFeature(models.Model):
    """A feature of a plan: a level ("advanced"), a support tier, or a premium feature it includes."""

    plan = models.ForeignKey(Plan, on_delete=models.CASCADE, related_name="features")
    key = models.SlugField(max_length=50, help_text="Feature key, as in engagement events (e.g. reporting).")
    label = models.CharField(max_length=100)
    value = models.CharField(max_length=100, blank=True, help_text="Level or 'included'; empty = not included.")
    display_order = models.PositiveSmallIntegerField(default=0)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["plan", "key"], name="plan_feature_unique_key")]

    def __str__(self) -> str:
        return f"{self.plan} · {self.label}: {self.value or '—'}"

    @property
    def is_included(self) -> bool:
        return bool(self.value)


class AccountQuerySet(models.QuerySet):
    def owned_by(self, user) -> AccountQuerySet:
        return self.filter(owner=user)

    def visible_to(self, user) -> AccountQuerySet:
        """A CSM sees the accounts they own; anyone also sees the accounts of the opportunities they collaborate
        on (an account executive brought onto one); managers and admins see every account.

        The collaboration is followed through the reverse relations by name, which imports nothing from the
        apps downstream; as a subquery on the collaborator's user index rather than a join, so no account
        comes back twice and the list's other filters keep their plans.
        """
        if role_of(user) in (Role.MANAGER, Role.ADMIN):
            return self
        collaborating = self.model.objects.filter(opportunities__collaborators__user=user).values("pk")
        return self.filter(Q(owner=user) | Q(pk__in=collaborating))

    def paying(self) -> AccountQuerySet:
        return self.filter(mrr__gt=0)


class Account(models.Model):
    """A customer company on one of our plans."""

    class BillingPeriod(models.TextChoices):
        MONTHLY = "monthly", "Monthly"
        ANNUAL = "annual", "Annual"

    class Status(models.TextChoices):
        ACTIVE = "active", "Active"
        TRIAL = "trial", "Trial"
        CHURNED = "churned", "Churned"

    class Size(models.TextChoices):
        # Company-size bands derived from `employees`, as CS teams segment them.
        MICRO = "1-10", "1–10"
        SMALL = "11-50", "11–50"
        MID = "51-200", "51–200"
        LARGE = "201-1000", "201–1,000"
        ENTERPRISE = "1000+", "1,000+"

    external_id = models.CharField(max_length=100, unique=True, help_text="The account's id in your product.")
    name = models.CharField(max_length=200)
    plan = models.ForeignKey(Plan, on_delete=models.PROTECT, related_name="accounts", null=True, blank=True)
    mrr = models.DecimalField("MRR", max_digits=12, decimal_places=2, default=Decimal("0.00"))
    currency = models.CharField(max_length=3, default=CURRENCY_DEFAULT)
    billing_period = models.CharField(max_length=8, choices=BillingPeriod, default=BillingPeriod.MONTHLY)
    industry = models.CharField(max_length=60, blank=True)
    employees = models.PositiveIntegerField(null=True, blank=True)
    region = models.CharField(max_length=40, blank=True)
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="owned_accounts",
        help_text="The CSM who owns this account.",
    )
    first_purchase_on = models.DateField(null=True, blank=True)
    plan_started_on = models.DateField(null=True, blank=True)
    status = models.CharField(max_length=8, choices=Status, default=Status.ACTIVE)
    stripe_customer_id = models.CharField(max_length=100, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    objects = AccountQuerySet.as_manager()

    class Meta:
        constraints = [
            models.CheckConstraint(condition=Q(mrr__gte=0), name="account_mrr_non_negative"),
            models.UniqueConstraint(
                fields=["stripe_customer_id"],
                condition=~Q(stripe_customer_id=""),
                name="account_stripe_customer_unique",
            ),
        ]
        indexes = [
            models.Index(fields=["owner", "name"], name="account_owner_name_idx"),
            # "The accounts of this CSM" as an index-only scan: the queue's visibility subquery.
            models.Index(fields=["owner", "id"], name="account_owner_id_idx"),
            models.Index(Lower("name"), name="account_name_lower_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.external_id})"

    def get_absolute_url(self) -> str:
        return reverse("accounts:detail", kwargs={"pk": self.pk})

    @property
    def size_band(self) -> str:
        return size_band(self.employees)

    @property
    def size_band_label(self) -> str:
        band = self.size_band
        return Account.Size(band).label if band else ""


def size_band(employees: int | None) -> str:
    """The company-size band of a head count ('' when unknown)."""
    if employees is None:
        return ""
    for upper, band in SIZE_BOUNDS:
        if employees <= upper:
            return band
    return Account.Size.ENTERPRISE


SIZE_BOUNDS = [
    (10, Account.Size.MICRO),
    (50, Account.Size.SMALL),
    (200, Account.Size.MID),
    (1000, Account.Size.LARGE),
]


def size_band_filter(band: str) -> Q:
    """A Q selecting accounts whose `employees` fall in `band`."""
    lower = 1
    for upper, value in SIZE_BOUNDS:
        if value == band:
            return Q(employees__gte=lower, employees__lte=upper)
        lower = upper + 1
    if band == Account.Size.ENTERPRISE:
        return Q(employees__gt=1000)
    return Q(pk__in=[])


class UsageSnapshot(models.Model):
    """The value of one metric for one account on one day (one row per account, metric and day)."""

    # No single-column index on account: the unique (account, metric, captured_on) index leads with it, and
    # with it alone PostgreSQL reads the 30-day window through every day of an account's history.
    account = models.ForeignKey(Account, on_delete=models.CASCADE, related_name="snapshots", db_index=False)
    metric = models.ForeignKey(Metric, on_delete=models.PROTECT, related_name="snapshots")
    value = models.FloatField()
    captured_on = models.DateField()

    class Meta:
        constraints = [
            # The unique index (account, metric, captured_on) also serves the 30-day window reads.
            models.UniqueConstraint(fields=["account", "metric", "captured_on"], name="usage_snapshot_unique_day"),
            models.CheckConstraint(condition=Q(value__gte=0), name="usage_snapshot_value_non_negative"),
        ]

    def __str__(self) -> str:
        return f"{self.account_id}/{self.metric_id} on {self.captured_on}: {self.value:g}"


class EngagementEvent(models.Model):
    """Something a user of the customer did in the product that tells us how engaged they are."""

    class Kind(models.TextChoices):
        LOGIN = "login", "Login"
        FEATURE_USED = "feature_used", "Feature used"
        LOCKED_FEATURE_HIT = "locked_feature_hit", "Locked feature hit"
        TRIAL_FEATURE_USED = "trial_feature_used", "Trial feature used"

    # Indexed by (account, occurred_at) below, which also serves lookups by account alone.
    account = models.ForeignKey(Account, on_delete=models.CASCADE, related_name="events", db_index=False)
    kind = models.CharField(max_length=20, choices=Kind)
    feature = models.CharField(max_length=60, blank=True)
    user_ref = models.CharField(max_length=100, blank=True, help_text="The customer's user id.")
    occurred_at = models.DateTimeField()
    external_id = models.CharField(max_length=100, unique=True, help_text="Sender's event id; stored once.")

    class Meta:
        indexes = [models.Index(fields=["account", "occurred_at"], name="event_account_time_idx")]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} {self.feature} at {self.occurred_at:%Y-%m-%d %H:%M}"


class MrrMovementQuerySet(models.QuerySet):
    def upgrades(self) -> MrrMovementQuerySet:
        return self.filter(kind=MrrMovement.Kind.EXPANSION)


class MrrMovement(models.Model):
    """A change of an account's MRR on a day. The kind follows from before and after (see `movement_kind`)."""

    class Kind(models.TextChoices):
        NEW = "new", "New"
        EXPANSION = "expansion", "Expansion"
        CONTRACTION = "contraction", "Contraction"
        CHURN = "churn", "Churn"
        REACTIVATION = "reactivation", "Reactivation"

    class Source(models.TextChoices):
        MANUAL = "manual", "Manual"
        API = "api", "API"
        CSV = "csv", "CSV import"
        STRIPE = "stripe", "Stripe"
        OPPORTUNITY = "opportunity", "Won opportunity"
        DEMO = "demo", "Demo data"

    account = models.ForeignKey(Account, on_delete=models.CASCADE, related_name="mrr_movements")
    occurred_on = models.DateField()
    kind = models.CharField(max_length=12, choices=Kind)
    mrr_before = models.DecimalField(max_digits=12, decimal_places=2)
    mrr_after = models.DecimalField(max_digits=12, decimal_places=2)
    currency = models.CharField(max_length=3, default=CURRENCY_DEFAULT)
    plan_before = models.ForeignKey(Plan, on_delete=models.PROTECT, null=True, blank=True, related_name="+")
    plan_after = models.ForeignKey(Plan, on_delete=models.PROTECT, null=True, blank=True, related_name="+")
    source = models.CharField(max_length=12, choices=Source, default=Source.MANUAL)
    external_ref = models.CharField(
        max_length=120, blank=True, help_text="Id of the billing event behind it; a repeated one is stored once."
    )
    created_at = models.DateTimeField(auto_now_add=True)

    objects = MrrMovementQuerySet.as_manager()

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=Q(mrr_before__gte=0) & Q(mrr_after__gte=0), name="mrr_movement_non_negative"
            ),
            # The kind must agree with the amounts, so no metric can be skewed by a mislabelled row.
            models.CheckConstraint(
                condition=(
                    Q(kind="new", mrr_before=0, mrr_after__gt=0)
                    | Q(kind="reactivation", mrr_before=0, mrr_after__gt=0)
                    | Q(kind="expansion", mrr_before__gt=0, mrr_after__gt=F("mrr_before"))
                    | Q(kind="contraction", mrr_after__gt=0, mrr_after__lt=F("mrr_before"))
                    | Q(kind="churn", mrr_before__gt=0, mrr_after=0)
                ),
                name="mrr_movement_kind_matches_amounts",
            ),
            models.UniqueConstraint(
                fields=["external_ref"], condition=~Q(external_ref=""), name="mrr_movement_external_ref_unique"
            ),
        ]
        indexes = [
            models.Index(fields=["account", "occurred_on"], name="mrr_movement_account_day_idx"),
            models.Index(fields=["occurred_on"], name="mrr_movement_day_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.account_id} {self.get_kind_display()} {self.mrr_before}→{self.mrr_after} on {self.occurred_on}"

    @property
    def delta(self) -> Decimal:
        return self.mrr_after - self.mrr_before


def movement_kind(*, mrr_before: Decimal, mrr_after: Decimal, paid_before: bool) -> str | None:
    """The kind of an MRR change; None when nothing changed.

    before = 0, after > 0: new (first purchase) or reactivation (the account paid at some earlier time);
    0 < before < after: expansion; 0 < after < before: contraction; before > 0, after = 0: churn.
    """
    if mrr_before == mrr_after:
        return None
    if mrr_before == 0:
        return MrrMovement.Kind.REACTIVATION if paid_before else MrrMovement.Kind.NEW
    if mrr_after == 0:
        return MrrMovement.Kind.CHURN
    return MrrMovement.Kind.EXPANSION if mrr_after > mrr_before else MrrMovement.Kind.CONTRACTION


class AccountIndicator(models.Model):
    """The indicators of one account and one limit-bearing metric as of a date (see accounts.indicators).

    Upserted by the refresh; pages read these rows instead of recomputing from snapshots.
    """

    # No single-column indexes: the unique (account, metric) and the (metric, utilization) indexes lead
    # with these columns, and every index is written again by each refresh's upsert.
    account = models.ForeignKey(Account, on_delete=models.CASCADE, related_name="indicators", db_index=False)
    metric = models.ForeignKey(Metric, on_delete=models.CASCADE, related_name="+", db_index=False)
    as_of = models.DateField()
    latest = models.FloatField(null=True, blank=True)
    latest_on = models.DateField(null=True, blank=True)
    limit = models.FloatField(null=True, blank=True)
    utilization = models.FloatField(null=True, blank=True)
    slope_per_day = models.FloatField(null=True, blank=True)
    days_to_limit = models.FloatField(null=True, blank=True)
    projected_limit_on = models.DateField(null=True, blank=True)
    # A band around the projected date from the fit's residuals: the slope's standard error widens it.
    projected_earliest_on = models.DateField(null=True, blank=True)
    projected_latest_on = models.DateField(null=True, blank=True)
    points = models.PositiveSmallIntegerField(default=0, help_text="Snapshots in the 30-day window.")
    refreshed_at = models.DateTimeField()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["account", "metric"], name="account_indicator_unique")]
        indexes = [models.Index(fields=["metric", "utilization"], name="indicator_metric_util_idx")]

    def __str__(self) -> str:
        return f"{self.account_id}/{self.metric_id} as of {self.as_of}"


class AccountEngagement(models.Model):
    """Engagement indicators of one account over the 30-day window, with the previous window for trends."""

    account = models.OneToOneField(Account, on_delete=models.CASCADE, related_name="engagement")
    as_of = models.DateField()
    logins_per_week = models.FloatField(default=0)
    logins_per_week_prev = models.FloatField(default=0)
    active_users = models.PositiveIntegerField(default=0)
    active_users_prev = models.PositiveIntegerField(default=0)
    active_users_per_seat = models.FloatField(null=True, blank=True)
    active_users_per_seat_prev = models.FloatField(null=True, blank=True)
    features_used = models.PositiveIntegerField(default=0)
    features_used_prev = models.PositiveIntegerField(default=0)
    locked_feature_hits = models.PositiveIntegerField(default=0)
    locked_feature_hits_prev = models.PositiveIntegerField(default=0)
    trial_feature_uses = models.PositiveIntegerField(default=0)
    trial_feature_uses_prev = models.PositiveIntegerField(default=0)
    refreshed_at = models.DateTimeField()

    def __str__(self) -> str:
        return f"Engagement of {self.account_id} as of {self.as_of}"


class ApiTokenQuerySet(models.QuerySet):
    def active(self) -> ApiTokenQuerySet:
        return self.filter(revoked_at__isnull=True)


class ApiToken(models.Model):
    """A bearer token for the JSON API. Only its SHA-256 is stored: the token is shown once, at creation."""

    name = models.CharField(max_length=100, help_text="What uses it, e.g. 'product usage exporter'.")
    prefix = models.CharField(max_length=12, help_text="The token's first characters, to recognise it.")
    key_hash = models.CharField(max_length=64, unique=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    objects = ApiTokenQuerySet.as_manager()

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix}…)"

    @property
    def is_active(self) -> bool:
        return self.revoked_at is None


class IdempotencyKey(models.Model):
    """The first answer to a write sent with an `Idempotency-Key` header, replayed when the key comes again.

    Keys belong to the token that sent them. Only applied writes are recorded, in the same transaction as
    the write, so a rejected request can be corrected and sent again under the same key.
    """

    token = models.ForeignKey(ApiToken, on_delete=models.CASCADE, related_name="+")
    key = models.CharField(max_length=255)
    # SHA-256 of method, path and raw body: the same key with another request is refused, not replayed.
    fingerprint = models.CharField(max_length=64)
    status_code = models.PositiveSmallIntegerField()
    content_type = models.CharField(max_length=100)
    response_body = models.BinaryField()
    created_at = models.DateTimeField()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["token", "key"], name="idempotency_key_unique_per_token")]
        indexes = [models.Index(fields=["created_at"], name="idempotency_key_created_idx")]

    def __str__(self) -> str:
        return f"{self.key} ({self.token_id})"


class StripePriceMapping(models.Model):
    """Which plan a Stripe price stands for. Checked before the price's lookup_key or metadata.plan."""

    price_id = models.CharField(max_length=255, unique=True, help_text="Stripe price id, e.g. price_1MoS37….")
    plan = models.ForeignKey(Plan, on_delete=models.PROTECT, related_name="stripe_prices")
    description = models.CharField(max_length=200, blank=True)

    def __str__(self) -> str:
        return f"{self.price_id} → {self.plan}"


class StripeEvent(models.Model):
    """A Stripe webhook event that was applied; a redelivery of the same event id is acknowledged, not re-applied."""

    event_id = models.CharField(max_length=255, unique=True)
    type = models.CharField(max_length=100)
    account = models.ForeignKey(Account, on_delete=models.SET_NULL, null=True, blank=True, related_name="+")
    outcome = models.CharField(max_length=200, blank=True, help_text="What the event changed.")
    received_at = models.DateTimeField()

    def __str__(self) -> str:
        return f"{self.type} {self.event_id}"


class SegmentEventMapping(models.Model):
    """A Segment track event name and the engagement event it becomes. Unmapped track events are ignored."""

    event_name = models.CharField(max_length=200, help_text="Segment's event name, e.g. 'Report Exported'.")
    kind = models.CharField(max_length=20, choices=EngagementEvent.Kind)
    feature = models.CharField(
        max_length=60, blank=True, help_text="Feature key; empty = the event's `feature` property, if any."
    )
    active = models.BooleanField(default=True)

    class Meta:
        constraints = [models.UniqueConstraint(Lower("event_name"), name="segment_event_mapping_name_unique_ci")]

    def __str__(self) -> str:
        return f"{self.event_name} → {self.get_kind_display()}{f' ({self.feature})' if self.feature else ''}"


class SegmentUser(models.Model):
    """A Segment userId and the account (Segment group) it belongs to, learnt from group and identify calls.

    Track calls rarely carry a groupId: this is how their events find an account.
    """

    user_id = models.CharField(max_length=200, unique=True)
    account = models.ForeignKey(Account, on_delete=models.CASCADE, related_name="+")
    updated_at = models.DateTimeField()

    def __str__(self) -> str:
        return f"{self.user_id} → {self.account_id}"


class ImportJob(models.Model):
    """A CSV file uploaded for import, and what became of it.

    The file's text is kept in the row (at most a few MB): the worker that imports it may run on another
    machine than the web process that received it, and a job whose worker died can run again from it.
    """

    class Kind(models.TextChoices):
        ACCOUNTS = "accounts", "Accounts"
        USAGE = "usage", "Usage snapshots"
        SUBSCRIPTIONS = "subscriptions", "Subscription changes"

    class Status(models.TextChoices):
        QUEUED = "queued", "Queued"
        RUNNING = "running", "Importing"
        SUCCEEDED = "succeeded", "Imported"
        FAILED = "failed", "Not imported"

    kind = models.CharField(max_length=20, choices=Kind)
    status = models.CharField(max_length=12, choices=Status, default=Status.QUEUED)
    filename = models.CharField(max_length=255)
    content = models.TextField(help_text="The file's text, decoded from UTF-8.")
    delimiter = models.CharField(max_length=1, default=",")
    all_or_nothing = models.BooleanField(
        default=True, help_text="Store nothing when any row is invalid; otherwise skip the invalid rows."
    )
    total_rows = models.PositiveIntegerField()
    processed_rows = models.PositiveIntegerField(default=0)
    created = models.PositiveIntegerField(default=0)
    updated = models.PositiveIntegerField(default=0)
    duplicates = models.PositiveIntegerField(default=0)
    skipped = models.PositiveIntegerField(default=0, help_text="Invalid rows left out (only without all-or-nothing).")
    error_count = models.PositiveIntegerField(default=0)
    errors = models.JSONField(
        default=list, blank=True, help_text="The first invalid cells: [{row, column, message, value}]."
    )
    failure = models.TextField(blank=True, help_text="Why the import stopped, when it was not a row's fault.")
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    created_at = models.DateTimeField()
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=Q(processed_rows__lte=F("total_rows")), name="import_job_processed_within_total"
            ),
            models.CheckConstraint(
                condition=Q(kind__in=["accounts", "usage", "subscriptions"]), name="import_job_kind"
            ),
            models.CheckConstraint(
                condition=Q(status__in=["queued", "running", "succeeded", "failed"]), name="import_job_status"
            ),
        ]
        indexes = [models.Index(fields=["-created_at"], name="import_job_recent_idx")]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} from {self.filename} ({self.created_at:%Y-%m-%d %H:%M})"

    def get_absolute_url(self) -> str:
        return reverse("accounts:import_detail", args=[self.pk])

    @property
    def is_finished(self) -> bool:
        return self.status in (self.Status.SUCCEEDED, self.Status.FAILED)


class AuditEntry(models.Model):
    """A change to configuration (plans, rules, plays, experiments...): who, when, before and after.

    Written by the services that make such changes, in the same transaction; never edited afterwards.
    """

    class Action(models.TextChoices):
        CREATED = "created", "Created"
        UPDATED = "updated", "Updated"
        DELETED = "deleted", "Deleted"

    object_type = models.CharField(max_length=60, help_text="The model's label, e.g. playbooks.Rule.")
    object_id = models.CharField(max_length=64)
    object_repr = models.CharField(max_length=200)
    action = models.CharField(max_length=10, choices=Action)
    before = models.JSONField(null=True, blank=True)
    after = models.JSONField(null=True, blank=True)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    at = models.DateTimeField()

    class Meta:
        verbose_name_plural = "audit entries"
        indexes = [
            models.Index(fields=["object_type", "object_id", "-at"], name="audit_entry_object_idx"),
            models.Index(fields=["-at"], name="audit_entry_recent_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.get_action_display()} {self.object_type} {self.object_repr} at {self.at:%Y-%m-%d %H:%M}"


class Contact(models.Model):
    """A person at a customer account whom plays may email. The primary contact receives sequence emails."""

    account = models.ForeignKey(Account, on_delete=models.CASCADE, related_name="contacts")
    name = models.CharField(max_length=200, blank=True)
    email = models.EmailField()
    title = models.CharField(max_length=120, blank=True)
    is_primary = models.BooleanField(default=False)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint("account", Lower("email"), name="contact_email_unique_per_account"),
            models.UniqueConstraint(
                fields=["account"], condition=Q(is_primary=True), name="contact_one_primary_per_account"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.name} <{self.email}>" if self.name else self.email


class EmailOptOut(models.Model):
    """An address that asked for no more play emails: honoured at once, for every account, for good."""

    email = models.EmailField(help_text="Stored lower-cased.")
    opted_out_at = models.DateTimeField()
    account = models.ForeignKey(Account, on_delete=models.SET_NULL, null=True, blank=True, related_name="+")
    source = models.CharField(max_length=40, blank=True, help_text="Where the request came from, e.g. a play's email.")

    class Meta:
        constraints = [
            models.UniqueConstraint(Lower("email"), name="email_opt_out_unique_ci"),
            models.CheckConstraint(condition=Q(email=Lower("email")), name="email_opt_out_lower_case"),
        ]

    def __str__(self) -> str:
        return self.email


class Task(models.Model):
    """Something a user has to do for an account by a date: created by a play's step, by a feedback request
    or by hand. An opportunity is named by id: opportunities sit downstream of accounts."""

    class Status(models.TextChoices):
        OPEN = "open", "Open"
        DONE = "done", "Done"

    class Source(models.TextChoices):
        MANUAL = "manual", "By hand"
        PLAY = "play", "Play step"
        FEEDBACK = "feedback", "Feedback request"

    account = models.ForeignKey(Account, on_delete=models.CASCADE, related_name="tasks")
    assignee = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="tasks")
    title = models.CharField(max_length=200)
    detail = models.TextField(blank=True)
    due_on = models.DateField()
    status = models.CharField(max_length=4, choices=Status, default=Status.OPEN)
    source = models.CharField(max_length=8, choices=Source, default=Source.MANUAL)
    opportunity_id = models.PositiveBigIntegerField(null=True, blank=True)
    created_at = models.DateTimeField()
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    completed_at = models.DateTimeField(null=True, blank=True)
    completed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=(Q(status="open") & Q(completed_at__isnull=True))
                | (Q(status="done") & Q(completed_at__isnull=False)),
                name="task_completed_at_matches_status",
            ),
        ]
        indexes = [
            models.Index(fields=["assignee", "status", "due_on"], name="task_assignee_due_idx"),
            models.Index(fields=["account", "-created_at"], name="task_account_recent_idx"),
        ]

    def __str__(self) -> str:
        return self.title


class Notification(models.Model):
    """An item in a user's notification centre, and in their daily digest when they want one."""

    class Kind(models.TextChoices):
        NEW_CANDIDATE = "new_candidate", "New candidate in my book"
        SNOOZE_RETURNED = "snooze_returned", "Opportunity back from snooze"
        TASK_DUE = "task_due", "Task due"
        BILLING_UPGRADE = "billing_upgrade", "Upgrade closed by billing"
        EXPERIMENT_SIGNIFICANT = "experiment_significant", "Experiment reached significance"
        COLLABORATOR_ADDED = "collaborator_added", "Added to an opportunity"
        PLAY_STEP = "play_step", "Play step for me"
        FEEDBACK = "feedback", "Customer feedback"

    recipient = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="notifications")
    kind = models.CharField(max_length=24, choices=Kind)
    title = models.CharField(max_length=300)
    url = models.CharField(max_length=300, blank=True, help_text="A path inside the app.")
    account = models.ForeignKey(Account, on_delete=models.CASCADE, null=True, blank=True, related_name="+")
    dedupe_key = models.CharField(
        max_length=120, blank=True, help_text="The same key is notified to the same user once (blank: always)."
    )
    created_at = models.DateTimeField()
    read_at = models.DateTimeField(null=True, blank=True)
    digested_at = models.DateTimeField(null=True, blank=True, help_text="When a daily digest carried it.")

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["recipient", "dedupe_key"], condition=~Q(dedupe_key=""), name="notification_dedupe_per_user"
            ),
        ]
        indexes = [models.Index(fields=["recipient", "-created_at"], name="notification_recipient_idx")]

    def __str__(self) -> str:
        return self.title


class NotificationSetting(models.Model):
    """What one user chooses to receive: notification kinds muted in the centre, and the daily digest."""

    user = models.OneToOneField(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="notification_setting")
    muted_kinds = models.JSONField(default=list, blank=True, help_text="Notification kinds this user does not want.")
    daily_digest = models.BooleanField(default=True)
    last_digest_on = models.DateField(null=True, blank=True, help_text="The day the last digest went out.")
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"Notification settings of {self.user_id}"
