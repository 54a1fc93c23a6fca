"""POST /api/v1/subscriptions: plan and MRR changes become MRR movements and bring accounts up to date."""

import datetime as dt
from decimal import Decimal

import pytest
from django.utils import timezone

from accounts.models import Account, MrrMovement
from accounts.tokens import api_token_create
from opportunities.models import Opportunity, OpportunityEvent, Outcome, Stage
from tests.api_helpers import pointers, post_json
from tests.factories import AccountFactory, MrrMovementFactory, OpportunityFactory, plan

URL = "/api/v1/subscriptions"


@pytest.fixture
def token(db):
    return api_token_create(name="billing export")[1]


def change(account, day, mrr, plan_name=None):
    item = {"account": account.external_id, "date": day, "mrr": mrr}
    return item | ({"plan": plan_name} if plan_name else {})


def movements(account) -> list[tuple]:
    return list(
        MrrMovement.objects.filter(account=account)
        .order_by("occurred_on", "pk")
        .values_list(
            "occurred_on", "kind", "mrr_before", "mrr_after", "plan_before__name", "plan_after__name", "source"
        )
    )


def test_a_first_paid_plan_is_a_new_movement_and_starts_the_account(client, token):
    prospect = AccountFactory(plan=None, mrr=0, first_purchase_on=None, plan_started_on=None)

    response = post_json(client, URL, {"changes": [change(prospect, "2026-06-01", 29, "basic")]}, token=token)

    assert response.json() == {"created": 1, "updated": 0, "duplicates": 0}
    assert movements(prospect) == [
        (dt.date(2026, 6, 1), "new", Decimal("0.00"), Decimal("29.00"), None, "Basic", "api")
    ]
    prospect.refresh_from_db()
    assert (prospect.plan, prospect.mrr, prospect.status) == (plan("Basic"), Decimal("29.00"), "active")
    assert (prospect.first_purchase_on, prospect.plan_started_on) == (dt.date(2026, 6, 1), dt.date(2026, 6, 1))


def test_the_kind_follows_from_before_and_after_in_date_order(client, token, account):
    body = {
        "changes": [
            change(account, "2026-09-01", 0),
            change(account, "2026-07-01", 99, "Pro"),
            change(account, "2026-08-01", 49),
            change(account, "2026-10-01", 299, "Enterprise"),
        ]
    }

    response = post_json(client, URL, body, token=token)

    assert response.json() == {"created": 4, "updated": 0, "duplicates": 0}
    assert [(m[0].month, m[1], m[2], m[3]) for m in movements(account)] == [
        (7, "expansion", Decimal("29.00"), Decimal("99.00")),
        (8, "contraction", Decimal("99.00"), Decimal("49.00")),
        (9, "churn", Decimal("49.00"), Decimal("0.00")),
        (10, "reactivation", Decimal("0.00"), Decimal("299.00")),
    ]
    account.refresh_from_db()
    assert (account.plan, account.mrr, account.status) == (plan("Enterprise"), Decimal("299.00"), "active")


def test_a_churn_marks_the_account_churned_and_keeps_its_last_plan(client, token, account):
    post_json(client, URL, {"changes": [change(account, "2026-09-01", 0)]}, token=token)

    account.refresh_from_db()
    assert (account.plan, account.mrr, account.status) == (plan("Basic"), Decimal("0.00"), "churned")


def test_a_back_dated_change_starts_from_the_mrr_then_and_leaves_the_account_as_it_is(client, token, account):
    MrrMovementFactory(
        account=account,
        occurred_on=dt.date(2026, 10, 1),
        mrr_before=Decimal(29),
        mrr_after=Decimal(99),
        plan_before=plan("Basic"),
        plan_after=plan("Pro"),
    )
    Account.objects.filter(pk=account.pk).update(plan=plan("Pro"), mrr=99)

    post_json(client, URL, {"changes": [change(account, "2026-09-01", 49)]}, token=token)

    assert movements(account)[0][:4] == (dt.date(2026, 9, 1), "expansion", Decimal("29.00"), Decimal("49.00"))
    account.refresh_from_db()
    assert (account.plan, account.mrr) == (plan("Pro"), Decimal("99.00"))


def test_a_change_equal_to_the_state_in_effect_is_a_duplicate_and_a_new_plan_name_an_update(client, token, account):
    assert post_json(client, URL, {"changes": [change(account, "2026-09-01", 29, "Basic")]}, token=token).json() == {
        "created": 0,
        "updated": 0,
        "duplicates": 1,
    }

    response = post_json(client, URL, {"changes": [change(account, "2026-09-01", 29, "Pro")]}, token=token)

    assert response.json() == {"created": 0, "updated": 1, "duplicates": 0}
    assert movements(account) == []
    account.refresh_from_db()
    assert account.plan == plan("Pro")


def test_it_names_bad_changes_by_pointer(client, token, account):
    body = {
        "changes": [
            change(account, "2026-09-01", 99, "Pro"),
            change(account, "2026-09-01", 99, "Platinum"),
            {**change(account, "2026-09-01", 99), "account": "ghost"},
            change(account, "2026-09-01", -5),
            change(account, "2026-09-01", 9.999),
            change(account, "2026-09-01", 10**13),
            {"account": account.external_id, "date": "2026-09-01"},
        ]
    }

    response = post_json(client, URL, body, token=token)

    assert response.status_code == 422
    assert pointers(response) == [
        "/changes/1/plan",
        "/changes/2/account",
        "/changes/3/mrr",
        "/changes/4/mrr",
        "/changes/5/mrr",
        "/changes/6/mrr",
    ]
    assert MrrMovement.objects.count() == 0


def test_an_upgrade_closes_the_accounts_open_opportunity_as_won(client, token, account):
    opportunity = OpportunityFactory(account=account, stage=Stage.PRESENT, identified_at=timezone.now())
    today = timezone.localdate().isoformat()

    post_json(client, URL, {"changes": [change(account, today, 99, "Pro")]}, token=token)

    opportunity.refresh_from_db()
    assert (opportunity.outcome, opportunity.stage, opportunity.actual_mrr_delta) == (
        Outcome.WON,
        Stage.CLOSE,
        Decimal("70.00"),
    )
    assert (opportunity.target_plan, opportunity.version) == (plan("Pro"), 2)
    closed = OpportunityEvent.objects.get(opportunity=opportunity)
    assert (closed.kind, closed.actor, closed.from_stage, closed.to_stage) == ("closed", None, "present", "close")
    assert closed.message.startswith("Closed as won by the billing system (API)")


def test_an_upgrade_older_than_the_opportunity_leaves_it_open(client, token, account):
    opportunity = OpportunityFactory(account=account, identified_at=timezone.now())

    post_json(client, URL, {"changes": [change(account, "2026-01-01", 99, "Pro")]}, token=token)

    opportunity.refresh_from_db()
    assert opportunity.outcome == Outcome.OPEN
    assert not Opportunity.objects.filter(outcome=Outcome.WON).exists()


def test_a_full_batch_takes_a_fixed_number_of_queries(client, token, django_assert_max_num_queries):
    accounts = AccountFactory.create_batch(250)
    days = ["2026-07-01", "2026-08-01", "2026-09-01", "2026-10-01"]
    body = {"changes": [change(a, day, 29 + 10 * i, "Pro") for a in accounts for i, day in enumerate(days)]}
    post_json(client, URL, {"changes": []}, token=token)

    # token, savepoint, accounts, plans, accounts locked, movements, known refs, insert, update, the upgraded
    # accounts' live play sequences (none to stop), release
    with django_assert_max_num_queries(11):
        response = post_json(client, URL, body, token=token)

    assert response.json() == {"created": 750, "updated": 250, "duplicates": 0}
