"""The account list, as a CSM, another CSM and a manager see it."""

import re
from decimal import Decimal

from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from accounts.models import AccountIndicator
from tests.caches import empty_caches
from tests.factories import (
    AccountFactory,
    metric,
    plan,
)

LIST_URL = reverse("accounts:list")


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


def test_it_offers_segments_from_a_cache_and_still_filters_by_one_it_has_not_seen(csm_client, csm):
    AccountFactory(owner=csm, name="Tiny", region="EMEA")
    assert 'value="EMEA"' in csm_client.get(LIST_URL).content.decode()
    with CaptureQueriesContext(connection) as queries:
        csm_client.get(LIST_URL)
    assert not any("DISTINCT" in query["sql"] for query in queries.captured_queries)

    AccountFactory(owner=csm, name="Huge", region="APAC")
    response = csm_client.get(LIST_URL, {"region": "APAC"})

    assert listed_names(response) == ["Huge"]
    assert '<option value="APAC" selected>' in response.content.decode()


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
    assert 'href="?page=2" hx-get="?page=2"' in first.content.decode()
    assert 'rel="prev"' in second.content.decode() and "showing 26–30" in second.content.decode()


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
    # The filter bar's choices are cached: count from an empty cache each time, so both counts include them.
    empty_caches()
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
