"""The versioned JSON API at /api/v1/: token auth on every endpoint, interactive docs for staff only."""

from functools import partial

from django.contrib.admin.views.decorators import staff_member_required
from django.contrib.auth.decorators import login_not_required
from ninja import NinjaAPI
from ninja.openapi.views import openapi_json

from accounts.auth import ApiTokenAuth
from opportunities.api import router as opportunities_router

api = NinjaAPI(
    title="Upsell CRM API",
    version="1",
    description="Usage, billing and scores of your accounts. Authenticate with `Authorization: Bearer <token>`.",
    urls_namespace="api-v1",
    auth=ApiTokenAuth(),
    docs_decorator=staff_member_required,
)
api.add_router("/", opportunities_router)


def urls():
    """The API's URL patterns, opted out of the login-required middleware: tokens guard them instead.

    The schema is public (integrators' code generators fetch it without a session); ninja would put it
    behind the docs decorator, so its view is replaced by the undecorated one.
    """
    patterns, app_name, namespace = api.urls
    for pattern in patterns:
        if pattern.name == "openapi-json":
            pattern.callback = partial(openapi_json, api=api)
        pattern.callback = login_not_required(pattern.callback)
    return patterns, app_name, namespace
