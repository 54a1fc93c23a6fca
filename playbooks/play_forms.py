"""The play form of the settings pages: every field of a play, grouped as the Django admin groups them, with
its templates checked by the sandbox."""

from __future__ import annotations

from django import forms

from accounts.models import Plan
from playbooks.models import Play, Rule
from playbooks.services import PLAY_FIELDS, play_template_errors

# (title, hint, fields), in the order of the page.
FIELDSETS = (
    ("Play", "", ("name", "description", "active", "target_plan", "rules")),
    ("CSM outreach", "What the CSM says and shows.", ("talking_points", "case_study_url")),
    ("Email", "Sent by the CSM from the opportunity's Present step.", ("email_subject", "email_body")),
    (
        "In-app prompt",
        "Shown in your product through the prompts API.",
        ("prompt_kind", "prompt_text", "prompt_cta_label", "prompt_cta_url"),
    ),
    ("Trial offer", "", ("trial_days",)),
    ("Downgrade save", "Sent when the account asks to downgrade.", ("downgrade_save_subject", "downgrade_save_body")),
    ("Pitch fatigue", "Limits per account.", ("prompt_max_per_week", "min_days_between_touches")),
    ("Automated sequence", "How accounts enter the steps of the sequence below the form.", ("run_mode",)),
)
TEMPLATE_FIELDS = ("email_subject", "email_body", "prompt_text", "downgrade_save_subject", "downgrade_save_body")


class RuleChoiceField(forms.ModelMultipleChoiceField):
    def label_from_instance(self, rule: Rule) -> str:
        return rule.name if rule.enabled else f"{rule.name} (off)"


class PlayForm(forms.ModelForm):
    rules = RuleChoiceField(
        queryset=Rule.objects.order_by("name"),
        required=False,
        widget=forms.CheckboxSelectMultiple,
        help_text="The rules that trigger this play.",
    )

    class Meta:
        model = Play
        fields = (*PLAY_FIELDS, "rules")
        widgets = {
            "talking_points": forms.Textarea(attrs={"rows": 4}),
            "email_body": forms.Textarea(attrs={"rows": 12, "spellcheck": "true"}),
            "downgrade_save_body": forms.Textarea(attrs={"rows": 8, "spellcheck": "true"}),
            "prompt_text": forms.Textarea(attrs={"rows": 2}),
            "run_mode": forms.RadioSelect,
        }

    def __init__(self, *args, **kwargs) -> None:
        kwargs.setdefault("label_suffix", "")
        super().__init__(*args, **kwargs)
        self.fields["case_study_url"].label = "Case-study URL"
        self.fields["target_plan"].queryset = Plan.objects.order_by("tier_rank")
        self.fields["target_plan"].empty_label = "No target plan"
        for name in TEMPLATE_FIELDS:
            self.fields[name].widget.attrs["class"] = "play-template"
            self.fields[name].help_text = "A template: merge fields as {{ account_name }}, see the list."
        # A form posted without the run mode (an older page, a script) keeps the play's.
        self.fields["run_mode"].required = False
        self.fields["run_mode"].label = "Run the sequence"
        self.fields["run_mode"].help_text = ""  # the fieldset's hint says it

    def clean_run_mode(self) -> str:
        return self.cleaned_data.get("run_mode") or self.instance.run_mode or Play.RunMode.MANUAL

    def clean(self) -> dict:
        data = super().clean()
        for name, problems in play_template_errors(data).items():
            if name in self.fields and name not in self.errors:
                for problem in problems:
                    self.add_error(name, problem)
        return data

    def fieldsets(self) -> list[dict]:
        return [
            {"title": title, "hint": hint, "fields": [self[name] for name in names]} for title, hint, names in FIELDSETS
        ]
