"""Every refused request leaves a line on the `upsell_crm.security` logger.

Refused means an answer of 401 (the API without a valid token), 403 (a role without the right) or 404 for
someone signed in or holding an API token: object-level checks answer 404 so that another CSM's account or
opportunity does not even seem to exist, and those 404s are the refusals worth an audit trail. A 404 for an
anonymous visitor is not logged: it is a crawler or a mistyped address, there is nobody to hold to account,
and logging it would let anyone fill the logs. Anonymous visitors sent to the login page are not refused
either, only asked who they are.

The line names the method, the path (never the query string, which may carry a token), the status, who
asked (a user id, an API token id, or anonymous) and their role; never a header, a cookie or a body.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from django.http import HttpRequest, HttpResponse
from django.utils.encoding import escape_uri_path

from accounts.roles import role_of

logger = logging.getLogger("upsell_crm.security")

REFUSED_STATUSES = frozenset({401, 403, 404})
MAX_PATH_LENGTH = 300
"""Longer paths are cut: a refused request should not be able to write a megabyte into the log."""


def requester(request: HttpRequest) -> tuple[str, str]:
    """Who made the request and in which role: ("api_token:7", "api_token"), ("user:3", "CSM") or
    ("anonymous", "anonymous").

    The API authenticates inside the view (django-ninja), which leaves the token on `request.api_token`;
    this is read after the view has answered, so the token is known by then.
    """
    token = getattr(request, "api_token", None)
    if token is not None:
        return f"api_token:{token.pk}", "api_token"
    user = getattr(request, "user", None)
    if user is not None and user.is_authenticated:
        role = role_of(user)
        return f"user:{user.pk}", role.value if role else "none"
    return "anonymous", "anonymous"


def refusal_log(request: HttpRequest, status: int) -> None:
    who, role = requester(request)
    if status == 404 and who == "anonymous":
        return
    # Percent-encoded again, so a path holding a newline cannot forge a second log line.
    path = escape_uri_path(request.path)[:MAX_PATH_LENGTH]
    logger.warning(
        "refused %s %s status=%s by=%s role=%s",
        request.method,
        path,
        status,
        who,
        role,
        extra={"method": request.method, "path": path, "status": status, "requester": who, "role": role},
    )


class RefusalLogMiddleware:
    """Logs refused requests (see the module docstring).

    It wraps CommonMiddleware, CSRF, authentication and the view, so every answer they give passes through
    it (the 403 of a CSRF failure and the 404 of an unknown address included), after CommonMiddleware has
    turned a 404 of a missing trailing slash into its redirect. `request.user`, set on the way in by
    AuthenticationMiddleware, is read on the way out."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        if response.status_code in REFUSED_STATUSES:
            refusal_log(request, response.status_code)
        return response
