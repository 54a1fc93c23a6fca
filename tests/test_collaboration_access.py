"""Who gets in once an account executive is on an opportunity.

Dana (Sales) collaborates on each of Casey's opportunities below and works every one of them like Casey
does; Sasha (Sales too) collaborates on none and finds nothing, forged htmx posts included. Only Casey, a
manager or an admin chooses who works on an opportunity, and only account executives can be chosen.

The URLs, their arguments and the bodies posted are the authorization matrix's (tests/test_authorization_matrix.py),
so each POST here is one that does its work when allowed.
"""

import datetime as dt
from types import SimpleNamespace

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from accounts.models import Plan
from opportunities.models import Collaborator, LostReason, OpportunityEvent, Outcome, Stage
from tests.factories import AccountFactory, OpportunityFactory, UserFactory
from tests.test_authorization_matrix import (
    BODIES,
    REDIRECT,
    changed_tables,
    database_state,
    outcome,
    send,
    url_of,
)

pytestmark = pytest.mark.django_db

# Every URL that reads or works one of Casey's opportunities (or its account), with what Dana gets.
OPPORTUNITY_URLS = [
    ("accounts:detail", "GET", 200),
    ("opportunities:actions", "GET", 200),
    ("opportunities:advance", "POST", REDIRECT),
    ("opportunities:snooze", "POST", REDIRECT),
    ("opportunities:reopen", "POST", REDIRECT),
    ("opportunities:qualify", "POST", REDIRECT),
    ("opportunities:present", "POST", REDIRECT),
    ("opportunities:email", "POST", REDIRECT),
    ("opportunities:close", "POST", REDIRECT),
    ("opportunities:note_add", "POST", REDIRECT),
]
POSTS = [(name, method) for name, method, _ in OPPORTUNITY_URLS if method == "POST"]


@pytest.fixture
def world(csm, other_csm, manager, admin_user):
    """Casey's accounts with an opportunity at each step, as in the authorization matrix; Dana on all of
    them, Sasha and Rafael (account executives too) on none."""
    now, today = timezone.now(), timezone.localdate()
    basic, pro = Plan.objects.get(name="Basic"), Plan.objects.get(name="Pro")
    dana = UserFactory(username="dana", first_name="Dana", last_name="Reyes", role="Sales")
    sasha = UserFactory(username="sasha", first_name="Sasha", last_name="Ivers", role="Sales")
    rafael = UserFactory(username="rafael", first_name="Rafael", last_name="Ortiz", role="Sales")
    account = AccountFactory(owner=csm, name="Acme Analytics", external_id="acme", plan=basic)
    identify = OpportunityFactory(account=account, stage=Stage.IDENTIFY)
    qualify = OpportunityFactory(account=AccountFactory(owner=csm, plan=basic), stage=Stage.QUALIFY)
    present = OpportunityFactory(account=AccountFactory(owner=csm, plan=basic), stage=Stage.PRESENT, target_plan=pro)
    snoozed = OpportunityFactory(
        account=AccountFactory(owner=csm, plan=basic),
        outcome=Outcome.SNOOZED,
        snoozed_until=today + dt.timedelta(days=10),
        closed_at=now,
    )
    for opportunity in (identify, qualify, present, snoozed):
        Collaborator.objects.create(opportunity=opportunity, user=dana, added_by=csm, added_at=now)
    people = {"owner": csm, "other_csm": other_csm, "manager": manager, "admin": admin_user}
    people |= {"dana": dana, "sasha": sasha}
    sessions = {}
    for role, user in people.items():
        client = Client()
        client.force_login(user)
        sessions[role] = client.cookies["sessionid"].value
    return SimpleNamespace(
        owner=csm,
        other=other_csm,
        dana=dana,
        sasha=sasha,
        rafael=rafael,
        pro=pro,
        account=account,
        identify=identify,
        qualify=qualify,
        present=present,
        snoozed=snoozed,
        lost_reason=LostReason.objects.filter(active=True).order_by("display_order").first(),
        today=today,
        sessions=sessions,
    )


def as_(role: str, world) -> Client:
    client = Client(raise_request_exception=False)
    client.cookies["sessionid"] = world.sessions[role]
    return client


# --- Dana works what she was brought onto; Sasha finds nothing ---------------------------------------------


@pytest.mark.parametrize(("name", "method", "expected"), OPPORTUNITY_URLS, ids=lambda v: str(v))
def test_it_lets_a_collaborator_work_each_opportunity_url_like_its_owner(world, name, method, expected):
    before = database_state()

    response = send("dana", name, method, world)

    assert outcome(response) == expected
    if method == "POST":
        assert changed_tables(before, database_state()) != [], "the collaborator's post did no work"


@pytest.mark.parametrize(("name", "method", "_expected"), OPPORTUNITY_URLS, ids=lambda v: str(v))
def test_it_answers_an_account_executive_who_is_not_on_it_404_and_changes_nothing(world, name, method, _expected):
    before = database_state()

    response = send("sasha", name, method, world)

    assert response.status_code == 404
    assert changed_tables(before, database_state()) == []


@pytest.mark.parametrize(("name", "method"), POSTS, ids=lambda v: str(v))
def test_it_refuses_a_forged_htmx_post_from_an_account_executive_who_is_not_on_it(world, name, method):
    before = database_state()

    response = as_("sasha", world).post(
        url_of(name, world), BODIES[(name, method)](world), headers={"HX-Request": "true"}
    )

    assert response.status_code == 404
    assert changed_tables(before, database_state()) == []


def test_it_answers_the_collaborators_htmx_post_with_the_fresh_panel(world):
    response = as_("dana", world).post(
        reverse("opportunities:advance", args=[world.identify.pk]),
        {"to": Stage.QUALIFY, "version": world.identify.version},
        headers={"HX-Request": "true"},
    )

    assert response.status_code == 200
    assert response.content.decode().lstrip().startswith('<section id="work"')
    world.identify.refresh_from_db()
    assert world.identify.stage == Stage.QUALIFY
    assert OpportunityEvent.objects.get(opportunity=world.identify).actor == world.dana


def test_it_leaves_opening_an_opportunity_to_the_csm(world):
    before = database_state()

    response = send("dana", "opportunities:open", "POST", world)

    # Dana sees the account (she is on its snoozed opportunity) but does not open one she would own.
    assert response.status_code == 403
    assert changed_tables(before, database_state()) == []


def test_it_lists_the_collaborator_the_accounts_and_queue_she_was_brought_onto(world):
    client = as_("dana", world)

    accounts = client.get(reverse("accounts:list")).context["page"].paginator.count
    queue = client.get(reverse("opportunities:queue")).context["page"].paginator.count

    # Four accounts; the queue holds the three open ones (the snoozed one comes back in ten days).
    assert (accounts, queue) == (4, 3)
    assert as_("sasha", world).get(reverse("opportunities:queue")).context["page"].paginator.count == 0


# --- Who chooses the team ----------------------------------------------------------------------------------


def add(role: str, world, *, user, opportunity=None, htmx: bool = False):
    opportunity = opportunity or world.identify
    return as_(role, world).post(
        reverse("opportunities:collaborator_add", args=[opportunity.pk]),
        {"user": user, "version": opportunity.version},
        headers={"HX-Request": "true"} if htmx else {},
    )


def remove(role: str, world, *, user, opportunity=None):
    opportunity = opportunity or world.identify
    return as_(role, world).post(
        reverse("opportunities:collaborator_remove", args=[opportunity.pk]),
        {"user": user, "version": opportunity.version},
    )


@pytest.mark.parametrize("role", ["owner", "manager", "admin"])
def test_it_lets_the_owning_csm_a_manager_or_an_admin_add_and_remove_collaborators(world, role):
    assert outcome(add(role, world, user=world.rafael.pk)) == REDIRECT
    assert Collaborator.objects.filter(opportunity=world.identify, user=world.rafael).exists()

    world.identify.refresh_from_db()
    assert outcome(remove(role, world, user=world.rafael.pk)) == REDIRECT
    assert not Collaborator.objects.filter(opportunity=world.identify, user=world.rafael).exists()


@pytest.mark.parametrize("action", ["add", "remove"])
def test_it_refuses_a_collaborator_who_tries_to_change_the_team(world, action):
    before = database_state()

    if action == "add":
        response = add("dana", world, user=world.rafael.pk, htmx=True)
    else:
        response = remove("dana", world, user=world.dana.pk)

    # Dana sees the opportunity, so this is an authorization failure, not a missing page.
    assert response.status_code == 403
    assert changed_tables(before, database_state()) == []


@pytest.mark.parametrize("role", ["other_csm", "sasha"])
def test_it_hides_the_team_of_an_opportunity_from_whoever_does_not_see_it(world, role):
    before = database_state()

    assert add(role, world, user=world.rafael.pk).status_code == 404
    assert remove(role, world, user=world.dana.pk).status_code == 404
    assert changed_tables(before, database_state()) == []


@pytest.mark.parametrize("who", ["a CSM", "an unknown id", "not a number", "an inactive account executive", "nobody"])
@pytest.mark.parametrize("htmx", [True, False], ids=["htmx", "no-js"])
def test_it_adds_only_an_account_executive_and_otherwise_names_the_field(world, who, htmx):
    inactive = UserFactory(role="Sales", is_active=False)
    user = {
        "a CSM": world.other.pk,
        "an unknown id": 987654,
        "not a number": "dana",
        "an inactive account executive": inactive.pk,
        "nobody": "",
    }[who]
    before = database_state()

    response = add("owner", world, user=user, htmx=htmx)

    assert response.status_code == 422
    html = response.content.decode()
    assert 'id="collaborator_user_error"' in html and "Account executive:" in html
    assert changed_tables(before, database_state()) == []


def test_it_refuses_to_remove_someone_who_is_not_on_it_and_says_so(world):
    before = database_state()

    response = as_("owner", world).post(
        reverse("opportunities:collaborator_remove", args=[world.identify.pk]),
        {"user": world.rafael.pk, "version": world.identify.version},
        headers={"HX-Request": "true"},
    )

    assert response.status_code == 422
    assert "Account executive: that user does not work on this opportunity." in response.content.decode()
    assert changed_tables(before, database_state()) == []
