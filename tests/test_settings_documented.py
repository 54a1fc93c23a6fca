"""Every variable the settings read from the environment is documented in README.md and in .env.example."""

import re

import pytest
from django.conf import settings

SETTINGS_SOURCE = (settings.BASE_DIR / "upsell_crm" / "settings.py").read_text()
# env("X"), env.str("X"), env.bool("X"), env.db("X"), env.cache("X"), ...
VARIABLES = sorted(set(re.findall(r"\benv(?:\.\w+)?\(\s*\"([A-Z][A-Z0-9_]*)\"", SETTINGS_SOURCE)))


def test_it_finds_the_variables_the_settings_read():
    assert {"DJANGO_SECRET_KEY", "DATABASE_URL", "CACHE_URL", "CELERY_BROKER_URL"} <= set(VARIABLES)


@pytest.mark.parametrize("variable", VARIABLES)
def test_it_documents_each_variable_in_the_readme_table(variable):
    readme = (settings.BASE_DIR / "README.md").read_text()

    assert f"| `{variable}` |" in readme


@pytest.mark.parametrize("variable", VARIABLES)
def test_it_lists_each_variable_in_the_example_env_file(variable):
    example = (settings.BASE_DIR / ".env.example").read_text()

    assert re.search(rf"^# ?{variable}=", example, flags=re.MULTILINE)
