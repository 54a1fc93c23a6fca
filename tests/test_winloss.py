"""Insights > Win/loss: upsells won and lost in a period, by CSM, play and month, with the reasons they were
lost. The math (opportunities.voice_stats) on constructed records, then the page on the database."""

import csv
import datetime as dt
import io
from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from opportunities.models import LostReason, Outcome, Stage
from opportunities.voice_stats import (
    Decision,
    lost_reason_shares,
    months_between,
    win_loss_by_csm,
    win_loss_by_month,
    win_loss_by_play,
    win_loss_total,
)
from playbooks.models import Play
from tests.caches import empty_caches
from tests.factories import AccountFactory, OpportunityFactory, UserFactory, plan

ZONE = dt.UTC


def decided(id, outcome, day, owner=(1, "Casey Moreno"), play=(None, ""), reason="", mrr=None):
    return Decision(
        id=id,
        outcome=outcome,
        closed_at=dt.datetime.combine(day, dt.time(12), tzinfo=ZONE),
        owner_id=owner[0],
        owner_name=owner[1],
        play_id=play[0],
        play_name=play[1],
        lost_reason=reason,
        mrr_delta=mrr,
    )


CASEY, OLIVE = (1, "Casey Moreno"), (2, "Olive Park")
SEATS, STORAGE = (10, "Seats upgrade"), (11, "Storage upgrade")
RECORDS = [
    decided(1, "won", dt.date(2026, 1, 5), CASEY, SEATS, mrr=Decimal("70.00")),
    decided(2, "won", dt.date(2026, 1, 20), CASEY, STORAGE, mrr=Decimal("200.00")),
    decided(3, "lost", dt.date(2026, 1, 25), CASEY, SEATS, reason="Too expensive"),
    decided(4, "lost", dt.date(2026, 3, 2), OLIVE, SEATS, reason="Too expensive"),
    decided(5, "lost", dt.date(2026, 3, 9), OLIVE, reason="No budget"),
    decided(6, "won", dt.date(2026, 3, 30), OLIVE, mrr=Decimal("70.00")),
    decided(7, "lost", dt.date(2026, 3, 31), (None, ""), STORAGE),
]


def test_the_win_rate_is_won_over_won_plus_lost_with_the_expansion_won():
    total = win_loss_total(RECORDS)

    assert (total.won, total.lost, total.win_rate, total.expansion_mrr) == (3, 4, Decimal("42.9"), Decimal("340.00"))
    assert total.reasons == [("Too expensive", 2), ("No budget", 1), ("No reason", 1)]


def test_by_csm_each_owner_has_their_wins_losses_rate_and_reasons_most_decided_first():
    rows = [(r.label, r.won, r.lost, r.win_rate, r.expansion_mrr, r.reasons) for r in win_loss_by_csm(RECORDS)]

    assert rows == [
        ("Casey Moreno", 2, 1, Decimal("66.7"), Decimal("270.00"), [("Too expensive", 1)]),
        ("Olive Park", 1, 2, Decimal("33.3"), Decimal("70.00"), [("No budget", 1), ("Too expensive", 1)]),
        ("Unassigned", 0, 1, Decimal("0.0"), Decimal("0"), [("No reason", 1)]),
    ]


def test_by_play_an_opportunity_without_a_play_counts_under_no_play():
    rows = [(r.label, r.won, r.lost, r.win_rate) for r in win_loss_by_play(RECORDS)]

    assert rows == [
        ("Seats upgrade", 1, 2, Decimal("33.3")),
        ("No play", 1, 1, Decimal("50.0")),
        ("Storage upgrade", 1, 1, Decimal("50.0")),
    ]


def test_by_month_every_month_of_the_period_shows_even_when_nothing_closed():
    rows = win_loss_by_month(RECORDS, start=dt.date(2026, 1, 1), end=dt.date(2026, 4, 10))

    assert [(r.label, r.won, r.lost, r.win_rate) for r in rows] == [
        ("Jan 2026", 2, 1, Decimal("66.7")),
        ("Feb 2026", 0, 0, None),
        ("Mar 2026", 1, 3, Decimal("25.0")),
        ("Apr 2026", 0, 0, None),
    ]


def test_lost_reason_shares_add_the_losses_without_a_reason():
    assert [(s.label, s.count, s.share) for s in lost_reason_shares(RECORDS)] == [
        ("Too expensive", 2, Decimal("50.0")),
        ("No budget", 1, Decimal("25.0")),
        ("No reason", 1, Decimal("25.0")),
    ]


def test_months_between_spans_a_year_end():
    assert months_between(dt.date(2025, 11, 15), dt.date(2026, 2, 1)) == [
        dt.date(2025, 11, 1),
        dt.date(2025, 12, 1),
        dt.date(2026, 1, 1),
        dt.date(2026, 2, 1),
    ]


# --- The page ---------------------------------------------------------------------------------------------


@pytest.fixture
def seats_play(db):
    return Play.objects.create(name="Seats upgrade", target_plan=plan("Pro"))


def close(account, outcome, *, days_ago=3, play=None, reason=None, owner=None, delta=None):
    """A closed opportunity of `account` (a loss needs a reason, a snooze its date: the database checks)."""
    at = timezone.now() - dt.timedelta(days=days_ago)
    if outcome == Outcome.LOST and reason is None:
        reason = LostReason.objects.filter(active=True).order_by("display_order").last()
    return OpportunityFactory(
        snoozed_until=timezone.localdate() + dt.timedelta(days=30) if outcome == Outcome.SNOOZED else None,
        account=account,
        owner=owner or account.owner,
        play=play,
        stage=Stage.CLOSE,
        outcome=outcome,
        closed_at=at,
        identified_at=at - dt.timedelta(days=20),
        stage_entered_at=at,
        lost_reason=reason,
        actual_mrr_delta=delta,
    )


def world(csm, other_csm, seats_play, n: int):
    """n accounts of Casey and Olive, each with a win, a loss or a snooze closed in the period."""
    reason = LostReason.objects.filter(active=True).order_by("display_order").first()
    for i in range(n):
        owner = csm if i % 2 == 0 else other_csm
        account = AccountFactory(owner=owner)
        if i % 3 == 0:
            close(account, Outcome.WON, play=seats_play, delta=Decimal("70.00"))
        elif i % 3 == 1:
            close(account, Outcome.LOST, reason=reason)
        else:
            close(account, Outcome.SNOOZED)
    return reason


def test_the_page_shows_the_win_rate_and_the_tables_for_the_period(manager_client, csm, other_csm, seats_play):
    reason = LostReason.objects.filter(active=True).order_by("display_order").first()
    casey_account, olive_account = AccountFactory(owner=csm), AccountFactory(owner=other_csm)
    close(casey_account, Outcome.WON, play=seats_play, delta=Decimal("70.00"))
    close(casey_account, Outcome.LOST, play=seats_play, reason=reason)
    close(olive_account, Outcome.LOST, reason=reason)
    close(olive_account, Outcome.WON, days_ago=400)  # before the period
    close(olive_account, Outcome.SNOOZED)  # not a decision

    response = manager_client.get(reverse("insights:winloss"))

    page = response.content.decode()
    assert response.status_code == 200
    assert 'data-figure="win-rate">33.3%<' in page
    assert 'data-figure="won">1<' in page and 'data-figure="lost">2<' in page
    casey_row = page.split('data-csm="Casey Moreno"')[1].split("</tr>")[0]
    assert "data-won>1<" in casey_row and "data-lost>1<" in casey_row and "50.0%" in casey_row
    play_row = page.split('data-play="Seats upgrade"')[1].split("</tr>")[0]
    assert "data-won>1<" in play_row and "data-lost>1<" in play_row and reason.label in play_row
    assert 'id="voice-charts"' in page


def test_a_filter_by_csm_keeps_only_their_opportunities(manager_client, csm, other_csm, seats_play):
    close(AccountFactory(owner=csm), Outcome.WON, delta=Decimal("70.00"))
    close(AccountFactory(owner=other_csm), Outcome.LOST)

    page = manager_client.get(reverse("insights:winloss"), {"csm": csm.pk}).content.decode()

    assert 'data-figure="win-rate">100.0%<' in page
    assert 'data-csm="Olive Park"' not in page


def test_the_by_month_table_downloads_as_csv_for_the_same_filters(manager_client, csm, seats_play):
    close(AccountFactory(owner=csm), Outcome.WON, days_ago=0, delta=Decimal("70.00"))

    response = manager_client.get(reverse("insights:winloss"), {"period": "this_month", "export": "by_month"})

    assert response.status_code == 200 and response["Content-Type"].startswith("text/csv")
    rows = list(csv.reader(io.StringIO(b"".join(response.streaming_content).decode("utf-8-sig"))))
    assert rows[0] == ["month", "won", "lost", "win_rate_percent", "expansion_mrr", "top_lost_reasons"]
    assert rows[1] == [timezone.localdate().strftime("%Y-%m"), "1", "0", "100.0", "70.00", ""]


def test_an_unknown_export_is_a_404(manager_client):
    assert manager_client.get(reverse("insights:winloss"), {"export": "everything"}).status_code == 404


def test_bad_filters_answer_422_with_the_error(manager_client):
    response = manager_client.get(reverse("insights:winloss"), {"start": "2026-05-01", "end": "2026-01-01"})

    assert response.status_code == 422
    assert "These filters cannot be shown." in response.content.decode()


def test_a_csm_is_refused(csm_client):
    assert csm_client.get(reverse("insights:winloss")).status_code == 403


def test_the_page_takes_the_same_queries_for_5_or_50_accounts(manager_client, csm, other_csm, seats_play):
    world(csm, other_csm, seats_play, 5)
    empty_caches()  # each count from an empty cache: the roles and other reference data read each time
    with CaptureQueriesContext(connection) as few:
        manager_client.get(reverse("insights:winloss"))
    world(csm, other_csm, seats_play, 45)
    UserFactory(username="third", role="CSM")

    empty_caches()
    with CaptureQueriesContext(connection) as many:
        page = manager_client.get(reverse("insights:winloss")).content.decode()

    assert len(many.captured_queries) == len(few.captured_queries)
    assert 'data-figure="won">17<' in page and 'data-figure="lost">17<' in page
