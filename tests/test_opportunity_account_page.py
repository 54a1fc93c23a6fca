"""The account page (served by opportunities.views), as a CSM, another CSM and a manager see it."""

import datetime as dt
import json
import re
from decimal import Decimal

from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from accounts.models import AccountIndicator, UsageSnapshot
from accounts.services import account_indicators_refresh
from opportunities.models import Outcome, Stage
from tests.caches import empty_caches
from tests.factories import (
    AccountFactory,
    EngagementEventFactory,
    MrrMovementFactory,
    OpportunityFactory,
    UsageSnapshotFactory,
    metric,
    plan,
)


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
    empty_caches()  # counted cold: the reference data and the sections kept per refresh are read each time
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
            plan_before=plan("Basic"),
            plan_after=plan("Pro"),
        )
    # Their plans come from the plan catalogue, not one query each.
    OpportunityFactory.create_batch(
        5,
        account=account,
        outcome=Outcome.WON,
        closed_at=timezone.now(),
        target_plan=plan("Pro"),
        trial_plan=plan("Pro"),
    )
    many = _detail_queries(csm_client, account)

    assert many == few


# --- Sections drawn once per refresh ------------------------------------------------------------------------


def _usage_data(client, account) -> list[dict]:
    html = client.get(account.get_absolute_url()).content.decode()
    return json.loads(re.search(r'<script id="usage-data" type="application/json">(.*?)</script>', html).group(1))


def _seats_values(client, account) -> list[float]:
    return next(series for series in _usage_data(client, account) if series["key"] == "seats")["values"]


def usage_heading(html: str) -> str:
    return re.search(r'<h2 id="usage-heading">.*?</h2>\s*<span class="muted">(.*?)</span>', html, re.DOTALL).group(1)


def test_a_young_accounts_charts_say_since_when_they_run_and_that_its_trend_has_fewer_days(csm_client, account):
    today = timezone.localdate()
    started = today - dt.timedelta(days=6)
    for days_ago in range(7):
        UsageSnapshotFactory(
            account=account, metric=metric("seats"), value=days_ago, captured_on=today - dt.timedelta(days=days_ago)
        )
    account_indicators_refresh(as_of=today, account_ids=[account.pk])

    html = csm_client.get(account.get_absolute_url()).content.decode()

    assert usage_heading(html) == f"since {started:%b} {started.day} · trend over those days"
    assert f'aria-label="Seats per day since {started:%b} {started.day}' in html


def test_an_older_accounts_charts_say_they_show_the_last_90_days_and_a_30_day_trend(csm_client, account):
    today = timezone.localdate()
    for days_ago in (0, 45, 89, 120):
        UsageSnapshotFactory(
            account=account, metric=metric("seats"), value=3, captured_on=today - dt.timedelta(days=days_ago)
        )
    account_indicators_refresh(as_of=today, account_ids=[account.pk])
    html = csm_client.get(account.get_absolute_url()).content.decode()
    assert usage_heading(html) == "last 90 days · trend over the last 30"

    # Usage from forty-five days ago on: the charts start there, and the trend still has its whole window.
    UsageSnapshot.objects.filter(account=account, captured_on__lt=today - dt.timedelta(days=45)).delete()
    account_indicators_refresh(as_of=today, account_ids=[account.pk])
    html = csm_client.get(account.get_absolute_url()).content.decode()
    since = today - dt.timedelta(days=45)
    assert usage_heading(html) == f"since {since:%b} {since.day} · trend over the last 30"


def test_the_usage_section_is_drawn_from_the_last_refresh_and_redrawn_by_the_next(csm_client, account):
    today = timezone.localdate()
    UsageSnapshotFactory(account=account, metric=metric("seats"), value=3, captured_on=today - dt.timedelta(days=1))
    account_indicators_refresh(as_of=today, account_ids=[account.pk])
    assert _seats_values(csm_client, account) == [3]

    UsageSnapshotFactory(account=account, metric=metric("seats"), value=4, captured_on=today)
    assert _seats_values(csm_client, account) == [3]  # as the indicators stand: not refreshed yet

    account_indicators_refresh(as_of=today, account_ids=[account.pk])
    assert _seats_values(csm_client, account) == [3, 4]


def test_a_new_plan_redraws_the_usage_section_at_once(csm_client, account):
    today = timezone.localdate()
    UsageSnapshotFactory(account=account, metric=metric("seats"), value=3, captured_on=today)
    account_indicators_refresh(as_of=today, account_ids=[account.pk])
    before = csm_client.get(account.get_absolute_url()).content.decode()

    account.plan = None
    account.save()
    after = csm_client.get(account.get_absolute_url()).content.decode()

    assert "no plan" not in before and "no plan" in after


def test_a_renamed_metric_redraws_the_usage_section(csm_client, account):
    today = timezone.localdate()
    UsageSnapshotFactory(account=account, metric=metric("seats"), value=3, captured_on=today)
    account_indicators_refresh(as_of=today, account_ids=[account.pk])
    csm_client.get(account.get_absolute_url())
    seats = metric("seats")
    seats.label = "Licensed users"
    seats.save()

    assert "Licensed users" in [series["label"] for series in _usage_data(csm_client, account)]


def test_locked_feature_hits_are_counted_as_of_the_last_engagement_refresh(csm_client, account):
    today = timezone.localdate()
    EngagementEventFactory(account=account, kind="locked_feature_hit", feature="sso", occurred_at=timezone.now())
    account_indicators_refresh(as_of=today, account_ids=[account.pk])
    assert [row["feature"] for row in csm_client.get(account.get_absolute_url()).context["locked_features"]] == ["sso"]

    EngagementEventFactory(account=account, kind="locked_feature_hit", feature="audit_log", occurred_at=timezone.now())
    features = [row["feature"] for row in csm_client.get(account.get_absolute_url()).context["locked_features"]]
    assert features == ["sso"]

    account_indicators_refresh(as_of=today, account_ids=[account.pk])
    features = [row["feature"] for row in csm_client.get(account.get_absolute_url()).context["locked_features"]]
    assert sorted(features) == ["audit_log", "sso"]


def test_the_indicators_are_read_only_to_draw_the_usage_section_again(csm_client, account):
    UsageSnapshotFactory(account=account, metric=metric("seats"), value=3, captured_on=timezone.localdate())
    account_indicators_refresh(as_of=timezone.localdate(), account_ids=[account.pk])

    def indicator_reads() -> int:
        with CaptureQueriesContext(connection) as queries:
            assert csm_client.get(account.get_absolute_url()).status_code == 200
        return sum(1 for q in queries if 'FROM "accounts_accountindicator"' in q["sql"])

    assert [indicator_reads(), indicator_reads()] == [1, 0]
