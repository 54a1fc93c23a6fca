"""Settings of the processes the fault scenarios start: the app's production settings (DEBUG off, from the
environment), with static files read from the source tree instead of a `collectstatic` manifest and quick
password hashing."""

from upsell_crm.settings import *  # noqa: F403
from upsell_crm.settings import STORAGES

STORAGES = {**STORAGES, "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"}}
WHITENOISE_USE_FINDERS = True
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
