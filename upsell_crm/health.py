"""GET /healthz: is the database reachable, is the broker reachable. Public, JSON, never cached.

Load balancers and process supervisors poll it, so every check has a short timeout and nothing here raises:
a failing dependency is reported as text under its name and turns the answer into a 503.
"""

from collections.abc import Callable

from django.conf import settings
from django.contrib.auth.decorators import login_not_required
from django.db import connection, transaction
from django.http import HttpRequest, JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET
from kombu import Connection

OK = "ok"
TIMEOUT_SECONDS = 2
# Error texts are public: long enough to tell what failed, too short to dump a configuration.
MAX_ERROR_LENGTH = 200


def database_check() -> None:
    """A trivial query. PostgreSQL gets a statement timeout scoped to this transaction only."""
    with transaction.atomic(), connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute("SELECT set_config('statement_timeout', %s, true)", [f"{TIMEOUT_SECONDS * 1000}"])
        cursor.execute("SELECT 1")
        cursor.fetchone()


def broker_check() -> None:
    """Open a connection to the Celery broker once, without the long retry loop a worker would use."""
    with Connection(
        settings.CELERY_BROKER_URL,
        connect_timeout=TIMEOUT_SECONDS,
        transport_options={"socket_timeout": TIMEOUT_SECONDS, "socket_connect_timeout": TIMEOUT_SECONDS},
    ) as broker:
        broker.ensure_connection(max_retries=1, interval_start=0, interval_step=0, timeout=TIMEOUT_SECONDS)


CHECKS: dict[str, Callable[[], None]] = {"database": database_check, "broker": broker_check}


def run_check(check: Callable[[], None]) -> str:
    try:
        check()
    except Exception as exc:  # any failure is a result to report, never a crash
        text = f"{type(exc).__name__}: {exc}".strip().rstrip(":")
        return text[:MAX_ERROR_LENGTH]
    return OK


@login_not_required
@never_cache
@require_GET
def healthz(request: HttpRequest) -> JsonResponse:
    checks = {name: run_check(check) for name, check in CHECKS.items()}
    healthy = all(result == OK for result in checks.values())
    return JsonResponse({"status": "ok" if healthy else "failing", "checks": checks}, status=200 if healthy else 503)
