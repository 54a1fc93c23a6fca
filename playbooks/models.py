"""What admins configure: the rules that flag candidates, how scores become opportunities, and plays."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.db.models.functions import Lower

from accounts.models import Account, Contact, Metric, MrrMovement, Plan, Task
from playbooks.rules import RuleSpec


class Rule(models.Model):
    """A condition on an account's indicators worth `weight` points when it holds.

    Every threshold that is set must hold for the rule to fire (they combine with AND); a rule with a
    plan list applies only to accounts on those plans.
    """

    name = models.CharField(max_length=120)
    description = models.CharField(max_length=300, blank=True)
    metric = models.ForeignKey(
        Metric,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="rules",
        limit_choices_to={"kind": Metric.Kind.LIMIT},
        help_text="The limit-bearing metric the utilization and days-to-limit thresholds look at.",
    )
    min_utilization = models.FloatField(
        null=True, blank=True, help_text="Fires at or above this share of the limit (0.8 = 80%)."
    )
    max_days_to_limit = models.PositiveIntegerField(
        null=True, blank=True, help_text="Fires when the limit is projected to be reached within this many days."
    )
    min_logins_per_week = models.FloatField(null=True, blank=True)
    min_login_percentile = models.FloatField(
        null=True, blank=True, help_text="Fires when logins rank at or above this percentile (75 = top quartile)."
    )
    min_locked_feature_hits = models.PositiveIntegerField(
        null=True, blank=True, help_text="Locked-feature hits in the last 30 days."
    )
    min_trial_feature_uses = models.PositiveIntegerField(
        null=True, blank=True, help_text="Premium features used during a trial, last 30 days."
    )
    plans = models.ManyToManyField(Plan, blank=True, related_name="rules", help_text="Empty = every plan.")
    industries = models.JSONField(default=list, blank=True, help_text="Empty = every industry.")
    regions = models.JSONField(default=list, blank=True, help_text="Empty = every region.")
    weight = models.PositiveSmallIntegerField(default=20, help_text="Points added to the score (0–100).")
    enabled = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=(
                    Q(min_utilization__isnull=False)
                    | Q(max_days_to_limit__isnull=False)
                    | Q(min_logins_per_week__isnull=False)
                    | Q(min_login_percentile__isnull=False)
                    | Q(min_locked_feature_hits__isnull=False)
                    | Q(min_trial_feature_uses__isnull=False)
                ),
                name="rule_has_a_threshold",
                violation_error_message="Set at least one threshold.",
            ),
            models.CheckConstraint(
                condition=Q(metric__isnull=False)
                | (Q(min_utilization__isnull=True) & Q(max_days_to_limit__isnull=True)),
                name="rule_limit_thresholds_need_metric",
                violation_error_message="Utilization and days-to-limit thresholds need a metric.",
            ),
            models.CheckConstraint(
                condition=Q(min_utilization__isnull=True) | Q(min_utilization__gt=0),
                name="rule_min_utilization_positive",
            ),
            models.CheckConstraint(condition=Q(weight__lte=100), name="rule_weight_at_most_100"),
        ]

    def __str__(self) -> str:
        return self.name

    def as_spec(self) -> RuleSpec:
        """The rule as plain data for playbooks.rules (plans must be prefetched)."""
        return RuleSpec(
            id=self.pk,
            name=self.name,
            weight=self.weight,
            metric_key=self.metric.key if self.metric_id else None,
            min_utilization=self.min_utilization,
            max_days_to_limit=self.max_days_to_limit,
            min_logins_per_week=self.min_logins_per_week,
            min_login_percentile=self.min_login_percentile,
            min_locked_feature_hits=self.min_locked_feature_hits,
            min_trial_feature_uses=self.min_trial_feature_uses,
            plan_ids=frozenset(p.pk for p in self.plans.all()),
            industries=frozenset(self.industries or []),
            regions=frozenset(self.regions or []),
        )


class ScoringPolicy(models.Model):
    """How scores turn into opportunities. A single row (pk = 1), edited by admins."""

    flag_threshold = models.PositiveSmallIntegerField(
        default=40, help_text="An account scoring at least this much gets an opportunity."
    )
    clear_margin = models.PositiveSmallIntegerField(
        default=10,
        help_text="An untouched opportunity closes as 'signal cleared' only below threshold minus this margin.",
    )
    cool_off_days = models.PositiveSmallIntegerField(
        default=60, help_text="No new opportunity this many days after a lost or snoozed one."
    )
    max_touches_per_30_days = models.PositiveSmallIntegerField(
        default=4,
        help_text="Pitch fatigue: touches of one account (emails, prompts shown) by all plays together in any 30 days.",
    )
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name_plural = "scoring policy"
        constraints = [
            models.CheckConstraint(condition=Q(pk=1), name="scoring_policy_single_row"),
            models.CheckConstraint(condition=Q(flag_threshold__lte=100), name="scoring_policy_threshold_range"),
        ]

    def __str__(self) -> str:
        return f"Flag at {self.flag_threshold}, clear below {self.flag_threshold - self.clear_margin}"

    @classmethod
    def current(cls) -> ScoringPolicy:
        policy, _ = cls.objects.get_or_create(pk=1)
        return policy


class PlayQuerySet(models.QuerySet):
    def active(self) -> PlayQuerySet:
        return self.filter(active=True)


class Play(models.Model):
    """What to do with a candidate: talking points, an email, an in-app prompt, a trial offer."""

    class PromptKind(models.TextChoices):
        BANNER = "banner", "Banner"
        MODAL = "modal", "Modal"
        TOOLTIP = "tooltip", "Tooltip"

    name = models.CharField(max_length=120)
    description = models.CharField(max_length=300, blank=True)
    rules = models.ManyToManyField(Rule, blank=True, related_name="plays", help_text="Rules that trigger it.")
    target_plan = models.ForeignKey(Plan, on_delete=models.PROTECT, null=True, blank=True, related_name="plays")
    talking_points = models.TextField(blank=True)
    case_study_url = models.URLField(blank=True)
    email_subject = models.CharField(max_length=200, blank=True)
    email_body = models.TextField(blank=True)
    prompt_kind = models.CharField(max_length=8, choices=PromptKind, default=PromptKind.BANNER)
    prompt_text = models.CharField(max_length=300, blank=True)
    prompt_cta_label = models.CharField("prompt CTA label", max_length=60, blank=True)
    prompt_cta_url = models.URLField("prompt CTA URL", blank=True)
    trial_days = models.PositiveSmallIntegerField(null=True, blank=True, help_text="Trial of the target plan.")
    prompt_max_per_week = models.PositiveSmallIntegerField(
        default=3, help_text="Frequency cap: times the prompt is shown to one account in any 7 days."
    )
    min_days_between_touches = models.PositiveSmallIntegerField(
        default=7, help_text="Pitch fatigue: days between two touches of one account by this play."
    )
    downgrade_save_subject = models.CharField(max_length=200, blank=True)
    downgrade_save_body = models.TextField(
        blank=True, help_text="Sent when the account asks to downgrade; may list the premium features it used."
    )

    class RunMode(models.TextChoices):
        MANUAL = "manual", "When a CSM starts it from the account page"
        AUTOMATIC = "automatic", "Automatically when its rules flag an account"

    run_mode = models.CharField(
        max_length=9, choices=RunMode, default=RunMode.MANUAL, help_text="How accounts enter the play's sequence."
    )
    active = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    objects = PlayQuerySet.as_manager()

    class Meta:
        constraints = [models.UniqueConstraint(Lower("name"), name="play_name_unique_ci")]

    def __str__(self) -> str:
        return self.name


class Experiment(models.Model):
    """An A/B test of a play: variants of its email, prompt or offer, and a control group that gets nothing.

    Accounts are assigned when the play first applies to them, deterministically (a hash of experiment and
    account), and the assignment is stored.
    """

    class Status(models.TextChoices):
        DRAFT = "draft", "Draft"
        RUNNING = "running", "Running"
        STOPPED = "stopped", "Stopped"

    play = models.ForeignKey(Play, on_delete=models.CASCADE, related_name="experiments")
    name = models.CharField(max_length=120)
    hypothesis = models.TextField(blank=True)
    control_share = models.FloatField(default=0.10, help_text="Share of accounts held out (0.10 = 10%).")
    attribution_days = models.PositiveSmallIntegerField(
        default=90, help_text="A win is credited to the first touch within this many days before it."
    )
    status = models.CharField(max_length=8, choices=Status, default=Status.DRAFT)
    started_at = models.DateTimeField(null=True, blank=True)
    stopped_at = models.DateTimeField(null=True, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    created_at = models.DateTimeField()

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=Q(control_share__gte=0) & Q(control_share__lt=1), name="experiment_control_share_range"
            ),
            models.CheckConstraint(condition=Q(attribution_days__gte=1), name="experiment_attribution_days_positive"),
            models.UniqueConstraint(
                fields=["play"], condition=Q(status="running"), name="experiment_one_running_per_play"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.play})"


class Variant(models.Model):
    """One arm of an experiment. Blank content fields fall back to the play's own."""

    experiment = models.ForeignKey(Experiment, on_delete=models.CASCADE, related_name="variants")
    name = models.CharField(max_length=60)
    weight = models.PositiveSmallIntegerField(default=1, help_text="Relative share among the variants.")
    email_subject = models.CharField(max_length=200, blank=True)
    email_body = models.TextField(blank=True)
    prompt_text = models.CharField(max_length=300, blank=True)
    prompt_cta_label = models.CharField("prompt CTA label", max_length=60, blank=True)
    prompt_cta_url = models.URLField("prompt CTA URL", blank=True)
    trial_days = models.PositiveSmallIntegerField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint("experiment", Lower("name"), name="variant_name_unique_per_experiment"),
            models.CheckConstraint(condition=Q(weight__gte=1), name="variant_weight_positive"),
        ]

    def __str__(self) -> str:
        return f"{self.name} of {self.experiment_id}"


class Assignment(models.Model):
    """Which arm of an experiment an account is in; variant None = the control group."""

    experiment = models.ForeignKey(Experiment, on_delete=models.CASCADE, related_name="assignments")
    account = models.ForeignKey(Account, on_delete=models.CASCADE, related_name="+")
    variant = models.ForeignKey(Variant, on_delete=models.CASCADE, null=True, blank=True, related_name="assignments")
    assigned_at = models.DateTimeField()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["experiment", "account"], name="assignment_unique_per_experiment")
        ]
        indexes = [models.Index(fields=["account", "experiment"], name="assignment_account_idx")]

    def __str__(self) -> str:
        return f"{self.account_id} in {self.variant or 'control'} of {self.experiment_id}"


class Touch(models.Model):
    """A contact with an account on behalf of a play: an email, a prompt shown, clicked or dismissed, a trial.

    Touches count against pitch fatigue, appear in the account's timeline, and decide attribution.
    """

    class Kind(models.TextChoices):
        EMAIL = "email", "Email sent"
        PROMPT_IMPRESSION = "prompt_impression", "Prompt shown"
        PROMPT_CLICK = "prompt_click", "Prompt clicked"
        PROMPT_DISMISS = "prompt_dismiss", "Prompt dismissed"
        TRIAL = "trial", "Trial offered"

    account = models.ForeignKey(Account, on_delete=models.CASCADE, related_name="touches", db_index=False)
    play = models.ForeignKey(Play, on_delete=models.SET_NULL, null=True, blank=True, related_name="touches")
    variant = models.ForeignKey(Variant, on_delete=models.SET_NULL, null=True, blank=True, related_name="touches")
    kind = models.CharField(max_length=20, choices=Kind)
    occurred_at = models.DateTimeField()
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    detail = models.CharField(max_length=300, blank=True)

    class Meta:
        indexes = [
            models.Index(fields=["account", "-occurred_at"], name="touch_account_recent_idx"),
            models.Index(fields=["play", "account", "-occurred_at"], name="touch_play_account_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} to {self.account_id} at {self.occurred_at:%Y-%m-%d %H:%M}"


class PlayCredit(models.Model):
    """A won opportunity credited to the play (and variant) whose touch came first within the attribution
    window. The opportunity is named by id, not by foreign key: opportunities sit downstream of playbooks."""

    opportunity_id = models.PositiveBigIntegerField(unique=True)
    account = models.ForeignKey(Account, on_delete=models.CASCADE, related_name="+")
    play = models.ForeignKey(Play, on_delete=models.CASCADE, related_name="credits")
    variant = models.ForeignKey(Variant, on_delete=models.SET_NULL, null=True, blank=True, related_name="credits")
    touch = models.ForeignKey(Touch, on_delete=models.SET_NULL, null=True, blank=True, related_name="+")
    mrr_delta = models.DecimalField(max_digits=12, decimal_places=2)
    won_at = models.DateTimeField()

    def __str__(self) -> str:
        return f"Opportunity {self.opportunity_id} credited to {self.play_id}"


class SequenceStep(models.Model):
    """One step of a play's sequence, run `delay_days` after the account enrolled (the trigger)."""

    class Kind(models.TextChoices):
        EMAIL = "email", "Send an email"
        PROMPT = "prompt", "Show an in-app prompt"
        TASK = "task", "Create a task for the CSM"
        NOTIFY = "notify", "Notify the owner"

    class WhenFatigued(models.TextChoices):
        WAIT = "wait", "Wait until the account may be contacted again"
        SKIP = "skip", "Skip the step"

    play = models.ForeignKey(Play, on_delete=models.CASCADE, related_name="steps")
    position = models.PositiveSmallIntegerField()
    delay_days = models.PositiveSmallIntegerField(default=0, help_text="Days after enrolment (0 = the same day).")
    kind = models.CharField(max_length=6, choices=Kind)
    subject = models.CharField(
        max_length=200, blank=True, help_text="Email subject or task title; empty = the play's (or variant's)."
    )
    body = models.TextField(blank=True, help_text="Email body, prompt text or task detail; empty = the play's.")
    task_due_days = models.PositiveSmallIntegerField(
        default=2, help_text="A task is due this many days after it is created."
    )
    when_fatigued = models.CharField(max_length=4, choices=WhenFatigued, default=WhenFatigued.WAIT)

    class Meta:
        ordering = ["play", "position"]
        constraints = [
            models.UniqueConstraint(fields=["play", "position"], name="sequence_step_position_unique"),
            models.CheckConstraint(condition=Q(delay_days__lte=365), name="sequence_step_delay_at_most_a_year"),
        ]

    def __str__(self) -> str:
        return f"{self.play_id} step {self.position}: {self.get_kind_display()} on day {self.delay_days}"


class Enrollment(models.Model):
    """An account running through a play's sequence. One live enrolment per account and play at a time.

    The opportunity it works for, if any, is named by id: opportunities sit downstream of playbooks.
    """

    class Status(models.TextChoices):
        ACTIVE = "active", "Running"
        PAUSED = "paused", "Paused"
        COMPLETED = "completed", "Completed"
        STOPPED = "stopped", "Stopped"

    class StopReason(models.TextChoices):
        UPGRADED = "upgraded", "The account upgraded"
        CLOSED = "closed", "The opportunity closed"
        OPTED_OUT = "opted_out", "The contact opted out"
        STOPPED_BY_USER = "by_user", "Stopped by a user"
        PLAY_INACTIVE = "play_inactive", "The play was deactivated"
        CHURNED = "churned", "The account churned"

    play = models.ForeignKey(Play, on_delete=models.CASCADE, related_name="enrollments")
    account = models.ForeignKey(Account, on_delete=models.CASCADE, related_name="enrollments")
    variant = models.ForeignKey(Variant, on_delete=models.SET_NULL, null=True, blank=True, related_name="enrollments")
    opportunity_id = models.PositiveBigIntegerField(null=True, blank=True)
    status = models.CharField(max_length=9, choices=Status, default=Status.ACTIVE)
    stop_reason = models.CharField(max_length=13, choices=StopReason, blank=True)
    started_at = models.DateTimeField(help_text="The trigger: step delays count from here.")
    started_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        help_text="Empty = started automatically by the play's rules.",
    )
    paused_at = models.DateTimeField(null=True, blank=True)
    ended_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["account", "play"],
                condition=Q(status__in=["active", "paused"]),
                name="enrollment_one_live_per_account_and_play",
            ),
            models.CheckConstraint(
                condition=Q(status="stopped", stop_reason__gt="") | (~Q(status="stopped") & Q(stop_reason="")),
                name="enrollment_stop_reason_when_stopped",
            ),
        ]
        indexes = [models.Index(fields=["account", "status"], name="enrollment_account_status_idx")]

    def __str__(self) -> str:
        return f"{self.account_id} in {self.play_id} ({self.status})"


class StepRun(models.Model):
    """One step of one enrolment: due at a time, claimed by one worker, executed once, its outcome kept."""

    class Status(models.TextChoices):
        PENDING = "pending", "Due"
        CLAIMED = "claimed", "Being delivered"
        SENT = "sent", "Done"
        SKIPPED = "skipped", "Skipped"
        FAILED = "failed", "Failed"
        CANCELLED = "cancelled", "Cancelled"

    enrollment = models.ForeignKey(Enrollment, on_delete=models.CASCADE, related_name="step_runs")
    step = models.ForeignKey(SequenceStep, on_delete=models.CASCADE, related_name="runs")
    account = models.ForeignKey(Account, on_delete=models.CASCADE, related_name="+", db_index=False)
    due_at = models.DateTimeField()
    status = models.CharField(max_length=9, choices=Status, default=Status.PENDING)
    claim_token = models.UUIDField(null=True, blank=True)
    claimed_at = models.DateTimeField(null=True, blank=True)
    executed_at = models.DateTimeField(null=True, blank=True)
    attempts = models.PositiveSmallIntegerField(default=0)
    detail = models.CharField(max_length=300, blank=True, help_text="What happened, in words: sent to, why skipped.")
    waited_until = models.DateTimeField(
        null=True, blank=True, help_text="Set when pitch fatigue pushed the step back from its first due time."
    )
    touch = models.ForeignKey(Touch, on_delete=models.SET_NULL, null=True, blank=True, related_name="+")
    task = models.ForeignKey(Task, on_delete=models.SET_NULL, null=True, blank=True, related_name="+")
    contact = models.ForeignKey(Contact, on_delete=models.SET_NULL, null=True, blank=True, related_name="+")

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["enrollment", "step"], name="step_run_once_per_enrollment"),
            models.CheckConstraint(
                condition=~Q(status="claimed") | Q(claim_token__isnull=False),
                name="step_run_claimed_has_token",
            ),
        ]
        indexes = [
            models.Index(fields=["due_at"], condition=Q(status="pending"), name="step_run_due_idx"),
            models.Index(fields=["account", "-due_at"], name="step_run_account_idx"),
        ]

    def __str__(self) -> str:
        return f"Step {self.step_id} of enrolment {self.enrollment_id}: {self.status}"


class Survey(models.Model):
    """A short survey (one to three questions) for accounts matching a rule, or asked after a downgrade or
    churn. Delivered as an in-app prompt or as a link in an email."""

    class Purpose(models.TextChoices):
        NEEDS = "needs", "Upcoming needs"
        CHURN_FEEDBACK = "churn_feedback", "Downgrade and churn feedback"

    class Channel(models.TextChoices):
        PROMPT = "prompt", "In-app prompt"
        EMAIL = "email", "Email link"

    name = models.CharField(max_length=120)
    purpose = models.CharField(max_length=14, choices=Purpose, default=Purpose.NEEDS)
    channel = models.CharField(max_length=6, choices=Channel, default=Channel.PROMPT)
    rule = models.ForeignKey(
        Rule, on_delete=models.SET_NULL, null=True, blank=True, related_name="surveys", help_text="Who is asked."
    )
    intro = models.CharField(max_length=300, blank=True)
    active = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(Lower("name"), name="survey_name_unique_ci")]

    def __str__(self) -> str:
        return self.name


class SurveyQuestion(models.Model):
    class Kind(models.TextChoices):
        CHOICE = "choice", "Choice"
        TEXT = "text", "Free text"

    survey = models.ForeignKey(Survey, on_delete=models.CASCADE, related_name="questions")
    position = models.PositiveSmallIntegerField()
    text = models.CharField(max_length=300)
    kind = models.CharField(max_length=6, choices=Kind, default=Kind.TEXT)
    choices = models.JSONField(default=list, blank=True, help_text="The options of a choice question.")

    class Meta:
        ordering = ["survey", "position"]
        constraints = [
            models.UniqueConstraint(fields=["survey", "position"], name="survey_question_position_unique"),
            models.CheckConstraint(
                condition=Q(position__gte=1) & Q(position__lte=3), name="survey_at_most_three_questions"
            ),
        ]

    def __str__(self) -> str:
        return self.text


class FeedbackRequest(models.Model):
    """A survey sent to one account: after a downgrade or churn (naming the movement), or by a rule."""

    survey = models.ForeignKey(Survey, on_delete=models.CASCADE, related_name="requests")
    account = models.ForeignKey(Account, on_delete=models.CASCADE, related_name="feedback_requests")
    movement = models.OneToOneField(
        MrrMovement, on_delete=models.CASCADE, null=True, blank=True, related_name="feedback_request"
    )
    task = models.ForeignKey(Task, on_delete=models.SET_NULL, null=True, blank=True, related_name="+")
    created_at = models.DateTimeField()
    answered_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [models.Index(fields=["account", "-created_at"], name="feedback_request_account_idx")]

    def __str__(self) -> str:
        return f"{self.survey_id} to {self.account_id}"


class SurveyResponse(models.Model):
    """One account's answers to a survey, from a contact when known."""

    class Reason(models.TextChoices):
        """Why a customer downgraded or left: the fixed list summarised by segment and plan."""

        PRICE = "price", "Too expensive"
        MISSING_FEATURE = "missing_feature", "Missing a feature"
        NOT_USING = "not_using", "Not using it enough"
        COMPETITOR = "competitor", "Moved to a competitor"
        BUDGET_CUT = "budget_cut", "Budget cut"
        TECHNICAL = "technical", "Technical problems"
        SUPPORT = "support", "Support experience"
        BUSINESS_CLOSED = "business_closed", "Business closed or changed"
        OTHER = "other", "Other"

    survey = models.ForeignKey(Survey, on_delete=models.CASCADE, related_name="responses")
    account = models.ForeignKey(Account, on_delete=models.CASCADE, related_name="survey_responses")
    request = models.OneToOneField(
        FeedbackRequest, on_delete=models.SET_NULL, null=True, blank=True, related_name="response"
    )
    contact_ref = models.CharField(max_length=200, blank=True, help_text="The customer's user id or email.")
    reason = models.CharField(max_length=16, choices=Reason, blank=True, help_text="Downgrade and churn feedback.")
    answers = models.JSONField(default=dict, help_text="By question position: the choice or text given.")
    submitted_at = models.DateTimeField()

    class Meta:
        indexes = [
            models.Index(fields=["survey", "-submitted_at"], name="survey_response_recent_idx"),
            models.Index(fields=["account", "-submitted_at"], name="survey_response_account_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.account_id} answered {self.survey_id}"
