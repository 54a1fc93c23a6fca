"""GET /api/v1/accounts/{external_id}/prompts and POST /api/v1/prompts/{id}/events: the in-app prompts of the
plays whose rules fire for an account, in its A/B variant, within the frequency cap and pitch fatigue."""

import datetime as dt

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from accounts.models import Account, AccountIndicator
from accounts.tokens import api_token_create
from playbooks.experiment_services import VariantSpec, experiment_create, experiment_start
from playbooks.experiments import assign_arm
from playbooks.models import Assignment, Play, Rule, ScoringPolicy, Touch
from playbooks.selectors import account_touches
from playbooks.services import touch_record
from tests.api_helpers import pointers, post_json
from tests.factories import AccountFactory, metric, plan

WRITES = ("INSERT", "UPDATE", "DELETE", "REPLACE")


@pytest.fixture
def token(db):
    return api_token_create(name="product")[1]


@pytest.fixture
def seats_rule(db):
    return Rule.objects.create(name="Seats at 90%", metric=metric("seats"), min_utilization=0.9, weight=40)


@pytest.fixture
def play(seats_rule):
    play = Play.objects.create(
        name="Seats at the limit",
        target_plan=plan("Pro"),
        prompt_kind=Play.PromptKind.BANNER,
        prompt_text="{{ account_name }} uses {{ utilization }} of its {{ metric }}: {{ target_plan }} has room.",
        prompt_cta_label="See Pro",
        prompt_cta_url="https://example.com/upgrade",
        prompt_max_per_week=3,
        min_days_between_touches=0,
    )
    play.rules.add(seats_rule)
    return play


def seats_at(account, utilization: float):
    """The account's stored seats indicator, as the refresh writes it."""
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


def get_prompts(client, account, token=None):
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return client.get(f"/api/v1/accounts/{account.external_id}/prompts", headers=headers)


def prompts_of(client, account, token):
    response = get_prompts(client, account, token)
    assert response.status_code == 200
    return response.json()["prompts"]


def send_event(client, prompt_id, body, token, **headers):
    return post_json(client, f"/api/v1/prompts/{prompt_id}/events", body, token=token, **headers)


def ago(**delta):
    return timezone.now() - dt.timedelta(**delta)


def experiment_on(play, by, *, variants):
    experiment = experiment_create(play=play, name="Prompt wording", variants=variants, by=by, at=ago(days=1))
    return experiment_start(experiment=experiment, by=by, at=ago(days=1))


def account_in_arm(experiment, *, control: bool):
    """A new account near its seats limit whose deterministic arm is control (or a variant)."""
    variants = [(v.pk, v.weight) for v in experiment.variants.all()]
    for _ in range(200):
        candidate = AccountFactory()
        arm = assign_arm(
            experiment_id=experiment.pk,
            account_id=candidate.pk,
            control_share=experiment.control_share,
            variants=variants,
        )
        if (arm is None) == control:
            seats_at(candidate, 0.96)
            return candidate
    raise AssertionError("no account landed in the wanted arm")


# --- What is offered -------------------------------------------------------------------------------------


def test_it_offers_the_prompt_of_a_play_whose_rules_fire_with_the_accounts_merge_fields(
    client, token, play, near_limit
):
    [prompt] = prompts_of(client, near_limit, token)

    assert {key: value for key, value in prompt.items() if key != "id"} == {
        "play": "Seats at the limit",
        "kind": "banner",
        "text": "Acme Analytics uses 96% of its Seats: Pro has room.",
        "cta_label": "See Pro",
        "cta_url": "https://example.com/upgrade",
        "variant": None,
    }
    assert prompt["id"]


def test_it_offers_nothing_when_the_plays_rules_do_not_fire(client, token, play, account):
    seats_at(account, 0.5)

    assert prompts_of(client, account, token) == []


def test_it_offers_nothing_from_inactive_plays_plays_without_prompt_text_or_without_enabled_rules(
    client, token, play, seats_rule, near_limit
):
    silent = Play.objects.create(name="Email only", email_subject="Hi")
    silent.rules.add(seats_rule)
    Play.objects.create(name="No rules", prompt_text="Upgrade")
    Play.objects.filter(pk=play.pk).update(active=False)
    assert prompts_of(client, near_limit, token) == []

    Play.objects.filter(pk=play.pk).update(active=True)
    Rule.objects.filter(pk=seats_rule.pk).update(enabled=False)
    assert prompts_of(client, near_limit, token) == []


def test_a_churned_account_gets_no_prompt(client, token, play, near_limit):
    Account.objects.filter(pk=near_limit.pk).update(status=Account.Status.CHURNED)

    assert prompts_of(client, near_limit, token) == []


def test_a_prompt_template_the_sandbox_refuses_is_skipped_not_a_server_error(client, token, play, near_limit):
    # Saved around the settings page's check (the Django admin, an old row).
    Play.objects.filter(pk=play.pk).update(prompt_text="{{ account.owner.password }}")

    assert prompts_of(client, near_limit, token) == []


# --- A/B tests ---------------------------------------------------------------------------------------------


def test_the_control_group_of_a_running_experiment_gets_no_prompt(client, token, play, admin_user):
    running = experiment_on(play, admin_user, variants=[VariantSpec(name="Short", prompt_text="Need seats?")])
    held_out = account_in_arm(running, control=True)

    assert prompts_of(client, held_out, token) == []


def test_a_variant_shows_its_own_prompt_text_and_names_itself(client, token, play, admin_user):
    running = experiment_on(
        play, admin_user, variants=[VariantSpec(name="Short", prompt_text="{{ account_name }}: need seats?")]
    )
    treated = account_in_arm(running, control=False)

    [prompt] = prompts_of(client, treated, token)

    assert (prompt["text"], prompt["variant"], prompt["cta_label"]) == (
        f"{treated.name}: need seats?",
        "Short",
        "See Pro",
    )


def test_reading_the_prompts_of_a_running_experiment_writes_nothing_not_even_the_assignment(
    client, token, play, admin_user
):
    running = experiment_on(play, admin_user, variants=[VariantSpec(name="Short", prompt_text="Need seats?")])
    treated = account_in_arm(running, control=False)
    prompts_of(client, treated, token)  # the token's last use is stamped on its first request

    with CaptureQueriesContext(connection) as queries:
        [prompt] = prompts_of(client, treated, token)

    assert prompt["variant"] == "Short"
    assert [q["sql"] for q in queries.captured_queries if q["sql"].lstrip().upper().startswith(WRITES)] == []
    assert not Assignment.objects.exists()


def test_the_arm_is_stored_when_the_product_reports_the_prompt_shown(client, token, play, admin_user):
    running = experiment_on(play, admin_user, variants=[VariantSpec(name="Short", prompt_text="Need seats?")])
    treated = account_in_arm(running, control=False)
    [prompt] = prompts_of(client, treated, token)

    response = send_event(client, prompt["id"], {"account": treated.external_id, "type": "impression"}, token)

    assert response.status_code == 201
    assignment = Assignment.objects.get(account=treated)
    assert (assignment.experiment, assignment.variant.name) == (running, "Short")


def test_the_stored_arm_decides_whatever_the_computed_one(client, token, play, admin_user, near_limit):
    running = experiment_on(play, admin_user, variants=[VariantSpec(name="Short", prompt_text="Need seats?")])
    Assignment.objects.create(experiment=running, account=near_limit, variant=None, assigned_at=ago(days=1))

    assert prompts_of(client, near_limit, token) == []


# --- Caps ----------------------------------------------------------------------------------------------------


def impression(account, play, *, at):
    touch_record(account=account, play=play, variant=None, kind=Touch.Kind.PROMPT_IMPRESSION, by=None, at=at)


def test_it_stops_offering_a_prompt_shown_its_weekly_number_of_times(client, token, play, near_limit):
    Play.objects.filter(pk=play.pk).update(prompt_max_per_week=2)
    impression(near_limit, play, at=ago(days=8))  # outside the 7 days
    impression(near_limit, play, at=ago(days=3))
    assert len(prompts_of(client, near_limit, token)) == 1

    impression(near_limit, play, at=ago(hours=1))

    assert prompts_of(client, near_limit, token) == []


def test_an_impression_reported_through_the_api_withholds_the_prompt_for_the_plays_gap(client, token, play, near_limit):
    Play.objects.filter(pk=play.pk).update(min_days_between_touches=7)
    [prompt] = prompts_of(client, near_limit, token)

    response = send_event(client, prompt["id"], {"account": near_limit.external_id, "type": "impression"}, token)

    assert response.status_code == 201
    assert prompts_of(client, near_limit, token) == []


def test_the_plays_gap_counts_only_its_own_touches(client, token, play, near_limit):
    Play.objects.filter(pk=play.pk).update(min_days_between_touches=7)
    other = Play.objects.create(name="Storage")
    touch_record(account=near_limit, play=other, variant=None, kind=Touch.Kind.EMAIL, by=None, at=ago(days=1))

    assert len(prompts_of(client, near_limit, token)) == 1


def test_it_offers_nothing_once_the_account_had_its_touches_of_the_last_30_days(client, token, play, near_limit):
    ScoringPolicy.objects.update_or_create(pk=1, defaults={"max_touches_per_30_days": 2})
    other = Play.objects.create(name="Storage")
    touch_record(account=near_limit, play=other, variant=None, kind=Touch.Kind.EMAIL, by=None, at=ago(days=31))
    touch_record(account=near_limit, play=other, variant=None, kind=Touch.Kind.EMAIL, by=None, at=ago(days=20))
    assert len(prompts_of(client, near_limit, token)) == 1

    touch_record(account=near_limit, play=other, variant=None, kind=Touch.Kind.EMAIL, by=None, at=ago(days=2))

    assert prompts_of(client, near_limit, token) == []


def test_it_offers_no_more_prompts_than_the_30_day_cap_has_left_the_strongest_first(
    client, token, play, seats_rule, near_limit
):
    ScoringPolicy.objects.update_or_create(pk=1, defaults={"max_touches_per_30_days": 3})
    stronger_rule = Rule.objects.create(name="Seats at 95%", metric=metric("seats"), min_utilization=0.95, weight=60)
    stronger = Play.objects.create(name="Seats now", prompt_text="Seats now", min_days_between_touches=0)
    stronger.rules.add(stronger_rule)
    assert [p["play"] for p in prompts_of(client, near_limit, token)] == ["Seats now", "Seats at the limit"]

    touch_record(account=near_limit, play=None, variant=None, kind=Touch.Kind.EMAIL, by=None, at=ago(days=5))
    touch_record(account=near_limit, play=None, variant=None, kind=Touch.Kind.EMAIL, by=None, at=ago(days=6))

    assert [p["play"] for p in prompts_of(client, near_limit, token)] == ["Seats now"]


def test_it_reads_prompts_in_a_fixed_number_of_queries_whatever_the_number_of_plays(
    client, token, play, seats_rule, near_limit, django_assert_max_num_queries
):
    prompts_of(client, near_limit, token)  # assigns nothing (no experiment); warms the token's last use
    # 12 for the prompts, 1 for the in-app surveys listed next to them (none here).
    with django_assert_max_num_queries(13) as one_play:
        prompts_of(client, near_limit, token)
    for name in ("Second", "Third", "Fourth"):
        Play.objects.create(name=name, prompt_text=name, target_plan=plan("Pro"), min_days_between_touches=0).rules.add(
            seats_rule
        )
    with django_assert_max_num_queries(13) as four_plays:
        assert len(prompts_of(client, near_limit, token)) == 4
    assert len(four_plays.captured_queries) == len(one_play.captured_queries)


# --- Events ----------------------------------------------------------------------------------------------


def test_an_event_is_recorded_as_a_touch_with_the_play_and_the_variant(client, token, play, admin_user):
    running = experiment_on(play, admin_user, variants=[VariantSpec(name="Short", prompt_text="Need seats?")])
    treated = account_in_arm(running, control=False)
    [prompt] = prompts_of(client, treated, token)

    response = send_event(
        client,
        prompt["id"],
        {"account": treated.external_id, "type": "click", "timestamp": "2026-11-20T09:30:00Z"},
        token,
    )

    assert response.status_code == 201
    assert response.json() == {
        "id": prompt["id"],
        "account": treated.external_id,
        "type": "click",
        "timestamp": "2026-11-20T09:30:00+00:00",
        "play": "Seats at the limit",
        "variant": "Short",
    }
    touch = Touch.objects.get()
    assert (touch.account, touch.play, touch.variant.name, touch.kind, touch.actor) == (
        treated,
        play,
        "Short",
        Touch.Kind.PROMPT_CLICK,
        None,
    )
    assert touch.occurred_at == dt.datetime(2026, 11, 20, 9, 30, tzinfo=dt.UTC)


def test_a_dismissal_is_recorded_and_does_not_count_against_the_caps(client, token, play, near_limit):
    Play.objects.filter(pk=play.pk).update(prompt_max_per_week=1, min_days_between_touches=7)
    [prompt] = prompts_of(client, near_limit, token)

    send_event(client, prompt["id"], {"account": near_limit.external_id, "type": "dismiss"}, token)

    assert Touch.objects.get().kind == Touch.Kind.PROMPT_DISMISS
    assert len(prompts_of(client, near_limit, token)) == 1


def test_a_retried_event_with_its_idempotency_key_is_recorded_once(client, token, play, near_limit):
    [prompt] = prompts_of(client, near_limit, token)
    body = {"account": near_limit.external_id, "type": "impression"}

    first = send_event(client, prompt["id"], body, token, **{"Idempotency-Key": "k-1"})
    again = send_event(client, prompt["id"], body, token, **{"Idempotency-Key": "k-1"})

    assert (first.status_code, again.status_code) == (201, 201)
    assert again.headers["Idempotent-Replayed"] == "true"
    assert Touch.objects.count() == 1


@pytest.mark.parametrize(
    ("body", "pointer"),
    [
        ({"account": "ACME", "type": "hover"}, "/type"),
        ({"account": "nobody", "type": "click"}, "/account"),
        ({"type": "click"}, "/account"),
        ({"account": "ACME", "type": "click", "timestamp": "yesterday"}, "/timestamp"),
        ({"account": "ACME", "type": "click", "timestamp": "2099-01-01T00:00:00Z"}, "/timestamp"),
        ({"account": "ACME", "type": "click", "colour": "red"}, "/colour"),
    ],
)
def test_a_bad_event_is_refused_naming_the_field_and_nothing_is_stored(client, token, play, near_limit, body, pointer):
    Account.objects.filter(pk=near_limit.pk).update(external_id="ACME")
    near_limit.refresh_from_db()
    [prompt] = prompts_of(client, near_limit, token)

    response = send_event(client, prompt["id"], body, token)

    assert response.status_code == 422
    assert pointers(response) == [pointer]
    assert not Touch.objects.exists()


def test_an_event_for_a_prompt_offered_to_another_account_is_refused(client, token, play, near_limit):
    [prompt] = prompts_of(client, near_limit, token)
    other = AccountFactory()

    response = send_event(client, prompt["id"], {"account": other.external_id, "type": "click"}, token)

    assert response.status_code == 422
    assert response.json()["errors"] == [
        {"pointer": "/account", "message": "This prompt was not offered to this account."}
    ]
    assert not Touch.objects.exists()


def test_an_id_not_issued_here_or_altered_is_not_found(client, token, play, near_limit):
    [prompt] = prompts_of(client, near_limit, token)
    _, signature = prompt["id"].split(":", 1)
    forged = f"{near_limit.pk}-{play.pk + 1}-0:{signature}"

    for prompt_id in ("42", forged):
        response = send_event(client, prompt_id, {"account": near_limit.external_id, "type": "click"}, token)
        assert response.status_code == 404
    assert not Touch.objects.exists()


def test_the_api_needs_a_token_and_an_existing_account(client, token, play, near_limit):
    assert get_prompts(client, near_limit).status_code == 401
    response = client.get("/api/v1/accounts/nope/prompts", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 404
    assert response.json() == {"detail": "No account with external_id 'nope'."}
    [prompt] = prompts_of(client, near_limit, token)
    assert send_event(client, prompt["id"], {"account": near_limit.external_id, "type": "click"}, None).status_code == (
        401
    )
    assert not Touch.objects.exists()


# --- Timeline --------------------------------------------------------------------------------------------


def test_prompt_events_appear_in_the_accounts_timeline_newest_first_without_emails(play, near_limit, csm):
    touch_record(account=near_limit, play=play, variant=None, kind=Touch.Kind.EMAIL, by=csm, at=ago(hours=1))
    impression(near_limit, play, at=ago(days=2))
    touch_record(
        account=near_limit,
        play=play,
        variant=None,
        kind=Touch.Kind.PROMPT_CLICK,
        by=None,
        at=ago(days=1),
        detail="Banner prompt",
    )

    items = account_touches(account_id=near_limit.pk, limit=10)

    assert [(item.kind, item.title, item.body) for item in items] == [
        ("prompt_click", "Prompt clicked: Seats at the limit", "Banner prompt"),
        ("prompt_impression", "Prompt shown: Seats at the limit", ""),
    ]
    assert len(account_touches(account_id=near_limit.pk, limit=10, include_emails=True)) == 3


@pytest.mark.parametrize(
    "body", [b"", b"[]", b"nope", b'{"account": 1, "type": "click"}', b'{"account": "' + b"x" * 500 + b'"}']
)
def test_a_malformed_event_body_gets_a_client_error_never_a_server_error(client, token, play, near_limit, body):
    [prompt] = prompts_of(client, near_limit, token)

    response = send_event(client, prompt["id"], body, token)

    assert response.status_code in (400, 422)
    assert not Touch.objects.exists()
