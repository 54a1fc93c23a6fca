"""Admin for the catalogue, accounts and what comes in about them.

Tables that grow with accounts (snapshots, events, movements, indicators) pick their account through an
autocomplete and skip the full COUNT(*) on every changelist page.
"""

from django.contrib import admin, messages
from django.utils import timezone

from accounts.models import (
    Account,
    AccountEngagement,
    AccountIndicator,
    ApiToken,
    AuditEntry,
    Contact,
    EmailOptOut,
    EngagementEvent,
    IdempotencyKey,
    ImportJob,
    Metric,
    MrrMovement,
    Notification,
    NotificationSetting,
    Plan,
    PlanFeature,
    PlanLimit,
    SegmentEventMapping,
    SegmentUser,
    StripeEvent,
    StripePriceMapping,
    Task,
    UsageSnapshot,
)
from accounts.tokens import api_token_revoke

admin.site.site_header = "Upsell CRM admin"
admin.site.site_title = "Upsell CRM admin"
admin.site.index_title = "Configuration and data"


class ComputedAdmin(admin.ModelAdmin):
    """Rows the refresh recomputes from the raw data: viewable, never hand-edited (the next run would undo it)."""

    def has_add_permission(self, request, obj=None) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False


@admin.register(Metric)
class MetricAdmin(admin.ModelAdmin):
    list_display = ["label", "key", "unit", "kind", "display_order"]
    list_filter = ["kind"]
    search_fields = ["key", "label"]
    ordering = ["display_order", "label"]


class PlanLimitInline(admin.TabularInline):
    model = PlanLimit
    extra = 0
    fields = ["metric", "limit"]


class PlanFeatureInline(admin.TabularInline):
    model = PlanFeature
    extra = 0
    fields = ["key", "label", "value", "display_order"]


@admin.register(Plan)
class PlanAdmin(admin.ModelAdmin):
    list_display = ["name", "tier_rank", "monthly_price", "annual_price", "currency", "active"]
    list_filter = ["active"]
    search_fields = ["name", "description"]
    ordering = ["tier_rank"]
    inlines = [PlanLimitInline, PlanFeatureInline]


@admin.register(PlanLimit)
class PlanLimitAdmin(admin.ModelAdmin):
    list_display = ["plan", "metric", "limit"]
    list_filter = ["plan", "metric"]
    search_fields = ["plan__name", "metric__key", "metric__label"]
    list_select_related = ["plan", "metric"]


@admin.register(PlanFeature)
class PlanFeatureAdmin(admin.ModelAdmin):
    list_display = ["plan", "label", "key", "value", "display_order"]
    list_filter = ["plan"]
    search_fields = ["key", "label", "plan__name"]
    list_select_related = ["plan"]


@admin.register(Account)
class AccountAdmin(admin.ModelAdmin):
    list_display = ["name", "external_id", "plan", "mrr", "currency", "billing_period", "status", "owner", "region"]
    list_filter = ["status", "plan", "billing_period", "region", ("owner", admin.RelatedOnlyFieldListFilter)]
    search_fields = ["name", "external_id", "stripe_customer_id"]
    list_select_related = ["plan", "owner"]
    readonly_fields = ["created_at", "updated_at"]
    show_full_result_count = False
    fieldsets = [
        (None, {"fields": ["name", "external_id", "owner", "status"]}),
        ("Plan and billing", {"fields": ["plan", "mrr", "currency", "billing_period", "stripe_customer_id"]}),
        ("Segment", {"fields": ["industry", "employees", "region"]}),
        ("Dates", {"fields": ["first_purchase_on", "plan_started_on", "created_at", "updated_at"]}),
    ]


@admin.register(UsageSnapshot)
class UsageSnapshotAdmin(admin.ModelAdmin):
    list_display = ["account", "metric", "value", "captured_on"]
    list_filter = ["metric", "captured_on"]
    search_fields = ["account__name", "account__external_id"]
    list_select_related = ["account", "metric"]
    autocomplete_fields = ["account"]
    date_hierarchy = "captured_on"
    show_full_result_count = False


@admin.register(EngagementEvent)
class EngagementEventAdmin(admin.ModelAdmin):
    list_display = ["account", "kind", "feature", "user_ref", "occurred_at"]
    list_filter = ["kind", "occurred_at"]
    search_fields = ["account__name", "account__external_id", "feature", "external_id"]
    list_select_related = ["account"]
    autocomplete_fields = ["account"]
    date_hierarchy = "occurred_at"
    show_full_result_count = False


@admin.register(MrrMovement)
class MrrMovementAdmin(admin.ModelAdmin):
    """Editable: admins correct billing history by hand when an import got it wrong."""

    list_display = ["account", "occurred_on", "kind", "mrr_before", "mrr_after", "currency", "source"]
    list_filter = ["kind", "source", "occurred_on"]
    search_fields = ["account__name", "account__external_id", "external_ref"]
    list_select_related = ["account"]
    autocomplete_fields = ["account"]
    readonly_fields = ["created_at"]
    date_hierarchy = "occurred_on"
    show_full_result_count = False


@admin.register(AccountIndicator)
class AccountIndicatorAdmin(ComputedAdmin):
    list_display = ["account", "metric", "as_of", "latest", "limit", "utilization", "days_to_limit"]
    list_filter = ["metric", "as_of"]
    search_fields = ["account__name", "account__external_id"]
    list_select_related = ["account", "metric"]
    show_full_result_count = False


@admin.register(AccountEngagement)
class AccountEngagementAdmin(ComputedAdmin):
    list_display = ["account", "as_of", "logins_per_week", "active_users", "locked_feature_hits"]
    list_filter = ["as_of"]
    search_fields = ["account__name", "account__external_id"]
    list_select_related = ["account"]
    show_full_result_count = False


@admin.register(ApiToken)
class ApiTokenAdmin(admin.ModelAdmin):
    """Tokens are created with `manage.py create_api_token NAME`, which shows the token once; here they are
    listed and revoked. Only a hash is stored, so there is nothing to edit."""

    list_display = ["name", "prefix", "is_active", "created_by", "created_at", "last_used_at", "revoked_at"]
    list_filter = [("revoked_at", admin.EmptyFieldListFilter), "created_at"]
    search_fields = ["name", "prefix"]
    list_select_related = ["created_by"]
    exclude = ["key_hash"]
    actions = ["revoke"]

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_revoke_permission(self, request) -> bool:
        return request.user.has_perm("accounts.change_apitoken")

    @admin.display(boolean=True, description="active")
    def is_active(self, token: ApiToken) -> bool:
        return token.is_active

    @admin.action(permissions=["revoke"], description="Revoke the selected tokens")
    def revoke(self, request, queryset) -> None:
        at = timezone.now()
        tokens = list(queryset.active())
        for token in tokens:
            api_token_revoke(token=token, at=at)
        self.message_user(request, f"Revoked {len(tokens)} token(s).", messages.SUCCESS)


@admin.register(IdempotencyKey)
class IdempotencyKeyAdmin(ComputedAdmin):
    """The stored first answers to API writes; kept for replays, read-only."""

    list_display = ["key", "token", "status_code", "created_at"]
    list_filter = ["status_code", "created_at"]
    search_fields = ["key", "token__name", "token__prefix"]
    list_select_related = ["token"]
    exclude = ["response_body"]
    show_full_result_count = False


@admin.register(StripePriceMapping)
class StripePriceMappingAdmin(admin.ModelAdmin):
    list_display = ["price_id", "plan", "description"]
    list_filter = ["plan"]
    search_fields = ["price_id", "description"]
    list_select_related = ["plan"]


@admin.register(StripeEvent)
class StripeEventAdmin(ComputedAdmin):
    """Applied Stripe webhook events: the record that keeps a redelivery from being applied twice."""

    list_display = ["event_id", "type", "account", "outcome", "received_at"]
    list_filter = ["type", "received_at"]
    search_fields = ["event_id", "account__name", "account__external_id"]
    list_select_related = ["account"]
    date_hierarchy = "received_at"
    show_full_result_count = False


@admin.register(SegmentEventMapping)
class SegmentEventMappingAdmin(admin.ModelAdmin):
    list_display = ["event_name", "kind", "feature", "active"]
    list_filter = ["kind", "active"]
    search_fields = ["event_name", "feature"]


@admin.register(SegmentUser)
class SegmentUserAdmin(ComputedAdmin):
    """Learnt from Segment's group and identify calls, which overwrite any hand edit."""

    list_display = ["user_id", "account", "updated_at"]
    search_fields = ["user_id", "account__name", "account__external_id"]
    list_select_related = ["account"]
    show_full_result_count = False


@admin.register(ImportJob)
class ImportJobAdmin(admin.ModelAdmin):
    """Imports are started from the Imports page; here they are only looked up."""

    list_display = ["filename", "kind", "status", "total_rows", "created", "updated", "error_count", "created_at"]
    list_filter = ["kind", "status"]
    search_fields = ["filename"]
    date_hierarchy = "created_at"
    exclude = ["content"]

    def has_add_permission(self, request, obj=None) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False


@admin.register(AuditEntry)
class AuditEntryAdmin(admin.ModelAdmin):
    """The audit trail of configuration changes: read-only."""

    list_display = ["at", "actor", "action", "object_type", "object_repr"]
    list_filter = ["action", "object_type"]
    search_fields = ["object_repr", "object_id"]
    list_select_related = ["actor"]
    date_hierarchy = "at"

    def has_add_permission(self, request, obj=None) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False


@admin.register(Contact)
class ContactAdmin(admin.ModelAdmin):
    list_display = ["email", "name", "account", "is_primary"]
    search_fields = ["email", "name", "account__name", "account__external_id"]
    list_select_related = ["account"]
    raw_id_fields = ["account"]


@admin.register(EmailOptOut)
class EmailOptOutAdmin(admin.ModelAdmin):
    """Opt-outs are permanent: they are looked up here, never edited or removed."""

    list_display = ["email", "opted_out_at", "account", "source"]
    search_fields = ["email"]
    list_select_related = ["account"]

    def has_add_permission(self, request, obj=None) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False


@admin.register(Task)
class TaskAdmin(admin.ModelAdmin):
    list_display = ["title", "account", "assignee", "due_on", "status", "source"]
    list_filter = ["status", "source"]
    search_fields = ["title", "account__name"]
    list_select_related = ["account", "assignee"]
    raw_id_fields = ["account", "assignee", "created_by", "completed_by"]
    date_hierarchy = "due_on"


@admin.register(Notification)
class NotificationAdmin(admin.ModelAdmin):
    list_display = ["title", "recipient", "kind", "created_at", "read_at"]
    list_filter = ["kind"]
    search_fields = ["title"]
    list_select_related = ["recipient"]
    raw_id_fields = ["recipient", "account"]
    date_hierarchy = "created_at"


@admin.register(NotificationSetting)
class NotificationSettingAdmin(admin.ModelAdmin):
    list_display = ["user", "daily_digest", "last_digest_on"]
    search_fields = ["user__username", "user__email"]
    list_select_related = ["user"]
    raw_id_fields = ["user"]
