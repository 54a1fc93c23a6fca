"""Personas and shared fixtures. Tests read as sentences about these people."""

import pytest

from tests.factories import AccountFactory, UserFactory


@pytest.fixture(autouse=True)
def _plain_http(settings):
    """Tests run with production settings (DEBUG off) but talk plain HTTP, as behind a TLS proxy, and read
    static files from the source tree instead of a `collectstatic` manifest."""
    settings.SECURE_SSL_REDIRECT = False
    settings.STORAGES = {
        **settings.STORAGES,
        "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
    }


@pytest.fixture
def csm(db):
    """Casey, a CSM who owns accounts."""
    return UserFactory(username="casey", first_name="Casey", last_name="Moreno", role="CSM")


@pytest.fixture
def other_csm(db):
    """Olive, another CSM with a book of her own."""
    return UserFactory(username="olive", first_name="Olive", last_name="Park", role="CSM")


@pytest.fixture
def manager(db):
    """Morgan, the sales manager who sees the whole pipeline."""
    return UserFactory(username="morgan", first_name="Morgan", last_name="Lee", role="Manager")


@pytest.fixture
def admin_user(db):
    """Ada, the admin who configures plans, rules and plays."""
    return UserFactory(username="ada", first_name="Ada", last_name="Stone", role="Admin", is_staff=True)


@pytest.fixture
def account(csm):
    """An account on Basic owned by Casey."""
    return AccountFactory(owner=csm, name="Acme Analytics")


@pytest.fixture
def csm_client(client, csm):
    client.force_login(csm)
    return client


@pytest.fixture
def manager_client(client, manager):
    client.force_login(manager)
    return client


@pytest.fixture
def eager_celery():
    """Run tasks inline for this test, whatever broker the suite was started with."""
    from upsell_crm.celery import app

    before = app.conf.task_always_eager
    app.conf.task_always_eager = True
    yield app
    app.conf.task_always_eager = before
