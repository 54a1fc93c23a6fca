"""Load profile: CSMs and managers browsing and working opportunities, and an ingestion stream.

    .venv/bin/python load/run.py [--smoke]     # sets the stack up on loopback and runs this file headless

Three kinds of users, against gunicorn with the production settings (load/settings.py):
  - CsmUser (weight 4), signed in as the demo CSMs: their home, the queue (full page, then filters, sorting
    and pages through HTMX), account pages, and the work: advance Identify -> Qualify from a queue row,
    qualify from the account page (half of the time moving on to Present), snooze from a row's menu, notes.
  - ManagerUser (weight 1), signed in as the demo manager: home, /pipeline/ and /metrics/ with a period,
    the account list (filters, sorting, pages) and account pages.
  - IngestionUser (LOAD_INGEST_USERS of them, whatever the user count): POST /api/v1/usage with 100 to
    1,000 snapshots of random accounts and POST /api/v1/events, each with an Idempotency-Key.

Requests are named by route (`/accounts/<id>/`), so the statistics group by endpoint. Every request expects
one status (200, or the login's 302); anything else fails, with one exception: a 409 on a write is the
optimistic lock at work (two users worked the same opportunity, and the later one gets a fresh panel). It
counts as a success, and the 409s per endpoint are written to LOAD_RESULTS_FILE when the run stops, with
every failure of the run (with --reset-stats, locust's statistics forget those of the ramp-up; this does not).

Password hashing is deliberately slow and signing in is not what a working day is made of: the first user of
each demo login signs in through the form, and the other users of that login share its session, each with
its own connection and cookie jar (as several tabs of one person would).

Environment: LOAD_API_TOKEN (required by the ingestion users: `manage.py create_api_token`), LOAD_ACCOUNTS
(how many demo accounts exist, external ids acct-00001 on), LOAD_CSMS (default csm1,csm2,csm3,csm4),
LOAD_MANAGERS (default manager), LOAD_PASSWORD (default demo), LOAD_WAIT (a CSM's think time between two
requests, in seconds, default "1,4"), LOAD_MANAGER_WAIT (a manager's, reading figures and charts: "3,10"),
LOAD_INGEST_USERS (default 2), LOAD_INGEST_WAIT (default "1,3"), LOAD_RESULTS_FILE.
"""

from __future__ import annotations

import copy
import datetime as dt
import http.cookiejar
import json
import os
import random
import re
import uuid
from collections import Counter
from dataclasses import dataclass
from urllib.parse import urlencode

from gevent.lock import BoundedSemaphore
from locust import HttpUser, between, events, task

CSMS = os.environ.get("LOAD_CSMS", "csm1,csm2,csm3,csm4").split(",")
MANAGERS = os.environ.get("LOAD_MANAGERS", "manager").split(",")
PASSWORD = os.environ.get("LOAD_PASSWORD", "demo")
ACCOUNTS = int(os.environ.get("LOAD_ACCOUNTS", "2000"))
API_TOKEN = os.environ.get("LOAD_API_TOKEN", "")
WAIT = [float(x) for x in os.environ.get("LOAD_WAIT", "1,4").split(",")]
MANAGER_WAIT = [float(x) for x in os.environ.get("LOAD_MANAGER_WAIT", "3,10").split(",")]
INGEST_WAIT = [float(x) for x in os.environ.get("LOAD_INGEST_WAIT", "1,3").split(",")]
INGEST_USERS = int(os.environ.get("LOAD_INGEST_USERS", "2"))
RESULTS_FILE = os.environ.get("LOAD_RESULTS_FILE", "")

METRICS = ["seats", "storage_gb", "integrations", "api_calls", "projects"]
FEATURES = ["reporting", "dashboards", "exports", "advanced_reporting", "audit_log", "sso", "sandbox"]
QUEUE_SORTS = ["score", "-score", "account", "-account", "plan", "-plan", "mrr", "-mrr", "stage", "days", "next_step"]
ACCOUNT_SORTS = ["name", "-name", "plan", "-plan", "mrr", "-mrr", "usage", "-usage", "owner"]
PERIODS = ["this_month", "last_month", "last_quarter", "last_12_months"]
NOTES = [
    "Called the champion: they are hiring and will need more seats next quarter.",
    "Storage keeps growing since the new data retention policy.",
    "Budget owner is the VP of Operations; follow up after their board meeting.",
    "Asked about SSO during the QBR.",
]

# Load data, not secrets: the standard generator is what is wanted.
rng = random.Random()  # noqa: S311

# What the run counted beyond locust's statistics: 409s per endpoint (over the whole run, and since the
# statistics were last reset), failures over the whole run (a reset forgets them), rows the ingestion stored.
conflicts: Counter[str] = Counter()
conflicts_measured: Counter[str] = Counter()
failures: Counter[str] = Counter()
ingested: Counter[str] = Counter()
reset_stats = False

ROW = re.compile(r'<tr id="queue-row-(\d+)".*?</tr>', re.S)
ROW_ACCOUNT = re.compile(r'href="/accounts/(\d+)/#opportunity-')
ROW_STAGE = re.compile(r"badge--stage-(\w+)")
ADVANCE = re.compile(
    r'action="/opportunities/\d+/advance/".*?name="version" value="(\d+)".*?name="to" value="(\w+)"', re.S
)
SELECT = re.compile(r'<select name="(\w+)"[^>]*>(.*?)</select>', re.S)
OPTION = re.compile(r'<option value="([^"]+)"')
PAGE_LINK = re.compile(r'\?page=(\d+)"')
CSRF_HEADER = re.compile(r"<body hx-headers='\{\"x-csrftoken\": \"([^\"]+)\"\}'")
CSRF_FIELD = re.compile(r'name="csrfmiddlewaretoken" value="([^"]+)"')
ACCOUNT_LINK = re.compile(r'href="/accounts/(\d+)/"')
QUALIFY_FORM = re.compile(
    r'<form id="qualify-form".*?action="/opportunities/(\d+)/qualify/".*?name="version" value="(\d+)"', re.S
)
NOTE_OPPORTUNITY = re.compile(r'name="opportunity" value="(\d+)"')
SNOOZE_FORM = re.compile(
    r'action="/opportunities/(\d+)/snooze/".*?name="version" value="(\d+)".*?name="until" value="([\d-]+)"', re.S
)


@dataclass
class Row:
    """A queue row as the page draws it: its opportunity, account, stage and, when it can advance, the form's
    version and target stage."""

    opportunity: int
    account: int
    stage: str
    version: str | None
    to: str | None


def queue_rows(html: str) -> list[Row]:
    rows = []
    for match in ROW.finditer(html):
        block = match.group(0)
        account = ROW_ACCOUNT.search(block)
        stage = ROW_STAGE.search(block)
        advance = ADVANCE.search(block)
        if account is None:
            continue
        rows.append(
            Row(
                opportunity=int(match.group(1)),
                account=int(account.group(1)),
                stage=stage.group(1) if stage else "",
                version=advance.group(1) if advance else None,
                to=advance.group(2) if advance else None,
            )
        )
    return rows


def filter_choices(html: str) -> dict[str, list[str]]:
    """The filter bar's choices, read from its <select>s: name -> the values other than "any"."""
    return {name: OPTION.findall(options) for name, options in SELECT.findall(html) if OPTION.findall(options)}


class Login:
    """One demo login's session, shared by the users signed in as it."""

    def __init__(self):
        self.lock = BoundedSemaphore(1)
        self.cookies: list[http.cookiejar.Cookie] = []
        self.csrf_token = ""


logins: dict[str, Login] = {}


class AppUser(HttpUser):
    """A person in a browser: signed in, HTMX requests flagged as htmx flags them, writes with the CSRF token
    from the page's <body hx-headers>."""

    abstract = True
    usernames: list[str] = []
    wait_time = between(*WAIT)

    def on_start(self):
        # What the TLS-terminating proxy adds: production settings trust it (SECURE_PROXY_SSL_HEADER).
        self.client.headers["X-Forwarded-Proto"] = "https"
        self.origin = "https://" + self.host.split("://", 1)[1].rstrip("/")
        self.username = rng.choice(self.usernames)
        login = logins.setdefault(self.username, Login())
        with login.lock:
            if not login.cookies:
                self.sign_in(login)
        for cookie in login.cookies:
            self.client.cookies.set_cookie(copy.copy(cookie))
        self.csrf_token = login.csrf_token

    def send_secure_cookies(self) -> None:
        """Production's session and CSRF cookies are Secure. The load talks plain HTTP to gunicorn on loopback,
        as the TLS-terminating proxy in front of it does, so the client sends them over plain HTTP too."""
        for cookie in self.client.cookies:
            cookie.secure = False

    def sign_in(self, login: Login) -> None:
        page = self.client.get("/login/", name="/login/")
        token = CSRF_FIELD.search(page.text)
        if token is None:
            raise RuntimeError(f"/login/ answered {page.status_code} without a form")
        data = {"username": self.username, "password": PASSWORD, "csrfmiddlewaretoken": token.group(1)}
        headers = {"Origin": self.origin, "Referer": f"{self.origin}/login/"}
        self.send_secure_cookies()
        with self.client.post(
            "/login/", data=data, headers=headers, name="/login/", allow_redirects=False, catch_response=True
        ) as response:
            if response.status_code != 302:
                response.failure(f"HTTP {response.status_code}: signing in as {self.username} failed")
                raise RuntimeError(f"signing in as {self.username} failed: {response.status_code}")
        home = self.get("/", name=f"/ ({self.role})")
        login.cookies = [c for c in self.client.cookies if c.name in ("sessionid", "csrftoken")]
        login.csrf_token = CSRF_HEADER.search(home).group(1)

    def get(self, path: str, *, name: str, htmx: bool = False, params: dict | None = None) -> str:
        """GET a page (or, with `htmx`, the partial htmx asks for); anything but 200 fails. Returns the HTML."""
        headers = {"HX-Request": "true", "HX-Current-URL": f"{self.origin}{path}"} if htmx else {}
        url = f"{path}?{urlencode(params)}" if params else path
        self.send_secure_cookies()
        with self.client.get(url, name=name, headers=headers, allow_redirects=False, catch_response=True) as r:
            if r.status_code != 200:
                r.failure(f"HTTP {r.status_code}")
                return ""
            return r.text

    def post(self, path: str, data: dict, *, name: str) -> int:
        """An htmx form post with the page's CSRF token; 200 passes, 409 (a collision) passes and is counted."""
        headers = {
            "HX-Request": "true",
            "HX-Current-URL": f"{self.origin}/",
            "X-CSRFToken": self.csrf_token,
            "Origin": self.origin,
        }
        self.send_secure_cookies()
        with self.client.post(
            path, data=data, name=name, headers=headers, allow_redirects=False, catch_response=True
        ) as r:
            if r.status_code == 409:
                conflicts[name] += 1
                conflicts_measured[name] += 1
                r.success()
            elif r.status_code != 200:
                r.failure(f"HTTP {r.status_code}")
            return r.status_code


class CsmUser(AppUser):
    weight = 4
    usernames = CSMS
    role = "csm"

    def on_start(self):
        super().on_start()
        self.rows: list[Row] = []
        self.pages = 1
        self.choices: dict[str, list[str]] = {}
        self.queue_page()

    def remember(self, html: str) -> None:
        rows = queue_rows(html)
        if rows:
            self.rows = rows
        pages = [int(n) for n in PAGE_LINK.findall(html)]
        self.pages = max(pages, default=1)

    def pick(self, want=lambda row: True) -> Row | None:
        rows = [row for row in self.rows if want(row)]
        return rng.choice(rows) if rows else None

    def done_with(self, row: Row) -> None:
        # Its version moved on: working it again from this page would collide with ourselves, not with others.
        if row in self.rows:
            self.rows.remove(row)

    @task(2)
    def home(self):
        self.get("/", name="/ (csm)")

    @task(4)
    def queue_page(self):
        html = self.get("/queue/", name="/queue/")
        self.choices = filter_choices(html) or self.choices
        self.remember(html)

    @task(4)
    def queue_filtered(self):
        """What the filter bar and the column headers ask for: one or two filters, a sort, through htmx."""
        params: dict = {"sort": rng.choice(QUEUE_SORTS)}
        for name in rng.sample(sorted(self.choices), k=min(len(self.choices), rng.choice([0, 1, 1, 2]))):
            params[name] = rng.choice(self.choices[name])
        if rng.random() < 0.2:
            params["score_min"] = rng.choice([40, 60, 80])
        self.remember(self.get("/queue/", name="/queue/ (htmx: filter, sort)", htmx=True, params=params))

    @task(3)
    def queue_next_page(self):
        page = rng.randint(2, self.pages) if self.pages > 1 else 1
        self.remember(self.get("/queue/", name="/queue/ (htmx: page)", htmx=True, params={"page": page}))

    @task(5)
    def account_page(self):
        row = self.pick()
        if row is None:
            return self.queue_page()
        html = self.get(f"/accounts/{row.account}/", name="/accounts/<id>/")
        if html and rng.random() < 0.4:
            self.add_note(row.account, html)

    def add_note(self, account: int, html: str) -> None:
        data = {"body": rng.choice(NOTES)}
        opportunity = NOTE_OPPORTUNITY.search(html)
        if opportunity:
            data["opportunity"] = opportunity.group(1)
        self.post(f"/accounts/{account}/notes/", data, name="/accounts/<id>/notes/")

    @task(3)
    def advance_from_queue(self):
        """The row's "-> Qualify" button: Identify to Qualify needs nothing more."""
        row = self.pick(lambda row: row.to == "qualify")
        if row is None:
            return self.queue_filtered_by(stage="identify")
        self.done_with(row)
        self.post(
            f"/opportunities/{row.opportunity}/advance/",
            {"version": row.version, "to": row.to, "from": "queue"},
            name="/opportunities/<id>/advance/",
        )

    @task(2)
    def qualify(self):
        """Open an account in Qualify, answer the questions; half of the time, move on to Present."""
        row = self.pick(lambda row: row.stage == "qualify")
        if row is None:
            return self.queue_filtered_by(stage="qualify")
        self.done_with(row)
        html = self.get(f"/accounts/{row.account}/", name="/accounts/<id>/")
        form = QUALIFY_FORM.search(html)
        if form is None:  # moved on meanwhile
            return
        move_on = rng.random() < 0.5
        data = {
            "version": form.group(2),
            "need_confirmed": "yes",
            "budget_confirmed": rng.choice(["yes", "no"]),
            "business_goals": "Grow the support team by a third this year.",
            "blockers": "",
            "decision_maker": "Head of Support",
            "timeline": "Next quarter",
            "next_step_on": (dt.date.today() + dt.timedelta(days=rng.randint(3, 20))).isoformat(),
            "action": "move_on" if move_on else "save",
        }
        self.post(f"/opportunities/{form.group(1)}/qualify/", data, name="/opportunities/<id>/qualify/")

    @task(1)
    def snooze_from_queue(self):
        """The row's "More" menu (htmx), then its snooze form with the date it offers."""
        row = self.pick(lambda row: row.version is not None)
        if row is None:
            return
        self.done_with(row)
        html = self.get(
            f"/opportunities/{row.opportunity}/actions/", name="/opportunities/<id>/actions/ (htmx)", htmx=True
        )
        form = SNOOZE_FORM.search(html)
        if form is None:
            return
        pk, version, until = form.groups()
        self.post(
            f"/opportunities/{pk}/snooze/",
            {"version": version, "until": until, "from": "queue"},
            name="/opportunities/<id>/snooze/",
        )

    def queue_filtered_by(self, **params):
        self.remember(self.get("/queue/", name="/queue/ (htmx: filter, sort)", htmx=True, params=params))


class ManagerUser(AppUser):
    weight = 1
    usernames = MANAGERS
    role = "manager"
    wait_time = between(*MANAGER_WAIT)

    def on_start(self):
        super().on_start()
        self.accounts: list[int] = []
        self.choices: dict[str, list[str]] = {}
        self.account_list()

    @task(3)
    def home(self):
        self.get("/", name="/ (manager)")

    @task(3)
    def pipeline(self):
        params = {"period": rng.choice(PERIODS)} if rng.random() < 0.7 else None
        self.get("/pipeline/", name="/pipeline/", params=params)

    @task(3)
    def metrics(self):
        self.get("/metrics/", name="/metrics/", params={"period": rng.choice(PERIODS)})

    @task(2)
    def account_list(self):
        html = self.get("/accounts/", name="/accounts/")
        self.choices = filter_choices(html) or self.choices
        self.accounts = [int(pk) for pk in ACCOUNT_LINK.findall(html)] or self.accounts

    @task(3)
    def account_list_filtered(self):
        params: dict = {"sort": rng.choice(ACCOUNT_SORTS), "page": rng.randint(1, 20)}
        for name in rng.sample(sorted(self.choices), k=min(len(self.choices), rng.choice([0, 1, 2]))):
            params[name] = rng.choice(self.choices[name])
        html = self.get("/accounts/", name="/accounts/ (htmx: filter, sort, page)", htmx=True, params=params)
        self.accounts = [int(pk) for pk in ACCOUNT_LINK.findall(html)] or self.accounts

    @task(2)
    def account_page(self):
        if self.accounts:
            self.get(f"/accounts/{rng.choice(self.accounts)}/", name="/accounts/<id>/")


class IngestionUser(HttpUser):
    """A customer's usage exporter and event stream, through the API with a token."""

    fixed_count = INGEST_USERS
    wait_time = between(*INGEST_WAIT)

    def on_start(self):
        if not API_TOKEN:
            raise RuntimeError("LOAD_API_TOKEN is not set")
        self.client.headers.update(
            {
                "Authorization": f"Bearer {API_TOKEN}",
                "Content-Type": "application/json",
                "X-Forwarded-Proto": "https",
            }
        )

    def write(self, path: str, body: dict, *, kind: str, count: int) -> None:
        headers = {"Idempotency-Key": str(uuid.uuid4())}
        with self.client.post(
            path, data=json.dumps(body), headers=headers, name=path, allow_redirects=False, catch_response=True
        ) as r:
            if r.status_code != 200:
                r.failure(f"HTTP {r.status_code}: {r.text[:200]}")
                return
            ingested[f"{kind} sent"] += count
            ingested[f"{kind} created"] += r.json()["created"]

    @task(3)
    def usage(self):
        today = dt.datetime.now(dt.UTC).date()
        snapshots = {}
        for _ in range(rng.randint(100, 1000)):
            key = (rng.randint(1, ACCOUNTS), rng.choice(METRICS), today - dt.timedelta(days=rng.randint(0, 6)))
            snapshots[key] = round(rng.uniform(0, 500), 1)
        body = {
            "snapshots": [
                {"account": f"acct-{index:05d}", "metric": metric, "value": value, "date": day.isoformat()}
                for (index, metric, day), value in snapshots.items()
            ]
        }
        self.write("/api/v1/usage", body, kind="snapshots", count=len(snapshots))

    @task(1)
    def events(self):
        now = dt.datetime.now(dt.UTC)
        items = []
        for _ in range(rng.randint(50, 500)):
            kind = rng.choice(["login", "login", "feature_used", "feature_used", "locked_feature_hit"])
            item = {
                "id": f"load-{uuid.uuid4().hex}",
                "account": f"acct-{rng.randint(1, ACCOUNTS):05d}",
                "type": kind,
                "user": f"user-{rng.randint(1, 40)}",
                "timestamp": (now - dt.timedelta(minutes=rng.randint(0, 600))).isoformat(),
            }
            if kind != "login":
                item["feature"] = rng.choice(FEATURES)
            items.append(item)
        self.write("/api/v1/events", {"events": items}, kind="events", count=len(items))


@events.init.add_listener
def remember_options(environment, **kwargs):
    global reset_stats
    reset_stats = bool(environment.parsed_options and environment.parsed_options.reset_stats)


@events.spawning_complete.add_listener
def measure_from_now(user_count, **kwargs):
    # With --reset-stats, locust's statistics start again once every user runs: so do the 409s measured.
    if reset_stats:
        conflicts_measured.clear()


@events.request.add_listener
def count_failures(request_type, name, exception=None, **kwargs):
    if exception is not None:
        failures[f"{request_type} {name}: {exception}"] += 1


@events.test_stop.add_listener
def write_results(environment, **kwargs):
    if RESULTS_FILE:
        results = {
            "conflicts": dict(conflicts),
            "conflicts_measured": dict(conflicts_measured),
            "failures": dict(failures),
            "ingested": dict(ingested),
        }
        with open(RESULTS_FILE, "w") as file:
            json.dump(results, file, indent=2)
