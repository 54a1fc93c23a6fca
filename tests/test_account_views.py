"""The account list and the account page, as a CSM, another CSM and a manager see them."""

import datetime as dt
import json
import re
from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from accounts.models import AccountIndicator
from opportunities.models import Outcome, Stage
from tests.factories import (
    AccountFactory,
    MrrMovementFactory,
    OpportunityFactory,
    UsageSnapshotFactory,
    metric,
    plan,
)

LIST_URL = reverse("accounts:list")


@pytest.fixture(autouse=True)
def _plain_http_unhashed_static_and_fast_hashing(settings):
    # Tests run with DEBUG off: without these the app would redirect to HTTPS and look static files up in
    # the manifest that only `collectstatic` writes. Every persona gets a password, quickly hashed.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    settings.SECURE_SSL_REDIRECT = False
    settings.STORAGES = {
        **settings.STORAGES,
        "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
    }


def indicator(account, key, *, latest, limit, **fields):
    return AccountIndicator.objects.create(
        account=account,
        metric=metric(key),
        as_of=timezone.localdate(),
        latest=latest,
        latest_on=timezone.localdate(),
        limit=limit,
        utilization=None if limit is None else latest / limit,
        refreshed_at=timezone.now(),
        **fields,
    )


def listed_names(response) -> list[str]:
    return [account.name for account, _cells in response.context["rows"]]


# --- The list -------------------------------------------------------------------------------------------


def test_it_shows_a_csm_only_the_accounts_they_own(csm_client, csm, other_csm):
    AccountFactory(owner=csm, name="Acme Analytics")
    AccountFactory(owner=other_csm, name="Olive's Bakery")

    response = csm_client.get(LIST_URL)

    assert response.status_code == 200
    assert listed_names(response) == ["Acme Analytics"]
    assert "Olive's Bakery" not in response.content.decode()


def test_it_shows_a_manager_every_account(manager_client, csm, other_csm):
    AccountFactory(owner=csm, name="Acme Analytics")
    AccountFactory(owner=other_csm, name="Bakery Bros")
    AccountFactory(owner=None, name="Cargo Unassigned")

    response = manager_client.get(LIST_URL)

    assert listed_names(response) == ["Acme Analytics", "Bakery Bros", "Cargo Unassigned"]


def test_it_lets_a_manager_filter_by_owner(manager_client, csm, other_csm):
    AccountFactory(owner=csm, name="Acme Analytics")
    AccountFactory(owner=other_csm, name="Bakery Bros")

    response = manager_client.get(LIST_URL, {"owner": other_csm.pk})

    assert listed_names(response) == ["Bakery Bros"]
    assert 'name="owner"' in response.content.decode()


def test_it_offers_a_csm_no_owner_filter_and_ignores_one_in_the_url(csm_client, csm, other_csm):
    AccountFactory(owner=csm, name="Acme Analytics")

    response = csm_client.get(LIST_URL, {"owner": other_csm.pk})

    assert listed_names(response) == ["Acme Analytics"]
    assert 'name="owner"' not in response.content.decode()


def test_it_filters_by_plan(csm_client, csm):
    AccountFactory(owner=csm, name="Basic Co", plan=plan("Basic"))
    AccountFactory(owner=csm, name="Pro Co", plan=plan("Pro"), mrr=Decimal("99.00"))

    response = csm_client.get(LIST_URL, {"plan": plan("Pro").pk})

    assert listed_names(response) == ["Pro Co"]


def test_it_searches_names_and_external_ids(csm_client, csm):
    AccountFactory(owner=csm, name="Acme Analytics", external_id="ext-100")
    AccountFactory(owner=csm, name="Bakery Bros", external_id="ext-200")

    assert listed_names(csm_client.get(LIST_URL, {"q": "acme"})) == ["Acme Analytics"]
    assert listed_names(csm_client.get(LIST_URL, {"q": "EXT-200"})) == ["Bakery Bros"]


def test_it_filters_by_segment(csm_client, csm):
    AccountFactory(owner=csm, name="Tiny", employees=8, region="EMEA", industry="Retail")
    AccountFactory(owner=csm, name="Huge", employees=4000, region="AMER", industry="Software")

    assert listed_names(csm_client.get(LIST_URL, {"size": "1000+"})) == ["Huge"]
    assert listed_names(csm_client.get(LIST_URL, {"region": "EMEA"})) == ["Tiny"]
    assert listed_names(csm_client.get(LIST_URL, {"industry": "Software"})) == ["Huge"]


def test_it_filters_accounts_near_the_limit_of_a_metric(csm_client, csm):
    full = AccountFactory(owner=csm, name="Full Storage")
    indicator(full, "storage_gb", latest=9.5, limit=10)
    seats = AccountFactory(owner=csm, name="Full Seats")
    indicator(seats, "seats", latest=5, limit=5)
    indicator(seats, "storage_gb", latest=2, limit=10)
    AccountFactory(owner=csm, name="No Data")

    assert listed_names(csm_client.get(LIST_URL, {"near_limit": "storage_gb"})) == ["Full Storage"]
    assert listed_names(csm_client.get(LIST_URL, {"near_limit": "any"})) == ["Full Seats", "Full Storage"]


def test_it_sorts_by_mrr_and_marks_the_sorted_column(csm_client, csm):
    AccountFactory(owner=csm, name="Small", mrr=Decimal("29.00"))
    AccountFactory(owner=csm, name="Large", mrr=Decimal("299.00"))
    AccountFactory(owner=csm, name="Medium", mrr=Decimal("99.00"))

    response = csm_client.get(LIST_URL, {"sort": "-mrr"})

    assert listed_names(response) == ["Large", "Medium", "Small"]
    assert re.search(r'aria-sort="descending"[^>]*>\s*<a[^>]*>\s*<span>MRR', response.content.decode())
    assert listed_names(csm_client.get(LIST_URL, {"sort": "mrr"})) == ["Small", "Medium", "Large"]


def test_it_sorts_by_the_fullest_metric_with_accounts_without_data_last(csm_client, csm):
    indicator(AccountFactory(owner=csm, name="Half"), "seats", latest=2.5, limit=5)
    indicator(AccountFactory(owner=csm, name="Over"), "seats", latest=6, limit=5)
    AccountFactory(owner=csm, name="Unknown")

    assert listed_names(csm_client.get(LIST_URL, {"sort": "-usage"})) == ["Over", "Half", "Unknown"]
    assert listed_names(csm_client.get(LIST_URL, {"sort": "usage"})) == ["Half", "Over", "Unknown"]


def test_it_falls_back_to_name_order_for_an_unknown_sort(csm_client, csm):
    AccountFactory(owner=csm, name="Beta")
    AccountFactory(owner=csm, name="alpha")

    assert listed_names(csm_client.get(LIST_URL, {"sort": "-password"})) == ["alpha", "Beta"]


def test_it_pages_by_25(csm_client, csm):
    AccountFactory.create_batch(30, owner=csm)

    first = csm_client.get(LIST_URL)
    second = csm_client.get(LIST_URL, {"page": 2})

    assert len(first.context["rows"]) == 25
    assert len(second.context["rows"]) == 5
    assert "?page=2" in first.content.decode()


def test_it_draws_a_labelled_usage_bar_per_limit_metric(csm_client, csm):
    account = AccountFactory(owner=csm, name="Acme Analytics", plan=plan("Pro"))
    indicator(account, "storage_gb", latest=92, limit=100)
    indicator(account, "seats", latest=26, limit=25)
    indicator(account, "projects", latest=10, limit=100)

    html = csm_client.get(LIST_URL).content.decode()

    assert 'aria-label="Storage: 92 of 100 GB (92%)"' in html
    assert 'aria-label="Seats: 26 of 25 users (104%)"' in html
    assert "usage--warning" in html
    assert "usage--danger" in html
    assert "usage--normal" in html
    assert 'aria-label="Integrations: no data yet"' in html


def test_it_says_unlimited_for_a_metric_without_limit(csm_client, csm):
    account = AccountFactory(owner=csm, plan=plan("Enterprise"))
    indicator(account, "seats", latest=140, limit=None)

    html = csm_client.get(LIST_URL).content.decode()

    assert 'aria-label="Seats: 140 users (unlimited)"' in html
    assert ">unlimited<" in html


def test_it_says_no_plan_rather_than_unlimited_for_an_account_without_a_plan(csm_client, csm):
    account = AccountFactory(owner=csm, plan=None, mrr=Decimal(0), status="churned")
    indicator(account, "seats", latest=0, limit=None)

    html = csm_client.get(LIST_URL).content.decode()

    assert 'aria-label="Seats: 0 users (no plan)"' in html
    assert "unlimited" not in html


def test_it_formats_mrr_with_the_currency(csm_client, csm):
    AccountFactory(owner=csm, mrr=Decimal("1234.00"))
    AccountFactory(owner=csm, mrr=Decimal("990.00"), currency="EUR")

    html = csm_client.get(LIST_URL).content.decode()

    assert "$1,234.00" in html
    assert "€990.00" in html


def test_it_answers_htmx_with_the_results_partial_only(csm_client, csm):
    AccountFactory(owner=csm, name="Acme Analytics")

    response = csm_client.get(LIST_URL, {"sort": "-mrr"}, headers={"HX-Request": "true"})

    html = response.content.decode()
    assert "<html" not in html
    assert html.strip().startswith('<section id="results"')
    assert "Acme Analytics" in html
    assert "HX-Request" in response["Vary"]


def test_it_answers_an_htmx_history_restore_with_the_whole_page(csm_client):
    response = csm_client.get(LIST_URL, headers={"HX-Request": "true", "HX-History-Restore-Request": "true"})

    assert "<html" in response.content.decode()


def test_it_varies_the_full_page_on_htmx_too(csm_client):
    response = csm_client.get(LIST_URL)

    assert "<html" in response.content.decode()
    assert "HX-Request" in response["Vary"]


def test_it_shows_an_empty_state_for_a_csm_without_accounts(csm_client):
    html = csm_client.get(LIST_URL).content.decode()

    assert "No accounts yet" in html
    assert "<table" not in html


def test_it_shows_an_empty_state_when_filters_match_nothing(csm_client, csm):
    AccountFactory(owner=csm, name="Acme Analytics")

    html = csm_client.get(LIST_URL, {"q": "zzz"}).content.decode()

    assert "No accounts match these filters" in html


def _list_queries(client, **params) -> int:
    with CaptureQueriesContext(connection) as queries:
        response = client.get(LIST_URL, params)
    assert response.status_code == 200
    return len(queries)


def _with_indicators(accounts):
    for account in accounts:
        indicator(account, "seats", latest=4, limit=5)
        indicator(account, "storage_gb", latest=3, limit=10)


def test_it_lists_50_accounts_with_as_many_queries_as_5(manager_client, csm, other_csm):
    _with_indicators(AccountFactory.create_batch(5, owner=csm))
    few = _list_queries(manager_client, sort="-usage", near_limit="any", page=1)

    _with_indicators(AccountFactory.create_batch(45, owner=other_csm))
    many = _list_queries(manager_client, sort="-usage", near_limit="any", page=2)

    assert many == few


def test_it_stays_within_its_query_budget(csm_client, csm, django_assert_max_num_queries):
    _with_indicators(AccountFactory.create_batch(25, owner=csm))
    basic = plan("Basic")

    # Session, user, role; plan lookup, count, page, indicators, metrics; the filter form's choices.
    with django_assert_max_num_queries(12):
        csm_client.get(LIST_URL, {"plan": basic.pk, "sort": "-mrr"})


# --- The account page ------------------------------------------------------------------------------------


def test_it_shows_a_csm_the_page_of_an_account_they_own(csm_client, account):
    indicator(
        account,
        "storage_gb",
        latest=9.2,
        limit=10,
        slope_per_day=0.12,
        days_to_limit=6.7,
        projected_limit_on=timezone.localdate() + dt.timedelta(days=7),
    )
    account.first_purchase_on = dt.date(2024, 3, 1)
    account.save()

    response = csm_client.get(account.get_absolute_url())

    html = response.content.decode()
    assert response.status_code == 200
    assert "Acme Analytics" in html
    assert account.external_id in html
    assert "$29.00" in html
    assert "Customer since" in html
    assert "Mar 1, 2024" in html
    assert 'aria-label="Storage: 9.2 of 10 GB (92%)"' in html
    assert "+0.12 / day" in html


def test_it_hides_another_csms_account_from_a_csm(csm_client, other_csm):
    theirs = AccountFactory(owner=other_csm)

    assert csm_client.get(theirs.get_absolute_url()).status_code == 404


def test_it_shows_a_manager_any_account(manager_client, account):
    assert manager_client.get(account.get_absolute_url()).status_code == 200


def test_it_sends_the_last_90_days_of_usage_to_the_charts(csm_client, account):
    today = timezone.localdate()
    indicator(account, "seats", latest=4, limit=5)
    for days_ago in (0, 1, 89, 90):
        UsageSnapshotFactory(
            account=account,
            metric=metric("seats"),
            value=4 - days_ago / 100,
            captured_on=today - dt.timedelta(days=days_ago),
        )

    html = csm_client.get(account.get_absolute_url()).content.decode()

    data = json.loads(re.search(r'<script id="usage-data" type="application/json">(.*?)</script>', html).group(1))
    seats = next(series for series in data if series["key"] == "seats")
    assert seats["limit"] == 5
    assert len(seats["dates"]) == 3
    assert seats["dates"][-1] == today.isoformat()
    assert 'data-usage-chart="seats"' in html
    assert "vendor/plotly.min.js" in html
    assert "js/charts.js" in html


def test_it_lists_mrr_movements_newest_first(csm_client, account):
    MrrMovementFactory(
        account=account,
        occurred_on=dt.date(2025, 6, 1),
        kind="new",
        mrr_before=Decimal(0),
        mrr_after=Decimal("29.00"),
        plan_after=plan("Basic"),
    )
    MrrMovementFactory(
        account=account,
        occurred_on=dt.date(2026, 1, 1),
        kind="expansion",
        mrr_before=Decimal("29.00"),
        mrr_after=Decimal("99.00"),
        plan_before=plan("Basic"),
        plan_after=plan("Pro"),
    )

    response = csm_client.get(account.get_absolute_url())

    html = response.content.decode()
    assert [m.occurred_on for m in response.context["movements"]] == [dt.date(2026, 1, 1), dt.date(2025, 6, 1)]
    history = html[html.index('id="mrr-heading"') :]
    assert history.index("Jan 1, 2026") < history.index("Jun 1, 2025")
    assert "Basic → Pro" in html
    assert "+$70.00" in html
    assert 'id="mrr-data"' in html


def test_it_lists_open_opportunities_first_with_their_top_reasons(csm_client, account):
    OpportunityFactory(
        account=account, stage=Stage.CLOSE, outcome=Outcome.WON, closed_at=timezone.now(), identified_at=timezone.now()
    )
    OpportunityFactory(
        account=account,
        stage=Stage.QUALIFY,
        score=81,
        identified_at=timezone.now() - dt.timedelta(days=30),
        reasons=[{"text": "Storage at 92% of the plan limit", "points": 40}],
    )

    response = csm_client.get(account.get_absolute_url())

    assert [o.outcome for o in response.context["opportunities"]] == [Outcome.OPEN, Outcome.WON]
    assert "Storage at 92% of the plan limit" in response.content.decode()


def test_it_shows_empty_states_for_an_account_without_data(csm_client, account):
    html = csm_client.get(account.get_absolute_url()).content.decode()

    assert "No usage data yet" in html
    assert "No MRR changes recorded" in html
    assert "No opportunities" in html
    assert "plotly" not in html or 'id="usage-data"' not in html


def test_it_says_no_trend_yet_without_a_slope(csm_client, account):
    indicator(account, "seats", latest=2, limit=5)

    html = csm_client.get(account.get_absolute_url()).content.decode()

    assert "no trend yet" in html
    assert "No snapshots in the last 90 days." in html


def _detail_queries(client, account) -> int:
    with CaptureQueriesContext(connection) as queries:
        response = client.get(account.get_absolute_url())
    assert response.status_code == 200
    return len(queries)


def test_it_renders_the_account_page_with_a_flat_query_count(csm_client, account):
    today = timezone.localdate()
    indicator(account, "seats", latest=4, limit=5)
    indicator(account, "storage_gb", latest=4, limit=10)
    UsageSnapshotFactory(account=account, metric=metric("seats"), value=1, captured_on=today)
    MrrMovementFactory(
        account=account, occurred_on=dt.date(2025, 6, 1), kind="new", mrr_before=Decimal(0), mrr_after=Decimal("29.00")
    )
    OpportunityFactory(account=account)
    few = _detail_queries(csm_client, account)

    for days_ago in range(1, 60):
        for key in ("seats", "storage_gb", "projects"):
            UsageSnapshotFactory(
                account=account, metric=metric(key), value=days_ago, captured_on=today - dt.timedelta(days=days_ago)
            )
    for month in range(1, 10):
        MrrMovementFactory(
            account=account,
            occurred_on=dt.date(2025, 6 + month // 7, 1 + month),
            mrr_before=Decimal(29 + month),
            mrr_after=Decimal(30 + month),
        )
    OpportunityFactory.create_batch(5, account=account, outcome=Outcome.WON, closed_at=timezone.now())
    many = _detail_queries(csm_client, account)

    assert many == few
