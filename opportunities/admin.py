"""Admin for opportunities, their audit trail, lost reasons and scores."""

from django.contrib import admin
from django.utils import timezone

from opportunities.models import (
    AccountScore,
    Collaborator,
    LostReason,
    Note,
    Opportunity,
    OpportunityEvent,
    ScoreHistory,
)


class ReadOnlyAdminMixin:
    """Audit and computed rows: anyone allowed in may look, nobody adds or edits them here."""

    def has_add_permission(self, request, obj=None) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False


class OpportunityEventInline(ReadOnlyAdminMixin, admin.TabularInline):
    model = OpportunityEvent
    extra = 0
    can_delete = False
    fields = ["occurred_at", "kind", "actor", "from_stage", "to_stage", "message", "changes"]
    readonly_fields = fields
    ordering = ["-occurred_at"]


@admin.register(Opportunity)
class OpportunityAdmin(admin.ModelAdmin):
    list_display = ["id", "account", "stage", "outcome", "score", "owner", "expected_mrr_delta", "identified_at"]
    list_display_links = ["id", "account"]
    list_filter = ["outcome", "stage", "source", "play", ("owner", admin.RelatedOnlyFieldListFilter)]
    search_fields = ["account__name", "account__external_id"]
    list_select_related = ["account", "owner", "play"]
    autocomplete_fields = ["account"]
    readonly_fields = ["reasons", "version", "created_at", "updated_at"]
    date_hierarchy = "identified_at"
    show_full_result_count = False
    inlines = [OpportunityEventInline]

    def save_model(self, request, obj, form, change):
        # An edit here is a write like any other: it bumps the version, so a CSM's form opened before it
        # gets a 409 instead of silently overwriting it, and it leaves an audit row.
        if change:
            obj.version += 1
        super().save_model(request, obj, form, change)
        if change and form.changed_data:
            OpportunityEvent.objects.create(
                opportunity=obj,
                actor=request.user,
                occurred_at=timezone.now(),
                kind=OpportunityEvent.Kind.UPDATED,
                message="Edited in the admin: " + ", ".join(form.changed_data),
            )


@admin.register(OpportunityEvent)
class OpportunityEventAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ["occurred_at", "opportunity", "kind", "actor", "from_stage", "to_stage"]
    list_filter = ["kind", "occurred_at"]
    search_fields = ["opportunity__account__name", "opportunity__account__external_id", "message"]
    list_select_related = ["opportunity__account", "actor"]
    date_hierarchy = "occurred_at"
    show_full_result_count = False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False


@admin.register(LostReason)
class LostReasonAdmin(admin.ModelAdmin):
    list_display = ["label", "key", "display_order", "active"]
    list_filter = ["active"]
    search_fields = ["key", "label"]
    ordering = ["display_order", "label"]


@admin.register(AccountScore)
class AccountScoreAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ["account", "score", "target_plan", "as_of", "computed_at"]
    list_filter = ["as_of", "target_plan"]
    search_fields = ["account__name", "account__external_id"]
    list_select_related = ["account", "target_plan"]
    show_full_result_count = False


@admin.register(ScoreHistory)
class ScoreHistoryAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ["account", "scored_on", "score"]
    list_filter = ["scored_on"]
    search_fields = ["account__name", "account__external_id"]
    list_select_related = ["account"]
    date_hierarchy = "scored_on"
    show_full_result_count = False


@admin.register(Note)
class NoteAdmin(admin.ModelAdmin):
    list_display = ["account", "opportunity", "author", "created_at"]
    search_fields = ["account__name", "account__external_id", "body"]
    list_select_related = ["account", "opportunity__account", "author"]
    raw_id_fields = ["account", "opportunity", "author"]
    date_hierarchy = "created_at"
    show_full_result_count = False


@admin.register(Collaborator)
class CollaboratorAdmin(admin.ModelAdmin):
    list_display = ["opportunity", "user", "added_by", "added_at"]
    search_fields = ["user__username", "opportunity__account__name"]
    list_select_related = ["opportunity__account", "user", "added_by"]
    raw_id_fields = ["opportunity", "user", "added_by"]
