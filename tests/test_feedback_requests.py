"""Downgrade and churn feedback: a contraction or churn recorded by billing (the subscriptions API, the Stripe
webhook, a CSV import) asks the account why, once per movement: a feedback request, a task for its CSM due in
two days, and a notification."""

import datetime as dt
import json
from decimal import Decimal
from pathlib import Path

import pytest
from django.conf import settings
from django.utils import timezone

from accounts.imports import import_job_create, import_job_run, upload_check
from accounts.models import Account, MrrMovement, Notification, Task
from accounts.tokens import api_token_create
from playbooks.feedback import FEEDBACK_WINDOW_DAYS
from playbooks.models import FeedbackRequest, Survey, SurveyResponse
from playbooks.surveys import DEFAULT_CHURN_SURVEY, QuestionSpec, survey_link_ref, survey_save
from tests.api_helpers import post_json
from tests.factories import AccountFactory, plan
from tests.test_stripe_webhook import CUSTOMER, SECRET, deliver, event

FIXTURE = Path(__file__).resolve().parents[2] / "shared" / "fixtures" / "stripe" / "subscription.json"


@pytest.fixture
def token(db):
    return api_token_create(name="billing export")[1]


@pytest.fixture
def pro_account(csm):
    """Acme on Pro at $99 a month, owned by Casey."""
    return AccountFactory(owner=csm, name="Acme Analytics", plan=plan("Pro"), mrr=Decimal("99.00"))


def subscriptions(client, token, account, mrr, plan_name=None, day=None):
    item = {"account": account.external_id, "date": (day or timezone.localdate()).isoformat(), "mrr": mrr}
    if plan_name:
        item["plan"] = plan_name
    return post_json(client, "/api/v1/subscriptions", {"changes": [item]}, token=token)


def asked(account) -> tuple[int, int, int]:
    """(feedback requests, feedback tasks, feedback notifications) of the account."""
    return (
        FeedbackRequest.objects.filter(account=account).count(),
        Task.objects.filter(account=account, source=Task.Source.FEEDBACK).count(),
        Notification.objects.filter(account=account, kind=Notification.Kind.FEEDBACK).count(),
    )


def test_a_downgrade_through_the_api_asks_the_account_why_and_gives_its_csm_a_task(client, token, pro_account, csm):
    response = subscriptions(client, token, pro_account, 29, "Basic")

    assert response.json()["created"] == 1
    movement = MrrMovement.objects.get(account=pro_account)
    request = FeedbackRequest.objects.get()
    assert (request.account, request.movement, request.answered_at) == (pro_account, movement, None)
    assert (request.survey.name, request.survey.purpose) == (DEFAULT_CHURN_SURVEY, "churn_feedback")
    task = request.task
    assert (task.assignee, task.source, task.status, task.created_by) == (csm, "feedback", "open", None)
    assert task.due_on == timezone.localdate() + dt.timedelta(days=2)
    assert task.title == "Ask Acme Analytics why they downgraded"
    assert "MRR 99.00 → 29.00 USD" in task.detail and "(Pro → Basic)" in task.detail
    # The default survey is an email link: the task carries the link to send, naming this request.
    link = task.detail.split("Send them this link: ")[1].strip()
    assert link.startswith(f"{settings.APP_URL}/s/")
    ref = survey_link_ref(link.removeprefix(f"{settings.APP_URL}/s/").removesuffix("/"))
    assert (ref.account_id, ref.survey_id, ref.request_id) == (pro_account.pk, request.survey_id, request.pk)
    notification = Notification.objects.get(recipient=csm, kind=Notification.Kind.FEEDBACK)
    assert notification.title == "Acme Analytics downgraded: ask them why"
    assert notification.url == pro_account.get_absolute_url()


def test_a_churn_through_the_api_is_asked_why_they_left(client, token, pro_account):
    subscriptions(client, token, pro_account, 0)

    task = Task.objects.get(source=Task.Source.FEEDBACK)
    assert task.title == "Ask Acme Analytics why they left"
    assert FeedbackRequest.objects.get().movement.kind == "churn"


def test_the_same_change_sent_twice_asks_once(client, token, pro_account):
    subscriptions(client, token, pro_account, 29, "Basic")

    again = subscriptions(client, token, pro_account, 29, "Basic")

    assert again.json()["duplicates"] == 1
    assert asked(pro_account) == (1, 1, 1)


def test_an_upgrade_or_a_first_purchase_asks_nothing(client, token, pro_account):
    subscriptions(client, token, pro_account, 299, "Enterprise")
    prospect = AccountFactory(plan=None, mrr=0, first_purchase_on=None)
    subscriptions(client, token, prospect, 29, "Basic")

    assert not FeedbackRequest.objects.exists() and not Task.objects.exists()


def test_a_churn_long_ago_is_history_and_asks_nothing(client, token, pro_account):
    long_ago = timezone.localdate() - dt.timedelta(days=FEEDBACK_WINDOW_DAYS + 1)

    subscriptions(client, token, pro_account, 0, day=long_ago)

    assert MrrMovement.objects.get(account=pro_account).kind == "churn"
    assert asked(pro_account) == (0, 0, 0)


def test_an_account_without_a_csm_gets_the_request_but_nobody_a_task(client, token):
    orphan = AccountFactory(owner=None, plan=plan("Pro"), mrr=Decimal("99.00"))

    subscriptions(client, token, orphan, 29)

    assert asked(orphan) == (1, 0, 0)
    assert FeedbackRequest.objects.get().task is None


def test_the_active_churn_survey_is_used_and_nobody_is_asked_when_all_are_off(client, token, pro_account, admin_user):
    mine = survey_save(
        survey=Survey(),
        data={"name": "Tell us why", "purpose": "churn_feedback", "channel": "prompt"},
        questions=[QuestionSpec("What would bring you back?")],
        by=admin_user,
        at=timezone.now(),
    )
    subscriptions(client, token, pro_account, 49)
    assert FeedbackRequest.objects.get().survey == mine
    assert "shown to them in the product" in Task.objects.get().detail
    Survey.objects.filter(pk=mine.pk).update(active=False)

    subscriptions(client, token, pro_account, 29)

    assert FeedbackRequest.objects.count() == 1
    assert not Survey.objects.filter(name=DEFAULT_CHURN_SURVEY).exists()


def test_several_downgrades_in_one_batch_each_get_their_request(client, token, csm):
    accounts = [AccountFactory(owner=csm, plan=plan("Pro"), mrr=Decimal("99.00")) for _ in range(3)]
    today = timezone.localdate().isoformat()
    body = {"changes": [{"account": a.external_id, "date": today, "mrr": 29} for a in accounts]}

    post_json(client, "/api/v1/subscriptions", body, token=token)

    assert FeedbackRequest.objects.count() == 3
    assert Task.objects.filter(assignee=csm, source=Task.Source.FEEDBACK).count() == 3


# --- Through the Stripe webhook -----------------------------------------------------------------------------


@pytest.fixture
def stripe_secret(settings):
    settings.STRIPE_WEBHOOK_SECRET = SECRET


@pytest.fixture
def subscription() -> dict:
    return json.loads(FIXTURE.read_text())


@pytest.fixture
def stripe_customer(csm):
    """Acme on Pro at $99 a month, known to Stripe; the fixture's subscription is $20 a month."""
    return AccountFactory(
        owner=csm, name="Acme Analytics", plan=plan("Pro"), mrr=Decimal("99.00"), stripe_customer_id=CUSTOMER
    )


def test_a_downgrade_from_stripe_asks_once_even_when_the_event_comes_twice(
    client, stripe_secret, stripe_customer, subscription
):
    payload = event(subscription)

    first = deliver(client, payload)
    second = deliver(client, payload)

    assert first.json()["status"] == "applied" and second.json()["status"] == "duplicate"
    assert MrrMovement.objects.get(account=stripe_customer).kind == "contraction"
    assert asked(stripe_customer) == (1, 1, 1)


def test_a_cancelled_stripe_subscription_is_a_churn_asked_why(client, stripe_secret, stripe_customer, subscription):
    deliver(client, event(subscription, type="customer.subscription.deleted"))

    assert FeedbackRequest.objects.get(account=stripe_customer).movement.kind == "churn"
    assert Task.objects.get(account=stripe_customer).title == "Ask Acme Analytics why they left"


# --- Through a CSV import -----------------------------------------------------------------------------------


def test_a_churn_in_a_csv_import_asks_why(pro_account, manager):
    text = f"account,date,mrr\n{pro_account.external_id},{timezone.localdate().isoformat()},0\n"
    upload = upload_check(data=text.encode(), kind="subscriptions")
    job = import_job_create(
        kind="subscriptions", filename="billing.csv", upload=upload, all_or_nothing=True, by=manager, at=timezone.now()
    )

    import_job_run(job_id=job.pk, at=timezone.now())

    assert Account.objects.get(pk=pro_account.pk).status == "churned"
    assert asked(pro_account) == (1, 1, 1)


# --- The answer ---------------------------------------------------------------------------------------------


def test_the_answer_to_the_request_carries_the_reason_and_shows_in_the_feedback_insights(
    client, token, pro_account, manager
):
    subscriptions(client, token, pro_account, 0)
    link = Task.objects.get().detail.split("Send them this link: ")[1].strip().removeprefix(settings.APP_URL)
    page = client.get(link)
    client.post(link, {"reason": "competitor", "q1": "A cheaper tool does enough for us."})

    response = SurveyResponse.objects.get()
    assert (response.reason, response.answers, response.request) == (
        "competitor",
        {"1": "A cheaper tool does enough for us."},
        FeedbackRequest.objects.get(),
    )
    assert page.status_code == 200
    client.force_login(manager)
    insights = client.get("/insights/feedback/").content.decode()
    assert 'data-reason-count="Moved to a competitor">1<' in insights
    assert 'data-cell="plan/Pro/0">1 ' in insights  # the plan it left
