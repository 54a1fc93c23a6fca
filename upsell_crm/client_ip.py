"""The client's address for login throttling, behind a known number of proxies.

Each proxy appends the address it received the request from to X-Forwarded-For, so with N trusted proxies in
front the client is the N-th entry from the right; entries further left were written by the client and prove
nothing. With no proxies configured (TRUSTED_PROXY_COUNT=0), or a header that is missing, short or malformed,
the connection's own address counts.
"""

from __future__ import annotations

import ipaddress

from django.conf import settings
from django.http import HttpRequest


def client_ip(request: HttpRequest) -> str | None:
    remote = request.META.get("REMOTE_ADDR")
    proxies = settings.TRUSTED_PROXY_COUNT
    if proxies <= 0:
        return remote
    hops = [hop.strip() for hop in request.META.get("HTTP_X_FORWARDED_FOR", "").split(",") if hop.strip()]
    if len(hops) < proxies:
        return remote
    candidate = hops[-proxies]
    try:
        return str(ipaddress.ip_address(candidate))
    except ValueError:
        return remote
