"""The results of an experiment per arm: upgrades within the window after assignment, credited wins, statistics."""

import datetime as dt
from decimal import Decimal

import pytest

from playbooks.experiment_selectors import experiment_results
from playbooks.experiment_services import VariantSpec, experiment_create
from playbooks.experiments import two_proportion_p_value, wilson_interval
from playbooks.models import Assignment, Play, PlayCredit
from tests.factories import AccountFactory, MrrMovementFactory

ASSIGNED_AT = dt.datetime(2026, 1, 10, 15, 0, tzinfo=dt.UTC)
DAY = dt.date(2026, 1, 10)


@pytest.fixture
def experiment(admin_user):
    play = Play.objects.create(name="Seats at the limit")
    return experiment_create(
        play=play,
        name="Subject line",
        attribution_days=30,
        variants=[VariantSpec(name="Plain"), VariantSpec(name="Urgent")],
        by=admin_user,
        at=ASSIGNED_AT,
    )


def assigned(experiment, variant=None):
    account = AccountFactory()
    Assignment.objects.create(experiment=experiment, account=account, variant=variant, assigned_at=ASSIGNED_AT)
    return account


def upgrade(account, *, days_after, before="29.00", after="99.00"):
    MrrMovementFactory(
        account=account,
        occurred_on=DAY + dt.timedelta(days=days_after),
        mrr_before=Decimal(before),
        mrr_after=Decimal(after),
    )


def test_it_counts_upgrades_within_the_window_after_assignment_for_every_arm(experiment):
    plain, urgent = experiment.variants.order_by("pk")
    upgrade(assigned(experiment), days_after=0)  # the day of assignment counts
    upgrade(assigned(experiment), days_after=31)  # after the 30 days
    upgrade(assigned(experiment), days_after=-1)  # before the assignment
    assigned(experiment)
    twice = assigned(experiment, urgent)
    upgrade(twice, days_after=5)
    upgrade(twice, days_after=30, before="99.00", after="119.00")  # the last day counts; one account, once
    upgrade(assigned(experiment, urgent), days_after=12, before="29.00", after="59.00")
    assigned(experiment, urgent)
    assigned(experiment, plain)

    results = experiment_results(experiment=experiment)

    control, first, second = results.arms
    assert (control.assigned, control.upgraded, control.expansion_mrr) == (4, 1, Decimal("70.00"))
    assert (first.label, first.assigned, first.upgraded) == ("Plain", 1, 0)
    assert (second.assigned, second.upgraded, second.expansion_mrr) == (3, 2, Decimal("120.00"))
    assert second.rate == pytest.approx(2 / 3)
    assert second.interval == wilson_interval(2, 3)
    assert second.lift == pytest.approx((2 / 3 - 1 / 4) / (1 / 4))
    assert second.p_value == two_proportion_p_value(2, 3, 1, 4)
    assert results.total_assigned == 8


def test_it_counts_credited_wins_of_the_arms_own_variant_and_play_within_the_window(experiment):
    plain, urgent = experiment.variants.order_by("pk")
    play = experiment.play
    other_play = Play.objects.create(name="Storage")

    def credit(account, *, variant, days_after, play=play, mrr="70.00"):
        PlayCredit.objects.create(
            opportunity_id=PlayCredit.objects.count() + 1,
            account=account,
            play=play,
            variant=variant,
            mrr_delta=Decimal(mrr),
            won_at=ASSIGNED_AT + dt.timedelta(days=days_after),
        )

    credit(assigned(experiment, urgent), variant=urgent, days_after=10)
    credit(assigned(experiment, urgent), variant=plain, days_after=10)  # another variant's touch
    credit(assigned(experiment, urgent), variant=urgent, days_after=31)  # after the window
    credit(assigned(experiment, urgent), variant=urgent, days_after=3, play=other_play)  # another play
    credit(assigned(experiment), variant=None, days_after=3)  # control gets no credit by design

    control, _, second = experiment_results(experiment=experiment).arms
    assert (second.credited, second.credited_mrr) == (1, Decimal("70.00"))
    assert (control.credited, control.credited_mrr) == (0, Decimal("0.00"))


def test_it_declares_a_winner_only_when_significant_and_says_how_many_accounts_are_needed_otherwise(experiment):
    _, urgent = experiment.variants.order_by("pk")
    # Urgent 3 of 10 against control 1 of 10: p ≈ 0.26, far above 0.05 / 2.
    for i in range(10):
        account = assigned(experiment, urgent)
        if i < 3:
            upgrade(account, days_after=1)
    for i in range(10):
        account = assigned(experiment)
        if i < 1:
            upgrade(account, days_after=1)
    results = experiment_results(experiment=experiment)
    assert results.winner is None
    assert results.leader.variant == urgent
    assert results.alpha == 0.025
    # (2.241403 + 0.841621)² · (0.1·0.9 + 0.3·0.7) / 0.2² = 9.505037 · 0.3 / 0.04 = 71.29 -> 72 per arm
    assert results.needed_per_arm == 72


def test_it_names_the_winner_of_a_clear_difference(experiment):
    _, urgent = experiment.variants.order_by("pk")
    for i in range(40):
        account = assigned(experiment, urgent)
        if i < 20:
            upgrade(account, days_after=2)
    for i in range(40):
        account = assigned(experiment)
        if i < 2:
            upgrade(account, days_after=2)
    results = experiment_results(experiment=experiment)
    assert results.winner is not None
    assert results.winner.variant == urgent
    assert results.winner.p_value < 0.025


@pytest.mark.parametrize("size", [5, 50])
def test_it_reads_the_results_in_two_queries_whatever_the_number_of_assignments(
    experiment, size, django_assert_num_queries
):
    plain, urgent = experiment.variants.order_by("pk")
    for i in range(size):
        upgrade(assigned(experiment, [None, plain, urgent][i % 3]), days_after=i % 40)
    with django_assert_num_queries(2):
        results = experiment_results(experiment=experiment)
    assert results.total_assigned == size
