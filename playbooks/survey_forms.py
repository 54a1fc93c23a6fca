"""The survey editor's forms: the survey itself, its one to three questions (a fixed set of rows), and the
public answer form a customer fills in from an emailed link."""

from __future__ import annotations

from django import forms

from playbooks.models import Rule, Survey, SurveyQuestion, SurveyResponse
from playbooks.surveys import (
    ANSWER_MAX_CHARS,
    CHOICE_MAX_CHARS,
    MAX_CHOICES,
    MAX_QUESTIONS,
    MIN_CHOICES,
    SURVEY_FIELDS,
    QuestionSpec,
)


class RuleField(forms.ModelChoiceField):
    def label_from_instance(self, rule: Rule) -> str:
        return rule.name if rule.enabled else f"{rule.name} (off)"


class SurveyForm(forms.ModelForm):
    rule = RuleField(
        queryset=Rule.objects.order_by("name"),
        required=False,
        empty_label="No rule",
        help_text="Upcoming needs: who is asked. Downgrade and churn feedback ignores it.",
    )

    class Meta:
        model = Survey
        fields = SURVEY_FIELDS
        widgets = {
            "purpose": forms.RadioSelect,
            "channel": forms.RadioSelect,
            "intro": forms.Textarea(attrs={"rows": 2}),
        }
        help_texts = {
            "intro": "Shown above the questions.",
            "channel": "In-app: listed by the prompts API to the accounts asked. Email link: emailed once a day "
            "to the primary contact of each account the rule newly flags (downgrade and churn feedback: "
            "through the CSM's task).",
            "active": "Switched off, nobody is asked and answers are refused.",
        }

    def __init__(self, *args, **kwargs) -> None:
        kwargs.setdefault("label_suffix", "")
        super().__init__(*args, **kwargs)

    def clean_name(self) -> str:
        name = self.cleaned_data["name"].strip()
        taken = Survey.objects.filter(name__iexact=name)
        if self.instance.pk:
            taken = taken.exclude(pk=self.instance.pk)
        if taken.exists():
            raise forms.ValidationError("Another survey has this name.")
        return name

    def clean(self) -> dict:
        data = super().clean()
        if data.get("purpose") == Survey.Purpose.NEEDS and not data.get("rule") and "rule" not in self.errors:
            self.add_error("rule", "Choose the rule whose accounts are asked about their upcoming needs.")
        return data


class QuestionForm(forms.Form):
    text = forms.CharField(max_length=300, required=False, label="Question")
    kind = forms.ChoiceField(choices=SurveyQuestion.Kind.choices, initial=SurveyQuestion.Kind.TEXT, label="Answer")
    choices = forms.CharField(
        required=False,
        widget=forms.Textarea(attrs={"rows": 4}),
        label="Choices",
        help_text=f"One per line, {MIN_CHOICES} to {MAX_CHOICES}. Only for a choice question.",
    )

    def __init__(self, *args, **kwargs) -> None:
        kwargs.setdefault("label_suffix", "")
        super().__init__(*args, **kwargs)

    def has_changed(self) -> bool:
        # The answer kind alone does not make a question: a row is filled when it has text or choices.
        return bool(self["text"].value() or self["choices"].value())

    def clean(self) -> dict:
        data = super().clean()
        text = (data.get("text") or "").strip()
        lines = [line.strip() for line in (data.get("choices") or "").splitlines() if line.strip()]
        if not text:
            self.add_error("text", "Write the question, or clear this row's choices.")
        if data.get("kind") == SurveyQuestion.Kind.CHOICE:
            if len({c.casefold() for c in lines}) != len(lines):
                self.add_error("choices", "Each choice once.")
            elif not MIN_CHOICES <= len(lines) <= MAX_CHOICES:
                self.add_error(
                    "choices", f"A choice question has {MIN_CHOICES} to {MAX_CHOICES} choices, one per line."
                )
            elif any(len(c) > CHOICE_MAX_CHARS for c in lines):
                self.add_error("choices", f"A choice has at most {CHOICE_MAX_CHARS} characters.")
        elif lines:
            self.add_error("choices", "A free-text question has no choices: clear them or make it a choice question.")
        data["choice_list"] = tuple(lines)
        return data

    def spec(self) -> QuestionSpec:
        data = self.cleaned_data
        kind = data["kind"]
        return QuestionSpec(
            text=data["text"].strip(),
            kind=kind,
            choices=data["choice_list"] if kind == SurveyQuestion.Kind.CHOICE else (),
        )


class BaseQuestionFormSet(forms.BaseFormSet):
    def clean(self) -> None:
        if any(self.errors):
            return
        if not self.filled():
            raise forms.ValidationError("Ask at least one question.")

    def filled(self) -> list[QuestionForm]:
        """The rows with a question in them, in order (blank rows are skipped)."""
        return [f for f in self.forms if f.has_changed() and f.cleaned_data]


# Three rows, each may stay blank (the formset's clean asks for one filled row at least).
QuestionFormSet = forms.formset_factory(
    QuestionForm, formset=BaseQuestionFormSet, extra=MAX_QUESTIONS, max_num=MAX_QUESTIONS, validate_max=True
)


def question_initial(survey: Survey) -> list[dict]:
    """The survey's questions as the rows' initial values (a new survey: one choice row to start from)."""
    if survey.pk is None:
        return [{"kind": SurveyQuestion.Kind.CHOICE}]
    return [
        {"text": q.text, "kind": q.kind, "choices": "\n".join(q.choices)} for q in survey.questions.order_by("position")
    ]


# --- The public answer form --------------------------------------------------------------------------------


class AnswerForm(forms.Form):
    """One field per question ("q1".."q3": radio buttons for a choice, a text box for free text), and the
    reason for downgrade and churn feedback. The checks are `playbooks.surveys.answer_clean`'s."""

    def __init__(self, *args, questions, asks_reason: bool, **kwargs) -> None:
        kwargs.setdefault("label_suffix", "")
        super().__init__(*args, **kwargs)
        # Plain text fields drawn as radio buttons: which values are allowed is for the service to say.
        if asks_reason:
            self.fields["reason"] = forms.CharField(
                widget=forms.RadioSelect(choices=SurveyResponse.Reason.choices),
                required=False,
                label="What is the main reason?",
            )
        for q in questions:
            name = f"q{q.position}"
            if q.kind == SurveyQuestion.Kind.CHOICE:
                self.fields[name] = forms.CharField(
                    widget=forms.RadioSelect(choices=[(c, c) for c in q.choices]), required=False, label=q.text
                )
            else:
                self.fields[name] = forms.CharField(
                    required=False,
                    label=q.text,
                    widget=forms.Textarea(attrs={"rows": 4, "maxlength": ANSWER_MAX_CHARS}),
                    help_text="Optional.",
                )

    def answers(self) -> dict[str, str]:
        """The raw answers by position, as the service checks them (the form's own checks are off)."""
        return {name.removeprefix("q"): str(self.data.get(name, "")) for name in self.fields if name.startswith("q")}

    def reason(self) -> str:
        return str(self.data.get("reason", "")) if "reason" in self.fields else ""
