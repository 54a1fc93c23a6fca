"""The account list's filters (django-filter): segment, search, near-limit metric and owner."""

from __future__ import annotations

import copy
import functools
import time
from collections.abc import Callable
from typing import ClassVar

import django_filters
import django_filters.fields
from django import forms
from django.contrib.auth import get_user_model
from django.core.cache import cache
from django.db.models import Exists, OuterRef, Q, QuerySet
from django.forms.utils import flatatt
from django.utils.html import format_html, format_html_join
from django.utils.safestring import mark_safe

from accounts import reference as reference_data
from accounts.models import Account, Metric, Plan, size_band_filter
from accounts.roles import Role, is_manager_or_admin
from accounts.selectors import near_limit_filter

ANY_METRIC = "any"
# How long the filter bars' choices may be reused before they are read again, in seconds.
CHOICES_TTL = 5 * 60


class CachedChoices:
    """Choices read from the database at most once per CHOICES_TTL, shared through the cache.

    The filter bars draw on every page load, and their segment choices come from every account (a scan of
    the whole table for each of industry and region). A value that appears later is offered within the
    TTL; a value that disappeared only leads to an empty result; and a request that names a value the
    cached list lacks reads the list again (see CachedChoiceField), so it filters instead of being ignored.

    Each process also keeps the list it last had for LOCAL_TTL seconds, so a filter bar of four such
    selects asks Redis nothing on most page loads. Choices that come from reference data (`reference=True`:
    the plans, the metrics) are cached by accounts.reference instead, and change as soon as their rows do.
    """

    LOCAL_TTL = 30.0
    _all: ClassVar[list[CachedChoices]] = []

    def __init__(self, name: str, read: Callable[[], list[tuple[str, str]]], *, reference: bool = False):
        self.key = f"accounts:filter-choices:{name}"
        self.read = read
        self.reference = reference
        self._local: tuple[float, list[tuple[str, str]]] | None = None
        CachedChoices._all.append(self)

    def __call__(self) -> list[tuple[str, str]]:
        if self.reference:
            return reference_data.cached(self.key, self.read)
        now = time.monotonic()
        if self._local is not None and now - self._local[0] < self.LOCAL_TTL:
            return self._local[1]
        choices = cache.get(self.key)
        if choices is None:
            return self.fresh()
        self._local = (now, choices)
        return choices

    def fresh(self) -> list[tuple[str, str]]:
        choices = self.read()
        if not self.reference:
            cache.set(self.key, choices, CHOICES_TTL)
            self._local = (time.monotonic(), choices)
        return choices

    @classmethod
    def forget(cls) -> None:
        """Drop every process-local copy (the tests do, between tests)."""
        for choices in cls._all:
            choices._local = None


class FastSelect(forms.Select):
    """A select drawn in Python, with the markup of Django's own (no option groups).

    Django renders every option through two templates of its own. The filter bars draw some forty options
    on every page load, and the account page's forms a score of them: that cost more than the rest of the
    bar, and a good part of the page. The same select (name, options, choice, attributes) comes back on
    nearly every load, so the markup is also remembered, for the last SELECT_MEMO of them.
    """

    def render(self, name, value, attrs=None, renderer=None) -> str:
        selected = tuple(sorted(set(self.format_value(value))))
        final_attrs = tuple(self.build_attrs(self.attrs, attrs).items())
        # Iterated, not measured: a model choice iterator's len() is a COUNT query.
        choices = tuple(choice for choice in self.choices)
        try:
            return _select_html(name, choices, selected, final_attrs)
        except TypeError:  # an unhashable label or attribute: draw it without remembering
            return _select_html.__wrapped__(name, choices, selected, final_attrs)


SELECT_MEMO = 512


@functools.lru_cache(maxsize=SELECT_MEMO)
def _select_html(name: str, choices, selected: tuple[str, ...], attrs: tuple) -> str:
    options = format_html_join(
        "",
        '<option value="{}"{}>{}</option>',
        # A constant attribute, no input in it.
        ((key, mark_safe(" selected") if str(key) in selected else "", label) for key, label in choices),  # nosec B308
    )
    return format_html('<select name="{}"{}>{}</select>', name, flatatt(dict(attrs)), options)


class CachedChoiceField(django_filters.fields.ChoiceField):
    widget = FastSelect

    def __init__(self, *args, cached: CachedChoices, **kwargs):
        self.cached = cached
        super().__init__(*args, choices=cached, **kwargs)

    def valid_value(self, value) -> bool:
        # Cached choices may predate the value (an industry imported a minute ago): ask the database before
        # refusing it, since django-filter drops an invalid value and would show everything instead.
        return super().valid_value(value) or str(value) in {str(key) for key, _ in self.cached.fresh()}


class CachedChoiceFilter(django_filters.ChoiceFilter):
    """A choice filter over CachedChoices: `CachedChoiceFilter(cached=INDUSTRIES, ...)`."""

    field_class = CachedChoiceField


def _distinct_values(field: str) -> Callable[[], list[tuple[str, str]]]:
    """Choices from the values accounts actually have, so the select never offers an empty segment."""

    def read() -> list[tuple[str, str]]:
        values = Account.objects.exclude(**{field: ""}).order_by(field).values_list(field, flat=True).distinct()
        return [(value, value) for value in values]

    return read


def _plan_choices() -> list[tuple[str, str]]:
    return [(str(pk), name) for pk, name in Plan.objects.order_by("tier_rank").values_list("pk", "name")]


def _near_limit_choices() -> list[tuple[str, str]]:
    metrics = Metric.objects.filter(kind=Metric.Kind.LIMIT).order_by("display_order", "key")
    return [(ANY_METRIC, "Any metric"), *metrics.values_list("key", "label")]


INDUSTRIES = CachedChoices("industry", _distinct_values("industry"))
REGIONS = CachedChoices("region", _distinct_values("region"))
PLANS = CachedChoices("plan", _plan_choices, reference=True)
NEAR_LIMIT_METRICS = CachedChoices("near-limit", _near_limit_choices, reference=True)


def _owner_choices() -> list[tuple[str, str]]:
    """CSMs and whoever owns accounts, by name. EXISTS rather than joins: a join to every account, made
    DISTINCT, took longer than the rest of a manager's queue."""
    User = get_user_model()
    owners = User.objects.filter(
        Exists(User.groups.through.objects.filter(user=OuterRef("pk"), group__name=Role.CSM))
        | Exists(Account.objects.filter(owner=OuterRef("pk")))
    ).order_by("first_name", "last_name", "username")
    return [(str(user.pk), user.get_full_name() or user.username) for user in owners]


OWNERS = CachedChoices("owner", _owner_choices)


def _copy_filter(filter_: django_filters.Filter) -> django_filters.Filter:
    duplicate = copy.copy(filter_)
    if filter_.method is not None:
        # Its `filter` calls the method on the filter's filterset: bind one to the copy, not to the original.
        duplicate.method = filter_.method
    return duplicate


class _Filters(dict):
    """A FilterSet's filters, copied one level deep where django-filter deep-copies them for each request."""

    def __deepcopy__(self, memo) -> _Filters:
        return _Filters({name: _copy_filter(filter_) for name, filter_ in self.items()})


class FilterSet(django_filters.FilterSet):
    """django-filter's FilterSet, set up for less on each request.

    django-filter deep-copies every filter for each request (its choices, widget and label with it) and
    builds a new form class out of new form fields; on the queue that cost a millisecond, more than all its
    rows' markup. Here each filter is copied one level deep, which is all a request changes on it (its
    model and its filterset), and the form class is built once for each set of filters a filterset can
    end up with. Each form still deep-copies its fields, as every Django form does, and choices given as a
    callable (CachedChoices) are still read when the form is drawn.
    """

    _form_classes: ClassVar[dict[tuple[str, ...], type[forms.Form]]]

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        cls._form_classes = {}

    @classmethod
    def get_filters(cls) -> _Filters:
        return _Filters(super().get_filters())

    def get_form_class(self) -> type[forms.Form]:
        names = tuple(self.filters)
        form_class = self._form_classes.get(names)
        if form_class is None:
            form_class = self._form_classes[names] = super().get_form_class()
        return form_class


class AccountFilter(FilterSet):
    q = django_filters.CharFilter(method="filter_search", label="Search")
    plan = CachedChoiceFilter(cached=PLANS, empty_label="Any plan", label="Plan")
    status = django_filters.ChoiceFilter(choices=Account.Status.choices, empty_label="Any status", widget=FastSelect)
    industry = CachedChoiceFilter(cached=INDUSTRIES, empty_label="Any industry")
    region = CachedChoiceFilter(cached=REGIONS, empty_label="Any region")
    size = django_filters.ChoiceFilter(
        choices=Account.Size.choices,
        method="filter_size",
        empty_label="Any size",
        label="Company size",
        widget=FastSelect,
    )
    near_limit = CachedChoiceFilter(
        cached=NEAR_LIMIT_METRICS, method="filter_near_limit", empty_label="Any usage", label="Near limit"
    )
    owner = CachedChoiceFilter(cached=OWNERS, empty_label="Any owner", label="Owner")

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
