"""The queue's filters (django-filter): stage, segment, near-limit metric, score range, owner, search."""

from __future__ import annotations

import django_filters
from django.db.models import Q, QuerySet

from accounts.filters import (
    ANY_METRIC,
    INDUSTRIES,
    NEAR_LIMIT_METRICS,
    OWNERS,
    PLANS,
    REGIONS,
    CachedChoiceFilter,
    FastSelect,
    FilterSet,
)
from accounts.models import Account, size_band_filter
from accounts.roles import is_manager_or_admin
from accounts.selectors import near_limit_filter
from opportunities.models import Opportunity, Stage

PLACEHOLDERS = {"score_min": "Min score", "score_max": "Max score"}


def _account_near_limit(metric_key: str | None) -> Q:
    # near_limit_filter() is written against accounts; the queue filters through the opportunity's account.
    return Q(account__in=Account.objects.filter(near_limit_filter(metric_key)))


class QueueFilter(FilterSet):
    q = django_filters.CharFilter(method="filter_search", label="Search")
    stage = django_filters.ChoiceFilter(choices=Stage.choices, empty_label="Any stage", widget=FastSelect)
    plan = CachedChoiceFilter(field_name="account__plan", cached=PLANS, empty_label="Any plan", label="Plan")
    industry = CachedChoiceFilter(field_name="account__industry", cached=INDUSTRIES, empty_label="Any industry")
    size = django_filters.ChoiceFilter(
        choices=Account.Size.choices,
        method="filter_size",
        empty_label="Any size",
        label="Company size",
        widget=FastSelect,
    )
    region = CachedChoiceFilter(field_name="account__region", cached=REGIONS, empty_label="Any region")
    near_limit = CachedChoiceFilter(
        cached=NEAR_LIMIT_METRICS, method="filter_near_limit", empty_label="Any usage", label="Near limit"
    )
    score_min = django_filters.NumberFilter(field_name="score", lookup_expr="gte", label="Score from")
    score_max = django_filters.NumberFilter(field_name="score", lookup_expr="lte", label="Score to")
    owner = CachedChoiceFilter(cached=OWNERS, empty_label="Any owner", label="Owner")

    class Meta:
        model = Opportunity
        fields = ["q", "stage", "plan", "industry", "size", "region", "near_limit", "score_min", "score_max", "owner"]

    def __init__(self, *args, request=None, **kwargs):
        super().__init__(*args, request=request, **kwargs)
        # A CSM's queue holds only their own work, so there is no owner to choose.
        if request is None or not is_manager_or_admin(request.user):
            del self.filters["owner"]
        for name in ("score_min", "score_max"):
            widget = self.form.fields[name].widget
            widget.attrs.update({"min": 0, "max": 100, "placeholder": PLACEHOLDERS[name], "inputmode": "numeric"})

    def filter_search(self, queryset: QuerySet, name: str, value: str) -> QuerySet:
        value = value.strip()
        return queryset.filter(account__name__icontains=value) if value else queryset

    def filter_size(self, queryset: QuerySet, name: str, value: str) -> QuerySet:
        return queryset.filter(account__in=Account.objects.filter(size_band_filter(value)))

    def filter_near_limit(self, queryset: QuerySet, name: str, value: str) -> QuerySet:
        return queryset.filter(_account_near_limit(None if value == ANY_METRIC else value))

    @property
    def active_count(self) -> int:
        data = self.form.cleaned_data if self.form.is_bound and self.form.is_valid() else {}
        return sum(1 for name in self.filters if data.get(name) not in (None, ""))
