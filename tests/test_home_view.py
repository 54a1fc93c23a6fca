"""The home page: a CSM's book, a manager's overview and an admin's plan catalogue."""

from decimal import Decimal

import pytest
from django.urls import reverse
from django.utils import timezone

from accounts.models import AccountIndicator
from opportunities.models import Stage
from tests.factories import AccountFactory, OpportunityFactory, UserFactory, metric

HOME_URL = reverse("home")


def near_limit(account, key="storage_gb", *, latest=9.5, limit=10):
    AccountIndicator.objects.create(
        account=account,
        metric=metric(key),
        as_of=timezone.localdate(),
        latest=latest,
        limit=limit,
        utilization=latest / limit,
        refreshed_at=timezone.now(),
    )


def test_it_sends_an_anonymous_visitor_to_the_login_page(client, db):
    response = client.get(HOME_URL)

    assert response.status_code == 302
    assert response["Location"].startswith(reverse("login"))


def test_it_shows_a_csm_their_book(csm_client, csm, other_csm):
    full = AccountFactory(owner=csm, name="Acme Analytics", mrr=Decimal("1000.00"))
    near_limit(full)
    AccountFactory(owner=csm, name="Calm Co", mrr=Decimal("234.00"))
    AccountFactory(owner=other_csm, name="Not Casey's", mrr=Decimal("5000.00"))
    OpportunityFactory(account=full, score=88, reasons=[{"text": "Storage at 95% of the Basic limit"}])

    response = csm_client.get(HOME_URL)

    html = response.content.decode()
    assert response.status_code == 200
    assert "Top open opportunities" in html
    assert '<th scope="col">CSM</th>' not in html, "her own opportunities need no CSM column"
    assert "$1,234.00" in html
    assert "Storage at 95% of the Basic limit" in html
    assert "Storage 95%" in html
    assert "Not Casey&#x27;s" not in html
    assert response.context["book"]["accounts"] == 2
    assert response.context["near_limit_count"] == 1


def test_it_shows_the_top_five_opportunities_by_score(csm_client, csm):
    for score in (10, 90, 50, 70, 30, 80):
        OpportunityFactory(account=AccountFactory(owner=csm), score=score)

    response = csm_client.get(HOME_URL)

    assert [o.score for o in response.context["opportunities"]] == [90, 80, 70, 50, 30]


def test_it_shows_a_new_csm_friendly_empty_states(csm_client):
    html = csm_client.get(HOME_URL).content.decode()

    assert "No open opportunities" in html
    assert "Nobody is near a limit" in html


def test_it_shows_a_manager_totals_stages_and_books(manager_client, csm, other_csm):
    AccountFactory(owner=csm, mrr=Decimal("100.00"))
    AccountFactory(owner=other_csm, mrr=Decimal("1200.00"))
    OpportunityFactory(account=AccountFactory(owner=csm), stage=Stage.QUALIFY)
    OpportunityFactory(account=AccountFactory(owner=csm), stage=Stage.QUALIFY)
    OpportunityFactory(account=AccountFactory(owner=other_csm), stage=Stage.PRESENT)

    response = manager_client.get(HOME_URL)

    html = response.content.decode()
    assert "Open pipeline by stage" in html
    assert "Books per CSM" in html
    assert "Olive Park" in html
    assert "Casey Moreno" in html
    stages = {row["stage"]: row["count"] for row in response.context["stages"]}
    assert stages == {Stage.IDENTIFY: 0, Stage.QUALIFY: 2, Stage.PRESENT: 1, Stage.CLOSE: 0}
    assert response.context["totals"]["accounts"] == 5


def test_it_shows_an_admin_the_plan_catalogue(client, admin_user):
    client.force_login(admin_user)

    html = client.get(HOME_URL).content.decode()

    assert "Plan catalogue" in html
    for text in (
        "Basic",
        "Pro",
        "Enterprise",
        "$29.00",
        "$2,990.00",
        "Unlimited",
        "1,024",
        "Priority",
        'href="/admin/"',
    ):
        assert text in html


def test_it_tells_a_user_without_a_role_to_ask_an_admin(client, db):
    client.force_login(UserFactory(username="nobody"))

    assert "No role assigned" in client.get(HOME_URL).content.decode()


@pytest.mark.parametrize("persona", ["csm", "manager", "admin_user"])
def test_it_renders_each_home_within_a_handful_of_queries(client, db, persona, request, django_assert_max_num_queries):
    user = request.getfixturevalue(persona)
    for _ in range(10):
        account = AccountFactory(owner=request.getfixturevalue("csm"))
        near_limit(account)
        OpportunityFactory(account=account)
    client.force_login(user)

    # Session, user and role, then the page's own reads.
    with django_assert_max_num_queries(10):
        assert client.get(HOME_URL).status_code == 200
