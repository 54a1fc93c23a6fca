"""Settings for bench/pages.py: the app's own, plus two baseline views and static files served without collectstatic."""

from pathlib import Path

from upsell_crm.settings import *  # noqa: F403
from upsell_crm.settings import STORAGES, TEMPLATES

ROOT_URLCONF = "bench.pages_urls"

TEMPLATES = [{**TEMPLATES[0], "DIRS": [*TEMPLATES[0]["DIRS"], Path(__file__).resolve().parent / "templates"]}]

# The bench measures pages, not static files: plain storage spares a collectstatic (no manifest to build),
# and WhiteNoise serves from the finders instead.
STORAGES = {**STORAGES, "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"}}
WHITENOISE_USE_FINDERS = True
