"""Automated plays: an account enrolled in a play's sequence gets each step once, on a controlled clock, until
it upgrades, its opportunity closes, its contact opts out, a CSM pauses it, it churns or the play is switched
off. Casey owns Acme Analytics; Bea Buyer is Acme's primary contact."""

import datetime as dt
import re
from decimal import Decimal
from unittest import mock

import pytest
from django.core import mail
from django.urls import reverse
from django.utils import timezone

from accounts.models import Account, Contact, EmailOptOut, Notification, NotificationSetting, Task
from accounts.tokens import api_token_create
from opportunities import services as opportunity_services
from opportunities.flagging import opportunities_flag
from opportunities.models import LostReason, Opportunity, Outcome, Stage
from opportunities.selectors import account_timeline
from playbooks.experiment_services import VariantSpec, experiment_create, experiment_start
from playbooks.experiments import assign_arm
from playbooks.models import Assignment, Enrollment, Play, Rule, ScoringPolicy, SequenceStep, StepRun, Touch
from playbooks.prompts import prompts_offer
from playbooks.sequence_selectors import account_enrollments, account_step_timeline
from playbooks.sequence_services import (
    CLAIM_TIMEOUT,
    SequenceRefused,
    enrollment_pause,
    enrollment_resume,
    enrollment_start,
    enrollment_stop,
    steps_deliver_due,
)
from playbooks.services import touch_record
from tests.factories import AccountFactory, OpportunityFactory, plan
from tests.test_flagging import AS_OF, AT, set_usage
from tests.test_stripe_webhook import (
    CUSTOMER,
    SECRET,
    deliver,
    event,
    subscription,  # noqa: F401 - the Stripe fixture, for the webhook test
    upgraded_to_pro,
)

pytestmark = pytest.mark.django_db

BUYER = "bea@acme.example"


def days(n: float) -> dt.timedelta:
    return dt.timedelta(days=n)


@pytest.fixture
def acme(account):
    """Acme Analytics, Casey's account, with Bea Buyer as its primary contact."""
    Contact.objects.create(account=account, name="Bea Buyer", email=BUYER, is_primary=True)
    return Account.objects.select_related("plan", "owner").get(pk=account.pk)


def make_play(name="Seats upgrade", *, steps, run_mode=Play.RunMode.MANUAL, gap=2, **fields) -> Play:
    """A play with its steps, each (delay days, kind) or a dict of SequenceStep fields."""
    play = Play.objects.create(
        name=name,
        target_plan=plan("Pro"),
        email_subject="{{ account_name }}: room on {{ target_plan }}",
        email_body="Hi,\n\n{{ target_plan }} has room for you.\n\n{{ csm_name }}",
        prompt_text="{{ target_plan }} has room",
        min_days_between_touches=gap,
        run_mode=run_mode,
        **fields,
    )
    for position, step in enumerate(steps, start=1):
        if isinstance(step, tuple):
            step = {"delay_days": step[0], "kind": step[1]}
        SequenceStep.objects.create(play=play, position=position, **step)
    return play


def three_emails(**kwargs) -> Play:
    return make_play(
        steps=[
            {"delay_days": 0, "kind": "email"},
            {"delay_days": 3, "kind": "email", "subject": "Still tight on seats, {{ account_name }}?"},
            {"delay_days": 7, "kind": "email", "subject": "Last note on {{ target_plan }}", "body": "Bye for now."},
        ],
        **kwargs,
    )


def runs_of(enrollment) -> list[tuple[int, str]]:
    return list(enrollment.step_runs.order_by("step__position").values_list("step__position", "status"))


def details_of(enrollment) -> list[str]:
    return list(enrollment.step_runs.order_by("step__position").values_list("detail", flat=True))


# --- The whole sequence, exactly once ------------------------------------------------------------------------


def test_a_flagged_account_runs_through_a_three_step_sequence_one_email_per_step_however_often_delivery_runs(acme):
    play = three_emails(run_mode=Play.RunMode.AUTOMATIC)
    play.rules.add(Rule.objects.get(name="Storage at 80% or more"))
    set_usage(acme, "storage_gb", 9.2, slope=0.1)  # 92% of 10 GB: flagged

    opportunities_flag(as_of=AS_OF, at=AT)

    enrollment = Enrollment.objects.get(account=acme)
    opportunity = Opportunity.objects.get(account=acme)
    assert (enrollment.play, enrollment.opportunity_id, enrollment.started_at, enrollment.started_by) == (
        play,
        opportunity.pk,
        AT,
        None,
    )
    sent_by_day = []
    for moment in (AT, AT + dt.timedelta(minutes=1), AT + days(1), AT + days(3), AT + days(3), AT + days(7)):
        steps_deliver_due(at=moment)
        steps_deliver_due(at=moment)  # a second worker, or the next beat
        sent_by_day.append(len(mail.outbox))

    assert sent_by_day == [1, 1, 1, 2, 2, 3]
    assert [m.subject for m in mail.outbox] == [
        "Acme Analytics: room on Pro",
        "Still tight on seats, Acme Analytics?",
        "Last note on Pro",
    ]
    assert all(m.to == [BUYER] for m in mail.outbox)
    assert mail.outbox[0].body.startswith("Hi,\n\nPro has room for you.\n\nCasey Moreno")
    enrollment.refresh_from_db()
    assert (enrollment.status, enrollment.ended_at) == (Enrollment.Status.COMPLETED, AT + days(7))
    assert runs_of(enrollment) == [(1, "sent"), (2, "sent"), (3, "sent")]
    assert set(enrollment.step_runs.values_list("attempts", flat=True)) == {1}
    assert Touch.objects.filter(account=acme, kind=Touch.Kind.EMAIL, play=play).count() == 3


def test_a_sequence_email_carries_the_unsubscribe_headers_a_footer_link_and_a_stable_message_id(acme, settings):
    settings.APP_URL = "https://crm.example.com"
    enrollment = enrollment_start(account=acme, play=make_play(steps=[(0, "email")]), at=AT)

    steps_deliver_due(at=AT)

    [message] = mail.outbox
    run = enrollment.step_runs.get()
    header = message.extra_headers["List-Unsubscribe"]
    assert re.fullmatch(r"<https://crm\.example\.com/unsubscribe/[^/>]+/>", header)
    assert message.extra_headers["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert message.extra_headers["Message-ID"] == f"<step-run-{run.pk}@crm.example.com>"
    assert header[1:-1] in message.body
    assert message.reply_to == [acme.owner.email]
    assert "List-Unsubscribe: <https://crm.example.com/unsubscribe/" in message.message().as_string()


def test_a_step_not_yet_due_waits_for_its_day(acme):
    enrollment = enrollment_start(account=acme, play=make_play(steps=[(0, "email"), (3, "email")]), at=AT)

    steps_deliver_due(at=AT + days(3) - dt.timedelta(seconds=1))

    assert len(mail.outbox) == 1
    assert runs_of(enrollment) == [(1, "sent"), (2, "pending")]


# --- Stop conditions -------------------------------------------------------------------------------------


@pytest.fixture
def stripe_customer(acme, settings):
    settings.STRIPE_WEBHOOK_SECRET = SECRET
    Account.objects.filter(pk=acme.pk).update(stripe_customer_id=CUSTOMER)
    return acme


def test_an_upgrade_arriving_by_the_stripe_webhook_stops_the_rest_of_the_sequence(
    client,
    stripe_customer,
    subscription,  # noqa: F811
):
    now = timezone.now()
    enrollment = enrollment_start(account=stripe_customer, play=three_emails(), at=now)
    steps_deliver_due(at=now)
    assert len(mail.outbox) == 1

    response = deliver(client, event(upgraded_to_pro(subscription)))

    assert response.status_code == 200
    enrollment.refresh_from_db()
    assert (enrollment.status, enrollment.stop_reason) == (Enrollment.Status.STOPPED, Enrollment.StopReason.UPGRADED)
    assert runs_of(enrollment) == [(1, "sent"), (2, "cancelled"), (3, "cancelled")]
    assert details_of(enrollment)[1] == "Cancelled: the account upgraded."
    steps_deliver_due(at=now + days(10))
    assert len(mail.outbox) == 1


def test_a_won_close_recording_an_upgrade_stops_every_sequence_of_the_account(acme, csm):
    opportunity = OpportunityFactory(account=acme, stage=Stage.PRESENT, target_plan=plan("Pro"))
    other_play = enrollment_start(account=acme, play=make_play("Other", steps=[(5, "task")]), at=AT)
    own_play = enrollment_start(account=acme, play=three_emails(), at=AT, opportunity_id=opportunity.pk)

    opportunity_services.opportunity_close_won(
        opportunity=opportunity, plan=plan("Pro"), mrr_delta=Decimal("70"), by=csm, at=AT + days(1), version=1
    )

    for enrollment in (other_play, own_play):
        enrollment.refresh_from_db()
        assert (enrollment.status, enrollment.stop_reason) == ("stopped", Enrollment.StopReason.UPGRADED)


@pytest.mark.parametrize("close", ["lost", "snoozed"])
def test_closing_the_opportunity_stops_the_sequence_working_for_it(acme, csm, close):
    opportunity = OpportunityFactory(account=acme, stage=Stage.QUALIFY)
    enrollment = enrollment_start(account=acme, play=three_emails(), at=AT, opportunity_id=opportunity.pk)
    unrelated = enrollment_start(account=acme, play=make_play("Other", steps=[(5, "task")]), at=AT)

    if close == "lost":
        opportunity_services.opportunity_close_lost(
            opportunity=opportunity,
            reason=LostReason.objects.filter(active=True).first(),
            detail="",
            by=csm,
            at=AT + days(1),
            version=1,
        )
    else:
        opportunity_services.opportunity_snooze(
            opportunity=opportunity, until=(AT + days(30)).date(), by=csm, at=AT + days(1), version=1
        )

    enrollment.refresh_from_db()
    unrelated.refresh_from_db()
    assert (enrollment.status, enrollment.stop_reason) == ("stopped", Enrollment.StopReason.CLOSED)
    assert details_of(enrollment) == ["Cancelled: the opportunity closed."] * 3
    assert unrelated.status == Enrollment.Status.ACTIVE


def test_a_churned_account_and_a_deactivated_play_stop_at_the_next_delivery(acme):
    churning = enrollment_start(account=acme, play=make_play("A", steps=[(0, "email")]), at=AT)
    other = AccountFactory(owner=acme.owner)
    switched_off = make_play("B", steps=[(0, "task")])
    of_inactive_play = enrollment_start(account=other, play=switched_off, at=AT)
    Account.objects.filter(pk=acme.pk).update(status=Account.Status.CHURNED)
    Play.objects.filter(pk=switched_off.pk).update(active=False)

    steps_deliver_due(at=AT)

    churning.refresh_from_db()
    of_inactive_play.refresh_from_db()
    assert (churning.status, churning.stop_reason) == ("stopped", Enrollment.StopReason.CHURNED)
    assert (of_inactive_play.status, of_inactive_play.stop_reason) == ("stopped", Enrollment.StopReason.PLAY_INACTIVE)
    assert mail.outbox == []
    assert not Task.objects.exists()
    assert details_of(churning) == ["Cancelled: the account churned."]


def test_a_csm_stopping_the_sequence_cancels_its_steps_with_her_name(acme, csm):
    enrollment = enrollment_start(account=acme, play=three_emails(), at=AT)

    enrollment_stop(enrollment=enrollment, reason=Enrollment.StopReason.STOPPED_BY_USER, at=AT, by=csm)

    assert details_of(enrollment) == ["Cancelled: stopped by Casey Moreno."] * 3
    with pytest.raises(SequenceRefused, match="already ended"):
        enrollment_stop(enrollment=enrollment, reason=Enrollment.StopReason.STOPPED_BY_USER, at=AT, by=csm)


# --- Opt-outs --------------------------------------------------------------------------------------------


def unsubscribe_path(message) -> str:
    url = message.extra_headers["List-Unsubscribe"].strip("<>")
    return url.split("://", 1)[1].split("/", 1)[1].join(["/", ""])


def test_an_unsubscribe_stops_email_steps_to_that_address_forever_for_every_account_and_play(client, acme):
    play = make_play(steps=[(0, "email"), (3, "task"), (5, "email")])
    first = enrollment_start(account=acme, play=play, at=AT)
    steps_deliver_due(at=AT)

    response = client.post(
        unsubscribe_path(mail.outbox[0]), "List-Unsubscribe=One-Click", content_type="application/x-www-form-urlencoded"
    )

    assert response.status_code == 200
    assert EmailOptOut.objects.get().email == BUYER
    steps_deliver_due(at=AT + days(5))
    assert len(mail.outbox) == 1
    assert runs_of(first) == [(1, "sent"), (2, "sent"), (3, "skipped")]  # the task still went to Casey
    assert details_of(first)[2].startswith(f"Skipped: {BUYER} unsubscribed on ")

    # A later enrolment, in another play, of another account whose contact has the address in capitals.
    elsewhere = AccountFactory(owner=acme.owner)
    Contact.objects.create(account=elsewhere, email=BUYER.upper(), is_primary=True)
    enrollment_start(account=acme, play=make_play("Storage", steps=[(0, "email")]), at=AT + days(60))
    enrollment_start(account=elsewhere, play=play, at=AT + days(60))
    steps_deliver_due(at=AT + days(60))

    assert len(mail.outbox) == 1
    later = StepRun.objects.filter(enrollment__started_at=AT + days(60), due_at__lte=AT + days(60))
    assert sorted(later.values_list("enrollment__play__name", "status")) == [
        ("Seats upgrade", "skipped"),
        ("Storage", "skipped"),
    ]


def test_an_account_without_a_primary_contact_has_its_email_steps_skipped(account):
    enrollment = enrollment_start(account=account, play=make_play(steps=[(0, "email")]), at=AT)

    steps_deliver_due(at=AT)

    assert mail.outbox == []
    assert details_of(enrollment) == ["Skipped: no contact to email."]
    assert enrollment.step_runs.get().status == "skipped"


# --- Pitch fatigue -----------------------------------------------------------------------------------------


def test_pitch_fatigue_delays_a_step_until_the_caps_allow_and_the_timeline_says_so(acme):
    ScoringPolicy.objects.update_or_create(pk=1, defaults={"max_touches_per_30_days": 2})
    other = Play.objects.create(name="Storage")
    for ago in (10, 2):
        touch_record(account=acme, play=other, variant=None, kind=Touch.Kind.EMAIL, by=None, at=AT - days(ago))
    enrollment = enrollment_start(account=acme, play=make_play(steps=[(0, "email")]), at=AT)

    steps_deliver_due(at=AT)

    run = enrollment.step_runs.get()
    allowed = AT - days(10) + days(30)  # the older touch leaves the 30-day window
    assert (run.status, run.due_at, run.waited_until) == ("pending", allowed, allowed)
    assert run.detail.startswith("Waiting: pitch fatigue until Dec 10, 2026 06:00.")
    assert mail.outbox == []
    [entry] = [e for e in account_timeline(acme, movements=[]) if e.kind.startswith("step")]
    assert (entry.kind, entry.title) == ("step_waiting", "“Seats upgrade” step 1, email: waiting")
    assert "Waiting: pitch fatigue until Dec 10, 2026" in entry.body

    steps_deliver_due(at=allowed - dt.timedelta(seconds=1))
    assert mail.outbox == []
    steps_deliver_due(at=allowed)

    assert len(mail.outbox) == 1
    [entry] = account_step_timeline(account_id=acme.pk)
    assert entry.title == "“Seats upgrade” step 1, email: sent"
    assert "(Waited for pitch fatigue until Dec 10, 2026 06:00.)" in entry.body


def test_a_step_set_to_skip_when_fatigued_is_skipped_and_the_sequence_goes_on(acme):
    play = make_play(steps=[{"delay_days": 0, "kind": "email", "when_fatigued": "skip"}, (1, "email")], gap=7)
    touch_record(account=acme, play=play, variant=None, kind=Touch.Kind.EMAIL, by=None, at=AT - days(3))
    enrollment = enrollment_start(account=acme, play=play, at=AT)

    steps_deliver_due(at=AT)

    assert runs_of(enrollment) == [(1, "skipped"), (2, "pending")]
    assert details_of(enrollment)[0].startswith("Skipped: pitch fatigue. This play last touched the account on")
    steps_deliver_due(at=AT + days(4))  # the second step waits for the play's 7-day gap, then goes
    assert len(mail.outbox) == 1
    enrollment.refresh_from_db()
    assert enrollment.status == Enrollment.Status.COMPLETED


# --- Pause and resume --------------------------------------------------------------------------------------


def test_a_paused_sequence_runs_nothing_and_resumes_with_its_gaps_kept(acme, csm):
    enrollment = enrollment_start(account=acme, play=three_emails(), at=AT)
    steps_deliver_due(at=AT)

    enrollment_pause(enrollment=enrollment, by=csm, at=AT + days(1))
    steps_deliver_due(at=AT + days(20))
    assert len(mail.outbox) == 1

    enrollment_resume(enrollment=enrollment, by=csm, at=AT + days(11))  # paused for 10 days

    due = dict(enrollment.step_runs.values_list("step__position", "due_at"))
    assert (due[2], due[3]) == (AT + days(13), AT + days(17))
    assert enrollment.status == Enrollment.Status.ACTIVE
    steps_deliver_due(at=AT + days(13))
    assert len(mail.outbox) == 2
    with pytest.raises(SequenceRefused, match="Only a paused sequence"):
        enrollment_resume(enrollment=enrollment, by=csm, at=AT + days(14))


def test_pausing_twice_is_refused(acme, csm):
    enrollment = enrollment_start(account=acme, play=three_emails(), at=AT)
    enrollment_pause(enrollment=enrollment, by=csm, at=AT)

    with pytest.raises(SequenceRefused, match="Only a running sequence can be paused; this one is paused"):
        enrollment_pause(enrollment=enrollment, by=csm, at=AT)


# --- Enrolment, A/B tests --------------------------------------------------------------------------------


def running_experiment(play, by, **variant):
    experiment = experiment_create(
        play=play, name="Tone", variants=[VariantSpec(name="Short", **variant)], by=by, at=AT - days(1)
    )
    return experiment_start(experiment=experiment, by=by, at=AT - days(1))


def account_in_arm(experiment, *, control: bool, owner):
    variants = [(v.pk, v.weight) for v in experiment.variants.all()]
    for _ in range(200):
        candidate = AccountFactory(owner=owner)
        arm = assign_arm(
            experiment_id=experiment.pk,
            account_id=candidate.pk,
            control_share=experiment.control_share,
            variants=variants,
        )
        if (arm is None) == control:
            Contact.objects.create(account=candidate, email=f"buyer@{candidate.external_id}.example", is_primary=True)
            return Account.objects.select_related("plan", "owner").get(pk=candidate.pk)
    raise AssertionError("no account landed in the wanted arm")


def test_an_account_in_the_control_group_is_refused_and_recorded_as_held_out(csm, admin_user):
    play = three_emails()
    experiment = running_experiment(play, admin_user, email_subject="Short one")
    held_out = account_in_arm(experiment, control=True, owner=csm)

    with pytest.raises(SequenceRefused, match="control group of experiment “Tone”"):
        enrollment_start(account=held_out, play=play, at=AT)

    assert not Enrollment.objects.exists()
    assert Assignment.objects.get(account=held_out).variant is None


def test_a_variants_content_is_used_by_the_steps_that_leave_it_blank(csm, admin_user):
    play = make_play(
        steps=[(0, "email"), {"delay_days": 3, "kind": "email", "subject": "Own subject {{ account_name }}"}]
    )
    experiment = running_experiment(play, admin_user, email_subject="Variant: {{ target_plan }}", email_body="Short.")
    treated = account_in_arm(experiment, control=False, owner=csm)

    enrollment = enrollment_start(account=treated, play=play, at=AT)
    steps_deliver_due(at=AT)
    steps_deliver_due(at=AT + days(3))

    assert enrollment.variant.name == "Short"
    assert [(m.subject, m.body.split("\n\n--\n")[0]) for m in mail.outbox] == [
        ("Variant: Pro", "Short."),
        (f"Own subject {treated.name}", "Short."),
    ]
    assert set(Touch.objects.values_list("variant__name", flat=True)) == {"Short"}


def test_automatic_enrolment_leaves_out_the_control_group_and_stores_its_arm(csm, admin_user):
    play = three_emails(run_mode=Play.RunMode.AUTOMATIC)
    play.rules.add(Rule.objects.get(name="Storage at 80% or more"))
    experiment = running_experiment(play, admin_user)
    held_out = account_in_arm(experiment, control=True, owner=csm)
    treated = account_in_arm(experiment, control=False, owner=csm)
    for account in (held_out, treated):
        set_usage(account, "storage_gb", 9.2, slope=0.1)

    opportunities_flag(as_of=AS_OF, at=AT)

    assert list(Enrollment.objects.values_list("account", "variant__name")) == [(treated.pk, "Short")]
    assert Assignment.objects.get(account=held_out).variant is None


def test_a_manual_play_is_not_started_by_flagging(acme):
    play = three_emails()
    play.rules.add(Rule.objects.get(name="Storage at 80% or more"))
    set_usage(acme, "storage_gb", 9.2, slope=0.1)

    opportunities_flag(as_of=AS_OF, at=AT)

    assert Opportunity.objects.get(account=acme).play == play
    assert not Enrollment.objects.exists()


def test_it_refuses_a_play_without_steps_an_inactive_play_and_a_second_live_enrolment(acme):
    with pytest.raises(SequenceRefused, match="has no steps"):
        enrollment_start(account=acme, play=make_play("Empty", steps=[]), at=AT)
    inactive = make_play("Off", steps=[(0, "email")], active=False)
    with pytest.raises(SequenceRefused, match="is not active"):
        enrollment_start(account=acme, play=inactive, at=AT)
    play = three_emails()
    enrollment_start(account=acme, play=play, at=AT)
    with pytest.raises(SequenceRefused, match="already runs"):
        enrollment_start(account=acme, play=play, at=AT + days(1))

    assert Enrollment.objects.count() == 1
    assert StepRun.objects.count() == 3


# --- Tasks, notifications, prompts -----------------------------------------------------------------------


def test_a_task_step_gives_the_owner_a_task_due_in_the_steps_days_with_the_rendered_detail(acme, csm):
    opportunity = OpportunityFactory(account=acme)
    play = make_play(
        steps=[
            {
                "delay_days": 2,
                "kind": "task",
                "subject": "Call {{ account_name }}",
                "body": "Offer {{ target_plan }}.",
                "task_due_days": 3,
            }
        ]
    )
    enrollment = enrollment_start(account=acme, play=play, at=AT, opportunity_id=opportunity.pk)

    steps_deliver_due(at=AT + days(2))
    steps_deliver_due(at=AT + days(2))

    task = Task.objects.get()
    assert (task.assignee, task.title, task.detail, task.due_on, task.source, task.opportunity_id) == (
        csm,
        "Call Acme Analytics",
        "Offer Pro.",
        (AT + days(5)).date(),
        Task.Source.PLAY,
        opportunity.pk,
    )
    run = enrollment.step_runs.get()
    assert (run.status, run.task) == ("sent", task)
    assert run.detail == "Task for Casey Moreno, due Nov 25: Call Acme Analytics"


def test_a_notify_step_notifies_the_owner_once_and_is_skipped_when_she_muted_play_steps(acme, csm):
    play = make_play(steps=[{"delay_days": 0, "kind": "notify", "subject": "Time to call"}, (1, "notify")])
    enrollment = enrollment_start(account=acme, play=play, at=AT)

    steps_deliver_due(at=AT)
    steps_deliver_due(at=AT)
    NotificationSetting.objects.create(user=csm, muted_kinds=[Notification.Kind.PLAY_STEP])
    steps_deliver_due(at=AT + days(1))

    note = Notification.objects.get()
    assert (note.recipient, note.kind, note.title, note.url) == (
        csm,
        Notification.Kind.PLAY_STEP,
        "Acme Analytics: Time to call",
        acme.get_absolute_url(),
    )
    assert runs_of(enrollment) == [(1, "sent"), (2, "skipped")]
    assert details_of(enrollment)[1] == "Skipped: Casey Moreno does not receive play-step notifications."


def test_a_reached_prompt_step_offers_the_plays_prompt_without_a_firing_rule_until_the_sequence_ends(client, acme, csm):
    token = api_token_create(name="product")[1]
    play = make_play(steps=[(0, "prompt"), {"delay_days": 30, "kind": "task"}], gap=0)
    now = timezone.now()
    enrollment = enrollment_start(account=acme, play=play, at=now - days(1))

    def prompts():
        response = client.get(
            f"/api/v1/accounts/{acme.external_id}/prompts", headers={"Authorization": f"Bearer {token}"}
        )
        return [p["text"] for p in response.json()["prompts"]]

    assert prompts() == []  # no rule of the play fires for Acme
    steps_deliver_due(at=now - days(1))
    assert prompts() == ["Pro has room"]

    enrollment_pause(enrollment=enrollment, by=csm, at=now)
    assert prompts() == []
    enrollment_resume(enrollment=enrollment, by=csm, at=now)
    assert prompts() == ["Pro has room"]
    enrollment_stop(enrollment=enrollment, reason=Enrollment.StopReason.STOPPED_BY_USER, at=now, by=csm)
    assert prompts() == []


def test_a_prompt_steps_own_text_is_offered_and_still_shown_a_week_after_the_sequence_completed(acme):
    play = make_play(steps=[{"delay_days": 0, "kind": "prompt", "body": "{{ account_name }}, see {{ target_plan }}"}])
    enrollment = enrollment_start(account=acme, play=play, at=AT)

    steps_deliver_due(at=AT)

    enrollment.refresh_from_db()
    assert enrollment.status == Enrollment.Status.COMPLETED
    assert [p.text for p in prompts_offer(account=acme, at=AT + days(6))] == ["Acme Analytics, see Pro"]
    assert prompts_offer(account=acme, at=AT + days(8)) == []


# --- Failures ----------------------------------------------------------------------------------------------


def test_a_mailer_error_fails_the_step_with_the_reason_and_it_is_never_sent_again(acme):
    enrollment = enrollment_start(account=acme, play=make_play(steps=[(0, "email")]), at=AT)

    with mock.patch("django.core.mail.EmailMessage.send", side_effect=OSError("SMTP server unreachable")):
        steps_deliver_due(at=AT)
    steps_deliver_due(at=AT + days(1))

    run = enrollment.step_runs.get()
    assert (run.status, run.detail) == ("failed", "Failed: the mailer refused it (SMTP server unreachable).")
    assert mail.outbox == []
    assert not Touch.objects.exists()


def test_a_step_left_claimed_by_a_dead_worker_is_failed_and_never_retried(acme):
    enrollment = enrollment_start(account=acme, play=make_play(steps=[(0, "email")]), at=AT)
    # A worker claimed the step, then died before recording what happened.
    StepRun.objects.filter(enrollment=enrollment).update(
        status=StepRun.Status.CLAIMED, claim_token="6f1c1c2e-8d3b-4f7a-9d49-2f4f7c0b1a11", claimed_at=AT, attempts=1
    )

    steps_deliver_due(at=AT + CLAIM_TIMEOUT - dt.timedelta(seconds=1))
    assert enrollment.step_runs.get().status == "claimed"
    steps_deliver_due(at=AT + CLAIM_TIMEOUT + dt.timedelta(seconds=1))

    run = enrollment.step_runs.get()
    assert (run.status, run.detail) == (
        "failed",
        "Delivery interrupted; not retried so the customer is never emailed twice.",
    )
    steps_deliver_due(at=AT + days(1))
    assert mail.outbox == []


def test_a_step_whose_template_is_refused_fails_with_the_sandboxs_words(acme):
    play = make_play(steps=[{"delay_days": 0, "kind": "email", "subject": "{{ account.owner.password }}"}])
    enrollment = enrollment_start(account=acme, play=play, at=AT)

    steps_deliver_due(at=AT)

    run = enrollment.step_runs.get()
    assert run.status == "failed"
    assert "dotted names are not allowed" in run.detail
    assert mail.outbox == []


# --- What the account page reads -------------------------------------------------------------------------


def test_every_outcome_shows_in_the_accounts_timeline_in_one_query(acme, csm, django_assert_num_queries):
    play = make_play(steps=[(0, "email"), (0, "task"), (5, "email")])
    enrollment = enrollment_start(account=acme, play=play, at=AT)
    steps_deliver_due(at=AT)
    enrollment_stop(enrollment=enrollment, reason=Enrollment.StopReason.STOPPED_BY_USER, at=AT + days(1), by=csm)

    with django_assert_num_queries(1):
        items = account_step_timeline(account_id=acme.pk)

    assert [(i.kind, i.title, i.body) for i in items] == [
        ("step_cancelled", "“Seats upgrade” step 3, email: cancelled", "Cancelled: stopped by Casey Moreno."),
        (
            "step_sent",
            "“Seats upgrade” step 2, task: done",
            "Task for Casey Moreno, due Nov 22: Follow up on Seats upgrade",
        ),
        ("step_sent", "“Seats upgrade” step 1, email: sent", f"Sent to {BUYER}: Acme Analytics: room on Pro"),
    ]


def test_the_account_page_lists_the_enrolments_with_their_steps(acme, csm, django_assert_num_queries):
    old = enrollment_start(account=acme, play=make_play("Old", steps=[(0, "task")]), at=AT - days(30))
    steps_deliver_due(at=AT - days(30))
    live = enrollment_start(account=acme, play=three_emails(), at=AT)

    with django_assert_num_queries(2):
        summaries = account_enrollments(account_id=acme.pk)
        [(s.enrollment.play.name, [r.step.position for r in s.runs]) for s in summaries]

    assert [s.enrollment for s in summaries] == [live, old]
    assert (summaries[0].is_live, summaries[0].done, summaries[0].next_run.step.position) == (True, 0, 1)
    assert (summaries[1].is_live, summaries[1].done) == (False, 1)


def test_the_account_page_timeline_shows_the_steps_outcomes(csm_client, acme):
    enrollment_start(account=acme, play=make_play(steps=[(0, "email"), (0, "notify")]), at=AT)
    Contact.objects.filter(account=acme).delete()
    steps_deliver_due(at=AT)

    response = csm_client.get(reverse("opportunities:timeline", args=[acme.pk]), headers={"HX-Request": "true"})

    page = response.content.decode()
    assert "“Seats upgrade” step 1, email: skipped" in page
    assert "Skipped: no contact to email." in page
    assert "“Seats upgrade” step 2, notification: done" in page


# --- Celery ------------------------------------------------------------------------------------------------


def test_the_beat_delivers_due_steps_every_minute_through_a_thin_task(acme, eager_celery):
    from playbooks.tasks import deliver_due_steps
    from upsell_crm.celery import app

    entry = app.conf.beat_schedule["deliver-due-steps"]
    enrollment = enrollment_start(
        account=acme, play=make_play(steps=[(0, "email")]), at=timezone.now() - dt.timedelta(minutes=1)
    )

    deliver_due_steps.delay()

    assert (entry["task"], str(entry["schedule"]._orig_minute)) == ("playbooks.deliver_due_steps", "*")
    assert enrollment.step_runs.get().status == "sent"
    assert len(mail.outbox) == 1


def test_a_database_only_step_that_raises_is_rolled_back_whole_and_retried_then_failed(acme):
    enrollment = enrollment_start(account=acme, play=make_play(steps=[(0, "task")]), at=AT)

    with mock.patch("playbooks.sequence_services.task_create", side_effect=RuntimeError("task table locked")):
        steps_deliver_due(at=AT)
    run = enrollment.step_runs.get()
    assert (run.status, run.detail, run.task) == ("pending", "Retrying: task table locked", None)
    steps_deliver_due(at=AT + dt.timedelta(minutes=1))

    assert Task.objects.count() == 1
    assert enrollment.step_runs.get().status == "sent"


def test_a_step_that_keeps_raising_fails_after_its_last_attempt(acme):
    enrollment = enrollment_start(account=acme, play=make_play(steps=[(0, "notify")]), at=AT)

    with mock.patch("playbooks.sequence_services.notify", side_effect=RuntimeError("broken")):
        for minute in range(7):
            steps_deliver_due(at=AT + dt.timedelta(minutes=minute))

    run = enrollment.step_runs.get()
    assert (run.status, run.attempts, run.detail) == ("failed", 5, "Failed after 5 attempts: broken")
    assert not Notification.objects.exists()


def test_an_opportunity_cleared_by_flagging_stops_its_automatic_sequence(acme):
    play = three_emails(run_mode=Play.RunMode.AUTOMATIC)
    play.rules.add(Rule.objects.get(name="Storage at 80% or more"))
    set_usage(acme, "storage_gb", 9.2, slope=0.1)
    opportunities_flag(as_of=AS_OF, at=AT)
    steps_deliver_due(at=AT)

    set_usage(acme, "storage_gb", 1.0)  # the signal is gone: the untouched opportunity clears
    opportunities_flag(as_of=AS_OF, at=AT + days(1))

    assert Opportunity.objects.get(account=acme).outcome == Outcome.CLEARED
    enrollment = Enrollment.objects.get(account=acme)
    assert (enrollment.status, enrollment.stop_reason) == ("stopped", Enrollment.StopReason.CLOSED)
    assert runs_of(enrollment) == [(1, "sent"), (2, "cancelled"), (3, "cancelled")]
