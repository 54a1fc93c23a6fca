"""The screens of automated plays: the step editor on a play's page (admins) and the account page's "Plays
running" panel (the account's CSM, managers and admins)."""

from __future__ import annotations

import datetime as dt

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from accounts.models import AuditEntry
from opportunities.models import Collaborator
from playbooks.models import Enrollment, Play, SequenceStep, StepRun
from tests.factories import AccountFactory, OpportunityFactory, UserFactory, plan

HTMX = {"HX-Request": "true"}


@pytest.fixture
def admin_client(client, admin_user):
    client.force_login(admin_user)
    return client


@pytest.fixture
def play(db):
    """A play to Pro with an email of its own, which steps may fall back to."""
    return Play.objects.create(
        name="Seats upgrade",
        target_plan=plan("Pro"),
        email_subject="Room to grow",
        email_body="Hi {{ account_name }},\n\n{{ metric }} is at {{ utilization }}.",
        prompt_text="You use {{ utilization }} of your {{ metric }}.",
    )


def step_data(**fields) -> dict:
    """What the step form posts (its fields carry the "step-" prefix)."""
    data = {
        "delay_days": "0",
        "kind": "email",
        "subject": "",
        "body": "",
        "task_due_days": "2",
        "when_fatigued": "wait",
    }
    data.update(fields)
    return {f"step-{name}": value for name, value in data.items()}


def add_step(play: Play, **fields) -> SequenceStep:
    position = SequenceStep.objects.filter(play=play).count() + 1
    data = {"delay_days": 0, "kind": SequenceStep.Kind.EMAIL, **fields}
    return SequenceStep.objects.create(play=play, position=position, **data)


def steps_of(play: Play) -> list[tuple[int, int, str]]:
    return list(
        SequenceStep.objects.filter(play=play).order_by("position").values_list("position", "delay_days", "kind")
    )


def field_errors(response, field: str) -> str:
    html = response.content.decode()
    marker = f'id="id_step-{field}_error"'
    assert marker in html, f"no error on {field}"
    return html.split(marker, 1)[1].split("</ul>", 1)[0].replace("&#x27;", "'")


def enroll(play: Play, account, *, status=Enrollment.Status.ACTIVE, stop_reason="", by=None) -> Enrollment:
    return Enrollment.objects.create(
        play=play,
        account=account,
        status=status,
        stop_reason=stop_reason,
        started_at=timezone.now() - dt.timedelta(days=1),
        started_by=by,
    )


def run(enrollment: Enrollment, step: SequenceStep, status: str) -> StepRun:
    return StepRun.objects.create(
        enrollment=enrollment, step=step, account=enrollment.account, due_at=timezone.now(), status=status
    )


# --- The step editor: adding steps ------------------------------------------------------------------------


def test_it_adds_steps_in_order_of_their_day_and_audits_each(admin_client, admin_user, play):
    url = reverse("settings:play_step_create", args=[play.pk])

    admin_client.post(url, step_data(delay_days="7", kind="task", subject="Call {{ account_name }}"))
    admin_client.post(url, step_data(delay_days="0", kind="email"))
    response = admin_client.post(url, step_data(delay_days="3", kind="prompt"))

    assert response.status_code == 302
    assert response.url == reverse("settings:play_edit", args=[play.pk]) + "#sequence"
    assert steps_of(play) == [(1, 0, "email"), (2, 3, "prompt"), (3, 7, "task")]
    entries = AuditEntry.objects.filter(object_type="playbooks.SequenceStep", action="created")
    assert entries.count() == 3
    assert {entry.actor for entry in entries} == {admin_user}
    task = SequenceStep.objects.get(kind="task")
    assert entries.get(object_id=str(task.pk)).after["subject"] == "Call {{ account_name }}"


def test_an_htmx_add_answers_with_the_editor_and_the_messages_out_of_band(admin_client, play):
    response = admin_client.post(
        reverse("settings:play_step_create", args=[play.pk]), step_data(kind="email"), headers=HTMX
    )

    html = response.content.decode()
    assert response.status_code == 200
    assert html.lstrip().startswith('<section id="sequence"')
    assert "<html" not in html
    assert 'id="messages" role="status" aria-live="polite" hx-swap-oob="true"' in html
    assert "Step 1 added: day 0, email." in html
    assert "HX-Request" in response["Vary"]


@pytest.mark.parametrize(
    ("day", "message"),
    [
        ("-1", "A day cannot be negative"),
        ("366", "at most 365 days"),
        ("three", "whole number"),
        ("", "Enter the day of the step"),
    ],
)
def test_it_refuses_a_bad_day_naming_the_field_and_stores_nothing(admin_client, play, day, message):
    response = admin_client.post(
        reverse("settings:play_step_create", args=[play.pk]), step_data(delay_days=day), headers=HTMX
    )

    assert response.status_code == 422
    assert message in field_errors(response, "delay_days")
    assert not SequenceStep.objects.exists()
    assert not AuditEntry.objects.exists()


def test_it_refuses_an_unknown_kind_of_step(admin_client, play):
    response = admin_client.post(
        reverse("settings:play_step_create", args=[play.pk]), step_data(kind="sms"), headers=HTMX
    )

    assert response.status_code == 422
    assert "sms is not a kind of step" in field_errors(response, "kind")
    assert not SequenceStep.objects.exists()


@pytest.mark.parametrize(
    ("field", "template", "message"),
    [
        ("body", "Hi {% if metric %}unclosed", "syntax error"),
        ("body", "{{ account.owner.password }}", "dotted names are not allowed"),
        ("subject", "{% load static %}Hi", "the tag {% load %} is not allowed"),
        ("subject", "Hi {{ acount_name }}", "unknown merge field {{ acount_name }}"),
    ],
)
def test_it_shows_the_sandbox_s_objection_on_the_field_and_stores_nothing(admin_client, play, field, template, message):
    response = admin_client.post(
        reverse("settings:play_step_create", args=[play.pk]), step_data(**{field: template}), headers=HTMX
    )

    assert response.status_code == 422
    assert message in field_errors(response, field)
    assert not SequenceStep.objects.exists()
    assert not AuditEntry.objects.exists()


def test_an_email_step_needs_its_own_subject_when_the_play_has_none(admin_client):
    bare = Play.objects.create(name="Bare play")

    response = admin_client.post(
        reverse("settings:play_step_create", args=[bare.pk]), step_data(kind="email"), headers=HTMX
    )

    assert response.status_code == 422
    assert "the play has no email subject" in field_errors(response, "subject")
    assert "the play has no email body" in field_errors(response, "body")
    assert not SequenceStep.objects.exists()


def test_the_preview_renders_the_step_for_the_sample_account_and_stores_nothing(admin_client, play):
    response = admin_client.post(
        reverse("settings:play_step_create", args=[play.pk]),
        {"preview": "1", **step_data(kind="email", subject="{{ account_name }}: {{ target_plan }} has room")},
        headers=HTMX,
    )

    html = response.content.decode()
    assert response.status_code == 200
    assert html.lstrip().startswith('<section id="step-preview"')
    assert "Acme Analytics: Pro has room" in html
    # The blank body falls back to the play's email, rendered.
    assert "Hi Acme Analytics," in html and "The play’s email body." in html
    assert not SequenceStep.objects.exists()


def test_the_preview_shows_a_template_error_without_failing(admin_client, play):
    response = admin_client.post(
        reverse("settings:play_step_create", args=[play.pk]),
        {"preview": "1", **step_data(kind="prompt", body="{% for x in premium_features %}")},
        headers=HTMX,
    )

    assert response.status_code == 200
    assert "Body: Line 1: syntax error" in response.content.decode()


def test_without_javascript_the_step_form_is_a_page_in_the_app_layout(admin_client, play):
    step = add_step(play, subject="Room to grow")

    new = admin_client.get(reverse("settings:play_step_create", args=[play.pk]))
    edit = admin_client.get(reverse("settings:play_step_edit", args=[play.pk, step.pk]))
    refused = admin_client.post(reverse("settings:play_step_create", args=[play.pk]), step_data(delay_days="-3"))

    assert (new.status_code, edit.status_code, refused.status_code) == (200, 200, 422)
    assert "<html" in new.content.decode() and "Add a step" in new.content.decode()
    assert "Edit step 1" in edit.content.decode() and 'value="Room to grow"' in edit.content.decode()
    assert "A day cannot be negative" in field_errors(refused, "delay_days")
    assert SequenceStep.objects.count() == 1


# --- Editing, moving, deleting --------------------------------------------------------------------------


def test_editing_a_step_s_day_moves_it_to_its_place_and_audits_the_change(admin_client, play):
    email = add_step(play, delay_days=0)
    prompt = add_step(play, delay_days=3, kind=SequenceStep.Kind.PROMPT)
    task = add_step(play, delay_days=7, kind=SequenceStep.Kind.TASK)

    response = admin_client.post(
        reverse("settings:play_step_edit", args=[play.pk, email.pk]),
        step_data(delay_days="5", kind="email", subject="Still room?"),
        headers=HTMX,
    )

    assert response.status_code == 200
    assert list(SequenceStep.objects.order_by("position").values_list("pk", flat=True)) == [
        prompt.pk,
        email.pk,
        task.pk,
    ]
    entry = AuditEntry.objects.get(object_id=str(email.pk), action="updated")
    assert entry.before == {"delay_days": 0, "position": 1, "subject": ""}
    assert entry.after == {"delay_days": 5, "position": 2, "subject": "Still room?"}


def test_editing_a_step_with_a_bad_template_keeps_the_stored_one(admin_client, play):
    step = add_step(play, subject="Room to grow")

    response = admin_client.post(
        reverse("settings:play_step_edit", args=[play.pk, step.pk]),
        step_data(subject="{{ settings.SECRET_KEY }}"),
        headers=HTMX,
    )

    assert response.status_code == 422
    assert "dotted names are not allowed" in field_errors(response, "subject")
    step.refresh_from_db()
    assert step.subject == "Room to grow"
    assert not AuditEntry.objects.exists()


def test_it_moves_a_step_among_the_steps_of_its_day(admin_client, play):
    email = add_step(play, delay_days=0)
    notify = add_step(play, delay_days=0, kind=SequenceStep.Kind.NOTIFY)

    response = admin_client.post(
        reverse("settings:play_step_move", args=[play.pk, notify.pk]), {"direction": "up"}, headers=HTMX
    )

    assert response.status_code == 200
    assert list(SequenceStep.objects.order_by("position").values_list("pk", flat=True)) == [notify.pk, email.pk]
    assert AuditEntry.objects.filter(object_type="playbooks.SequenceStep", action="updated").count() == 2


def test_it_refuses_to_move_a_step_past_another_day_and_says_why(admin_client, play):
    email = add_step(play, delay_days=0)
    task = add_step(play, delay_days=7, kind=SequenceStep.Kind.TASK)

    response = admin_client.post(
        reverse("settings:play_step_move", args=[play.pk, task.pk]), {"direction": "up"}, headers=HTMX
    )

    assert response.status_code == 422
    assert "Steps run in order of their day" in response.content.decode()
    assert list(SequenceStep.objects.order_by("position").values_list("pk", flat=True)) == [email.pk, task.pk]
    assert not AuditEntry.objects.exists()


def test_a_forged_move_direction_is_refused(admin_client, play):
    step = add_step(play)
    add_step(play)

    response = admin_client.post(
        reverse("settings:play_step_move", args=[play.pk, step.pk]), {"direction": "sideways"}, headers=HTMX
    )

    assert response.status_code == 422
    assert SequenceStep.objects.get(pk=step.pk).position == 1


def test_it_deletes_a_step_that_never_ran_and_renumbers_the_rest(admin_client, play):
    first = add_step(play, delay_days=0)
    add_step(play, delay_days=3, kind=SequenceStep.Kind.PROMPT)
    add_step(play, delay_days=7, kind=SequenceStep.Kind.TASK)

    response = admin_client.post(reverse("settings:play_step_delete", args=[play.pk, first.pk]))

    assert response.status_code == 302
    assert steps_of(play) == [(1, 3, "prompt"), (2, 7, "task")]
    entry = AuditEntry.objects.get(action="deleted")
    assert (entry.object_type, entry.object_id, entry.before["kind"]) == (
        "playbooks.SequenceStep",
        str(first.pk),
        "email",
    )


def test_deleting_the_last_step_left_to_run_completes_the_enrolments_waiting_for_it(admin_client, play, account):
    sent = add_step(play, delay_days=0)
    last = add_step(play, delay_days=7, kind=SequenceStep.Kind.TASK)
    waiting = enroll(play, account)
    run(waiting, sent, StepRun.Status.SENT)
    run(waiting, last, StepRun.Status.PENDING)
    still_going = enroll(play, AccountFactory())
    run(still_going, sent, StepRun.Status.PENDING)

    admin_client.post(reverse("settings:play_step_delete", args=[play.pk, last.pk]))

    waiting.refresh_from_db()
    still_going.refresh_from_db()
    assert (waiting.status, waiting.ended_at is not None) == (Enrollment.Status.COMPLETED, True)
    assert still_going.status == Enrollment.Status.ACTIVE


def test_it_keeps_a_step_that_already_ran_for_an_account(admin_client, play, account):
    step = add_step(play)
    run(enroll(play, account), step, StepRun.Status.SENT)

    response = admin_client.post(reverse("settings:play_step_delete", args=[play.pk, step.pk]), headers=HTMX)

    assert response.status_code == 422
    assert "already ran for 1 enrolment" in response.content.decode()
    assert SequenceStep.objects.filter(pk=step.pk).exists()
    assert StepRun.objects.filter(step=step).count() == 1


def test_a_step_of_another_play_is_not_found_through_this_one(admin_client, play):
    other = Play.objects.create(name="Storage upgrade")
    step = add_step(other)

    assert admin_client.get(reverse("settings:play_step_edit", args=[play.pk, step.pk])).status_code == 404
    response = admin_client.post(reverse("settings:play_step_delete", args=[play.pk, step.pk]))

    assert response.status_code == 404
    assert SequenceStep.objects.filter(pk=step.pk).exists()


# --- The play page: timeline, results, run mode ---------------------------------------------------------


def test_the_play_page_shows_the_sequence_day_by_day(admin_client, play):
    add_step(play, delay_days=0, subject="")
    add_step(play, delay_days=3, kind=SequenceStep.Kind.PROMPT)
    add_step(play, delay_days=7, kind=SequenceStep.Kind.TASK, subject="Call {{ account_name }}")

    response = admin_client.get(reverse("settings:play_edit", args=[play.pk]))

    html = response.content.decode()
    timeline = html.split('class="sequence-timeline"', 1)[1].split("</ol>", 1)[0]
    days = [part.split("</span></li>", 1)[0] for part in timeline.split('<span class="sequence-timeline__day">')[1:]]
    assert days == [
        "Day 0:</span> email “Room to grow”",
        "Day 3:</span> prompt",
        "Day 7:</span> task for the CSM “Call Acme Analytics”",
    ]


def test_the_play_page_counts_enrolments_by_status_and_stop_reason_and_runs_by_step(admin_client, play):
    email = add_step(play, delay_days=0)
    task = add_step(play, delay_days=3, kind=SequenceStep.Kind.TASK)
    accounts = AccountFactory.create_batch(6)
    running = enroll(play, accounts[0])
    enroll(play, accounts[1], status=Enrollment.Status.PAUSED)
    done = enroll(play, accounts[2], status=Enrollment.Status.COMPLETED)
    enroll(play, accounts[3], status=Enrollment.Status.STOPPED, stop_reason=Enrollment.StopReason.UPGRADED)
    enroll(play, accounts[4], status=Enrollment.Status.STOPPED, stop_reason=Enrollment.StopReason.UPGRADED)
    enroll(play, accounts[5], status=Enrollment.Status.STOPPED, stop_reason=Enrollment.StopReason.OPTED_OUT)
    run(running, email, StepRun.Status.SENT)
    run(done, email, StepRun.Status.SKIPPED)
    run(done, task, StepRun.Status.FAILED)
    run(running, task, StepRun.Status.PENDING)

    response = admin_client.get(reverse("settings:play_edit", args=[play.pk]))

    counts = response.context["counts"]
    assert (counts.enrolled_now, counts.paused, counts.completed, counts.stopped) == (2, 1, 1, 3)
    assert counts.stopped_by_reason == [("The account upgraded", 2), ("The contact opted out", 1)]
    results = {step.kind: (step.sent, step.skipped, step.failed, step.due) for step in response.context["steps"]}
    assert results == {"email": (1, 1, 0, 0), "task": (0, 0, 1, 1)}
    assert "The account upgraded: 2" in response.content.decode()


def _play_page_queries(client: Client, play: Play) -> int:
    with CaptureQueriesContext(connection) as queries:
        response = client.get(reverse("settings:play_edit", args=[play.pk]))
    assert response.status_code == 200
    return len(queries)


def test_the_play_page_makes_as_many_queries_for_ten_steps_and_enrolments_as_for_one(admin_client, play):
    step = add_step(play)
    run(enroll(play, AccountFactory()), step, StepRun.Status.SENT)
    one = _play_page_queries(admin_client, play)
    for day in range(1, 10):
        step = add_step(play, delay_days=day, kind=SequenceStep.Kind.TASK)
        run(enroll(play, AccountFactory(), status=Enrollment.Status.COMPLETED), step, StepRun.Status.SENT)

    ten = _play_page_queries(admin_client, play)

    assert SequenceStep.objects.filter(play=play).count() == 10
    assert ten == one


def test_the_play_form_saves_the_run_mode_and_audits_it(admin_client, play):
    data = {
        "name": play.name,
        "active": "on",
        "target_plan": plan("Pro").pk,
        "email_subject": play.email_subject,
        "email_body": play.email_body,
        "prompt_kind": "banner",
        "prompt_text": play.prompt_text,
        "prompt_max_per_week": "3",
        "min_days_between_touches": "7",
        "run_mode": "automatic",
    }

    response = admin_client.post(reverse("settings:play_edit", args=[play.pk]), data)

    assert response.status_code == 302
    play.refresh_from_db()
    assert play.run_mode == Play.RunMode.AUTOMATIC
    entry = AuditEntry.objects.get(object_type="playbooks.Play")
    assert (entry.before, entry.after) == ({"run_mode": "manual"}, {"run_mode": "automatic"})


def test_a_play_form_without_the_run_mode_keeps_the_play_s(admin_client, play):
    Play.objects.filter(pk=play.pk).update(run_mode=Play.RunMode.AUTOMATIC)
    data = {
        "name": "Renamed",
        "prompt_kind": "banner",
        "prompt_max_per_week": "3",
        "min_days_between_touches": "7",
    }

    assert admin_client.post(reverse("settings:play_edit", args=[play.pk]), data).status_code == 302

    play.refresh_from_db()
    assert (play.name, play.run_mode) == ("Renamed", Play.RunMode.AUTOMATIC)


# --- Who may edit steps -----------------------------------------------------------------------------------


@pytest.mark.parametrize("persona", ["csm", "manager"])
def test_only_admins_edit_steps(db, client, request, play, persona):
    client.force_login(request.getfixturevalue(persona))
    step = add_step(play)
    add_step(play)

    assert client.get(reverse("settings:play_step_create", args=[play.pk])).status_code == 403
    assert client.get(reverse("settings:play_step_edit", args=[play.pk, step.pk])).status_code == 403
    posts = [
        (reverse("settings:play_step_create", args=[play.pk]), step_data()),
        (reverse("settings:play_step_edit", args=[play.pk, step.pk]), step_data(delay_days="9")),
        (reverse("settings:play_step_move", args=[play.pk, step.pk]), {"direction": "down"}),
        (reverse("settings:play_step_delete", args=[play.pk, step.pk]), {}),
    ]
    for url, data in posts:
        assert client.post(url, data, headers=HTMX).status_code == 403
    assert steps_of(play) == [(1, 0, "email"), (2, 0, "email")]
    assert not AuditEntry.objects.exists()


def test_a_step_post_without_the_csrf_token_is_refused(admin_user, play):
    client = Client(enforce_csrf_checks=True)
    client.force_login(admin_user)
    step = add_step(play)

    create = client.post(reverse("settings:play_step_create", args=[play.pk]), step_data(), headers=HTMX)
    delete = client.post(reverse("settings:play_step_delete", args=[play.pk, step.pk]), headers=HTMX)

    assert (create.status_code, delete.status_code) == (403, 403)
    assert steps_of(play) == [(1, 0, "email")]


# --- The account page's "Plays running" panel -----------------------------------------------------------


@pytest.fixture
def running_play(play):
    """The play with an email on day 0 and a task for the CSM on day 3."""
    add_step(play, delay_days=0)
    add_step(play, delay_days=3, kind=SequenceStep.Kind.TASK, subject="Call about seats")
    return play


def start_url(account) -> str:
    return reverse("sequences:enrollment_start", args=[account.pk])


def action_url(action: str, enrollment: Enrollment) -> str:
    return reverse(f"sequences:enrollment_{action}", args=[enrollment.pk])


def enroll_with_runs(play: Play, account, **fields) -> Enrollment:
    enrollment = enroll(play, account, **fields)
    for step in SequenceStep.objects.filter(play=play).order_by("position"):
        StepRun.objects.create(
            enrollment=enrollment,
            step=step,
            account=account,
            due_at=enrollment.started_at + dt.timedelta(days=step.delay_days),
        )
    return enrollment


def panel_of(response) -> str:
    html = response.content.decode()
    return html.split('<section id="plays"', 1)[1].split("</section>", 1)[0]


def test_the_account_page_lists_each_play_running_with_its_next_step_and_progress(
    csm_client, csm, account, running_play
):
    mine = enroll_with_runs(running_play, account, by=csm)
    StepRun.objects.filter(enrollment=mine, step__position=1).update(status=StepRun.Status.SENT)
    automatic = Play.objects.create(name="Storage squeeze", email_subject="More room", email_body="Hi")
    add_step(automatic, delay_days=0)
    enroll_with_runs(automatic, account, status=Enrollment.Status.PAUSED)

    panel = panel_of(csm_client.get(reverse("accounts:detail", args=[account.pk])))

    assert "Seats upgrade" in panel and "Storage squeeze" in panel
    assert "by Casey Moreno" in panel
    assert "automatically, by the play’s rules" in panel
    assert "Step 2: create a task for the csm" in panel
    assert "1 of 2" in panel
    assert "on hold while paused" in panel
    assert f'action="{action_url("pause", mine)}"' in panel
    assert 'aria-label="Resume Storage squeeze"' in panel


def test_the_owner_starts_a_play_and_gets_the_fresh_panel_with_the_message(csm_client, csm, account, running_play):
    response = csm_client.post(start_url(account), {"play": running_play.pk}, headers=HTMX)

    assert response.status_code == 200
    enrollment = Enrollment.objects.get()
    assert (enrollment.account, enrollment.play, enrollment.status, enrollment.started_by) == (
        account,
        running_play,
        Enrollment.Status.ACTIVE,
        csm,
    )
    assert StepRun.objects.filter(enrollment=enrollment).count() == 2
    html = response.content.decode()
    assert html.lstrip().startswith('<section id="plays"')
    assert "“Seats upgrade” started" in html and 'hx-swap-oob="true"' in html
    assert "HX-Request" in response["Vary"]


def test_without_javascript_a_start_goes_back_to_the_account_page(csm_client, account, running_play):
    response = csm_client.post(start_url(account), {"play": running_play.pk})

    assert response.status_code == 302
    assert response.url == account.get_absolute_url() + "#plays"
    assert Enrollment.objects.count() == 1


def test_a_start_the_engine_refuses_shows_its_reason_and_stores_nothing(csm_client, csm, account, running_play):
    enroll(running_play, account, by=csm)
    before = (Enrollment.objects.count(), StepRun.objects.count())

    response = csm_client.post(start_url(account), {"play": running_play.pk}, headers=HTMX)

    assert response.status_code == 422
    assert "The account already runs “Seats upgrade”." in response.content.decode()
    assert (Enrollment.objects.count(), StepRun.objects.count()) == before


def test_a_churned_account_cannot_start_a_play(csm_client, csm, running_play):
    churned = AccountFactory(owner=csm, status="churned")

    response = csm_client.post(start_url(churned), {"play": running_play.pk}, headers=HTMX)

    assert response.status_code == 422
    assert "The account has churned." in response.content.decode()
    assert not Enrollment.objects.exists()


@pytest.mark.parametrize("kind", ["inactive", "no steps", "unknown"])
def test_a_forged_play_that_cannot_be_started_is_refused_by_the_form(csm_client, account, running_play, kind):
    if kind == "inactive":
        Play.objects.filter(pk=running_play.pk).update(active=False)
        play_id = running_play.pk
    elif kind == "no steps":
        play_id = Play.objects.create(name="Empty play").pk
    else:
        play_id = 987654

    response = csm_client.post(start_url(account), {"play": play_id}, headers=HTMX)

    assert response.status_code == 422
    assert "That play cannot be started" in response.content.decode()
    assert not Enrollment.objects.exists()


def test_the_start_menu_offers_active_plays_with_steps_only(csm_client, account, running_play):
    Play.objects.create(name="Empty play")
    off = Play.objects.create(name="Retired play", active=False)
    add_step(off)
    automatic = Play.objects.create(
        name="Auto play", run_mode=Play.RunMode.AUTOMATIC, email_subject="x", email_body="y"
    )
    add_step(automatic)

    panel = panel_of(csm_client.get(reverse("accounts:detail", args=[account.pk])))
    options = panel.split('name="play"', 1)[1].split("</select>", 1)[0]

    assert "Seats upgrade" in options and "Auto play (also runs automatically)" in options
    assert "Empty play" not in options and "Retired play" not in options


def test_the_owner_pauses_resumes_and_stops_a_play(csm_client, csm, account, running_play):
    enrollment = enroll_with_runs(running_play, account, by=csm)

    paused = csm_client.post(action_url("pause", enrollment), headers=HTMX)
    enrollment.refresh_from_db()
    assert (paused.status_code, enrollment.status) == (200, Enrollment.Status.PAUSED)
    assert "paused: its steps wait" in paused.content.decode()

    resumed = csm_client.post(action_url("resume", enrollment), headers=HTMX)
    enrollment.refresh_from_db()
    assert (resumed.status_code, enrollment.status) == (200, Enrollment.Status.ACTIVE)

    stopped = csm_client.post(action_url("stop", enrollment), headers=HTMX)
    enrollment.refresh_from_db()
    assert (stopped.status_code, enrollment.status, enrollment.stop_reason) == (
        200,
        Enrollment.Status.STOPPED,
        Enrollment.StopReason.STOPPED_BY_USER,
    )
    assert not StepRun.objects.filter(enrollment=enrollment, status=StepRun.Status.PENDING).exists()


def test_pausing_a_play_that_was_paused_meanwhile_says_so_and_changes_nothing(csm_client, csm, account, running_play):
    enrollment = enroll_with_runs(running_play, account, by=csm, status=Enrollment.Status.PAUSED)

    response = csm_client.post(action_url("pause", enrollment), headers=HTMX)

    assert response.status_code == 422
    assert "Only a running sequence can be paused" in response.content.decode()
    enrollment.refresh_from_db()
    assert enrollment.status == Enrollment.Status.PAUSED


@pytest.mark.parametrize("persona", ["manager", "admin_user"])
def test_managers_and_admins_run_plays_on_any_account(db, client, request, account, running_play, persona):
    client.force_login(request.getfixturevalue(persona))

    assert client.post(start_url(account), {"play": running_play.pk}, headers=HTMX).status_code == 200
    enrollment = Enrollment.objects.get()
    assert client.post(action_url("pause", enrollment), headers=HTMX).status_code == 200
    assert client.post(action_url("stop", enrollment), headers=HTMX).status_code == 200

    enrollment.refresh_from_db()
    assert enrollment.status == Enrollment.Status.STOPPED


def test_another_csm_gets_404_and_changes_nothing_even_with_forged_htmx_posts(
    client, other_csm, csm, account, running_play
):
    enrollment = enroll_with_runs(running_play, account, by=csm)
    client.force_login(other_csm)
    before = list(Enrollment.objects.values_list("pk", "status", "stop_reason"))

    answers = [
        client.post(start_url(account), {"play": running_play.pk}, headers=HTMX).status_code,
        client.post(action_url("pause", enrollment), headers=HTMX).status_code,
        client.post(action_url("resume", enrollment), headers=HTMX).status_code,
        client.post(action_url("stop", enrollment), headers=HTMX).status_code,
    ]

    assert answers == [404, 404, 404, 404]
    assert list(Enrollment.objects.values_list("pk", "status", "stop_reason")) == before
    assert StepRun.objects.filter(status=StepRun.Status.PENDING).count() == 2


def test_a_colleague_on_one_of_the_account_s_opportunities_sees_the_plays_but_cannot_run_them(
    client, csm, account, running_play
):
    sales = UserFactory(username="sasha", first_name="Sasha", last_name="Ivers", role="Sales")
    Collaborator.objects.create(
        opportunity=OpportunityFactory(account=account), user=sales, added_by=csm, added_at=timezone.now()
    )
    enrollment = enroll_with_runs(running_play, account, by=csm)
    client.force_login(sales)

    panel = panel_of(client.get(reverse("accounts:detail", args=[account.pk])))
    refused = client.post(action_url("stop", enrollment), headers=HTMX)

    assert "Seats upgrade" in panel
    assert "Pause" not in panel and 'name="play"' not in panel
    assert refused.status_code == 403
    enrollment.refresh_from_db()
    assert enrollment.status == Enrollment.Status.ACTIVE


def test_a_panel_post_without_the_csrf_token_is_refused(csm, account, running_play):
    client = Client(enforce_csrf_checks=True)
    client.force_login(csm)
    enrollment = enroll_with_runs(running_play, account, by=csm)

    start = client.post(start_url(account), {"play": running_play.pk}, headers=HTMX)
    stop = client.post(action_url("stop", enrollment), headers=HTMX)

    assert (start.status_code, stop.status_code) == (403, 403)
    assert list(Enrollment.objects.values_list("status", flat=True)) == [Enrollment.Status.ACTIVE]


def _account_page_queries(client: Client, account) -> int:
    with CaptureQueriesContext(connection) as queries:
        response = client.get(reverse("accounts:detail", args=[account.pk]))
    assert response.status_code == 200
    return len(queries)


def _panel_queries(client: Client, enrollment: Enrollment) -> int:
    with CaptureQueriesContext(connection) as queries:
        response = client.post(action_url("pause", enrollment), headers=HTMX)
    assert response.status_code == 200
    return len(queries)


def test_the_account_page_and_the_panel_make_as_many_queries_for_ten_plays_as_for_one(csm_client, csm, account):
    def a_play(n: int) -> Play:
        play = Play.objects.create(name=f"Play {n}", email_subject="Hi", email_body="Hello")
        for day in (0, 3, 7):
            add_step(play, delay_days=day, kind=SequenceStep.Kind.TASK)
        return play

    first = enroll_with_runs(a_play(0), account, by=csm)
    page_one = _account_page_queries(csm_client, account)
    panel_one = _panel_queries(csm_client, first)
    for n in range(1, 10):
        enroll_with_runs(a_play(n), account, by=csm if n % 2 else None)
    tenth = Enrollment.objects.filter(account=account, status=Enrollment.Status.ACTIVE).latest("pk")

    page_ten = _account_page_queries(csm_client, account)
    panel_ten = _panel_queries(csm_client, tenth)

    assert Enrollment.objects.filter(account=account).count() == 10
    assert (page_ten, panel_ten) == (page_one, panel_one)
