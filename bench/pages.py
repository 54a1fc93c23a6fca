"""Benchmark: the queue and the account page against two baselines, served by gunicorn, same run, same load.

    .venv/bin/python bench/pages.py [--accounts 20000] [--concurrency 8] [--seconds 15] [--warmup 1] [--rounds 3]

Seeds the demo (`manage.py seed_demo`, pipeline included) into a PostgreSQL database of its own, once: later
runs reuse it while the account count matches. Starts gunicorn (2 sync workers, persistent database
connections with prepared statements, Redis as the cache, DEBUG off) on 127.0.0.1 with
bench/pages_settings.py, logs in as csm1 through the login form and loads each endpoint in turn (three turns
each, see --rounds), at the same concurrency over keep-alive connections:
  - bare     : /bench/bare/, a view returning a short string;
  - rows     : /bench/rows/, the queue's first 50 rows from one indexed query in a plain template, no layout;
  - queue    : /queue/, 50 rows a page (the bench raises the page size to the goal's 50 rows);
  - account  : /accounts/<pk>/, an account of csm1's with an open opportunity (the best-scored: the goal's);
  - busy     : /accounts/<pk>/, csm1's account with an open opportunity and the most plays, tasks and MRR
               movements (reported, no goal);
  - timeline : /accounts/<pk>/timeline/ as htmx asks for it, the entries the account page loads after itself.
Every endpoint sits behind the same middleware and session. Prints requests/s, p50 and p95 of each, the
ratios, the requests that did not answer 200, and whether the goals hold.
"""

from __future__ import annotations

import argparse
import http.client
import multiprocessing
import os
import re
import signal
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import urlencode

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

PYTHON = str(ROOT / ".venv" / "bin" / "python")
GUNICORN = str(ROOT / ".venv" / "bin" / "gunicorn")
SETTINGS = "bench.pages_settings"
AS_OF = "2026-11-20"
USERNAME, PASSWORD = "csm1", "demo"
QUEUE_ROWS = 50


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--accounts", type=int, default=20_000)
    parser.add_argument("--concurrency", type=int, default=8, help="Clients, each on its own connection.")
    parser.add_argument("--seconds", type=float, default=15, help="Measured seconds per endpoint, over all rounds.")
    parser.add_argument("--warmup", type=float, default=1, help="Unmeasured seconds before each endpoint's turn.")
    parser.add_argument(
        "--rounds",
        type=int,
        default=3,
        help="The endpoints take turns this many times, so that a slower minute of the machine weighs on all of "
        "them alike rather than on whichever endpoint it fell on.",
    )
    parser.add_argument("--workers", type=int, default=2, help="gunicorn workers.")
    parser.add_argument(
        "--database-url",
        default=os.environ.get("BENCH_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/upsell_bench_pages"),
    )
    parser.add_argument(
        "--cache-url",
        default=os.environ.get("BENCH_CACHE_URL", "redis://127.0.0.1:6379/3"),
        help="The Redis database the app caches in, as in production; the bench empties it first.",
    )
    return parser.parse_args()


def ensure_database(url: str) -> None:
    import psycopg

    name = url.rsplit("/", 1)[1]
    with psycopg.connect(url.rsplit("/", 1)[0] + "/postgres", autocommit=True) as conn:
        if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone():
            conn.execute(f'CREATE DATABASE "{name}"')


def server_env(database_url: str, cache_url: str) -> dict:
    return {
        **os.environ,
        "DATABASE_URL": database_url,
        "CACHE_URL": cache_url,
        "DJANGO_SETTINGS_MODULE": SETTINGS,
        "DJANGO_DEBUG": "0",
        "DJANGO_SECURE_SSL_REDIRECT": "0",
        "DJANGO_ALLOWED_HOSTS": "127.0.0.1",
        "CELERY_BROKER_URL": "memory://",
        "CELERY_TASK_ALWAYS_EAGER": "1",
        "LOG_LEVEL": "ERROR",
        # No STATIC_ROOT and no broker host: both only warn, and would drown the figures.
        "PYTHONWARNINGS": "ignore::UserWarning",
    }


def manage(env: dict, *args: str, timeout: float = 600) -> str:
    return subprocess.run(
        [PYTHON, "manage.py", *args], cwd=ROOT, env=env, check=True, capture_output=True, text=True, timeout=timeout
    ).stdout


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def ensure_demo(env: dict, n_accounts: int) -> None:
    from accounts.models import Account

    if Account.objects.count() == n_accounts:
        print(f"data: reusing {n_accounts:,} demo accounts")
    else:
        t0 = time.perf_counter()
        manage(env, "seed_demo", "--reset", "--accounts", str(n_accounts), "--as-of", AS_OF, timeout=1200)
        print(f"data: seeded {n_accounts:,} demo accounts (pipeline included) in {time.perf_counter() - t0:.0f} s")
    # Fresh statistics: right after a bulk seed the planner still thinks the tables are empty and picks
    # plans no production database would run. VACUUM too, as autovacuum would have by then in production:
    # index-only scans (the queue's count and ranking) need the visibility map it sets.
    from django.db import connection

    with connection.cursor() as cur:
        cur.execute("VACUUM ANALYZE")


def pick_account() -> tuple[int, int]:
    """An account of csm1's with an open opportunity (the best-scored), and csm1's open opportunities."""
    from opportunities.models import Opportunity, Outcome

    mine = Opportunity.objects.filter(owner__username=USERNAME, outcome=Outcome.OPEN)
    top = mine.order_by("-score", "pk").values_list("account_id", flat=True).first()
    if top is None:
        raise SystemExit(f"{USERNAME} has no open opportunity; reseed with --accounts")
    return top, mine.count()


def pick_busy_account() -> int:
    """An account of csm1's with an open opportunity and the most going on: tasks, plays and MRR movements.

    The best-scored account has none of those in the demo's data, so its page skips nothing but draws
    little; this one shows what those panels cost."""
    from django.db.models import Count, F

    from accounts.models import Account

    busiest = (
        Account.objects.filter(opportunities__owner__username=USERNAME, opportunities__outcome="open")
        .annotate(
            n_plays=Count("enrollments", distinct=True),
            n_tasks=Count("tasks", distinct=True),
            n_movements=Count("mrr_movements", distinct=True),
        )
        .annotate(n_all=F("n_tasks") + F("n_plays") + F("n_movements"))
        .order_by("-n_all", "-n_tasks", "-n_plays", "pk")
        .values_list("pk", flat=True)
        .first()
    )
    if busiest is None:
        raise SystemExit(f"{USERNAME} has no open opportunity; reseed with --accounts")
    return busiest


def wait_for(port: int, process: subprocess.Popen, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"gunicorn exited with {process.returncode}")
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
            conn.request("GET", "/healthz")
            status = conn.getresponse().status
            conn.close()
            if status == 200:
                return
        except OSError:
            pass
        time.sleep(0.2)
    raise SystemExit("gunicorn did not answer in time")


def cookies_of(response: http.client.HTTPResponse) -> dict[str, str]:
    cookies = {}
    for header in response.headers.get_all("Set-Cookie") or []:
        name, _, rest = header.partition("=")
        cookies[name.strip()] = rest.split(";", 1)[0]
    return cookies


def log_in(port: int) -> str:
    """Log in through the login form once; returns the Cookie header every client sends."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    conn.request("GET", "/login/")
    response = conn.getresponse()
    page = response.read().decode()
    csrf_cookie = cookies_of(response)["csrftoken"]
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page).group(1)
    body = urlencode({"username": USERNAME, "password": PASSWORD, "csrfmiddlewaretoken": token})
    headers = {"Content-Type": "application/x-www-form-urlencoded", "Cookie": f"csrftoken={csrf_cookie}"}
    conn.request("POST", "/login/", body=body, headers=headers)
    response = conn.getresponse()
    response.read()
    cookies = cookies_of(response)
    conn.close()
    if response.status != 302 or "sessionid" not in cookies:
        raise SystemExit(f"login as {USERNAME} failed: {response.status}")
    return f"csrftoken={csrf_cookie}; sessionid={cookies['sessionid']}"


# Requests whose path ends with this are sent as htmx sends them.
HTMX_PATHS = ("/timeline/",)


def headers_for(path: str, cookie: str) -> dict:
    return {"Cookie": cookie, **({"HX-Request": "true"} if path.endswith(HTMX_PATHS) else {})}


def get(port: int, path: str, cookie: str) -> tuple[int, str]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    conn.request("GET", path, headers=headers_for(path, cookie))
    response = conn.getresponse()
    body = response.read().decode()
    conn.close()
    return response.status, body


def client(port: int, path: str, cookie: str, start: float, measure_from: float, stop: float):
    """One client on one keep-alive connection: latencies of the requests made between measure_from and stop.

    Clients are processes, not threads, so that the load generator's GIL caps no endpoint's rate.
    """
    headers = headers_for(path, cookie)
    latencies: list[float] = []
    errors: list[str] = []
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    while time.time() < start:
        time.sleep(0.001)
    while True:
        t0 = time.time()
        if t0 >= stop:
            break
        try:
            conn.request("GET", path, headers=headers)
            response = conn.getresponse()
            response.read()
            status = response.status
        except (OSError, http.client.HTTPException) as exc:
            status = f"{type(exc).__name__}"
            conn.close()
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        t1 = time.time()
        if t0 >= measure_from and t1 <= stop:
            latencies.append(t1 - t0)
            if status != 200:
                errors.append(str(status))
    conn.close()
    return latencies, errors


def load(port: int, path: str, cookie: str, *, concurrency: int, warmup: float, seconds: float) -> tuple[list, list]:
    """One turn of one endpoint: the latencies measured, and the failures."""
    start = time.time() + 1.0  # every client process is up before the clock starts
    measure_from = start + warmup
    stop = measure_from + seconds
    with multiprocessing.get_context("spawn").Pool(concurrency) as pool:
        results = pool.starmap(client, [(port, path, cookie, start, measure_from, stop)] * concurrency)
    return [latency for part, _ in results for latency in part], [error for _, part in results for error in part]


def summary(turns: list[tuple[list, list]], *, seconds: float) -> dict:
    latencies = sorted(latency for part, _ in turns for latency in part)
    errors = [error for _, part in turns for error in part]
    quantiles = statistics.quantiles(latencies, n=100, method="inclusive")
    return {
        "requests": len(latencies),
        "rate": len(latencies) / seconds,
        "p50": quantiles[49] * 1000,
        "p95": quantiles[94] * 1000,
        "errors": errors,
    }


def main() -> None:
    args = parse_args()
    started = time.monotonic()
    ensure_database(args.database_url)
    env = server_env(args.database_url, args.cache_url)
    os.environ.update({k: env[k] for k in ("DATABASE_URL", "CACHE_URL", "DJANGO_SETTINGS_MODULE", "CELERY_BROKER_URL")})
    import redis

    redis.Redis.from_url(args.cache_url).flushdb()
    manage(env, "migrate", "--no-input")
    import django

    django.setup()
    ensure_demo(env, args.accounts)
    account_id, open_count = pick_account()
    busy_id = pick_busy_account()
    from django.db import connection

    from opportunities.views import QUEUE_PER_PAGE

    connection.close()

    endpoints = [
        ("bare", "/bench/bare/"),
        ("rows", "/bench/rows/"),
        ("queue", "/queue/"),
        ("account", f"/accounts/{account_id}/"),
        ("busy", f"/accounts/{busy_id}/"),
        ("timeline", f"/accounts/{account_id}/timeline/"),
    ]
    port = free_port()
    server = subprocess.Popen(
        [GUNICORN, "upsell_crm.wsgi", "--bind", f"127.0.0.1:{port}", "--workers", str(args.workers),
         "--worker-class", "sync", "--timeout", "60", "--log-level", "warning"],
        cwd=ROOT, env=env, start_new_session=True,
    )  # fmt: skip
    results = {}
    try:
        wait_for(port, server)
        cookie = log_in(port)
        # Each page once: it must answer 200 with the rows it should show.
        for name, path in endpoints:
            status, body = get(port, path, cookie)
            if status != 200:
                raise SystemExit(f"{name} {path} answered {status}")
            if name == "rows":
                rows_shown = body.count('class="bench-row"')
            elif name == "queue":
                queue_shown = len(re.findall(r'<tr id="queue-row-\d+"', body))
        turns: dict[str, list] = {name: [] for name, _path in endpoints}
        for _round in range(args.rounds):
            for name, path in endpoints:
                turn = load(
                    port,
                    path,
                    cookie,
                    concurrency=args.concurrency,
                    warmup=args.warmup,
                    seconds=args.seconds / args.rounds,
                )
                turns[name].append(turn)
        results = {name: summary(taken, seconds=args.seconds) for name, taken in turns.items()}
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait(timeout=10)

    print()
    print(
        f"accounts: {args.accounts:,}   user: {USERNAME} ({open_count:,} open opportunities)   "
        f"gunicorn: {args.workers} sync workers   concurrency: {args.concurrency}   "
        f"{args.seconds:g} s per endpoint in {args.rounds} turns, each after {args.warmup:g} s warm-up"
    )
    print(
        f"rows shown: bench/rows {rows_shown}, queue {queue_shown} "
        f"(the queue's page size is {QUEUE_PER_PAGE}; bench/pages_urls.py raises it to {QUEUE_ROWS})"
    )
    print(f"{'endpoint':<38} {'requests':>9} {'req/s':>9} {'p50 ms':>8} {'p95 ms':>8} {'not 200':>8}")
    for name, path in endpoints:
        r = results[name]
        label = f"{name:<9}{path}"
        print(
            f"{label:<38} {r['requests']:>9,} {r['rate']:>9,.1f} {r['p50']:>8.1f} {r['p95']:>8.1f} "
            f"{len(r['errors']):>8}"
        )
    bare, rows, queue, account = (results[name] for name in ("bare", "rows", "queue", "account"))
    timeline = results["timeline"]
    print()
    print(f"ratio queue / bare 50-row page req/s: {queue['rate'] / rows['rate']:.0%}")
    print(f"ratio account / bare 50-row page req/s: {account['rate'] / rows['rate']:.0%}")
    print(f"ratio busy account / bare 50-row page req/s: {results['busy']['rate'] / rows['rate']:.0%}")
    print(f"ratio bare 50-row page / bare view req/s: {rows['rate'] / bare['rate']:.0%}")
    both = 1 / (1 / account["rate"] + 1 / timeline["rate"])
    print(
        f"account page and its timeline together: {both:.1f} pairs/s, {both / rows['rate']:.0%} of the bare 50-row page"
    )
    print()
    goals = [
        ("queue req/s >= 50% of the bare 50-row page's", queue["rate"] >= 0.5 * rows["rate"]),
        (f"queue p95 <= 50 ms at concurrency {args.concurrency}", queue["p95"] <= 50),
        ("account page p95 <= 100 ms", account["p95"] <= 100),
        ("every request answered 200", not any(r["errors"] for r in results.values())),
        (f"queue shows {QUEUE_ROWS} rows", queue_shown == QUEUE_ROWS),
    ]
    for label, held in goals:
        print(f"goal: {label:<48} {'holds' if held else 'FAILS'}")
    for name, r in results.items():
        if r["errors"]:
            print(f"{name}: {len(r['errors'])} requests failed, first: {r['errors'][0]}")
    print(f"total: {time.monotonic() - started:.0f} s")
    if not all(held for _, held in goals):
        raise SystemExit(1)


if __name__ == "__main__":
    main()
