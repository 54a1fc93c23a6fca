"""Managers reassign accounts from the account list or the account page; the account's timeline says so."""

import pytest
from django.contrib.messages import get_messages
from django.urls import reverse

from accounts.models import Account
from opportunities.models import Opportunity
from tests.factories import AccountFactory, OpportunityFactory

URL = reverse("accounts:reassign")


def said(response) -> list[str]:
    return [str(m) for m in get_messages(response.wsgi_request)]


def test_a_manager_moves_the_selected_accounts_and_returns_to_the_filtered_list(client, manager, csm, other_csm):
    first, second, untouched = (AccountFactory(owner=csm) for _ in range(3))
    OpportunityFactory(account=first)
    client.force_login(manager)

    response = client.post(
        URL, {"accounts": [first.pk, second.pk], "to": other_csm.pk, "next": "/accounts/?q=acme&sort=-mrr"}
    )

    assert (response.status_code, response.url) == (302, "/accounts/?q=acme&sort=-mrr")
    assert said(response) == ["2 accounts and 1 open opportunity moved to Olive Park."]
    assert set(Account.objects.filter(owner=other_csm)) == {first, second}
    assert Opportunity.objects.get().owner == other_csm
    untouched.refresh_from_db()
    assert untouched.owner == csm


def test_a_csm_cannot_reassign_even_with_a_forged_post(csm_client, csm, other_csm):
    account = AccountFactory(owner=other_csm)

    response = csm_client.post(URL, {"accounts": [account.pk], "to": csm.pk})

    assert response.status_code == 403
    account.refresh_from_db()
    assert account.owner == other_csm


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"to": "olive"}, "Accounts: choose at least one."),
        ({"accounts": "account", "to": "morgan"}, "New owner: choose an active CSM."),
        ({"accounts": "1; DROP TABLE", "to": "olive"}, "Accounts: 1; DROP TABLE is not an account id."),
    ],
)
def test_bad_input_is_named_and_changes_nothing(client, manager, csm, other_csm, body, message):
    account = AccountFactory(owner=csm)
    people = {"olive": other_csm.pk, "morgan": manager.pk}
    data = {"to": people[body["to"]]}
    if "accounts" in body:
        data["accounts"] = [account.pk] if body["accounts"] == "account" else [body["accounts"]]
    client.force_login(manager)

    response = client.post(URL, data)

    assert response.status_code == 302
    assert said(response) == [message]
    account.refresh_from_db()
    assert account.owner == csm


def test_it_never_redirects_off_site(client, manager, csm, other_csm):
    account = AccountFactory(owner=csm)
    client.force_login(manager)

    response = client.post(URL, {"accounts": [account.pk], "to": other_csm.pk, "next": "https://evil.example/"})

    assert response.url == reverse("accounts:list")


def test_the_account_page_offers_managers_the_move_and_records_it_in_the_timeline(client, manager, csm, other_csm):
    account = AccountFactory(owner=csm)
    client.force_login(manager)
    page = client.get(account.get_absolute_url())
    assert 'action="/accounts/reassign/"' in page.text

    client.post(URL, {"accounts": [account.pk], "to": other_csm.pk, "next": account.get_absolute_url()})

    timeline = client.get(reverse("opportunities:timeline", args=[account.pk])).context["timeline"]
    change = next(entry for entry in timeline if entry.kind == "owner")
    assert (change.title, change.body, change.actor) == ("Owner changed", "From Casey Moreno to Olive Park", manager)


def test_csms_see_no_reassign_controls(csm_client, account):
    assert 'action="/accounts/reassign/"' not in csm_client.get(account.get_absolute_url()).text
    assert 'form="reassign"' not in csm_client.get(reverse("accounts:list")).text


def test_the_account_list_offers_managers_a_checkbox_per_row(client, manager, csm):
    AccountFactory(owner=csm, name="Acme")
    AccountFactory(owner=csm, name="Globex")
    client.force_login(manager)

    page = client.get(reverse("accounts:list")).text

    assert page.count('name="accounts"') == 2
    assert 'id="reassign"' in page
