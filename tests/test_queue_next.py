"""Next in the queue: from an account's page straight to the account of the opportunity that follows it in the
queue, highest score first, without going back to the list."""

import datetime as dt

from django.urls import reverse
from django.utils import timezone

from opportunities import selectors
from opportunities.models import LostReason, Outcome
from tests.factories import AccountFactory, OpportunityFactory

NEXT_URL = reverse("opportunities:queue_next")


def opportunity(owner, name: str, score: int, **fields):
    return OpportunityFactory(account=AccountFactory(owner=owner, name=name), score=score, **fields)


def next_account(client, after) -> str:
    response = client.get(NEXT_URL, {"after": after.pk})
    assert response.status_code == 302
    return response["Location"]


def test_it_goes_to_the_account_with_the_next_lower_score(csm_client, csm):
    top = opportunity(csm, "Top", 90)
    middle = opportunity(csm, "Middle", 70)
    opportunity(csm, "Bottom", 40)

    assert next_account(csm_client, top) == f"{middle.account.get_absolute_url()}"


def test_among_equal_scores_it_follows_the_queues_order_newest_first(csm, csm_client):
    older = opportunity(csm, "Older", 80)
    newer = opportunity(csm, "Newer", 80)
    lower = opportunity(csm, "Lower", 60)

    # The queue lists Newer, Older, Lower: equal scores by descending primary key.
    assert next_account(csm_client, newer) == f"{older.account.get_absolute_url()}"
    assert next_account(csm_client, older) == f"{lower.account.get_absolute_url()}"


def test_it_follows_an_opportunity_just_closed_as_it_stood_in_the_queue(csm_client, csm):
    won = opportunity(csm, "Just won", 90, outcome=Outcome.WON, closed_at=timezone.now())
    following = opportunity(csm, "Following", 85)

    assert next_account(csm_client, won) == f"{following.account.get_absolute_url()}"


def test_it_skips_what_is_not_in_the_csms_queue(csm_client, csm, other_csm):
    top = opportunity(csm, "Top", 90)
    opportunity(other_csm, "Olive's", 85)
    opportunity(csm, "Lost", 84, outcome=Outcome.LOST, closed_at=timezone.now(), lost_reason=LostReason.objects.first())
    snoozed = {"outcome": Outcome.SNOOZED, "closed_at": timezone.now()}
    opportunity(csm, "Snoozed a week", 83, snoozed_until=timezone.localdate() + dt.timedelta(days=7), **snoozed)
    back = opportunity(csm, "Back from a snooze", 82, snoozed_until=timezone.localdate(), **snoozed)

    assert next_account(csm_client, top) == f"{back.account.get_absolute_url()}"


def test_after_the_last_one_it_says_so_on_the_queue(csm_client, csm):
    last = opportunity(csm, "Last", 10)

    response = csm_client.get(NEXT_URL, {"after": last.pk}, follow=True)

    assert response.redirect_chain == [(reverse("opportunities:queue"), 302)]
    assert "That was the last opportunity in your queue." in response.content.decode()


def test_another_csms_opportunity_cannot_serve_as_the_cursor(csm_client, other_csm):
    theirs = opportunity(other_csm, "Olive's", 90)

    assert csm_client.get(NEXT_URL, {"after": theirs.pk}).status_code == 404


def test_a_manager_goes_through_everyones_queue(manager_client, csm, other_csm):
    mine = opportunity(csm, "Jordan's", 90)
    theirs = opportunity(other_csm, "Olive's", 80)

    assert next_account(manager_client, mine) == f"{theirs.account.get_absolute_url()}"


def test_a_cursor_that_is_not_a_number_is_refused_by_name(csm_client):
    for after in ("", "seven", "3.5"):
        response = csm_client.get(NEXT_URL, {"after": after})

        assert response.status_code == 400
        assert response.content.decode().startswith("after:")


def test_it_takes_one_query_whatever_the_queue_holds(csm, django_assert_num_queries):
    top = opportunity(csm, "Top", 90)
    below = [opportunity(csm, f"Account {index}", 50 + index) for index in range(30)]
    today = timezone.localdate()
    selectors.next_in_queue(user=csm, after=top, today=today)  # reads the roles' reference data once

    with django_assert_num_queries(1):
        following = selectors.next_in_queue(user=csm, after=top, today=today)

    assert following.account_id == below[-1].account_id  # scored 79, the highest under 90


def test_the_account_page_links_to_it(csm_client, csm):
    current = opportunity(csm, "Current", 90)

    html = csm_client.get(current.account.get_absolute_url()).content.decode()

    assert f'href="{NEXT_URL}?after={current.pk}"' in html
