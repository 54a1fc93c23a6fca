"""Email-link surveys by rule: "What will you store next quarter?" is emailed once to the primary contact of
each account over 80% of its storage, with its link and the unsubscribe headers, within pitch fatigue, and the
answer given through the link fulfils the request. Casey owns Acme Analytics; Bea Buyer is Acme's primary
contact; Ada the admin wrote the survey; Morgan the manager reads the answers."""

import datetime as dt
import re
import smtplib
from unittest import mock
from urllib.parse import urlsplit

import pytest
from django.conf import settings
from django.core import mail
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from accounts.models import Account, AccountIndicator, Contact, EmailOptOut, Task
from playbooks import survey_delivery
from playbooks.models import FeedbackRequest, Rule, ScoringPolicy, Survey, SurveyResponse, Touch
from playbooks.selectors import touch_refusal
from playbooks.survey_delivery import survey_emails_send
from playbooks.surveys import QuestionSpec, survey_link_ref, survey_save
from playbooks.unsubscribe import unsubscribe_ref
from tests.factories import AccountFactory, metric

pytestmark = pytest.mark.django_db

AT = dt.datetime(2026, 11, 20, 9, 30, tzinfo=dt.UTC)
BUYER = "bea@acme.example"
LINK_RE = re.compile(r"https?://\S+/s/\S+/")


def storage_at(account, utilization: float) -> None:
    AccountIndicator.objects.update_or_create(
        account=account,
        metric=metric("storage_gb"),
        defaults={
            "as_of": AT.date(),
            "latest": utilization * 100,
            "limit": 100,
            "utilization": utilization,
            "refreshed_at": AT,
        },
    )


def make_survey(admin_user, *, name="What will you store next quarter?", channel="email", rule=None, **data):
    rule = rule or Rule.objects.create(
        name=f"{name}: storage over 80%", metric=metric("storage_gb"), min_utilization=0.8
    )
    return survey_save(
        survey=Survey(),
        data={"name": name, "channel": channel, "rule": rule, "intro": "Help us plan your room.", **data},
        questions=[
            QuestionSpec("What will you store most?", "choice", ("Video", "Backups")),
            QuestionSpec("Anything else?"),
        ],
        by=admin_user,
        at=AT,
    )


@pytest.fixture
def survey(admin_user):
    return make_survey(admin_user)


@pytest.fixture
def acme(account):
    """Acme Analytics, at 92% of its storage, with Bea Buyer as its primary contact."""
    Contact.objects.create(account=account, name="Bea Buyer", email=BUYER, is_primary=True)
    storage_at(account, 0.92)
    return account


def link_in(message) -> str:
    return LINK_RE.search(message.body)[0]


# --- Who gets it ------------------------------------------------------------------------------------------


def test_an_email_survey_reaches_the_primary_contact_of_an_account_its_rule_fires_on(survey, acme):
    report = survey_emails_send(at=AT)

    [message] = mail.outbox
    request = FeedbackRequest.objects.get()
    assert (report.sent, report.failed) == (1, 0)
    assert message.to == [BUYER] and message.subject == "What will you store next quarter?"
    assert message.reply_to == [acme.owner.email]
    assert message.body.startswith("Hi Bea,\n\nHelp us plan your room.\n\nTwo questions")
    url = link_in(message)
    assert url.startswith(settings.APP_URL.rstrip("/") + "/s/")
    ref = survey_link_ref(urlsplit(url).path.split("/")[2])
    assert (ref.account_id, ref.survey_id, ref.request_id) == (acme.pk, survey.pk, request.pk)
    unsubscribe = message.extra_headers["List-Unsubscribe"]
    assert unsubscribe.startswith("<" + settings.APP_URL.rstrip("/") + "/unsubscribe/")
    assert message.extra_headers["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert f"To receive no more of them: {unsubscribe[1:-1]}" in message.body
    assert unsubscribe_ref(unsubscribe[1:-1].rstrip("/").split("/")[-1]).email == BUYER
    assert message.extra_headers["Message-ID"] == f"<survey-request-{request.pk}@localhost>"
    assert (request.survey, request.account, request.movement, request.answered_at) == (survey, acme, None, None)
    touch = Touch.objects.get()
    assert (touch.account, touch.play, touch.kind, touch.detail, touch.occurred_at) == (
        acme,
        None,
        Touch.Kind.EMAIL,
        "Survey: What will you store next quarter?",
        AT,
    )


def test_an_account_the_rule_does_not_fire_on_is_not_emailed(survey, acme):
    storage_at(acme, 0.5)

    report = survey_emails_send(at=AT)

    assert (report.sent, len(mail.outbox), FeedbackRequest.objects.count()) == (0, 0, 0)


def test_a_churned_account_is_not_emailed(survey, acme):
    Account.objects.filter(pk=acme.pk).update(status=Account.Status.CHURNED)

    survey_emails_send(at=AT)

    assert (len(mail.outbox), FeedbackRequest.objects.count()) == (0, 0)


def test_an_address_that_opted_out_of_play_emails_is_not_emailed_whatever_its_case(survey, acme):
    Contact.objects.filter(account=acme).update(email="Bea@ACME.example")
    EmailOptOut.objects.create(email=BUYER, opted_out_at=AT - dt.timedelta(days=3))

    report = survey_emails_send(at=AT)

    assert (report.opted_out, len(mail.outbox), FeedbackRequest.objects.count(), Touch.objects.count()) == (1, 0, 0, 0)


def test_an_account_without_a_primary_contact_is_not_emailed(survey, acme):
    Contact.objects.filter(account=acme).update(is_primary=False)

    report = survey_emails_send(at=AT)

    assert (report.no_contact, len(mail.outbox), FeedbackRequest.objects.count()) == (1, 0, 0)


@pytest.mark.parametrize(
    "change",
    [{"channel": Survey.Channel.PROMPT}, {"active": False}, {"rule": None}, {"purpose": Survey.Purpose.CHURN_FEEDBACK}],
    ids=["in-app survey", "switched off", "no rule", "churn feedback"],
)
def test_only_an_active_upcoming_needs_email_survey_with_a_rule_is_sent(survey, acme, change):
    Survey.objects.filter(pk=survey.pk).update(**change)

    report = survey_emails_send(at=AT)

    assert (report.surveys, len(mail.outbox)) == (0, 0)


def test_a_switched_off_rule_emails_nobody(survey, acme):
    Rule.objects.filter(pk=survey.rule_id).update(enabled=False)

    survey_emails_send(at=AT)

    assert len(mail.outbox) == 0


# --- Once -------------------------------------------------------------------------------------------------


def test_the_next_days_run_does_not_email_the_account_again(survey, acme):
    survey_emails_send(at=AT)

    again = survey_emails_send(at=AT + dt.timedelta(days=1))

    assert (again.sent, again.asked_before) == (0, 1)
    assert (len(mail.outbox), FeedbackRequest.objects.count()) == (1, 1)


def test_an_account_asked_after_a_downgrade_already_is_not_emailed(survey, acme):
    FeedbackRequest.objects.create(survey=survey, account=acme, created_at=AT - dt.timedelta(days=40))

    survey_emails_send(at=AT)

    assert (len(mail.outbox), FeedbackRequest.objects.count()) == (0, 1)


def test_a_second_worker_that_chose_the_same_accounts_before_the_first_committed_sends_nothing(survey, acme):
    real_select = survey_delivery._select
    chosen = []

    def first_choice(*args, **kwargs):
        if not chosen:
            chosen.append(real_select(*args, **kwargs))
        return chosen[0]

    with mock.patch.object(survey_delivery, "_select", side_effect=first_choice):
        first = survey_emails_send(at=AT)
        second = survey_emails_send(at=AT)

    assert (first.sent, second.sent, second.asked_before) == (1, 0, 1)
    assert (len(mail.outbox), FeedbackRequest.objects.count(), Touch.objects.count()) == (1, 1, 1)


def test_a_failed_send_is_not_retried_and_the_csm_gets_the_link_to_send(survey, acme):
    with mock.patch(
        "django.core.mail.EmailMessage.send", side_effect=smtplib.SMTPServerDisconnected("connection lost")
    ):
        report = survey_emails_send(at=AT)

    request = FeedbackRequest.objects.select_related("task").get()
    assert (report.sent, report.failed) == (0, 1)
    assert not Touch.objects.exists()
    task = request.task
    assert (task.assignee, task.source, task.due_on) == (acme.owner, Task.Source.FEEDBACK, AT.date())
    assert "connection lost" in task.detail and "/s/" in task.detail
    retry = survey_emails_send(at=AT + dt.timedelta(days=1))
    assert (retry.sent, len(mail.outbox), FeedbackRequest.objects.count()) == (0, 0, 1)


# --- Pitch fatigue ----------------------------------------------------------------------------------------


def test_an_account_at_the_30_day_touch_cap_is_not_emailed(survey, acme):
    ScoringPolicy.objects.update_or_create(pk=1, defaults={"max_touches_per_30_days": 2})
    for days in (3, 20):
        Touch.objects.create(account=acme, kind=Touch.Kind.EMAIL, occurred_at=AT - dt.timedelta(days=days))

    report = survey_emails_send(at=AT)

    assert (report.fatigued, len(mail.outbox), FeedbackRequest.objects.count()) == (1, 0, 0)


def test_touches_older_than_30_days_do_not_hold_it_back(survey, acme):
    ScoringPolicy.objects.update_or_create(pk=1, defaults={"max_touches_per_30_days": 1})
    Touch.objects.create(account=acme, kind=Touch.Kind.EMAIL, occurred_at=AT - dt.timedelta(days=31))

    survey_emails_send(at=AT)

    assert len(mail.outbox) == 1


def test_the_survey_email_counts_as_a_touch_so_two_surveys_do_not_pass_a_cap_of_one_together(survey, acme, admin_user):
    ScoringPolicy.objects.update_or_create(pk=1, defaults={"max_touches_per_30_days": 1})
    make_survey(admin_user, name="How many people will join?")

    report = survey_emails_send(at=AT)

    assert (report.sent, report.fatigued, len(mail.outbox)) == (1, 1, 1)
    assert mail.outbox[0].subject == "What will you store next quarter?"
    assert touch_refusal(account=acme, play=None, now=AT) is not None


# --- The answer -------------------------------------------------------------------------------------------


def test_answering_through_the_link_fulfils_the_request_and_shows_in_the_summary(survey, acme, manager):
    survey_emails_send(at=AT)
    path = urlsplit(link_in(mail.outbox[0])).path
    customer = Client(enforce_csrf_checks=True)
    customer.get(path)

    response = customer.post(
        path,
        {"csrfmiddlewaretoken": customer.cookies["csrftoken"].value, "q1": "Video", "q2": "Our film archive."},
    )

    assert response.status_code == 303
    request = FeedbackRequest.objects.get()
    stored = SurveyResponse.objects.get()
    assert (stored.request, stored.account, stored.answers) == (request, acme, {"1": "Video", "2": "Our film archive."})
    assert request.answered_at == stored.submitted_at
    client = Client()
    client.force_login(manager)
    summary = client.get(reverse("insights:surveys")).content.decode()
    assert 'data-choice-count="Video">1<' in summary
    assert "Our film archive." in summary


# --- Celery and scale -------------------------------------------------------------------------------------


def test_the_daily_beat_sends_them_through_a_thin_task(survey, acme, eager_celery):
    from playbooks.tasks import send_survey_emails
    from upsell_crm.celery import app

    entry = app.conf.beat_schedule["send-survey-emails-daily"]

    send_survey_emails.delay()

    assert entry["task"] == "playbooks.send_survey_emails"
    assert [m.to for m in mail.outbox] == [[BUYER]]
    assert FeedbackRequest.objects.get().created_at <= timezone.now()


def _queries_for(accounts: int, admin_user) -> tuple[int, int]:
    make_survey(admin_user, name=f"Needs of {accounts}")
    for n in range(accounts):
        account = AccountFactory(name=f"Customer {accounts}-{n}")
        Contact.objects.create(account=account, email=f"buyer{n}@c{accounts}.example", is_primary=True)
        storage_at(account, 0.9)
    with CaptureQueriesContext(connection) as queries:
        report = survey_emails_send(at=AT)
    return len(queries), report.sent


def test_the_queries_do_not_grow_with_the_accounts_emailed(admin_user):
    few, few_sent = _queries_for(5, admin_user)
    Survey.objects.all().delete()
    Account.objects.all().delete()
    mail.outbox.clear()
    many, many_sent = _queries_for(50, admin_user)

    assert (few_sent, many_sent) == (5, 50)
    assert many == few


@pytest.mark.skipif(connection.vendor != "postgresql", reason="needs PostgreSQL's concurrent writers")
def test_two_workers_sending_at_once_email_each_account_once(committed_db, admin_user, csm):
    from tests.test_concurrency import run_together

    make_survey(admin_user)
    for n in range(8):
        account = AccountFactory(owner=csm)
        Contact.objects.create(account=account, email=f"buyer{n}@example.com", is_primary=True)
        storage_at(account, 0.9)

    results = run_together(lambda i: survey_emails_send(at=AT).sent, threads=2)

    assert [r for r in results if isinstance(r, Exception)] == []
    assert sum(results) == 8
    assert sorted(m.to[0] for m in mail.outbox) == sorted(f"buyer{n}@example.com" for n in range(8))
    assert (FeedbackRequest.objects.count(), Touch.objects.count()) == (8, 8)
