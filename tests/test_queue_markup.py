"""The queue row drawn in Python (opportunities/queue_markup.py), read back as a browser would read it."""

import datetime as dt
from html.parser import HTMLParser

import pytest
from django.urls import reverse
from django.utils import timezone

from opportunities.models import Outcome, Stage
from opportunities.queue_markup import queue_row_html
from tests.factories import AccountFactory, OpportunityFactory

pytestmark = pytest.mark.django_db

HTMX = {"HX-Request": "true"}


class Tree(HTMLParser):
    """Start tags with their attributes, and the text of each table cell."""

    def __init__(self, html: str):
        super().__init__()
        self.tags: list[tuple[str, dict]] = []
        self.cells: list[str] = []
        self._cell: list[str] | None = None
        self.feed(html)

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))
        if tag in ("td", "th"):
            self._cell = []

    def handle_endtag(self, tag):
        if tag in ("td", "th") and self._cell is not None:
            self.cells.append(" ".join("".join(self._cell).split()))
            self._cell = None

    def handle_data(self, data):
        if self._cell is not None:
            self._cell.append(data)

    def inputs(self) -> dict[str, str]:
        return {attrs["name"]: attrs.get("value") for tag, attrs in self.tags if tag == "input"}

    def find(self, tag: str, **wanted) -> list[dict]:
        return [a for t, a in self.tags if t == tag and all(a.get(k) == v for k, v in wanted.items())]


def row(**changes) -> dict:
    base = {
        "dom_id": "queue-row-7",
        "score": "82",
        "account_name": "Acme",
        "account_url": "/accounts/3/#opportunity-7",
        "segment": "Fintech · EMEA",
        "status": "active",
        "status_label": "",
        "plan_name": "Basic",
        "plan_class": "badge--tier1",
        "mrr": "$290",
        "why_now": "Seats 95%, full in ~6 days",
        "badge_class": "badge--stage-qualify",
        "badge_label": "Qualify",
        "badge_title": "",
        "days": "4 d",
        "next_step_iso": "",
        "next_step": "",
        "overdue": False,
        "owner_name": "Casey Moreno",
        "shared": False,
        "version": "3",
        "open": True,
        "back_from_snooze": False,
        "in_queue": True,
        "next_stage": "present",
        "next_stage_label": "Present",
        "advance_url": "/opportunities/7/advance/",
        "actions_url": "/opportunities/7/actions/",
        "reopen_url": "/opportunities/7/reopen/",
        "tasks_due": "",
        "tasks_url": "/tasks/?account=3",
    }
    return {**base, **changes}


def test_an_open_rows_cells_read_in_the_columns_order_and_its_form_moves_it_on():
    tree = Tree(queue_row_html(row(), csrf_token="tok", show_owner=False))

    assert tree.cells == [
        "82",
        "AcmeFintech · EMEA",
        "Basic",
        "$290",
        "Seats 95%, full in ~6 days",
        "Qualify",
        "4 d",
        "—",
        "→ Present More",
    ]
    [form] = tree.find("form")
    assert form["action"] == form["hx-post"] == "/opportunities/7/advance/"
    assert tree.inputs() == {"csrfmiddlewaretoken": "tok", "version": "3", "to": "present", "from": "queue"}
    assert tree.find("a", href="/opportunities/7/actions/", **{"aria-label": "More actions for Acme"})
    assert tree.find("tr", id="queue-row-7", **{"class": "queue-row"})
    assert tree.find("th", scope="row")


def test_a_row_back_from_snooze_offers_reopen_and_a_closed_one_nothing():
    back = Tree(
        queue_row_html(row(open=False, back_from_snooze=True, next_stage=""), csrf_token="tok", show_owner=False)
    )
    closed = Tree(queue_row_html(row(open=False, in_queue=False, next_stage=""), csrf_token="tok", show_owner=False))

    assert [f["action"] for f in back.find("form")] == ["/opportunities/7/reopen/"]
    assert back.inputs() == {"csrfmiddlewaretoken": "tok", "version": "3", "from": "queue"}
    assert closed.find("form") == [] and closed.find("tr", **{"class": "queue-row queue-row--done"})


def test_owner_overdue_tasks_and_collaboration_show_when_they_apply():
    tree = Tree(
        queue_row_html(
            row(next_step_iso="2026-11-01", next_step="Nov 1", overdue=True, tasks_due="2 tasks due", shared=True),
            csrf_token="tok",
            show_owner=True,
        )
    )

    assert tree.cells[-2] == "Casey Moreno"
    assert tree.find("time", datetime="2026-11-01", **{"class": "text-danger", "title": "Overdue"})
    assert tree.find("a", href="/tasks/?account=3", **{"class": "badge badge--tasks-due"})
    assert "Collaborating" in tree.cells[1] and "2 tasks due" in tree.cells[1]


def test_a_trial_or_churned_account_says_so_beside_its_segment():
    trial = Tree(queue_row_html(row(status="trial", status_label="Trial"), csrf_token="tok", show_owner=False))
    bare = Tree(
        queue_row_html(row(segment="", status="churned", status_label="Churned"), csrf_token="t", show_owner=False)
    )

    assert trial.cells[1] == "AcmeFintech · EMEA · Trial"
    assert trial.find("span", **{"class": "status-text status-text--trial"})
    assert bare.cells[1] == "AcmeChurned"


def test_every_value_is_escaped_in_text_and_in_attributes():
    payload = "\"><script>alert(1)</script>'"
    html = queue_row_html(
        row(account_name=payload, why_now=payload, badge_title=payload, version=payload, status_label=payload),
        csrf_token=payload,
        show_owner=True,
    )
    tree = Tree(html)

    assert "<script>" not in html
    assert tree.find("a", **{"aria-label": f"More actions for {payload}"})
    assert tree.inputs()["csrfmiddlewaretoken"] == payload and tree.inputs()["version"] == payload
    assert tree.find("span", title=payload)


def test_a_quick_actions_answer_is_the_row_the_queue_draws(csm_client, csm):
    opportunity = OpportunityFactory(
        account=AccountFactory(owner=csm), stage=Stage.IDENTIFY, next_step_on=timezone.localdate() + dt.timedelta(2)
    )
    page = csm_client.get(reverse("opportunities:queue")).content.decode()
    drawn = Tree(page.split(f'<tr id="queue-row-{opportunity.pk}"', 1)[1].split("</tr>", 1)[0])

    response = csm_client.post(
        reverse("opportunities:advance", args=[opportunity.pk]),
        {"version": opportunity.version, "to": "qualify", "from": "queue"},
        headers=HTMX,
    )

    answered = Tree(response.content.decode().split("</tr>", 1)[0])
    assert answered.cells[0] == drawn.cells[0] and answered.cells[1] == drawn.cells[1]
    assert drawn.cells[5] == "Identify" and answered.cells[5] == "Qualify"
    opportunity.refresh_from_db()
    assert (opportunity.stage, opportunity.outcome) == (Stage.QUALIFY, Outcome.OPEN)
