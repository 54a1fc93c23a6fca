"""The account list's filters (django-filter): segment, search, near-limit metric and owner."""

from __future__ import annotations

import django_filters
from django import forms
from django.contrib.auth import get_user_model
from django.db.models import Q, QuerySet

from accounts.models import Account, Metric, Plan, size_band_filter
from accounts.roles import Role, is_manager_or_admin
from accounts.selectors import near_limit_filter

ANY_METRIC = "any"


def _distinct_values(field: str):
    """Choices from the values accounts actually have, so the select never offers an empty segment."""

    def choices():
        values = Account.objects.exclude(**{field: ""}).order_by(field).values_list(field, flat=True).distinct()
        return [(value, value) for value in values]

    return choices


def _near_limit_choices():
    metrics = Metric.objects.filter(kind=Metric.Kind.LIMIT).order_by("display_order", "key")
    return [(ANY_METRIC, "Any metric"), *((metric.key, metric.label) for metric in metrics)]


def _owners(request) -> QuerySet:
    User = get_user_model()
    return (
        User.objects.filter(Q(groups__name=Role.CSM) | Q(owned_accounts__isnull=False))
        .distinct()
        .order_by("first_name", "last_name", "username")
    )


class OwnerField(forms.ModelChoiceField):
    def label_from_instance(self, obj) -> str:
        return obj.get_full_name() or obj.username


class OwnerFilter(django_filters.ModelChoiceFilter):
    field_class = OwnerField


class AccountFilter(django_filters.FilterSet):
    q = django_filters.CharFilter(method="filter_search", label="Search")
    plan = django_filters.ModelChoiceFilter(
        queryset=Plan.objects.order_by("tier_rank"), empty_label="Any plan", label="Plan"
    )
    status = django_filters.ChoiceFilter(choices=Account.Status.choices, empty_label="Any status")
    industry = django_filters.ChoiceFilter(choices=_distinct_values("industry"), empty_label="Any industry")
    region = django_filters.ChoiceFilter(choices=_distinct_values("region"), empty_label="Any region")
    size = django_filters.ChoiceFilter(
        choices=Account.Size.choices, method="filter_size", empty_label="Any size", label="Company size"
    )
    near_limit = django_filters.ChoiceFilter(
        choices=_near_limit_choices, method="filter_near_limit", empty_label="Any usage", label="Near limit"
    )
    owner = OwnerFilter(queryset=_owners, empty_label="Any owner", label="Owner")

    class Meta:
        model = Account
        fields = ["q", "plan", "status", "industry", "region", "size", "near_limit", "owner"]

    def __init__(self, *args, request=None, **kwargs):
        super().__init__(*args, request=request, **kwargs)
        # A CSM only sees their own book, so filtering it by owner would only ever offer themselves.
        if request is None or not is_manager_or_admin(request.user):
            del self.filters["owner"]

    def filter_search(self, queryset: QuerySet, name: str, value: str) -> QuerySet:
        value = value.strip()
        if not value:
            return queryset
        return queryset.filter(Q(name__icontains=value) | Q(external_id__icontains=value))

    def filter_size(self, queryset: QuerySet, name: str, value: str) -> QuerySet:
        return queryset.filter(size_band_filter(value))

    def filter_near_limit(self, queryset: QuerySet, name: str, value: str) -> QuerySet:
        return queryset.filter(near_limit_filter(None if value == ANY_METRIC else value))

    @property
    def active_count(self) -> int:
        """How many filters the user has set, for the "n filters" hint and the reset link."""
        data = self.form.cleaned_data if self.form.is_bound and self.form.is_valid() else {}
        return sum(1 for name in self.filters if data.get(name) not in (None, ""))
