"""The public unsubscribe page of play and survey emails: /unsubscribe/<signed token>/, no sign-in."""

from __future__ import annotations

from django.contrib.auth.decorators import login_not_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils import timezone
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_http_methods

from playbooks.unsubscribe import email_opt_out_record, email_opted_out, unsubscribe_ref

TEMPLATE = "sequences/unsubscribe.html"


@login_not_required
@csrf_exempt
@require_http_methods(["GET", "POST"])
def unsubscribe(request: HttpRequest, token: str) -> HttpResponse:
    """GET: the address and a button to confirm; it writes nothing (mail scanners open links). POST: the
    address is opted out of every play and survey email, for good, and the page says so; a repeat changes nothing.

    The POST also serves RFC 8058's one-click unsubscribe: the mail provider posts
    `List-Unsubscribe=One-Click` to the URL of the `List-Unsubscribe` header, without cookies or a CSRF
    token. So the view is CSRF-exempt: the signed token in the URL, which only the email's recipient has, is
    what authorises the request, and the only thing it can do is stop emails to that address.

    A token that was not issued here, was altered or is malformed answers 400 with a message.
    """
    ref = unsubscribe_ref(token)
    if ref is None:
        return render(request, TEMPLATE, {"state": "invalid"}, status=400)
    if request.method == "POST":
        opt_out = email_opt_out_record(ref=ref, at=timezone.now())
        return render(request, TEMPLATE, {"state": "done", "email": ref.email, "opt_out": opt_out})
    opt_out = email_opted_out(ref.email)
    return render(
        request,
        TEMPLATE,
        {"state": "done" if opt_out else "confirm", "email": ref.email, "opt_out": opt_out, "token": token},
    )
