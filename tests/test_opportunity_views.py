"""Working an opportunity on the account page: each step an HTMX form, checked, versioned and private."""

import datetime as dt
from decimal import Decimal

import pytest
from django.core import mail
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from accounts.models import Account, MrrMovement
from opportunities import selectors
from opportunities.models import AccountScore, LostReason, Note, Opportunity, OpportunityEvent, Outcome, Stage
from tests.factories import OpportunityFactory, plan

HTMX = {"HX-Request": "true"}


@pytest.fixture
def opportunity(account):
    return OpportunityFactory(account=account, reasons=[{"text": "Seats 95%", "points": 40, "rule": "Seats"}])


def url(name: str, opportunity: Opportunity) -> str:
    return reverse(f"opportunities:{name}", args=[opportunity.pk])


def at_stage(opportunity: Opportunity, stage: Stage, **fields) -> Opportunity:
    Opportunity.objects.filter(pk=opportunity.pk).update(stage=stage, **fields)
    opportunity.refresh_from_db()
    return opportunity


QUALIFIED = {
    "version": 1,
    "need_confirmed": "yes",
    "budget_confirmed": "yes",
    "business_goals": "Hire 10 analysts",
    "blockers": "",
    "decision_maker": "CFO",
    "timeline": "Q1",
    "action": "move_on",
}


def test_it_qualifies_and_moves_on_answering_with_the_fresh_panel(csm_client, opportunity):
    at_stage(opportunity, Stage.QUALIFY)
    response = csm_client.post(url("qualify", opportunity), QUALIFIED, headers=HTMX)

    assert response.status_code == 200
    html = response.content.decode()
    assert html.lstrip().startswith('<section id="work"')
    assert 'id="present-form"' in html
    assert 'id="timeline" class="section card" aria-labelledby="timeline-heading" hx-swap-oob="true"' in html
    opportunity.refresh_from_db()
    assert opportunity.stage == Stage.PRESENT
    assert opportunity.qualification["decision_maker"] == "CFO"


def test_it_keeps_an_opportunity_in_qualify_until_need_and_budget_are_answered(csm_client, opportunity):
    at_stage(opportunity, Stage.QUALIFY)
    response = csm_client.post(url("qualify", opportunity), {**QUALIFIED, "budget_confirmed": ""}, headers=HTMX)

    assert response.status_code == 422
    assert "Answer this before moving on to Present." in response.content.decode()
    assert Opportunity.objects.get().stage == Stage.QUALIFY


def test_it_answers_a_stale_form_with_409_and_a_fresh_panel(csm_client, opportunity):
    at_stage(opportunity, Stage.QUALIFY, version=3)
    response = csm_client.post(url("qualify", opportunity), QUALIFIED, headers=HTMX)

    assert response.status_code == 409
    html = response.content.decode()
    assert 'name="version" value="3"' in html
    assert "Someone changed this opportunity meanwhile" in html
    assert Opportunity.objects.get().qualification == {}


def test_it_hides_another_csms_opportunity_even_from_a_forged_htmx_post(client, other_csm, opportunity):
    client.force_login(other_csm)
    response = client.post(url("advance", opportunity), {"version": 1, "to": "qualify"}, headers=HTMX)

    assert response.status_code == 404
    assert client.get(opportunity.account.get_absolute_url()).status_code == 404
    assert Opportunity.objects.get().stage == Stage.IDENTIFY
    assert not OpportunityEvent.objects.exists()


def test_it_lets_a_manager_work_any_opportunity(manager_client, opportunity):
    response = manager_client.post(url("advance", opportunity), {"version": 1, "to": "qualify"}, headers=HTMX)
    assert response.status_code == 200
    assert Opportunity.objects.get().stage == Stage.QUALIFY


def test_it_needs_the_csrf_token_on_every_post(csm, opportunity):
    client = Client(enforce_csrf_checks=True)
    client.force_login(csm)
    response = client.post(url("advance", opportunity), {"version": 1, "to": "qualify"}, headers=HTMX)
    assert response.status_code == 403
    assert Opportunity.objects.get().stage == Stage.IDENTIFY


def test_it_redirects_a_post_without_javascript_back_to_the_account(csm_client, opportunity):
    response = csm_client.post(url("advance", opportunity), {"version": 1, "to": "qualify"})
    assert response.status_code == 302
    assert response["Location"].startswith(opportunity.account.get_absolute_url())


def test_it_presents_with_the_roi_computed_server_side_and_a_trial(csm_client, opportunity):
    at_stage(opportunity, Stage.PRESENT)
    trial_end = timezone.localdate() + dt.timedelta(days=14)
    response = csm_client.post(
        url("present", opportunity),
        {
            "version": 1,
            "target_plan": plan("Pro").pk,
            "value_proposition": "Room for the analysts",
            "hours_saved_per_month": "10",
            "hourly_cost": "50",
            "avoided_per_month": "100",
            "trial": "on",
            "trial_ends_on": trial_end.isoformat(),
            "action": "save",
        },
        headers=HTMX,
    )
    assert response.status_code == 200
    opportunity.refresh_from_db()
    assert opportunity.roi_note.startswith("10 hours a month saved")
    assert opportunity.trial_ends_on == trial_end
    html = response.content.decode()
    assert 'id="roi-note"' in html and 'id="email-form"' in html


def test_it_previews_the_email_without_sending_then_sends_it(
    csm_client, opportunity, django_capture_on_commit_callbacks
):
    at_stage(opportunity, Stage.PRESENT, target_plan=plan("Pro"), roi_note="Worth it.")
    data = {"version": 1, "to": "buyer@example.com", "subject": "Pro for {{ account_name }}", "body": "Hi"}
    preview = csm_client.post(url("email", opportunity), {**data, "action": "preview"}, headers=HTMX)
    assert preview.status_code == 200
    assert mail.outbox == []

    with django_capture_on_commit_callbacks(execute=True):
        csm_client.post(url("email", opportunity), {**data, "action": "send"}, headers=HTMX)
    assert [message.to for message in mail.outbox] == [["buyer@example.com"]]
    assert OpportunityEvent.objects.get().kind == OpportunityEvent.Kind.EMAIL_SENT


def test_it_drafts_the_email_from_the_default_template_with_merge_fields(csm_client, opportunity):
    at_stage(opportunity, Stage.PRESENT, target_plan=plan("Pro"), roi_note="Saves 500 USD a month.")
    html = csm_client.get(opportunity.account.get_absolute_url()).content.decode()
    assert "Acme Analytics: room to grow on Pro" in html
    assert "Saves 500 USD a month." in html


def test_it_closes_as_won_changing_the_plan_and_mrr(csm_client, opportunity, account):
    at_stage(opportunity, Stage.CLOSE, target_plan=plan("Pro"))
    response = csm_client.post(
        url("close", opportunity),
        {"version": 1, "outcome": "won", "plan": plan("Pro").pk, "mrr_delta": "70"},
        headers=HTMX,
    )
    assert response.status_code == 200
    account = Account.objects.get(pk=account.pk)
    assert (account.plan, account.mrr) == (plan("Pro"), Decimal("99.00"))
    assert MrrMovement.objects.get().source == MrrMovement.Source.OPPORTUNITY


def test_it_closes_as_lost_with_a_reason_from_the_list(csm_client, opportunity):
    reason = LostReason.objects.filter(active=True).first()
    response = csm_client.post(
        url("close", opportunity),
        {"version": 1, "outcome": "lost", "lost_reason": reason.pk, "lost_detail": "Not this year"},
        headers=HTMX,
    )
    assert response.status_code == 200
    opportunity.refresh_from_db()
    assert (opportunity.outcome, opportunity.lost_reason, opportunity.lost_detail) == (
        Outcome.LOST,
        reason,
        "Not this year",
    )


def test_it_refuses_a_lost_close_without_a_reason(csm_client, opportunity):
    response = csm_client.post(url("close", opportunity), {"version": 1, "outcome": "lost"}, headers=HTMX)
    assert response.status_code == 422
    assert Opportunity.objects.get().outcome == Outcome.OPEN


def test_it_opens_an_opportunity_by_hand(csm_client, account):
    response = csm_client.post(reverse("opportunities:open", args=[account.pk]), headers=HTMX)
    assert response.status_code == 200
    assert Opportunity.objects.get().source == Opportunity.Source.MANUAL


def test_it_escapes_notes_in_the_timeline(csm_client, account, opportunity):
    response = csm_client.post(
        reverse("opportunities:note_add", args=[account.pk]),
        {"body": "<script>alert(1)</script>", "opportunity": opportunity.pk},
        headers=HTMX,
    )
    html = response.content.decode()
    assert "<script>alert(1)</script>" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert Note.objects.get().opportunity == opportunity


def test_it_explains_the_score_and_compares_the_plans(csm_client, account):
    AccountScore.objects.create(
        account=account,
        as_of=timezone.localdate(),
        score=55,
        reasons=[{"text": "Storage 92%, full in ~12 days", "points": 35, "rule": "Storage near limit"}],
        target_plan=plan("Pro"),
        computed_at=timezone.now(),
    )
    html = csm_client.get(account.get_absolute_url()).content.decode()
    assert "Storage 92%, full in ~12 days" in html and "+35" in html
    assert "Plan comparison" in html and "(suggested)" in html


def _page_queries(client, url: str, **headers) -> int:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as queries:
        assert client.get(url, headers=headers).status_code == 200
    return len(queries)


def test_it_renders_the_account_page_and_its_timeline_with_as_many_queries_for_50_entries_as_for_5(
    csm_client, csm, account, opportunity
):
    from opportunities import services

    def add(count):
        for _ in range(count):
            services.note_add(account=account, opportunity=opportunity, author=csm, body="Called", at=timezone.now())

    timeline = reverse("opportunities:timeline", args=[account.pk])
    add(5)
    _page_queries(csm_client, account.get_absolute_url())  # reads the reference data into the cache
    few = [_page_queries(csm_client, account.get_absolute_url()), _page_queries(csm_client, timeline, **HTMX)]
    add(45)
    many = [_page_queries(csm_client, account.get_absolute_url()), _page_queries(csm_client, timeline, **HTMX)]
    assert many == few


def test_the_account_page_loads_its_timeline_after_itself_and_links_to_it_without_javascript(
    csm_client, csm, account, opportunity
):
    from opportunities import services

    services.note_add(account=account, opportunity=opportunity, author=csm, body="Asked about SSO", at=timezone.now())
    timeline = reverse("opportunities:timeline", args=[account.pk])

    page = csm_client.get(account.get_absolute_url()).content.decode()
    entries = csm_client.get(timeline, headers=HTMX).content.decode()

    assert "Asked about SSO" not in page
    assert f'hx-get="{timeline}" hx-trigger="load" hx-swap="outerHTML"' in page
    assert f'<a href="{timeline}">Open the timeline</a>' in page
    assert entries.lstrip().startswith('<div id="timeline-entries">') and "Asked about SSO" in entries
    assert "<html" not in entries and 'hx-trigger="load"' not in entries


def test_the_timeline_without_javascript_is_a_page_with_the_note_form(csm_client, csm, account, opportunity):
    from opportunities import services

    services.note_add(account=account, opportunity=opportunity, author=csm, body="Asked about SSO", at=timezone.now())

    html = csm_client.get(reverse("opportunities:timeline", args=[account.pk])).content.decode()

    assert "<html" in html and f"<title>Timeline · {account.name}" in html
    assert '<a href="/accounts/" aria-current="page">Accounts</a>' in html
    assert "Asked about SSO" in html
    assert f'action="{reverse("opportunities:note_add", args=[account.pk])}"' in html
    assert f'<input type="hidden" name="opportunity" value="{opportunity.pk}">' in html


def test_the_account_pages_timeline_shows_the_latest_50_and_links_to_the_rest(csm_client, csm, account):
    from opportunities import services

    start = timezone.now() - dt.timedelta(days=1)
    for minute in range(51):
        at = start + dt.timedelta(minutes=minute)
        services.note_add(account=account, opportunity=None, author=csm, body=f"Note {minute}", at=at)
    timeline = reverse("opportunities:timeline", args=[account.pk])

    latest = csm_client.get(timeline, headers=HTMX)
    whole = csm_client.get(timeline)

    assert len(latest.context["timeline"]) == 50 and latest.context["timeline"][0].body == "Note 50"
    assert "Note 0<" not in latest.content.decode()
    assert f'<a href="{timeline}">The whole timeline</a>' in latest.content.decode()
    assert len(whole.context["timeline"]) == 51 and "Note 0<" in whole.content.decode()


def test_another_csm_cannot_read_the_timeline(client, other_csm, account, opportunity):
    client.force_login(other_csm)

    response = client.get(reverse("opportunities:timeline", args=[account.pk]), headers=HTMX)

    assert response.status_code == 404


def test_the_timeline_shows_one_kind_of_entry_at_a_time(csm_client, csm, account, opportunity):
    from accounts.work_services import task_create
    from opportunities import services

    services.note_add(account=account, opportunity=None, author=csm, body="Asked about SSO", at=timezone.now())
    task_create(
        account=account, assignee=csm, title="Call the CFO", due_on=timezone.localdate(), by=csm, at=timezone.now()
    )
    timeline = reverse("opportunities:timeline", args=[account.pk])

    notes = csm_client.get(timeline, {"show": "notes"}, headers=HTMX)
    tasks = csm_client.get(timeline, {"show": "tasks"})
    everything = csm_client.get(timeline, {"show": "nonsense"}, headers=HTMX)

    assert [e.kind for e in notes.context["timeline"]] == ["note"]
    assert {e.kind for e in tasks.context["timeline"]} == {"task_created"}
    assert {"note", "task_created"} <= {e.kind for e in everything.context["timeline"]}
    html = notes.content.decode()
    assert f'<a href="{timeline}?show=notes" hx-get="{timeline}?show=notes"' in html
    assert 'aria-current="true">Notes</a>' in html and 'aria-current="true">Everything</a>' not in html
    assert 'aria-current="true">Everything</a>' in everything.content.decode()


def test_a_filtered_timeline_reads_only_its_own_sources(csm_client, account):
    timeline = reverse("opportunities:timeline", args=[account.pk])
    csm_client.get(timeline, headers=HTMX)  # the reference data, cached

    with CaptureQueriesContext(connection) as everything:
        csm_client.get(timeline, headers=HTMX)
    with CaptureQueriesContext(connection) as notes:
        csm_client.get(timeline, {"show": "notes"}, headers=HTMX)

    # Eight sources, seven of them one query each (the MRR movements come with the account); notes read one.
    assert len(selectors.TIMELINE_SOURCES) == 8 and len(everything) - len(notes) == 6
