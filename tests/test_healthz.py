"""GET /healthz tells a load balancer whether this instance can serve: database and broker both answer."""

import pytest

from upsell_crm import health

pytestmark = pytest.mark.django_db

UNREACHABLE_BROKER = "redis://127.0.0.1:1/0"


def test_it_answers_ok_when_the_database_and_the_broker_answer(client):
    response = client.get("/healthz")

    assert response.status_code == 200
    assert response.json() == {"status": "ok", "checks": {"database": "ok", "broker": "ok"}}


def test_it_answers_503_and_names_the_broker_when_the_broker_is_down(client, settings):
    settings.CELERY_BROKER_URL = UNREACHABLE_BROKER

    response = client.get("/healthz")

    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "failing"
    assert body["checks"]["database"] == "ok"
    assert body["checks"]["broker"] != "ok"
    assert "127.0.0.1:1" in body["checks"]["broker"]


def test_it_answers_503_and_names_the_database_when_the_database_fails(client, monkeypatch):
    def database_down():
        raise OSError("connection refused")

    monkeypatch.setitem(health.CHECKS, "database", database_down)

    response = client.get("/healthz")

    assert response.status_code == 503
    assert response.json()["checks"] == {"database": "OSError: connection refused", "broker": "ok"}


def test_it_answers_anonymous_visitors_over_plain_http_even_where_https_is_enforced(client, settings):
    # A load balancer probes the instance directly: no session, no TLS, no redirect to follow.
    settings.SECURE_SSL_REDIRECT = True

    assert client.get("/login/").status_code == 301
    assert client.get("/healthz").status_code == 200


def test_it_answers_a_signed_in_csm_the_same_way(csm_client):
    assert csm_client.get("/healthz").json()["status"] == "ok"


def test_it_is_never_cached(client):
    response = client.get("/healthz")

    assert "no-cache" in response["Cache-Control"]


def test_it_only_answers_get(client):
    assert client.post("/healthz").status_code == 405
