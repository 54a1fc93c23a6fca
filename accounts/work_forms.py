"""Forms of a user's work: a task added by hand, the task list's filter, and the notification choices."""

from __future__ import annotations

import datetime as dt

from django import forms

from accounts.filters import OWNERS, CachedChoiceField
from accounts.models import Notification, Task

ADMIN_ONLY_KINDS = {Notification.Kind.EXPERIMENT_SIGNIFICANT}
"""Kinds only admins receive: nobody else is offered a choice about them."""


class DateInput(forms.DateInput):
    input_type = "date"


class TaskForm(forms.Form):
    """A task added by hand on the account page: what to do, by when, and any detail."""

    title = forms.CharField(max_length=Task._meta.get_field("title").max_length, label="Task")
    due_on = forms.DateField(widget=DateInput, label="Due on", error_messages={"invalid": "Enter a valid date."})
    detail = forms.CharField(widget=forms.Textarea(attrs={"rows": 2}), required=False, max_length=2000)

    def __init__(self, *args, today: dt.date, **kwargs):
        super().__init__(*args, **kwargs)
        self.today = today
        self.fields["title"].widget.attrs.update({"placeholder": "Call about the seats", "autocomplete": "off"})
        self.fields["due_on"].widget.attrs["min"] = today.isoformat()

    def clean_title(self) -> str:
        title = " ".join(self.cleaned_data["title"].split())
        if not title:
            raise forms.ValidationError("Say what is to be done.")
        return title

    def clean_due_on(self) -> dt.date:
        due_on = self.cleaned_data["due_on"]
        if due_on < self.today:
            raise forms.ValidationError("Pick today or a later day.")
        return due_on


class TaskFilterForm(forms.Form):
    """The task list's filter: a manager picks one CSM (everyone's tasks otherwise); `account` narrows the
    list to one account (the queue's "tasks due" badge links there)."""

    csm = CachedChoiceField(cached=OWNERS, required=False, empty_label="Everyone", label="CSM")
    account = forms.IntegerField(required=False, min_value=1, widget=forms.HiddenInput)

    def __init__(self, *args, manager: bool, **kwargs):
        super().__init__(*args, **kwargs)
        if not manager:
            del self.fields["csm"]

    def csm_id(self) -> int | None:
        value = self.cleaned_data.get("csm") if self.is_valid() else None
        return int(value) if value else None

    def account_id(self) -> int | None:
        return self.cleaned_data.get("account") if self.is_valid() else None


class NotificationSettingsForm(forms.Form):
    """Which kinds of notification the user wants in their centre, and whether they want the daily digest."""

    kinds = forms.MultipleChoiceField(widget=forms.CheckboxSelectMultiple, required=False, label="Notify me about")
    daily_digest = forms.BooleanField(
        required=False,
        label="Send me a daily digest by email",
        help_text="One email a day with what is new in my notification centre; none when nothing is.",
    )

    def __init__(self, *args, admin: bool, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["kinds"].choices = [
            (value, label) for value, label in Notification.Kind.choices if admin or value not in ADMIN_ONLY_KINDS
        ]

    @classmethod
    def initial_for(cls, setting) -> dict:
        muted = set(setting.muted_kinds or ())
        return {
            "kinds": [value for value in Notification.Kind.values if value not in muted],
            "daily_digest": setting.daily_digest,
        }

    def muted_kinds(self, previous: list[str]) -> list[str]:
        """The kinds offered and left unticked, plus those not offered that were muted before."""
        offered = {value for value, _ in self.fields["kinds"].choices}
        wanted = set(self.cleaned_data["kinds"])
        kept = [kind for kind in previous if kind not in offered]
        return [*kept, *(kind for kind in offered if kind not in wanted)]
