"""Forms of the opportunity panel and the queue's quick actions. Every one carries the version it was drawn
at, so a stale submission is recognised and answered with 409."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from django import forms
from django.contrib.auth import get_user_model
from django.db.models import Q

from accounts.models import Plan
from accounts.roles import Role
from opportunities.models import LostReason, Outcome, Stage

YES_NO = [("", "Not asked yet"), ("yes", "Yes"), ("no", "No")]
DEFAULT_TRIAL_DAYS = 14


def _yes_no(value: str) -> bool | None:
    return {"yes": True, "no": False}.get(value)


def yes_no_initial(value: bool | None) -> str:
    return {True: "yes", False: "no"}.get(value, "")


class DateInput(forms.DateInput):
    input_type = "date"


class VersionedForm(forms.Form):
    version = forms.IntegerField(widget=forms.HiddenInput, min_value=1)

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("label_suffix", "")
        super().__init__(*args, **kwargs)


class AdvanceForm(VersionedForm):
    to = forms.ChoiceField(choices=Stage.choices, widget=forms.HiddenInput)


class SnoozeForm(VersionedForm):
    until = forms.DateField(widget=DateInput, label="Snooze until")


class ReopenForm(VersionedForm):
    pass


class AssignForm(VersionedForm):
    owner = forms.ModelChoiceField(queryset=get_user_model().objects.none(), label="Owner")

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["owner"].queryset = (
            get_user_model()
            .objects.filter(Q(groups__name=Role.CSM), is_active=True)
            .distinct()
            .order_by("first_name", "last_name", "username")
        )
        self.fields["owner"].label_from_instance = lambda user: user.get_full_name() or user.username


class QualifyForm(VersionedForm):
    need_confirmed = forms.TypedChoiceField(
        choices=YES_NO, coerce=_yes_no, empty_value=None, required=False, label="Need confirmed?"
    )
    business_goals = forms.CharField(widget=forms.Textarea(attrs={"rows": 2}), required=False)
    blockers = forms.CharField(widget=forms.Textarea(attrs={"rows": 2}), required=False)
    budget_confirmed = forms.TypedChoiceField(
        choices=YES_NO, coerce=_yes_no, empty_value=None, required=False, label="Budget confirmed?"
    )
    decision_maker = forms.CharField(max_length=200, required=False)
    timeline = forms.CharField(max_length=200, required=False, help_text="When would they move?")
    next_step_on = forms.DateField(widget=DateInput, required=False, label="Next step on")

    def clean(self):
        data = super().clean()
        if self.data.get("action") == "move_on":
            for key in ("need_confirmed", "budget_confirmed"):
                if data.get(key) is None and key not in self.errors:
                    self.add_error(key, "Answer this before moving on to Present.")
        return data

    @property
    def answers(self) -> dict:
        keys = ("need_confirmed", "business_goals", "blockers", "budget_confirmed", "decision_maker", "timeline")
        return {key: self.cleaned_data.get(key) for key in keys}


class PresentForm(VersionedForm):
    target_plan = forms.ModelChoiceField(queryset=Plan.objects.none(), empty_label=None)
    value_proposition = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 3}), required=False, help_text="What the higher plan solves for them."
    )
    hours_saved_per_month = forms.DecimalField(min_value=0, max_digits=8, decimal_places=1, initial=Decimal(0))
    hourly_cost = forms.DecimalField(min_value=0, max_digits=10, decimal_places=2, initial=Decimal(0))
    avoided_per_month = forms.DecimalField(
        min_value=0, max_digits=12, decimal_places=2, initial=Decimal(0), label="Overage or risk avoided / month"
    )
    trial = forms.BooleanField(required=False, label="Offer a trial of the target plan")
    trial_ends_on = forms.DateField(widget=DateInput, required=False, label="Trial ends on")
    next_step_on = forms.DateField(widget=DateInput, required=False, label="Next step on")

    def __init__(self, *args, current_plan: Plan | None = None, today: dt.date, trial_days: int | None = None, **kw):
        super().__init__(*args, **kw)
        plans = Plan.objects.active().order_by("tier_rank")
        if current_plan is not None:
            plans = plans.filter(tier_rank__gt=current_plan.tier_rank)
        self.fields["target_plan"].queryset = plans
        self.today = today
        self.fields["trial_ends_on"].initial = today + dt.timedelta(days=trial_days or DEFAULT_TRIAL_DAYS)

    def clean(self):
        data = super().clean()
        if data.get("trial"):
            if not data.get("trial_ends_on"):
                data["trial_ends_on"] = self.fields["trial_ends_on"].initial
            elif data["trial_ends_on"] <= self.today:
                self.add_error("trial_ends_on", "A trial ends after today.")
        else:
            data["trial_ends_on"] = None
        return data


class EmailForm(VersionedForm):
    to = forms.EmailField(label="To")
    subject = forms.CharField(max_length=200)
    body = forms.CharField(widget=forms.Textarea(attrs={"rows": 12}))


class CloseForm(VersionedForm):
    OUTCOMES = [(Outcome.WON, "Won"), (Outcome.LOST, "Lost"), (Outcome.SNOOZED, "Not now (snooze)")]

    outcome = forms.ChoiceField(choices=OUTCOMES, widget=forms.RadioSelect)
    plan = forms.ModelChoiceField(queryset=Plan.objects.none(), required=False, label="New plan")
    mrr_delta = forms.DecimalField(max_digits=12, decimal_places=2, required=False, label="Actual MRR change")
    lost_reason = forms.ModelChoiceField(queryset=LostReason.objects.none(), required=False, label="Reason")
    lost_detail = forms.CharField(widget=forms.Textarea(attrs={"rows": 2}), required=False, label="Detail")
    snoozed_until = forms.DateField(widget=DateInput, required=False, label="Back on")

    def __init__(self, *args, today: dt.date, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["plan"].queryset = Plan.objects.active().order_by("tier_rank")
        self.fields["lost_reason"].queryset = LostReason.objects.filter(active=True).order_by("display_order", "label")
        self.today = today

    def clean(self):
        data = super().clean()
        outcome = data.get("outcome")
        required = {
            Outcome.WON: ("plan", "mrr_delta"),
            Outcome.LOST: ("lost_reason",),
            Outcome.SNOOZED: ("snoozed_until",),
        }.get(outcome, ())
        for name in required:
            if data.get(name) in (None, "") and name not in self.errors:
                self.add_error(name, "Required for this outcome.")
        if outcome == Outcome.SNOOZED and data.get("snoozed_until") and data["snoozed_until"] <= self.today:
            self.add_error("snoozed_until", "Pick a day after today.")
        return data


class NoteForm(forms.Form):
    body = forms.CharField(widget=forms.Textarea(attrs={"rows": 3}), max_length=5000, label="Note")
    opportunity = forms.IntegerField(widget=forms.HiddenInput, required=False)
