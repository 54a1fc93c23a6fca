"""A 503 instead of a 500 while the database cannot be reached (a restart, a failover, a network cut).

It is Django's 500 handler rather than a middleware: Django turns an exception into the 500 handler's
response at every middleware layer, so a middleware would never see the first queries to fail, which are the
session and user look-ups that the authentication middleware makes before any view runs. The handler sees
every one of them.

Pages get the 503 page, rendered without touching the database (no user, no context processor but the CSP
nonce); the API (under /api/) gets JSON. Both say when to try again. Django still logs the error, with its
traceback, as it does for a 500.
"""

from __future__ import annotations

import sys

from django.db import InterfaceError, OperationalError
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.template.context_processors import csp
from django.template.loader import render_to_string
from django.views import defaults

DATABASE_UNAVAILABLE = (OperationalError, InterfaceError)
API_PREFIX = "/api/"
RETRY_AFTER_SECONDS = 5


def server_error(request: HttpRequest) -> HttpResponse:
    """handler500: the 503 when the exception being handled says the database is unreachable, else the 500."""
    if isinstance(sys.exc_info()[1], DATABASE_UNAVAILABLE):
        return database_unavailable(request)
    return defaults.server_error(request)


def database_unavailable(request: HttpRequest) -> HttpResponse:
    if request.path_info.startswith(API_PREFIX):
        response = JsonResponse(
            {
                "detail": "Temporarily unavailable: the database cannot be reached. Retry shortly "
                "(a write with the same Idempotency-Key)."
            },
            status=503,
        )
    else:
        response = HttpResponse(render_to_string("503.html", csp(request)), status=503)
    response["Retry-After"] = str(RETRY_AFTER_SECONDS)
    return response
