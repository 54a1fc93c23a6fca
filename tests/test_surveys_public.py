"""The public survey page /s/<token>/: a customer answers an emailed survey link without signing in."""

import datetime as dt
import time

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from accounts.models import AuditEntry, Notification
from playbooks.models import FeedbackRequest, Survey, SurveyResponse
from playbooks.surveys import LINK_MAX_AGE, QuestionSpec, survey_link_path, survey_save

WRITES = ("INSERT", "UPDATE", "DELETE", "REPLACE")


@pytest.fixture
def churn_survey(admin_user):
    return survey_save(
        survey=Survey(),
        data={"name": "Why the change?", "purpose": "churn_feedback", "channel": "email", "intro": "Tell us."},
        questions=[
            QuestionSpec("Which plan suits you now?", "choice", ("Basic", "None")),
            QuestionSpec("What could we have done better?"),
        ],
        by=admin_user,
        at=timezone.now(),
    )


@pytest.fixture
def feedback_request(churn_survey, account):
    return FeedbackRequest.objects.create(survey=churn_survey, account=account, created_at=timezone.now())


@pytest.fixture
def link(feedback_request):
    return survey_link_path(
        account_id=feedback_request.account_id,
        survey_id=feedback_request.survey_id,
        request_id=feedback_request.pk,
    )


@pytest.fixture
def customer():
    """Someone from the customer's company: no session, and CSRF checked as a browser would be."""
    return Client(enforce_csrf_checks=True)


def fetch(customer, link):
    """GET the page (which sets the CSRF cookie) and return it with the token to post back."""
    response = customer.get(link)
    return response, customer.cookies["csrftoken"].value


def test_the_page_shows_the_questions_and_the_reasons_and_writes_nothing(customer, link, account):
    with CaptureQueriesContext(connection) as queries:
        response = customer.get(link)

    page = response.content.decode()
    assert response.status_code == 200
    assert "Why the change?" in page and f"For {account.name}" in page and "Tell us." in page
    assert "Which plan suits you now?" in page and "What could we have done better?" in page
    assert "Too expensive" in page and 'name="reason"' in page
    assert 'name="csrfmiddlewaretoken"' in page
    assert [q["sql"] for q in queries.captured_queries if q["sql"].lstrip().upper().startswith(WRITES)] == []
    assert not SurveyResponse.objects.exists()


def test_an_answer_is_stored_as_the_accounts_fulfils_the_request_and_the_page_then_thanks(
    customer, link, account, feedback_request
):
    _, csrf = fetch(customer, link)

    response = customer.post(
        link,
        {"csrfmiddlewaretoken": csrf, "reason": "price", "q1": "Basic", "q2": "Seats cost too much for us."},
    )

    assert response.status_code == 303 and response["Location"] == link
    stored = SurveyResponse.objects.get()
    assert (stored.account, stored.contact_ref, stored.reason, stored.request) == (
        account,
        "",
        "price",
        feedback_request,
    )
    assert stored.answers == {"1": "Basic", "2": "Seats cost too much for us."}
    feedback_request.refresh_from_db()
    assert feedback_request.answered_at == stored.submitted_at
    assert Notification.objects.filter(recipient=account.owner, kind=Notification.Kind.FEEDBACK).count() == 1
    thanks = customer.get(link).content.decode()
    assert "Thank you: we have your answer" in thanks and 'name="reason"' not in thanks


def test_posting_again_stores_nothing_more(customer, link):
    _, csrf = fetch(customer, link)
    body = {"csrfmiddlewaretoken": csrf, "reason": "price", "q1": "Basic"}
    customer.post(link, body)

    again = customer.post(link, body | {"reason": "support"})

    assert again.status_code == 303
    assert list(SurveyResponse.objects.values_list("reason", flat=True)) == ["price"]


@pytest.mark.parametrize(
    ("body", "field", "message"),
    [
        ({"q1": "Basic"}, "reason", "Required"),
        ({"reason": "mood", "q1": "Basic"}, "reason", "Not one of"),
        ({"reason": "price"}, "q1", "Required"),
        ({"reason": "price", "q1": "Platinum"}, "q1", "Not one of the choices"),
        ({"reason": "price", "q1": "Basic", "q2": "x" * 2001}, "q2", "Too long"),
    ],
)
def test_a_bad_answer_comes_back_with_the_error_by_its_question_and_stores_nothing(
    customer, link, feedback_request, body, field, message
):
    _, csrf = fetch(customer, link)

    response = customer.post(link, {"csrfmiddlewaretoken": csrf, **body})

    assert response.status_code == 422
    assert any(message in error for error in response.context["form"].errors[field])
    assert not SurveyResponse.objects.exists()
    feedback_request.refresh_from_db()
    assert feedback_request.answered_at is None


def test_a_post_without_the_csrf_token_is_refused(customer, link):
    customer.get(link)

    response = customer.post(link, {"reason": "price", "q1": "Basic"})

    assert response.status_code == 403
    assert not SurveyResponse.objects.exists()


@pytest.mark.parametrize(
    "token",
    ["garbage", "1-1-0:abc:def", "1-1-0", "::", "%00", "a" * 500],
)
def test_a_forged_or_malformed_link_is_a_404_never_an_error_page(customer, link, token):
    assert customer.get(f"/s/{token}/").status_code == 404
    assert Client().post(f"/s/{token}/", {"reason": "price"}).status_code == 404
    assert not SurveyResponse.objects.exists()


def test_a_link_altered_to_name_another_account_is_a_404(customer, link, feedback_request):
    payload, stamp, signature = link.removeprefix("/s/").removesuffix("/").split(":")
    forged = f"/s/{int(payload.split('-')[0]) + 1}-{payload.split('-', 1)[1]}:{stamp}:{signature}/"

    assert customer.get(forged).status_code == 404


def test_an_expired_link_is_a_404(customer, link, monkeypatch):
    later = time.time() + LINK_MAX_AGE.total_seconds() + 60
    monkeypatch.setattr("django.core.signing.time.time", lambda: later)

    assert customer.get(link).status_code == 404


def test_a_link_to_a_survey_switched_off_says_it_is_closed_and_refuses_answers(customer, link, churn_survey):
    _, csrf = fetch(customer, link)
    Survey.objects.filter(pk=churn_survey.pk).update(active=False)

    page = customer.get(link)
    post = customer.post(link, {"csrfmiddlewaretoken": csrf, "reason": "price", "q1": "Basic"})

    assert page.status_code == 410 and "This survey is closed" in page.content.decode()
    assert post.status_code == 410
    assert not SurveyResponse.objects.exists()


def test_the_page_answered_through_the_api_by_a_user_still_asks_the_account(customer, churn_survey, account):
    """A link without a request is the account's own answer (contact blank): a user's answer does not count."""
    SurveyResponse.objects.create(
        survey=churn_survey, account=account, contact_ref="u-1", reason="price", answers={}, submitted_at=timezone.now()
    )
    link = survey_link_path(account_id=account.pk, survey_id=churn_survey.pk)

    assert 'name="reason"' in customer.get(link).content.decode()


def test_the_default_churn_survey_is_created_once_and_audited_as_made_by_the_system(db):
    from playbooks.surveys import DEFAULT_CHURN_SURVEY, churn_feedback_survey

    first = churn_feedback_survey(at=timezone.now())
    second = churn_feedback_survey(at=timezone.now() + dt.timedelta(minutes=1))

    assert first == second and first.name == DEFAULT_CHURN_SURVEY
    assert (first.purpose, first.channel, first.active) == ("churn_feedback", "email", True)
    assert first.questions.count() == 1
    entry = AuditEntry.objects.get(object_type="playbooks.Survey")
    assert (entry.action, entry.actor) == ("created", None)


def test_with_every_churn_survey_switched_off_nobody_is_asked(churn_survey):
    from playbooks.surveys import churn_feedback_survey

    Survey.objects.filter(pk=churn_survey.pk).update(active=False)

    assert churn_feedback_survey(at=timezone.now()) is None
    assert Survey.objects.count() == 1
