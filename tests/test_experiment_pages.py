"""The A/B test pages under /settings/experiments/: admins create, start, stop and read experiments."""

import datetime as dt
from decimal import Decimal

import pytest
from django.urls import reverse
from django.utils import timezone

from accounts.models import AuditEntry
from playbooks.experiment_services import VariantSpec, experiment_create, experiment_start
from playbooks.models import Assignment, Experiment, Play, Variant
from tests.factories import AccountFactory, MrrMovementFactory


@pytest.fixture
def play(db):
    return Play.objects.create(name="Seats at the limit", email_subject="Running out of seats?")


@pytest.fixture
def admin_client(client, admin_user):
    client.force_login(admin_user)
    return client


@pytest.fixture
def experiment(play, admin_user):
    return experiment_create(
        play=play,
        name="Subject line",
        hypothesis="Naming the limit converts better.",
        variants=[VariantSpec(name="Plain"), VariantSpec(name="Urgent", email_subject="1 seat left")],
        by=admin_user,
        at=timezone.now(),
    )


def form_data(play, **overrides):
    data = {
        "play": play.pk,
        "name": "Subject line",
        "hypothesis": "Naming the limit converts better.",
        "control_percent": "10",
        "attribution_days": "90",
        "variants-TOTAL_FORMS": "3",
        "variants-INITIAL_FORMS": "0",
        "variants-MIN_NUM_FORMS": "2",
        "variants-MAX_NUM_FORMS": "5",
        "variants-0-name": "Plain",
        "variants-0-weight": "1",
        "variants-1-name": "Urgent",
        "variants-1-weight": "1",
        "variants-1-email_subject": "{{ metric }} at {{ utilization }} of your limit",
        "variants-2-name": "",
        "variants-2-weight": "1",
    }
    data.update(overrides)
    return data


def test_it_lets_an_admin_create_start_and_read_an_experiment(admin_client, play, admin_user):
    page = admin_client.get(reverse("settings:experiment_create"))
    assert page.status_code == 200
    assert b'value="10"' in page.content  # the 10% control group by default

    response = admin_client.post(reverse("settings:experiment_create"), form_data(play))
    experiment = Experiment.objects.get()
    assert response.status_code == 302
    assert response.url == reverse("settings:experiment_detail", args=[experiment.pk])
    assert (experiment.control_share, experiment.attribution_days, experiment.status) == (0.10, 90, "draft")
    assert list(experiment.variants.order_by("pk").values_list("name", "email_subject")) == [
        ("Plain", ""),
        ("Urgent", "{{ metric }} at {{ utilization }} of your limit"),
    ]

    response = admin_client.post(reverse("settings:experiment_start", args=[experiment.pk]))
    assert response.status_code == 302
    experiment.refresh_from_db()
    assert experiment.status == Experiment.Status.RUNNING
    assert AuditEntry.objects.filter(object_id=str(experiment.pk), actor=admin_user).count() == 2

    page = admin_client.get(reverse("settings:experiment_detail", args=[experiment.pk]))
    assert page.status_code == 200
    text = page.content.decode()
    assert "Results by arm" in text
    assert "Control (holdout)" in text
    assert "No accounts assigned yet" in text
    assert "Stop the experiment" in text

    listing = admin_client.get(reverse("settings:experiments"))
    assert "Subject line" in listing.content.decode()
    assert "badge--experiment-running" in listing.content.decode()


def test_it_refuses_fewer_than_two_variants_with_a_422_and_stores_nothing(admin_client, play):
    response = admin_client.post(
        reverse("settings:experiment_create"),
        form_data(play, **{"variants-1-name": "", "variants-1-email_subject": ""}),
    )
    assert response.status_code == 422
    assert "variants-1-name" in response.content.decode()
    assert "This field is required" in response.content.decode()
    assert not Experiment.objects.exists()


def test_it_refuses_an_unsafe_variant_template_next_to_its_field(admin_client, play):
    response = admin_client.post(
        reverse("settings:experiment_create"), form_data(play, **{"variants-1-email_body": "{% load log %}hi"})
    )
    assert response.status_code == 422
    assert "id_variants-1-email_body_error" in response.content.decode()
    assert not Experiment.objects.exists()
    assert not Variant.objects.exists()


def test_it_refuses_a_control_group_over_half_and_two_variants_with_one_name(admin_client, play):
    response = admin_client.post(reverse("settings:experiment_create"), form_data(play, control_percent="80"))
    assert response.status_code == 422
    assert "id_control_percent_error" in response.content.decode()
    response = admin_client.post(reverse("settings:experiment_create"), form_data(play, **{"variants-1-name": "plain"}))
    assert response.status_code == 422
    assert "Give each variant its own name." in response.content.decode()
    assert not Experiment.objects.exists()


def test_it_shows_why_a_second_experiment_on_a_running_play_cannot_start(admin_client, experiment, play, admin_user):
    experiment_start(experiment=experiment, by=admin_user, at=timezone.now())
    second = experiment_create(
        play=play, name="Prompt wording", variants=[VariantSpec(name="A")], by=admin_user, at=timezone.now()
    )
    response = admin_client.post(reverse("settings:experiment_start", args=[second.pk]))
    assert response.status_code == 409
    assert "“Subject line” is already running on this play" in response.content.decode()
    second.refresh_from_db()
    assert second.status == Experiment.Status.DRAFT


def test_it_stops_a_running_experiment(admin_client, experiment, admin_user):
    experiment_start(experiment=experiment, by=admin_user, at=timezone.now())
    response = admin_client.post(reverse("settings:experiment_stop", args=[experiment.pk]))
    assert response.status_code == 302
    experiment.refresh_from_db()
    assert experiment.status == Experiment.Status.STOPPED


def test_it_only_starts_and_stops_on_post(admin_client, experiment):
    assert admin_client.get(reverse("settings:experiment_start", args=[experiment.pk])).status_code == 405
    assert admin_client.get(reverse("settings:experiment_stop", args=[experiment.pk])).status_code == 405


@pytest.mark.parametrize("persona", ["csm", "manager"])
def test_it_keeps_everyone_but_admins_out(db, client, request, persona, experiment):
    client.force_login(request.getfixturevalue(persona))
    for url in (
        reverse("settings:experiments"),
        reverse("settings:experiment_create"),
        reverse("settings:experiment_detail", args=[experiment.pk]),
    ):
        assert client.get(url).status_code == 403
    assert client.post(reverse("settings:experiment_start", args=[experiment.pk])).status_code == 403
    experiment.refresh_from_db()
    assert experiment.status == Experiment.Status.DRAFT


def populate(experiment, size):
    variants = list(experiment.variants.order_by("pk"))
    arms = [None, *variants]
    assigned_at = timezone.now() - dt.timedelta(days=20)
    for i in range(size):
        account = AccountFactory()
        Assignment.objects.create(experiment=experiment, account=account, variant=arms[i % 3], assigned_at=assigned_at)
        if i % 2:
            MrrMovementFactory(
                account=account,
                occurred_on=timezone.localdate() - dt.timedelta(days=5),
                mrr_before=Decimal("29.00"),
                mrr_after=Decimal("99.00"),
            )


@pytest.mark.parametrize("size", [5, 50])
def test_it_draws_the_results_page_in_a_fixed_number_of_queries(
    admin_client, experiment, admin_user, size, django_assert_num_queries
):
    experiment_start(experiment=experiment, by=admin_user, at=timezone.now())
    populate(experiment, size)
    url = reverse("settings:experiment_detail", args=[experiment.pk])
    # session, user, role groups, the experiment with its play and creator, variants, the arms aggregate
    with django_assert_num_queries(6):
        page = admin_client.get(url)
    assert page.status_code == 200
    assert f'<span class="kpi__value">{size}</span>' in page.content.decode()
    assert page.content.decode().count('class="ci"') == 3


def test_it_names_the_winner_in_words(admin_client, experiment, admin_user):
    experiment_start(experiment=experiment, by=admin_user, at=timezone.now())
    plain, urgent = experiment.variants.order_by("pk")
    assigned_at = timezone.now() - dt.timedelta(days=20)
    for i in range(60):
        arm = [None, plain, urgent][i % 3]
        account = AccountFactory()
        Assignment.objects.create(experiment=experiment, account=account, variant=arm, assigned_at=assigned_at)
        if arm == urgent or (arm == plain and i < 6):
            MrrMovementFactory(account=account, occurred_on=timezone.localdate() - dt.timedelta(days=5))
    text = admin_client.get(reverse("settings:experiment_detail", args=[experiment.pk])).content.decode()
    assert "Urgent wins" in text
    assert "100.0% of its 20 accounts upgraded" in text


def test_it_lists_experiments_in_a_fixed_number_of_queries(
    admin_client, experiment, play, admin_user, django_assert_num_queries
):
    for i in range(3):
        experiment_create(
            play=play, name=f"Test {i}", variants=[VariantSpec(name="A")], by=admin_user, at=timezone.now()
        )
    with django_assert_num_queries(4):
        response = admin_client.get(reverse("settings:experiments"))
    assert response.content.decode().count("badge--experiment-draft") == 4
