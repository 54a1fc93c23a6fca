"""Settings > Surveys: Ada lists, creates and edits surveys of one to three questions; every change is audited."""

import pytest
from django.urls import reverse
from django.utils import timezone

from accounts.models import AuditEntry
from playbooks.models import Rule, Survey, SurveyQuestion
from playbooks.surveys import QuestionSpec, survey_save
from tests.factories import metric


@pytest.fixture
def admin_client(client, admin_user):
    client.force_login(admin_user)
    return client


@pytest.fixture
def seats_rule(db):
    return Rule.objects.create(name="Seats at 90%", metric=metric("seats"), min_utilization=0.9, weight=40)


def survey_form(rule=None, questions=(), **fields) -> dict:
    """What the editor posts: the survey, then three question rows (the ones not given left blank)."""
    data = {
        "name": "What comes next?",
        "purpose": "needs",
        "channel": "prompt",
        "rule": rule.pk if rule else "",
        "intro": "Two questions about the next months.",
        "active": "on",
        "questions-TOTAL_FORMS": "3",
        "questions-INITIAL_FORMS": "0",
        "questions-MIN_NUM_FORMS": "3",
        "questions-MAX_NUM_FORMS": "3",
        **fields,
    }
    for i in range(3):
        text, kind, choices = questions[i] if i < len(questions) else ("", "text", "")
        data |= {f"questions-{i}-text": text, f"questions-{i}-kind": kind, f"questions-{i}-choices": choices}
    return data


TWO_QUESTIONS = [
    ("What will you need most next quarter?", "choice", "More seats\nMore storage\nMore integrations"),
    ("Anything else we should know?", "text", ""),
]


def test_ada_creates_a_survey_with_a_choice_and_a_free_text_question(admin_client, admin_user, seats_rule):
    response = admin_client.post(reverse("settings:survey_create"), survey_form(seats_rule, TWO_QUESTIONS))

    survey = Survey.objects.get()
    assert response.status_code == 302 and response["Location"] == reverse("settings:survey_edit", args=[survey.pk])
    assert (survey.name, survey.purpose, survey.channel, survey.rule, survey.active) == (
        "What comes next?",
        "needs",
        "prompt",
        seats_rule,
        True,
    )
    assert list(survey.questions.values_list("position", "kind", "text", "choices")) == [
        (1, "choice", "What will you need most next quarter?", ["More seats", "More storage", "More integrations"]),
        (2, "text", "Anything else we should know?", []),
    ]
    entry = AuditEntry.objects.get(object_type="playbooks.Survey")
    assert (entry.action, entry.actor, entry.before) == ("created", admin_user, None)
    assert [q["text"] for q in entry.after["questions"]] == [q[0] for q in TWO_QUESTIONS]


def test_a_blank_row_between_questions_is_skipped_and_positions_follow_the_filled_rows(admin_client, seats_rule):
    rows = [TWO_QUESTIONS[0], ("", "text", ""), ("Which plan would you move to?", "choice", "Pro\nEnterprise")]

    admin_client.post(reverse("settings:survey_create"), survey_form(seats_rule, rows))

    assert list(SurveyQuestion.objects.values_list("position", "text")) == [
        (1, "What will you need most next quarter?"),
        (2, "Which plan would you move to?"),
    ]


def test_editing_a_question_is_audited_with_the_questions_before_and_after(admin_client, admin_user, seats_rule):
    admin_client.post(reverse("settings:survey_create"), survey_form(seats_rule, TWO_QUESTIONS))
    survey = Survey.objects.get()
    changed = [(*TWO_QUESTIONS[0][:2], "More seats\nMore storage")]

    response = admin_client.post(reverse("settings:survey_edit", args=[survey.pk]), survey_form(seats_rule, changed))

    assert response.status_code == 302
    assert list(survey.questions.values_list("position", "choices")) == [(1, ["More seats", "More storage"])]
    entry = AuditEntry.objects.filter(action="updated").get()
    assert len(entry.before["questions"]) == 2 and len(entry.after["questions"]) == 1
    assert "name" not in entry.after  # only what changed is recorded


@pytest.mark.parametrize(
    ("fields", "rows", "field"),
    [
        ({}, [("Which one?", "choice", "Only option")], "questions-0-choices"),
        ({}, [("Which one?", "choice", "Same\nsame")], "questions-0-choices"),
        ({}, [("Tell us more", "text", "Stray choice")], "questions-0-choices"),
        ({}, [("", "choice", "A\nB")], "questions-0-text"),
        ({"rule": ""}, TWO_QUESTIONS, "rule"),
        ({"name": ""}, TWO_QUESTIONS, "name"),
        ({"purpose": "upsell"}, TWO_QUESTIONS, "purpose"),
        ({"channel": "sms"}, TWO_QUESTIONS, "channel"),
    ],
)
def test_bad_input_is_refused_next_to_its_field_and_stores_nothing(admin_client, seats_rule, fields, rows, field):
    data = survey_form(seats_rule, rows) | fields

    response = admin_client.post(reverse("settings:survey_create"), data)

    assert response.status_code == 422
    form_errors = response.context["form"].errors
    question_errors = {
        f"questions-{i}-{name}": errors
        for i, row in enumerate(response.context["questions"].errors)
        for name, errors in row.items()
    }
    assert field in form_errors or field in question_errors
    assert not Survey.objects.exists() and not AuditEntry.objects.exists()


def test_a_survey_without_any_question_is_refused(admin_client, seats_rule):
    response = admin_client.post(reverse("settings:survey_create"), survey_form(seats_rule, []))

    assert response.status_code == 422
    assert "Ask at least one question." in response.content.decode()
    assert not Survey.objects.exists()


def test_a_name_taken_in_another_case_is_refused(admin_client, seats_rule, admin_user):
    survey_save(
        survey=Survey(),
        data={"name": "Needs", "rule": seats_rule},
        questions=[QuestionSpec("Why?")],
        by=admin_user,
        at=timezone.now(),
    )

    response = admin_client.post(
        reverse("settings:survey_create"), survey_form(seats_rule, TWO_QUESTIONS, name="NEEDS")
    )

    assert response.status_code == 422
    assert response.context["form"].errors["name"] == ["Another survey has this name."]
    assert Survey.objects.count() == 1


def test_the_list_shows_each_survey_with_who_is_asked_in_a_fixed_number_of_queries(
    admin_client, admin_user, seats_rule, django_assert_max_num_queries
):
    for n in range(4):
        survey_save(
            survey=Survey(),
            data={"name": f"Needs {n}", "rule": seats_rule},
            questions=[QuestionSpec("Which?", "choice", ("A", "B")), QuestionSpec("Why?")],
            by=admin_user,
            at=timezone.now(),
        )
    survey_save(
        survey=Survey(),
        data={"name": "Why did you leave?", "purpose": "churn_feedback", "channel": "email"},
        questions=[QuestionSpec("What could we do better?")],
        by=admin_user,
        at=timezone.now(),
    )

    with django_assert_max_num_queries(10):
        response = admin_client.get(reverse("settings:surveys"))

    page = response.content.decode()
    assert response.status_code == 200
    assert page.count("Seats at 90%") == 4 and "Each downgrade or churn" in page
    assert reverse("settings:survey_edit", args=[Survey.objects.get(name="Needs 3").pk]) in page


def test_the_settings_index_links_to_the_surveys(admin_client):
    assert reverse("settings:surveys") in admin_client.get(reverse("settings:index")).content.decode()


@pytest.mark.parametrize("persona", ["csm", "manager"])
def test_only_admins_configure_surveys(db, client, request, persona):
    client.force_login(request.getfixturevalue(persona))

    assert client.get(reverse("settings:surveys")).status_code == 403
    assert client.post(reverse("settings:survey_create"), survey_form()).status_code == 403
    assert not Survey.objects.exists()
