"""Forms of the admin settings pages: a plan with its limits and features, catalogue rows, tokens, audit filters."""

from __future__ import annotations

from decimal import Decimal

from django import forms
from django.apps import apps
from django.contrib.auth import get_user_model
from django.core.validators import MinValueValidator
from django.db.models.functions import Lower

from accounts.models import ApiToken, AuditEntry, Metric, Plan, StripePriceMapping
from accounts.settings_services import PLAN_FIELDS, FeatureDraft, PlanDraft
from accounts.templatetags.account_format import display_name

NEGATIVE_PRICE = "A price cannot be negative."
NEGATIVE_LIMIT = "A limit cannot be negative; leave it empty for unlimited."


class NoColonForm:
    """Labels without Django's trailing colon, as everywhere else in the app."""

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("label_suffix", "")
        super().__init__(*args, **kwargs)


class PlanForm(NoColonForm, forms.ModelForm):
    """A plan's own fields; `version` is the fingerprint of the plan as the form was opened (stale saves)."""

    version = forms.CharField(required=False, widget=forms.HiddenInput)

    class Meta:
        model = Plan
        fields = PLAN_FIELDS
        widgets = {"description": forms.TextInput}
        labels = {"tier_rank": "Tier rank", "monthly_price": "Monthly price", "annual_price": "Annual price"}

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        for name in ("monthly_price", "annual_price"):
            self.fields[name].validators.append(MinValueValidator(Decimal(0), message=NEGATIVE_PRICE))
            self.fields[name].widget.attrs["min"] = "0"
        self.fields["currency"].widget.attrs.update({"maxlength": "3", "autocapitalize": "characters"})

    def clean_name(self) -> str:
        name = self.cleaned_data["name"].strip()
        others = Plan.objects.annotate(lname=Lower("name")).filter(lname=name.lower())
        if self.instance.pk is not None:
            others = others.exclude(pk=self.instance.pk)
        if others.exists():
            raise forms.ValidationError("Another plan has this name.")
        return name

    def clean_tier_rank(self) -> int:
        rank = self.cleaned_data["tier_rank"]
        others = Plan.objects.filter(tier_rank=rank)
        if self.instance.pk is not None:
            others = others.exclude(pk=self.instance.pk)
        taken = others.first()
        if taken is not None:
            raise forms.ValidationError(f"{taken.name} has this tier rank: each tier has its own.")
        return rank

    def clean_currency(self) -> str:
        currency = self.cleaned_data["currency"].strip().upper()
        if len(currency) != 3 or not currency.isalpha():
            raise forms.ValidationError("Use a three-letter currency code, e.g. USD.")
        return currency


class LimitForm(NoColonForm, forms.Form):
    metric = forms.CharField(widget=forms.HiddenInput)
    limit = forms.FloatField(
        required=False,
        min_value=0,
        error_messages={"min_value": NEGATIVE_LIMIT},
        widget=forms.NumberInput(attrs={"step": "any", "min": "0", "placeholder": "Unlimited"}),
    )


class BaseLimitFormSet(forms.BaseFormSet):
    """One form per limit-bearing metric, in catalogue order; `form.metric_obj` names the metric it holds."""

    def __init__(self, *args, metrics: list[Metric], **kwargs):
        self.metrics = metrics
        super().__init__(*args, **kwargs)
        for form, metric in zip(self.forms, metrics, strict=False):
            form.metric_obj = metric
            form.fields["limit"].label = metric.label

    def clean(self) -> None:
        keys = [form.cleaned_data.get("metric") for form in self.forms if hasattr(form, "cleaned_data")]
        if keys != [m.key for m in self.metrics]:
            raise forms.ValidationError("The metrics changed since this page was opened: reload it.")


LimitFormSet = forms.formset_factory(LimitForm, formset=BaseLimitFormSet, extra=0, max_num=200, validate_max=True)


class FeatureForm(NoColonForm, forms.Form):
    key = forms.SlugField(max_length=50, help_text="As in engagement events, e.g. reporting.")
    label = forms.CharField(max_length=100)
    value = forms.CharField(max_length=100, required=False, help_text="A level, or empty = not included.")
    display_order = forms.IntegerField(min_value=0, max_value=32767, required=False, initial=0, label="Order")


class BaseFeatureFormSet(forms.BaseFormSet):
    def clean(self) -> None:
        seen: set[str] = set()
        for form in self.forms:
            if not hasattr(form, "cleaned_data") or self._should_delete_form(form):
                continue
            key = form.cleaned_data.get("key")
            if key in seen:
                form.add_error("key", f"The feature key {key} is repeated.")
            elif key:
                seen.add(key)


FeatureFormSet = forms.formset_factory(
    FeatureForm, formset=BaseFeatureFormSet, extra=2, can_delete=True, max_num=100, validate_max=True
)


def limit_initial(draft: PlanDraft | None, metrics: list[Metric]) -> list[dict]:
    limits = draft.limits if draft else {}
    return [{"metric": m.key, "limit": _plain_number(limits.get(m.key))} for m in metrics]


def feature_initial(draft: PlanDraft | None) -> list[dict]:
    if draft is None:
        return []
    return [
        {"key": f.key, "label": f.label, "value": f.value, "display_order": f.display_order} for f in draft.features
    ]


def _plain_number(value: float | None) -> float | int | None:
    """5.0 shows as 5 in an input; 2.5 stays 2.5."""
    if value is None:
        return None
    return int(value) if float(value).is_integer() else value


def plan_draft_from_forms(
    *, form: PlanForm, limits: BaseLimitFormSet, features: BaseFeatureFormSet, fallback: PlanDraft
) -> PlanDraft:
    """The plan the forms describe, for the preview and the save. A field that does not validate keeps its
    `fallback` value (the stored plan, or a blank one), so the preview follows every valid keystroke.
    Call after `is_valid()` on the three."""
    data = form.cleaned_data if hasattr(form, "cleaned_data") else {}
    values = {name: data[name] if name in data else getattr(fallback, name) for name in PLAN_FIELDS}
    limit_values = dict(fallback.limits)
    for sub in limits.forms:
        cleaned = getattr(sub, "cleaned_data", {})
        metric = getattr(sub, "metric_obj", None)
        if metric is not None and "limit" in cleaned:
            limit_values[metric.key] = cleaned["limit"]
    feature_values: list[FeatureDraft] = []
    seen: set[str] = set()
    for sub in features.forms:
        cleaned = getattr(sub, "cleaned_data", {})
        if not cleaned.get("key") or not cleaned.get("label") or cleaned.get("DELETE"):
            continue
        if cleaned["key"] in seen:
            continue
        seen.add(cleaned["key"])
        feature_values.append(
            FeatureDraft(
                key=cleaned["key"],
                label=cleaned["label"],
                value=cleaned.get("value") or "",
                display_order=cleaned.get("display_order") or 0,
            )
        )
    feature_values.sort(key=lambda f: (f.display_order, f.key))
    return PlanDraft(pk=fallback.pk, **values, limits=limit_values, features=tuple(feature_values))


class MetricForm(NoColonForm, forms.ModelForm):
    class Meta:
        model = Metric
        fields = ["key", "label", "unit", "kind", "display_order", "description"]
        widgets = {"description": forms.Textarea(attrs={"rows": 3})}

    def __init__(self, *args, in_use: bool = False, **kwargs):
        super().__init__(*args, **kwargs)
        if in_use:
            # A disabled field ignores what is posted: the key of stored history cannot be changed.
            self.fields["key"].disabled = True
            self.fields["key"].help_text = "Usage snapshots use this key: it can no longer change."


class StripePriceForm(NoColonForm, forms.ModelForm):
    class Meta:
        model = StripePriceMapping
        fields = ["price_id", "plan", "description"]
        labels = {"price_id": "Stripe price id"}

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["plan"].queryset = Plan.objects.order_by("tier_rank")
        self.fields["price_id"].widget.attrs["autocomplete"] = "off"

    def clean_price_id(self) -> str:
        price_id = self.cleaned_data["price_id"].strip()
        if not price_id.startswith(("price_", "plan_")):
            raise forms.ValidationError("A Stripe price id starts with price_ (or plan_ for legacy plans).")
        return price_id


class TokenForm(NoColonForm, forms.ModelForm):
    class Meta:
        model = ApiToken
        fields = ["name"]
        labels = {"name": "What will use it"}

    def clean_name(self) -> str:
        return self.cleaned_data["name"].strip()


def object_type_label(object_type: str) -> str:
    """ "accounts.Plan" -> "Plan"; a label of a model that no longer exists stays as stored."""
    try:
        return str(apps.get_model(object_type)._meta.verbose_name).capitalize()
    except (LookupError, ValueError):
        return object_type


class AuditFilterForm(NoColonForm, forms.Form):
    object_type = forms.ChoiceField(required=False, label="Type")
    actor = forms.TypedChoiceField(required=False, coerce=int, empty_value=None, label="Changed by")
    object_id = forms.CharField(required=False, max_length=64, widget=forms.HiddenInput)

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        types = set(AuditEntry.objects.values_list("object_type", flat=True).distinct())
        # A "History" link may name a type with no entries yet: offer it rather than refuse the filter.
        asked = self.data.get("object_type") if self.is_bound else None
        if asked and object_type_label(asked) != asked:
            types.add(asked)
        choices = sorted(((t, object_type_label(t)) for t in types), key=lambda choice: choice[1])
        self.fields["object_type"].choices = [("", "Every type"), *choices]
        actors = get_user_model().objects.filter(pk__in=AuditEntry.objects.values("actor_id")).order_by("username")
        self.fields["actor"].choices = [("", "Anyone"), *((u.pk, display_name(u)) for u in actors)]
