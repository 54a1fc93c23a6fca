"""Helpers for the JSON API tests: post a body (JSON or raw bytes) with a bearer token."""

import json


def post_json(client, url: str, body, *, token: str | None = None, **headers):
    data = body if isinstance(body, bytes | str) else json.dumps(body)
    if token:
        headers["Authorization"] = f"Bearer {token}"
    return client.post(url, data=data, content_type="application/json", headers=headers)


def pointers(response) -> list[str]:
    return [e["pointer"] for e in response.json()["errors"]]
