"""/pipeline/: the managers' pipeline dashboard and CSM leaderboard, filtered by period and segment."""

import csv
import datetime as dt
import io
import re
from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from opportunities.models import STAGE_ORDER, LostReason, Opportunity, OpportunityEvent, Outcome, Stage
from tests.factories import AccountFactory, UserFactory

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


# --- CSV exports -------------------------------------------------------------------------------------------

EXPORTS = ("funnel", "stages", "by_csm", "by_segment", "lost_reasons", "snoozed", "leaderboard")


def csv_rows(response) -> list[list[str]]:
    assert response.status_code == 200
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    assert response["Content-Disposition"].startswith('attachment; filename="pipeline-')
    return list(csv.reader(io.StringIO(b"".join(response.streaming_content).decode("utf-8-sig"))))


def export(client, name: str, **params) -> list[list[str]]:
    return csv_rows(client.get(URL, {**MARCH, **params, "export": name}))


def test_it_exports_the_open_pipeline_by_stage_csm_and_segment(manager_client, book):
    funnel = export(manager_client, "funnel")
    by_csm = export(manager_client, "by_csm")
    by_segment = export(manager_client, "by_segment")

    # Open today: Olive's $30 in Identify, Casey's $200 in Present; both Basic, 25 employees.
    assert funnel == [
        ["stage", "open", "expected_mrr", "priced"],
        ["Identify", "1", "30.00", "1"],
        ["Qualify", "0", "0.00", "0"],
        ["Present", "1", "200.00", "1"],
        ["Close", "0", "0.00", "0"],
    ]
    assert by_csm == [
        ["csm", "identify", "qualify", "present", "close", "open", "expected_mrr"],
        ["Casey Moreno", "0", "0", "1", "0", "1", "200.00"],
        ["Olive Park", "1", "0", "0", "0", "1", "30.00"],
    ]
    assert by_segment == [
        ["segment", "value", "open", "expected_mrr"],
        ["Plan", "Basic", "2", "230.00"],
        ["Industry", "Software", "1", "200.00"],
        ["Industry", "Retail", "1", "30.00"],
        ["Company size", "11–50", "2", "230.00"],
        ["Region", "EMEA", "1", "200.00"],
        ["Region", "AMER", "1", "30.00"],
    ]


def test_it_exports_the_conversion_and_time_in_stage_of_the_period(manager_client, book):
    rows = export(manager_client, "stages")

    # Identified in March: Casey's won and lost, Olive's won and open (Casey's open one dates from February).
    # Reached: Identify 4, Qualify 3 (not Olive's open), Present 2 and Close 2 (the wins), won 2.
    # Stays ended in March, in days: Identify 2 (Casey won), 2 (Casey lost), 1 (Olive won) -> 5 / 3 = 1.7;
    # Qualify 2, 16 (Mar 4 -> 20, lost), 29 (Feb 5 -> Mar 6, Casey open), 2 -> 49 / 4 = 12.25 -> 12.3;
    # Present 6 (Mar 5 -> closed won Mar 11), 4 -> 5.0; Close 13 (Olive's, Mar 8 -> 21) -> 13.0.
    assert rows == [
        ["stage", "reached", "next_stage", "reached_next", "conversion_percent", "stays", "avg_days_in_stage"],
        ["Identify", "4", "Qualify", "3", "75.0", "3", "1.7"],
        ["Qualify", "3", "Present", "2", "66.7", "4", "12.3"],
        ["Present", "2", "Close", "2", "100.0", "2", "5.0"],
        ["Close", "2", "Won", "2", "100.0", "1", "13.0"],
    ]


def test_it_exports_the_lost_reasons_and_the_leaderboard_in_its_sort(manager_client, book):
    lost = export(manager_client, "lost_reasons")
    by_expansion = export(manager_client, "leaderboard")
    by_name = export(manager_client, "leaderboard", sort="csm")

    assert lost == [["reason", "lost", "share_percent"], ["Budget", "1", "100.0"]]
    # Casey worked her 3 (events by her in March), won 1 ($70, 10 days) of 2 decided; Olive worked her win
    # only (nobody acted on her open one), won it ($270, 20 days).
    header = ["csm", "worked", "won", "lost", "win_rate_percent", "expansion_mrr", "avg_cycle_days"]
    olive = ["Olive Park", "1", "1", "0", "100.0", "270.00", "20.0"]
    casey = ["Casey Moreno", "3", "1", "1", "50.0", "70.00", "10.0"]
    assert by_expansion == [header, olive, casey]
    assert by_name == [header, casey, olive]


def test_it_exports_the_snoozes_returning_this_week_with_iso_days(manager_client, csm):
    today = timezone.localdate()
    back_on = today + dt.timedelta(days=3)
    opportunity(
        csm,
        stages=[(today - dt.timedelta(days=20)).isoformat(), (today - dt.timedelta(days=15)).isoformat()],
        outcome=Outcome.SNOOZED,
        closed=(today - dt.timedelta(days=10)).isoformat(),
        snoozed_until=back_on,
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

    rows = csv_rows(manager_client.get(URL, {"export": "snoozed"}))

    assert rows == [
        ["account", "owner", "stage", "snoozed_until"],
        ["Initech", "Casey Moreno", "Qualify", back_on.isoformat()],
    ]


def test_it_narrows_every_export_like_the_page(manager_client, book, other_csm):
    olive = {"csm": other_csm.pk}

    # Olive's book only: her open $30 in Identify, her $270 win, no loss.
    assert export(manager_client, "funnel", **olive)[1:3] == [
        ["Identify", "1", "30.00", "1"],
        ["Qualify", "0", "0.00", "0"],
    ]
    assert export(manager_client, "funnel", **olive)[3] == ["Present", "0", "0.00", "0"]
    assert export(manager_client, "by_csm", **olive)[1:] == [["Olive Park", "1", "0", "0", "0", "1", "30.00"]]
    assert export(manager_client, "lost_reasons", **olive)[1:] == []
    assert export(manager_client, "leaderboard", **olive)[1:] == [
        ["Olive Park", "1", "1", "0", "100.0", "270.00", "20.0"]
    ]
    assert [row[0] for row in export(manager_client, "stages", **olive)[1:]] == [
        "Identify",
        "Qualify",
        "Present",
        "Close",
    ]
    assert export(manager_client, "stages", **olive)[1] == ["Identify", "2", "Qualify", "1", "50.0", "1", "1.0"]
    # An account segment: EMEA is Casey's book.
    assert export(manager_client, "by_segment", region="EMEA")[1:] == [
        ["Plan", "Basic", "1", "200.00"],
        ["Industry", "Software", "1", "200.00"],
        ["Company size", "11–50", "1", "200.00"],
        ["Region", "EMEA", "1", "200.00"],
    ]
    # The period: until the 15th only Casey's win is decided, and nothing is lost yet.
    first_half = {"start": "2026-03-01", "end": "2026-03-15"}
    assert export(manager_client, "lost_reasons", **first_half)[1:] == []
    assert [row[:3] for row in export(manager_client, "leaderboard", **first_half)[1:]] == [
        ["Casey Moreno", "3", "1"],
        ["Olive Park", "1", "0"],
    ]


def test_it_links_a_csv_of_each_table_keeping_the_filters_and_the_sort(manager_client, book, other_csm):
    response = manager_client.get(URL, {**MARCH, "csm": other_csm.pk, "plan": "", "sort": "csm"})

    query = f"start=2026-03-01&amp;end=2026-03-31&amp;csm={other_csm.pk}&amp;sort=csm"
    for name in EXPORTS:
        assert f'href="/pipeline/?{query}&amp;export={name}" download>CSV' in text(response)


def test_it_links_the_csvs_of_a_preset_period_by_the_preset(manager_client, book):
    response = manager_client.get(URL, {"period": "last_quarter"})

    assert 'href="/pipeline/?period=last_quarter&amp;export=funnel" download>' in text(response)


def test_it_neutralises_names_that_a_spreadsheet_would_run_as_formulas(manager_client):
    hostile_csm = UserFactory(username="mallory", first_name="=cmd|' /C calc'!A0", last_name="", role="CSM")
    today = timezone.localdate()
    opportunity(hostile_csm, stages=["2026-03-02"], expected="-40.00", name="@SUM(A1:A9)")
    opportunity(
        hostile_csm,
        stages=[(today - dt.timedelta(days=9)).isoformat()],
        outcome=Outcome.SNOOZED,
        closed=(today - dt.timedelta(days=8)).isoformat(),
        snoozed_until=today,
        name='=HYPERLINK("http://evil.example")',
    )

    by_csm = export(manager_client, "by_csm")
    leaderboard = export(manager_client, "leaderboard")
    snoozed = export(manager_client, "snoozed")

    # Text cells get a leading apostrophe; numbers, negative ones included, stay numbers.
    assert by_csm[1] == ["'=cmd|' /C calc'!A0", "1", "0", "0", "0", "1", "-40.00"]
    assert leaderboard[1][0] == "'=cmd|' /C calc'!A0"
    assert snoozed[1] == ['\'=HYPERLINK("http://evil.example")', "'=cmd|' /C calc'!A0", "Identify", today.isoformat()]


def test_it_refuses_a_csm_an_export_with_403(csm_client, book):
    response = csm_client.get(URL, {**MARCH, "export": "leaderboard"})

    assert response.status_code == 403
    assert not response.get("Content-Disposition")


def test_it_answers_404_to_an_export_of_a_table_it_does_not_have(manager_client, book):
    response = manager_client.get(URL, {**MARCH, "export": "accounts"})

    assert response.status_code == 404


def test_it_explains_a_period_it_cannot_export(manager_client, book):
    response = manager_client.get(URL, {"start": "2026-03-31", "end": "2026-03-01", "export": "funnel"})

    assert response.status_code == 422
    assert "The last day is before the first." in text(response)


def _export_queries(client, name: str) -> int:
    with CaptureQueriesContext(connection) as queries:
        rows = csv_rows(client.get(URL, {"start": "2026-01-01", "end": "2026-12-31", "export": name}))
    assert rows[0]
    return len(queries)


def test_it_exports_in_as_many_queries_for_30_opportunities_as_for_3(manager_client, csm, other_csm):
    _add(3, [csm, other_csm])
    few = {name: _export_queries(manager_client, name) for name in EXPORTS}
    _add(27, [csm, other_csm])
    many = {name: _export_queries(manager_client, name) for name in EXPORTS}

    assert Opportunity.objects.count() == 30
    assert few == many
