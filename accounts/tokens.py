"""API tokens: creation (shown once), lookup by hash, revocation."""

from __future__ import annotations

import datetime as dt
import hashlib
import secrets

from django.utils import timezone

from accounts.models import ApiToken

TOKEN_PREFIX = "upc_"  # noqa: S105 - a public marker that makes leaked tokens greppable, not a secret  # nosec B105
LAST_USED_RESOLUTION = dt.timedelta(minutes=1)
"""last_used_at is written at most this often per token, so busy integrations do not write per request."""


def token_hash(raw: str) -> str:
    return hashlib.sha256(raw.encode()).hexdigest()


def api_token_create(*, name: str, created_by=None) -> tuple[ApiToken, str]:
    """Create a token; returns the row and the raw token, which is not stored and cannot be shown again."""
    raw = TOKEN_PREFIX + secrets.token_urlsafe(32)
    token = ApiToken.objects.create(name=name, prefix=raw[:12], key_hash=token_hash(raw), created_by=created_by)
    return token, raw


def api_token_revoke(*, token: ApiToken, at: dt.datetime) -> ApiToken:
    ApiToken.objects.filter(pk=token.pk, revoked_at__isnull=True).update(revoked_at=at)
    token.refresh_from_db()
    return token


def api_token_authenticate(raw: str, *, at: dt.datetime | None = None) -> ApiToken | None:
    """The active token matching `raw`, or None. Touches last_used_at (coarsely)."""
    if not raw or not raw.startswith(TOKEN_PREFIX) or len(raw) > 200:
        return None
    token = ApiToken.objects.active().filter(key_hash=token_hash(raw)).first()
    if token is None:
        return None
    at = at or timezone.now()
    if token.last_used_at is None or at - token.last_used_at >= LAST_USED_RESOLUTION:
        ApiToken.objects.filter(pk=token.pk).update(last_used_at=at)
        token.last_used_at = at
    return token
