"""/metrics/: the managers' revenue metrics, each figure with its formula, inputs and drill-down."""

import datetime as dt
import re
from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from accounts.models import MrrMovement
from opportunities.metrics_views import preset_period
from tests.factories import AccountFactory, UserFactory

URL = "/metrics/"
QUARTER = "start=2026-01-01&end=2026-03-31"


def movement(account, on: str, before: str, after: str, kind: str) -> None:
    MrrMovement.objects.create(
        account=account,
        occurred_on=dt.date.fromisoformat(on),
        mrr_before=Decimal(before),
        mrr_after=Decimal(after),
        kind=kind,
    )


@pytest.fixture
def book(csm, other_csm):
    """Casey's Acme grows in the quarter, Olive's Globex churns, Initech buys in February."""
    acme = AccountFactory(
        name="Acme Analytics", owner=csm, mrr=Decimal("150.00"), first_purchase_on=dt.date(2025, 3, 1)
    )
    movement(acme, "2025-03-01", "0", "100", MrrMovement.Kind.NEW)
    movement(acme, "2026-01-20", "100", "150", MrrMovement.Kind.EXPANSION)
    globex = AccountFactory(name="Globex", owner=other_csm, mrr=Decimal("0.00"), first_purchase_on=dt.date(2025, 4, 1))
    movement(globex, "2025-04-01", "0", "60", MrrMovement.Kind.NEW)
    movement(globex, "2026-02-10", "60", "0", MrrMovement.Kind.CHURN)
    initech = AccountFactory(name="Initech", owner=csm, mrr=Decimal("90.00"), first_purchase_on=dt.date(2026, 2, 1))
    movement(initech, "2026-02-01", "0", "90", MrrMovement.Kind.NEW)
    return {"acme": acme, "globex": globex, "initech": initech}


def text(response) -> str:
    return re.sub(r"\s+", " ", response.content.decode())


def test_it_shows_a_manager_every_figure_of_the_period(manager_client, book):
    response = manager_client.get(f"{URL}?{QUARTER}")

    assert response.status_code == 200
    body = text(response)
    # Cohort $160 (Acme 100 + Globex 60); NDR (160 + 50 − 60) / 160 = 93.75%; ARPU (150 + 90) / 2 = $120.
    assert "$160.00" in body
    assert "93.75%" in body
    assert "$120.00" in body
    assert "325 days" in body  # Acme: 2025-03-01 -> 2026-01-20
    assert 'aria-current="page">Metrics</a>' in body


def test_it_shows_an_admin_the_page_too(client, admin_user, book):
    client.force_login(admin_user)
    assert client.get(URL).status_code == 200


def test_it_refuses_a_csm(csm_client, book):
    response = csm_client.get(f"{URL}?{QUARTER}")

    assert response.status_code == 403
    assert "Metrics are for managers" in text(response)
    assert "$160.00" not in text(response)


def test_it_refuses_a_user_without_a_role(client, db):
    client.force_login(UserFactory(username="nobody"))
    assert client.get(URL).status_code == 403


def test_it_links_metrics_in_the_navigation_for_managers_only(manager_client, client, csm, book):
    assert 'href="/metrics/"' in text(manager_client.get("/"))
    client.force_login(csm)
    assert 'href="/metrics/"' not in text(client.get("/"))


def test_it_shows_each_formula_and_its_inputs_in_a_tip_the_figure_describes(manager_client, book):
    body = text(manager_client.get(f"{URL}?{QUARTER}"))

    # The figure is a link described by its tip, so focus and hover both reveal the formula.
    assert re.search(r'<a class="metric-card__value"[^>]*aria-describedby="tip-ndr"', body)
    tip = re.search(r'<div class="metric-tip" id="tip-ndr" role="tooltip">(.*?)</div> </article>', body).group(1)
    assert "(MRR at start + expansion + reactivation − contraction − churned) / MRR at start × 100" in tip
    assert "<dt>MRR at start</dt><dd>$160.00</dd>" in tip
    assert "<dt>Churned MRR</dt><dd>$60.00</dd>" in tip
    assert "Upgraded customers / customers at start × 100" in body
    assert "ARPU / monthly churn rate" in body
    assert "hx-on" not in body


def test_it_says_why_a_figure_is_undefined(manager_client, book):
    body = text(manager_client.get(f"{URL}?start=2025-01-01&end=2025-01-31"))
    assert "No customers at start" in body
    assert "No paying account at the end" in body


def test_it_drills_into_the_movements_behind_a_figure(manager_client, book):
    response = manager_client.get(f"{URL}?{QUARTER}&drill=expansion_mrr")

    body = text(response)
    drill = body[body.index('id="drill"') :]
    assert f'href="/accounts/{book["acme"].pk}/">Acme Analytics</a>' in drill
    assert "Casey Moreno" in drill
    assert "Jan 20, 2026" in drill
    assert "+$50.00" in drill
    assert "Globex" not in drill and "Initech" not in drill


def test_it_drills_into_the_cohort_without_the_accounts_that_joined_during_the_period(manager_client, book):
    drill = text(manager_client.get(f"{URL}?{QUARTER}&drill=customers_at_start"))
    drill = drill[drill.index('id="drill"') :]
    assert "Acme Analytics" in drill and "Globex" in drill
    assert "Initech" not in drill
    assert "MRR at start" in drill


def test_it_answers_htmx_with_the_drill_down_alone(manager_client, book):
    response = manager_client.get(
        f"{URL}?{QUARTER}&drill=churned_mrr", headers={"HX-Request": "true", "HX-Target": "drill"}
    )

    body = text(response)
    assert body.strip().startswith('<section id="drill"')
    assert "Globex" in body and "Olive Park" in body
    assert "<html" not in body
    assert "HX-Request" in response["Vary"]


def test_it_answers_htmx_with_the_figures_when_the_period_changes(manager_client, book):
    response = manager_client.get(f"{URL}?{QUARTER}", headers={"HX-Request": "true", "HX-Target": "metrics"})

    body = text(response)
    assert body.strip().startswith('<div id="metrics"')
    assert "$160.00" in body
    assert "<html" not in body


def test_it_keeps_the_period_in_the_drill_down_links(manager_client, book):
    body = text(manager_client.get(f"{URL}?{QUARTER}"))
    assert f'href="/metrics/?{QUARTER.replace("&", "&amp;")}&amp;drill=ndr#drill"' in body


def test_it_shows_a_preset_period(manager_client, book):
    response = manager_client.get(f"{URL}?period=last_quarter")

    start, end = preset_period("last_quarter", today=timezone.localdate())
    body = text(response)
    assert f'value="{start:%Y-%m-%d}"' in body and f'value="{end:%Y-%m-%d}"' in body
    assert re.search(r'href="/metrics/\?period=last_quarter"[^>]*aria-current="true"', body)


@pytest.mark.parametrize(
    ("key", "start", "end"),
    [
        ("this_month", "2026-03-01", "2026-03-15"),
        ("last_month", "2026-02-01", "2026-02-28"),
        ("last_quarter", "2025-10-01", "2025-12-31"),
        ("last_12_months", "2025-04-01", "2026-03-15"),
    ],
)
def test_it_computes_the_preset_periods_from_today(key, start, end):
    assert preset_period(key, today=dt.date(2026, 3, 15)) == (dt.date.fromisoformat(start), dt.date.fromisoformat(end))


def test_it_computes_last_quarter_and_last_month_across_a_new_year():
    assert preset_period("last_quarter", today=dt.date(2026, 1, 5)) == (dt.date(2025, 10, 1), dt.date(2025, 12, 31))
    assert preset_period("last_month", today=dt.date(2026, 1, 5)) == (dt.date(2025, 12, 1), dt.date(2025, 12, 31))


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("start=2026-03-31&end=2026-01-01", "The last day is before the first."),
        ("start=2026-01-01", "Give the last day of the period."),
        ("start=garbage&end=2026-01-01", "Enter a valid date."),
        ("period=forever", "Select a valid choice."),
    ],
)
def test_it_explains_a_period_it_cannot_show(manager_client, book, query, message):
    response = manager_client.get(f"{URL}?{query}")

    assert response.status_code == 422
    assert message in text(response)


@pytest.mark.parametrize("accounts", [3, 30])
def test_it_runs_the_same_queries_whatever_the_number_of_accounts(manager_client, manager, accounts):
    owner = UserFactory(username="owner-of-many", role="CSM")
    for _ in range(accounts):
        account = AccountFactory(owner=owner, mrr=Decimal("120.00"))
        movement(account, "2025-06-01", "0", "100", MrrMovement.Kind.NEW)
        movement(account, "2026-02-01", "100", "120", MrrMovement.Kind.EXPANSION)
    manager_client.get(f"{URL}?{QUARTER}")  # reads the roles (reference data), kept from then on

    with CaptureQueriesContext(connection) as page:
        response = manager_client.get(f"{URL}?{QUARTER}&drill=expansion_mrr")

    assert response.status_code == 200
    body = text(response)
    drill = body[body.index('id="drill"') : body.index('id="trends-heading"')]
    assert drill.count('<th scope="row">') == accounts
    # Session, user; accounts and movements; the drill-down's accounts with their owners.
    assert len(page.captured_queries) == EXPECTED_QUERIES, [q["sql"][:120] for q in page.captured_queries]


EXPECTED_QUERIES = 5


def test_it_embeds_the_months_mrr_moved_ndr_and_cohorts_for_the_charts(manager_client, csm):
    # Joined 10 Jan 2026 at 100 (new), upgraded 5 Feb to 150 (+50), churned 20 Mar (150).
    # January's cohort is empty (NDR undefined); February's: 100 at start, 150 at end -> 150%;
    # March's: 150 -> 0 -> 0%. The January 2026 cohort (1 account): upgraded from month 1 on.
    account = AccountFactory(owner=csm, mrr=Decimal("0"), first_purchase_on=dt.date(2026, 1, 10))
    movement(account, "2026-01-10", "0", "100", MrrMovement.Kind.NEW)
    movement(account, "2026-02-05", "100", "150", MrrMovement.Kind.EXPANSION)
    movement(account, "2026-03-20", "150", "0", MrrMovement.Kind.CHURN)

    response = manager_client.get(f"{URL}?{QUARTER}")

    charts = response.context["charts"]
    assert charts["trends"]["months"] == ["2026-01-01", "2026-02-01", "2026-03-01"]
    assert charts["trends"]["new"] == [100.0, 0.0, 0.0]
    assert charts["trends"]["expansion"] == [0.0, 50.0, 0.0]
    assert charts["trends"]["churn"] == [0.0, 0.0, -150.0]
    assert charts["ndr"]["values"] == [None, 150.0, 0.0]
    assert charts["cohorts"]["labels"] == ["Jan 2026 (1)"]
    assert charts["cohorts"]["upgraded"] == [[0.0, 100.0, 100.0]]
    assert 'id="metrics-charts"' in response.text


def _csv(response) -> list[list[str]]:
    import csv
    import io

    assert response["Content-Type"].startswith("text/csv")
    return list(csv.reader(io.StringIO(b"".join(response.streaming_content).decode("utf-8-sig"))))


def test_it_exports_a_figures_rows_for_the_chosen_period_with_formulas_neutralised(manager_client, csm):
    hostile = AccountFactory(owner=csm, name='=HYPERLINK("http://x")', external_id="-ext", mrr=Decimal("150"))
    movement(hostile, "2025-12-01", "0", "100", MrrMovement.Kind.NEW)
    movement(hostile, "2026-02-05", "100", "150", MrrMovement.Kind.EXPANSION)
    outside = AccountFactory(owner=csm, name="Outside", mrr=Decimal("300"))
    movement(outside, "2025-12-01", "0", "200", MrrMovement.Kind.NEW)
    movement(outside, "2026-05-05", "200", "300", MrrMovement.Kind.EXPANSION)  # after the quarter

    rows = _csv(manager_client.get(f"{URL}?{QUARTER}&drill=expansion_mrr&export=drill"))

    assert rows[0] == ["account", "external_id", "owner", "date", "mrr_before", "mrr_after", "change", "days"]
    assert rows[1:] == [
        ['\'=HYPERLINK("http://x")', "'-ext", "Casey Moreno", "2026-02-05", "100.00", "150.00", "50.00", ""]
    ]


def test_it_exports_the_figures_trends_and_cohorts_of_the_period(manager_client, csm):
    account = AccountFactory(owner=csm, mrr=Decimal("150"), first_purchase_on=dt.date(2026, 1, 10))
    movement(account, "2026-01-10", "0", "100", MrrMovement.Kind.NEW)
    movement(account, "2026-02-05", "100", "150", MrrMovement.Kind.EXPANSION)

    figures = _csv(manager_client.get(f"{URL}?{QUARTER}&export=figures"))
    trends = _csv(manager_client.get(f"{URL}?{QUARTER}&export=trends"))
    cohorts = _csv(manager_client.get(f"{URL}?{QUARTER}&export=cohorts"))

    assert figures[0] == ["figure", "label", "value", "formula", "inputs"]
    assert {row[0] for row in figures[1:]} >= {"expansion_mrr", "ndr", "ltv"}
    assert trends[1:] == [
        ["2026-01-01", "100.00", "0.00", "0.00", "0.00", "0.00", "100.00", ""],
        ["2026-02-01", "0.00", "50.00", "0.00", "0.00", "0.00", "50.00", "150.0"],
        ["2026-03-01", "0.00", "0.00", "0.00", "0.00", "0.00", "0.00", "100.0"],
    ]
    assert cohorts[1][:3] == ["2026-01", "1", "100.00"]
