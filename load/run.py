"""Load test: load/locustfile.py against the production stack, headless and bounded, on loopback only.

    .venv/bin/python load/run.py            # 20,000 accounts, 40 users, 3 minutes (`make load`)
    .venv/bin/python load/run.py --smoke    # 2,000 accounts, 10 users, 30 seconds (.ci/run)

Options: --accounts, --users, --spawn-rate, --run-time, --wait and --manager-wait (think times), --ingest-users,
--workers, --reseed, --keep-database, --database-url, --cache-url and --broker-url (or LOAD_DATABASE_URL,
LOAD_CACHE_URL, LOAD_BROKER_URL).

Sets up, all on 127.0.0.1:
  - PostgreSQL: the run's own database (default upsell_load), created fresh from a template database
    (<name>_template_<accounts>) that holds the migrated schema and `seed_demo --accounts N` (pipeline
    included), vacuumed and analyzed. The template is seeded once and reused while the migrations, the demo's
    code and the day stay the same: seeding 20,000 accounts (12 million usage rows) takes minutes, cloning
    the template seconds. --reseed seeds it again.
  - Redis: a cache and a broker database of the run's own (default db 10 and 11), emptied before and after.
    No other Redis database is touched.
  - an API token (`manage.py create_api_token`), gunicorn (2 sync workers, production settings from
    load/settings.py, DEBUG off, persistent database connections) on a free port, and a Celery worker on the
    pipeline and default queues (concurrency 1) that refreshes the indicators the ingestion stream asks for.
  - locust, headless: --users users started at --spawn-rate a second, stopped after --run-time.

Prints, per endpoint, the requests, the rate held, p50 and p95, failures and 409s (the optimistic lock
answering a collision: counted as a success, reported apart), measured once every user runs (locust's
--reset-stats: the ramp-up warms the workers and signs the users in), then the Celery tasks run and left
queued, the rows ingested and the load average. Failures count over the whole run, ramp-up included.

Exits 1 when a request failed, the worker failed a task or gunicorn logged an error (the first traceback is
printed). Teardown stops every process the run started and drops the run's database (--keep-database keeps
it); the logs and locust's CSV files stay in the directory printed at the start.
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import json
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BIN = ROOT / ".venv" / "bin"
PYTHON = str(BIN / "python")
TEMPLATE_KEY_FILES = ["opportunities/demo.py", "opportunities/management/commands/seed_demo.py"]
PROFILES = {
    # accounts, users, spawn rate, run time
    "smoke": (2_000, 10, 2, "30s"),
    "full": (20_000, 40, 4, "3m"),
}
QUEUES = ["pipeline", "default"]


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--smoke", action="store_true", help="The short run: 2,000 accounts, 10 users, 30 s.")
    parser.add_argument("--accounts", type=int, help="Demo accounts (full 20,000, smoke 2,000).")
    parser.add_argument("--users", type=int, help="Concurrent locust users (full 40, smoke 10).")
    parser.add_argument("--spawn-rate", type=float, help="Users started per second (full 4, smoke 2).")
    parser.add_argument("--run-time", help="How long the load lasts, e.g. 90s or 3m (full 3m, smoke 30s).")
    parser.add_argument("--ingest-users", type=int, default=2, help="Ingestion streams among the users.")
    parser.add_argument("--wait", default="1,4", help="A CSM's think time, min,max seconds (default 1,4).")
    parser.add_argument("--manager-wait", default="3,10", help="A manager's think time (default 3,10).")
    parser.add_argument("--workers", type=int, default=2, help="gunicorn workers.")
    parser.add_argument(
        "--database-url",
        default=os.environ.get("LOAD_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/upsell_load"),
        help="The run's database, dropped and created again (its server must be on loopback).",
    )
    parser.add_argument("--cache-url", default=os.environ.get("LOAD_CACHE_URL", "redis://127.0.0.1:6379/10"))
    parser.add_argument("--broker-url", default=os.environ.get("LOAD_BROKER_URL", "redis://127.0.0.1:6379/11"))
    parser.add_argument("--reseed", action="store_true", help="Seed the template database again.")
    parser.add_argument("--keep-database", action="store_true", help="Do not drop the run's database at the end.")
    args = parser.parse_args()
    accounts, users, rate, run_time = PROFILES["smoke" if args.smoke else "full"]
    args.accounts = args.accounts or accounts
    args.users = args.users or users
    args.spawn_rate = args.spawn_rate or rate
    args.run_time = args.run_time or run_time
    for url in (args.database_url, args.cache_url, args.broker_url):
        if not re.match(r"^\w+://([^@/]*@)?(127\.0\.0\.1|localhost)[:/]", url):
            parser.error(f"{url}: the load runs on loopback only")
    if args.cache_url == args.broker_url:
        parser.error("the cache and the broker need a Redis database each")
    return args


def log(message: str) -> None:
    print(f"load: {message}", flush=True)


# --- PostgreSQL --------------------------------------------------------------------------------------------


def _server_and_name(url: str) -> tuple[str, str]:
    server, name = url.rsplit("/", 1)
    return server, name


def _admin(url: str):
    import psycopg

    server, _ = _server_and_name(url)
    return psycopg.connect(f"{server}/postgres", autocommit=True)


def _template_key(accounts: int) -> str:
    """What the template's data depends on: the migrations, the demo's code, the account count and the day."""
    digest = hashlib.sha256()
    files = sorted(ROOT.glob("*/migrations/*.py")) + [ROOT / name for name in TEMPLATE_KEY_FILES]
    for path in files:
        digest.update(str(path.relative_to(ROOT)).encode())
        digest.update(path.read_bytes())
    return f"accounts={accounts} day={time.strftime('%Y-%m-%d', time.gmtime())} code={digest.hexdigest()[:16]}"


def _drop(conn, name: str) -> None:
    conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def prepare_database(url: str, *, accounts: int, reseed: bool) -> None:
    """The run's database, fresh: a clone of the seeded template (seeded first when missing or stale)."""
    server, name = _server_and_name(url)
    template = f"{name}_template_{accounts}"
    key = _template_key(accounts)
    with _admin(url) as conn:
        row = conn.execute(
            "SELECT shobj_description(oid, 'pg_database') FROM pg_database WHERE datname = %s", [template]
        ).fetchone()
        _drop(conn, name)
        if reseed or row is None or row[0] != key:
            _drop(conn, template)
            conn.execute(f'CREATE DATABASE "{template}"')
            started = time.monotonic()
            seed(f"{server}/{template}", accounts=accounts)
            conn.execute(f"COMMENT ON DATABASE \"{template}\" IS '{key}'")
            log(f"template {template}: seeded {accounts:,} accounts in {time.monotonic() - started:.0f} s")
        else:
            log(f"template {template}: reusing it ({key.split(' code=')[0]})")
        started = time.monotonic()
        # PostgreSQL 15 copies through the WAL by default: a plain file copy is several times faster here.
        strategy = " STRATEGY FILE_COPY" if conn.info.server_version >= 150000 else ""
        conn.execute(f'CREATE DATABASE "{name}" TEMPLATE "{template}"{strategy}')
        log(f"database {name}: created from the template in {time.monotonic() - started:.1f} s")


def seed(url: str, *, accounts: int) -> None:
    import psycopg

    env = {
        **os.environ,
        "DATABASE_URL": url,
        "DJANGO_SETTINGS_MODULE": "upsell_crm.settings",
        "CACHE_URL": "locmemcache://load-seed",
        "CELERY_BROKER_URL": "memory://",
        "CELERY_TASK_ALWAYS_EAGER": "1",
        "LOG_LEVEL": "WARNING",
    }
    run([PYTHON, "manage.py", "migrate", "--no-input"], env=env)
    run([PYTHON, "manage.py", "seed_demo", "--accounts", str(accounts)], env=env, timeout=3600)
    # Fresh statistics and visibility map, as autovacuum would have them in production: right after a bulk
    # load the planner thinks the tables are empty. The clones inherit both.
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("VACUUM ANALYZE")


def run(command: list[str], *, env: dict, timeout: float = 600) -> str:
    result = subprocess.run(  # noqa: S603 - our own commands
        command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout
    )
    if result.returncode != 0:
        sys.stderr.write(result.stdout + result.stderr)
        raise SystemExit(f"load: {' '.join(command[1:3])} failed with {result.returncode}")
    return result.stdout


# --- Processes -------------------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Processes:
    """The processes the run started, each in a session of its own so that stopping it stops its children."""

    def __init__(self):
        self.started: list[tuple[str, subprocess.Popen]] = []

    def start(self, name: str, command: list[str], *, env: dict, log_path: Path) -> subprocess.Popen:
        with open(log_path, "w") as out:
            process = subprocess.Popen(  # noqa: S603 - our own commands
                command, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
            )
        self.started.append((name, process))
        return process

    def stop_all(self) -> None:
        for _name, process in reversed(self.started):
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGTERM)
        for name, process in reversed(self.started):
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                log(f"{name} did not stop within 20 s: killing it")
                os.killpg(process.pid, signal.SIGKILL)
                process.wait(timeout=10)


def wait_until(what: str, ready, process: subprocess.Popen, log_path: Path, timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            sys.stderr.write(log_path.read_text()[-5000:])
            raise SystemExit(f"load: {what} exited with {process.returncode}")
        if ready():
            return
        time.sleep(0.3)
    sys.stderr.write(log_path.read_text()[-5000:])
    raise SystemExit(f"load: {what} was not ready within {timeout:.0f} s")


def healthy(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=5) as response:
            return response.status == 200
    except OSError:
        return False


# --- Report ----------------------------------------------------------------------------------------------


def read_stats(prefix: Path) -> list[dict]:
    with open(f"{prefix}_stats.csv", newline="") as file:
        return list(csv.DictReader(file))


def print_table(stats: list[dict], conflicts: dict[str, int]) -> None:
    header = f"{'endpoint':<52} {'requests':>9} {'req/s':>7} {'p50 ms':>7} {'p95 ms':>7} {'failures':>8} {'409s':>5}"
    print(header)
    print("-" * len(header))
    for row in stats:
        if not int(row["Request Count"]):
            continue  # the sign-ins, all made during the ramp-up
        aggregated = row["Name"] == "Aggregated"
        if aggregated:
            print("-" * len(header))
        name = "all requests" if aggregated else f"{row['Type']} {row['Name']}"
        count_409 = sum(conflicts.values()) if aggregated else conflicts.get(row["Name"], 0)
        print(
            f"{name:<52} {int(row['Request Count']):>9,} {float(row['Requests/s']):>7.1f} "
            f"{_ms(row['50%']):>7} {_ms(row['95%']):>7} {int(row['Failure Count']):>8} {count_409:>5}"
        )


def _ms(value: str) -> str:
    return "-" if value in ("", "N/A") else f"{float(value):.0f}"


def cpu_seconds(*, group: int | None = None, database: str | None = None) -> float:
    """CPU time used so far by the live processes of a process group, or by PostgreSQL's backends serving
    `database` (from /proc: Linux only; 0 elsewhere)."""
    total = 0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
            if group is not None and int(fields[2]) != group:
                continue
            if database is not None and f" {database} " not in (stat.parent / "cmdline").read_text():
                continue
        except (OSError, IndexError, ValueError):
            continue
        total += sum(int(value) for value in fields[11:15])  # utime, stime and those of reaped children
    return total / os.sysconf("SC_CLK_TCK")


def worker_counts(log_path: Path) -> tuple[int, int]:
    text = log_path.read_text(errors="replace")
    return len(re.findall(r"\] succeeded in ", text)), len(re.findall(r"\] raised unexpected", text))


def backlog(broker_url: str) -> dict[str, int]:
    import redis

    client = redis.Redis.from_url(broker_url)
    return {queue: client.llen(queue) for queue in QUEUES}


def flush(*urls: str) -> None:
    import redis

    for url in urls:
        redis.Redis.from_url(url).flushdb()


def first_traceback(text: str) -> str:
    start = text.find("Traceback (most recent call last)")
    if start < 0:
        return ""
    lines = text[start:].splitlines()
    end = next((i for i, line in enumerate(lines[1:], 1) if line and not line.startswith((" ", "Traceback"))), 0)
    return "\n".join(lines[: end + 1])


def main() -> None:
    args = parse_args()
    started = time.monotonic()
    # Stopped from outside (a CI timeout, `kill`), still run the teardown below.
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))
    out = Path(tempfile.mkdtemp(prefix="upsell-load-"))
    load_before = os.getloadavg()
    log(
        f"{args.accounts:,} accounts, {args.users} users (+{args.spawn_rate:g}/s), {args.run_time}; "
        f"logs and CSV files in {out}; load average {load_before[0]:.2f} on {os.cpu_count()} CPUs"
    )

    flush(args.cache_url, args.broker_url)
    prepare_database(args.database_url, accounts=args.accounts, reseed=args.reseed)
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "DATABASE_URL": args.database_url,
        "DJANGO_SETTINGS_MODULE": "load.settings",
        "DJANGO_DEBUG": "0",
        "DJANGO_SECRET_KEY": os.urandom(32).hex(),
        "DJANGO_ALLOWED_HOSTS": "127.0.0.1",
        "CACHE_URL": args.cache_url,
        "CELERY_BROKER_URL": args.broker_url,
        "CELERY_TASK_ALWAYS_EAGER": "0",
        "LOG_LEVEL": "WARNING",
        # No collected static files: whitenoise only warns, and would drown the logs.
        "PYTHONWARNINGS": "ignore::UserWarning",
    }
    token = run([PYTHON, "manage.py", "create_api_token", "load test"], env=env).strip().splitlines()[-1]

    processes = Processes()
    port = free_port()
    gunicorn_log, worker_log, locust_log = out / "gunicorn.log", out / "worker.log", out / "locust.log"
    prefix = out / "locust"
    results_file = out / "results.json"
    try:
        server = processes.start(
            "gunicorn",
            [str(BIN / "gunicorn"), "upsell_crm.wsgi", "--bind", f"127.0.0.1:{port}", "--workers", str(args.workers),
             "--worker-class", "sync", "--timeout", "60", "--log-level", "warning"],
            env=env, log_path=gunicorn_log,
        )  # fmt: skip
        worker = processes.start(
            "celery worker",
            [str(BIN / "celery"), "-A", "upsell_crm", "worker", "-Q", ",".join(QUEUES), "--concurrency", "1",
             "--hostname", "load@%h", "--loglevel", "INFO", "--without-gossip", "--without-mingle"],
            env=env, log_path=worker_log,
        )  # fmt: skip
        wait_until("gunicorn", lambda: healthy(port), server, gunicorn_log)
        wait_until("the Celery worker", lambda: " ready." in worker_log.read_text(), worker, worker_log)
        log(f"gunicorn ({args.workers} workers) on 127.0.0.1:{port} and the Celery worker are up")

        locust_env = {
            **env,
            "LOAD_API_TOKEN": token,
            "LOAD_ACCOUNTS": str(args.accounts),
            "LOAD_INGEST_USERS": str(args.ingest_users),
            "LOAD_WAIT": args.wait,
            "LOAD_MANAGER_WAIT": args.manager_wait,
            "LOAD_RESULTS_FILE": str(results_file),
        }
        database = _server_and_name(args.database_url)[1]
        cpu_before = {
            "gunicorn": cpu_seconds(group=server.pid),
            "PostgreSQL": cpu_seconds(database=database),
            "Celery worker": cpu_seconds(group=worker.pid),
        }
        load_started = time.monotonic()
        locust = processes.start(
            "locust",
            [str(BIN / "locust"), "--headless", "-f", str(ROOT / "load" / "locustfile.py"),
             "--host", f"http://127.0.0.1:{port}", "-u", str(args.users), "-r", str(args.spawn_rate),
             "--run-time", args.run_time, "--stop-timeout", "10", "--csv", str(prefix), "--only-summary",
             "--reset-stats"],
            env=locust_env, log_path=locust_log,
        )  # fmt: skip
        _, status, usage = os.wait4(locust.pid, 0)
        locust.returncode = os.waitstatus_to_exitcode(status)
        cpu = {
            "gunicorn": cpu_seconds(group=server.pid),
            "PostgreSQL": cpu_seconds(database=database),
            "Celery worker": cpu_seconds(group=worker.pid),
        }
        cpu = {name: used - cpu_before[name] for name, used in cpu.items()}
        cpu["locust"] = usage.ru_utime + usage.ru_stime
        load_seconds = time.monotonic() - load_started
        load_after = os.getloadavg()
        queued = backlog(args.broker_url)
    finally:
        processes.stop_all()
        flush(args.cache_url, args.broker_url)
        if not args.keep_database:
            with _admin(args.database_url) as conn:
                _drop(conn, _server_and_name(args.database_url)[1])

    if not Path(f"{prefix}_stats.csv").exists():
        sys.stderr.write(locust_log.read_text()[-5000:])
        raise SystemExit(f"load: locust wrote no statistics (exit {locust.returncode})")
    if not results_file.exists():
        sys.stderr.write(locust_log.read_text()[-5000:])
        raise SystemExit(f"load: the locustfile wrote no results (exit {locust.returncode})")
    results = json.loads(results_file.read_text())
    stats = read_stats(prefix)
    print()
    print(
        f"Load: {args.accounts:,} accounts, {args.users} users (CSMs 4 : managers 1, think times {args.wait} s and "
        f"{args.manager_wait} s, plus {args.ingest_users} ingestion streams), {args.run_time} ({load_seconds:.0f} s "
        f"with ramp-up and stop), gunicorn {args.workers} sync workers, 1 Celery worker"
    )
    print_table(stats, results["conflicts_measured"])
    succeeded, failed_tasks = worker_counts(worker_log)
    ingested = results["ingested"]
    print()
    snapshots, events = ingested.get("snapshots sent", 0), ingested.get("events sent", 0)
    print(
        f"ingested over the whole run: {snapshots:,} usage snapshots ({snapshots / load_seconds:,.0f}/s), "
        f"{events:,} events ({events / load_seconds:,.0f}/s); 409s over the whole run: "
        f"{sum(results['conflicts'].values())}"
    )
    print(
        f"Celery: {succeeded:,} tasks succeeded, {failed_tasks} failed; left queued at the end: "
        + ", ".join(f"{queue} {count}" for queue, count in queued.items())
    )
    print(
        f"load average (1 min): {load_before[0]:.2f} before, {load_after[0]:.2f} at the end, on {os.cpu_count()} "
        f"CPUs shared by PostgreSQL, Redis, gunicorn, the worker and locust itself"
    )
    print(
        "CPU seconds used during the load: "
        + ", ".join(f"{name} {seconds:.0f}" for name, seconds in cpu.items())
        + f" (of {os.cpu_count() * load_seconds:.0f} on {os.cpu_count()} CPUs; the rest went to other work)"
    )
    if "CPU usage above" in locust_log.read_text():
        print("note: locust warned that its own CPU usage went above 90%: the client may have capped the rate")

    problems = []
    failures = results["failures"]
    if failures:
        problems.append(f"{sum(failures.values())} requests failed")
        for failure, count in sorted(failures.items()):
            print(f"  failed: {failure} x {count}")
    with open(f"{prefix}_exceptions.csv", newline="") as file:
        for row in csv.DictReader(file):
            problems.append(f"locust caught {row['Count']} exceptions: {row['Message']}")
            print(row["Traceback"])
    if failed_tasks:
        problems.append(f"the worker failed {failed_tasks} tasks (see {worker_log})")
    server_log = gunicorn_log.read_text(errors="replace")
    if any(mark in server_log for mark in (" ERROR ", "[ERROR]", "[CRITICAL]", "Traceback")):
        problems.append(f"gunicorn logged errors (see {gunicorn_log})")
        print(first_traceback(server_log) or server_log[-3000:])
    if not any(int(row["Request Count"]) for row in stats):
        problems.append("no request was made")
    print(f"total: {time.monotonic() - started:.0f} s")
    if problems:
        raise SystemExit("load: FAILED: " + "; ".join(problems))
    print("load: no request failed")


if __name__ == "__main__":
    main()
