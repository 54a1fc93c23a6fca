"""/unsubscribe/<token>/: the link in every sequence email. Bea Buyer, Acme's contact, opens it from her inbox;
her mail provider may post to it on her behalf (RFC 8058 one-click)."""

import datetime as dt

import pytest
from django.core import signing
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from accounts.models import EmailOptOut
from playbooks.prompts import PromptRef, prompt_id
from playbooks.unsubscribe import unsubscribe_ref, unsubscribe_token

pytestmark = pytest.mark.django_db

BUYER = "Bea@Acme.example"
WRITES = ("INSERT", "UPDATE", "DELETE", "REPLACE")


@pytest.fixture
def link(account) -> str:
    return reverse("unsubscribe", args=[unsubscribe_token(email=BUYER, account_id=account.pk, step_run_id=7)])


def writes(queries) -> list[str]:
    return [q["sql"] for q in queries.captured_queries if q["sql"].lstrip().upper().startswith(WRITES)]


def test_the_link_stands_for_the_address_lower_cased_its_account_and_step_run(account):
    token = unsubscribe_token(email=BUYER, account_id=account.pk, step_run_id=7)

    ref = unsubscribe_ref(token)

    assert (ref.email, ref.account_id, ref.step_run_id) == ("bea@acme.example", account.pk, 7)


def test_opening_the_link_asks_to_confirm_and_writes_nothing(client, link):
    with CaptureQueriesContext(connection) as queries:
        response = client.get(link)

    assert response.status_code == 200
    assert writes(queries) == []
    assert not EmailOptOut.objects.exists()
    page = response.content.decode()
    assert "<title>Unsubscribe · Upsell CRM</title>" in page
    assert "bea@acme.example" in page
    assert f'<form method="post" action="{link}"' in page


def test_confirming_opts_the_address_out_for_good(client, link, account):
    response = client.post(link)

    assert response.status_code == 200
    assert "You are unsubscribed" in response.content.decode()
    opt_out = EmailOptOut.objects.get()
    assert (opt_out.email, opt_out.account, opt_out.source) == (
        "bea@acme.example",
        account,
        "Play email unsubscribe link",
    )


def test_a_mail_providers_one_click_post_needs_no_csrf_token_or_cookie(link):
    provider = Client(enforce_csrf_checks=True)

    response = provider.post(link, "List-Unsubscribe=One-Click", content_type="application/x-www-form-urlencoded")

    assert response.status_code == 200
    assert EmailOptOut.objects.get().email == "bea@acme.example"


def test_a_second_request_keeps_the_first_opt_out_and_its_time(client, link):
    client.post(link)
    first = EmailOptOut.objects.get()
    EmailOptOut.objects.filter(pk=first.pk).update(opted_out_at=first.opted_out_at - dt.timedelta(days=3))

    client.post(link)
    response = client.get(link)

    assert EmailOptOut.objects.count() == 1
    assert EmailOptOut.objects.get().opted_out_at == first.opted_out_at - dt.timedelta(days=3)
    assert "You are unsubscribed" in response.content.decode()


def test_a_link_whose_account_was_deleted_still_unsubscribes(client, link, account):
    account.delete()

    response = client.post(link)

    assert response.status_code == 200
    assert EmailOptOut.objects.get().account is None


def _altered(token: str) -> str:
    return token[:-2] + ("AA" if not token.endswith("AA") else "BB")


BAD_TOKENS = {
    "garbage": lambda account: "not-a-token",
    "altered signature": lambda account: _altered(unsubscribe_token(email=BUYER, account_id=account.pk, step_run_id=1)),
    "altered address": lambda account: unsubscribe_token(email=BUYER, account_id=account.pk, step_run_id=1).replace(
        "W", "X", 1
    ),
    "signed for something else": lambda account: prompt_id(
        PromptRef(account_id=account.pk, play_id=1, variant_id=None)
    ),
    "signed with another key": lambda account: signing.dumps(["bea@acme.example", None, None], key="x" * 50),
    "a signed value that is no address": lambda account: signing.dumps(
        ["nobody", None, None], salt="playbooks.unsubscribe"
    ),
    "a signed value of the wrong shape": lambda account: signing.dumps({"e": 1}, salt="playbooks.unsubscribe"),
    "a signed value with odd ids": lambda account: signing.dumps(
        ["bea@acme.example", "1", True], salt="playbooks.unsubscribe"
    ),
}


@pytest.mark.parametrize("case", sorted(BAD_TOKENS))
@pytest.mark.parametrize("method", ["get", "post"])
def test_a_forged_or_broken_link_is_a_400_with_a_message_and_stores_nothing(client, account, case, method):
    url = reverse("unsubscribe", args=[BAD_TOKENS[case](account)])

    response = getattr(client, method)(url)

    assert response.status_code == 400
    assert "This unsubscribe link is not valid" in response.content.decode()
    assert not EmailOptOut.objects.exists()


@pytest.mark.parametrize("method", ["put", "patch", "delete"])
def test_other_methods_are_refused(client, link, method):
    assert getattr(client, method)(link).status_code == 405
    assert not EmailOptOut.objects.exists()
