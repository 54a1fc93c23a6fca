"""Every URL of the app, found by walking the URLconf, turns an anonymous visitor away, except an explicit few.

Nobody keeps a hand list of URLs here: a new view, app, API endpoint or admin page is picked up on its own,
and it either sends anonymous visitors to a login page (or answers 401/403, as the API does) for every
method, or it is named in PUBLIC.
"""

from dataclasses import dataclass
from re import _constants as sre
from re import _parser as sre_parser
from urllib.parse import urlsplit

import pytest
from django.conf import settings
from django.shortcuts import resolve_url
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver, resolve, reverse

pytestmark = pytest.mark.django_db

# The only views an anonymous visitor may reach. Static files never reach the URLconf: WhiteNoise serves
# them ahead of it (see test_it_serves_static_files_to_anonymous_visitors).
PUBLIC = {
    "login",
    "healthz",
    "admin:login",
    # Integrators' code generators fetch the API schema without a session or token.
    "api-v1:openapi-json",
    # The API's root serves nothing (404 to everyone); its endpoints and docs are guarded.
    "api-v1:api-root",
    # Stripe cannot log in: its signature on the body (STRIPE_WEBHOOK_SECRET) guards the endpoint instead.
    "api-v1:stripe_webhook",
    # A customer unsubscribes from play emails without an account here: the signed token in the link is the key.
    "unsubscribe",
    # A customer answers an emailed survey without an account here: the signed token in the link is the key.
    "survey_public",
}
METHODS = ["get", "post", "put", "patch", "delete"]


@dataclass(frozen=True)
class Route:
    route: str  # the pattern as written, e.g. "accounts/<int:pk>/"
    name: str  # "namespace:name", or the route when the pattern has no name
    url: str  # a concrete URL that resolves to this pattern
    callback: object

    def __str__(self) -> str:
        return self.route


def walk(resolver: URLResolver, route: str = "", url: str = "/", namespaces: tuple = ()):
    for pattern in resolver.url_patterns:
        segment_route = route + str(pattern.pattern)
        segment_url = url + example(pattern.pattern.regex.pattern)
        if isinstance(pattern, URLResolver):
            inner = (*namespaces, pattern.namespace) if pattern.namespace else namespaces
            yield from walk(pattern, segment_route, segment_url, inner)
        elif isinstance(pattern, URLPattern):
            name = ":".join((*namespaces, pattern.name)) if pattern.name else segment_route
            yield Route(route=segment_route, name=name, url=segment_url, callback=pattern.callback)


def example(regex: str) -> str:
    """The shortest plausible string a URL regex matches: digits and letters where it asks for them."""
    return _example(sre_parser.parse(regex))


def _example(parsed) -> str:
    out = []
    for op, arg in parsed:
        if op is sre.LITERAL:
            out.append(chr(arg))
        elif op is sre.NOT_LITERAL:
            out.append("y" if chr(arg) == "x" else "x")
        elif op is sre.ANY:
            out.append("x")
        elif op is sre.IN:
            out.append(_pick(arg))
        elif op in (sre.MAX_REPEAT, sre.MIN_REPEAT, sre.POSSESSIVE_REPEAT):
            low, high, item = arg
            out.append(_example(item) * min(max(low, 1), high))
        elif op is sre.SUBPATTERN:
            out.append(_example(arg[-1]))
        elif op is sre.ATOMIC_GROUP:
            out.append(_example(arg))
        elif op is sre.BRANCH:
            out.append(_example(arg[1][0]))
        elif op is sre.AT:
            continue
        else:
            raise NotImplementedError(f"no example for regex element {op}")
    return "".join(out)


def _pick(items) -> str:
    """A character of a [...] class, preferring ones that read well in a URL."""
    for char in "1xa-_":
        if _in_class(char, items):
            return char
    raise NotImplementedError(f"no example character for {items}")


CATEGORIES = {
    sre.CATEGORY_DIGIT: str.isdigit,
    sre.CATEGORY_NOT_DIGIT: lambda c: not c.isdigit(),
    sre.CATEGORY_WORD: lambda c: c.isalnum() or c == "_",
    sre.CATEGORY_NOT_WORD: lambda c: not (c.isalnum() or c == "_"),
    sre.CATEGORY_SPACE: str.isspace,
    sre.CATEGORY_NOT_SPACE: lambda c: not c.isspace(),
}


def _in_class(char: str, items) -> bool:
    negate = False
    hit = False
    for op, arg in items:
        if op is sre.NEGATE:
            negate = True
        elif op is sre.LITERAL:
            hit = hit or ord(char) == arg
        elif op is sre.RANGE:
            hit = hit or arg[0] <= ord(char) <= arg[1]
        elif op is sre.CATEGORY:
            hit = hit or CATEGORIES[arg](char)
    return hit != negate


ROUTES = list(walk(get_resolver()))
LOGIN_PATHS = {resolve_url(settings.LOGIN_URL), reverse("admin:login")}


def is_turned_away(client: Client, method: str, url: str) -> bool:
    """Whether an anonymous request ends at a login page (following a redirect or two), is refused, or finds
    no view for its method (405: every method is tried, so a view serving any of them is found)."""
    response = getattr(client, method)(url)
    for _ in range(3):
        if response.status_code in (401, 403, 405):
            return True
        if response.status_code not in (301, 302, 303, 307, 308):
            return False
        location = urlsplit(response["Location"])
        if location.path in LOGIN_PATHS:
            return True
        # e.g. the admin's logout sends an anonymous visitor to the admin index, which asks for a login.
        response = client.get(location.path)
    return False


@pytest.fixture
def anonymous():
    # A crashing view counts as reachable, not as an error of this test.
    return Client(raise_request_exception=False)


def test_it_walks_every_app_and_the_admin():
    names = {route.name for route in ROUTES}

    assert {"home", "accounts:detail", "admin:index", "admin:accounts_account_changelist"} <= names
    assert len(ROUTES) > 50


def test_it_builds_a_url_for_every_pattern_that_resolves_back_to_it():
    for route in ROUTES:
        match = resolve(route.url)
        assert match.func is route.callback, f"{route.url} does not resolve to {route.route}"
        assert match.route == route.route.replace("/^", "/"), f"{route.url} does not resolve to {route.route}"


def test_it_lists_only_public_urls_that_exist():
    assert PUBLIC - {route.name for route in ROUTES} == set()


@pytest.mark.parametrize("route", [r for r in ROUTES if r.name not in PUBLIC], ids=str)
def test_it_sends_anonymous_visitors_to_a_login_page(anonymous, route):
    for method in METHODS:
        assert is_turned_away(anonymous, method, route.url), f"{method.upper()} {route.url} is open to anyone"


@pytest.mark.parametrize("route", [r for r in ROUTES if r.name in PUBLIC], ids=str)
def test_it_lets_anonymous_visitors_reach_the_public_urls(anonymous, route):
    reachable = [method for method in METHODS if not is_turned_away(anonymous, method, route.url)]

    assert reachable, f"{route.name} is in PUBLIC but turns anonymous visitors away"


def test_it_serves_static_files_to_anonymous_visitors(settings):
    settings.WHITENOISE_USE_FINDERS = True

    response = Client().get("/static/vendor/plotly.min.js")

    assert response.status_code == 200
    assert "javascript" in response["Content-Type"]
