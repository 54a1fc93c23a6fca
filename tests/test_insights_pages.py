"""/insights/: feature adoption, what precedes upgrades and usage cohorts, for managers and admins, filtered
like the pipeline dashboard, with a CSV of every table; and the rule it drafts in the rules editor.

Histories are dated relative to today: the pages measure up to today and leave out the last 90 days of
signals, whose upgrades cannot be known yet.
"""

import csv
import datetime as dt
import io
import re
from decimal import Decimal
from urllib.parse import parse_qs, urlsplit

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from accounts.insights import add_months, month_start
from accounts.models import Account, EngagementEvent, Metric, MrrMovement, Plan, UsageSnapshot
from playbooks.models import Rule
from tests.caches import empty_caches
from tests.factories import AccountFactory

ADOPTION, PREDICTORS, COHORTS = "/insights/", "/insights/predictors/", "/insights/cohorts/"
FEATURE = EngagementEvent.Kind.FEATURE_USED


def today() -> dt.date:
    return timezone.localdate()


def at(day: dt.date, hour: int = 12) -> dt.datetime:
    return dt.datetime.combine(day, dt.time(hour), tzinfo=timezone.get_current_timezone())


def events(account, kind, days, *, feature="", users=("u1",)):
    """One event of `kind` on each of `days`, by the `users` in turn."""
    EngagementEvent.objects.bulk_create(
        EngagementEvent(
            account=account,
            kind=kind,
            feature=feature,
            user_ref=users[n % len(users)],
            occurred_at=at(day),
            external_id=f"e-{account.pk}-{kind}-{feature}-{n}-{day}",
        )
        for n, day in enumerate(days)
    )


def upgrade_on(account, day, *, before="29.00", after="99.00", plan_before=None, plan_after=None):
    return MrrMovement.objects.create(
        account=account,
        occurred_on=day,
        kind=MrrMovement.Kind.EXPANSION,
        mrr_before=Decimal(before),
        mrr_after=Decimal(after),
        plan_before=plan_before,
        plan_after=plan_after,
    )


def text(response) -> str:
    return re.sub(r"\s+", " ", response.content.decode())


def cell(response, attribute: str, key: str) -> str:
    match = re.search(rf'{attribute}="{re.escape(key)}">(.*?)</td>', text(response))
    assert match, f"no {attribute} for {key}"
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", match.group(1))).strip()


def csv_rows(response) -> list[dict[str, str]]:
    assert response.status_code == 200
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    assert response["Content-Disposition"].startswith('attachment; filename="insights-')
    return list(csv.DictReader(io.StringIO(b"".join(response.streaming_content).decode("utf-8-sig"))))


# --- Who may see it -------------------------------------------------------------------------------------------


@pytest.mark.parametrize("url", [ADOPTION, PREDICTORS, COHORTS])
def test_it_refuses_a_csm_with_403(csm_client, url):
    response = csm_client.get(url)

    assert response.status_code == 403
    assert "Insights are for managers and admins" in text(response)


@pytest.mark.parametrize("url", [ADOPTION, PREDICTORS, COHORTS])
def test_it_shows_managers_and_admins_every_section_in_the_app_layout(client, manager, admin_user, url):
    for user in (manager, admin_user):
        client.force_login(user)
        response = client.get(url)

        assert response.status_code == 200
        assert 'aria-current="page">Insights</a>' in text(response)
        assert 'aria-label="Insights sections"' in text(response)


def test_it_sends_an_anonymous_visitor_to_log_in(client):
    response = client.get(ADOPTION)

    assert response.status_code == 302
    assert response["Location"].startswith("/login/")


def test_the_top_bar_links_insights_for_managers_only(csm_client, client, manager):
    assert ">Insights</a>" not in text(csm_client.get("/"))
    client.force_login(manager)
    assert ">Insights</a>" in text(client.get("/"))


# --- What precedes upgrades ------------------------------------------------------------------------------


@pytest.fixture
def history():
    """A window from 300 to 100 days ago. 30 accounts first used reports (and hit a locked feature) 10 days
    into it: 15 upgraded 30 days later. Of 60 others, 10 upgraded in the same weeks."""
    start, end = today() - dt.timedelta(days=300), today() - dt.timedelta(days=100)
    index = start + dt.timedelta(days=10)
    adopters = AccountFactory.create_batch(30)
    others = AccountFactory.create_batch(60)
    for account in adopters:
        events(account, FEATURE, [index], feature="reports")
        events(account, EngagementEvent.Kind.LOCKED_FEATURE_HIT, [index], feature="sso")
    for account in adopters[:15] + others[:10]:
        upgrade_on(account, index + dt.timedelta(days=30))
    return {"start": start.isoformat(), "end": end.isoformat()}


def test_it_finds_that_adopters_upgraded_three_times_as_often(manager_client, history):
    response = manager_client.get(PREDICTORS, history)

    assert response.status_code == 200
    assert cell(response, "data-lift", "feature:reports") == "3.00×"
    assert cell(response, "data-exposed", "feature:reports") == "50.0% 15 / 30"
    assert cell(response, "data-unexposed", "feature:reports") == "16.7% 10 / 60"
    assert "Top predictors" in text(response)
    assert 'data-top-lift="feature:reports">3.00×' in text(response)


def test_it_flags_signals_seen_on_too_few_accounts_and_does_not_rank_them(manager_client, history):
    few = Account.objects.order_by("pk")[40:45]
    index = dt.date.fromisoformat(history["start"]) + dt.timedelta(days=20)
    for account in few:
        events(account, FEATURE, [index], feature="audit_log")

    response = manager_client.get(PREDICTORS, history)
    row = re.search(r'<tr data-signal="feature:audit_log"[^>]*>.*?</tr>', text(response)).group(0)

    assert "insights-signals__unranked" in row
    assert "Too few to rank" in row
    assert "5 exposed accounts (fewer than 20)" in row
    assert re.search(r'<td class="num">—</td>', row)  # no rank
    ranked = csv_rows(manager_client.get(PREDICTORS, {**history, "export": "signals"}))
    audit = next(r for r in ranked if r["signal"] == "Uses audit log")
    assert (audit["rank"], audit["exposed_accounts"]) == ("", "5")
    assert audit["status"].startswith("too few to rank")


def test_it_exports_every_signal_with_its_counts_lift_and_interval(manager_client, history):
    rows = csv_rows(manager_client.get(PREDICTORS, {**history, "export": "signals"}))

    reports = next(r for r in rows if r["signal"] == "Uses reports")
    # The locked-feature hit came with it on the same accounts: same counts, ranked first by its label.
    assert [r["rank"] for r in rows[:2]] == ["1", "2"]
    assert reports["rank"] == "2"
    assert (reports["exposed_accounts"], reports["exposed_upgraded"]) == ("30", "15")
    assert (reports["unexposed_accounts"], reports["unexposed_upgraded"]) == ("60", "10")
    assert (reports["exposed_rate_percent"], reports["unexposed_rate_percent"]) == ("50.0", "16.7")
    assert (reports["lift"], reports["ci95_low"], reports["ci95_high"]) == ("3.0", "1.536", "5.86")


def test_it_drafts_a_rule_from_a_signal_for_an_admin(client, admin_user, history):
    client.force_login(admin_user)

    response = client.get(PREDICTORS, history)
    link = re.search(r'<tr data-signal="locked:1".*?<a href="([^"]+)">Create a rule from this', text(response))

    assert link, "no rule link on the locked-feature row"
    url = link.group(1).replace("&amp;", "&")
    assert urlsplit(url).path == "/settings/rules/new/"
    query = parse_qs(urlsplit(url).query)
    assert query["min_locked_feature_hits"] == ["1"]
    assert query["name"] == ["A locked-feature hit"]
    # A feature's use is not something a rule can ask for: no link there.
    reports = re.search(r'<tr data-signal="feature:reports".*?</tr>', text(response)).group(0)
    assert "Create a rule from this" not in reports


def test_it_offers_a_manager_no_rule_link(manager_client, history):
    assert "Create a rule from this" not in text(manager_client.get(PREDICTORS, history))


def test_the_rules_editor_fills_in_a_new_rule_from_the_link_and_stores_nothing(client, admin_user):
    client.force_login(admin_user)
    rules = Rule.objects.count()

    response = client.get(
        "/settings/rules/new/",
        {"name": "Seats at the limit", "metric": "seats", "min_utilization": "100", "min_locked_feature_hits": "5"},
    )

    page = text(response)
    assert response.status_code == 200
    assert re.search(r'name="name"[^>]*value="Seats at the limit"', page)
    assert re.search(r'name="min_utilization"[^>]*value="100', page)
    assert re.search(r'name="min_locked_feature_hits"[^>]*value="5"', page)
    seats = Metric.objects.get(key="seats")
    assert re.search(rf'<option value="{seats.pk}" selected>', page)
    assert Rule.objects.count() == rules


def test_the_rules_editor_leaves_out_values_it_would_refuse(client, admin_user):
    client.force_login(admin_user)

    response = client.get("/settings/rules/new/", {"min_locked_feature_hits": "many", "metric": "nope"})

    assert response.status_code == 200
    assert not re.search(r'name="min_locked_feature_hits"[^>]*value=', text(response))


def test_a_limit_crossing_is_measured_against_the_plan_in_effect_that_day(manager_client):
    """Seats at 6 (Basic's limit is 5, Pro's 25): crossing on Basic, and on Basic before an upgrade to Pro;
    not on Pro."""
    basic, pro = Plan.objects.get(name="Basic"), Plan.objects.get(name="Pro")
    seats = Metric.objects.get(key="seats")
    start, end = today() - dt.timedelta(days=300), today() - dt.timedelta(days=100)
    day = start + dt.timedelta(days=10)
    on_basic = AccountFactory(plan=basic)
    upgraded_since = AccountFactory(plan=pro, mrr=Decimal("99.00"))
    upgrade_on(upgraded_since, day + dt.timedelta(days=5), plan_before=basic, plan_after=pro)
    on_pro = AccountFactory(plan=pro, mrr=Decimal("99.00"))
    for account in (on_basic, upgraded_since, on_pro):
        UsageSnapshot.objects.create(account=account, metric=seats, value=6, captured_on=day)

    rows = csv_rows(manager_client.get(PREDICTORS, {"start": start, "end": end, "export": "signals"}))

    crossing = next(r for r in rows if r["signal"] == "Seats at or over the plan limit")
    assert (crossing["exposed_accounts"], crossing["exposed_upgraded"]) == ("2", "1")
    assert (crossing["unexposed_accounts"], crossing["unexposed_upgraded"]) == ("1", "0")


def test_a_login_band_counts_the_logins_of_a_calendar_month(manager_client):
    start, end = today() - dt.timedelta(days=300), today() - dt.timedelta(days=100)
    month = add_months(month_start(start), 1)
    busy, quiet = AccountFactory(), AccountFactory()
    events(busy, EngagementEvent.Kind.LOGIN, [month + dt.timedelta(days=k) for k in range(22)])
    events(quiet, EngagementEvent.Kind.LOGIN, [month + dt.timedelta(days=k) for k in range(21)])

    rows = csv_rows(manager_client.get(PREDICTORS, {"start": start, "end": end, "export": "signals"}))
    exposed = {r["signal"]: r["exposed_accounts"] for r in rows}

    # 5 a week = 22 logins in a month: only the busy account; 1 a week = 5 logins: both.
    assert exposed["Login activity: 5+ a week (22+ logins in a month)"] == "1"
    assert exposed["Login activity: 1+ a week (5+ logins in a month)"] == "2"


def test_it_explains_a_period_too_recent_to_have_upgrades_yet(manager_client):
    response = manager_client.get(PREDICTORS, {"period": "this_month"})

    assert response.status_code == 200
    assert "Too recent to tell" in text(response)


# --- Feature adoption -------------------------------------------------------------------------------------


@pytest.fixture
def usage():
    """Four accounts active in the last 60 days (two Basic, two Pro), a fifth silent; two used reports."""
    basic, pro = Plan.objects.get(name="Basic"), Plan.objects.get(name="Pro")
    day = today() - dt.timedelta(days=10)
    a, b = AccountFactory(plan=basic), AccountFactory(plan=basic)
    c, e = AccountFactory(plan=pro, region="APAC"), AccountFactory(plan=pro, region="APAC")
    AccountFactory(plan=basic)
    for account in (a, b, c, e):
        events(account, EngagementEvent.Kind.LOGIN, [day])
    events(a, FEATURE, [day, day, day], feature="reports", users=("u1", "u2"))
    events(c, FEATURE, [day], feature="reports")
    events(c, FEATURE, [day], feature="sso")
    return {"start": (today() - dt.timedelta(days=60)).isoformat(), "end": today().isoformat()}


def test_it_shows_each_features_share_of_active_accounts_and_its_depth(manager_client, usage):
    response = manager_client.get(ADOPTION, usage)

    assert response.status_code == 200
    assert "4 active accounts" in text(response)
    # reports: 2 of 4 active accounts; 4 events by 3 users (two at A, one at C).
    assert cell(response, "data-share", "reports") == "50.0%"
    assert cell(response, "data-depth", "reports") == "1.3"
    assert cell(response, "data-share", "sso") == "25.0%"


def test_it_lists_the_most_and_least_used_features_per_plan(manager_client, usage):
    response = manager_client.get(ADOPTION, usage)

    # Basic: only reports was used (sso by nobody, so not in either list); Pro: both, at 50%.
    assert cell(response, "data-most", "Basic") == "reports 50%"
    assert cell(response, "data-least", "Basic") == "—"
    assert cell(response, "data-most", "Pro") == "reports 50% sso 50%"


def test_it_narrows_adoption_to_a_segment(manager_client, usage):
    response = manager_client.get(ADOPTION, {**usage, "region": "APAC"})

    assert "2 active accounts" in text(response)
    assert cell(response, "data-share", "reports") == "50.0%"
    assert cell(response, "data-share", "sso") == "50.0%"


def test_it_exports_every_adoption_table(manager_client, usage):
    features = csv_rows(manager_client.get(ADOPTION, {**usage, "export": "features"}))
    segments = csv_rows(manager_client.get(ADOPTION, {**usage, "export": "segments", "by": "region"}))
    trend = csv_rows(manager_client.get(ADOPTION, {**usage, "export": "trend"}))
    by_plan = csv_rows(manager_client.get(ADOPTION, {**usage, "export": "by_plan"}))

    assert features[0] == {
        "feature": "reports",
        "accounts_using": "2",
        "active_accounts": "4",
        "share_percent": "50.0",
        "events": "4",
        "users": "3",
        "events_per_user": "1.33",
    }
    assert {(r["segment"], r["feature"], r["share_percent"]) for r in segments} >= {
        ("APAC", "sso", "50.0"),
        ("EMEA", "sso", "0.0"),
    }
    this_month = today().strftime("%Y-%m") if (today() - dt.timedelta(days=10)).month == today().month else None
    if this_month:
        assert {"month": this_month, "feature": "reports", "share_percent": "50.0", "active_accounts": "4"} in trend
    assert {r["feature"] for r in by_plan if r["plan"] == "Pro" and r["which"] == "most used"} == {"reports", "sso"}


def test_it_answers_404_to_an_export_of_a_table_it_does_not_have(manager_client):
    assert manager_client.get(ADOPTION, {"export": "passwords"}).status_code == 404


def test_it_answers_htmx_with_the_results_partial_and_the_tidy_address(manager_client, usage):
    response = manager_client.get(ADOPTION, {**usage, "csm": "", "plan": "", "by": "region"}, HTTP_HX_REQUEST="true")

    assert response.status_code == 200
    assert not text(response).lstrip().startswith("<!doctype")
    assert 'id="results"' in text(response)
    assert "HX-Request" in response["Vary"]
    assert response["HX-Push-Url"] == f"/insights/?start={usage['start']}&end={usage['end']}&by=region"


# --- Usage cohorts ----------------------------------------------------------------------------------------


@pytest.fixture
def cohorts():
    """Three accounts signed up two months ago, one last month; their use of reports by month."""
    this = month_start(today())
    two_ago, last = add_months(this, -2), add_months(this, -1)
    a, b, c = (AccountFactory(first_purchase_on=two_ago) for _ in range(3))
    d = AccountFactory(first_purchase_on=last, plan=Plan.objects.get(name="Pro"))
    events(a, FEATURE, [two_ago, last], feature="reports")
    events(b, FEATURE, [last], feature="reports")
    events(d, FEATURE, [this], feature="reports")
    del c
    return {"start": two_ago.isoformat(), "end": today().isoformat(), "measure": "feature:reports"}


def cohort_cells(response, key: str) -> list[str]:
    row = re.search(rf'<tr data-cohort="{key}">(.*?)</tr>', text(response)).group(1)
    return [re.sub(r"<[^>]+>", "", c).strip() for c in re.findall(r'data-month="\d+">(.*?)</td>', row)]


def test_it_shows_each_cohorts_share_using_a_feature_by_month_since_signup(manager_client, cohorts):
    response = manager_client.get(COHORTS, cohorts)
    two_ago = dt.date.fromisoformat(cohorts["start"])

    assert response.status_code == 200
    # Two months ago: 1 of 3 in month 0, 2 of 3 in month 1, none this month. Last month: 0 of 1, then 1 of 1.
    assert cohort_cells(response, f"{two_ago:%Y-%m}") == ["33.3%", "66.7%", "0.0%"]
    assert cohort_cells(response, f"{add_months(two_ago, 1):%Y-%m}") == ["0.0%", "100.0%"]
    assert 'data-insights-chart="cohorts"' in text(response)


def test_it_compares_two_cohorts_month_by_month(manager_client, cohorts):
    two_ago = dt.date.fromisoformat(cohorts["start"])
    last = add_months(two_ago, 1)

    response = manager_client.get(COHORTS, {**cohorts, "a": f"{two_ago:%Y-%m}", "b": f"{last:%Y-%m}"})
    rows = csv_rows(
        manager_client.get(COHORTS, {**cohorts, "a": f"{two_ago:%Y-%m}", "b": f"{last:%Y-%m}", "export": "comparison"})
    )

    assert cell(response, "data-difference", "0") == "-33.3 pts"
    assert cell(response, "data-difference", "1") == "+33.3 pts"
    assert [(r["months_since_signup"], r["difference_points"]) for r in rows] == [
        ("0", "-33.3"),
        ("1", "33.3"),
        ("2", ""),
    ]


def test_it_groups_cohorts_by_plan_and_exports_the_matrix(manager_client, cohorts):
    basic, pro = Plan.objects.get(name="Basic"), Plan.objects.get(name="Pro")

    response = manager_client.get(COHORTS, {**cohorts, "group": "plan"})
    rows = csv_rows(manager_client.get(COHORTS, {**cohorts, "group": "plan", "export": "matrix"}))

    assert cohort_cells(response, f"plan-{basic.pk}") == ["33.3%", "66.7%", "0.0%"]
    assert cohort_cells(response, f"plan-{pro.pk}") == ["0.0%", "100.0%"]
    assert [(r["cohort"], r["accounts"], r["month_0"], r["month_1"], r["month_2"]) for r in rows] == [
        ("Basic", "3", "33.3", "66.7", "0.0"),
        ("Pro", "1", "0.0", "100.0", ""),
    ]


def test_it_shows_the_median_utilization_of_a_metric_by_month_since_signup(manager_client):
    seats = Metric.objects.get(key="seats")
    last = add_months(month_start(today()), -1)
    for value in (2, 4, 5):  # Basic: 5 seats; 40%, 80%, 100%
        account = AccountFactory(first_purchase_on=last)
        UsageSnapshot.objects.create(account=account, metric=seats, value=value, captured_on=last)
        UsageSnapshot.objects.create(account=account, metric=seats, value=1, captured_on=last + dt.timedelta(days=1))

    response = manager_client.get(COHORTS, {"start": last, "end": today(), "measure": "metric:seats"})

    assert cohort_cells(response, f"{last:%Y-%m}")[0] == "80.0%"


# --- Bad input and bounded queries ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "params", "error"),
    [
        (ADOPTION, {"start": "2026-02-30", "end": "2026-03-31"}, "From: Enter a valid date."),
        (ADOPTION, {"start": "2026-03-31", "end": "2026-03-01"}, "To: The last day is before the first."),
        (ADOPTION, {"by": "galaxy"}, "Segment by: Select a valid choice."),
        (PREDICTORS, {"plan": "999999"}, "Plan: Select a valid choice."),
        (PREDICTORS, {"period": "forever"}, "Period: Select a valid choice."),
        (COHORTS, {"measure": "feature:nothing-like-it"}, "Measure: Select a valid choice."),
        (COHORTS, {"group": "zodiac"}, "Cohorts: Select a valid choice."),
        (COHORTS, {"a": "'; drop table"}, "Compare: Give a signup month as YYYY-MM"),
        (COHORTS, {"size": "huge", "export": "matrix"}, "Company size: Select a valid choice."),
    ],
)
def test_it_explains_filters_it_cannot_show_with_a_form_error(manager_client, url, params, error):
    response = manager_client.get(url, params)

    assert response.status_code == 422
    assert "These filters cannot be shown." in text(response)
    assert error in text(response)


def book(count: int) -> None:
    """`count` accounts, each with logins, a feature used, a locked hit, seats over the limit and an upgrade."""
    seats = Metric.objects.get(key="seats")
    start = today() - dt.timedelta(days=300)
    existing = Account.objects.count()
    for n in range(existing, existing + count):
        account = AccountFactory(first_purchase_on=start + dt.timedelta(days=n % 200))
        day = start + dt.timedelta(days=10 + n % 150)
        events(account, EngagementEvent.Kind.LOGIN, [day + dt.timedelta(days=k) for k in range(6)])
        events(account, FEATURE, [day], feature=("reports", "sso", "exports")[n % 3])
        events(account, EngagementEvent.Kind.LOCKED_FEATURE_HIT, [day], feature="sandbox")
        UsageSnapshot.objects.create(account=account, metric=seats, value=6, captured_on=day)
        upgrade_on(account, day + dt.timedelta(days=20))


def queries(client, url: str, params: dict) -> int:
    empty_caches()  # each count from an empty cache, reference data included
    with CaptureQueriesContext(connection) as captured:
        response = client.get(url, params)
    assert response.status_code == 200
    return len(captured)


@pytest.mark.parametrize(
    ("url", "params"),
    [
        (ADOPTION, {"period": "last_12_months"}),
        (ADOPTION, {"period": "last_12_months", "by": "region", "plan": "1"}),
        (PREDICTORS, {"period": "last_12_months"}),
        (PREDICTORS, {"period": "last_12_months", "region": "EMEA"}),
        (COHORTS, {"period": "last_12_months"}),
        (COHORTS, {"period": "last_12_months", "measure": "metric:seats", "group": "plan"}),
    ],
)
def test_it_runs_as_many_queries_for_50_accounts_as_for_5(manager_client, url, params):
    book(5)
    few = queries(manager_client, url, params)
    book(45)
    many = queries(manager_client, url, params)

    assert Account.objects.count() == 50
    assert few == many
    assert many <= 20
