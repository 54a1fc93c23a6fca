"""Admin for what admins configure: rules, the scoring policy and plays."""

from django.contrib import admin

from playbooks.models import (
    Assignment,
    Enrollment,
    Experiment,
    FeedbackRequest,
    Play,
    PlayCredit,
    Rule,
    ScoringPolicy,
    SequenceStep,
    StepRun,
    Survey,
    SurveyQuestion,
    SurveyResponse,
    Touch,
    Variant,
)


@admin.register(Rule)
class RuleAdmin(admin.ModelAdmin):
    list_display = ["name", "metric", "weight", "enabled", "updated_at"]
    list_filter = ["enabled", "metric", "plans"]
    search_fields = ["name", "description"]
    list_select_related = ["metric"]
    filter_horizontal = ["plans"]
    readonly_fields = ["created_at", "updated_at"]
    fieldsets = [
        (None, {"fields": ["name", "description", "weight", "enabled"]}),
        (
            "Thresholds (every one that is set must hold)",
            {
                "fields": [
                    "metric",
                    "min_utilization",
                    "max_days_to_limit",
                    "min_logins_per_week",
                    "min_login_percentile",
                    "min_locked_feature_hits",
                    "min_trial_feature_uses",
                ]
            },
        ),
        ("Applies to", {"fields": ["plans", "industries", "regions"]}),
        ("History", {"fields": ["created_at", "updated_at"]}),
    ]


@admin.register(ScoringPolicy)
class ScoringPolicyAdmin(admin.ModelAdmin):
    """A single row: it can be edited, never deleted, and added only when it is missing."""

    list_display = [
        "__str__",
        "flag_threshold",
        "clear_margin",
        "cool_off_days",
        "max_touches_per_30_days",
        "updated_at",
    ]
    readonly_fields = ["updated_at"]

    def has_add_permission(self, request) -> bool:
        return super().has_add_permission(request) and not ScoringPolicy.objects.exists()

    def has_delete_permission(self, request, obj=None) -> bool:
        return False

    def save_model(self, request, obj, form, change):
        obj.pk = 1
        super().save_model(request, obj, form, change)


@admin.register(Play)
class PlayAdmin(admin.ModelAdmin):
    list_display = ["name", "target_plan", "prompt_kind", "trial_days", "active", "updated_at"]
    list_filter = ["active", "prompt_kind", "target_plan"]
    search_fields = ["name", "description", "email_subject"]
    list_select_related = ["target_plan"]
    filter_horizontal = ["rules"]
    readonly_fields = ["created_at", "updated_at"]
    fieldsets = [
        (None, {"fields": ["name", "description", "active", "rules", "target_plan"]}),
        ("CSM outreach", {"fields": ["talking_points", "case_study_url"]}),
        ("Email", {"fields": ["email_subject", "email_body"]}),
        ("In-app prompt", {"fields": ["prompt_kind", "prompt_text", "prompt_cta_label", "prompt_cta_url"]}),
        ("Trial offer", {"fields": ["trial_days"]}),
        ("Downgrade save", {"fields": ["downgrade_save_subject", "downgrade_save_body"]}),
        ("Pitch fatigue", {"fields": ["prompt_max_per_week", "min_days_between_touches"]}),
        ("History", {"fields": ["created_at", "updated_at"]}),
    ]


class ReadOnlyAdmin(admin.ModelAdmin):
    """Rows the product writes as things happen (assignments, touches, credits): looked up, never edited."""

    def has_add_permission(self, request, obj=None) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False


class VariantInline(admin.TabularInline):
    model = Variant
    extra = 0
    fields = ["name", "weight", "email_subject", "prompt_text", "trial_days"]


@admin.register(Experiment)
class ExperimentAdmin(admin.ModelAdmin):
    list_display = ["name", "play", "status", "control_share", "attribution_days", "started_at"]
    list_filter = ["status"]
    search_fields = ["name", "play__name"]
    list_select_related = ["play"]
    inlines = [VariantInline]


@admin.register(Variant)
class VariantAdmin(admin.ModelAdmin):
    list_display = ["name", "experiment", "weight"]
    search_fields = ["name", "experiment__name"]
    list_select_related = ["experiment"]


@admin.register(Assignment)
class AssignmentAdmin(ReadOnlyAdmin):
    list_display = ["account", "experiment", "variant", "assigned_at"]
    list_select_related = ["account", "experiment", "variant"]
    search_fields = ["account__name", "account__external_id"]
    autocomplete_fields = ["account"]


@admin.register(Touch)
class TouchAdmin(ReadOnlyAdmin):
    list_display = ["account", "kind", "play", "variant", "occurred_at"]
    list_filter = ["kind"]
    list_select_related = ["account", "play", "variant"]
    search_fields = ["account__name", "account__external_id"]
    autocomplete_fields = ["account"]
    show_full_result_count = False


@admin.register(PlayCredit)
class PlayCreditAdmin(ReadOnlyAdmin):
    list_display = ["opportunity_id", "account", "play", "variant", "mrr_delta", "won_at"]
    list_select_related = ["account", "play", "variant"]
    search_fields = ["account__name", "account__external_id"]
    autocomplete_fields = ["account"]


@admin.register(SequenceStep)
class SequenceStepAdmin(admin.ModelAdmin):
    list_display = ["play", "position", "delay_days", "kind"]
    search_fields = ["play__name", "subject"]
    list_filter = ["kind"]
    list_select_related = ["play"]


@admin.register(Enrollment)
class EnrollmentAdmin(ReadOnlyAdmin):
    list_display = ["account", "play", "status", "stop_reason", "started_at", "ended_at"]
    list_filter = ["status", "stop_reason"]
    list_select_related = ["account", "play"]
    search_fields = ["account__name", "account__external_id"]
    autocomplete_fields = ["account"]


@admin.register(StepRun)
class StepRunAdmin(ReadOnlyAdmin):
    list_display = ["enrollment", "step", "due_at", "status", "executed_at", "detail"]
    list_filter = ["status"]
    list_select_related = ["enrollment", "step"]
    search_fields = ["account__name", "account__external_id"]
    show_full_result_count = False


class SurveyQuestionInline(admin.TabularInline):
    model = SurveyQuestion
    extra = 0
    max_num = 3


@admin.register(SurveyQuestion)
class SurveyQuestionAdmin(admin.ModelAdmin):
    list_display = ["survey", "position", "text", "kind"]
    search_fields = ["text", "survey__name"]
    list_select_related = ["survey"]


@admin.register(Survey)
class SurveyAdmin(admin.ModelAdmin):
    list_display = ["name", "purpose", "channel", "rule", "active"]
    list_filter = ["purpose", "channel", "active"]
    search_fields = ["name"]
    inlines = [SurveyQuestionInline]


@admin.register(FeedbackRequest)
class FeedbackRequestAdmin(ReadOnlyAdmin):
    list_display = ["account", "survey", "created_at", "answered_at"]
    list_select_related = ["account", "survey"]
    search_fields = ["account__name", "account__external_id"]
    autocomplete_fields = ["account"]


@admin.register(SurveyResponse)
class SurveyResponseAdmin(ReadOnlyAdmin):
    list_display = ["account", "survey", "reason", "submitted_at"]
    list_filter = ["reason"]
    list_select_related = ["account", "survey"]
    search_fields = ["account__name", "account__external_id"]
    autocomplete_fields = ["account"]
