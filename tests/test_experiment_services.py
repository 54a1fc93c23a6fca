"""A/B test services: experiments start and stop, accounts are assigned once, wins are credited to the first touch."""

import datetime as dt
from decimal import Decimal

import pytest
from django.utils import timezone

from accounts.models import AuditEntry, MrrMovement
from opportunities import services as opportunity_services
from opportunities.billing import opportunities_close_won_by_billing
from opportunities.flagging import opportunities_flag
from opportunities.models import Opportunity, Outcome, Stage
from playbooks.experiment_services import (
    ExperimentNotAllowed,
    VariantSpec,
    experiment_assign,
    experiment_assignments_record,
    experiment_create,
    experiment_start,
    experiment_stop,
    is_in_control,
    play_content_for,
    play_credit_record,
)
from playbooks.experiments import assign_arm
from playbooks.models import Assignment, Experiment, Play, PlayCredit, Rule, Touch
from tests.factories import AccountFactory, OpportunityFactory, plan

AT = dt.datetime(2026, 3, 2, 10, 0, tzinfo=dt.UTC)


@pytest.fixture
def play(db):
    return Play.objects.create(
        name="Seats at the limit",
        email_subject="You are about to run out of seats",
        email_body="Hello {{ account_name }}",
        prompt_text="Add seats now",
        trial_days=14,
    )


@pytest.fixture
def other_play(db):
    return Play.objects.create(name="Storage growth")


def make_experiment(play, by, *, control_share=0.10, attribution_days=90, name="Subject line test"):
    return experiment_create(
        play=play,
        name=name,
        hypothesis="A concrete subject line converts better.",
        control_share=control_share,
        attribution_days=attribution_days,
        variants=[VariantSpec(name="Plain"), VariantSpec(name="Urgent", email_subject="Only 1 seat left")],
        by=by,
        at=AT,
    )


@pytest.fixture
def running(play, admin_user):
    return experiment_start(experiment=make_experiment(play, admin_user), by=admin_user, at=AT)


def account_in(experiment, *, control: bool):
    """An account whose deterministic arm is control (or a variant) in this experiment."""
    variants = [(v.pk, v.weight) for v in experiment.variants.all()]
    for _ in range(200):
        account = AccountFactory()
        arm = assign_arm(
            experiment_id=experiment.pk,
            account_id=account.pk,
            control_share=experiment.control_share,
            variants=variants,
        )
        if (arm is None) == control:
            return account
    raise AssertionError("no account landed in the wanted arm")


def touch(account, play, *, days_before, variant=None, kind=Touch.Kind.EMAIL, won_at=AT):
    return Touch.objects.create(
        account=account, play=play, variant=variant, kind=kind, occurred_at=won_at - dt.timedelta(days=days_before)
    )


# --- Create, start, stop ---------------------------------------------------------------------------------


def test_it_creates_a_draft_experiment_with_its_variants_and_audits_it(play, admin_user):
    experiment = make_experiment(play, admin_user)
    assert experiment.status == Experiment.Status.DRAFT
    assert [v.name for v in experiment.variants.order_by("pk")] == ["Plain", "Urgent"]
    entry = AuditEntry.objects.get(object_type="playbooks.Experiment", object_id=str(experiment.pk))
    assert entry.action == AuditEntry.Action.CREATED
    assert entry.actor == admin_user
    assert [v["name"] for v in entry.after["variants"]] == ["Plain", "Urgent"]


def test_it_refuses_two_variants_with_the_same_name_and_stores_nothing(play, admin_user):
    with pytest.raises(ExperimentNotAllowed, match="differ"):
        experiment_create(
            play=play, name="Dup", variants=[VariantSpec(name="A"), VariantSpec(name="a")], by=admin_user, at=AT
        )
    assert not Experiment.objects.exists()


def test_it_starts_and_stops_an_experiment_with_audit_entries(play, admin_user):
    experiment = make_experiment(play, admin_user)
    experiment_start(experiment=experiment, by=admin_user, at=AT)
    assert experiment.status == Experiment.Status.RUNNING
    assert experiment.started_at == AT
    experiment_stop(experiment=experiment, by=admin_user, at=AT + dt.timedelta(days=30))
    assert experiment.status == Experiment.Status.STOPPED
    changes = list(
        AuditEntry.objects.filter(object_id=str(experiment.pk), action=AuditEntry.Action.UPDATED)
        .order_by("pk")
        .values_list("after", flat=True)
    )
    assert [c["status"] for c in changes] == ["running", "stopped"]


def test_it_refuses_a_second_running_experiment_on_the_same_play_with_a_clear_error(running, play, admin_user):
    second = make_experiment(play, admin_user, name="Prompt wording")
    with pytest.raises(ExperimentNotAllowed, match="“Subject line test” is already running on this play"):
        experiment_start(experiment=second, by=admin_user, at=AT)
    second.refresh_from_db()
    assert second.status == Experiment.Status.DRAFT
    assert not AuditEntry.objects.filter(object_id=str(second.pk), action=AuditEntry.Action.UPDATED).exists()


def test_it_lets_another_play_run_its_own_experiment_at_the_same_time(running, other_play, admin_user):
    experiment = experiment_start(experiment=make_experiment(other_play, admin_user), by=admin_user, at=AT)
    assert experiment.status == Experiment.Status.RUNNING


def test_it_does_not_restart_a_stopped_experiment(running, admin_user):
    experiment_stop(experiment=running, by=admin_user, at=AT)
    with pytest.raises(ExperimentNotAllowed, match="stopped"):
        experiment_start(experiment=running, by=admin_user, at=AT)


# --- Assignment ------------------------------------------------------------------------------------------


def test_it_stores_an_assignment_once_and_returns_the_stored_arm_afterwards(running, play, account):
    experiment, variant = experiment_assign(account=account, play=play, at=AT)
    again = experiment_assign(account=account, play=play, at=AT + dt.timedelta(days=3))
    assert again == (experiment, variant)
    stored = Assignment.objects.get(experiment=running, account=account)
    assert stored.variant == variant
    assert stored.assigned_at == AT
    assert Assignment.objects.count() == 1


def test_it_keeps_the_first_stored_arm_even_when_the_computed_one_differs(running, play):
    # A row stored by a concurrent caller wins; the insert does nothing and the stored arm comes back.
    account = account_in(running, control=False)
    Assignment.objects.create(experiment=running, account=account, variant=None, assigned_at=AT)
    assert experiment_assign(account=account, play=play, at=AT) == (running, None)
    assert Assignment.objects.count() == 1


def test_it_assigns_nobody_when_the_play_runs_no_experiment(play, account, admin_user):
    make_experiment(play, admin_user)  # a draft
    assert experiment_assign(account=account, play=play, at=AT) is None
    assert not Assignment.objects.exists()


def test_it_assigns_many_accounts_in_a_fixed_number_of_queries(running, play, other_play, django_assert_num_queries):
    accounts = AccountFactory.create_batch(20)
    pairs = [(a.pk, play.pk) for a in accounts] + [(accounts[0].pk, other_play.pk)]
    with django_assert_num_queries(3):
        assert experiment_assignments_record(pairs=pairs, at=AT) == 20
    assert Assignment.objects.filter(experiment=running).count() == 20


def test_it_tells_the_email_and_prompt_code_which_accounts_are_held_out(running, play, admin_user):
    held_out = account_in(running, control=True)
    treated = account_in(running, control=False)
    assert is_in_control(account=held_out, play=play)
    assert not is_in_control(account=treated, play=play)
    experiment_stop(experiment=running, by=admin_user, at=AT)
    assert not is_in_control(account=held_out, play=play)


def test_it_gives_the_variant_content_with_blank_fields_falling_back_to_the_play(running, play):
    plain, urgent = running.variants.order_by("pk")
    content = play_content_for(play=play, variant=urgent)
    assert content.email_subject == "Only 1 seat left"
    assert content.email_body == "Hello {{ account_name }}"
    assert content.trial_days == 14
    assert play_content_for(play=play, variant=plain).email_subject == "You are about to run out of seats"
    assert play_content_for(play=play, variant=None).prompt_text == "Add seats now"


def test_it_assigns_an_account_when_flagging_opens_an_opportunity_for_a_play_with_a_running_experiment(
    running, play, account, admin_user
):
    rule = Rule.objects.create(name="Always", min_logins_per_week=0, weight=50)
    Rule.objects.exclude(pk=rule.pk).update(enabled=False)
    play.rules.add(rule)
    opportunities_flag(as_of=AT.date(), at=AT, account_ids=[account.pk])
    opportunity = Opportunity.objects.get(account=account)
    assert opportunity.play == play
    assignment = Assignment.objects.get(account=account)
    assert assignment.experiment == running
    assert assignment.assigned_at == AT


# --- Attribution -----------------------------------------------------------------------------------------


def test_it_credits_the_first_touch_within_the_window_not_a_later_one_nor_one_before_it(
    running, play, other_play, account
):
    urgent = running.variants.get(name="Urgent")
    touch(account, other_play, days_before=120)  # before the 90-day window
    first = touch(account, play, days_before=60, variant=urgent)
    touch(account, other_play, days_before=10)  # later
    credit = play_credit_record(opportunity_id=501, account=account, won_at=AT, mrr_delta=Decimal("70.00"))
    assert credit.touch == first
    assert (credit.play, credit.variant, credit.mrr_delta) == (play, urgent, Decimal("70.00"))


def test_it_uses_the_experiments_attribution_window_for_its_play(play, other_play, account, admin_user):
    experiment_start(experiment=make_experiment(play, admin_user, attribution_days=30), by=admin_user, at=AT)
    touch(account, play, days_before=45)  # outside this play's 30 days
    within_default = touch(account, other_play, days_before=40)  # inside the other play's 90 days
    credit = play_credit_record(opportunity_id=502, account=account, won_at=AT, mrr_delta=Decimal("10"))
    assert credit.touch == within_default


def test_it_ignores_touches_after_the_win_and_credits_nobody_without_a_touch(play, account):
    touch(account, play, days_before=-1)
    assert play_credit_record(opportunity_id=503, account=account, won_at=AT, mrr_delta=Decimal("10")) is None
    assert not PlayCredit.objects.exists()


def test_it_credits_an_opportunity_once(play, account):
    touch(account, play, days_before=5)
    play_credit_record(opportunity_id=504, account=account, won_at=AT, mrr_delta=Decimal("10"))
    play_credit_record(opportunity_id=504, account=account, won_at=AT, mrr_delta=Decimal("10"))
    assert PlayCredit.objects.filter(opportunity_id=504).count() == 1


def test_it_credits_a_win_closed_by_the_csm(running, play, account, csm):
    urgent = running.variants.get(name="Urgent")
    now = timezone.now()
    touch(account, play, days_before=20, variant=urgent, won_at=now)
    opportunity = OpportunityFactory(account=account, play=play, stage=Stage.PRESENT)
    opportunity_services.opportunity_close_won(
        opportunity=opportunity,
        plan=plan("Pro"),
        mrr_delta=Decimal("70.00"),
        by=csm,
        at=now,
        version=opportunity.version,
    )
    credit = PlayCredit.objects.get(opportunity_id=opportunity.pk)
    assert (credit.play, credit.variant, credit.mrr_delta, credit.won_at) == (play, urgent, Decimal("70.00"), now)


def test_it_credits_a_win_closed_by_a_stripe_upgrade(running, play, account):
    urgent = running.variants.get(name="Urgent")
    now = timezone.now()
    touch(account, play, days_before=3, variant=urgent, won_at=now)
    opportunity = OpportunityFactory(account=account, play=play, identified_at=now - dt.timedelta(days=7))
    upgrade = MrrMovement.objects.create(
        account=account,
        occurred_on=timezone.localdate(now),
        kind=MrrMovement.Kind.EXPANSION,
        mrr_before=Decimal("29.00"),
        mrr_after=Decimal("99.00"),
        source=MrrMovement.Source.STRIPE,
    )
    # No plan named by billing nor on the opportunity: the target plan stays empty (a NULL of the right type).
    assert opportunities_close_won_by_billing(movements=[upgrade], at=now) == [opportunity.pk]
    opportunity.refresh_from_db()
    assert opportunity.outcome == Outcome.WON
    credit = PlayCredit.objects.get(opportunity_id=opportunity.pk)
    assert (credit.play, credit.variant, credit.mrr_delta) == (play, urgent, Decimal("70.00"))


def test_the_present_form_offers_the_trial_of_the_accounts_variant(client, csm, play, admin_user):
    longer = experiment_create(
        play=play,
        name="Longer trial",
        control_share=0.0,
        variants=[VariantSpec(name="Thirty days", trial_days=30)],
        by=admin_user,
        at=AT,
    )
    experiment_start(experiment=longer, by=admin_user, at=AT)
    opportunity = OpportunityFactory(account=AccountFactory(owner=csm), play=play, stage=Stage.PRESENT)
    client.force_login(csm)

    form = client.get(opportunity.account.get_absolute_url()).context["present_form"]

    # The play offers 14 days; the account's arm of the running experiment offers 30.
    assert form.fields["trial_ends_on"].initial == timezone.localdate() + dt.timedelta(days=30)
