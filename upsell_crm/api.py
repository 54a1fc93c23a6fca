"""The versioned JSON API at /api/v1/: token auth on every endpoint, interactive docs for staff only."""

from functools import partial

from django.contrib.admin.views.decorators import staff_member_required
from django.contrib.auth.decorators import login_not_required
from ninja import NinjaAPI
from ninja.errors import ValidationError
from ninja.openapi.views import openapi_json

from accounts.api import router as accounts_router
from accounts.api_errors import StrictJsonParser, limit_body, validation_error_handler
from accounts.auth import ApiTokenAuth
from opportunities.api import router as opportunities_router
from opportunities.webhooks import router as webhooks_router

api = NinjaAPI(
    title="Upsell CRM API",
    version="1",
    description=(
        "Usage, billing and scores of your accounts. Authenticate with `Authorization: Bearer <token>`. "
        "Writes take up to 1,000 items and a body of up to 1 MB, store all items or none, refuse unknown "
        "fields, and answer 422 with a JSON pointer and a message for each invalid item."
    ),
    urls_namespace="api-v1",
    auth=ApiTokenAuth(),
    docs_decorator=staff_member_required,
    parser=StrictJsonParser(),
)
api.add_exception_handler(ValidationError, validation_error_handler)
api.add_router("/", accounts_router)
api.add_router("/", opportunities_router)
api.add_router("/", webhooks_router)
api.add_router("/", "accounts.metrics_api.router")
api.add_router("/", "playbooks.prompts_api.router")
api.add_router("/", "playbooks.survey_api.router")


def urls():
    """The API's URL patterns, opted out of the login-required middleware: tokens guard them instead.

    The schema is public (integrators' code generators fetch it without a session); ninja would put it
    behind the docs decorator, so its view is replaced by the undecorated one. Bodies over 1 MB are refused
    with a 413 before anything reads them as JSON.
    """
    patterns, app_name, namespace = api.urls
    for pattern in patterns:
        if pattern.name == "openapi-json":
            pattern.callback = partial(openapi_json, api=api)
        pattern.callback = login_not_required(limit_body(pattern.callback))
    return patterns, app_name, namespace
