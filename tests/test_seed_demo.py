"""`manage.py seed_demo`: a realistic, deterministic demo that the rest of the product can be shown with."""

import datetime as dt
import hashlib
import io
from collections import Counter, defaultdict
from decimal import Decimal

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection
from django.db.models import Count, Max, Min
from django.test.utils import CaptureQueriesContext

from accounts.models import (
    Account,
    EngagementEvent,
    Metric,
    MrrMovement,
    Plan,
    PlanFeature,
    PlanLimit,
    UsageSnapshot,
    movement_kind,
)
from opportunities.models import Opportunity, OpportunityEvent, Outcome, Stage

AS_OF = dt.date(2026, 11, 20)
LIMIT_METRICS = ["seats", "storage_gb", "integrations", "api_calls", "projects"]

# DOMAIN.md, "Plans": the tables a fresh install ships, as written there (None = unlimited, "" = not included).
DOMAIN_PLANS = {
    "Basic": {
        "monthly": Decimal("29.00"),
        "annual": Decimal("290.00"),
        "limits": {"seats": 5, "storage_gb": 10, "integrations": 3, "api_calls": 10_000, "projects": 10},
        "features": {"reporting": "basic", "support": ""},
    },
    "Pro": {
        "monthly": Decimal("99.00"),
        "annual": Decimal("990.00"),
        "limits": {"seats": 25, "storage_gb": 100, "integrations": 10, "api_calls": 100_000, "projects": 100},
        "features": {"reporting": "advanced", "support": "priority"},
    },
    "Enterprise": {
        "monthly": Decimal("299.00"),
        "annual": Decimal("2990.00"),
        "limits": {"seats": None, "storage_gb": 1024, "integrations": None, "api_calls": None, "projects": None},
        "features": {"reporting": "custom", "support": "dedicated"},
    },
}


def seed_demo(**options) -> str:
    options = {"accounts": 40, "as_of": "2026-11-20", "pipeline": False} | options
    out = io.StringIO()
    call_command("seed_demo", stdout=out, **options)
    return out.getvalue()


def fingerprint() -> str:
    """A hash of what the demo says, without primary keys or the times rows were written."""
    parts = [
        Account.objects.order_by("external_id").values_list(
            "external_id",
            "name",
            "plan__name",
            "mrr",
            "billing_period",
            "status",
            "industry",
            "employees",
            "region",
            "owner__username",
            "first_purchase_on",
            "plan_started_on",
        ),
        UsageSnapshot.objects.order_by("account__external_id", "metric__key", "captured_on").values_list(
            "account__external_id", "metric__key", "captured_on", "value"
        ),
        MrrMovement.objects.order_by("account__external_id", "occurred_on", "kind").values_list(
            "account__external_id",
            "occurred_on",
            "kind",
            "mrr_before",
            "mrr_after",
            "plan_before__name",
            "plan_after__name",
        ),
        EngagementEvent.objects.order_by("external_id").values_list(
            "external_id", "account__external_id", "kind", "feature", "user_ref", "occurred_at"
        ),
        Opportunity.objects.order_by("account__external_id", "identified_at").values_list(
            "account__external_id",
            "stage",
            "outcome",
            "score",
            "reasons",
            "owner__username",
            "target_plan__name",
            "expected_mrr_delta",
            "qualification",
            "roi_note",
            "lost_reason__key",
            "snoozed_until",
            "identified_at",
            "closed_at",
        ),
        OpportunityEvent.objects.order_by("opportunity__account__external_id", "occurred_at", "kind").values_list(
            "opportunity__account__external_id",
            "occurred_at",
            "kind",
            "from_stage",
            "to_stage",
            "changes",
            "actor__username",
        ),
    ]
    return hashlib.sha256(repr([list(p) for p in parts]).encode()).hexdigest()


@pytest.mark.django_db
def test_it_gives_the_same_demo_for_the_same_seed_and_date_and_another_for_another_seed():
    seed_demo()
    first = fingerprint()
    assert Account.objects.count() == 40

    seed_demo(reset=True)
    assert fingerprint() == first

    seed_demo(reset=True, seed=7)
    assert fingerprint() != first


@pytest.mark.django_db
def test_it_leaves_the_plans_exactly_as_domain_md_describes_them():
    seed_demo()

    assert set(Plan.objects.values_list("name", flat=True)) == set(DOMAIN_PLANS)
    for plan in Plan.objects.all():
        expected = DOMAIN_PLANS[plan.name]
        assert (plan.monthly_price, plan.annual_price) == (expected["monthly"], expected["annual"])
        limits = dict(PlanLimit.objects.filter(plan=plan).values_list("metric__key", "limit"))
        assert limits == expected["limits"]
        features = {k: v.lower() for k, v in PlanFeature.objects.filter(plan=plan).values_list("key", "value")}
        assert features == expected["features"]


@pytest.mark.django_db
def test_it_creates_the_demo_logins_with_their_roles_and_the_demo_password():
    output = seed_demo()

    users = {u.username: u for u in get_user_model().objects.prefetch_related("groups")}
    expected = {"csm1": "CSM", "csm2": "CSM", "csm3": "CSM", "csm4": "CSM", "manager": "Manager", "admin": "Admin"}
    for username, group in expected.items():
        user = users[username]
        assert [g.name for g in user.groups.all()] == [group]
        assert user.check_password("demo")
        assert user.first_name and user.last_name and user.email
        assert username in output
    assert users["admin"].is_staff and users["admin"].is_superuser
    assert not users["manager"].is_staff
    assert "'demo'" in output
    # Each CSM has a book of accounts.
    owners = Counter(Account.objects.values_list("owner__username", flat=True))
    assert all(owners[f"csm{n}"] > 0 for n in range(1, 5))


@pytest.mark.django_db
def test_it_has_opportunities_in_every_stage_and_every_outcome_each_with_its_history():
    seed_demo()

    opportunities = list(Opportunity.objects.select_related("account", "lost_reason").prefetch_related("events"))
    assert {o.stage for o in opportunities} == set(Stage.values)
    assert {o.outcome for o in opportunities} == set(Outcome.values)
    assert {o.stage for o in opportunities if o.outcome == Outcome.OPEN} == set(Stage.values)
    for o in opportunities:
        assert o.owner_id == o.account.owner_id
        assert 0 <= o.score <= 100
        assert o.reasons and all({"text", "points", "rule"} <= r.keys() for r in o.reasons)
        assert o.events.all() and o.version == len(o.events.all())
        assert (o.closed_at is None) == (o.outcome == Outcome.OPEN)
        assert bool(o.qualification) == (o.qualified_at is not None)
        if o.presented_at:
            assert o.roi_note
        if o.outcome == Outcome.LOST:
            assert o.lost_reason is not None
        if o.outcome == Outcome.SNOOZED:
            assert o.snoozed_until is not None


@pytest.mark.django_db
def test_it_records_each_won_opportunity_as_the_expansion_it_brought():
    seed_demo()

    won = Opportunity.objects.filter(outcome=Outcome.WON)
    assert won
    for o in won:
        movement = MrrMovement.objects.get(
            account=o.account, kind=MrrMovement.Kind.EXPANSION, occurred_on=o.closed_at.date()
        )
        assert movement.plan_after_id == o.target_plan_id
        assert movement.mrr_after - movement.mrr_before == o.actual_mrr_delta


@pytest.mark.django_db
def test_it_chains_every_accounts_mrr_movements_up_to_its_current_mrr_and_plan():
    seed_demo()

    movements = defaultdict(list)
    for m in MrrMovement.objects.order_by("occurred_on", "pk"):
        movements[m.account_id].append(m)
    kinds = Counter()
    for account in Account.objects.all():
        chain = movements[account.pk]
        if account.status == Account.Status.TRIAL:
            assert not chain and account.mrr == 0 and account.first_purchase_on is None
            continue
        assert chain[0].kind == MrrMovement.Kind.NEW and chain[0].occurred_on == account.first_purchase_on
        before, paid = Decimal("0.00"), False
        for m in chain:
            assert m.source == MrrMovement.Source.DEMO
            assert m.mrr_before == before
            assert m.kind == movement_kind(mrr_before=m.mrr_before, mrr_after=m.mrr_after, paid_before=paid)
            before, paid = m.mrr_after, True
            kinds[m.kind] += 1
        last = chain[-1]
        assert account.mrr == last.mrr_after
        assert account.plan_id == last.plan_after_id
        assert (account.status == Account.Status.CHURNED) == (account.mrr == 0)
        if account.mrr:
            assert account.plan_started_on == last.occurred_on
    assert kinds[MrrMovement.Kind.NEW] and kinds[MrrMovement.Kind.EXPANSION]


@pytest.mark.django_db
def test_it_records_120_days_of_usage_per_limit_metric_per_account():
    seed_demo()

    rows = list(
        UsageSnapshot.objects.values("account", "metric__key").annotate(
            n=Count("id"), first=Min("captured_on"), last=Max("captured_on"), lowest=Min("value")
        )
    )
    assert len(rows) == 40 * len(LIMIT_METRICS)
    assert set(Metric.objects.filter(kind=Metric.Kind.LIMIT).values_list("key", flat=True)) == set(LIMIT_METRICS)
    for row in rows:
        assert row["n"] == 120
        assert (row["first"], row["last"]) == (AS_OF - dt.timedelta(days=119), AS_OF)
        assert row["lowest"] >= 0
    for key, value in UsageSnapshot.objects.exclude(metric__key="storage_gb").values_list("metric__key", "value"):
        assert value == int(value), key


@pytest.mark.django_db
def test_it_puts_some_accounts_near_or_over_a_limit_and_some_on_course_to_reach_one():
    seed_demo(accounts=80)

    limits = {(p, k): v for p, k, v in PlanLimit.objects.values_list("plan_id", "metric__key", "limit")}
    series = defaultdict(list)
    for account_id, plan_id, key, value in (
        UsageSnapshot.objects.filter(account__status="active")
        .order_by("captured_on")
        .values_list("account_id", "account__plan_id", "metric__key", "value")
    ):
        series[(account_id, plan_id, key)].append(value)
    near, heading = set(), set()
    for (account_id, plan_id, key), values in series.items():
        limit = limits[(plan_id, key)]
        if limit is None:
            continue
        latest, window = values[-1], values[-30:]
        n = len(window)
        mean_x, mean_y = (n - 1) / 2, sum(window) / n
        slope = sum((x - mean_x) * (y - mean_y) for x, y in enumerate(window)) / sum(
            (x - mean_x) ** 2 for x in range(n)
        )
        if latest >= 0.8 * limit:
            near.add(account_id)
        elif slope > 0 and (limit - latest) / slope <= 90:
            heading.add(account_id)
    assert len(near) >= 8
    assert len(heading) >= 4


@pytest.mark.django_db
def test_it_spreads_engagement_over_the_last_two_30_day_windows():
    seed_demo()

    events = list(EngagementEvent.objects.values_list("account__status", "kind", "occurred_at"))
    assert len(events) >= 40 * 20
    days = [(AS_OF - at.date()).days for _, _, at in events]
    assert min(days) >= 0 and max(days) <= 59
    assert any(d < 30 for d in days) and any(d >= 30 for d in days)
    kinds = {kind for _, kind, _ in events}
    assert {"login", "feature_used", "locked_feature_hit"} <= kinds
    trial_kinds = {kind for status, kind, _ in events if status == Account.Status.TRIAL}
    if Account.objects.filter(status=Account.Status.TRIAL).exists():
        assert "trial_feature_used" in trial_kinds


@pytest.mark.django_db
def test_it_writes_set_based_so_queries_do_not_grow_with_accounts(django_assert_max_num_queries):
    with django_assert_max_num_queries(80):
        seed_demo()
    with CaptureQueriesContext(connection) as small:
        seed_demo(reset=True)
    with CaptureQueriesContext(connection) as triple:
        seed_demo(reset=True, accounts=120)

    # A query per account would add 80+ for each table; batches of rows add a handful in all.
    assert len(triple) - len(small) <= 20


@pytest.mark.django_db
def test_it_leaves_a_seeded_database_alone_with_if_empty():
    seed_demo()
    before = fingerprint()

    output = seed_demo(if_empty=True, seed=7)

    assert "already exist" in output
    assert fingerprint() == before


@pytest.mark.django_db
def test_it_refuses_to_seed_over_existing_accounts_without_reset(account):
    with pytest.raises(CommandError, match="--reset"):
        seed_demo()
    assert list(Account.objects.all()) == [account]


@pytest.mark.django_db
def test_it_lets_the_pipeline_fill_the_queue_afterwards(monkeypatch):
    calls = []
    monkeypatch.setattr("opportunities.pipeline.run_pipeline", lambda *, as_of: calls.append(as_of) or {})

    seed_demo(pipeline=True)

    assert calls == [AS_OF]
