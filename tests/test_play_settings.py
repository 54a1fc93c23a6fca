"""The playbooks settings pages: admins list, create and edit plays, with a live preview of their templates."""

import pytest
from django.urls import reverse
from django.utils import timezone

from accounts.models import AuditEntry
from playbooks.models import Play, PlayCredit, Rule, Touch
from tests.factories import plan

HTMX = {"HX-Request": "true"}


@pytest.fixture
def admin_client(client, admin_user):
    client.force_login(admin_user)
    return client


@pytest.fixture
def rule(db):
    return Rule.objects.create(name="Seats 90%", min_logins_per_week=3, weight=30)


def play_data(**overrides) -> dict:
    data = {
        "name": "Seats upgrade",
        "description": "Accounts running out of seats",
        "active": "on",
        "target_plan": plan("Pro").pk,
        "talking_points": "Ask about hiring plans.",
        "case_study_url": "https://example.com/case",
        "email_subject": "{{ account_name }}: room on {{ target_plan }}",
        "email_body": "Hi,\n\n{{ metric }} is at {{ utilization }}.\n\n{{ csm_name }}",
        "prompt_kind": "banner",
        "prompt_text": "You are at {{ utilization }} of your seats.",
        "prompt_cta_label": "See Pro",
        "prompt_cta_url": "https://example.com/pro",
        "trial_days": "14",
        "downgrade_save_subject": "Before you go",
        "downgrade_save_body": "You used {{ premium_features|join:', ' }}.",
        "prompt_max_per_week": "3",
        "min_days_between_touches": "7",
    }
    data.update(overrides)
    return data


def test_it_creates_a_play_with_its_rules_and_audits_it(admin_client, admin_user, rule):
    response = admin_client.post(reverse("settings:play_create"), {**play_data(), "rules": [rule.pk]})

    play = Play.objects.get()
    assert response.status_code == 302
    assert response.url == reverse("settings:play_edit", args=[play.pk])
    assert list(play.rules.all()) == [rule]
    assert (play.target_plan, play.trial_days, play.email_subject) == (
        plan("Pro"),
        14,
        "{{ account_name }}: room on {{ target_plan }}",
    )
    entry = AuditEntry.objects.get()
    assert (entry.action, entry.object_type, entry.object_id, entry.actor) == (
        "created",
        "playbooks.Play",
        str(play.pk),
        admin_user,
    )
    assert entry.before is None
    assert entry.after["rules"] == [rule.pk]
    assert entry.after["email_body"].startswith("Hi,")


def test_it_edits_a_play_and_audits_only_what_changed(admin_client, rule):
    play = Play.objects.create(name="Seats upgrade", email_subject="Old subject", target_plan=plan("Pro"))

    response = admin_client.post(
        reverse("settings:play_edit", args=[play.pk]),
        {**play_data(email_subject="New {{ target_plan }}"), "rules": [rule.pk]},
    )

    assert response.status_code == 302
    play.refresh_from_db()
    assert play.email_subject == "New {{ target_plan }}"
    entry = AuditEntry.objects.get()
    assert entry.action == "updated"
    assert entry.before["email_subject"] == "Old subject"
    assert entry.after["email_subject"] == "New {{ target_plan }}"
    assert entry.before["rules"] == [] and entry.after["rules"] == [rule.pk]
    assert "updated_at" not in entry.after


def test_saving_an_unchanged_play_writes_no_audit_entry(admin_client):
    admin_client.post(reverse("settings:play_create"), play_data())
    play = Play.objects.get()

    admin_client.post(reverse("settings:play_edit", args=[play.pk]), play_data())

    assert AuditEntry.objects.count() == 1


@pytest.mark.parametrize(
    ("field", "template", "message"),
    [
        ("email_body", "Hi {{ account.owner.password }}", "dotted names are not allowed"),
        ("email_subject", "{% load static %}Hi", "the tag {% load %} is not allowed"),
        ("downgrade_save_body", "{% include 'base.html' %}", "the tag {% include %} is not allowed"),
        ("prompt_text", "{{ acount_name }}", "unknown merge field {{ acount_name }}"),
        ("email_body", "{% if metric %}unclosed", "syntax error"),
    ],
)
def test_it_refuses_an_unsafe_or_invalid_template_showing_the_error_next_to_its_field(
    admin_client, field, template, message
):
    response = admin_client.post(reverse("settings:play_create"), play_data(**{field: template}))

    assert response.status_code == 422
    html = response.content.decode()
    assert f'id="id_{field}_error"' in html
    error_list = html.split(f'id="id_{field}_error"', 1)[1].split("</ul>", 1)[0]
    assert message in error_list.replace("&#x27;", "'")
    assert not Play.objects.exists()
    assert not AuditEntry.objects.exists()


def test_it_refuses_an_unsafe_template_on_edit_and_keeps_the_stored_one(admin_client):
    play = Play.objects.create(name="Seats upgrade", email_body="Hi {{ account_name }}")

    response = admin_client.post(
        reverse("settings:play_edit", args=[play.pk]), play_data(email_body="{{ settings.SECRET_KEY }}")
    )

    assert response.status_code == 422
    play.refresh_from_db()
    assert play.email_body == "Hi {{ account_name }}"
    assert not AuditEntry.objects.exists()


def test_it_refuses_a_one_megabyte_template(admin_client):
    response = admin_client.post(reverse("settings:play_create"), play_data(email_body="x" * 1024 * 1024))

    assert response.status_code == 422
    assert "the limit is 20,000" in response.content.decode()
    assert not Play.objects.exists()


def test_it_refuses_a_duplicate_name_whatever_its_case(admin_client):
    Play.objects.create(name="Seats upgrade")

    response = admin_client.post(reverse("settings:play_create"), play_data(name="SEATS UPGRADE"))

    assert response.status_code == 422
    assert Play.objects.count() == 1


def test_the_preview_renders_the_posted_templates_for_the_sample_account_and_saves_nothing(admin_client):
    response = admin_client.post(reverse("settings:play_create"), {**play_data(), "preview": "1"}, headers=HTMX)

    assert response.status_code == 200
    assert response["Vary"] and "HX-Request" in response["Vary"]
    html = response.content.decode()
    assert html.lstrip().startswith('<section id="play-preview"')
    assert "Acme Analytics: room on Pro" in html
    assert "Seats is at 92%." in html
    assert "You used Advanced reporting (37 times), API access (12 times)." in html
    assert not Play.objects.exists()


def test_the_preview_escapes_what_it_shows_and_lists_template_errors(admin_client):
    data = play_data(email_subject="<img src=x onerror=alert(1)>", email_body="{{ account.owner.password }}")

    html = admin_client.post(reverse("settings:play_create"), {**data, "preview": "1"}, headers=HTMX).content.decode()

    assert "<img src=x" not in html
    assert "&lt;img src=x onerror=alert(1)&gt;" in html
    assert "Email body: Line 1: {{ account.owner.password }}: merge fields are plain values" in html


def test_the_preview_works_without_javascript_as_the_whole_page(admin_client):
    response = admin_client.post(reverse("settings:play_create"), {**play_data(), "preview": "1"})

    assert response.status_code == 200
    html = response.content.decode()
    assert "<h1>New play</h1>" in html and "Acme Analytics: room on Pro" in html
    assert not Play.objects.exists()


def test_the_form_lists_the_merge_fields_and_previews_the_stored_play(admin_client):
    play = Play.objects.create(name="Seats upgrade", email_subject="{{ target_plan }} for {{ account_name }}")

    html = admin_client.get(reverse("settings:play_edit", args=[play.pk])).content.decode()

    assert "{{ projected_limit_date }}" in html
    assert "When that limit will be reached at the current pace" in html
    assert '<h3 class="play-preview__subject">Pro for Acme Analytics</h3>' in html


def test_it_lists_plays_with_their_rules_and_counts_in_a_fixed_number_of_queries(
    admin_client, rule, account, django_assert_max_num_queries
):
    now = timezone.now()
    for index in range(3):
        play = Play.objects.create(name=f"Play {index}", target_plan=plan("Pro"))
        play.rules.add(rule)
        for _ in range(index + 2):
            Touch.objects.create(account=account, play=play, kind=Touch.Kind.EMAIL, occurred_at=now)
    PlayCredit.objects.create(opportunity_id=1, account=account, play=play, mrr_delta=70, won_at=now)

    with django_assert_max_num_queries(5):
        response = admin_client.get(reverse("settings:plays"))

    assert response.status_code == 200
    rows = {play.name: (play.touch_count, play.win_count) for play in response.context["plays"]}
    assert rows == {"Play 0": (2, 0), "Play 1": (3, 0), "Play 2": (4, 1)}
    assert "Seats 90%" in response.content.decode()


@pytest.mark.parametrize("persona", ["csm", "manager"])
def test_it_forbids_everyone_but_admins(db, client, request, persona):
    client.force_login(request.getfixturevalue(persona))
    play = Play.objects.create(name="Seats upgrade")

    assert client.get(reverse("settings:plays")).status_code == 403
    assert client.get(reverse("settings:play_create")).status_code == 403
    assert client.post(reverse("settings:play_create"), play_data(name="Other")).status_code == 403
    assert client.post(reverse("settings:play_edit", args=[play.pk]), play_data()).status_code == 403
    assert Play.objects.count() == 1
