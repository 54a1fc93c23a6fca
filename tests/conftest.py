"""Personas and shared fixtures. Tests read as sentences about these people."""

import pytest
from django.contrib.contenttypes.models import ContentType
from django.db import connection

from tests.caches import empty_caches
from tests.factories import AccountFactory, UserFactory


@pytest.fixture(autouse=True)
def _test_settings(settings):
    """Tests run with production settings (DEBUG off) but talk plain HTTP, as behind a TLS proxy, read
    static files from the source tree instead of a `collectstatic` manifest, hash passwords cheaply, and
    start from an empty cache (a pipeline lock left by another test must not leak in)."""
    settings.SECURE_SSL_REDIRECT = False
    settings.STORAGES = {
        **settings.STORAGES,
        "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
    }
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    empty_caches()


@pytest.fixture(scope="session")
def _migrated_rows(django_db_setup, django_db_blocker) -> str:
    """The rows the data migrations installed (catalogue, roles, lost reasons, rules), serialized once."""
    with django_db_blocker.unblock():
        return connection.creation.serialize_db_to_string()


@pytest.fixture
def committed_db(transactional_db, _migrated_rows):
    """A database whose writes really commit (for a live server or a worker thread), with the migrated rows.

    Every transactional test leaves the database flushed, so the migrated rows go back in first.
    (pytest-django's serialized rollback cannot do it: once Playwright runs its event loop in this thread,
    Django hands out a fresh connection object without the serialized copy stored on the first one.) After
    a flush, post_migrate re-created content types and permissions under new ids; they go, so the role
    groups get theirs back.
    """
    ContentType.objects.all().delete()
    connection.creation.deserialize_db_from_string(_migrated_rows)
    ContentType.objects.clear_cache()


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
