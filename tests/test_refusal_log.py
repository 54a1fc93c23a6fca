"""Every refused request leaves a WARNING on `upsell_crm.security`: who, in which role, what, and the status."""

import logging

import pytest
from django.test import Client
from django.urls import reverse

from accounts.tokens import api_token_create

pytestmark = pytest.mark.django_db


@pytest.fixture
def security_log(caplog):
    """The lines the security logger writes during the test."""
    caplog.set_level(logging.WARNING, logger="upsell_crm.security")
    return lambda: [r for r in caplog.records if r.name == "upsell_crm.security"]


def test_it_logs_a_csm_refused_a_settings_page_with_the_method_path_user_role_and_status(csm_client, csm, security_log):
    response = csm_client.get(reverse("settings:index"))

    assert response.status_code == 403
    [record] = security_log()
    assert record.levelno == logging.WARNING
    assert record.getMessage() == f"refused GET /settings/ status=403 by=user:{csm.pk} role=CSM"
    assert (record.method, record.path, record.status, record.requester, record.role) == (
        "GET",
        "/settings/",
        403,
        f"user:{csm.pk}",
        "CSM",
    )


def test_it_logs_the_404_another_csm_gets_for_an_account_she_does_not_own(client, other_csm, account, security_log):
    client.force_login(other_csm)

    response = client.post(reverse("opportunities:note_add", args=[account.pk]), {"body": "Hello"})

    assert response.status_code == 404
    [record] = security_log()
    assert (record.method, record.status, record.requester, record.role) == ("POST", 404, f"user:{other_csm.pk}", "CSM")


def test_it_logs_an_api_request_with_a_bad_token_as_anonymous_and_leaves_the_token_out(client, security_log):
    response = client.get("/api/v1/accounts/acme", headers={"Authorization": "Bearer upc_not-a-real-token"})

    assert response.status_code == 401
    [record] = security_log()
    assert record.getMessage() == "refused GET /api/v1/accounts/acme status=401 by=anonymous role=anonymous"


def test_it_names_the_api_token_the_api_authenticated_before_refusing(client, security_log):
    token, raw = api_token_create(name="usage exporter")

    response = client.get("/api/v1/accounts/nobody", headers={"Authorization": f"Bearer {raw}"})

    assert response.status_code == 404
    [record] = security_log()
    assert (record.requester, record.role) == (f"api_token:{token.pk}", "api_token")
    assert raw not in record.getMessage()


def test_it_leaves_the_query_string_out(csm_client, security_log):
    csm_client.get(reverse("settings:tokens") + "?token=upc_secret")

    [record] = security_log()
    assert record.path == "/settings/tokens/"
    assert "upc_secret" not in record.getMessage()


def test_it_percent_encodes_a_path_that_would_forge_a_second_log_line(client, security_log):
    response = client.get("/api/v1/accounts/acme%0Arefused GET status=403")

    assert response.status_code == 401
    [record] = security_log()
    assert "\n" not in record.getMessage()
    assert record.path == "/api/v1/accounts/acme%0Arefused%20GET%20status%3D403"


def test_it_logs_the_403_of_a_failed_csrf_check(csm, account, security_log):
    client = Client(enforce_csrf_checks=True)
    client.force_login(csm)

    response = client.post(reverse("opportunities:note_add", args=[account.pk]), {"body": "Hello"})

    assert response.status_code == 403
    [record] = security_log()
    assert (record.status, record.requester) == (403, f"user:{csm.pk}")


def test_it_does_not_log_an_anonymous_visitors_404(security_log):
    response = Client().get("/wp-login.php")

    assert response.status_code == 404
    assert security_log() == []


def test_it_does_not_log_a_missing_trailing_slash_that_ends_in_a_redirect(csm_client, security_log):
    response = csm_client.get("/queue")

    assert response.status_code == 301
    assert security_log() == []


def test_it_does_not_log_an_answer_that_refuses_nothing(csm_client, account, security_log):
    assert csm_client.get(reverse("accounts:detail", args=[account.pk])).status_code == 200
    assert csm_client.get(reverse("settings:index")).status_code == 403

    assert [record.status for record in security_log()] == [403]


def test_a_signed_in_users_unknown_address_is_a_logged_404_page(csm_client, security_log):
    response = csm_client.get("/no-such-page/")

    assert response.status_code == 404
    assert "This page does not exist" in response.text
    assert [record.status for record in security_log()] == [404]
