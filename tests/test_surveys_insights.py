"""Insights > Surveys: each survey's answers in the period, per question (choice counts and shares, the latest
free-text answers), for the accounts of the chosen slice."""

import csv
import datetime as dt
import io

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from playbooks.models import Rule, Survey, SurveyResponse
from playbooks.survey_selectors import RECENT_TEXTS, survey_summaries
from playbooks.surveys import QuestionSpec, survey_save
from tests.factories import AccountFactory, metric


@pytest.fixture
def survey(admin_user):
    rule = Rule.objects.create(name="Seats at 90%", metric=metric("seats"), min_utilization=0.9, weight=40)
    return survey_save(
        survey=Survey(),
        data={"name": "What comes next?", "rule": rule},
        questions=[
            QuestionSpec("What will you need most?", "choice", ("More seats", "More storage", "Nothing")),
            QuestionSpec("Anything else?"),
        ],
        by=admin_user,
        at=timezone.now(),
    )


def answered(survey, account, answers, *, days_ago=1, contact="u-1"):
    return SurveyResponse.objects.create(
        survey=survey,
        account=account,
        contact_ref=contact,
        answers=answers,
        submitted_at=timezone.now() - dt.timedelta(days=days_ago),
    )


def period():
    today = timezone.localdate()
    return {"start": today - dt.timedelta(days=30), "end": today}


def test_choices_are_counted_with_their_share_of_the_question_s_answers(survey, csm):
    for choice in ("More seats", "More seats", "More seats", "More storage"):
        answered(survey, AccountFactory(owner=csm), {"1": choice})
    answered(survey, AccountFactory(owner=csm), {"2": "Only text"})  # the choice question left out (older data)
    answered(survey, AccountFactory(owner=csm), {"1": "More seats"}, days_ago=60)  # before the period

    [summary] = survey_summaries(**period())

    choice, text = summary.questions
    assert summary.responses == 5
    assert choice.answered == 4
    assert [(c.choice, c.count, str(c.share)) for c in choice.choices] == [
        ("More seats", 3, "75.0"),
        ("More storage", 1, "25.0"),
        ("Nothing", 0, "0.0"),
    ]
    assert (text.answered, [t.text for t in text.texts]) == (1, ["Only text"])


def test_an_answer_to_a_choice_removed_since_is_still_counted_and_marked(survey, csm, admin_user):
    answered(survey, AccountFactory(owner=csm), {"1": "Nothing"})
    survey_save(
        survey=survey,
        data={},
        questions=[QuestionSpec("What will you need most?", "choice", ("More seats", "More storage"))],
        by=admin_user,
        at=timezone.now(),
    )

    [summary] = survey_summaries(**period())

    assert [(c.choice, c.count, c.current) for c in summary.questions[0].choices] == [
        ("More seats", 0, True),
        ("More storage", 0, True),
        ("Nothing", 1, False),
    ]


def test_only_the_latest_free_text_answers_are_listed_newest_first(survey, csm):
    account = AccountFactory(owner=csm)
    for day in range(RECENT_TEXTS + 3):
        answered(survey, account, {"1": "Nothing", "2": f"Note from {day} days ago"}, days_ago=day, contact=f"u-{day}")

    [summary] = survey_summaries(**period())

    text = summary.questions[1]
    assert text.answered == RECENT_TEXTS + 3
    assert [t.text for t in text.texts] == [f"Note from {day} days ago" for day in range(RECENT_TEXTS)]


def test_the_page_filters_by_the_accounts_owner(manager_client, survey, csm, other_csm):
    answered(survey, AccountFactory(owner=csm), {"1": "More seats", "2": "Casey's customer"})
    answered(survey, AccountFactory(owner=other_csm), {"1": "More storage", "2": "Olive's customer"})

    page = manager_client.get(reverse("insights:surveys"), {"csm": csm.pk}).content.decode()

    assert 'data-choice-count="More seats">1<' in page and 'data-choice-count="More storage">0<' in page
    assert "Casey&#x27;s customer" in page
    assert "Olive&#x27;s customer" not in page


def test_the_choices_download_as_csv(manager_client, survey, csm):
    answered(survey, AccountFactory(owner=csm), {"1": "More seats"})

    response = manager_client.get(reverse("insights:surveys"), {"export": "choices"})

    rows = list(csv.reader(io.StringIO(b"".join(response.streaming_content).decode("utf-8-sig"))))
    assert rows[0] == ["survey", "question", "position", "choice", "count", "share_percent", "current_choice"]
    assert ["What comes next?", "What will you need most?", "1", "More seats", "1", "100.0", "yes"] in rows


def test_without_a_survey_the_page_says_where_to_create_one(manager_client):
    page = manager_client.get(reverse("insights:surveys")).content.decode()

    assert "No survey yet" in page


def test_a_csm_is_refused(csm_client):
    assert csm_client.get(reverse("insights:surveys")).status_code == 403


def test_the_page_takes_the_same_queries_for_5_or_50_accounts(manager_client, survey, csm, other_csm):
    def answers_from(n):
        for i in range(n):
            owner = csm if i % 2 else other_csm
            answered(survey, AccountFactory(owner=owner), {"1": "More seats", "2": f"Text {i}"}, contact=f"u-{i}")

    answers_from(5)
    manager_client.get(reverse("insights:surveys"))
    with CaptureQueriesContext(connection) as few:
        manager_client.get(reverse("insights:surveys"))
    answers_from(45)

    with CaptureQueriesContext(connection) as many:
        page = manager_client.get(reverse("insights:surveys")).content.decode()

    assert len(many.captured_queries) == len(few.captured_queries)
    assert 'data-choice-count="More seats">50<' in page
