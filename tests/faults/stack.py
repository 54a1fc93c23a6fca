"""Throwaway services for the fault scenarios: a PostgreSQL cluster, a Redis, gunicorn and Celery workers.

Everything listens on 127.0.0.1 on a free port, runs in a process group of its own (so that a SIGKILL or a
teardown reaches exactly the processes started here) and writes its output to a log file in a temporary
directory. The machine's own PostgreSQL and Redis are never touched.
"""

from __future__ import annotations

import contextlib
import glob
import http.client
import json
import os
import pwd
import re
import secrets
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import psycopg

ROOT = Path(__file__).resolve().parents[2]
VENV_BIN = ROOT / ".venv" / "bin"
PYTHON = str(VENV_BIN / "python")
HOST = "127.0.0.1"
SETTINGS = "tests.faults.settings"
STOP_TIMEOUT = 15.0


def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


def wait_until(predicate: Callable[[], object], *, timeout: float, what: str, interval: float = 0.05):
    """Poll `predicate` until it returns something truthy (returned), or fail naming `what`."""
    deadline = time.monotonic() + timeout
    while True:
        result = predicate()
        if result:
            return result
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(interval)


def postgres_bindir() -> Path | None:
    """The newest PostgreSQL server binaries on the machine (Debian layout first, then PATH)."""
    candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=lambda p: [int(x) for x in re.findall(r"\d+", p)])
    for bindir in reversed(candidates):
        if (Path(bindir) / "initdb").exists() and (Path(bindir) / "pg_ctl").exists():
            return Path(bindir)
    initdb = shutil.which("initdb")
    return Path(initdb).resolve().parent if initdb and shutil.which("pg_ctl") else None


def missing_prerequisites() -> str | None:
    """Why the scenarios cannot run here, or None."""
    if not Path("/proc/self").exists():
        return "needs Linux (/proc) to find and signal worker processes"
    if postgres_bindir() is None:
        return "needs the PostgreSQL server binaries (initdb, pg_ctl): apt-get install postgresql"
    if os.geteuid() == 0:
        try:
            pwd.getpwnam("postgres")
        except KeyError:
            return "runs as root and initdb refuses root: needs a `postgres` OS user to run the cluster"
        if shutil.which("runuser") is None:
            return "runs as root and needs runuser to start PostgreSQL as `postgres`"
    if shutil.which("redis-server") is None:
        return "needs redis-server: apt-get install redis-server"
    for tool in ("gunicorn", "celery"):
        if not (VENV_BIN / tool).exists():
            return f"needs {VENV_BIN / tool}"
    return None


def stop_process_group(process: subprocess.Popen, sig: int = signal.SIGTERM, timeout: float = STOP_TIMEOUT) -> None:
    """Signal the process group started with `process` (its session), then SIGKILL whatever is left."""
    if process.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, sig)
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(timeout=timeout)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)  # pool children or other leftovers of the group
    process.wait(timeout=timeout)


class PostgresCluster:
    """A PostgreSQL cluster of its own (initdb in a temporary directory, trust authentication, loopback)."""

    def __init__(self, workdir: Path):
        self.bindir = postgres_bindir()
        self.dir = workdir / "postgres"
        self.data = self.dir / "data"
        self.log = self.dir / "server.log"
        self.port = free_port()
        self.dir.mkdir()
        if os.geteuid() == 0:
            user = pwd.getpwnam("postgres")
            workdir.chmod(0o711)  # mkdtemp's 0700 would keep `postgres` out of its own directory
            os.chown(self.dir, user.pw_uid, user.pw_gid)
        self._run("initdb", "-D", str(self.data), "-A", "trust", "-U", "postgres", "-E", "UTF8", "--no-sync")

    def _run(self, tool: str, *args: str, timeout: float = 60) -> None:
        command = [str(self.bindir / tool), *args]
        if os.geteuid() == 0:
            command = ["runuser", "-u", "postgres", "--", *command]
        subprocess.run(command, check=True, capture_output=True, timeout=timeout, cwd=self.dir)  # noqa: S603 - fixed

    def start(self) -> None:
        options = f"-p {self.port} -k {self.dir} -c listen_addresses={HOST} -c fsync=off -c max_connections=50"
        self._run("pg_ctl", "-D", str(self.data), "-l", str(self.log), "-o", options, "-w", "-t", "30", "start")

    def stop(self, mode: str = "fast") -> None:
        self._run("pg_ctl", "-D", str(self.data), "-m", mode, "-w", "-t", "30", "stop")

    def ensure_running(self) -> None:
        """Start it again if a scenario that stopped it failed before restarting it."""
        if not (self.data / "postmaster.pid").exists():
            self.start()

    def url(self, database: str) -> str:
        return f"postgres://postgres@{HOST}:{self.port}/{database}"

    def connect(self, database: str = "postgres", **kwargs) -> psycopg.Connection:
        return psycopg.connect(self.url(database), connect_timeout=5, autocommit=True, **kwargs)

    def create_database(self, name: str, template: str | None = None) -> None:
        with self.connect() as conn:
            conn.execute(f'CREATE DATABASE "{name}"' + (f' TEMPLATE "{template}"' if template else ""))

    def teardown(self) -> None:
        if (self.data / "postmaster.pid").exists():
            with contextlib.suppress(subprocess.CalledProcessError):
                self._run("pg_ctl", "-D", str(self.data), "-m", "immediate", "-w", "-t", "30", "stop")


class RedisServer:
    """A redis-server of its own: loopback, no persistence (a restart comes back empty, like a flushed one)."""

    def __init__(self, workdir: Path):
        self.port = free_port()
        self.log = workdir / "redis.log"
        self.dir = workdir
        self.process: subprocess.Popen | None = None

    def start(self) -> None:
        command = ["redis-server", "--port", str(self.port), "--bind", HOST, "--save", "", "--appendonly", "no"]
        command += ["--daemonize", "no", "--dir", str(self.dir)]
        with open(self.log, "a") as log:
            self.process = subprocess.Popen(  # noqa: S603 - a fixed command line
                command, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
            )
        wait_until(self.ping, timeout=20, what="redis-server to answer PING")

    def stop(self) -> None:
        if self.process is not None:
            stop_process_group(self.process)
            self.process = None

    def client(self, db: int = 0):
        import redis

        return redis.Redis(host=HOST, port=self.port, db=db, socket_timeout=2, socket_connect_timeout=2)

    def ping(self) -> bool:
        import redis

        try:
            with self.client() as client:
                return bool(client.ping())
        except (OSError, redis.RedisError):
            return False

    def url(self, db: int) -> str:
        return f"redis://{HOST}:{self.port}/{db}"


class LoggedProcess:
    """A long-running child in its own session, with stdout and stderr in one log file."""

    def __init__(self, name: str, command: list[str], env: dict, log: Path):
        self.name = name
        self.log = log
        with open(log, "a") as out:
            self.process = subprocess.Popen(  # noqa: S603 - a fixed command line
                command, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
            )

    @property
    def pid(self) -> int:
        return self.process.pid

    def text(self) -> str:
        return self.log.read_text(errors="replace")

    def wait_for_log(self, pattern: str, *, timeout: float, count: int = 1) -> None:
        def seen() -> bool:
            if self.process.poll() is not None and len(re.findall(pattern, self.text())) < count:
                raise AssertionError(f"{self.name} exited ({self.process.returncode}):\n{self.text()[-3000:]}")
            return len(re.findall(pattern, self.text())) >= count

        wait_until(seen, timeout=timeout, what=f"{pattern!r} in the log of {self.name}", interval=0.1)

    def children(self) -> list[int]:
        path = Path(f"/proc/{self.pid}/task/{self.pid}/children")
        return [int(pid) for pid in path.read_text().split()] if path.exists() else []

    def kill(self) -> None:
        """SIGKILL the whole group at once, as when the machine or container running it dies."""
        os.killpg(self.pid, signal.SIGKILL)
        self.process.wait(timeout=STOP_TIMEOUT)

    def stop(self) -> None:
        # SIGQUIT: gunicorn's quick shutdown and Celery's cold one; nothing here needs to finish gracefully.
        stop_process_group(self.process, signal.SIGQUIT)


def app_env(*, database_url: str, cache_url: str, broker_url: str, secret_key: str = "") -> dict:
    """The environment of an app process: production settings (DEBUG off) on the given services."""
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("PYTEST", "DJANGO_", "CELERY_", "DATABASE_", "CACHE_"))
    }
    env.update(
        DJANGO_SETTINGS_MODULE=SETTINGS,
        PYTHONPATH=str(ROOT),
        DATABASE_URL=database_url,
        CACHE_URL=cache_url,
        CELERY_BROKER_URL=broker_url,
        CELERY_TASK_ALWAYS_EAGER="0",
        DJANGO_DEBUG="0",
        DJANGO_SECRET_KEY=secret_key or secrets.token_urlsafe(50),
        DJANGO_ALLOWED_HOSTS=HOST,
        DJANGO_SECURE_SSL_REDIRECT="0",
        LOG_LEVEL="INFO",
        # STATIC_ROOT is never collected here; WhiteNoise warns about it on every start.
        PYTHONWARNINGS="ignore::UserWarning",
        PYTHONUNBUFFERED="1",
    )
    return env


def app_command(env: dict, command: str, *, timeout: float = 120, **arguments) -> dict:
    """Run one of tests/faults/app_commands.py in a process of its own; its JSON answer."""
    done = subprocess.run(  # noqa: S603 - a fixed command line
        [PYTHON, "-m", "tests.faults.app_commands", command, json.dumps(arguments)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    if done.returncode != 0:
        raise AssertionError(f"app command {command} failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def manage(env: dict, *args: str, timeout: float = 120) -> None:
    subprocess.run(  # noqa: S603 - a fixed command line
        [PYTHON, "manage.py", *args], cwd=ROOT, env=env, check=True, capture_output=True, timeout=timeout
    )


@dataclass
class Stack:
    """One scenario's world: its own database in the cluster, its own Redis, and the app processes it starts."""

    workdir: Path
    postgres: PostgresCluster
    redis: RedisServer
    database: str
    processes: list[LoggedProcess] = field(default_factory=list)
    secret_key: str = field(default_factory=lambda: secrets.token_urlsafe(50))

    def env(self) -> dict:
        return app_env(
            database_url=self.postgres.url(self.database),
            cache_url=self.redis.url(1),
            broker_url=self.redis.url(0),
            secret_key=self.secret_key,
        )

    def db(self) -> psycopg.Connection:
        return self.postgres.connect(self.database)

    def app_command(self, command: str, timeout: float = 120, **arguments) -> dict:
        return app_command(self.env(), command, timeout=timeout, **arguments)

    def start_worker(self, name: str) -> LoggedProcess:
        command = [str(VENV_BIN / "celery"), "-A", "upsell_crm", "worker", "-Q", "pipeline,default"]
        command += ["--concurrency", "1", "--pool", "prefork", "--loglevel", "INFO", "-n", f"{name}@faults"]
        command += ["--without-gossip", "--without-mingle", "--without-heartbeat"]
        worker = LoggedProcess(name, command, self.env(), self.workdir / f"{name}.log")
        self.processes.append(worker)
        worker.wait_for_log(r"ready\.", timeout=60)
        return worker

    def start_web(self, name: str = "web") -> Web:
        port = free_port()
        command = [str(VENV_BIN / "gunicorn"), "upsell_crm.wsgi", "--bind", f"{HOST}:{port}", "--workers", "2"]
        command += ["--timeout", "30"]
        process = LoggedProcess(name, command, self.env(), self.workdir / f"{name}.log")
        self.processes.append(process)
        web = Web(port=port, process=process)
        wait_until(lambda: web.answers(), timeout=60, what="gunicorn to answer", interval=0.2)
        return web

    def send_task(self, name: str, queue: str, **kwargs) -> None:
        """Enqueue a task on this stack's broker, as beat or the app would."""
        from celery import Celery

        # Celery prefers a CELERY_BROKER_URL in the environment to the broker it is given: under .ci/run that
        # variable names CI's own Redis, where this stack's worker would never see the task.
        outer_broker = os.environ.pop("CELERY_BROKER_URL", None)
        client = Celery("faults-client", broker=self.redis.url(0), set_as_current=False)
        client.conf.update(broker_connection_retry_on_startup=False, broker_connection_max_retries=1)
        try:
            client.send_task(name, kwargs=kwargs, queue=queue)
        finally:
            client.close()
            if outer_broker is not None:
                os.environ["CELERY_BROKER_URL"] = outer_broker

    def teardown(self) -> None:
        for process in reversed(self.processes):
            process.stop()
        self.redis.stop()


@dataclass
class Response:
    status: int
    headers: dict[str, str]
    body: bytes
    seconds: float

    def json(self):
        return json.loads(self.body)

    @property
    def text(self) -> str:
        return self.body.decode(errors="replace")


@dataclass
class Web:
    """gunicorn serving the app; requests over a fresh connection each, with a timeout."""

    port: int
    process: LoggedProcess
    timeout: float = 10.0

    def request(self, method: str, path: str, *, body: bytes | None = None, headers: dict | None = None) -> Response:
        started = time.monotonic()
        conn = http.client.HTTPConnection(HOST, self.port, timeout=self.timeout)
        try:
            conn.request(method, path, body=body, headers=headers or {})
            response = conn.getresponse()
            payload = response.read()
            cookies = response.headers.get_all("Set-Cookie") or []
            headers_out = {k.lower(): v for k, v in response.getheaders()}
            headers_out["set-cookie"] = "\n".join(cookies)
        finally:
            conn.close()
        return Response(response.status, headers_out, payload, time.monotonic() - started)

    def answers(self) -> bool:
        try:
            return self.request("GET", "/login/").status == 200
        except OSError:
            return False

    def log_in(self, username: str, password: str) -> str:
        """Log in through the login form; the Cookie header of the session."""
        page = self.request("GET", "/login/")
        csrf = _cookie(page.headers["set-cookie"], "csrftoken")
        token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.text).group(1)
        form = f"username={username}&password={password}&csrfmiddlewaretoken={token}".encode()
        headers = {"Content-Type": "application/x-www-form-urlencoded", "Cookie": f"csrftoken={csrf}"}
        answer = self.request("POST", "/login/", body=form, headers=headers)
        assert answer.status == 302, f"login as {username} answered {answer.status}"
        return f"csrftoken={csrf}; sessionid={_cookie(answer.headers['set-cookie'], 'sessionid')}"

    def get(self, path: str, cookie: str = "") -> Response:
        return self.request("GET", path, headers={"Cookie": cookie} if cookie else {})

    def post_json(self, path: str, payload: dict, *, token: str, idempotency_key: str | None = None) -> Response:
        headers = {"Content-Type": "application/json", "Authorization": f"Bearer {token}"}
        if idempotency_key:
            headers["Idempotency-Key"] = idempotency_key
        return self.request("POST", path, body=json.dumps(payload).encode(), headers=headers)


def _cookie(set_cookie: str, name: str) -> str:
    match = re.search(rf"(?:^|\n){name}=([^;]*)", set_cookie)
    assert match, f"no {name} cookie in {set_cookie!r}"
    return match.group(1)


def new_workdir() -> Path:
    return Path(tempfile.mkdtemp(prefix="upsell-faults-"))


def quantile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))] if ordered else float("nan")
