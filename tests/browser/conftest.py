"""Headless Chromium against the live server: Debian's chromium, the app over plain HTTP, seeded demo data."""

import os
from pathlib import Path

import pytest
from django.core.management import call_command
from django.test import override_settings
from django.utils import timezone

# Playwright's sync API runs an event loop in this thread, which Django's ORM would otherwise refuse to use.
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
SCREENSHOTS = Path(__file__).resolve().parents[2] / "screenshots"


@pytest.fixture(scope="session")
def browser_type_launch_args(browser_type_launch_args):
    return {**browser_type_launch_args, "executable_path": CHROMIUM, "args": CHROMIUM_ARGS}


@pytest.fixture(scope="session")
def browser_context_args(browser_context_args):
    return {**browser_context_args, "viewport": {"width": 1440, "height": 900}}


@pytest.fixture(scope="session")
def _no_https_redirect_at_startup():
    override = override_settings(SECURE_SSL_REDIRECT=False)
    override.enable()
    return override


@pytest.fixture(scope="session")
def live_server(_no_https_redirect_at_startup, live_server):
    """pytest-django's live server, started without the HTTPS redirect.

    SecurityMiddleware reads SECURE_SSL_REDIRECT once, when the server thread builds its handler, so the
    setting only needs to hold while the server starts; the rest of the session sees the real value.
    """
    _no_https_redirect_at_startup.disable()
    return live_server


@pytest.fixture(autouse=True)
def _plain_http_and_unhashed_static(settings):
    # The live server speaks plain HTTP with DEBUG off: cookies without the Secure flag, static files by
    # their plain names (the hashed manifest only exists after `collectstatic`), and quick password hashing.
    settings.SESSION_COOKIE_SECURE = False
    settings.CSRF_COOKIE_SECURE = False
    settings.STORAGES = {
        **settings.STORAGES,
        "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
    }


@pytest.fixture
def demo(committed_db):
    """The demo book as of today: csm1..csm4, manager and admin (password "demo"), 40 accounts, the queue.

    The live server needs committed rows, hence a committed database (see tests/conftest.py).
    """
    call_command("seed_demo", accounts=40, as_of=timezone.localdate(), verbosity=0)


@pytest.fixture
def screenshot():
    """Saves a full-page screenshot as screenshots/<name>.png."""
    SCREENSHOTS.mkdir(exist_ok=True)

    def save(page, name: str) -> Path:
        path = SCREENSHOTS / f"{name}.png"
        # From the top, or the sticky top bar lands mid-page in a full-page capture.
        page.evaluate("window.scrollTo(0, 0)")
        page.screenshot(path=str(path), full_page=True)
        return path

    return save


@pytest.fixture
def console(page):
    """Every console message and uncaught error of the page, as "type: text" lines."""
    messages: list[str] = []
    page.on("console", lambda message: messages.append(f"{message.type}: {message.text}"))
    page.on("pageerror", lambda error: messages.append(f"pageerror: {error}"))
    return messages
