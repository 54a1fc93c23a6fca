"""How the JSON API answers requests it cannot take: 400 malformed, 413 too large, 422 with JSON pointers.

Every error body has a `detail`; validation errors add `errors`, one per problem:
`{"detail": "...", "errors": [{"pointer": "/snapshots/3/date", "message": "Use a date as YYYY-MM-DD."}]}`.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable, Iterable, Sequence

from django.core.exceptions import RequestDataTooBig
from django.http import HttpRequest, HttpResponse
from ninja import Schema
from ninja.errors import ValidationError
from ninja.parser import Parser

from accounts.ingest import FieldError, error_message

MAX_BODY_BYTES = 1024 * 1024
"""Largest request body the API reads (1 MB); a full batch of 1,000 items takes well under half of it."""

INVALID_DETAIL = "The request is invalid; nothing was stored."


# The error bodies as the OpenAPI schema documents them, shared by every router.
class ErrorItem(Schema):
    pointer: str
    message: str


class Invalid(Schema):
    detail: str
    errors: list[ErrorItem] = []


class Detail(Schema):
    detail: str


def json_response(body: object, *, status: int = 200) -> HttpResponse:
    return HttpResponse(json.dumps(body).encode(), status=status, content_type="application/json")


def pointer(parts: Iterable[str | int]) -> str:
    """An RFC 6901 JSON pointer: "/snapshots/3/date"; "" is the whole body."""
    return "".join("/" + str(p).replace("~", "~0").replace("/", "~1") for p in parts)


def invalid_response(errors: Sequence[dict], *, detail: str = INVALID_DETAIL) -> HttpResponse:
    return json_response({"detail": detail, "errors": list(errors)}, status=422)


def ingest_errors_response(errors: Sequence[FieldError], *, collection: str) -> HttpResponse:
    return invalid_response([{"pointer": e.pointer(collection), "message": e.message} for e in errors])


def validation_errors(exc: ValidationError) -> list[dict]:
    """ninja's pydantic errors as pointers into the body (their loc is ("body", <parameter>, *path))."""
    result = []
    for error in exc.errors:
        loc = list(error.get("loc", ()))
        path = loc[2:] if loc[:1] == ["body"] else loc
        result.append({"pointer": pointer(path), "message": error_message(error)})
    return result


def validation_error_handler(request: HttpRequest, exc: ValidationError) -> HttpResponse:
    if not request.body and any(e.get("type") == "missing" and len(e.get("loc", ())) <= 2 for e in exc.errors):
        return json_response({"detail": "The request has no body: send a JSON object."}, status=400)
    return invalid_response(validation_errors(exc))


def _refuse_constant(name: str) -> float:
    raise ValueError(f"{name} is not JSON")


def json_loads(body: bytes) -> object:
    """Strict JSON: NaN and Infinity, which Python's json module accepts, are malformed."""
    return json.loads(body, parse_constant=_refuse_constant)


class StrictJsonParser(Parser):
    def parse_body(self, request: HttpRequest):
        return json_loads(request.body)


def too_large_response() -> HttpResponse:
    return json_response({"detail": f"The request body is larger than {MAX_BODY_BYTES:,} bytes."}, status=413)


def limit_body(view: Callable) -> Callable:
    """Refuse bodies over MAX_BODY_BYTES with a 413 before anything parses them.

    Content-Length is checked first, then the bytes actually read (a server may pass a body without one).
    """

    @functools.wraps(view)
    def limited(request: HttpRequest, *args, **kwargs) -> HttpResponse:
        try:
            length = int(request.META.get("CONTENT_LENGTH") or 0)
        except ValueError:
            return json_response({"detail": "Content-Length is not a number."}, status=400)
        if length > MAX_BODY_BYTES:
            return too_large_response()
        if request.method in ("POST", "PUT", "PATCH"):
            try:
                if len(request.body) > MAX_BODY_BYTES:
                    return too_large_response()
            except RequestDataTooBig:
                return too_large_response()
        return view(request, *args, **kwargs)

    return limited
