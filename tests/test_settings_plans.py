"""Admins edit the plan catalogue in the app: prices, limits and features, previewed side by side, audited."""

import re
from decimal import Decimal

import pytest
from django.contrib.messages import get_messages
from django.urls import reverse
from django.utils import timezone

from accounts.models import AccountIndicator, AuditEntry, Metric, Plan, PlanFeature, PlanLimit
from accounts.services import account_indicators_refresh
from accounts.settings_services import (
    FeatureDraft,
    PlanDraft,
    plan_audit_snapshot,
    plan_comparison,
    plan_version,
    tier_limit_warnings,
)
from tests.factories import AccountFactory, UsageSnapshotFactory, metric, plan

PLANS_URL = reverse("settings:plans")


def edit_url(p: Plan) -> str:
    return reverse("settings:plan_edit", args=[p.pk])


def limit_metrics() -> list[Metric]:
    return list(Metric.objects.filter(kind=Metric.Kind.LIMIT).order_by("display_order", "label"))


def plan_form_data(p: Plan | None, *, limits: dict | None = None, features: list | None = None, **fields) -> dict:
    """What the edit form posts for `p` as stored (a blank plan when None), with `fields`, `limits` (by metric
    key) and `features` (key, label, value) changed."""
    metrics = limit_metrics()
    stored = {pl.metric.key: pl.limit for pl in p.limits.select_related("metric")} if p else {}
    stored.update(limits or {})
    if features is None:
        features = [(f.key, f.label, f.value) for f in p.features.order_by("display_order", "key")] if p else []
    data = {
        "name": p.name if p else "",
        "tier_rank": p.tier_rank if p else "",
        "monthly_price": p.monthly_price if p else "",
        "annual_price": p.annual_price if p else "",
        "currency": p.currency if p else "USD",
        "description": p.description if p else "",
        "active": "on",
        "limits-TOTAL_FORMS": len(metrics),
        "limits-INITIAL_FORMS": len(metrics),
        "features-TOTAL_FORMS": len(features),
        "features-INITIAL_FORMS": 0,
    }
    for i, m in enumerate(metrics):
        value = stored.get(m.key)
        data[f"limits-{i}-metric"] = m.key
        data[f"limits-{i}-limit"] = "" if value is None else f"{value:g}"
    for i, (key, label, value) in enumerate(features):
        data.update({f"features-{i}-key": key, f"features-{i}-label": label, f"features-{i}-value": value})
        data[f"features-{i}-display_order"] = i + 1
    data.update(fields)
    return {k: v for k, v in data.items() if v is not None}


@pytest.fixture
def ada(client, admin_user):
    client.force_login(admin_user)
    return client


def invalid_fields(html: str) -> list[str]:
    """The names of the inputs marked invalid, in page order."""
    return re.findall(r'<input[^>]*name="([^"]+)"[^>]*aria-invalid="true"', html)


def seats_limit(p: Plan) -> float | None:
    return PlanLimit.objects.get(plan=p, metric=metric("seats")).limit


def test_it_stores_a_new_limit_audits_it_and_refreshes_the_indicators_of_the_plans_accounts(
    ada, admin_user, eager_celery, django_capture_on_commit_callbacks
):
    pro = plan("Pro")
    today = timezone.localdate()
    on_pro = AccountFactory(plan=pro, mrr=Decimal("99.00"))
    UsageSnapshotFactory(account=on_pro, metric=metric("seats"), value=20, captured_on=today)
    account_indicators_refresh(as_of=today, account_ids=[on_pro.pk])
    assert AccountIndicator.objects.get(account=on_pro, metric=metric("seats")).utilization == pytest.approx(0.8)

    with django_capture_on_commit_callbacks(execute=True):
        response = ada.post(edit_url(pro), plan_form_data(pro, limits={"seats": 40}))

    assert response.status_code == 302
    assert response.url == PLANS_URL
    assert seats_limit(pro) == 40
    entry = AuditEntry.objects.get()
    assert (entry.object_type, entry.object_id, entry.action, entry.actor) == (
        "accounts.Plan",
        str(pro.pk),
        "updated",
        admin_user,
    )
    assert entry.before == {"limits.seats": 25.0}
    assert entry.after == {"limits.seats": 40.0}
    indicator = AccountIndicator.objects.get(account=on_pro, metric=metric("seats"))
    assert (indicator.limit, indicator.utilization) == (40, pytest.approx(0.5))


def test_a_price_change_alone_refreshes_no_indicators(ada, django_capture_on_commit_callbacks):
    pro = plan("Pro")
    AccountFactory(plan=pro)

    with django_capture_on_commit_callbacks() as callbacks:
        response = ada.post(edit_url(pro), plan_form_data(pro, monthly_price="109.00"))

    assert response.status_code == 302
    # Nothing after the commit but moving the reference data's cache on (accounts/reference.py).
    assert {callback.__qualname__ for callback in callbacks} <= {"_move_on"}
    assert AuditEntry.objects.get().after == {"monthly_price": "109.00"}


def test_it_previews_the_comparison_from_the_form_without_saving(ada):
    pro = plan("Pro")

    response = ada.post(
        edit_url(pro), {**plan_form_data(pro, limits={"seats": 77}), "preview": "1"}, headers={"HX-Request": "true"}
    )

    assert response.status_code == 200
    html = response.text
    assert html.lstrip().startswith('<section id="plan-preview"')
    assert '<td class="num plan-compare__changed">' in html
    assert "77" in html and "(changed)" in html
    assert "Basic" in html and "Enterprise" in html
    assert seats_limit(pro) == 25
    assert AuditEntry.objects.count() == 0
    assert "HX-Request" in response["Vary"]


def test_a_preview_of_an_invalid_form_names_the_field_and_shows_its_saved_value(ada):
    pro = plan("Pro")

    response = ada.post(
        edit_url(pro),
        {**plan_form_data(pro, monthly_price="-5"), "preview": "1"},
        headers={"HX-Request": "true"},
    )

    assert response.status_code == 422
    assert "Not valid yet: Monthly price." in response.text
    assert "$99.00" in response.text
    assert AuditEntry.objects.count() == 0


def test_a_post_without_the_formsets_management_data_is_refused_with_422_not_a_crash(ada):
    pro = plan("Pro")
    data = {k: v for k, v in plan_form_data(pro).items() if not k.startswith("limits-")}

    response = ada.post(edit_url(pro), data)

    assert response.status_code == 422
    assert seats_limit(pro) == 25
    assert AuditEntry.objects.count() == 0


def test_without_javascript_the_preview_button_reloads_the_whole_page_with_the_preview(ada):
    pro = plan("Pro")

    response = ada.post(edit_url(pro), {**plan_form_data(pro, limits={"seats": 77}), "preview": "1"})

    assert response.status_code == 200
    assert "<html" in response.text
    assert 'value="77"' in response.text
    assert "(changed)" in response.text
    assert seats_limit(pro) == 25


def test_it_warns_but_saves_when_a_higher_tier_would_include_less_than_a_lower_one(ada):
    pro = plan("Pro")

    preview = ada.post(edit_url(pro), {**plan_form_data(pro, limits={"seats": 3}), "preview": "1"})
    assert "Pro (tier 2) includes fewer seats (3 users) than Basic (tier 1, 5 users)." in preview.text

    response = ada.post(edit_url(pro), plan_form_data(pro, limits={"seats": 3}))

    assert response.status_code == 302
    assert seats_limit(pro) == 3
    warnings = [str(m) for m in get_messages(response.wsgi_request) if m.level_tag == "warning"]
    assert warnings == ["Pro (tier 2) includes fewer seats (3 users) than Basic (tier 1, 5 users)."]


@pytest.mark.parametrize(
    ("change", "field", "message"),
    [
        ({"monthly_price": "-1"}, "monthly_price", "A price cannot be negative."),
        ({"annual_price": "abc"}, "annual_price", "Enter a number."),
        ({"limits-0-limit": "-5"}, "limits-0-limit", "A limit cannot be negative; leave it empty for unlimited."),
        ({"name": "basic"}, "name", "Another plan has this name."),
        ({"tier_rank": "1"}, "tier_rank", "Basic has this tier rank"),
        ({"currency": "U$"}, "currency", "Use a three-letter currency code"),
    ],
)
def test_it_refuses_bad_input_with_422_naming_the_field_and_stores_nothing(ada, change, field, message):
    pro = plan("Pro")
    before = plan_audit_snapshot(pro)

    response = ada.post(edit_url(pro), {**plan_form_data(pro, limits={"seats": 30}), **change})

    assert response.status_code == 422
    assert message in response.text
    assert invalid_fields(response.text) == [field]
    pro.refresh_from_db()
    assert plan_audit_snapshot(pro) == before
    assert AuditEntry.objects.count() == 0


def test_it_refuses_a_feature_key_used_twice(ada):
    pro = plan("Pro")

    response = ada.post(
        edit_url(pro),
        plan_form_data(pro, features=[("reporting", "Reporting", "Advanced"), ("reporting", "Again", "")]),
    )

    assert response.status_code == 422
    assert "The feature key reporting is repeated." in response.text
    assert PlanFeature.objects.get(plan=pro, key="reporting").label == "Reporting"


def test_it_answers_a_save_of_a_plan_changed_since_the_form_opened_with_409_and_the_current_plan(ada, admin_user):
    pro = plan("Pro")
    opened_version = plan_version(plan_audit_snapshot(pro))
    PlanLimit.objects.filter(plan=pro, metric=metric("seats")).update(limit=30)  # someone else's save

    response = ada.post(edit_url(pro), plan_form_data(pro, limits={"seats": 50}, version=opened_version))

    assert response.status_code == 409
    assert seats_limit(pro) == 30
    assert 'value="30"' in response.text
    assert AuditEntry.objects.count() == 0


def test_it_creates_a_plan_with_its_limits_and_features_and_audits_every_value(ada, admin_user):
    data = plan_form_data(
        None,
        name="Scale",
        tier_rank=4,
        monthly_price="599.00",
        annual_price="5990.00",
        limits={"seats": 500},
        features=[("reporting", "Reporting", "Custom"), ("sso", "Single sign-on", "included")],
    )

    response = ada.post(reverse("settings:plan_create"), data)

    assert response.status_code == 302
    scale = Plan.objects.get(name="Scale")
    assert seats_limit(scale) == 500
    assert not PlanLimit.objects.filter(plan=scale, limit__isnull=True).exists()
    assert set(scale.features.values_list("key", "value")) == {("reporting", "Custom"), ("sso", "included")}
    entry = AuditEntry.objects.get()
    assert (entry.action, entry.before) == ("created", None)
    assert entry.after["limits.seats"] == 500
    assert entry.after["features.sso.label"] == "Single sign-on"
    assert entry.after["monthly_price"] == "599.00"


def test_it_removes_a_feature_ticked_for_removal(ada):
    pro = plan("Pro")
    data = plan_form_data(pro)
    keys = [data[k] for k in data if k.endswith("-key")]
    index = keys.index("support")

    response = ada.post(edit_url(pro), {**data, f"features-{index}-DELETE": "on"})

    assert response.status_code == 302
    assert not PlanFeature.objects.filter(plan=pro, key="support").exists()
    assert AuditEntry.objects.get().before["features.support.value"] == "Priority"


@pytest.mark.parametrize("persona", ["csm", "manager"])
def test_it_refuses_csms_and_managers_every_plan_page_with_the_apps_403_page(db, client, persona, request):
    client.force_login(request.getfixturevalue(persona))
    pro = plan("Pro")

    for url in (reverse("settings:index"), PLANS_URL, edit_url(pro), reverse("settings:plan_create")):
        response = client.get(url)
        assert response.status_code == 403, url
        assert "This page is not open to you" in response.text
        assert "Settings are for admins" in response.text
    response = client.post(edit_url(pro), plan_form_data(pro, limits={"seats": 99}))
    assert response.status_code == 403
    assert seats_limit(pro) == 25
    assert AuditEntry.objects.count() == 0


def test_it_lists_and_compares_the_plans_in_a_fixed_number_of_queries(ada, django_assert_max_num_queries):
    AccountFactory.create_batch(3, plan=plan("Pro"))
    Plan.objects.create(name="Legacy", tier_rank=9, monthly_price=5, annual_price=50, active=False)

    # Session, user, role; plans with account counts, their limits, their features; metrics.
    with django_assert_max_num_queries(7):
        response = ada.get(PLANS_URL)

    assert response.status_code == 200
    assert "Legacy" in response.text and "Inactive" in response.text
    assert response.text.count('class="catalogue__plan') == 3  # only active plans are compared


def test_the_edit_page_stays_within_its_query_budget(ada, django_assert_max_num_queries):
    # Session, user, role; plans, limits, features; metrics; the plan's limits and features for its version.
    url = edit_url(plan("Pro"))

    with django_assert_max_num_queries(9):
        response = ada.get(url)

    assert response.status_code == 200
    assert 'name="version"' in response.text


def test_the_navigation_links_settings_for_admins_only(ada, client, csm):
    assert f'href="{reverse("settings:index")}"' in ada.get(reverse("home")).text
    client.force_login(csm)
    assert f'href="{reverse("settings:index")}"' not in client.get(reverse("home")).text


# --- The pure parts -------------------------------------------------------------------------------------


class FakeMetric:
    def __init__(self, key: str, label: str, unit: str = ""):
        self.key, self.label, self.unit = key, label, unit


SEATS = FakeMetric("seats", "Seats", "users")


def draft(name: str, rank: int, seats: float | None, **kwargs) -> PlanDraft:
    return PlanDraft(
        name=name,
        tier_rank=rank,
        monthly_price=Decimal(10),
        annual_price=Decimal(100),
        limits={"seats": seats},
        **kwargs,
    )


def test_tier_warnings_compare_each_plan_with_the_widest_lower_tier_and_count_unlimited_as_infinite():
    plans = [draft("A", 1, 10), draft("B", 2, None), draft("C", 3, 50)]

    assert tier_limit_warnings(plans=plans, metrics=[SEATS]) == [
        "C (tier 3) includes fewer seats (50 users) than B (tier 2, unlimited)."
    ]
    assert tier_limit_warnings(plans=[draft("A", 1, 10), draft("B", 2, 10)], metrics=[SEATS]) == []


def test_the_comparison_puts_the_edited_plan_in_its_tier_and_marks_only_its_changed_cells():
    stored = draft("B", 2, 10, pk=2, features=(FeatureDraft("sso", "SSO", ""),))
    edited = draft("B", 2, 20, pk=2, features=(FeatureDraft("sso", "SSO", "included"),))

    comparison = plan_comparison(
        plans=[draft("C", 3, 30, pk=3), draft("A", 1, 5, pk=1), stored], metrics=[SEATS], edited=edited, stored=stored
    )

    assert [p.name for p in comparison.plans] == ["A", "B", "C"]
    assert comparison.edited_index == 1
    assert [(c.value, c.changed) for c in comparison.limit_rows[0].cells] == [(5, False), (20, True), (30, False)]
    assert [(c.value, c.changed) for c in comparison.feature_rows[0].cells] == [
        ("", False),
        ("included", True),
        ("", False),
    ]


def test_a_plan_draft_prices_annual_billing_per_month():
    assert draft("A", 1, 1).annual_mrr == Decimal("8.33")
