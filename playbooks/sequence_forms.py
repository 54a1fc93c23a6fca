"""Forms of the automated plays: a step of a play's sequence (admins), and starting a play on an account (CSMs)."""

from __future__ import annotations

from django import forms
from django.db.models import Exists, OuterRef

from accounts import reference
from playbooks.models import Play, SequenceStep
from playbooks.step_services import STEP_FIELDS, step_template_errors

MAX_DELAY_DAYS = 365
MAX_TASK_DUE_DAYS = 90


class StepForm(forms.ModelForm):
    """One step: its day, what it does, its texts (sandboxed templates) and what happens under pitch fatigue.

    A blank subject or body falls back to the play's own email or prompt; an email step needs a subject and a
    body from somewhere, a prompt step a text.
    """

    delay_days = forms.IntegerField(
        label="Day",
        min_value=0,
        max_value=MAX_DELAY_DAYS,
        initial=0,
        help_text="Days after the account enrolled; 0 = the same day.",
        error_messages={
            "min_value": "A day cannot be negative: 0 is the day the account enrolled.",
            "max_value": f"A step runs at most {MAX_DELAY_DAYS} days after the account enrolled.",
            "invalid": "Enter the day as a whole number, such as 0, 3 or 7.",
            "required": "Enter the day of the step: 0 is the day the account enrolled.",
        },
    )
    task_due_days = forms.IntegerField(
        label="Task due after (days)",
        min_value=0,
        max_value=MAX_TASK_DUE_DAYS,
        initial=2,
        help_text="For a task: days the CSM has to do it.",
        error_messages={
            "min_value": "Enter 0 (due the same day) or more days.",
            "max_value": f"A task is due within {MAX_TASK_DUE_DAYS} days.",
            "invalid": "Enter the days as a whole number.",
        },
    )

    class Meta:
        model = SequenceStep
        fields = STEP_FIELDS
        labels = {"kind": "Step", "subject": "Subject or title", "body": "Body", "when_fatigued": "When fatigued"}
        widgets = {
            "body": forms.Textarea(attrs={"rows": 6, "spellcheck": "true", "class": "play-template"}),
            "subject": forms.TextInput(attrs={"class": "play-template"}),
            "when_fatigued": forms.RadioSelect,
        }
        help_texts = {
            "subject": "Email subject, or task / notification title. Blank: the play's email subject, or a title "
            "naming the play.",
            "body": "Email body, prompt text, or task detail; merge fields as {{ account_name }}. Blank: the play's.",
            "when_fatigued": "The account was contacted too often lately (the play's pitch-fatigue limits).",
        }
        error_messages = {"kind": {"invalid_choice": "Choose what the step does: %(value)s is not a kind of step."}}

    def __init__(self, *args, play: Play, prefix: str | None = "step", **kwargs) -> None:
        kwargs.setdefault("label_suffix", "")
        super().__init__(*args, prefix=prefix, **kwargs)
        self.play = play
        self.fields["task_due_days"].required = False
        self.fields["kind"].choices = SequenceStep.Kind.choices
        self.fields["kind"].initial = SequenceStep.Kind.EMAIL
        self.fields["kind"].error_messages["required"] = "Choose what the step does."

    def clean_task_due_days(self) -> int:
        value = self.cleaned_data.get("task_due_days")
        return 2 if value is None else value

    def clean(self) -> dict:
        data = super().clean()
        for name, problems in step_template_errors(data).items():
            if name in self.fields and name not in self.errors:
                for problem in problems:
                    self.add_error(name, problem)
        for name, message in self._missing_texts(data.get("kind")):
            if not data.get(name) and name not in self.errors:
                self.add_error(name, message)
        return data

    def _missing_texts(self, kind: str | None) -> list[tuple[str, str]]:
        """The texts the step must give itself, because the play has none for it to fall back to."""
        play, missing = self.play, []
        if kind == SequenceStep.Kind.EMAIL and not play.email_subject:
            missing.append(("subject", "Give the email a subject: the play has no email subject to fall back to."))
        if kind == SequenceStep.Kind.EMAIL and not play.email_body:
            missing.append(("body", "Write the email: the play has no email body to fall back to."))
        if kind == SequenceStep.Kind.PROMPT and not play.prompt_text:
            missing.append(("body", "Write the prompt: the play has no prompt text to fall back to."))
        return missing


class StepMoveForm(forms.Form):
    direction = forms.ChoiceField(choices=[("up", "Up"), ("down", "Down")])


def startable_plays():
    """The plays a CSM may start on an account: active, with at least one step (manual or automatic)."""
    has_steps = SequenceStep.objects.filter(play=OuterRef("pk"))
    return Play.objects.active().filter(Exists(has_steps)).order_by("name")


class PlayChoiceField(forms.ModelChoiceField):
    def label_from_instance(self, play: Play) -> str:
        return play.name if play.run_mode == Play.RunMode.MANUAL else f"{play.name} (also runs automatically)"


class EnrollmentStartForm(forms.Form):
    play = PlayChoiceField(
        queryset=Play.objects.none(),
        empty_label="Choose a play…",
        label="Play",
        error_messages={
            "required": "Choose the play to start.",
            "invalid_choice": "That play cannot be started: it is inactive, has no steps, or does not exist.",
        },
    )

    def __init__(self, *args, **kwargs) -> None:
        kwargs.setdefault("label_suffix", "")
        kwargs.setdefault("auto_id", "id_start_%s")  # the account page holds other forms with a "play" field
        super().__init__(*args, **kwargs)
        field = self.fields["play"]
        field.queryset = startable_plays()
        # The options, read once (reference data: cached until a play or a step changes): the select draws
        # them without another query, and the panel knows if any.
        self.plays = reference.cached("startable-plays", lambda: list(startable_plays()))
        field.widget.choices = [("", field.empty_label)] + [(p.pk, field.label_from_instance(p)) for p in self.plays]
