"""Login throttling (django-axes): a username that keeps failing from one address is locked out for a while."""

import datetime as dt

import pytest
from axes.models import AccessAttempt
from django.conf import settings
from django.urls import reverse
from django.utils import timezone

from tests.factories import UserFactory

LOGIN_URL = reverse("login")
PASSWORD = "a-long-passphrase"
ATTACKER = "203.0.113.7"


@pytest.fixture
def casey(db):
    return UserFactory(username="casey", password=PASSWORD, role="CSM")


def sign_in(client, password: str, *, username: str = "casey", address: str = ATTACKER):
    return client.post(LOGIN_URL, {"username": username, "password": password}, REMOTE_ADDR=address)


def fail(client, times: int, **kwargs) -> list[int]:
    return [sign_in(client, "wrong", **kwargs).status_code for _ in range(times)]


def test_it_allows_wrong_passwords_up_to_the_limit(client, casey):
    assert settings.AXES_FAILURE_LIMIT > 1

    assert fail(client, settings.AXES_FAILURE_LIMIT - 1) == [200] * (settings.AXES_FAILURE_LIMIT - 1)


def test_the_failure_that_reaches_the_limit_locks_the_username_out_with_a_page_of_the_app(client, casey):
    fail(client, settings.AXES_FAILURE_LIMIT - 1)

    response = sign_in(client, "wrong")

    assert response.status_code == 429
    assert "registration/lockout.html" in [template.name for template in response.templates]
    html = response.content.decode()
    assert "<title>Too many sign-in attempts · Upsell CRM</title>" in html  # in the app's layout
    assert "Sign-in paused" in html
    assert f"After {settings.AXES_FAILURE_LIMIT} wrong passwords for <strong>casey</strong>" in html
    assert f"for {round(settings.AXES_COOLOFF_TIME * 60)} minutes from the last attempt" in html
    assert f'href="{LOGIN_URL}"' in html
    assert "_auth_user_id" not in client.session


def test_a_locked_out_username_is_refused_even_with_the_right_password(client, casey):
    fail(client, settings.AXES_FAILURE_LIMIT)

    response = sign_in(client, PASSWORD)

    assert response.status_code == 429
    assert "Sign-in paused" in response.content.decode()
    assert "_auth_user_id" not in client.session
    assert client.get(reverse("home")).status_code == 302  # still signed out: back to the login page


def test_the_lockout_holds_only_that_username_from_that_address(client, casey):
    UserFactory(username="olive", password=PASSWORD, role="CSM")
    fail(client, settings.AXES_FAILURE_LIMIT)

    assert sign_in(client, PASSWORD, address="198.51.100.20").status_code == 302
    client.logout()
    assert sign_in(client, PASSWORD, username="olive").status_code == 302


def test_it_lets_the_user_in_again_once_the_cool_off_has_passed(client, casey):
    fail(client, settings.AXES_FAILURE_LIMIT)
    assert sign_in(client, PASSWORD).status_code == 429

    cool_off = dt.timedelta(hours=settings.AXES_COOLOFF_TIME)
    AccessAttempt.objects.update(attempt_time=timezone.now() - cool_off - dt.timedelta(seconds=1))

    assert sign_in(client, PASSWORD).status_code == 302


def test_a_successful_sign_in_resets_the_count_of_failures(client, casey):
    fail(client, settings.AXES_FAILURE_LIMIT - 1)
    assert sign_in(client, PASSWORD).status_code == 302
    client.logout()

    assert fail(client, settings.AXES_FAILURE_LIMIT - 1) == [200] * (settings.AXES_FAILURE_LIMIT - 1)
    assert sign_in(client, PASSWORD).status_code == 302


def test_behind_a_proxy_one_clients_lockout_does_not_lock_out_the_same_user_elsewhere(client, casey, settings):
    # Both sign-ins reach the app from the TLS proxy (10.0.0.2); X-Forwarded-For names the real clients.
    settings.TRUSTED_PROXY_COUNT = 1
    for _ in range(settings.AXES_FAILURE_LIMIT):
        client.post(
            LOGIN_URL, {"username": "casey", "password": "wrong"}, REMOTE_ADDR="10.0.0.2", HTTP_X_FORWARDED_FOR=ATTACKER
        )

    elsewhere = client.post(
        LOGIN_URL,
        {"username": "casey", "password": PASSWORD},
        REMOTE_ADDR="10.0.0.2",
        HTTP_X_FORWARDED_FOR="198.51.100.4",
    )

    assert elsewhere.status_code == 302
    assert AccessAttempt.objects.get().ip_address == ATTACKER


def test_without_a_configured_proxy_a_forged_forwarded_for_header_changes_nothing(client, casey, settings):
    settings.TRUSTED_PROXY_COUNT = 0
    for n in range(settings.AXES_FAILURE_LIMIT):
        client.post(
            LOGIN_URL,
            {"username": "casey", "password": "wrong"},
            REMOTE_ADDR=ATTACKER,
            HTTP_X_FORWARDED_FOR=f"192.0.2.{n}",
        )

    assert sign_in(client, PASSWORD).status_code == 429
