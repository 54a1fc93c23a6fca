"""Upsell opportunities and their audit trail."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.urls import reverse

from accounts.models import CURRENCY_DEFAULT, Account, Plan
from accounts.roles import is_manager_or_admin
from playbooks.models import Play


class LostReason(models.Model):
    """The fixed list a CSM picks from when an opportunity is lost; admins edit it."""

    key = models.SlugField(max_length=40, unique=True)
    label = models.CharField(max_length=100)
    display_order = models.PositiveSmallIntegerField(default=0)
    active = models.BooleanField(default=True)

    def __str__(self) -> str:
        return self.label


class Stage(models.TextChoices):
    IDENTIFY = "identify", "Identify"
    QUALIFY = "qualify", "Qualify"
    PRESENT = "present", "Present"
    CLOSE = "close", "Close"


STAGE_ORDER = [Stage.IDENTIFY, Stage.QUALIFY, Stage.PRESENT, Stage.CLOSE]


class Outcome(models.TextChoices):
    OPEN = "open", "Open"
    WON = "won", "Won"
    LOST = "lost", "Lost"
    SNOOZED = "snoozed", "Snoozed"
    # Closed by the system when the signals behind an untouched opportunity faded. Kept apart from "lost"
    # so that win rates only count decisions a customer made.
    CLEARED = "cleared", "Signal cleared"


class OpportunityQuerySet(models.QuerySet):
    def open(self) -> OpportunityQuerySet:
        return self.filter(outcome=Outcome.OPEN)

    def owned_by(self, user) -> OpportunityQuerySet:
        return self.filter(owner=user)

    def visible_to(self, user) -> OpportunityQuerySet:
        """A CSM sees the opportunities they own or whose account they own; anyone also sees those they
        collaborate on (an account executive the CSM brought on, see opportunities/collaboration.py); managers
        and admins see all. Whoever sees an opportunity may work it: every view looks opportunities up through here.

        The account and collaborator sides are subqueries rather than joins: an OR across joined tables makes
        PostgreSQL join every account to every opportunity before it can filter, while an OR of
        `owner_id = me`, `account_id IN (my accounts)` and `id IN (my collaborations)` stays on this table
        and keeps its indexes (the last one reads the collaborator index on user).
        """
        if is_manager_or_admin(user):
            return self
        return self.filter(
            Q(owner=user)
            | Q(account__in=Account.objects.filter(owner=user).values("pk"))
            | Q(pk__in=Collaborator.objects.filter(user=user).values("opportunity_id"))
        )


class Opportunity(models.Model):
    """One attempt to move an account to a higher-value plan, from identify to close."""

    class Source(models.TextChoices):
        RULES = "rules", "Flagged by rules"
        MANUAL = "manual", "Opened by a CSM"

    account = models.ForeignKey(Account, on_delete=models.CASCADE, related_name="opportunities")
    play = models.ForeignKey(Play, on_delete=models.SET_NULL, null=True, blank=True, related_name="opportunities")
    source = models.CharField(max_length=8, choices=Source, default=Source.RULES)
    stage = models.CharField(max_length=10, choices=Stage, default=Stage.IDENTIFY)
    outcome = models.CharField(max_length=8, choices=Outcome, default=Outcome.OPEN)
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="opportunities",
    )
    score = models.PositiveSmallIntegerField(default=0)
    # The explanation of the score: [{"rule", "rule_id", "points", "signal", "metric", "value", "text"}].
    reasons = models.JSONField(default=list, blank=True)
    target_plan = models.ForeignKey(Plan, on_delete=models.PROTECT, null=True, blank=True, related_name="+")
    currency = models.CharField(max_length=3, default=CURRENCY_DEFAULT)
    expected_mrr_delta = models.DecimalField(max_digits=12, decimal_places=2, null=True, blank=True)
    actual_mrr_delta = models.DecimalField(max_digits=12, decimal_places=2, null=True, blank=True)
    # {"need_confirmed", "business_goals", "blockers", "budget_confirmed", "decision_maker", "timeline"}
    qualification = models.JSONField(default=dict, blank=True)
    roi_inputs = models.JSONField(default=dict, blank=True)
    roi_note = models.TextField(blank=True)
    trial_plan = models.ForeignKey(Plan, on_delete=models.PROTECT, null=True, blank=True, related_name="+")
    trial_ends_on = models.DateField(null=True, blank=True)
    lost_reason = models.ForeignKey(LostReason, on_delete=models.PROTECT, null=True, blank=True, related_name="+")
    lost_detail = models.TextField(blank=True)
    snoozed_until = models.DateField(null=True, blank=True)
    next_step_on = models.DateField(null=True, blank=True)
    identified_at = models.DateTimeField()
    qualified_at = models.DateTimeField(null=True, blank=True)
    presented_at = models.DateTimeField(null=True, blank=True)
    closed_at = models.DateTimeField(null=True, blank=True)
    stage_entered_at = models.DateTimeField()
    version = models.PositiveIntegerField(default=1, help_text="Bumped by every write; stale writes get a 409.")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    objects = OpportunityQuerySet.as_manager()

    class Meta:
        verbose_name_plural = "opportunities"
        constraints = [
            models.UniqueConstraint(
                fields=["account"],
                condition=Q(outcome="open"),
                name="opportunity_one_open_per_account",
                violation_error_message="This account already has an open opportunity.",
            ),
            models.CheckConstraint(condition=Q(score__lte=100), name="opportunity_score_at_most_100"),
            models.CheckConstraint(
                condition=(Q(outcome="open") & Q(closed_at__isnull=True))
                | (~Q(outcome="open") & Q(closed_at__isnull=False)),
                name="opportunity_closed_at_matches_outcome",
            ),
            models.CheckConstraint(
                condition=~Q(outcome="snoozed") | Q(snoozed_until__isnull=False),
                name="opportunity_snooze_has_date",
            ),
            models.CheckConstraint(
                condition=~Q(outcome="lost") | Q(lost_reason__isnull=False),
                name="opportunity_lost_has_reason",
            ),
        ]
        indexes = [
            models.Index(fields=["owner", "outcome", "score"], name="opportunity_queue_idx"),
            # The queue in score order, whoever looks: an index-only scan that stops after a page of visible
            # rows, and counts them without reading the wide rows (reasons, qualification, ROI). The columns
            # after score and id only carry what the queue filters on (keys, not INCLUDE, so SQLite takes it).
            models.Index(
                fields=["score", "id", "owner", "account", "outcome", "snoozed_until"],
                condition=Q(outcome__in=["open", "snoozed"]),
                name="opportunity_queue_rank_idx",
            ),
            models.Index(fields=["outcome", "closed_at"], name="opportunity_closed_idx"),
        ]

    def __str__(self) -> str:
        return f"#{self.pk} {self.account.name} · {self.get_stage_display()} ({self.get_outcome_display()})"

    def get_absolute_url(self) -> str:
        return reverse("accounts:detail", kwargs={"pk": self.account_id}) + f"#opportunity-{self.pk}"

    @property
    def is_open(self) -> bool:
        return self.outcome == Outcome.OPEN

    @property
    def top_reason(self) -> str:
        return self.reasons[0].get("text", "") if self.reasons else ""


class Collaborator(models.Model):
    """An account executive (Sales role) the CSM brought onto an opportunity: it shows in their queue, they
    may work it, and the leaderboard credits them too."""

    opportunity = models.ForeignKey(Opportunity, on_delete=models.CASCADE, related_name="collaborators")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="collaborations")
    added_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    added_at = models.DateTimeField()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["opportunity", "user"], name="collaborator_once_per_opportunity")
        ]
        indexes = [models.Index(fields=["user", "opportunity"], name="collaborator_user_idx")]

    def __str__(self) -> str:
        return f"{self.user_id} on #{self.opportunity_id}"


class OpportunityEvent(models.Model):
    """An audit row: who did what to an opportunity, and when. Never updated."""

    class Kind(models.TextChoices):
        CREATED = "created", "Created"
        RESCORED = "rescored", "Score updated"
        STAGE_CHANGED = "stage_changed", "Stage changed"
        UPDATED = "updated", "Updated"
        ASSIGNED = "assigned", "Assigned"
        CLOSED = "closed", "Closed"
        REOPENED = "reopened", "Reopened"
        EMAIL_SENT = "email_sent", "Email sent"
        NOTE = "note", "Note"
        COLLABORATOR_ADDED = "collab_added", "Collaborator added"
        COLLABORATOR_REMOVED = "collab_removed", "Collaborator removed"

    opportunity = models.ForeignKey(Opportunity, on_delete=models.CASCADE, related_name="events")
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        help_text="Empty when the system acted (rules, billing).",
    )
    occurred_at = models.DateTimeField()
    kind = models.CharField(max_length=14, choices=Kind)
    from_stage = models.CharField(max_length=10, choices=Stage, blank=True)
    to_stage = models.CharField(max_length=10, choices=Stage, blank=True)
    changes = models.JSONField(default=dict, blank=True)
    message = models.TextField(blank=True)

    class Meta:
        indexes = [models.Index(fields=["opportunity", "occurred_at"], name="opp_event_timeline_idx")]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} on #{self.opportunity_id} at {self.occurred_at:%Y-%m-%d %H:%M}"


class AccountScore(models.Model):
    """Every account's latest score with its explanation, flagged or not (the account page explains it)."""

    account = models.OneToOneField(Account, on_delete=models.CASCADE, related_name="score")
    as_of = models.DateField()
    score = models.PositiveSmallIntegerField()
    reasons = models.JSONField(default=list, blank=True)
    target_plan = models.ForeignKey(Plan, on_delete=models.SET_NULL, null=True, blank=True, related_name="+")
    computed_at = models.DateTimeField()

    class Meta:
        constraints = [models.CheckConstraint(condition=Q(score__lte=100), name="account_score_at_most_100")]
        indexes = [models.Index(fields=["score"], name="account_score_idx")]

    def __str__(self) -> str:
        return f"{self.account_id}: {self.score} as of {self.as_of}"


class ScoreHistory(models.Model):
    """One score per account and day, for the trend on the account page (only non-zero scores are kept)."""

    account = models.ForeignKey(Account, on_delete=models.CASCADE, related_name="score_history")
    scored_on = models.DateField()
    score = models.PositiveSmallIntegerField()

    class Meta:
        verbose_name_plural = "score history"
        constraints = [models.UniqueConstraint(fields=["account", "scored_on"], name="score_history_unique_day")]

    def __str__(self) -> str:
        return f"{self.account_id}: {self.score} on {self.scored_on}"


class Note(models.Model):
    """A CSM's free-text note on an account, optionally about one of its opportunities. Rendered escaped."""

    account = models.ForeignKey(Account, on_delete=models.CASCADE, related_name="notes")
    opportunity = models.ForeignKey(Opportunity, on_delete=models.SET_NULL, null=True, blank=True, related_name="notes")
    author = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    body = models.TextField()
    created_at = models.DateTimeField()

    class Meta:
        constraints = [models.CheckConstraint(condition=~Q(body=""), name="note_body_not_empty")]
        indexes = [models.Index(fields=["account", "created_at"], name="note_account_time_idx")]

    def __str__(self) -> str:
        return f"Note {self.pk} on {self.account_id} at {self.created_at:%Y-%m-%d %H:%M}"
