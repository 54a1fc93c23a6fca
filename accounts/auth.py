"""Bearer-token authentication for the JSON API (django-ninja)."""

from django.http import HttpRequest
from ninja.security import HttpBearer

from accounts.tokens import api_token_authenticate


class ApiTokenAuth(HttpBearer):
    """`Authorization: Bearer <token>` with an active ApiToken; the token is kept on request.api_token."""

    def authenticate(self, request: HttpRequest, token: str):
        api_token = api_token_authenticate(token)
        if api_token is not None:
            request.api_token = api_token
        return api_token
