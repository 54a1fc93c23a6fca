"""The Celery application. Its configuration lives in settings (CELERY_*), its tasks in the domain apps."""

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "upsell_crm.settings")

app = Celery("upsell_crm")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
