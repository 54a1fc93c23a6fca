"""Django's deployment checklist passes with the environment a production install sets, warnings included."""

import os
import secrets
import subprocess
import sys

from django.conf import settings


def run_deploy_check(env: dict[str, str]) -> subprocess.CompletedProcess:
    # A subprocess, because settings are read from the environment once, at import.
    return subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=settings.BASE_DIR,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


# Set in this process for the browser tests; a deployment must not have it, and the checklist says so.
NOT_INHERITED = {"DJANGO_ALLOW_ASYNC_UNSAFE"}


def production_env(**overrides: str) -> dict[str, str]:
    return {
        **{name: value for name, value in os.environ.items() if name not in NOT_INHERITED},
        "DJANGO_DEBUG": "0",
        "DJANGO_SECRET_KEY": secrets.token_urlsafe(64),
        "DJANGO_ALLOWED_HOSTS": "example.com",
        "SMTP_HOST": "smtp.example.com",
        **overrides,
    }


def test_it_passes_the_deploy_checklist_with_a_production_environment():
    result = run_deploy_check(production_env())

    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


def test_it_flags_the_development_secret_key():
    env = production_env()
    del env["DJANGO_SECRET_KEY"]

    result = run_deploy_check(env)

    assert result.returncode != 0
    assert "security.W009" in result.stderr


def test_it_flags_a_production_install_without_a_mail_server():
    result = run_deploy_check(production_env(SMTP_HOST=""))

    assert result.returncode != 0
    assert "mail.E001" in result.stderr
