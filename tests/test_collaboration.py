"""Handing an opportunity to sales: Casey (the CSM) brings Dana, an account executive in the Sales role, onto
an opportunity. Dana finds it in her queue, opens its account, works it, is told about it, and shares the
credit for the win on the leaderboard; the timeline says who joined and who left."""

import datetime as dt
import io
import re
from decimal import Decimal

import pytest
from django.contrib.auth.models import Group
from django.core.management import call_command
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from accounts.models import Notification, NotificationSetting
from opportunities.collaboration import CollaborationRefused, collaborator_add, collaborator_remove
from opportunities.models import Collaborator, LostReason, Opportunity, OpportunityEvent, Outcome, Stage
from opportunities.pipeline_selectors import pipeline_dashboard
from opportunities.pipeline_stats import PipelineOpportunity, StageDates, leaderboard, pipeline_stats
from opportunities.services import Conflict
from tests.caches import empty_caches
from tests.factories import AccountFactory, OpportunityFactory, UserFactory, plan

pytestmark = pytest.mark.django_db

QUEUE_URL = reverse("opportunities:queue")


@pytest.fixture
def sales(db):
    """Dana, an account executive (Sales role) the CSMs bring onto deals."""
    return UserFactory(username="dana", first_name="Dana", last_name="Reyes", role="Sales")


@pytest.fixture
def sales_client(client, sales):
    client.force_login(sales)
    return client


@pytest.fixture
def opportunity(csm):
    """Casey's opportunity on Acme, in Present."""
    return OpportunityFactory(
        account=AccountFactory(owner=csm, name="Acme Analytics"), stage=Stage.PRESENT, target_plan=plan("Pro")
    )


def bring_on(opportunity: Opportunity, user, *, by) -> Collaborator:
    opportunity.refresh_from_db()
    return collaborator_add(opportunity=opportunity, user=user, by=by, at=timezone.now(), version=opportunity.version)


def queued(response) -> list[str]:
    return [row["account_name"] for row in response.context["rows"]]


# --- The services ----------------------------------------------------------------------------------------


def test_it_brings_an_account_executive_on_with_an_audit_event_and_a_new_version(opportunity, csm, sales):
    collaborator = collaborator_add(opportunity=opportunity, user=sales, by=csm, at=timezone.now(), version=1)

    assert (collaborator.user, collaborator.added_by) == (sales, csm)
    opportunity.refresh_from_db()
    assert opportunity.version == 2
    event = OpportunityEvent.objects.get(opportunity=opportunity)
    assert (event.kind, event.actor, event.changes) == (
        OpportunityEvent.Kind.COLLABORATOR_ADDED,
        csm,
        {"user": sales.pk},
    )
    assert "Dana Reyes" in event.message


def test_it_tells_the_account_executive_where_to_find_the_opportunity(opportunity, csm, sales):
    bring_on(opportunity, sales, by=csm)

    notification = Notification.objects.get(recipient=sales)
    assert notification.kind == Notification.Kind.COLLABORATOR_ADDED
    assert notification.account == opportunity.account
    assert notification.url == opportunity.get_absolute_url()
    assert "Casey Moreno" in notification.title and "Acme Analytics" in notification.title


def test_it_adds_an_account_executive_who_muted_the_notification_without_telling_her(opportunity, csm, sales):
    NotificationSetting.objects.create(user=sales, muted_kinds=[Notification.Kind.COLLABORATOR_ADDED])

    bring_on(opportunity, sales, by=csm)

    assert Collaborator.objects.filter(user=sales).exists()
    assert not Notification.objects.filter(recipient=sales).exists()


@pytest.mark.parametrize("who", ["a CSM", "an inactive account executive", "the owner"])
def test_it_refuses_anyone_but_an_active_account_executive_and_stores_nothing(opportunity, csm, other_csm, who):
    user = {
        "a CSM": other_csm,
        "an inactive account executive": UserFactory(role="Sales", is_active=False),
        "the owner": csm,
    }[who]

    with pytest.raises(CollaborationRefused, match="not an account executive"):
        collaborator_add(opportunity=opportunity, user=user, by=csm, at=timezone.now(), version=1)

    assert not Collaborator.objects.exists() and not OpportunityEvent.objects.exists()
    assert Opportunity.objects.get().version == 1


def test_it_refuses_someone_already_on_it(opportunity, csm, sales):
    bring_on(opportunity, sales, by=csm)

    with pytest.raises(CollaborationRefused, match="already works on"):
        bring_on(opportunity, sales, by=csm)

    assert Collaborator.objects.count() == 1


def test_it_refuses_a_change_drawn_before_someone_elses(opportunity, csm, sales):
    Opportunity.objects.filter(pk=opportunity.pk).update(version=2)
    opportunity.refresh_from_db()

    with pytest.raises(Conflict):
        collaborator_add(opportunity=opportunity, user=sales, by=csm, at=timezone.now(), version=1)

    assert not Collaborator.objects.exists()


def test_it_keeps_the_team_of_a_closed_opportunity_as_it_closed(opportunity, csm, sales):
    Opportunity.objects.filter(pk=opportunity.pk).update(outcome=Outcome.WON, closed_at=timezone.now())
    opportunity.refresh_from_db()

    with pytest.raises(CollaborationRefused, match="closed"):
        collaborator_add(opportunity=opportunity, user=sales, by=csm, at=timezone.now(), version=1)

    assert not Collaborator.objects.exists()


def test_it_lets_no_collaborator_bring_on_another(opportunity, csm, sales):
    bring_on(opportunity, sales, by=csm)
    colleague = UserFactory(role="Sales")

    with pytest.raises(CollaborationRefused, match="Only the opportunity's CSM"):
        bring_on(opportunity, colleague, by=sales)

    assert list(Collaborator.objects.values_list("user", flat=True)) == [sales.pk]


def test_it_takes_an_account_executive_off_with_an_audit_event(opportunity, csm, sales):
    bring_on(opportunity, sales, by=csm)
    opportunity.refresh_from_db()

    collaborator_remove(opportunity=opportunity, user=sales, by=csm, at=timezone.now(), version=opportunity.version)

    assert not Collaborator.objects.exists()
    opportunity.refresh_from_db()
    assert opportunity.version == 3
    removed = OpportunityEvent.objects.get(kind=OpportunityEvent.Kind.COLLABORATOR_REMOVED)
    assert (removed.actor, removed.changes) == (csm, {"user": sales.pk})


def test_it_refuses_to_take_off_someone_who_is_not_on_it_and_keeps_the_version(opportunity, csm, sales):
    with pytest.raises(CollaborationRefused, match="does not work on"):
        collaborator_remove(opportunity=opportunity, user=sales, by=csm, at=timezone.now(), version=1)

    assert Opportunity.objects.get().version == 1 and not OpportunityEvent.objects.exists()


# --- The account page --------------------------------------------------------------------------------------


def test_it_shows_the_team_on_the_opportunity_panel_and_lets_the_owner_add_to_it(csm_client, opportunity, csm, sales):
    colleague = UserFactory(first_name="Sol", last_name="Ahn", role="Sales")
    bring_on(opportunity, sales, by=csm)

    html = csm_client.get(opportunity.account.get_absolute_url()).content.decode()

    assert 'id="collaborators"' in html and "Dana Reyes" in html
    assert reverse("opportunities:collaborator_add", args=[opportunity.pk]) in html
    offered = re.search(r'<select name="user"[^>]*id="collaborator_user"[^>]*>(.*?)</select>', html, re.S).group(1)
    # Dana is on it already: only Sol is offered.
    assert re.findall(r'<option value="(\d+)"', offered) == [str(colleague.pk)]


def test_it_adds_from_the_panel_with_htmx_and_answers_with_the_fresh_panel(csm_client, opportunity, sales):
    response = csm_client.post(
        reverse("opportunities:collaborator_add", args=[opportunity.pk]),
        {"user": sales.pk, "version": 1},
        headers={"HX-Request": "true"},
    )

    assert response.status_code == 200
    html = response.content.decode()
    assert html.lstrip().startswith('<section id="work"') and "Dana Reyes now works on this opportunity" in html
    # The panel's other forms are drawn at the new version, so they still go through.
    assert 'name="version" value="2"' in html
    assert Collaborator.objects.get().user == sales


def test_it_answers_a_bad_choice_with_an_error_on_the_field_and_stores_nothing(csm_client, opportunity, other_csm):
    url = reverse("opportunities:collaborator_add", args=[opportunity.pk])
    for user in (other_csm.pk, 987654, "dana"):
        response = csm_client.post(url, {"user": user, "version": 1}, headers={"HX-Request": "true"})

        assert response.status_code == 422
        assert 'id="collaborator_user_error"' in response.content.decode()
        assert "Account executive: choose a user in the Sales role" in response.content.decode()
    assert not Collaborator.objects.exists() and Opportunity.objects.get().version == 1


def test_it_answers_a_stale_add_with_409_and_the_panel_as_it_stands(csm_client, opportunity, sales):
    response = csm_client.post(
        reverse("opportunities:collaborator_add", args=[opportunity.pk]),
        {"user": sales.pk, "version": 7},
        headers={"HX-Request": "true"},
    )

    assert response.status_code == 409
    assert not Collaborator.objects.exists()


def test_it_shows_the_collaborator_the_team_but_no_way_to_change_it(sales_client, opportunity, csm, sales):
    bring_on(opportunity, sales, by=csm)

    response = sales_client.get(opportunity.account.get_absolute_url())

    html = response.content.decode()
    assert response.status_code == 200 and 'id="collaborators"' in html
    assert reverse("opportunities:collaborator_add", args=[opportunity.pk]) not in html
    assert reverse("opportunities:collaborator_remove", args=[opportunity.pk]) not in html
    # She works it like its owner: the presentation form is hers.
    assert reverse("opportunities:present", args=[opportunity.pk]) in html


def test_it_gives_the_collaborator_no_panel_on_another_opportunity_of_the_account(sales_client, csm, sales):
    account = AccountFactory(owner=csm)
    won = OpportunityFactory(account=account, outcome=Outcome.WON, closed_at=timezone.now(), stage=Stage.CLOSE)
    Collaborator.objects.create(opportunity=won, user=sales, added_at=timezone.now())
    later = OpportunityFactory(account=account)  # flagged since; Dana is not on it

    html = sales_client.get(account.get_absolute_url()).content.decode()

    assert "Nothing to work here now" in html
    assert reverse("opportunities:advance", args=[later.pk]) not in html
    assert reverse("opportunities:open", args=[account.pk]) not in html


def test_it_shows_who_joined_and_who_left_in_the_timeline(csm_client, opportunity, csm, sales):
    bring_on(opportunity, sales, by=csm)
    opportunity.refresh_from_db()
    collaborator_remove(opportunity=opportunity, user=sales, by=csm, at=timezone.now(), version=opportunity.version)

    timeline = csm_client.get(reverse("opportunities:timeline", args=[opportunity.account_id])).context["timeline"]

    titles = [(entry.title, entry.actor) for entry in timeline]
    assert ("Collaborator added", csm) in titles and ("Collaborator removed", csm) in titles
    assert [entry.body for entry in timeline if entry.kind == OpportunityEvent.Kind.COLLABORATOR_REMOVED] == [
        "Dana Reyes no longer works on it"
    ]


# --- The queue, the account list and the navigation -------------------------------------------------------


def test_it_fills_an_account_executives_queue_with_her_collaborations_only(sales_client, csm, other_csm, sales):
    mine = OpportunityFactory(account=AccountFactory(owner=csm, name="Brought on by Casey"), score=70)
    theirs = OpportunityFactory(account=AccountFactory(owner=other_csm, name="Brought on by Olive"), score=80)
    OpportunityFactory(account=AccountFactory(owner=csm, name="Casey's alone"), score=99)
    bring_on(mine, sales, by=csm)
    bring_on(theirs, sales, by=other_csm)

    response = sales_client.get(QUEUE_URL)

    assert queued(response) == ["Brought on by Olive", "Brought on by Casey"]
    # Each is another CSM's: the owner column says whose.
    assert [row["owner_name"] for row in response.context["rows"]] == ["Olive Park", "Casey Moreno"]
    assert "The opportunities CSMs brought you onto" in response.content.decode()


def test_it_tells_an_account_executive_with_nothing_to_do_how_work_arrives(sales_client):
    html = sales_client.get(QUEUE_URL).content.decode()

    assert "When a CSM brings you onto an opportunity, it appears here." in html


def test_it_marks_in_a_csms_queue_the_colleagues_opportunities_she_collaborates_on(client, csm, other_csm):
    # A CSM who also sells: in both groups, she acts as a CSM and may be brought onto a colleague's deal.
    other_csm.groups.add(Group.objects.get(name="Sales"))
    OpportunityFactory(account=AccountFactory(owner=other_csm, name="Olive's own"), score=90)
    shared = OpportunityFactory(account=AccountFactory(owner=csm, name="Casey's, with Olive"), score=50)
    bring_on(shared, other_csm, by=csm)
    client.force_login(other_csm)

    response = client.get(QUEUE_URL)

    assert [(row["account_name"], row["shared"]) for row in response.context["rows"]] == [
        ("Olive's own", False),
        ("Casey's, with Olive", True),
    ]
    assert response.content.decode().count("badge--shared") == 1


def _queue_queries(client) -> int:
    empty_caches()  # the filter bar's choices: counted from an empty cache each time
    with CaptureQueriesContext(connection) as queries:
        response = client.get(QUEUE_URL)
    assert response.status_code == 200
    return len(queries)


def _collaborations(count: int, *, owner, user) -> None:
    for _ in range(count):
        opportunity = OpportunityFactory(account=AccountFactory(owner=owner), reasons=[{"text": "Seats 90%"}])
        Collaborator.objects.create(opportunity=opportunity, user=user, added_by=owner, added_at=timezone.now())


@pytest.mark.parametrize("persona", ["sales", "csm"])
def test_it_reads_a_queue_with_collaborations_in_as_many_queries_for_50_rows_as_for_5(
    client, csm, other_csm, sales, persona
):
    # Dana's queue holds only collaborations; Casey's, her own work and the colleagues' she was brought onto.
    user = {"sales": sales, "csm": csm}[persona]
    if persona == "csm":
        csm.groups.add(Group.objects.get(name="Sales"))
    client.force_login(user)
    _collaborations(5, owner=other_csm, user=user)
    few = _queue_queries(client)
    _collaborations(45, owner=other_csm, user=user)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr("opportunities.views.QUEUE_PER_PAGE", 50)
        many = _queue_queries(client)

    assert many == few
    assert len(client.get(QUEUE_URL, {"page": 1}).context["rows"]) == 25


def test_it_lists_an_account_executive_only_the_accounts_she_collaborates_on(sales_client, csm, sales):
    shared = OpportunityFactory(account=AccountFactory(owner=csm, name="Shared"))
    bring_on(shared, sales, by=csm)
    # Two opportunities on one account: it is listed once.
    closed = OpportunityFactory(
        account=shared.account, outcome=Outcome.LOST, closed_at=timezone.now(), lost_reason=LostReason.objects.first()
    )
    Collaborator.objects.create(opportunity=closed, user=sales, added_at=timezone.now())
    AccountFactory(owner=csm, name="Casey's alone")

    response = sales_client.get(reverse("accounts:list"))

    assert [account.name for account, _cells in response.context["rows"]] == ["Shared"]


def test_it_shows_an_account_executive_the_queue_and_her_accounts_but_no_managers_pages(
    sales_client, opportunity, csm, sales
):
    bring_on(opportunity, sales, by=csm)

    response = sales_client.get(reverse("home"))

    html = response.content.decode()
    assert f'href="{QUEUE_URL}"' in html and f'href="{reverse("accounts:list")}"' in html
    for manager_page in ("pipeline:page", "metrics:page", "accounts:imports", "settings:index"):
        assert f'href="{reverse(manager_page)}"' not in html
    assert "The opportunities CSMs brought you onto" in html and "No role assigned" not in html
    # Her home lists what she works on, with whose it is.
    assert response.context["opportunities"] == [opportunity] and response.context["open_opportunity_count"] == 1
    assert "Acme Analytics" in html and "Casey Moreno" in html


# --- The leaderboard -----------------------------------------------------------------------------------------

CASEY, DANA = 1, 2
MARCH = {"start": dt.date(2026, 3, 1), "end": dt.date(2026, 3, 31)}


def won(pk: int, mrr: str, *, collaborators=()) -> PipelineOpportunity:
    return PipelineOpportunity(
        id=pk,
        account_id=100 + pk,
        account_name=f"Account {pk}",
        owner_id=CASEY,
        owner_name="Casey Moreno",
        stage="close",
        outcome=Outcome.WON,
        identified_at=dt.datetime(2026, 3, 2, 9, tzinfo=dt.UTC),
        entered=StageDates(identify=dt.datetime(2026, 3, 2, 9, tzinfo=dt.UTC)),
        closed_at=dt.datetime(2026, 3, 12, 9, tzinfo=dt.UTC),
        actual_mrr=Decimal(mrr),
        collaborators=tuple(collaborators),
    )


def test_it_credits_a_win_in_full_to_its_owner_and_to_each_collaborator():
    records = [won(1, "100", collaborators=[(DANA, "Dana Reyes")]), won(2, "50")]

    rows = {row.name: row for row in leaderboard(records, people={CASEY: "Casey Moreno"}, **MARCH)}

    # Casey owns both: 100 + 50; Dana was on the first: all of its 100, not a share.
    assert (rows["Casey Moreno"].won, rows["Casey Moreno"].expansion_mrr) == (2, Decimal("150"))
    assert (rows["Dana Reyes"].won, rows["Dana Reyes"].expansion_mrr) == (1, Decimal("100"))
    assert rows["Dana Reyes"].win_rate == Decimal("100.0") and rows["Dana Reyes"].worked == 1


def test_it_counts_each_win_once_in_the_teams_expansion_mrr():
    records = [won(1, "100", collaborators=[(DANA, "Dana Reyes"), (3, "Sol Ahn")])]

    stats = pipeline_stats(records, people={CASEY: "Casey Moreno"}, today=dt.date(2026, 3, 31), **MARCH)

    # Three rows credited with 100 each; the team won 100.
    assert [row.expansion_mrr for row in stats.leaderboard] == [Decimal("100")] * 3
    assert stats.expansion_mrr_won == Decimal("100")


def test_it_reads_the_collaborators_into_the_dashboards_leaderboard(csm, sales):
    today = timezone.localdate()
    deal = OpportunityFactory(account=AccountFactory(owner=csm), stage=Stage.CLOSE)
    bring_on(deal, sales, by=csm)
    Opportunity.objects.filter(pk=deal.pk).update(
        outcome=Outcome.WON, closed_at=timezone.now(), actual_mrr_delta=Decimal("70")
    )

    stats = pipeline_dashboard(start=today - dt.timedelta(days=7), end=today, today=today)

    credited = {row.name: row.expansion_mrr for row in stats.leaderboard}
    assert credited == {"Casey Moreno": Decimal("70"), "Dana Reyes": Decimal("70")}
    assert stats.expansion_mrr_won == Decimal("70")


# --- The demo ------------------------------------------------------------------------------------------------


def test_it_seeds_an_account_executive_with_collaborations_to_show(django_user_model):
    call_command("seed_demo", accounts=40, as_of="2026-11-20", pipeline=False, stdout=io.StringIO())

    dana = django_user_model.objects.get(username="sales1")
    assert list(dana.groups.values_list("name", flat=True)) == ["Sales"] and dana.check_password("demo")
    on = Collaborator.objects.filter(user=dana).select_related("opportunity")
    assert {c.opportunity.outcome for c in on} == {Outcome.OPEN, Outcome.WON}
    assert all(c.opportunity.owner.username == "csm1" for c in on if c.opportunity.outcome == Outcome.OPEN)
    assert all(c.added_by == c.opportunity.owner for c in on)
    added = OpportunityEvent.objects.filter(kind=OpportunityEvent.Kind.COLLABORATOR_ADDED)
    assert sorted(added.values_list("opportunity_id", flat=True)) == sorted(c.opportunity_id for c in on)


def test_the_account_page_reads_no_collaborators_of_an_opportunity_without_any(csm_client, opportunity):
    with CaptureQueriesContext(connection) as queries:
        html = csm_client.get(opportunity.account.get_absolute_url()).content.decode()

    reads = [q["sql"] for q in queries if q["sql"].startswith('SELECT "opportunities_collaborator"."id"')]
    assert reads == [] and "Account executives" in html
