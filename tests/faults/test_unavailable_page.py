"""An unreachable database answers 503 (a page, or JSON for the API) instead of a 500, wherever it fails.

The database is made to fail where it fails first in a real outage: loading the session in the
authentication middleware (pages) and looking up the API token (the API).
"""

import pytest
from django.contrib.sessions.backends.db import SessionStore
from django.db import InterfaceError, OperationalError
from django.test import Client

from accounts import auth
from tests.api_helpers import post_json

pytestmark = pytest.mark.django_db


@pytest.fixture
def casey_client(csm) -> Client:
    """Casey, signed in, on a client that answers errors with their page instead of raising."""
    client = Client(raise_request_exception=False)
    client.force_login(csm)
    return client


def fail_with(monkeypatch, target, name: str, exc: Exception) -> None:
    def unreachable(*args, **kwargs):
        raise exc

    monkeypatch.setattr(target, name, unreachable)


@pytest.mark.parametrize("exc", [OperationalError("server closed the connection"), InterfaceError("closed")])
def test_it_answers_a_503_page_when_the_session_cannot_be_loaded(casey_client, monkeypatch, exc):
    fail_with(monkeypatch, SessionStore, "load", exc)

    response = casey_client.get("/accounts/")

    assert response.status_code == 503
    assert response["Retry-After"] == "5"
    assert [t.name for t in response.templates][:2] == ["503.html", "base.html"]
    assert "Temporarily unavailable" in response.content.decode()


def test_it_answers_json_503_to_the_api_when_the_token_cannot_be_looked_up(monkeypatch):
    fail_with(monkeypatch, auth, "api_token_authenticate", OperationalError("the database system is shutting down"))

    response = post_json(Client(raise_request_exception=False), "/api/v1/usage", {"snapshots": []}, token="upc_x")

    assert response.status_code == 503
    assert response["Content-Type"] == "application/json"
    assert "database cannot be reached" in response.json()["detail"]


def test_it_still_answers_500_to_any_other_error(casey_client, monkeypatch):
    fail_with(monkeypatch, SessionStore, "load", RuntimeError("a bug"))

    response = casey_client.get("/accounts/")

    assert response.status_code == 500
    assert "500.html" in [t.name for t in response.templates]
