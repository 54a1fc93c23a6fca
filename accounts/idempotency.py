"""`Idempotency-Key` for the API's writes: a retried request gets the first answer instead of a second write.

The same key with the same request replays the stored response byte for byte, with its status and an
`Idempotent-Replayed: true` header; the same key with another request is refused (422). Keys belong to the
token that sent them and are remembered for 24 hours. Only applied writes (2xx) are remembered, in the same
transaction as the write: a rejected request stored nothing, so it can be fixed and sent again under its key.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Callable

from django.db import IntegrityError, transaction
from django.http import HttpRequest, HttpResponse

from accounts.api_errors import invalid_response, json_response
from accounts.models import IdempotencyKey

HEADER = "Idempotency-Key"
REMEMBERED_FOR = dt.timedelta(hours=24)


def request_fingerprint(request: HttpRequest) -> str:
    """SHA-256 of method, path and raw body: what must match for a replay."""
    digest = hashlib.sha256(f"{request.method} {request.path}\n".encode())
    digest.update(request.body)
    return digest.hexdigest()


def _replay(stored: IdempotencyKey, fingerprint: str) -> HttpResponse:
    if stored.fingerprint != fingerprint:
        return invalid_response(
            [{"pointer": "", "message": f"This {HEADER} was used with another request; use a new key."}],
            detail=f"{HEADER} reused with another request.",
        )
    response = HttpResponse(bytes(stored.response_body), status=stored.status_code, content_type=stored.content_type)
    response["Idempotent-Replayed"] = "true"
    return response


def _conflict() -> HttpResponse:
    return json_response({"detail": "A concurrent request wrote the same rows; send this one again."}, status=409)


def idempotent_write(request: HttpRequest, write: Callable[[], HttpResponse], *, at: dt.datetime) -> HttpResponse:
    """Run `write` (which validates, writes and answers) once per idempotency key, in one transaction.

    A unique-constraint race with a concurrent request (the same key, or the same new rows) answers with the
    replay or a 409 instead of an error page.
    """
    key = request.headers.get(HEADER)
    if key is None:
        try:
            with transaction.atomic():
                return write()
        except IntegrityError:
            return _conflict()
    if not 1 <= len(key) <= 255 or not key.isascii() or not key.isprintable():
        return json_response({"detail": f"{HEADER} must be 1 to 255 printable ASCII characters."}, status=400)
    token = request.auth
    fingerprint = request_fingerprint(request)
    try:
        with transaction.atomic():
            stored = IdempotencyKey.objects.filter(token=token, key=key).first()
            if stored is not None and stored.created_at < at - REMEMBERED_FOR:
                stored.delete()
                stored = None
            if stored is not None:
                return _replay(stored, fingerprint)
            response = write()
            if 200 <= response.status_code < 300:
                IdempotencyKey.objects.create(
                    token=token,
                    key=key,
                    fingerprint=fingerprint,
                    status_code=response.status_code,
                    content_type=response["Content-Type"],
                    response_body=response.content,
                    created_at=at,
                )
            return response
    except IntegrityError:
        stored = IdempotencyKey.objects.filter(token=token, key=key).first()
        return _replay(stored, fingerprint) if stored is not None else _conflict()


def idempotency_keys_purge(*, before: dt.datetime) -> int:
    """Delete keys older than `before` (lookups ignore them already); returns how many went."""
    deleted, _ = IdempotencyKey.objects.filter(created_at__lt=before).delete()
    return deleted
