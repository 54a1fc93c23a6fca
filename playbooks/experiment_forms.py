"""The form that creates an experiment: the experiment itself and a fixed set of variant rows (a formset)."""

from __future__ import annotations

from django import forms
from django.core.validators import MaxValueValidator, MinValueValidator

from playbooks.experiment_services import DEFAULT_ATTRIBUTION_DAYS, VARIANT_TEMPLATES, VariantSpec
from playbooks.models import Play
from playbooks.sandbox import template_errors

MIN_VARIANTS = 2
MAX_VARIANTS = 5
MAX_CONTROL_PERCENT = 50


class ExperimentForm(forms.Form):
    play = forms.ModelChoiceField(
        queryset=Play.objects.active().order_by("name"),
        empty_label="Choose a play",
        help_text="One experiment runs per play at a time.",
    )
    name = forms.CharField(max_length=120)
    hypothesis = forms.CharField(
        required=False,
        widget=forms.Textarea(attrs={"rows": 2}),
        help_text="What you expect and why, e.g. “naming the limit in the subject gets more upgrades”.",
    )
    control_percent = forms.IntegerField(
        label="Control group (%)",
        initial=10,
        validators=[MinValueValidator(0), MaxValueValidator(MAX_CONTROL_PERCENT)],
        help_text=f"Accounts held out: they get no email and no prompt from the play (0–{MAX_CONTROL_PERCENT}%).",
    )
    attribution_days = forms.IntegerField(
        initial=DEFAULT_ATTRIBUTION_DAYS,
        validators=[MinValueValidator(1), MaxValueValidator(365)],
        help_text="An upgrade counts for an arm within this many days after the account was assigned.",
    )

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("label_suffix", "")
        super().__init__(*args, **kwargs)
        self.fields["play"].label_from_instance = lambda play: play.name


class VariantForm(forms.Form):
    name = forms.CharField(max_length=60, label="Variant name")
    weight = forms.IntegerField(
        initial=1,
        validators=[MinValueValidator(1), MaxValueValidator(100)],
        help_text="Relative share among the variants.",
    )
    email_subject = forms.CharField(max_length=200, required=False)
    email_body = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 3}))
    prompt_text = forms.CharField(max_length=300, required=False)
    prompt_cta_label = forms.CharField(label="Prompt CTA label", max_length=60, required=False)
    prompt_cta_url = forms.URLField(label="Prompt CTA URL", required=False, assume_scheme="https")
    trial_days = forms.IntegerField(
        required=False, validators=[MinValueValidator(1), MaxValueValidator(365)], label="Trial days"
    )

    OVERRIDES = ("email_subject", "email_body", "prompt_text", "prompt_cta_label", "prompt_cta_url", "trial_days")

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("label_suffix", "")
        super().__init__(*args, **kwargs)

    def clean(self):
        data = super().clean()
        for field, kind in VARIANT_TEMPLATES.items():
            for problem in template_errors(data.get(field) or "", kind=kind):
                self.add_error(field, problem)
        return data

    def overrides(self):
        return [self[name] for name in self.OVERRIDES]

    def overrides_open(self) -> bool:
        """Show the overrides unfolded when one is filled in or wrong."""
        return any(self[name].errors or self[name].value() not in (None, "") for name in self.OVERRIDES)

    def spec(self) -> VariantSpec:
        data = self.cleaned_data
        return VariantSpec(
            name=data["name"],
            weight=data["weight"],
            email_subject=data["email_subject"],
            email_body=data["email_body"],
            prompt_text=data["prompt_text"],
            prompt_cta_label=data["prompt_cta_label"],
            prompt_cta_url=data["prompt_cta_url"],
            trial_days=data["trial_days"],
        )


class BaseVariantFormSet(forms.BaseFormSet):
    def clean(self):
        if any(self.errors):
            return
        names = [f.cleaned_data["name"].strip().lower() for f in self.filled()]
        if len(set(names)) != len(names):
            raise forms.ValidationError("Give each variant its own name.")

    def filled(self) -> list[VariantForm]:
        """The rows with a variant in them (blank extra rows are skipped)."""
        return [f for f in self.forms if f.has_changed() and f.cleaned_data]


VariantFormSet = forms.formset_factory(
    VariantForm,
    formset=BaseVariantFormSet,
    extra=1,
    min_num=MIN_VARIANTS,
    validate_min=True,
    max_num=MAX_VARIANTS,
    validate_max=True,
)
