"""The rules editor's forms: a rule (utilization typed as a percentage, stored as a fraction) and the scoring
policy; and the words that say what a rule's thresholds mean."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from django import forms
from django.core.exceptions import ValidationError

from accounts.models import Account, Metric, Plan
from playbooks.models import Rule, ScoringPolicy
from playbooks.rule_services import POLICY_FIELDS, RULE_FIELDS
from playbooks.rules import RuleSpec, fmt_number

THRESHOLD_FIELDS = (
    "min_utilization",
    "max_days_to_limit",
    "min_logins_per_week",
    "min_login_percentile",
    "min_locked_feature_hits",
    "min_trial_feature_uses",
)
LIMIT_THRESHOLDS = ("min_utilization", "max_days_to_limit")

NO_THRESHOLD = (
    "Set at least one threshold: utilization, days to the limit, logins a week, login percentile, "
    "locked-feature hits or premium features used in a trial."
)
NO_METRIC = "Choose the metric that the utilization and days-to-limit thresholds look at."


def _percent(fraction: float | None) -> float | int | None:
    """0.8 -> 80 (a whole number when it is one), for the utilization field."""
    if fraction is None:
        return None
    value = round(fraction * 100, 4)
    return int(value) if value.is_integer() else value


def _distinct(field: str, keep: Iterable[str]) -> list[tuple[str, str]]:
    """The values accounts hold for `field` (plus `keep`, a rule's own), as choices."""
    values = set(Account.objects.exclude(**{field: ""}).values_list(field, flat=True).distinct()) | set(keep)
    return [(v, v) for v in sorted(values, key=str.casefold)]


class RuleForm(forms.Form):
    name = forms.CharField(max_length=120, help_text="Shown as the reason on the account page and in the queue.")
    description = forms.CharField(max_length=300, required=False, help_text="Optional: why this rule matters.")
    metric = forms.ModelChoiceField(
        queryset=Metric.objects.filter(kind=Metric.Kind.LIMIT).order_by("display_order", "label"),
        required=False,
        empty_label="None",
        help_text="The limit-bearing metric the utilization and days-to-limit thresholds look at.",
    )
    min_utilization = forms.FloatField(
        label="Utilization at least (%)",
        required=False,
        max_value=1000,
        widget=forms.NumberInput(attrs={"step": "any", "min": "0", "inputmode": "decimal"}),
        help_text="Fires when the latest value is at least this share of the plan's limit: 80 = 80%. "
        "Unlimited plans never fire it.",
    )
    max_days_to_limit = forms.IntegerField(
        label="Limit reached within (days)",
        required=False,
        min_value=0,
        max_value=3650,
        help_text="Fires when the 30-day trend reaches the limit within this many days (0 = only at the limit).",
    )
    min_logins_per_week = forms.FloatField(
        label="Logins a week at least",
        required=False,
        min_value=0,
        widget=forms.NumberInput(attrs={"step": "any", "min": "0"}),
        help_text="Average over the last 30 days.",
    )
    min_login_percentile = forms.FloatField(
        label="Login percentile at least",
        required=False,
        min_value=0,
        max_value=100,
        widget=forms.NumberInput(attrs={"step": "any", "min": "0", "max": "100"}),
        help_text="Where the account's logins rank among all accounts: 75 = the top quarter.",
    )
    min_locked_feature_hits = forms.IntegerField(
        label="Locked-feature hits at least",
        required=False,
        min_value=0,
        help_text="Clicks on features the plan does not include, last 30 days.",
    )
    min_trial_feature_uses = forms.IntegerField(
        label="Trial feature uses at least",
        required=False,
        min_value=0,
        help_text="Premium features used during a trial, last 30 days.",
    )
    plans = forms.ModelMultipleChoiceField(
        queryset=Plan.objects.order_by("tier_rank"),
        required=False,
        widget=forms.SelectMultiple(attrs={"size": 4}),
        help_text="Only accounts on these plans. None selected = every plan.",
    )
    industries = forms.MultipleChoiceField(
        required=False,
        widget=forms.SelectMultiple,
        help_text="None selected = every industry.",
    )
    regions = forms.MultipleChoiceField(
        required=False,
        widget=forms.SelectMultiple,
        help_text="None selected = every region.",
    )
    weight = forms.IntegerField(
        min_value=0,
        max_value=100,
        initial=20,
        help_text="Points added to the account's score when the rule fires (0–100).",
    )
    enabled = forms.BooleanField(
        required=False,
        initial=True,
        help_text="Disabled rules flag nobody.",
        widget=forms.CheckboxInput(attrs={"aria-describedby": "id_enabled_helptext"}),
    )

    def __init__(self, data=None, *, rule: Rule, **kwargs):
        if rule.pk is not None and data is None:
            kwargs["initial"] = {
                "name": rule.name,
                "description": rule.description,
                "metric": rule.metric_id,
                **{field: getattr(rule, field) for field in THRESHOLD_FIELDS},
                "min_utilization": _percent(rule.min_utilization),
                "plans": [p.pk for p in rule.plans.all()],
                "industries": rule.industries,
                "regions": rule.regions,
                "weight": rule.weight,
                "enabled": rule.enabled,
            }
        super().__init__(data, **kwargs)
        self.rule = rule
        self.fields["industries"].choices = _distinct("industry", rule.industries or [])
        self.fields["regions"].choices = _distinct("region", rule.regions or [])
        for name in ("industries", "regions"):
            # Every option in sight up to a point; longer lists scroll.
            self.fields[name].widget.attrs["size"] = min(8, max(4, len(self.fields[name].choices)))

    def clean_min_utilization(self) -> float | None:
        value = self.cleaned_data["min_utilization"]
        if value is None:
            return None
        if value <= 0:
            raise ValidationError("Enter a percentage above 0, such as 80.")
        return value / 100

    def clean(self) -> dict:
        cleaned = super().clean()
        # The database's checks (rule_has_a_threshold, rule_limit_thresholds_need_metric), said first here.
        if self.errors.keys() & set(THRESHOLD_FIELDS):
            return cleaned
        if all(cleaned.get(field) is None for field in THRESHOLD_FIELDS):
            raise ValidationError(NO_THRESHOLD, code="no_threshold")
        if cleaned.get("metric") is None and any(cleaned.get(f) is not None for f in LIMIT_THRESHOLDS):
            self.add_error("metric", ValidationError(NO_METRIC, code="no_metric"))
        return cleaned

    def rule_data(self) -> dict:
        """The cleaned values under the model's field names, in the model's units."""
        return {field: self.cleaned_data[field] for field in RULE_FIELDS}

    def spec(self) -> RuleSpec:
        """The unsaved rule as plain data for evaluation (valid forms only)."""
        data = self.cleaned_data
        metric = data["metric"]
        return RuleSpec(
            id=self.rule.pk or 0,
            name=data["name"],
            weight=data["weight"],
            metric_key=metric.key if metric else None,
            **{field: data[field] for field in THRESHOLD_FIELDS},
            plan_ids=frozenset(p.pk for p in data["plans"]),
            industries=frozenset(data["industries"]),
            regions=frozenset(data["regions"]),
        )

    def words(self) -> list[str]:
        """What the unsaved rule asks for, in words (valid forms only)."""
        metric = self.cleaned_data["metric"]
        return thresholds_in_words(
            self.spec(),
            metric_label=metric.label if metric else "",
            plan_names=[p.name for p in self.cleaned_data["plans"]],
        )


PREFILLED_FIELDS = ("name", "description", *THRESHOLD_FIELDS)


def rule_initial_from_query(query: Mapping[str, str]) -> dict:
    """Initial values of a new rule from a link's query (`?name=…&metric=seats&min_utilization=100`), as the
    insights page drafts one: each value its field accepts (utilization as typed, a percentage), the metric by
    its key. A value the field refuses is left out: the admin sees an empty field, not an error for a link."""
    initial: dict = {}
    for name in PREFILLED_FIELDS:
        value = query.get(name, "")
        if not value:
            continue
        try:
            initial[name] = RuleForm.base_fields[name].clean(value)
        except ValidationError:
            continue
    key = query.get("metric", "")
    if key:
        metric = RuleForm.base_fields["metric"].queryset.filter(key=key).first()
        if metric is not None:
            initial["metric"] = metric.pk
    return initial


def thresholds_in_words(spec: RuleSpec, *, metric_label: str, plan_names: Iterable[str] = ()) -> list[str]:
    """Each condition of a rule as a phrase: 'Storage at 80% of the limit or more', 'on Basic or Pro'."""
    words = []
    if spec.min_utilization is not None:
        words.append(f"{metric_label} at {fmt_number(spec.min_utilization * 100)}% of the limit or more")
    if spec.max_days_to_limit is not None:
        days = spec.max_days_to_limit
        words.append(
            f"{metric_label} limit reached"
            if days == 0
            else f"{metric_label} limit projected within {days} day{'s' if days != 1 else ''}"
        )
    if spec.min_logins_per_week is not None:
        words.append(f"{fmt_number(spec.min_logins_per_week)} logins a week or more")
    if spec.min_login_percentile is not None:
        words.append(f"logins in the top {fmt_number(100 - spec.min_login_percentile)}% of accounts")
    if spec.min_locked_feature_hits is not None:
        words.append(f"{spec.min_locked_feature_hits} locked-feature hits or more in 30 days")
    if spec.min_trial_feature_uses is not None:
        words.append(f"premium features used {spec.min_trial_feature_uses} times or more in a trial")
    plans = sorted(plan_names)
    if plans:
        words.append("on " + " or ".join(plans))
    if spec.industries:
        words.append("in " + " or ".join(sorted(spec.industries)))
    if spec.regions:
        words.append("in the region " + " or ".join(sorted(spec.regions)))
    if words:
        words[0] = words[0][0].upper() + words[0][1:]
    return words


class ScoringPolicyForm(forms.Form):
    flag_threshold = forms.IntegerField(
        label="Flag at (points)",
        min_value=0,
        max_value=100,
        help_text=ScoringPolicy._meta.get_field("flag_threshold").help_text,
    )
    clear_margin = forms.IntegerField(
        label="Clear margin (points)",
        min_value=0,
        max_value=100,
        help_text=ScoringPolicy._meta.get_field("clear_margin").help_text,
    )
    cool_off_days = forms.IntegerField(
        label="Cool-off (days)",
        min_value=0,
        max_value=3650,
        help_text=ScoringPolicy._meta.get_field("cool_off_days").help_text,
    )
    max_touches_per_30_days = forms.IntegerField(
        label="Touches per 30 days at most",
        min_value=0,
        max_value=1000,
        help_text=ScoringPolicy._meta.get_field("max_touches_per_30_days").help_text,
    )

    @classmethod
    def for_policy(cls, policy: ScoringPolicy) -> ScoringPolicyForm:
        return cls(initial={field: getattr(policy, field) for field in POLICY_FIELDS})

    def clean(self) -> dict:
        cleaned = super().clean()
        threshold, margin = cleaned.get("flag_threshold"), cleaned.get("clear_margin")
        if threshold is not None and margin is not None and margin > threshold:
            self.add_error("clear_margin", "The margin cannot exceed the flag threshold.")
        return cleaned
