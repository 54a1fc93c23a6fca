"""Signing in: the login page, where it leads, and the demo logins of a demo install."""

from django.urls import reverse

from tests.factories import UserFactory

LOGIN_URL = reverse("login")


def test_it_signs_a_csm_in_and_sends_them_home(client, db):
    UserFactory(username="casey", password="a-long-passphrase", role="CSM")

    response = client.post(LOGIN_URL, {"username": "casey", "password": "a-long-passphrase"})

    assert response.status_code == 302
    assert response["Location"] == reverse("home")


def test_it_says_so_when_the_password_is_wrong(client, db):
    UserFactory(username="casey", password="a-long-passphrase", role="CSM")

    response = client.post(LOGIN_URL, {"username": "casey", "password": "wrong"})

    assert response.status_code == 200
    assert 'role="alert"' in response.content.decode()


def test_it_sends_a_signed_in_user_on_home(csm_client):
    response = csm_client.get(LOGIN_URL)

    assert response.status_code == 302
    assert response["Location"] == reverse("home")


def test_it_shows_the_demo_logins_only_while_debug_is_on(client, db, settings):
    assert "Demo logins" not in client.get(LOGIN_URL).content.decode()

    settings.DEBUG = True
    html = client.get(LOGIN_URL).content.decode()

    assert "Demo logins" in html
    assert 'name="username" value="csm1"' in html
    assert 'name="password" value="demo"' in html
