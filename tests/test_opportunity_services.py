"""The services that work an opportunity: allowed edges only, optimistic locking, one audit event each."""

import datetime as dt
from decimal import Decimal

import pytest
from django.core import mail

from accounts.models import Account, MrrMovement
from opportunities import services
from opportunities.models import LostReason, Note, Opportunity, OpportunityEvent, Outcome, Stage
from opportunities.roi import RoiInputs
from playbooks.experiment_services import VariantSpec, experiment_create, experiment_start
from playbooks.models import Assignment, Play, Touch
from tests.factories import OpportunityFactory, plan

NOW = dt.datetime(2026, 11, 24, 10, 0, tzinfo=dt.UTC)
ANSWERS = {"need_confirmed": True, "budget_confirmed": False, "business_goals": "Grow the team"}


@pytest.fixture
def opportunity(account):
    return OpportunityFactory(account=account)


def at_stage(opportunity: Opportunity, stage: Stage) -> Opportunity:
    Opportunity.objects.filter(pk=opportunity.pk).update(stage=stage)
    opportunity.refresh_from_db()
    return opportunity


def test_it_moves_an_opportunity_one_stage_on_and_records_it(opportunity, csm):
    services.opportunity_advance(opportunity=opportunity, to=Stage.QUALIFY, by=csm, at=NOW, version=1)

    opportunity.refresh_from_db()
    assert (opportunity.stage, opportunity.version, opportunity.qualified_at) == (Stage.QUALIFY, 2, NOW)
    assert opportunity.stage_entered_at == NOW
    event = opportunity.events.get()
    assert (event.kind, event.from_stage, event.to_stage, event.actor) == ("stage_changed", "identify", "qualify", csm)


def test_it_refuses_to_skip_a_stage(opportunity, csm):
    with pytest.raises(services.TransitionNotAllowed):
        services.opportunity_advance(opportunity=opportunity, to=Stage.PRESENT, by=csm, at=NOW, version=1)
    assert Opportunity.objects.get().stage == Stage.IDENTIFY
    assert not OpportunityEvent.objects.exists()


def test_it_answers_a_stale_version_with_a_conflict_and_changes_nothing(opportunity, csm):
    services.opportunity_advance(opportunity=opportunity, to=Stage.QUALIFY, by=csm, at=NOW, version=1)
    stale = Opportunity.objects.get()
    Opportunity.objects.filter(pk=stale.pk).update(version=5)

    with pytest.raises(services.Conflict):
        services.opportunity_qualify(opportunity=stale, answers=ANSWERS, move_on=False, by=csm, at=NOW, version=2)
    assert Opportunity.objects.get().qualification == {}
    assert OpportunityEvent.objects.count() == 1


def test_a_form_drawn_before_someone_else_moved_it_on_gets_a_conflict_not_a_refusal(opportunity, csm, manager):
    # Casey's panel shows Identify at version 1; Morgan moves it to Qualify first.
    services.opportunity_advance(opportunity=opportunity, to=Stage.QUALIFY, by=manager, at=NOW, version=1)
    current = Opportunity.objects.get()

    with pytest.raises(services.Conflict):
        services.opportunity_advance(opportunity=current, to=Stage.QUALIFY, by=csm, at=NOW, version=1)
    assert OpportunityEvent.objects.count() == 1


def test_it_requires_need_and_budget_answered_before_leaving_qualify(opportunity, csm):
    at_stage(opportunity, Stage.QUALIFY)
    with pytest.raises(services.TransitionNotAllowed):
        services.opportunity_qualify(
            opportunity=opportunity, answers={"need_confirmed": True}, move_on=True, by=csm, at=NOW, version=1
        )
    services.opportunity_qualify(opportunity=opportunity, answers=ANSWERS, move_on=True, by=csm, at=NOW, version=1)

    opportunity.refresh_from_db()
    assert opportunity.stage == Stage.PRESENT
    assert opportunity.qualification["budget_confirmed"] is False
    assert opportunity.presented_at == NOW


def test_it_saves_the_presentation_with_its_roi_note_and_a_trial(opportunity, csm):
    at_stage(opportunity, Stage.PRESENT)
    roi = RoiInputs(
        hours_saved_per_month=Decimal(10),
        hourly_cost=Decimal(50),
        avoided_per_month=Decimal(0),
        price_delta_per_month=Decimal(70),
    )
    services.opportunity_present(
        opportunity=opportunity,
        target_plan=plan("Pro"),
        value_proposition="Room for the new team",
        roi=roi,
        trial_ends_on=dt.date(2026, 12, 8),
        move_on=False,
        by=csm,
        at=NOW,
        version=1,
    )

    opportunity.refresh_from_db()
    assert opportunity.target_plan == plan("Pro")
    assert opportunity.trial_plan == plan("Pro")
    assert opportunity.trial_ends_on == dt.date(2026, 12, 8)
    assert "500.00 USD of value a month" in opportunity.roi_note
    assert opportunity.roi_inputs["value_proposition"] == "Room for the new team"
    assert opportunity.expected_mrr_delta == plan("Pro").monthly_price - Decimal("29.00")
    assert opportunity.events.get().kind == "updated"


def test_it_closes_as_won_moving_the_account_plan_and_mrr_with_a_movement(opportunity, csm, account):
    at_stage(opportunity, Stage.CLOSE)
    services.opportunity_close_won(
        opportunity=opportunity, plan=plan("Pro"), mrr_delta=Decimal("70.00"), by=csm, at=NOW, version=1
    )

    account = Account.objects.get(pk=account.pk)
    assert (account.plan, account.mrr, account.plan_started_on) == (plan("Pro"), Decimal("99.00"), NOW.date())
    movement = MrrMovement.objects.get()
    assert (movement.kind, movement.source, movement.mrr_before, movement.mrr_after) == (
        "expansion",
        "opportunity",
        Decimal("29.00"),
        Decimal("99.00"),
    )
    opportunity.refresh_from_db()
    assert (opportunity.outcome, opportunity.actual_mrr_delta, opportunity.closed_at) == ("won", Decimal("70.00"), NOW)
    assert opportunity.events.get().kind == "closed"


def test_it_does_not_let_an_opportunity_be_won_before_it_is_presented(opportunity, csm):
    with pytest.raises(services.TransitionNotAllowed):
        services.opportunity_close_won(
            opportunity=opportunity, plan=plan("Pro"), mrr_delta=Decimal(70), by=csm, at=NOW, version=1
        )
    assert not MrrMovement.objects.exists()


def test_it_closes_as_lost_with_a_reason(opportunity, csm):
    reason = LostReason.objects.filter(active=True).first()
    services.opportunity_close_lost(
        opportunity=opportunity, reason=reason, detail="Budget frozen", by=csm, at=NOW, version=1
    )

    opportunity.refresh_from_db()
    assert (opportunity.outcome, opportunity.lost_reason, opportunity.lost_detail) == ("lost", reason, "Budget frozen")


def test_it_snoozes_and_reopens_an_opportunity_when_its_day_comes(opportunity, csm):
    services.opportunity_snooze(opportunity=opportunity, until=dt.date(2026, 12, 1), by=csm, at=NOW, version=1)
    opportunity.refresh_from_db()
    assert (opportunity.outcome, opportunity.snoozed_until) == (Outcome.SNOOZED, dt.date(2026, 12, 1))

    services.opportunity_reopen(opportunity=opportunity, by=csm, at=NOW + dt.timedelta(days=8), version=2)
    opportunity.refresh_from_db()
    assert (opportunity.outcome, opportunity.closed_at, opportunity.version) == (Outcome.OPEN, None, 3)


def test_it_refuses_a_snooze_that_ends_today(opportunity, csm):
    with pytest.raises(services.TransitionNotAllowed):
        services.opportunity_snooze(opportunity=opportunity, until=NOW.date(), by=csm, at=NOW, version=1)


def test_it_opens_one_opportunity_by_hand_and_no_second(account, csm):
    opportunity = services.opportunity_open_manually(account=account, by=csm, at=NOW)
    assert (opportunity.source, opportunity.stage, opportunity.owner) == ("manual", "identify", csm)
    with pytest.raises(services.TransitionNotAllowed):
        services.opportunity_open_manually(account=account, by=csm, at=NOW)


def test_it_lets_only_a_manager_assign(opportunity, csm, other_csm, manager):
    with pytest.raises(services.TransitionNotAllowed):
        services.opportunity_assign(opportunity=opportunity, owner=other_csm, by=csm, at=NOW, version=1)
    services.opportunity_assign(opportunity=opportunity, owner=other_csm, by=manager, at=NOW, version=1)
    assert Opportunity.objects.get().owner == other_csm


def test_it_sends_the_email_once_committed_and_records_it(opportunity, csm, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        services.opportunity_email_send(
            opportunity=opportunity, to=["buyer@example.com"], subject="Hi", body="Body", by=csm, at=NOW, version=1
        )
    assert [message.to for message in mail.outbox] == [["buyer@example.com"]]
    assert opportunity.events.get().kind == "email_sent"


def test_it_adds_a_note_to_the_account_and_the_opportunity_trail(opportunity, account, csm):
    note = services.note_add(account=account, opportunity=opportunity, author=csm, body="  Call went well ", at=NOW)
    assert Note.objects.get() == note
    assert note.body == "Call went well"
    assert opportunity.events.get().kind == "note"


def start_experiment(play, by, *, control_share):
    experiment = experiment_create(
        play=play,
        name="Subject test",
        variants=[VariantSpec(name="Urgent")],
        control_share=control_share,
        by=by,
        at=NOW,
    )
    return experiment_start(experiment=experiment, by=by, at=NOW)


def test_it_refuses_the_email_of_a_play_to_an_account_held_out_of_its_experiment(
    account, csm, admin_user, django_capture_on_commit_callbacks
):
    play = Play.objects.create(name="Seats upgrade")
    experiment = start_experiment(play, admin_user, control_share=0.10)
    Assignment.objects.create(experiment=experiment, account=account, variant=None, assigned_at=NOW)
    opportunity = OpportunityFactory(account=account, play=play)

    with django_capture_on_commit_callbacks(execute=True), pytest.raises(services.HeldOut, match="control group"):
        services.opportunity_email_send(
            opportunity=opportunity, to=["buyer@example.com"], subject="Hi", body="Body", by=csm, at=NOW, version=1
        )

    assert mail.outbox == []
    assert not Touch.objects.exists()
    assert not opportunity.events.exists()


def test_it_records_the_accounts_variant_on_the_email_touch(account, csm, admin_user):
    play = Play.objects.create(name="Seats upgrade")
    experiment = start_experiment(play, admin_user, control_share=0)  # no control group: everyone is in Urgent
    opportunity = OpportunityFactory(account=account, play=play)

    services.opportunity_email_send(
        opportunity=opportunity, to=["buyer@example.com"], subject="Hi", body="Body", by=csm, at=NOW, version=1
    )

    touch = Touch.objects.get()
    assert (touch.play, touch.variant, touch.kind) == (play, experiment.variants.get(), Touch.Kind.EMAIL)
