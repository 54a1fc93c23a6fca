"""The queue: a CSM's open opportunities ranked by score, filtered, sorted, and worked with quick actions."""

import datetime as dt

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from opportunities.models import Opportunity, Outcome, Stage
from tests.factories import AccountFactory, OpportunityFactory, plan

QUEUE_URL = reverse("opportunities:queue")


def queued(response) -> list[str]:
    return [opportunity.account.name for opportunity in response.context["rows"]]


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


def test_it_sorts_by_mrr_when_asked(csm_client, csm):
    OpportunityFactory(account=AccountFactory(owner=csm, name="Small", mrr=10), score=90)
    OpportunityFactory(account=AccountFactory(owner=csm, name="Big", mrr=500), score=10)
    response = csm_client.get(QUEUE_URL, {"sort": "-mrr"})
    assert queued(response) == ["Big", "Small"]
    assert 'aria-sort="descending"' in response.content.decode()


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


def test_it_snoozes_a_row_inline(csm_client, csm):
    opportunity = OpportunityFactory(account=AccountFactory(owner=csm))
    until = timezone.localdate() + dt.timedelta(days=7)
    csm_client.post(
        reverse("opportunities:snooze", args=[opportunity.pk]),
        {"version": 1, "until": until.isoformat(), "from": "queue"},
        headers={"HX-Request": "true"},
    )
    opportunity.refresh_from_db()
    assert (opportunity.outcome, opportunity.snoozed_until) == (Outcome.SNOOZED, until)


def test_it_lets_a_manager_assign_from_the_queue_but_not_a_csm(client, manager, csm, other_csm):
    opportunity = OpportunityFactory(account=AccountFactory(owner=csm))
    url = reverse("opportunities:assign", args=[opportunity.pk])
    client.force_login(csm)
    response = client.post(url, {"version": 1, "owner": other_csm.pk, "from": "queue"}, headers={"HX-Request": "true"})
    assert response.status_code == 422
    client.force_login(manager)
    client.post(url, {"version": 1, "owner": other_csm.pk, "from": "queue"}, headers={"HX-Request": "true"})
    assert Opportunity.objects.get().owner == other_csm


def test_it_offers_a_manager_the_owner_filter(manager_client, csm, other_csm):
    OpportunityFactory(account=AccountFactory(owner=csm, name="Casey's"))
    OpportunityFactory(account=AccountFactory(owner=other_csm, name="Olive's"))
    assert sorted(queued(manager_client.get(QUEUE_URL))) == ["Casey's", "Olive's"]
    assert queued(manager_client.get(QUEUE_URL, {"owner": other_csm.pk})) == ["Olive's"]


def _queue_queries(client) -> int:
    with CaptureQueriesContext(connection) as queries:
        response = client.get(QUEUE_URL)
    assert response.status_code == 200
    return len(queries)


@pytest.mark.parametrize("persona", ["csm", "manager"])
def test_it_runs_as_many_queries_for_50_rows_as_for_5(client, csm, manager, persona, request):
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
    # Session, user, role; the filter form's choices (plans, industries, regions, metrics); count, page.
    with django_assert_max_num_queries(12):
        csm_client.get(QUEUE_URL, {"stage": "identify", "sort": "-mrr"})
