"""Benchmark: usage snapshots through the running API against a raw COPY of the same rows, same run.

    .venv/bin/python bench/ingest.py [--accounts 1000] [--days 20] [--batch 1000] [--clients 2]

Uses a PostgreSQL database of its own (created and migrated if missing), creates the accounts and an API
token (`manage.py create_api_token`), starts gunicorn on 127.0.0.1 with 2 workers on a free port, then
  - COPY: the accounts x 5 metrics x days rows into an empty usage table with one `COPY ... FROM STDIN`;
  - API: the same rows, emptied again, POSTed to /api/v1/usage in batches of --batch, over keep-alive
    connections from --clients threads (bodies are encoded before the clock starts).
Prints rows/s of each and the ratio (goal: the API at 25% or more of COPY's rate), and checks that both
stored the same rows. The indicator refresh that new usage triggers is enqueued to an in-process broker
and not run: it is the worker's cost, not the request's. All traffic stays on the loopback interface.
"""

from __future__ import annotations

import argparse
import datetime as dt
import http.client
import io
import json
import os
import random
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
PYTHON = str(ROOT / ".venv" / "bin" / "python")
GUNICORN = str(ROOT / ".venv" / "bin" / "gunicorn")
METRICS = ["seats", "storage_gb", "integrations", "api_calls", "projects"]


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--accounts", type=int, default=1000)
    parser.add_argument("--days", type=int, default=20, help="Days of snapshots per account and metric.")
    parser.add_argument("--batch", type=int, default=1000, help="Snapshots per request (the API takes 1,000).")
    parser.add_argument("--clients", type=int, default=2, help="Concurrent client connections.")
    parser.add_argument("--workers", type=int, default=2, help="gunicorn workers.")
    parser.add_argument(
        "--database-url",
        default=os.environ.get("BENCH_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/upsell_bench_ingest"),
    )
    return parser.parse_args()


def ensure_database(url: str) -> None:
    import psycopg

    name = url.rsplit("/", 1)[1]
    with psycopg.connect(url.rsplit("/", 1)[0] + "/postgres", autocommit=True) as conn:
        if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone():
            conn.execute(f'CREATE DATABASE "{name}"')


def server_env(database_url: str) -> dict:
    return {
        **os.environ,
        "DATABASE_URL": database_url,
        "DJANGO_DEBUG": "0",
        "DJANGO_SECURE_SSL_REDIRECT": "0",
        "DJANGO_ALLOWED_HOSTS": "127.0.0.1",
        "CELERY_BROKER_URL": "memory://",
        "CELERY_TASK_ALWAYS_EAGER": "0",
        "LOG_LEVEL": "ERROR",
        # No collectstatic and no broker host: both only warn, and would drown the figures.
        "PYTHONWARNINGS": "ignore::UserWarning",
    }


def manage(env: dict, *args: str) -> str:
    return subprocess.run(
        [PYTHON, "manage.py", *args], cwd=ROOT, env=env, check=True, capture_output=True, text=True, timeout=600
    ).stdout


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def seed_accounts(n: int) -> list[tuple[int, str]]:
    from django.db import connection

    from accounts.models import Account, Plan

    with connection.cursor() as cur:
        cur.execute("TRUNCATE accounts_usagesnapshot, accounts_account CASCADE")
    plans = list(Plan.objects.order_by("tier_rank"))
    Account.objects.bulk_create(
        (Account(external_id=f"bench-{i:06d}", name=f"Bench {i}", plan=plans[i % len(plans)]) for i in range(n)),
        batch_size=5000,
    )
    return list(Account.objects.order_by("external_id").values_list("pk", "external_id"))


def snapshot_rows(accounts: list[tuple[int, str]], days: int) -> list[tuple]:
    """(account id, external id, metric, value, day) in the order a product would send them: day by day."""
    rng = random.Random(7)
    start = dt.date(2026, 10, 1)
    return [
        (pk, external_id, metric, round(rng.uniform(0, 900), 2), (start + dt.timedelta(days=d)).isoformat())
        for d in range(days)
        for pk, external_id in accounts
        for metric in METRICS
    ]


def time_copy(rows: list[tuple]) -> float:
    from django.db import connection, transaction

    from accounts.models import Metric

    metric_ids = dict(Metric.objects.values_list("key", "id"))
    buf = io.StringIO()
    for pk, _, metric, value, day in rows:
        buf.write(f"{pk}\t{metric_ids[metric]}\t{value}\t{day}\n")
    data = buf.getvalue()
    with connection.cursor() as cur:
        cur.execute("TRUNCATE accounts_usagesnapshot")
        cur.execute("VACUUM ANALYZE accounts_usagesnapshot")
    t0 = time.perf_counter()
    with (
        transaction.atomic(),
        connection.cursor() as cur,
        cur.connection.cursor().copy(
            "COPY accounts_usagesnapshot (account_id, metric_id, value, captured_on) FROM STDIN"
        ) as copy,
    ):
        copy.write(data)
    return time.perf_counter() - t0


def stored_digest() -> tuple:
    from django.db import connection

    with connection.cursor() as cur:
        cur.execute(
            "SELECT count(*), round(sum(value)::numeric, 2), min(captured_on), max(captured_on) "
            "FROM accounts_usagesnapshot"
        )
        return cur.fetchone()


def wait_for(port: int, process: subprocess.Popen, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"gunicorn exited with {process.returncode}")
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
            conn.request("GET", "/api/v1/openapi.json")
            if conn.getresponse().status == 200:
                conn.close()
                return
        except OSError:
            time.sleep(0.2)
    raise SystemExit("gunicorn did not answer in time")


def post_batches(port: int, token: str, bodies: list[bytes], clients: int) -> tuple[float, list[str]]:
    """POST every body, `clients` at a time over keep-alive connections; returns seconds and any errors."""
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    queue = list(reversed(bodies))
    lock = threading.Lock()
    errors: list[str] = []

    def work() -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
        while True:
            with lock:
                if not queue:
                    break
                body = queue.pop()
            conn.request("POST", "/api/v1/usage", body=body, headers=headers)
            response = conn.getresponse()
            content = response.read()
            if response.status != 200:
                with lock:
                    errors.append(f"{response.status}: {content[:200]!r}")
        conn.close()

    threads = [threading.Thread(target=work) for _ in range(clients)]
    t0 = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return time.perf_counter() - t0, errors


def main() -> None:
    args = parse_args()
    ensure_database(args.database_url)
    env = server_env(args.database_url)
    os.environ.update({k: env[k] for k in ("DATABASE_URL", "CELERY_BROKER_URL", "CELERY_TASK_ALWAYS_EAGER")})
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "upsell_crm.settings")
    manage(env, "migrate", "--no-input")
    import django

    django.setup()

    accounts = seed_accounts(args.accounts)
    token = manage(env, "create_api_token", "bench ingest").strip().splitlines()[-1]
    rows = snapshot_rows(accounts, args.days)
    bodies = [
        json.dumps(
            {
                "snapshots": [
                    {"account": e, "metric": m, "value": v, "date": d} for _, e, m, v, d in rows[i : i + args.batch]
                ]
            }
        ).encode()
        for i in range(0, len(rows), args.batch)
    ]

    copy_seconds = time_copy(rows)
    copied = stored_digest()

    from django.db import connection

    with connection.cursor() as cur:
        cur.execute("TRUNCATE accounts_usagesnapshot")
        cur.execute("VACUUM ANALYZE accounts_usagesnapshot")
    connection.close()

    port = free_port()
    server = subprocess.Popen(
        [GUNICORN, "upsell_crm.wsgi", "--bind", f"127.0.0.1:{port}", "--workers", str(args.workers),
         "--timeout", "120", "--log-level", "warning"],
        cwd=ROOT, env=env, start_new_session=True,
    )  # fmt: skip
    try:
        wait_for(port, server)
        post_batches(port, token, [b'{"snapshots": []}'] * (2 * args.clients), args.clients)  # warm both workers
        api_seconds, errors = post_batches(port, token, bodies, args.clients)
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=30)
    posted = stored_digest()

    n = len(rows)
    api_rate, copy_rate = n / api_seconds, n / copy_seconds
    print()
    print(f"rows: {n:,} ({args.accounts:,} accounts x {len(METRICS)} metrics x {args.days} days)")
    print(f"API  : {len(bodies)} POST /api/v1/usage of {args.batch:,}, {args.clients} clients, {args.workers} workers")
    print(f"COPY   : {copy_seconds:7.2f} s   {copy_rate:10,.0f} rows/s")
    print(f"API    : {api_seconds:7.2f} s   {api_rate:10,.0f} rows/s")
    print(f"ratio API / COPY: {api_rate / copy_rate:.0%}   (goal: 25% or more)")
    print(f"same rows stored: {posted == copied}   ({posted[0]:,} rows, sum {posted[1]})")
    if errors:
        print(f"{len(errors)} requests failed, first: {errors[0]}")
        raise SystemExit(1)


if __name__ == "__main__":
    main()
