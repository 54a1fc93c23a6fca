"""The queue: a CSM's open opportunities ranked by score, filtered, sorted, and worked with quick actions."""

import datetime as dt

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from opportunities.models import Opportunity, Outcome, Stage
from tests.caches import empty_caches
from tests.factories import AccountFactory, OpportunityFactory, plan

QUEUE_URL = reverse("opportunities:queue")


def queued(response) -> list[str]:
    return [row["account_name"] for row in response.context["rows"]]


def test_it_shows_a_csm_the_work_on_their_accounts_and_the_work_assigned_to_them(csm_client, csm, other_csm):
    # A manager may hand an opportunity to another CSM: the account's owner still sees it, and so does the new owner.
    OpportunityFactory(account=AccountFactory(owner=csm, name="Mine, handed to Olive"), owner=other_csm, score=80)
    OpportunityFactory(account=AccountFactory(owner=other_csm, name="Olive's, handed to me"), owner=csm, score=70)
    OpportunityFactory(account=AccountFactory(owner=other_csm, name="Olive's own"), score=90)
    OpportunityFactory(account=AccountFactory(owner=None, name="Nobody's"), owner=None, score=95)

    assert queued(csm_client.get(QUEUE_URL)) == ["Mine, handed to Olive", "Olive's, handed to me"]


def test_it_ranks_a_csms_open_opportunities_by_score(csm_client, csm, other_csm):
    OpportunityFactory(account=AccountFactory(owner=csm, name="Low"), score=40)
    OpportunityFactory(account=AccountFactory(owner=csm, name="High"), score=90)
    OpportunityFactory(account=AccountFactory(owner=other_csm, name="Olive's"), score=99)
    OpportunityFactory(
        account=AccountFactory(owner=csm, name="Won"), outcome=Outcome.WON, closed_at=timezone.now(), score=95
    )

    response = csm_client.get(QUEUE_URL)

    assert queued(response) == ["High", "Low"]


def test_it_shows_the_top_reason_stage_and_days_in_stage(csm_client, csm):
    OpportunityFactory(
        account=AccountFactory(owner=csm, name="Acme"),
        reasons=[{"text": "Storage 92%, full in ~12 days", "points": 40}],
        stage=Stage.QUALIFY,
        stage_entered_at=timezone.now() - dt.timedelta(days=3),
    )
    html = csm_client.get(QUEUE_URL).content.decode()
    assert "Storage 92%, full in ~12 days" in html
    assert "3 d" in html
    assert "Qualify" in html


def test_it_filters_by_stage_plan_and_score_and_searches_names(csm_client, csm):
    OpportunityFactory(account=AccountFactory(owner=csm, name="Acme", plan=plan("Pro")), score=80, stage=Stage.QUALIFY)
    OpportunityFactory(account=AccountFactory(owner=csm, name="Beta"), score=50)

    assert queued(csm_client.get(QUEUE_URL, {"stage": "qualify"})) == ["Acme"]
    assert queued(csm_client.get(QUEUE_URL, {"plan": plan("Basic").pk})) == ["Beta"]
    assert queued(csm_client.get(QUEUE_URL, {"score_min": 60})) == ["Acme"]
    assert queued(csm_client.get(QUEUE_URL, {"q": "bet"})) == ["Beta"]


def test_it_filters_by_an_industry_that_appeared_after_the_choices_were_cached(csm_client, csm):
    OpportunityFactory(account=AccountFactory(owner=csm, name="Shop", industry="Retail"))
    assert 'value="Retail"' in csm_client.get(QUEUE_URL).content.decode()  # the choices are cached now

    OpportunityFactory(account=AccountFactory(owner=csm, name="Clinic", industry="Healthcare"))
    response = csm_client.get(QUEUE_URL, {"industry": "Healthcare"})

    # Not ignored as an unknown choice, which would list every opportunity.
    assert queued(response) == ["Clinic"]
    assert '<option value="Healthcare" selected>' in response.content.decode()


def test_it_sorts_by_mrr_when_asked(csm_client, csm):
    OpportunityFactory(account=AccountFactory(owner=csm, name="Small", mrr=10), score=90)
    OpportunityFactory(account=AccountFactory(owner=csm, name="Big", mrr=500), score=10)
    response = csm_client.get(QUEUE_URL, {"sort": "-mrr"})
    assert queued(response) == ["Big", "Small"]
    assert 'aria-sort="descending"' in response.content.decode()


def test_it_pages_the_queue_and_sends_a_page_past_the_end_to_the_last_one(csm_client, csm):
    for score in range(30):
        OpportunityFactory(account=AccountFactory(owner=csm, name=f"Score {score:02d}"), score=score)

    first, second = csm_client.get(QUEUE_URL), csm_client.get(QUEUE_URL, {"page": 2})
    assert queued(first)[:2] == ["Score 29", "Score 28"] and len(queued(first)) == 25
    assert queued(second) == [f"Score {score:02d}" for score in range(4, -1, -1)]
    assert "30 open opportunities" in first.content.decode() and "showing 26–30" in second.content.decode()

    assert queued(csm_client.get(QUEUE_URL, {"page": 9})) == queued(second)
    assert queued(csm_client.get(QUEUE_URL, {"page": "x"})) == queued(first)


def test_it_answers_htmx_with_the_results_partial_and_varies_on_it(csm_client, csm):
    OpportunityFactory(account=AccountFactory(owner=csm))
    response = csm_client.get(QUEUE_URL, headers={"HX-Request": "true"})
    html = response.content.decode()
    assert html.lstrip().startswith('<section id="results"')
    assert "HX-Request" in response["Vary"]


def test_it_brings_a_snoozed_opportunity_back_on_its_day(csm_client, csm):
    today = timezone.localdate()
    OpportunityFactory(
        account=AccountFactory(owner=csm, name="Due"),
        outcome=Outcome.SNOOZED,
        snoozed_until=today,
        closed_at=timezone.now(),
    )
    OpportunityFactory(
        account=AccountFactory(owner=csm, name="Later"),
        outcome=Outcome.SNOOZED,
        snoozed_until=today + dt.timedelta(days=5),
        closed_at=timezone.now(),
    )
    response = csm_client.get(QUEUE_URL)
    assert queued(response) == ["Due"]
    assert "Back from snooze" in response.content.decode()


def test_it_advances_a_row_inline_and_answers_with_the_row(csm_client, csm):
    opportunity = OpportunityFactory(account=AccountFactory(owner=csm))
    response = csm_client.post(
        reverse("opportunities:advance", args=[opportunity.pk]),
        {"version": 1, "to": "qualify", "from": "queue"},
        headers={"HX-Request": "true"},
    )
    assert response.status_code == 200
    html = response.content.decode()
    assert html.lstrip().startswith(f'<tr id="queue-row-{opportunity.pk}"')
    assert 'hx-swap-oob="true"' in html and "moved to Qualify" in html
    assert Opportunity.objects.get().stage == Stage.QUALIFY


def test_it_snoozes_a_row_inline_and_dims_it_as_it_leaves_the_queue(csm_client, csm):
    opportunity = OpportunityFactory(account=AccountFactory(owner=csm))
    until = timezone.localdate() + dt.timedelta(days=7)
    response = csm_client.post(
        reverse("opportunities:snooze", args=[opportunity.pk]),
        {"version": 1, "until": until.isoformat(), "from": "queue"},
        headers={"HX-Request": "true"},
    )
    opportunity.refresh_from_db()
    assert (opportunity.outcome, opportunity.snoozed_until) == (Outcome.SNOOZED, until)
    row = response.content.decode()
    assert 'class="queue-row queue-row--done"' in row
    assert ">Snoozed<" in row and "Back from snooze" not in row and "Reopen" not in row


def test_it_sends_a_quick_action_without_javascript_back_to_the_queue(csm_client, csm):
    opportunity = OpportunityFactory(account=AccountFactory(owner=csm))
    response = csm_client.post(
        reverse("opportunities:advance", args=[opportunity.pk]), {"version": 1, "to": "qualify", "from": "queue"}
    )
    assert response.status_code == 302 and response["Location"] == QUEUE_URL
    assert Opportunity.objects.get().stage == Stage.QUALIFY


def test_it_answers_a_stale_quick_action_with_409_and_the_row_as_it_stands(csm_client, csm):
    opportunity = OpportunityFactory(account=AccountFactory(owner=csm), version=3)
    response = csm_client.post(
        reverse("opportunities:advance", args=[opportunity.pk]),
        {"version": 2, "to": "qualify", "from": "queue"},
        headers={"HX-Request": "true"},
    )
    assert response.status_code == 409
    assert '<input type="hidden" name="version" value="3">' in response.content.decode()
    assert Opportunity.objects.get().stage == Stage.IDENTIFY


def test_it_keeps_the_snooze_form_out_of_the_queue_until_a_row_asks_for_it(csm_client, csm):
    opportunity = OpportunityFactory(account=AccountFactory(owner=csm, name="Acme"))
    actions_url = reverse("opportunities:actions", args=[opportunity.pk])
    page = csm_client.get(QUEUE_URL).content.decode()
    assert 'name="until"' not in page
    assert f'href="{actions_url}" hx-get="{actions_url}"' in page

    menu = csm_client.get(actions_url, headers={"HX-Request": "true"})
    html = menu.content.decode()
    assert html.lstrip().startswith('<details class="quick-menu" open>')
    assert f'hx-post="{reverse("opportunities:snooze", args=[opportunity.pk])}"' in html
    assert 'name="until"' in html and 'name="owner"' not in html
    assert "HX-Request" in menu["Vary"]


def test_it_offers_the_row_actions_as_a_page_without_javascript(client, manager, csm, other_csm):
    opportunity = OpportunityFactory(account=AccountFactory(owner=csm, name="Acme"))
    client.force_login(manager)
    html = client.get(reverse("opportunities:actions", args=[opportunity.pk])).content.decode()
    assert "<h1" in html and "More actions for Acme" in html
    # Plain forms that post back to the queue: no htmx swap into a row that is not there.
    assert 'name="until"' in html and 'name="owner"' in html and "hx-post" not in html
    assert html.count('name="from" value="queue"') == 2


def test_it_hides_the_row_actions_of_another_csms_opportunity(client, other_csm, csm):
    opportunity = OpportunityFactory(account=AccountFactory(owner=csm))
    client.force_login(other_csm)
    assert client.get(reverse("opportunities:actions", args=[opportunity.pk])).status_code == 404


def test_it_lets_a_manager_assign_from_the_queue_but_not_a_csm(client, manager, csm, other_csm):
    opportunity = OpportunityFactory(account=AccountFactory(owner=csm))
    url = reverse("opportunities:assign", args=[opportunity.pk])
    client.force_login(csm)
    response = client.post(url, {"version": 1, "owner": other_csm.pk, "from": "queue"}, headers={"HX-Request": "true"})
    assert response.status_code == 403
    assert Opportunity.objects.get().owner == csm
    client.force_login(manager)
    client.post(url, {"version": 1, "owner": other_csm.pk, "from": "queue"}, headers={"HX-Request": "true"})
    assert Opportunity.objects.get().owner == other_csm


def test_it_offers_a_manager_the_owner_filter(manager_client, csm, other_csm):
    OpportunityFactory(account=AccountFactory(owner=csm, name="Casey's"))
    OpportunityFactory(account=AccountFactory(owner=other_csm, name="Olive's"))
    assert sorted(queued(manager_client.get(QUEUE_URL))) == ["Casey's", "Olive's"]
    assert queued(manager_client.get(QUEUE_URL, {"owner": other_csm.pk})) == ["Olive's"]


def test_a_trial_account_is_marked_as_one_so_its_zero_mrr_reads_right(csm_client, csm):
    OpportunityFactory(account=AccountFactory(owner=csm, name="Trying Pro", status="trial", mrr=0), score=90)
    OpportunityFactory(account=AccountFactory(owner=csm, name="Paying"), score=80)

    html = csm_client.get(QUEUE_URL).content.decode()

    trying = html[html.index("Trying Pro") : html.index("</th>", html.index("Trying Pro"))]
    paying = html[html.index("Paying") : html.index("</th>", html.index("Paying"))]
    assert 'status-text--trial">Trial</span>' in trying
    assert "status-text" not in paying


def test_one_request_s_filter_bar_leaves_nothing_behind_for_the_next(client, manager, csm, other_csm):
    # The filterset's filters and form class are shared between requests (accounts.filters.FilterSet): what
    # one request sets (the owner filter kept or dropped, the values chosen, the errors) stays with it.
    OpportunityFactory(account=AccountFactory(owner=csm, name="Casey's", industry="Retail"))
    OpportunityFactory(account=AccountFactory(owner=other_csm, name="Olive's", industry="Retail"))

    def bar(user, query=None):
        client.force_login(user)
        response = client.get(QUEUE_URL, query or {})
        form = response.context["filter"].form
        return form, queued(response)

    form, rows = bar(manager, {"owner": other_csm.pk, "industry": "Retail", "score_min": "abc"})
    assert "owner" in form.fields and rows == ["Olive's"] and "score_min" in form.errors
    form, rows = bar(csm)
    assert "owner" not in form.fields and rows == ["Casey's"]
    assert not form.is_bound and form["industry"].value() is None and not form.errors
    form, rows = bar(manager)
    assert "owner" in form.fields and sorted(rows) == ["Casey's", "Olive's"]
    assert form["owner"].value() is None and form["score_min"].value() is None


def _queue_queries(client) -> int:
    # The filter bar's choices are cached: count from an empty cache each time, so both counts include them.
    empty_caches()
    with CaptureQueriesContext(connection) as queries:
        response = client.get(QUEUE_URL)
    assert response.status_code == 200
    return len(queries)


@pytest.mark.parametrize("persona", ["csm", "manager"])
def test_it_runs_as_many_queries_for_50_rows_as_for_5(db, client, csm, manager, persona, request):
    client.force_login(request.getfixturevalue(persona))
    for _ in range(5):
        OpportunityFactory(account=AccountFactory(owner=csm), reasons=[{"text": "Seats 90%", "points": 30}])
    few = _queue_queries(client)
    for _ in range(45):
        OpportunityFactory(account=AccountFactory(owner=csm), reasons=[{"text": "Seats 90%", "points": 30}])
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr("opportunities.views.QUEUE_PER_PAGE", 50)
        many = _queue_queries(client)
    assert many == few


def test_it_stays_within_its_query_budget(csm_client, csm, django_assert_max_num_queries):
    OpportunityFactory(account=AccountFactory(owner=csm))
    # Session, user, role; the filter form's choices on an empty cache (plans, industries, regions, metrics);
    # count, page.
    with django_assert_max_num_queries(12):
        csm_client.get(QUEUE_URL, {"stage": "identify", "sort": "-mrr"})
