"""Production settings (DJANGO_DEBUG off): HTTPS only, cookies that stay on HTTPS and out of scripts' reach.

Settings are read from the environment once, at import, so a subprocess imports them under a production
environment, signs in through the login page over HTTPS with Django's test client (an in-memory database),
and reports what it found as JSON.
"""

import json
import subprocess
import sys
from http.cookies import SimpleCookie

import pytest
from django.conf import settings

from tests.test_deploy_check import production_env

PROBE = """
import json, os
import django
os.environ["DJANGO_SETTINGS_MODULE"] = "upsell_crm.settings"
django.setup()
from django.conf import settings
from django.contrib.auth.models import User
from django.core.management import call_command
from django.test import Client, override_settings

# Static files by their plain names (the hashed manifest only exists after `collectstatic`), quick hashing.
plain_static = {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"}
override_settings(
    STORAGES={**settings.STORAGES, "staticfiles": plain_static},
    PASSWORD_HASHERS=["django.contrib.auth.hashers.MD5PasswordHasher"],
).enable()
call_command("migrate", verbosity=0)
User.objects.create_user("casey", password="a-long-passphrase")
client = Client(HTTP_HOST="example.com")
plain = client.get("/login/")
page = client.get("/login/", secure=True)
signed_in = client.post(
    "/login/",
    {"username": "casey", "password": "a-long-passphrase", "csrfmiddlewaretoken": page.cookies["csrftoken"].value},
    secure=True,
)
names = [
    "DEBUG", "SESSION_COOKIE_SECURE", "SESSION_COOKIE_HTTPONLY", "SESSION_COOKIE_SAMESITE", "CSRF_COOKIE_SECURE",
    "CSRF_COOKIE_SAMESITE", "SECURE_HSTS_SECONDS", "SECURE_HSTS_INCLUDE_SUBDOMAINS", "SECURE_SSL_REDIRECT",
    "SECURE_PROXY_SSL_HEADER", "SECURE_CONTENT_TYPE_NOSNIFF", "SECURE_REFERRER_POLICY", "X_FRAME_OPTIONS",
]
print(json.dumps({
    "settings": {name: getattr(settings, name) for name in names},
    "plain": {"status": plain.status_code, "location": plain.headers.get("Location", "")},
    "page": {"status": page.status_code, "headers": dict(page.headers), "cookies": page.cookies.output()},
    "signed_in": {"status": signed_in.status_code, "cookies": signed_in.cookies.output()},
}))
"""


@pytest.fixture(scope="module")
def production():
    result = subprocess.run(  # noqa: S603 - runs the PROBE above, no input
        [sys.executable, "-c", PROBE],
        cwd=settings.BASE_DIR,
        env=production_env(DATABASE_URL="sqlite://:memory:", CACHE_URL="locmemcache://", CELERY_BROKER_URL="memory://"),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


def cookie(set_cookie_lines: str, name: str):
    jar = SimpleCookie()
    jar.load(set_cookie_lines.replace("Set-Cookie: ", ""))
    return jar[name]


def test_it_turns_debug_off_and_https_on(production):
    found = production["settings"]

    assert found["DEBUG"] is False
    assert found["SECURE_SSL_REDIRECT"] is True
    assert found["SECURE_HSTS_SECONDS"] >= 31536000
    assert found["SECURE_HSTS_INCLUDE_SUBDOMAINS"] is True
    assert found["SECURE_PROXY_SSL_HEADER"] == ["HTTP_X_FORWARDED_PROTO", "https"]
    assert found["SECURE_CONTENT_TYPE_NOSNIFF"] is True
    assert found["SECURE_REFERRER_POLICY"] == "same-origin"
    assert found["X_FRAME_OPTIONS"] == "DENY"


def test_it_keeps_the_session_and_csrf_cookies_on_https_and_same_site(production):
    found = production["settings"]

    assert (found["SESSION_COOKIE_SECURE"], found["SESSION_COOKIE_HTTPONLY"], found["SESSION_COOKIE_SAMESITE"]) == (
        True,
        True,
        "Lax",
    )
    assert (found["CSRF_COOKIE_SECURE"], found["CSRF_COOKIE_SAMESITE"]) == (True, "Lax")


def test_it_redirects_plain_http_to_https(production):
    assert production["plain"] == {"status": 301, "location": "https://example.com/login/"}


def test_the_login_page_sets_its_csrf_cookie_secure_and_same_site_and_answers_with_hsts(production):
    page = production["page"]
    csrf = cookie(page["cookies"], "csrftoken")

    assert page["status"] == 200
    assert csrf["secure"] is True
    assert csrf["samesite"] == "Lax"
    assert page["headers"]["Strict-Transport-Security"].startswith("max-age=31536000")
    assert page["headers"]["X-Frame-Options"] == "DENY"
    assert page["headers"]["X-Content-Type-Options"] == "nosniff"


def test_signing_in_sets_a_session_cookie_that_is_secure_http_only_and_same_site(production):
    signed_in = production["signed_in"]
    session = cookie(signed_in["cookies"], settings.SESSION_COOKIE_NAME)

    assert signed_in["status"] == 302
    assert session.value
    assert session["secure"] is True
    assert session["httponly"] is True
    assert session["samesite"] == "Lax"
