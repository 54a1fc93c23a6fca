"""Settings for the load test (load/run.py): the production settings, with static files served from the finders.

The load measures pages and the API, not static files: plain storage spares a collectstatic into the working
tree (no manifest to build), and WhiteNoise serves from the finders instead. Everything else is production's:
DEBUG off, HTTPS redirect, secure cookies and HSTS; the load client talks to gunicorn as the TLS-terminating
proxy would, with `X-Forwarded-Proto: https`.
"""

from upsell_crm.settings import *  # noqa: F403
from upsell_crm.settings import STORAGES

STORAGES = {**STORAGES, "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"}}
WHITENOISE_USE_FINDERS = True
