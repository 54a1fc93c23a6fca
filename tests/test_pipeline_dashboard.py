"""/pipeline/: the managers' pipeline dashboard and CSM leaderboard, filtered by period and segment."""

import datetime as dt
import re
from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from opportunities.models import STAGE_ORDER, LostReason, Opportunity, OpportunityEvent, Outcome, Stage
from tests.factories import AccountFactory

URL = "/pipeline/"
MARCH = {"start": "2026-03-01", "end": "2026-03-31"}


def at(day: str, hour: int = 10) -> dt.datetime:
    return dt.datetime.fromisoformat(f"{day}T{hour:02d}:00:00+00:00")


def opportunity(
    owner,
    *,
    stages: list[str],
    outcome: str = Outcome.OPEN,
    closed: str | None = None,
    expected: str | None = None,
    actual: str | None = None,
    reason: str = "",
    snoozed_until: dt.date | None = None,
    **account_fields,
) -> Opportunity:
    """An opportunity on an account of its own, with the audit events its steps write: created in Identify on
    the first of `stages` (days), moved by its owner on each following one, and closed on `closed`."""
    account = AccountFactory(owner=owner, **account_fields)
    entered = [at(day) for day in stages]
    stage = STAGE_ORDER[len(stages) - 1]
    o = Opportunity.objects.create(
        account=account,
        owner=owner,
        stage=Stage.CLOSE if outcome == Outcome.WON else stage,
        outcome=outcome,
        identified_at=entered[0],
        stage_entered_at=entered[-1],
        closed_at=at(closed) if closed else None,
        expected_mrr_delta=Decimal(expected) if expected else None,
        actual_mrr_delta=Decimal(actual) if actual else None,
        lost_reason=LostReason.objects.get_or_create(key=reason, defaults={"label": reason.title()})[0]
        if reason
        else None,
        snoozed_until=snoozed_until,
    )
    events = [OpportunityEvent(opportunity=o, occurred_at=entered[0], kind="created", to_stage=Stage.IDENTIFY)]
    for index in range(1, len(stages)):
        events.append(
            OpportunityEvent(
                opportunity=o,
                actor=owner,
                occurred_at=entered[index],
                kind="stage_changed",
                from_stage=STAGE_ORDER[index - 1],
                to_stage=STAGE_ORDER[index],
            )
        )
    if closed:
        events.append(
            OpportunityEvent(
                opportunity=o,
                actor=owner,
                occurred_at=at(closed),
                kind="closed",
                from_stage=stage,
                to_stage=Stage.CLOSE if outcome == Outcome.WON else "",
            )
        )
    OpportunityEvent.objects.bulk_create(events)
    return o


@pytest.fixture
def book(csm, other_csm):
    """Casey (EMEA) wins one and loses one in March and has one open in Present; Olive (AMER) wins one in
    March and has one open in Identify."""
    return {
        "casey_won": opportunity(
            csm,
            stages=["2026-03-01", "2026-03-03", "2026-03-05"],
            outcome=Outcome.WON,
            closed="2026-03-11",
            actual="70.00",
        ),
        "casey_lost": opportunity(
            csm, stages=["2026-03-02", "2026-03-04"], outcome=Outcome.LOST, closed="2026-03-20", reason="budget"
        ),
        "casey_open": opportunity(csm, stages=["2026-02-01", "2026-02-05", "2026-03-06"], expected="200.00"),
        "olive_won": opportunity(
            other_csm,
            stages=["2026-03-01", "2026-03-02", "2026-03-04", "2026-03-08"],
            outcome=Outcome.WON,
            closed="2026-03-21",
            actual="270.00",
            region="AMER",
            industry="Retail",
        ),
        "olive_open": opportunity(other_csm, stages=["2026-03-10"], expected="30.00", region="AMER", industry="Retail"),
    }


def text(response) -> str:
    return re.sub(r"\s+", " ", response.content.decode())


def figure(response, name: str) -> str:
    match = re.search(rf'data-figure="{name}">([^<]*)<', text(response))
    assert match, f"no figure {name}"
    return match.group(1).strip()


def test_it_shows_a_manager_the_pipeline_of_the_period(manager_client, book):
    response = manager_client.get(URL, MARCH)

    assert response.status_code == 200
    # Open: Casey's in Present and Olive's in Identify, 200 + 30 = $230 expected.
    assert figure(response, "open-count") == "2"
    assert "$230.00 expected MRR" in text(response)
    # Closed in March: 2 won (Casey's, Olive's), 1 lost: 2 / 3 = 66.7%; wins bring 70 + 270 = $340.
    assert figure(response, "win-rate") == "66.7%"
    assert figure(response, "expansion") == "$340.00"
    # Cycle: Casey's 10 days (Mar 1 -> 11), Olive's 20 (Mar 1 -> 21): median 15.
    assert figure(response, "cycle-median") == "15.0 days"
    assert 'aria-current="page">Pipeline</a>' in text(response)
    assert "Budget" in text(response)


def test_it_lets_an_admin_in_too(client, admin_user, book):
    client.force_login(admin_user)

    assert client.get(URL, MARCH).status_code == 200


def test_it_refuses_a_csm_with_403(csm_client, book):
    response = csm_client.get(URL, MARCH)

    assert response.status_code == 403
    assert "CSM leaderboard" not in response.content.decode()


def test_it_narrows_every_figure_to_one_csm(manager_client, book, other_csm):
    response = manager_client.get(URL, {**MARCH, "csm": other_csm.pk})

    # Olive only: her open one ($30) and her win ($270), 1 / (1 + 0) = 100%.
    assert figure(response, "open-count") == "1"
    assert figure(response, "win-rate") == "100.0%"
    assert figure(response, "expansion") == "$270.00"
    assert "Casey Moreno" not in text(response).split('id="leaderboard-heading"')[1]


def test_it_narrows_to_a_segment_of_accounts(manager_client, book):
    emea = manager_client.get(URL, {**MARCH, "region": "EMEA"})
    retail = manager_client.get(URL, {**MARCH, "industry": "Retail", "size": "11-50"})
    large = manager_client.get(URL, {**MARCH, "size": "1000+"})

    # EMEA is Casey's book: 1 open, 1 won of 2 decided.
    assert (figure(emea, "open-count"), figure(emea, "win-rate")) == ("1", "50.0%")
    # Retail (Olive's, 25 employees): 1 open, her win.
    assert (figure(retail, "open-count"), figure(retail, "expansion")) == ("1", "$270.00")
    # Nobody has 1,000+ employees.
    assert figure(large, "open-count") == "0"
    assert "No open opportunity" in text(large)


def test_it_narrows_the_decisions_to_the_period(manager_client, book):
    response = manager_client.get(URL, {"start": "2026-03-01", "end": "2026-03-15"})

    # Until the 15th only Casey's win is decided: 1 / 1 = 100%; the open pipeline does not depend on the period.
    assert figure(response, "win-rate") == "100.0%"
    assert figure(response, "expansion") == "$70.00"
    assert figure(response, "open-count") == "2"


def test_it_keeps_the_filters_in_the_url_of_the_period_presets(manager_client, book, other_csm):
    response = manager_client.get(URL, {**MARCH, "csm": other_csm.pk})

    assert f'href="?csm={other_csm.pk}&amp;period=last_month"' in text(response)


def test_it_answers_htmx_with_the_results_partial_varying_on_the_header(manager_client, book):
    response = manager_client.get(URL, MARCH, headers={"HX-Request": "true"})

    body = response.content.decode()
    assert response.status_code == 200
    assert body.lstrip().startswith('<div id="results"')
    assert "<html" not in body
    assert "HX-Request" in response["Vary"]


def test_it_pushes_the_tidy_address_of_what_it_shows(manager_client, book, other_csm):
    today = timezone.localdate()
    last_month_start = (today.replace(day=1) - dt.timedelta(days=1)).replace(day=1)
    last_month_end = today.replace(day=1) - dt.timedelta(days=1)
    sent = {
        "period": "last_month",
        "start": last_month_start.isoformat(),
        "end": last_month_end.isoformat(),
        "csm": other_csm.pk,
        "plan": "",
        "region": "",
    }

    preset = manager_client.get(URL, sent, headers={"HX-Request": "true"})
    custom = manager_client.get(URL, {**sent, "start": "2026-03-01"}, headers={"HX-Request": "true"})

    # The days shown for "last month" stand for the preset; a changed day makes the period custom.
    assert preset["HX-Push-Url"] == f"/pipeline/?period=last_month&csm={other_csm.pk}"
    assert custom["HX-Push-Url"] == f"/pipeline/?start=2026-03-01&end={last_month_end.isoformat()}&csm={other_csm.pk}"


def test_it_answers_a_history_restore_with_the_whole_page(manager_client, book):
    response = manager_client.get(URL, MARCH, headers={"HX-Request": "true", "HX-History-Restore-Request": "true"})

    assert "<html" in response.content.decode()


def test_it_explains_a_period_it_cannot_show(manager_client, book):
    response = manager_client.get(URL, {"start": "2026-03-31", "end": "2026-03-01"})

    assert response.status_code == 422
    assert "The last day is before the first." in text(response)


def test_it_ranks_csms_and_sorts_the_leaderboard_on_request(manager_client, book):
    default = text(manager_client.get(URL, MARCH)).split('id="leaderboard-heading"')[1]
    by_won = text(manager_client.get(URL, {**MARCH, "sort": "csm"})).split('id="leaderboard-heading"')[1]

    # Expansion first by default: Olive's $270 before Casey's $70.
    assert default.index("Olive Park") < default.index("Casey Moreno")
    assert re.search(r'aria-sort="descending"[^>]*>\s*<a[^>]*>\s*<span>Expansion MRR', default)
    assert by_won.index("Casey Moreno") < by_won.index("Olive Park")
    assert re.search(r'aria-sort="ascending"[^>]*>\s*<a[^>]*>\s*<span>CSM', by_won)


def test_it_links_the_snoozes_ending_this_week_to_their_accounts(manager_client, csm):
    today = timezone.localdate()
    snoozed = opportunity(
        csm,
        stages=[(today - dt.timedelta(days=20)).isoformat()],
        outcome=Outcome.SNOOZED,
        closed=(today - dt.timedelta(days=10)).isoformat(),
        snoozed_until=today + dt.timedelta(days=3),
        name="Initech",
    )
    opportunity(
        csm,
        stages=[(today - dt.timedelta(days=20)).isoformat()],
        outcome=Outcome.SNOOZED,
        closed=(today - dt.timedelta(days=10)).isoformat(),
        snoozed_until=today + dt.timedelta(days=30),
        name="Later Corp",
    )

    body = text(manager_client.get(URL))

    assert f'href="/accounts/{snoozed.account_id}/#opportunity-{snoozed.pk}">Initech</a>' in body
    assert "Later Corp" not in body


def _queries(client) -> int:
    with CaptureQueriesContext(connection) as queries:
        assert client.get(URL, {"start": "2026-01-01", "end": "2026-12-31"}).status_code == 200
    return len(queries)


def _add(count: int, owners) -> None:
    for index in range(count):
        owner = owners[index % len(owners)]
        if index % 3 == 0:
            opportunity(owner, stages=["2026-03-01", "2026-03-04"], expected="50.00", region=f"R{index}")
        elif index % 3 == 1:
            opportunity(owner, stages=["2026-03-01", "2026-03-02", "2026-03-05"], outcome="won", closed="2026-03-09")
        else:
            opportunity(owner, stages=["2026-03-01"], outcome="lost", closed="2026-03-09", reason=f"r{index % 5}")


def test_it_runs_as_many_queries_for_30_opportunities_as_for_3(manager_client, csm, other_csm):
    _add(3, [csm, other_csm])
    few = _queries(manager_client)
    _add(27, [csm, other_csm])
    many = _queries(manager_client)

    assert Opportunity.objects.count() == 30
    assert few == many
