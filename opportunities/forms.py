"""Forms of the opportunity panel and the queue's quick actions. Every one carries the version it was drawn
at, so a stale submission is recognised and answered with 409."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from django import forms
from django.contrib.auth import get_user_model
from django.db.models import Q
from django.forms.models import ModelChoiceIterator

from accounts import selectors as account_selectors
from accounts.filters import FastSelect
from accounts.models import Plan
from accounts.roles import Role
from opportunities.collaboration import collaborator_candidates, sales_users
from opportunities.models import LostReason, Outcome, Stage
from opportunities.selectors import active_lost_reasons, active_lost_reasons_queryset

YES_NO = [("", "Not asked yet"), ("yes", "Yes"), ("no", "No")]
DEFAULT_TRIAL_DAYS = 14


def _yes_no(value: str) -> bool | None:
    return {"yes": True, "no": False}.get(value)


def yes_no_initial(value: bool | None) -> str:
    return {True: "yes", False: "no"}.get(value, "")


class DateInput(forms.DateInput):
    input_type = "date"


class ListedModelChoiceIterator(ModelChoiceIterator):
    """Iterates the field's `listed` rows when it has them (reference data from accounts.reference), else the
    queryset itself, where Django's iterator calls `.iterator()`: on PostgreSQL that opens a server-side
    cursor (three round trips) for a list of a handful of rows, and reads it again every time the choices
    are iterated, where the queryset keeps its rows."""

    def __iter__(self):
        if self.field.empty_label is not None:
            yield ("", self.field.empty_label)
        listed = self.field.listed
        for obj in self.queryset if listed is None else listed:
            yield self.choice(obj)


class ListedModelChoiceField(forms.ModelChoiceField):
    """A model choice whose options can be drawn from rows read beforehand (`listed`), while a submitted value
    is still checked against the queryset."""

    iterator = ListedModelChoiceIterator
    widget = FastSelect
    listed: list | None = None

    def offer(self, queryset, listed: list) -> None:
        """Check submitted values against `queryset`; draw the options from `listed`, the same rows."""
        self.listed = listed
        self.queryset = queryset  # also hands the widget fresh choices, which iterate `listed`


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
    owner = ListedModelChoiceField(queryset=get_user_model().objects.none(), label="Owner")

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["owner"].queryset = (
            get_user_model()
            .objects.filter(Q(groups__name=Role.CSM), is_active=True)
            .distinct()
            .order_by("first_name", "last_name", "username")
        )
        self.fields["owner"].label_from_instance = lambda user: user.get_full_name() or user.username


class CollaboratorAddForm(VersionedForm):
    """An account executive to bring onto `opportunity`: only those who may be added are accepted, so any
    other id (a CSM, someone on it already, a made-up number) is an error on the field."""

    user = ListedModelChoiceField(
        queryset=get_user_model().objects.none(),
        label="Account executive",
        empty_label="Choose…",
        error_messages={
            "required": "Account executive: choose one.",
            "invalid_choice": "Account executive: choose a user in the Sales role who is not on it yet.",
        },
    )

    def __init__(self, *args, opportunity, on_it: list | None = None, **kwargs):
        """`on_it`: the opportunity's collaborators when the caller has read them; the options are then drawn
        without a query."""
        kwargs.setdefault("auto_id", "collaborator_%s")
        super().__init__(*args, **kwargs)
        candidates = collaborator_candidates(opportunity=opportunity)
        if on_it is None:
            self.fields["user"].queryset = candidates
        else:
            taken = {collaborator.user_id for collaborator in on_it} | {opportunity.owner_id}
            listed = [user for user in sales_users() if user.pk not in taken]
            self.fields["user"].offer(candidates, listed)
        self.fields["user"].label_from_instance = lambda user: user.get_full_name() or user.username


class CollaboratorRemoveForm(VersionedForm):
    """An account executive to take off `opportunity`: one of those on it."""

    user = forms.ModelChoiceField(
        queryset=get_user_model().objects.none(),
        widget=forms.HiddenInput,
        error_messages={
            "required": "Account executive: say whom to remove.",
            "invalid_choice": "Account executive: that user does not work on this opportunity.",
        },
    )

    def __init__(self, *args, opportunity, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["user"].queryset = get_user_model().objects.filter(collaborations__opportunity=opportunity)


class QualifyForm(VersionedForm):
    need_confirmed = forms.TypedChoiceField(
        choices=YES_NO, coerce=_yes_no, empty_value=None, required=False, label="Need confirmed?", widget=FastSelect
    )
    business_goals = forms.CharField(widget=forms.Textarea(attrs={"rows": 2}), required=False)
    blockers = forms.CharField(widget=forms.Textarea(attrs={"rows": 2}), required=False)
    budget_confirmed = forms.TypedChoiceField(
        choices=YES_NO, coerce=_yes_no, empty_value=None, required=False, label="Budget confirmed?", widget=FastSelect
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
    target_plan = ListedModelChoiceField(queryset=Plan.objects.none(), empty_label=None)
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
        listed = account_selectors.active_plans()
        if current_plan is not None:
            plans = plans.filter(tier_rank__gt=current_plan.tier_rank)
            listed = [plan for plan in listed if plan.tier_rank > current_plan.tier_rank]
        self.fields["target_plan"].offer(plans, listed)
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
    plan = ListedModelChoiceField(queryset=Plan.objects.none(), required=False, label="New plan")
    mrr_delta = forms.DecimalField(max_digits=12, decimal_places=2, required=False, label="Actual MRR change")
    lost_reason = ListedModelChoiceField(queryset=LostReason.objects.none(), required=False, label="Reason")
    lost_detail = forms.CharField(widget=forms.Textarea(attrs={"rows": 2}), required=False, label="Detail")
    snoozed_until = forms.DateField(widget=DateInput, required=False, label="Back on")

    def __init__(self, *args, today: dt.date, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["plan"].offer(Plan.objects.active().order_by("tier_rank"), account_selectors.active_plans())
        self.fields["lost_reason"].offer(active_lost_reasons_queryset(), active_lost_reasons())
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


class AccountIdsField(forms.TypedMultipleChoiceField):
    """Account ids as posted by checkboxes; which of them exist (and may be moved) is the service's business."""

    def __init__(self, **kwargs):
        super().__init__(coerce=int, choices=(), **kwargs)

    def valid_value(self, value) -> bool:
        return str(value).isdigit() and len(str(value)) <= 18


class ReassignForm(forms.Form):
    """Accounts to give to another CSM (the account list's selection, or one account from its page)."""

    accounts = AccountIdsField(
        error_messages={
            "required": "Accounts: choose at least one.",
            "invalid_choice": "Accounts: %(value)s is not an account id.",
        }
    )
    to = forms.ModelChoiceField(
        queryset=get_user_model().objects.none(),
        label="New owner",
        error_messages={"required": "New owner: choose a CSM.", "invalid_choice": "New owner: choose an active CSM."},
    )

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["to"].queryset = get_user_model().objects.filter(groups__name=Role.CSM, is_active=True).distinct()
