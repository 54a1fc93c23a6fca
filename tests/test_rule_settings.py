"""The rules editor: admins create and edit rules and the scoring policy, audit-logged, with a live preview."""

import datetime as dt
import re

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from accounts import indicators as ind
from accounts.models import Account, AccountIndicator, AuditEntry
from opportunities.flagging import opportunities_flag
from opportunities.models import AccountScore
from playbooks.models import Rule, ScoringPolicy
from tests.caches import empty_caches
from tests.factories import AccountFactory, metric, plan

AS_OF = dt.date(2026, 11, 20)
AT = dt.datetime(2026, 11, 20, 6, 0, tzinfo=dt.UTC)
HTMX = {"HX-Request": "true"}
LIST_URL = reverse("settings:rules")
CREATE_URL = reverse("settings:rule_create")


@pytest.fixture
def admin_client(client, admin_user):
    client.force_login(admin_user)
    return client


def set_storage(account, latest: float, limit: float = 10.0) -> None:
    """A storage indicator row as the refresh writes it."""
    AccountIndicator.objects.update_or_create(
        account=account,
        metric=metric("storage_gb"),
        defaults={
            "as_of": AS_OF,
            "latest": latest,
            "limit": limit,
            "utilization": ind.utilization(latest, limit),
            "slope_per_day": 0.0,
            "days_to_limit": ind.days_to_limit(latest, limit, 0.0),
            "projected_limit_on": None,
            "points": 30,
            "refreshed_at": AT,
        },
    )


def rule_form(**overrides) -> dict:
    """The fields the editor posts for 'Storage at 85%' on Basic."""
    data = {
        "name": "Storage at 85%",
        "description": "Nearly full",
        "metric": metric("storage_gb").pk,
        "min_utilization": "85",
        "plans": [plan("Basic").pk],
        "weight": "30",
        "enabled": "on",
    }
    data.update(overrides)
    return {key: value for key, value in data.items() if value is not None}


def edit_url(rule: Rule) -> str:
    return reverse("settings:rule_edit", args=[rule.pk])


def previewed_count(response) -> int:
    match = re.search(r"data-preview-count>([\d,]+)<", response.content.decode())
    assert match, response.content.decode()
    return int(match.group(1).replace(",", ""))


def test_it_lets_an_admin_create_a_rule_stored_as_a_fraction_and_audit_logged(admin_client, admin_user):
    response = admin_client.post(CREATE_URL, rule_form())

    rule = Rule.objects.get(name="Storage at 85%")
    assert response.status_code == 302
    assert response.url == edit_url(rule)
    assert rule.min_utilization == 0.85
    assert list(rule.plans.all()) == [plan("Basic")]
    entry = AuditEntry.objects.get(object_type="playbooks.Rule", object_id=str(rule.pk))
    assert (entry.action, entry.actor, entry.before) == ("created", admin_user, None)
    assert entry.after["min_utilization"] == 0.85
    assert entry.after["plans"] == [plan("Basic").pk]
    assert entry.after["metric"] == metric("storage_gb").pk


def test_it_records_a_changed_threshold_with_its_value_before_and_after(admin_client, admin_user):
    admin_client.post(CREATE_URL, rule_form(min_utilization="80"))
    rule = Rule.objects.get(name="Storage at 85%")

    response = admin_client.post(edit_url(rule), rule_form(min_utilization="90"))

    rule.refresh_from_db()
    assert response.status_code == 302
    assert rule.min_utilization == 0.9
    entry = AuditEntry.objects.filter(object_id=str(rule.pk), action="updated").get()
    assert (entry.before, entry.after, entry.actor) == ({"min_utilization": 0.8}, {"min_utilization": 0.9}, admin_user)


def test_it_opens_a_saved_rule_with_its_utilization_as_a_percentage_and_whom_it_flags_today(admin_client, csm):
    rule = Rule.objects.create(name="Storage high", metric=metric("storage_gb"), min_utilization=0.85, weight=30)
    for latest in (9.0, 8.5, 8.0):
        set_storage(AccountFactory(owner=csm), latest)

    response = admin_client.get(edit_url(rule))

    assert re.search(r'name="min_utilization" value="85"', response.content.decode())
    assert previewed_count(response) == 2


def test_it_refuses_a_utilization_threshold_without_a_metric_naming_the_field(admin_client):
    before = Rule.objects.count()

    response = admin_client.post(CREATE_URL, rule_form(metric=""))

    assert response.status_code == 422
    assert response.context["form"].errors["metric"] == [
        "Choose the metric that the utilization and days-to-limit thresholds look at."
    ]
    assert Rule.objects.count() == before
    assert not AuditEntry.objects.exists()


def test_it_refuses_a_rule_without_any_threshold(admin_client):
    before = Rule.objects.count()

    response = admin_client.post(CREATE_URL, rule_form(min_utilization=""))

    assert response.status_code == 422
    assert "Set at least one threshold" in response.content.decode()
    assert Rule.objects.count() == before
    assert not AuditEntry.objects.exists()


def test_it_refuses_a_utilization_of_zero_percent(admin_client):
    response = admin_client.post(CREATE_URL, rule_form(min_utilization="0"))

    assert response.status_code == 422
    assert response.context["form"].errors["min_utilization"] == ["Enter a percentage above 0, such as 80."]


def test_it_previews_exactly_the_accounts_that_flagging_then_credits_to_the_rule(admin_client, admin_user, csm):
    for latest in (9.5, 8.6, 8.5, 8.4, 2.0):
        set_storage(AccountFactory(owner=csm), latest)  # 95%, 86%, 85%, 84%, 20% of 10 GB on Basic
    set_storage(AccountFactory(owner=csm, plan=plan("Pro")), 95, limit=100)  # on Pro: outside the rule's plans
    set_storage(AccountFactory(owner=csm, status=Account.Status.CHURNED), 9.9)  # churned accounts score 0

    response = admin_client.post(CREATE_URL, {**rule_form(), "preview": "1"}, headers=HTMX)

    assert response.status_code == 200
    assert previewed_count(response) == 3
    assert not Rule.objects.filter(name="Storage at 85%").exists()  # a preview saves nothing
    admin_client.post(CREATE_URL, rule_form())
    rule = Rule.objects.get(name="Storage at 85%")
    opportunities_flag(as_of=AS_OF, at=AT)
    credited = [s for s in AccountScore.objects.all() if any(r["rule_id"] == rule.pk for r in s.reasons)]
    assert len(credited) == 3


def test_it_names_what_is_missing_in_the_preview_of_an_incomplete_rule(admin_client):
    response = admin_client.post(CREATE_URL, {**rule_form(min_utilization=""), "preview": "1"}, headers=HTMX)

    assert response.status_code == 200
    assert "Set at least one threshold" in response.content.decode()
    assert 'id="preview"' in response.content.decode()
    assert "<html" not in response.content.decode()


def test_it_previews_with_a_fixed_number_of_queries_for_3_or_30_accounts(admin_client, csm):
    def preview_queries() -> int:
        empty_caches()  # each count from an empty cache, reference data included
        with CaptureQueriesContext(connection) as queries:
            response = admin_client.post(CREATE_URL, {**rule_form(), "preview": "1"}, headers=HTMX)
        assert response.status_code == 200
        return len(queries)

    for _ in range(3):
        set_storage(AccountFactory(owner=csm), 9.0)
    with_3 = preview_queries()
    for _ in range(27):
        set_storage(AccountFactory(owner=csm), 9.0)

    assert preview_queries() == with_3


def test_it_runs_the_backtest_on_demand_as_a_partial(admin_client):
    response = admin_client.post(CREATE_URL, {**rule_form(), "backtest": "1"}, headers=HTMX)

    body = response.content.decode()
    assert response.status_code == 200
    assert 'id="backtest"' in body and 'id="backtest-data"' in body
    assert body.count("<tr>") == 1 + 6  # the header and six month-ends
    assert "HX-Request" in response["Vary"]


def test_it_answers_the_backtest_button_without_javascript_with_the_whole_page_and_saves_nothing(admin_client):
    response = admin_client.post(CREATE_URL, {**rule_form(), "backtest": "1"})

    body = response.content.decode()
    assert response.status_code == 200
    assert "<html" in body and 'id="backtest-data"' in body
    assert not Rule.objects.filter(name="Storage at 85%").exists()


def test_it_lists_every_rule_with_the_accounts_it_flags_today_in_a_bounded_number_of_queries(
    admin_client, csm, django_assert_max_num_queries
):
    for latest in (9.5, 8.5, 2.0):
        set_storage(AccountFactory(owner=csm), latest)

    with django_assert_max_num_queries(14):
        response = admin_client.get(LIST_URL)

    assert response.status_code == 200
    rows = {row["rule"].name: row["flagged"] for row in response.context["rows"]}
    assert rows["Storage at 80% or more"] == 2
    assert rows["Seats at 90% or more"] == 0
    assert "Storage at 80% of the limit or more" in response.content.decode()


def test_it_disables_a_rule_once_however_often_the_button_is_pressed(admin_client, admin_user):
    rule = Rule.objects.get(name="Storage at 80% or more")
    url = reverse("settings:rule_toggle", args=[rule.pk])

    response = admin_client.post(url, {"enabled": "0"}, headers=HTMX)
    admin_client.post(url, {"enabled": "0"}, headers=HTMX)  # a repeated click changes nothing

    rule.refresh_from_db()
    assert response.status_code == 200
    assert ">Disabled</span>" in response.content.decode()
    assert '<input type="hidden" name="enabled" value="1">' in response.content.decode()  # the next click enables
    assert rule.enabled is False
    entry = AuditEntry.objects.get(object_id=str(rule.pk))
    assert (entry.before, entry.after, entry.actor) == ({"enabled": True}, {"enabled": False}, admin_user)


def test_it_enables_a_disabled_rule_again_without_javascript(admin_client):
    rule = Rule.objects.get(name="Storage at 80% or more")
    rule.enabled = False
    rule.save()

    response = admin_client.post(reverse("settings:rule_toggle", args=[rule.pk]), {"enabled": "1"})

    rule.refresh_from_db()
    assert response.status_code == 302
    assert response.url == LIST_URL
    assert rule.enabled is True
    assert AuditEntry.objects.get(object_id=str(rule.pk)).after == {"enabled": True}


def test_it_saves_the_scoring_policy_with_an_audit_entry(admin_client, admin_user):
    policy = ScoringPolicy.current()
    data = {"flag_threshold": 50, "clear_margin": 10, "cool_off_days": 30, "max_touches_per_30_days": 4}

    response = admin_client.post(LIST_URL, data)

    policy.refresh_from_db()
    assert response.status_code == 302
    assert (policy.flag_threshold, policy.cool_off_days) == (50, 30)
    entry = AuditEntry.objects.get(object_type="playbooks.ScoringPolicy")
    assert entry.before == {"cool_off_days": 60, "flag_threshold": 40}
    assert entry.after == {"cool_off_days": 30, "flag_threshold": 50}


def test_it_refuses_a_clear_margin_above_the_flag_threshold(admin_client):
    data = {"flag_threshold": 20, "clear_margin": 30, "cool_off_days": 60, "max_touches_per_30_days": 4}

    response = admin_client.post(LIST_URL, data, headers=HTMX)

    assert response.status_code == 422
    assert "The margin cannot exceed the flag threshold." in response.content.decode()
    assert ScoringPolicy.current().flag_threshold == 40
    assert not AuditEntry.objects.exists()


@pytest.mark.parametrize("persona", ["csm", "manager"])
def test_it_keeps_the_rules_pages_from_anyone_but_admins(db, client, persona, request):
    client.force_login(request.getfixturevalue(persona))
    rule = Rule.objects.get(name="Storage at 80% or more")

    answers = [
        client.get(LIST_URL).status_code,
        client.post(LIST_URL, {"flag_threshold": 1}).status_code,
        client.get(CREATE_URL).status_code,
        client.post(CREATE_URL, rule_form()).status_code,
        client.get(edit_url(rule)).status_code,
        client.post(edit_url(rule), {**rule_form(), "preview": "1"}).status_code,
        client.post(reverse("settings:rule_toggle", args=[rule.pk]), {"enabled": "0"}).status_code,
    ]

    assert answers == [403] * 7
    assert not AuditEntry.objects.exists()
