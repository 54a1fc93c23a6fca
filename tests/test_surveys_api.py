"""In-app surveys: listed next to the prompts (GET /api/v1/accounts/{external_id}/prompts) to the accounts
asked, answered with POST /api/v1/surveys/{id}/responses, then shown in the account's timeline and summed up
on the insights surveys tab."""

import datetime as dt
import json

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from accounts.models import Account, AccountIndicator, Notification
from accounts.tokens import api_token_create
from playbooks.models import FeedbackRequest, Rule, Survey, SurveyResponse
from playbooks.surveys import QuestionSpec, survey_offer_id, survey_save
from tests.api_helpers import pointers, post_json
from tests.factories import AccountFactory, metric

WRITES = ("INSERT", "UPDATE", "DELETE", "REPLACE")


@pytest.fixture
def token(db):
    return api_token_create(name="product")[1]


@pytest.fixture
def seats_rule(db):
    return Rule.objects.create(name="Seats at 90%", metric=metric("seats"), min_utilization=0.9, weight=40)


@pytest.fixture
def needs_survey(seats_rule, admin_user):
    """Asked of the accounts at 90% of their seats: what they will need (a choice) and anything else (text)."""
    return survey_save(
        survey=Survey(),
        data={"name": "What comes next?", "rule": seats_rule, "intro": "Two quick questions."},
        questions=[
            QuestionSpec("What will you need most next quarter?", "choice", ("More seats", "More storage")),
            QuestionSpec("Anything else we should know?"),
        ],
        by=admin_user,
        at=timezone.now(),
    )


def seats_at(account, utilization: float):
    AccountIndicator.objects.update_or_create(
        account=account,
        metric=metric("seats"),
        defaults={
            "as_of": timezone.localdate(),
            "latest": utilization * 5,
            "limit": 5,
            "utilization": utilization,
            "refreshed_at": timezone.now(),
        },
    )


@pytest.fixture
def near_limit(account):
    seats_at(account, 0.96)
    return account


def surveys_of(client, account, token) -> list[dict]:
    response = client.get(
        f"/api/v1/accounts/{account.external_id}/prompts", headers={"Authorization": f"Bearer {token}"}
    )
    assert response.status_code == 200
    return response.json()["surveys"]


def answer(client, survey_id, body, token, **headers):
    return post_json(client, f"/api/v1/surveys/{survey_id}/responses", body, token=token, **headers)


GOOD = {"1": "More seats", "2": "We are hiring ten people in March."}


# --- Who is asked ------------------------------------------------------------------------------------------


def test_an_account_its_rule_fires_on_is_offered_the_survey_with_its_questions_and_choices(
    client, token, needs_survey, near_limit
):
    [survey] = surveys_of(client, near_limit, token)

    assert survey == {
        "id": survey_offer_id(account_id=near_limit.pk, survey_id=needs_survey.pk),
        "name": "What comes next?",
        "purpose": "needs",
        "intro": "Two quick questions.",
        "questions": [
            {
                "position": 1,
                "text": "What will you need most next quarter?",
                "kind": "choice",
                "choices": ["More seats", "More storage"],
                "required": True,
            },
            {"position": 2, "text": "Anything else we should know?", "kind": "text", "choices": [], "required": False},
        ],
        "reasons": [],
    }


def test_an_account_the_rule_does_not_fire_on_is_not_asked(client, token, needs_survey, account):
    seats_at(account, 0.5)

    assert surveys_of(client, account, token) == []


def test_an_email_link_survey_or_a_switched_off_one_is_not_listed_in_the_product(
    client, token, needs_survey, near_limit
):
    Survey.objects.filter(pk=needs_survey.pk).update(channel=Survey.Channel.EMAIL)
    assert surveys_of(client, near_limit, token) == []

    Survey.objects.filter(pk=needs_survey.pk).update(channel=Survey.Channel.PROMPT, active=False)
    assert surveys_of(client, near_limit, token) == []


def test_once_someone_at_the_account_answered_it_is_not_asked_again(client, token, needs_survey, near_limit):
    [survey] = surveys_of(client, near_limit, token)
    answer(client, survey["id"], {"account": near_limit.external_id, "contact": "u-1", "answers": GOOD}, token)

    assert surveys_of(client, near_limit, token) == []


def test_a_churned_account_is_not_asked_about_its_upcoming_needs(client, token, needs_survey, near_limit):
    Account.objects.filter(pk=near_limit.pk).update(status=Account.Status.CHURNED)

    assert surveys_of(client, near_limit, token) == []


def test_an_open_feedback_request_on_an_in_app_survey_offers_it_with_the_reasons(client, token, account, admin_user):
    churn = survey_save(
        survey=Survey(),
        data={"name": "Why the change?", "purpose": "churn_feedback", "channel": "prompt"},
        questions=[QuestionSpec("What could we have done better?")],
        by=admin_user,
        at=timezone.now(),
    )
    FeedbackRequest.objects.create(survey=churn, account=account, created_at=timezone.now())

    [survey] = surveys_of(client, account, token)

    assert (survey["name"], survey["purpose"]) == ("Why the change?", "churn_feedback")
    assert {"key": "price", "label": "Too expensive"} in survey["reasons"]
    assert len(survey["reasons"]) == len(SurveyResponse.Reason.values)


def test_reading_the_surveys_writes_nothing_and_takes_the_same_queries_for_one_or_five_surveys(
    client, token, needs_survey, near_limit, seats_rule, admin_user
):
    surveys_of(client, near_limit, token)  # the token's last use is stamped on its first request
    with CaptureQueriesContext(connection) as one:
        assert len(surveys_of(client, near_limit, token)) == 1
    for n in range(4):
        survey_save(
            survey=Survey(),
            data={"name": f"Needs {n}", "rule": seats_rule},
            questions=[QuestionSpec("Which?", "choice", ("A", "B")), QuestionSpec("Why?")],
            by=admin_user,
            at=timezone.now(),
        )
    with CaptureQueriesContext(connection) as five:
        assert len(surveys_of(client, near_limit, token)) == 5

    assert len(five.captured_queries) == len(one.captured_queries)
    assert [q["sql"] for q in five.captured_queries if q["sql"].lstrip().upper().startswith(WRITES)] == []


# --- Answering ---------------------------------------------------------------------------------------------


def test_an_answer_is_stored_shown_in_the_timeline_and_summed_up_on_the_surveys_tab(
    client, token, needs_survey, near_limit, manager
):
    [survey] = surveys_of(client, near_limit, token)

    response = answer(
        client, survey["id"], {"account": near_limit.external_id, "contact": "u-1", "answers": GOOD}, token
    )

    assert response.status_code == 201
    body = response.json()
    stored = SurveyResponse.objects.get()
    assert body == {
        "id": stored.pk,
        "survey": "What comes next?",
        "account": near_limit.external_id,
        "contact": "u-1",
        "reason": None,
        "answers": GOOD,
        "submitted_at": body["submitted_at"],
    }
    assert (stored.account, stored.contact_ref, stored.answers, stored.request) == (near_limit, "u-1", GOOD, None)
    # The CSM hears of it.
    assert Notification.objects.get(recipient=near_limit.owner).kind == Notification.Kind.FEEDBACK

    client.force_login(manager)
    page = client.get(reverse("opportunities:timeline", args=[near_limit.pk])).content.decode()
    assert "Survey answered: What comes next? by u-1" in page
    assert "What will you need most next quarter? — More seats" in page
    summary = client.get(reverse("insights:surveys")).content.decode()
    assert 'data-choice-count="More seats">1<' in summary
    assert 'data-choice-share="More seats">100.0%<' in summary
    assert "We are hiring ten people in March." in summary


def test_a_choice_is_matched_ignoring_case_and_stored_as_the_survey_spells_it(client, token, needs_survey, near_limit):
    survey_id = survey_offer_id(account_id=near_limit.pk, survey_id=needs_survey.pk)

    answer(
        client,
        survey_id,
        {"account": near_limit.external_id, "contact": "u-1", "answers": {"1": " more SEATS "}},
        token,
    )

    assert SurveyResponse.objects.get().answers == {"1": "More seats"}


def test_the_same_answer_again_from_the_same_contact_is_stored_once(client, token, needs_survey, near_limit):
    survey_id = survey_offer_id(account_id=near_limit.pk, survey_id=needs_survey.pk)
    body = {"account": near_limit.external_id, "contact": "u-1", "answers": GOOD}
    first = answer(client, survey_id, body, token)

    again = answer(client, survey_id, body, token)

    assert (first.status_code, again.status_code) == (201, 200)
    assert again.json()["id"] == first.json()["id"]
    assert SurveyResponse.objects.count() == 1


def test_a_different_answer_from_the_same_contact_is_a_conflict_and_another_contact_answers_too(
    client, token, needs_survey, near_limit
):
    survey_id = survey_offer_id(account_id=near_limit.pk, survey_id=needs_survey.pk)
    answer(client, survey_id, {"account": near_limit.external_id, "contact": "u-1", "answers": GOOD}, token)

    changed = answer(
        client,
        survey_id,
        {"account": near_limit.external_id, "contact": "u-1", "answers": {"1": "More storage"}},
        token,
    )
    colleague = answer(
        client,
        survey_id,
        {"account": near_limit.external_id, "contact": "u-2", "answers": {"1": "More storage"}},
        token,
    )

    assert changed.status_code == 409
    assert colleague.status_code == 201
    assert sorted((r.contact_ref, r.answers["1"]) for r in SurveyResponse.objects.all()) == [
        ("u-1", "More seats"),
        ("u-2", "More storage"),
    ]


def test_an_idempotency_key_replays_the_first_answer(client, token, needs_survey, near_limit):
    survey_id = survey_offer_id(account_id=near_limit.pk, survey_id=needs_survey.pk)
    body = {"account": near_limit.external_id, "contact": "u-1", "answers": GOOD}
    first = answer(client, survey_id, body, token, **{"Idempotency-Key": "k-1"})

    replay = answer(client, survey_id, body, token, **{"Idempotency-Key": "k-1"})

    assert (first.status_code, replay.status_code) == (201, 201)
    assert replay["Idempotent-Replayed"] == "true" and replay.content == first.content
    assert SurveyResponse.objects.count() == 1


LONG = "x" * 2001


@pytest.mark.parametrize(
    ("answers", "extra", "pointer"),
    [
        ({"1": "More coffee"}, {}, "/answers/1"),  # not one of the choices
        ({"2": "Only the text"}, {}, "/answers/1"),  # the choice question left out
        ({"1": ""}, {}, "/answers/1"),  # ... or blank
        ({"1": "More seats", "2": LONG}, {}, "/answers/2"),  # text too long
        ({"1": "More seats", "4": "?"}, {}, "/answers/4"),  # no such question
        ({"1": 3}, {}, "/answers/1"),  # not a string
        (GOOD, {"reason": "price"}, "/reason"),  # a needs survey asks for no reason
        (GOOD, {"contact": ""}, "/contact"),
        (GOOD, {"contact": "c" * 201}, "/contact"),
        (GOOD, {"colour": "blue"}, "/colour"),
    ],
)
def test_a_bad_answer_is_refused_naming_the_field_and_stores_nothing(
    client, token, needs_survey, near_limit, answers, extra, pointer
):
    survey_id = survey_offer_id(account_id=near_limit.pk, survey_id=needs_survey.pk)
    body = {"account": near_limit.external_id, "contact": "u-1", "answers": answers, **extra}

    response = answer(client, survey_id, body, token)

    assert response.status_code == 422, response.content
    assert pointer in pointers(response)
    assert not SurveyResponse.objects.exists() and not Notification.objects.exists()


def test_a_survey_offered_to_another_account_is_refused_on_the_account(client, token, needs_survey, near_limit):
    other = AccountFactory(owner=near_limit.owner)
    survey_id = survey_offer_id(account_id=other.pk, survey_id=needs_survey.pk)

    response = answer(client, survey_id, {"account": near_limit.external_id, "contact": "u-1", "answers": GOOD}, token)

    assert response.status_code == 422 and pointers(response) == ["/account"]
    assert not SurveyResponse.objects.exists()


def test_a_survey_switched_off_since_refuses_answers(client, token, needs_survey, near_limit):
    survey_id = survey_offer_id(account_id=near_limit.pk, survey_id=needs_survey.pk)
    Survey.objects.filter(pk=needs_survey.pk).update(active=False)

    response = answer(client, survey_id, {"account": near_limit.external_id, "contact": "u-1", "answers": GOOD}, token)

    assert response.status_code == 422 and pointers(response) == ["/account"]
    assert "closed" in response.json()["errors"][0]["message"]
    assert not SurveyResponse.objects.exists()


@pytest.mark.parametrize("survey_id", ["1-1", "1-1:forged", "not-an-id", "1-1:" + "A" * 300])
def test_an_id_not_issued_here_is_a_404(client, token, needs_survey, near_limit, survey_id):
    response = answer(client, survey_id, {"account": near_limit.external_id, "contact": "u-1", "answers": GOOD}, token)

    assert response.status_code == 404
    assert not SurveyResponse.objects.exists()


def test_a_churn_feedback_answer_carries_a_reason_and_fulfils_the_open_request(client, token, account, admin_user):
    churn = survey_save(
        survey=Survey(),
        data={"name": "Why the change?", "purpose": "churn_feedback", "channel": "prompt"},
        questions=[QuestionSpec("What could we have done better?")],
        by=admin_user,
        at=timezone.now(),
    )
    request = FeedbackRequest.objects.create(
        survey=churn, account=account, created_at=timezone.now() - dt.timedelta(days=1)
    )
    [survey] = surveys_of(client, account, token)
    without_reason = answer(
        client, survey["id"], {"account": account.external_id, "contact": "u-1", "answers": {"1": "Cheaper"}}, token
    )
    unknown_reason = answer(
        client, survey["id"], {"account": account.external_id, "contact": "u-1", "reason": "mood"}, token
    )

    response = answer(
        client,
        survey["id"],
        {"account": account.external_id, "contact": "u-1", "reason": "price", "answers": {"1": "Cheaper seats"}},
        token,
    )

    assert (without_reason.status_code, pointers(without_reason)) == (422, ["/reason"])
    assert (unknown_reason.status_code, pointers(unknown_reason)) == (422, ["/reason"])
    assert response.status_code == 201 and response.json()["reason"] == "price"
    stored = SurveyResponse.objects.get()
    assert (stored.reason, stored.answers, stored.request) == ("price", {"1": "Cheaper seats"}, request)
    request.refresh_from_db()
    assert request.answered_at == stored.submitted_at
    assert surveys_of(client, account, token) == []  # the request is answered: no longer asked


def test_an_unknown_account_is_refused_on_the_account(client, token, needs_survey, near_limit):
    survey_id = survey_offer_id(account_id=near_limit.pk, survey_id=needs_survey.pk)

    response = answer(client, survey_id, {"account": "nobody", "contact": "u-1", "answers": GOOD}, token)

    assert response.status_code == 422 and pointers(response) == ["/account"]


def test_a_session_does_not_answer_for_the_product(client, csm, needs_survey, near_limit):
    client.force_login(csm)
    survey_id = survey_offer_id(account_id=near_limit.pk, survey_id=needs_survey.pk)

    response = client.post(
        f"/api/v1/surveys/{survey_id}/responses",
        json.dumps({"account": near_limit.external_id, "contact": "u-1", "answers": GOOD}),
        content_type="application/json",
    )

    assert response.status_code == 401
    assert not SurveyResponse.objects.exists()
