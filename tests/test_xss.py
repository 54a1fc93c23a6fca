"""Hostile text stays text: a corpus of XSS and injection payloads goes in through every free-text field and
comes out inert on every page, HTMX partial and chart that shows it.

Each case writes the corpus through one field the way its users do (the API, a CSV import, an HTMX form, a
settings page, a webhook), one row per payload, then reads the pages that show the field. On each page:

- no element, attribute or script came out of a payload: no <script> but static files and json_script data,
  no event-handler attribute, no `javascript:` URL, no payload in an attribute that acts (href, hx-*...);
- json_script data holds the payload as data (`<` and `>` as \\u003C and \\u003E, so `</script>` cannot end it);
- the template syntax was not evaluated: the secret key never shows;
- each payload shows as the text that was typed, so the page really had it to escape.

A field whose rules refuse a payload (template fields refuse template syntax) must refuse it with an
answer that is itself inert.
"""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import hmac
import io
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from html.parser import HTMLParser

import pytest
from django.conf import settings
from django.contrib.auth.models import User
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from accounts.models import Account, ImportJob, Metric, Plan, UsageSnapshot
from accounts.tokens import api_token_create
from opportunities.models import AccountScore, LostReason, Opportunity, Outcome, Stage
from opportunities.selectors import top_open_opportunities
from playbooks.models import Experiment, Play, Rule
from tests.factories import AccountFactory, MrrMovementFactory, OpportunityFactory, metric, plan

PAYLOADS = {
    "script": "<script>alert(1)</script>",
    "attribute": '"><img src=x onerror=alert(1)>',
    "script-close": "</script><script>alert(1)</script>",
    "javascript-url": "javascript:alert(1)",
    "template-variable": "{{ settings.SECRET_KEY }}",
    "template-tag": "{% load static %}{% debug %}",
    "sql": "'; DROP TABLE accounts_account; --",
    "rtl-override": "invoice\u202egpj.exe",
}
CORPUS = list(PAYLOADS.values())
TEMPLATE_SYNTAX = ("{{", "{%")
# What reaches the browser's JavaScript or its navigation: a payload must never land in these.
ACTIVE_ATTRIBUTES = {"href", "src", "action", "formaction", "srcdoc", "style", "xlink:href"}
UNSAFE_SCHEMES = ("javascript:", "vbscript:", "data:text/html")
# What htmx shows as text in the browser's own dialog (window.confirm, window.prompt): a payload there is text.
DIALOG_ATTRIBUTES = {"hx-confirm", "hx-prompt"}
HTMX = {"HX-Request": "true"}
SEGMENT_SECRET = "segment-shared-secret"


# --- Reading a page as a browser would ---------------------------------------------------------------------


class ParsedPage(HTMLParser):
    """Text, attributes and scripts of a page. Like a browser, a script's content ends at the first `</script`."""

    def __init__(self, html: str):
        super().__init__(convert_charrefs=True)
        self.text: list[str] = []
        self.attributes: list[tuple[str, str, str]] = []
        self.scripts: list[tuple[dict, str]] = []
        self._script: tuple[dict, list[str]] | None = None
        self.feed(html)
        self.close()

    def handle_starttag(self, tag, attrs):
        for name, value in attrs:
            self.attributes.append((tag, name, value or ""))
            self.text.append(value or "")
        if tag == "script":
            self._script = (dict(attrs), [])

    def handle_startendtag(self, tag, attrs):
        for name, value in attrs:
            self.attributes.append((tag, name, value or ""))
            self.text.append(value or "")

    def handle_endtag(self, tag):
        if tag == "script" and self._script is not None:
            self.scripts.append((self._script[0], "".join(self._script[1])))
            self._script = None

    def handle_data(self, data):
        if self._script is not None:
            self._script[1].append(data)
        else:
            self.text.append(data)


def json_strings(value) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for item in value.values():
            yield from json_strings(item)
    elif isinstance(value, list):
        for item in value:
            yield from json_strings(item)


@dataclass
class Shown:
    """A response to check, and the payloads it must show (as text, or as json_script data with `in_json`)."""

    where: str
    html: str
    payloads: list[str]
    in_json: bool = False


def assert_inert(shown: Shown) -> None:
    page = ParsedPage(shown.html)
    where = shown.where
    for attrs, content in page.scripts:
        if attrs.get("type") == "application/json":
            assert "<" not in content and ">" not in content, f"{where}: json_script left markup unescaped"
            json.loads(content)
        else:
            assert attrs.get("src") and not content.strip(), f"{where}: an inline script: {content[:200]!r}"
    for tag, name, value in page.attributes:
        assert not name.startswith("on"), f"{where}: an event handler <{tag} {name}={value!r}>"
        if name in ACTIVE_ATTRIBUTES or name.startswith("hx-"):
            squeezed = "".join(value.split()).lower()
            assert not squeezed.startswith(UNSAFE_SCHEMES), f"{where}: <{tag} {name}={value!r}>"
            if name in DIALOG_ATTRIBUTES:
                continue
            for payload in CORPUS:
                assert payload not in value, f"{where}: a payload in <{tag} {name}={value!r}>"
    assert "<script>alert(1)" not in shown.html, f"{where}: a payload's script tag"
    assert "<img src=x onerror" not in shown.html, f"{where}: a payload's img tag"
    assert settings.SECRET_KEY not in shown.html, f"{where}: the secret key"
    if shown.in_json:
        data = [
            s
            for attrs, content in page.scripts
            if attrs.get("type") == "application/json"
            for s in json_strings(json.loads(content))
        ]
        for payload in shown.payloads:
            assert payload in data, f"{where}: {payload!r} is not in the chart data"
    else:
        text = "\n".join(page.text)
        for payload in shown.payloads:
            assert payload in text, f"{where}: {payload!r} is not shown as text"


# --- The world the payloads go into ------------------------------------------------------------------------


@dataclass
class World:
    csm: User
    manager: User
    admin: User
    as_csm: Client
    as_manager: Client
    as_admin: Client
    token: str
    on_commit: Callable
    today: dt.date = field(default_factory=timezone.localdate)

    def get(self, client: Client, url: str, *, htmx: bool = False, status: int = 200) -> str:
        response = client.get(url, headers=HTMX if htmx else {})
        assert response.status_code == status, (url, response.status_code)
        return response.content.decode()

    def account_page(self, client: Client, account: Account) -> str:
        """The account page as the browser shows it: the page, then the timeline htmx loads into it."""
        page = self.get(client, account.get_absolute_url())
        assert reverse("opportunities:timeline", args=[account.pk]) in page
        return page + self.get(client, reverse("opportunities:timeline", args=[account.pk]), htmx=True)

    def post(self, client: Client, url: str, data: dict, *, htmx: bool = False, status: int | None = None):
        response = client.post(url, data, headers=HTMX if htmx else {})
        assert response.status_code < 500, (url, response.status_code)
        if status is not None:
            assert response.status_code == status, (url, response.status_code, response.content.decode()[:2000])
        return response

    def book_account(self, **fields) -> Account:
        return self.add_to_book(AccountFactory(owner=self.csm, **fields))

    def add_to_book(self, account: Account) -> Account:
        """The account shows on every list: it has an open opportunity and has paid for over a year."""
        OpportunityFactory(account=account, reasons=[{"text": "Seats at 95%", "points": 40, "rule": "Seats"}])
        MrrMovementFactory(
            account=account,
            kind="new",
            mrr_before=Decimal(0),
            mrr_after=Decimal("29.00"),
            occurred_on=self.today - dt.timedelta(days=400),
        )
        return account

    def opportunity(self, *, stage: Stage = Stage.IDENTIFY, **fields) -> Opportunity:
        account = AccountFactory(owner=self.csm, plan=plan("Basic"))
        return OpportunityFactory(account=account, stage=stage, **fields)


@pytest.fixture
def world(db, csm, manager, admin_user, eager_celery, django_capture_on_commit_callbacks, settings):
    settings.SEGMENT_SHARED_SECRET = SEGMENT_SECRET
    clients = []
    for user in (csm, manager, admin_user):
        client = Client()
        client.force_login(user)
        clients.append(client)
    return World(
        csm=csm,
        manager=manager,
        admin=admin_user,
        as_csm=clients[0],
        as_manager=clients[1],
        as_admin=clients[2],
        token=api_token_create(name="crm sync")[1],
        on_commit=django_capture_on_commit_callbacks,
    )


def account_pages(w: World, accounts: list[Account], payloads: list[str], *, on_list: str = "") -> Iterator[Shown]:
    """The account list (its rows show names and external ids, its filters industries and regions) and each
    account's page."""
    rows = payloads if on_list in ("name", "external_id") else []
    filters = payloads if on_list in ("industry", "region") else []
    yield Shown("account list", w.get(w.as_manager, reverse("accounts:list")), rows + filters)
    yield Shown("account list (htmx)", w.get(w.as_manager, reverse("accounts:list"), htmx=True), rows)
    for account, payload in zip(accounts, payloads, strict=True):
        yield Shown(f"account page {payload!r}", w.account_page(w.as_csm, account), [payload])


def book_pages(w: World, payloads: list[str], *, on_list: str) -> Iterator[Shown]:
    """The queue, the CSM's home (its top five), the metrics drill-down (names), and the pipeline (its open
    pipeline by industry and region, and its filters)."""
    names = payloads if on_list == "name" else []
    segments = payloads if on_list in ("industry", "region") else []
    yield Shown("queue", w.get(w.as_manager, reverse("opportunities:queue")), names + segments)
    yield Shown("queue (htmx)", w.get(w.as_manager, reverse("opportunities:queue"), htmx=True), names + segments)
    top = [o.account.name for o in top_open_opportunities(user=w.csm)]
    assert len(top) == 5
    yield Shown("csm home", w.get(w.as_csm, reverse("home")), top)
    yield Shown("pipeline", w.get(w.as_manager, reverse("pipeline:page")), segments)
    yield Shown("pipeline (htmx)", w.get(w.as_manager, reverse("pipeline:page"), htmx=True), segments)
    drill = f"{reverse('metrics:page')}?drill=customers_at_start"
    yield Shown("metrics drill-down", w.get(w.as_manager, drill), names)
    yield Shown("metrics drill-down (htmx)", w.get(w.as_manager, drill, htmx=True), names)


# --- The fields --------------------------------------------------------------------------------------------

ACCOUNT_FIELDS = ("name", "industry", "region", "external_id")


def account_item(field_name: str, index: int, payload: str) -> dict:
    item = {
        "external_id": f"xss-{index}",
        "name": f"Company {index}",
        "industry": "Software",
        "region": "EMEA",
        "plan": "Basic",
        "mrr": "29.00",
        "owner_email": "casey@example.com",
    }
    item[field_name] = payload
    return item


def accounts_via_api(field_name: str) -> Callable[[World], Iterator[Shown]]:
    def write(w: World) -> Iterator[Shown]:
        items = [account_item(field_name, i, p) for i, p in enumerate(CORPUS)]
        response = w.as_csm.post(
            "/api/v1/accounts",
            json.dumps({"accounts": items}),
            content_type="application/json",
            headers={"Authorization": f"Bearer {w.token}"},
        )
        assert response.status_code == 200, response.content
        accounts = [w.add_to_book(Account.objects.get(external_id=item["external_id"])) for item in items]
        yield from account_pages(w, accounts, CORPUS, on_list=field_name)
        yield from book_pages(w, CORPUS, on_list=field_name)

    write.__name__ = f"api: account {field_name}"
    return write


def accounts_via_csv(field_name: str) -> Callable[[World], Iterator[Shown]]:
    def write(w: World) -> Iterator[Shown]:
        items = [account_item(field_name, i, p) for i, p in enumerate(CORPUS)]
        out = io.StringIO()
        writer = csv.DictWriter(out, fieldnames=list(items[0]))
        writer.writeheader()
        writer.writerows(items)
        job = upload(w, out.getvalue(), kind="accounts", name="accounts.csv")
        assert job.status == ImportJob.Status.SUCCEEDED, job.errors
        accounts = [Account.objects.get(external_id=item["external_id"]) for item in items]
        yield Shown("import page", w.get(w.as_manager, job.get_absolute_url()), [])
        yield from account_pages(w, accounts, CORPUS, on_list=field_name)

    write.__name__ = f"csv: account {field_name}"
    return write


def upload(w: World, text: str, *, kind: str, name: str) -> ImportJob:
    file = SimpleUploadedFile(name, text.encode(), "text/csv")
    with w.on_commit(execute=True):
        w.post(w.as_manager, reverse("accounts:imports"), {"kind": kind, "on_error": "skip", "file": file}, status=302)
    return ImportJob.objects.latest("created_at")


def csv_error_report(w: World) -> Iterator[Shown]:
    """Cells of a usage file naming accounts that do not exist: the error report quotes them."""
    rows = "".join(f'"{p.replace(chr(34), chr(34) * 2)}",seats,3,2026-11-01\n' for p in CORPUS)
    job = upload(w, "account,metric,value,date\n" + rows, kind="usage", name="usage.csv")
    assert job.error_count == len(CORPUS)
    yield Shown("import errors", w.get(w.as_manager, job.get_absolute_url()), CORPUS)
    yield Shown("import errors (htmx)", w.get(w.as_manager, job.get_absolute_url(), htmx=True), CORPUS)
    # The downloadable report is a CSV attachment, which browsers save rather than render.
    report = w.as_manager.get(reverse("accounts:import_errors", args=[job.pk]))
    assert report["Content-Type"] == "text/csv; charset=utf-8"
    assert report["Content-Disposition"].startswith("attachment;")
    cells = {cell for row in csv.reader(io.StringIO(b"".join(report.streaming_content).decode())) for cell in row}
    assert set(CORPUS) <= cells


def csv_filename(w: World) -> Iterator[Shown]:
    for payload in CORPUS:
        upload(w, "account,metric,value,date\nnobody,seats,1,2026-11-01\n", kind="usage", name=f"{payload}.csv")
    jobs = list(ImportJob.objects.order_by("pk"))
    # Django keeps an upload's base name (a payload with a slash is cut there; the rest is still hostile) and
    # drops the right-to-left override that would disguise a file's extension.
    assert [job.filename for job in jobs] == [f"{p.rpartition('/')[2].replace(chr(0x202E), '')}.csv" for p in CORPUS]
    yield Shown("imports", w.get(w.as_manager, reverse("accounts:imports")), [job.filename for job in jobs])
    for job in jobs:
        yield Shown(f"import {job.filename!r}", w.get(w.as_manager, job.get_absolute_url()), [job.filename])


def notes(w: World) -> Iterator[Shown]:
    for payload in CORPUS:
        opportunity = w.opportunity()
        url = reverse("opportunities:note_add", args=[opportunity.account_id])
        response = w.post(w.as_csm, url, {"body": payload, "opportunity": opportunity.pk}, htmx=True, status=200)
        yield Shown("note (htmx answer)", response.content.decode(), [payload])
        yield Shown("account page with the note", w.account_page(w.as_csm, opportunity.account), [payload])


def qualification(w: World) -> Iterator[Shown]:
    for payload in CORPUS:
        opportunity = w.opportunity(stage=Stage.QUALIFY)
        answers = {name: payload for name in ("business_goals", "blockers", "decision_maker", "timeline")}
        data = {"version": opportunity.version, "need_confirmed": "yes", "action": "save", **answers}
        response = w.post(
            w.as_csm, reverse("opportunities:qualify", args=[opportunity.pk]), data, htmx=True, status=200
        )
        yield Shown("qualify (htmx answer)", response.content.decode(), [payload])
        yield Shown("account page, qualify", w.account_page(w.as_csm, opportunity.account), [payload])


def value_proposition(w: World) -> Iterator[Shown]:
    for payload in CORPUS:
        opportunity = w.opportunity(stage=Stage.PRESENT)
        data = {
            "version": opportunity.version,
            "target_plan": plan("Pro").pk,
            "value_proposition": payload,
            "hours_saved_per_month": "10",
            "hourly_cost": "50",
            "avoided_per_month": "0",
            "action": "save",
        }
        response = w.post(
            w.as_csm, reverse("opportunities:present", args=[opportunity.pk]), data, htmx=True, status=200
        )
        yield Shown("present (htmx answer)", response.content.decode(), [payload])
        yield Shown("account page, present", w.account_page(w.as_csm, opportunity.account), [payload])


def email(w: World) -> Iterator[Shown]:
    for payload in CORPUS:
        opportunity = w.opportunity(stage=Stage.PRESENT, target_plan=plan("Pro"))
        data = {"version": opportunity.version, "to": "buyer@example.com", "subject": payload, "body": payload}
        url = reverse("opportunities:email", args=[opportunity.pk])
        preview = w.post(w.as_csm, url, {**data, "action": "preview"}, htmx=True, status=200)
        yield Shown("email preview (htmx answer)", preview.content.decode(), [payload])
        sent = w.post(w.as_csm, url, {**data, "action": "send"}, htmx=True, status=200)
        yield Shown("email sent (htmx answer)", sent.content.decode(), [])
        yield Shown("account page, email sent", w.account_page(w.as_csm, opportunity.account), [payload])


def merge_values(w: World) -> Iterator[Shown]:
    """The email draft merges the account's name and the CSM's value proposition into the default template."""
    for payload in CORPUS:
        account = AccountFactory(owner=w.csm, plan=plan("Basic"), name=payload)
        OpportunityFactory(
            account=account, stage=Stage.PRESENT, target_plan=plan("Pro"), roi_inputs={"value_proposition": payload}
        )
        page = w.account_page(w.as_csm, account)
        yield Shown("account page, email draft", page, [f"{payload}: room to grow on Pro", f"\n{payload}\n"])


def lost_detail(w: World) -> Iterator[Shown]:
    reason = LostReason.objects.filter(active=True).first()
    for payload in CORPUS:
        opportunity = w.opportunity()
        data = {"version": opportunity.version, "outcome": "lost", "lost_reason": reason.pk, "lost_detail": payload}
        response = w.post(w.as_csm, reverse("opportunities:close", args=[opportunity.pk]), data, htmx=True, status=200)
        yield Shown("close as lost (htmx answer)", response.content.decode(), [payload])
        yield Shown("account page, lost", w.account_page(w.as_csm, opportunity.account), [payload])


def score_reasons(w: World) -> Iterator[Shown]:
    """Reasons quote rule names and metric labels, which admins type."""
    accounts = []
    for payload in CORPUS:
        account = w.book_account()
        Opportunity.objects.filter(account=account).update(reasons=[{"text": payload, "rule": payload, "points": 40}])
        AccountScore.objects.create(
            account=account,
            as_of=w.today,
            score=40,
            reasons=[{"text": payload, "rule": payload, "points": 40}],
            computed_at=timezone.now(),
        )
        accounts.append(account)
    yield from account_pages(w, accounts, CORPUS)
    yield Shown("queue", w.get(w.as_manager, reverse("opportunities:queue")), CORPUS)
    yield Shown("csm home", w.get(w.as_csm, reverse("home")), [])


def user_names(w: World) -> Iterator[Shown]:
    """Users' names come from the Django admin and show wherever an owner does."""
    for index, payload in enumerate(CORPUS):
        user = User.objects.create_user(f"csm-{index}", first_name=payload, last_name="Doe")
        user.groups.add(w.csm.groups.get())
        account = AccountFactory(owner=user, plan=plan("Basic"))
        OpportunityFactory(account=account)
    names = [f"{payload} Doe" for payload in CORPUS]
    yield Shown("queue", w.get(w.as_manager, reverse("opportunities:queue")), names)
    yield Shown("account list", w.get(w.as_manager, reverse("accounts:list")), names)
    yield Shown("manager home", w.get(w.as_manager, reverse("home")), names)
    yield Shown("pipeline", w.get(w.as_manager, reverse("pipeline:page")), names)
    opportunity = Opportunity.objects.filter(owner__username="csm-0").get()
    actions = reverse("opportunities:actions", args=[opportunity.pk])
    yield Shown("queue row actions", w.get(w.as_manager, actions, htmx=True), names)
    for index, payload in enumerate(CORPUS):
        client = Client()
        client.force_login(User.objects.get(username=f"csm-{index}"))
        yield Shown("own home", w.get(client, reverse("home")), [f"{payload} Doe"])


def settings_pages(w: World, payloads: list[str]) -> Iterator[Shown]:
    yield Shown("settings index", w.get(w.as_admin, reverse("settings:index")), [])
    yield Shown("audit log", w.get(w.as_admin, reverse("settings:audit")), payloads)


def lost_reasons(w: World) -> Iterator[Shown]:
    for index, payload in enumerate(CORPUS):
        w.post(
            w.as_admin,
            reverse("settings:lost_reason_create"),
            {"key": f"xss-{index}", "label": payload, "active": "on"},
            status=302,
        )
    yield Shown("lost reasons", w.get(w.as_admin, reverse("settings:lost_reasons")), CORPUS)
    opportunity = w.opportunity()
    yield Shown("account page, close form", w.account_page(w.as_csm, opportunity.account), CORPUS)
    for reason in LostReason.objects.filter(key__startswith="xss-"):
        lost = w.opportunity()
        Opportunity.objects.filter(pk=lost.pk).update(
            outcome=Outcome.LOST, lost_reason=reason, closed_at=timezone.now(), stage=Stage.PRESENT
        )
        yield Shown("account page, lost", w.account_page(w.as_csm, lost.account), [reason.label])
    yield Shown("pipeline, lost reasons", w.get(w.as_manager, reverse("pipeline:page")), CORPUS)
    yield from settings_pages(w, CORPUS)


def plans(w: World) -> Iterator[Shown]:
    from tests.test_settings_plans import plan_form_data

    for index, payload in enumerate(CORPUS):
        data = plan_form_data(
            None,
            features=[("xss", payload, payload)],
            name=payload,
            tier_rank=20 + index,
            monthly_price="500",
            annual_price="5000",
            description=payload,
        )
        preview = w.post(w.as_admin, reverse("settings:plan_create"), {**data, "preview": "1"}, htmx=True, status=200)
        yield Shown("plan preview (htmx answer)", preview.content.decode(), [payload])
        w.post(w.as_admin, reverse("settings:plan_create"), data, status=302)
    created = list(Plan.objects.filter(tier_rank__gte=20).order_by("tier_rank"))
    assert [p.name for p in created] == CORPUS
    yield Shown("plans", w.get(w.as_admin, reverse("settings:plans")), CORPUS)
    for p in created:
        yield Shown(f"plan {p.name!r}", w.get(w.as_admin, reverse("settings:plan_edit", args=[p.pk])), [p.name])
        account = w.book_account(plan=p)
        yield Shown(f"account on {p.name!r}", w.account_page(w.as_csm, account), [p.name])
    yield Shown("admin home", w.get(w.as_admin, reverse("home")), CORPUS)
    yield Shown("pipeline, by plan", w.get(w.as_manager, reverse("pipeline:page")), CORPUS)
    yield Shown("account list", w.get(w.as_manager, reverse("accounts:list")), CORPUS)
    opportunity = w.opportunity(stage=Stage.PRESENT)
    yield Shown("account page, target plans", w.account_page(w.as_csm, opportunity.account), CORPUS)
    yield from settings_pages(w, CORPUS)


def metrics(w: World) -> Iterator[Shown]:
    account = AccountFactory(owner=w.csm, plan=plan("Basic"))
    # Units are short: the payloads too long for one go into the label and the description only.
    short = [p for p in CORPUS if len(p) <= Metric._meta.get_field("unit").max_length]
    for index, payload in enumerate(CORPUS):
        data = {
            "key": f"xss_{index}",
            "label": payload,
            "unit": payload if payload in short else "GB",
            "kind": "limit",
            "display_order": 50 + index,
            "description": payload,
        }
        w.post(w.as_admin, reverse("settings:metric_create"), data, status=302)
        for days_ago in (2, 1):
            UsageSnapshot.objects.create(
                account=account,
                metric=Metric.objects.get(key=f"xss_{index}"),
                value=5,
                captured_on=w.today - dt.timedelta(days=days_ago),
            )
    yield Shown("metrics", w.get(w.as_admin, reverse("settings:metrics")), CORPUS)
    page = w.account_page(w.as_csm, account)
    yield Shown("account page, usage", page, CORPUS)
    yield Shown("account page, usage chart data", page, CORPUS, in_json=True)
    # json_script writes the markup of a payload as escapes, so `</script>` cannot close the data's element.
    assert r"\u003C/script\u003E\u003Cscript\u003Ealert(1)\u003C/script\u003E" in page
    yield Shown("account list", w.get(w.as_manager, reverse("accounts:list")), CORPUS)
    yield Shown("plan edit", w.get(w.as_admin, reverse("settings:plan_edit", args=[plan("Basic").pk])), CORPUS)
    yield Shown("new rule", w.get(w.as_admin, reverse("settings:rule_create")), CORPUS)
    yield from settings_pages(w, CORPUS)


def stripe_prices(w: World) -> Iterator[Shown]:
    for index, payload in enumerate(CORPUS):
        data = {"price_id": f"price_xss_{index}", "plan": plan("Pro").pk, "description": payload}
        w.post(w.as_admin, reverse("settings:stripe_price_create"), data, status=302)
    yield Shown("stripe prices", w.get(w.as_admin, reverse("settings:stripe_prices")), CORPUS)
    yield from settings_pages(w, CORPUS)


def api_tokens(w: World) -> Iterator[Shown]:
    for payload in CORPUS:
        response = w.post(w.as_admin, reverse("settings:tokens"), {"name": payload}, status=200)
        yield Shown("token created", response.content.decode(), [payload])
    yield Shown("tokens", w.get(w.as_admin, reverse("settings:tokens")), CORPUS)


def rules(w: World) -> Iterator[Shown]:
    for payload in CORPUS:
        data = {
            "name": payload,
            "description": payload,
            "metric": metric("storage_gb").pk,
            "min_utilization": "85",
            "weight": "30",
            "enabled": "on",
        }
        preview = w.post(w.as_admin, reverse("settings:rule_create"), {**data, "preview": "1"}, htmx=True, status=200)
        yield Shown("rule preview (htmx answer)", preview.content.decode(), [])
        w.post(w.as_admin, reverse("settings:rule_create"), data, status=302)
    yield Shown("rules", w.get(w.as_admin, reverse("settings:rules")), CORPUS)
    for rule in Rule.objects.filter(name__in=CORPUS):
        yield Shown(
            f"rule {rule.name!r}", w.get(w.as_admin, reverse("settings:rule_edit", args=[rule.pk])), [rule.name]
        )
    yield Shown("new play", w.get(w.as_admin, reverse("settings:play_create")), CORPUS)
    yield from settings_pages(w, CORPUS)


PLAY_TEXT_FIELDS = ("name", "description", "talking_points", "prompt_cta_label")
PLAY_TEMPLATE_FIELDS = ("email_subject", "email_body", "prompt_text", "downgrade_save_subject", "downgrade_save_body")


def plays(w: World) -> Iterator[Shown]:
    from tests.test_play_settings import play_data

    for index, payload in enumerate(CORPUS):
        fields = {name: payload for name in PLAY_TEXT_FIELDS + PLAY_TEMPLATE_FIELDS}
        # Each field a little different, so that each one must show for its text to be found.
        fields |= {
            "name": f"{payload} {index}",
            "talking_points": f"{payload} (talk)",
            "prompt_cta_label": f"{payload} (cta)",
        }
        data = play_data(**fields)
        preview = w.post(w.as_admin, reverse("settings:play_create"), {**data, "preview": "1"}, htmx=True, status=200)
        yield Shown(
            "play preview (htmx answer)",
            preview.content.decode(),
            [] if payload.startswith(TEMPLATE_SYNTAX) else [payload],
        )
        if payload.startswith(TEMPLATE_SYNTAX):
            # Template syntax outside the sandbox's allow-list is refused, with the errors on the form.
            refused = w.post(w.as_admin, reverse("settings:play_create"), data, status=422)
            yield Shown("play refused", refused.content.decode(), [payload])
            fields = {**fields, **dict.fromkeys(PLAY_TEMPLATE_FIELDS, "Hi {{ account_name }}")}
            data = play_data(**fields)
        w.post(w.as_admin, reverse("settings:play_create"), data, status=302)
    created = list(Play.objects.order_by("pk"))
    assert len(created) == len(CORPUS)
    yield Shown("plays", w.get(w.as_admin, reverse("settings:plays")), [p.name for p in created])
    for play in created:
        edit = w.get(w.as_admin, reverse("settings:play_edit", args=[play.pk]))
        yield Shown(
            f"play {play.name!r}", edit, [play.name, play.description, play.talking_points, play.prompt_cta_label]
        )
        # The CSM's email draft starts from the play's templates, merged for the account.
        opportunity = w.opportunity(stage=Stage.PRESENT, target_plan=plan("Pro"), play=play)
        shown = [] if play.email_subject.startswith("Hi ") else [play.email_subject]
        yield Shown(f"account page, play {play.name!r}", w.account_page(w.as_csm, opportunity.account), shown)
    yield Shown("new experiment", w.get(w.as_admin, reverse("settings:experiment_create")), [p.name for p in created])
    yield from settings_pages(w, [])


def experiments(w: World) -> Iterator[Shown]:
    from tests.test_experiment_pages import form_data

    for index, payload in enumerate(CORPUS):
        play = Play.objects.create(name=f"Play {index}")
        data = form_data(
            play,
            name=payload,
            hypothesis=f"{payload} (hypothesis)",
            **{"variants-0-name": f"{payload} (variant)", "variants-1-prompt_cta_label": f"{payload} (cta)"},
        )
        w.post(w.as_admin, reverse("settings:experiment_create"), data, status=302)
    yield Shown("experiments", w.get(w.as_admin, reverse("settings:experiments")), CORPUS)
    for experiment in Experiment.objects.all():
        url = reverse("settings:experiment_detail", args=[experiment.pk])
        texts = [
            experiment.name,
            experiment.hypothesis,
            *(f"{experiment.name} ({part})" for part in ("variant", "cta")),
        ]
        yield Shown(f"experiment {experiment.name!r}", w.get(w.as_admin, url), texts)
    yield from settings_pages(w, [])


def segment(w: World) -> Iterator[Shown]:
    """Segment's group traits name accounts; its track events name the features hit."""
    from accounts.models import SegmentEventMapping

    SegmentEventMapping.objects.create(event_name="Locked Feature Hit", kind="locked_feature_hit")
    messages = []
    for index, payload in enumerate(CORPUS):
        group_id = f"seg-{index}"
        messages.append(
            {
                "type": "group",
                "groupId": group_id,
                "userId": f"u-{index}",
                "messageId": f"g-{index}",
                "traits": {"name": payload, "industry": f"{payload} (industry)"},
            }
        )
        messages.append(
            {
                "type": "track",
                "event": "Locked Feature Hit",
                "userId": f"u-{index}",
                "messageId": f"t-{index}",
                "properties": {"feature": f"{payload} (feature)"},
                "timestamp": timezone.now().isoformat(),
            }
        )
    body = json.dumps({"batch": messages}).encode()
    signature = hmac.new(SEGMENT_SECRET.encode(), body, hashlib.sha1).hexdigest()
    response = w.as_csm.post(
        "/api/v1/segment", body, content_type="application/json", headers={"X-Signature": signature}
    )
    assert response.status_code == 200, response.content
    accounts = []
    for index in range(len(CORPUS)):
        account = Account.objects.get(external_id=f"seg-{index}")
        Account.objects.filter(pk=account.pk).update(owner=w.csm)
        accounts.append(account)
    yield from account_pages(w, accounts, CORPUS, on_list="name")
    for account, payload in zip(accounts, CORPUS, strict=True):
        texts = [f"{payload} (industry)", f"{payload} (feature)"]
        yield Shown("account page, industry and locked features", w.account_page(w.as_csm, account), texts)


# --- The newest features: tasks, sequence steps, surveys, contacts, collaborators -----------------------------


def tasks(w: World) -> Iterator[Shown]:
    """A task added by hand on the account page: its title and detail show on the task list, the account's
    tasks panel and timeline, the task-due notification (centre and bell) and the plain-text daily digest."""
    from django.core import mail

    from accounts.models import Task
    from accounts.work_services import digest_send, tasks_due_notify

    account = w.book_account(name="Acme Analytics")
    url = reverse("tasks:add", args=[account.pk])
    for payload in CORPUS:
        data = {"title": payload, "detail": f"{payload} (detail)", "due_on": w.today.isoformat()}
        response = w.post(w.as_csm, url, data, htmx=True, status=200)
        yield Shown("task added (htmx answer)", response.content.decode(), [payload, f"{payload} (detail)"])
    details = [f"{p} (detail)" for p in CORPUS]
    assert sorted(Task.objects.values_list("title", flat=True)) == sorted(CORPUS)
    yield Shown("task list", w.get(w.as_csm, reverse("tasks:list")), CORPUS + details)
    yield Shown("task list (htmx)", w.get(w.as_csm, reverse("tasks:list"), htmx=True), CORPUS + details)
    yield Shown("task list, manager", w.get(w.as_manager, reverse("tasks:list")), CORPUS)
    yield Shown("account page, tasks panel and timeline", w.account_page(w.as_csm, account), CORPUS + details)

    assert tasks_due_notify(on=w.today, at=timezone.now()) == len(CORPUS)
    due = [f"Due today: {p} (Acme Analytics)" for p in CORPUS]
    yield Shown("notification centre", w.get(w.as_csm, reverse("notifications:list")), due)
    bell = w.as_csm.get(reverse("notifications:list"), headers={**HTMX, "HX-Target": "bell-panel"})
    assert bell.status_code == 200
    yield Shown("bell", bell.content.decode(), due[-6:])
    # The digest is plain text only: the payloads go out as typed, with no HTML part to run them in.
    mail.outbox.clear()
    assert digest_send(user=w.csm, on=w.today, at=timezone.now() + dt.timedelta(seconds=1))
    [digest] = mail.outbox
    assert digest.content_subtype == "plain" and not getattr(digest, "alternatives", [])
    for payload in CORPUS:
        assert f"- Due today: {payload} (Acme Analytics)\n" in digest.body
    assert "&lt;" not in digest.body and settings.SECRET_KEY not in digest.body

    for task in Task.objects.order_by("pk"):
        complete = reverse("tasks:complete", args=[task.pk])
        done = w.post(w.as_csm, complete, {"from": "panel"}, htmx=True, status=200)
        yield Shown("task completed (htmx answer)", done.content.decode(), [task.title])
    yield Shown("account page, tasks done", w.account_page(w.as_csm, account), CORPUS)


def sequence_steps(w: World) -> Iterator[Shown]:
    """An admin writes a step's subject and body in the play's sequence editor (previewing it first); after
    delivery the account's timeline says what was sent. Template syntax is refused, and the refusal is inert."""
    from accounts.models import Contact
    from playbooks.models import StepRun
    from playbooks.sequence_services import enrollment_start, steps_deliver_due
    from tests.test_sequence_pages import step_data

    delivered = []
    for index, payload in enumerate(CORPUS):
        play = Play.objects.create(
            name=f"Seats upgrade {index}", target_plan=plan("Pro"), email_subject="Room", email_body="Hi"
        )
        url = reverse("settings:play_step_create", args=[play.pk])
        data = step_data(kind="email", subject=payload, body=f"{payload} (body)")
        refused = payload.startswith(TEMPLATE_SYNTAX)
        preview = w.post(w.as_admin, url, {"preview": "1", **data}, htmx=True, status=200)
        yield Shown("step preview (htmx answer)", preview.content.decode(), [] if refused else [payload])
        if refused:
            answer = w.post(w.as_admin, url, data, htmx=True, status=422)
            yield Shown("step refused (htmx answer)", answer.content.decode(), [payload, f"{payload} (body)"])
            page = w.post(w.as_admin, url, data, status=422)
            yield Shown("step refused (page)", page.content.decode(), [payload])
            continue
        saved = w.post(w.as_admin, url, data, htmx=True, status=200)
        yield Shown("step saved (htmx answer)", saved.content.decode(), [payload])
        editor = w.get(w.as_admin, reverse("settings:play_edit", args=[play.pk]))
        yield Shown("play page, sequence editor", editor, [payload])
        step = play.steps.get()
        edit = w.get(w.as_admin, reverse("settings:play_step_edit", args=[play.pk, step.pk]))
        yield Shown("step edit", edit, [payload, f"{payload} (body)"])
        account = w.book_account()
        Contact.objects.create(account=account, name="Bea Buyer", email=f"bea{index}@acme.example", is_primary=True)
        enrollment_start(account=account, play=play, at=timezone.now(), by=w.csm)
        delivered.append((account, payload, index))
    assert delivered
    steps_deliver_due(at=timezone.now() + dt.timedelta(minutes=1))
    for account, payload, index in delivered:
        run = StepRun.objects.get(account=account)
        assert run.status == StepRun.Status.SENT, run.detail
        sent = f"Sent to bea{index}@acme.example: {payload}"
        yield Shown("account page, step sent", w.account_page(w.as_csm, account), [sent])


def offered_survey(w: World, account: Account) -> int:
    from tests.test_surveys_api import seats_at

    seats_at(account, 0.96)
    response = w.as_csm.get(
        f"/api/v1/accounts/{account.external_id}/prompts", headers={"Authorization": f"Bearer {w.token}"}
    )
    assert response.status_code == 200
    [survey] = response.json()["surveys"]
    return survey["id"]


def insights_surveys(w: World, texts: list[str], *, chart: list[str], csv_cells: list[str]) -> Iterator[Shown]:
    url = reverse("insights:surveys")
    page = w.get(w.as_manager, url)
    yield Shown("insights surveys", page, texts)
    yield Shown("insights surveys (htmx)", w.get(w.as_manager, url, htmx=True), texts)
    yield Shown("insights surveys, chart data", page, chart, in_json=True)
    cells = set()
    for export in ("choices", "texts"):
        report = w.as_manager.get(f"{url}?export={export}")
        assert report.status_code == 200 and report["Content-Type"].startswith("text/csv")
        content = report.content if not report.streaming else b"".join(report.streaming_content)
        cells |= {cell for row in csv.reader(io.StringIO(content.decode())) for cell in row}
    assert set(csv_cells) <= cells, set(csv_cells) - cells


def survey_answers(w: World) -> Iterator[Shown]:
    """Answers come from the product (the API, free text and the contact's reference) and from customers on
    the public survey page; the account's timeline and the insights Surveys tab quote them."""
    from playbooks.models import FeedbackRequest, Survey
    from playbooks.surveys import QuestionSpec, survey_link_path, survey_save

    survey_save(
        survey=Survey(),
        data={
            "name": "What comes next?",
            "rule": Rule.objects.create(name="Seats at 90%", metric=metric("seats"), min_utilization=0.9, weight=40),
            "intro": "Two quick questions.",
        },
        questions=[
            QuestionSpec("What will you need most next quarter?", "choice", ("More seats", "More storage")),
            QuestionSpec("Anything else we should know?"),
        ],
        by=w.admin,
        at=timezone.now(),
    )
    churn = survey_save(
        survey=Survey(),
        data={"name": "Why the change?", "purpose": "churn_feedback", "channel": "email", "intro": "Tell us."},
        questions=[
            QuestionSpec("Which plan suits you now?", "choice", ("Basic", "None")),
            QuestionSpec("What could we have done better?"),
        ],
        by=w.admin,
        at=timezone.now(),
    )
    for payload in CORPUS:
        account = w.book_account()
        body = {"account": account.external_id, "contact": payload, "answers": {"1": "More seats", "2": payload}}
        response = w.as_csm.post(
            f"/api/v1/surveys/{offered_survey(w, account)}/responses",
            json.dumps(body),
            content_type="application/json",
            headers={"Authorization": f"Bearer {w.token}"},
        )
        assert response.status_code == 201, response.content
        yield Shown("account page, survey answered", w.account_page(w.as_csm, account), [payload])

        churned = w.book_account()
        request = FeedbackRequest.objects.create(survey=churn, account=churned, created_at=timezone.now())
        link = survey_link_path(account_id=churned.pk, survey_id=churn.pk, request_id=request.pk)
        customer = Client(enforce_csrf_checks=True)
        customer.get(link)
        data = {
            "csrfmiddlewaretoken": customer.cookies["csrftoken"].value,
            "reason": "price",
            "q1": "Basic",
            "q2": f"{payload} (public)",
        }
        answered = customer.post(link, data)
        assert answered.status_code == 303, answered.content.decode()[:2000]
        yield Shown("public survey, thanks", w.get(customer, link), [])
        yield Shown("account page, feedback", w.account_page(w.as_csm, churned), [f"{payload} (public)"])
    public = [f"{p} (public)" for p in CORPUS]
    yield from insights_surveys(w, CORPUS + public, chart=["More seats", "Basic"], csv_cells=CORPUS + public)


def survey_questions(w: World) -> Iterator[Shown]:
    """An admin writes the questions and choices in Settings > Surveys; the public page asks them and the
    insights Surveys tab counts the answers per choice (its table, chart data and CSV)."""
    from playbooks.models import FeedbackRequest, Survey
    from playbooks.surveys import survey_link_path
    from tests.test_surveys_settings import survey_form

    for index, payload in enumerate(CORPUS):
        questions = [(payload, "choice", f"Basic\n{payload} (choice)"), (f"{payload} (open)", "text", "")]
        data = survey_form(None, questions, name=f"Why the change {index}?", purpose="churn_feedback", channel="email")
        data["intro"] = f"{payload} (intro)"
        response = w.post(w.as_admin, reverse("settings:survey_create"), data)
        assert response.status_code == 302, response.content.decode()[:3000]
        survey = Survey.objects.get(name=f"Why the change {index}?")
        edit = w.get(w.as_admin, reverse("settings:survey_edit", args=[survey.pk]))
        yield Shown("survey edit", edit, [payload, f"Basic\n{payload} (choice)", f"{payload} (open)"])

        account = w.book_account()
        request = FeedbackRequest.objects.create(survey=survey, account=account, created_at=timezone.now())
        link = survey_link_path(account_id=account.pk, survey_id=survey.pk, request_id=request.pk)
        customer = Client(enforce_csrf_checks=True)
        page = customer.get(link)
        texts = [payload, f"{payload} (choice)", f"{payload} (open)", f"{payload} (intro)"]
        yield Shown("public survey", page.content.decode(), texts)
        data = {
            "csrfmiddlewaretoken": customer.cookies["csrftoken"].value,
            "reason": "price",
            "q1": f"{payload} (choice)",
            "q2": "Fine.",
        }
        answered = customer.post(link, data)
        assert answered.status_code == 303, answered.content.decode()[:2000]
        yield Shown("account page, feedback", w.account_page(w.as_csm, account), [payload])
    yield Shown("surveys", w.get(w.as_admin, reverse("settings:surveys")), [])
    choices = [f"{p} (choice)" for p in CORPUS]
    opens = [f"{p} (open)" for p in CORPUS]
    yield from insights_surveys(w, CORPUS + choices + opens, chart=choices, csv_cells=CORPUS + choices)
    yield from settings_pages(w, [])


def contacts(w: World) -> Iterator[Shown]:
    """Contacts are kept in the Django admin, whose email field takes a quoted local part: `"<script>..."@x`.
    A sequence email names its contact in the account's timeline ("Sent to ...")."""
    from django.core.exceptions import ValidationError
    from django.core.validators import validate_email

    from accounts.models import Contact
    from playbooks.models import SequenceStep, StepRun
    from playbooks.sequence_services import enrollment_start, steps_deliver_due

    def admissible(address: str) -> bool:
        try:
            validate_email(address)
        except ValidationError:
            return False
        return True

    # A quoted local part takes no space (nor an attribute payload); a quote in it is escaped.
    quoted = (f'"{p.replace(chr(34), chr(92) + chr(34))}"@acme.example' for p in CORPUS)
    addresses = [a for a in quoted if admissible(a)]
    assert len(addresses) == 3, addresses
    play = Play.objects.create(name="Seats upgrade", target_plan=plan("Pro"), email_subject="Room", email_body="Hi")
    SequenceStep.objects.create(play=play, position=1, delay_days=0, kind=SequenceStep.Kind.EMAIL)
    accounts = []
    for index, payload in enumerate(CORPUS):
        account = w.book_account()
        address = addresses[index % len(addresses)]
        contact = Contact(account=account, name=payload, email=address, title=f"{payload} (title)", is_primary=True)
        contact.full_clean()
        contact.save()
        enrollment_start(account=account, play=play, at=timezone.now(), by=w.csm)
        accounts.append((account, address))
    steps_deliver_due(at=timezone.now() + dt.timedelta(minutes=1))
    for account, address in accounts:
        run = StepRun.objects.get(account=account)
        assert run.status == StepRun.Status.SENT, run.detail
        yield Shown("account page, sent to", w.account_page(w.as_csm, account), [f"Sent to {address}: Room"])


def collaborators(w: World) -> Iterator[Shown]:
    """Users' names (set in the Django admin) on an opportunity's team: the account page's collaborators
    panel, the account executive's queue, and the notification telling them (centre and bell)."""
    from tests.factories import UserFactory

    for index, payload in enumerate(CORPUS):
        owner = UserFactory(username=f"csm-{index}", first_name=payload, last_name="Doe", role="CSM")
        sales = UserFactory(username=f"ae-{index}", first_name=payload, last_name="Roe", role="Sales")
        opportunity = OpportunityFactory(
            account=AccountFactory(owner=owner, name=f"Company {index}"), stage=Stage.PRESENT, target_plan=plan("Pro")
        )
        as_owner, as_sales = Client(), Client()
        as_owner.force_login(owner)
        as_sales.force_login(sales)
        url = reverse("opportunities:collaborator_add", args=[opportunity.pk])
        added = w.post(as_owner, url, {"user": sales.pk, "version": opportunity.version}, htmx=True, status=200)
        yield Shown("collaborator added (htmx answer)", added.content.decode(), [f"{payload} Roe"])
        page = w.account_page(as_owner, opportunity.account)
        yield Shown("account page, collaborators", page, [f"{payload} Roe"])
        yield Shown("account page, manager", w.account_page(w.as_manager, opportunity.account), [f"{payload} Roe"])
        yield Shown("account executive's queue", w.get(as_sales, reverse("opportunities:queue")), [f"Company {index}"])
        title = f"{payload} Doe added you to the opportunity on Company {index}"
        yield Shown("notification centre", w.get(as_sales, reverse("notifications:list")), [title])
        bell = as_sales.get(reverse("notifications:list"), headers={**HTMX, "HX-Target": "bell-panel"})
        assert bell.status_code == 200
        yield Shown("bell", bell.content.decode(), [title])
        yield Shown("account executive's home", w.get(as_sales, reverse("home")), [])
    yield Shown("pipeline", w.get(w.as_manager, reverse("pipeline:page")), [f"{p} Doe" for p in CORPUS])


FIELDS = [
    *(accounts_via_api(name) for name in ACCOUNT_FIELDS),
    *(accounts_via_csv(name) for name in ACCOUNT_FIELDS),
    csv_error_report,
    csv_filename,
    notes,
    qualification,
    value_proposition,
    email,
    merge_values,
    lost_detail,
    score_reasons,
    user_names,
    lost_reasons,
    plans,
    metrics,
    stripe_prices,
    api_tokens,
    rules,
    plays,
    experiments,
    segment,
    tasks,
    sequence_steps,
    survey_answers,
    survey_questions,
    contacts,
    collaborators,
]


@pytest.mark.parametrize("write", FIELDS, ids=lambda write: write.__name__)
def test_every_payload_renders_inert_where_the_field_shows(world, write):
    shown = list(write(world))

    assert shown
    for response in shown:
        assert_inert(response)


UNSAFE_URLS = [
    "javascript:alert(1)",
    "JaVaScRiPt:alert(1)",
    " javascript:alert(1)",
    "java\tscript:alert(1)",
    "data:text/html,<script>alert(1)</script>",
    "vbscript:msgbox(1)",
]


@pytest.mark.parametrize("url", UNSAFE_URLS)
@pytest.mark.parametrize("field_name", ["case_study_url", "prompt_cta_url"])
def test_a_play_refuses_a_url_that_would_run_script(world, field_name, url):
    from tests.test_play_settings import play_data

    response = world.post(world.as_admin, reverse("settings:play_create"), play_data(**{field_name: url}), status=422)

    assert f'id="id_{field_name}_error"' in response.content.decode()
    assert not Play.objects.exists()
    assert_inert(Shown("play refused", response.content.decode(), []))


@pytest.mark.parametrize("url", UNSAFE_URLS)
def test_an_experiment_variant_refuses_a_url_that_would_run_script(world, url):
    from tests.test_experiment_pages import form_data

    play = Play.objects.create(name="Seats at the limit")
    data = form_data(play, **{"variants-1-prompt_cta_url": url})

    response = world.post(world.as_admin, reverse("settings:experiment_create"), data, status=422)

    assert not Experiment.objects.exists()
    assert_inert(Shown("experiment refused", response.content.decode(), []))


LONG = "<script>alert(1)</script>" * 800  # 20,000 characters


def long_account_via_api(w: World) -> Iterator[Shown]:
    response = w.as_csm.post(
        "/api/v1/accounts",
        json.dumps({"accounts": [account_item("name", 0, LONG)]}),
        content_type="application/json",
        headers={"Authorization": f"Bearer {w.token}"},
    )
    assert response.status_code == 422
    assert not Account.objects.exists()
    yield from ()


def long_account_via_csv(w: World) -> Iterator[Shown]:
    item = account_item("name", 0, LONG)
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=list(item))
    writer.writeheader()
    writer.writerow(item)
    file = SimpleUploadedFile("accounts.csv", out.getvalue().encode(), "text/csv")
    data = {"kind": "accounts", "on_error": "skip", "file": file}
    response = w.post(w.as_manager, reverse("accounts:imports"), data, status=422)
    assert not ImportJob.objects.exists() and not Account.objects.exists()
    yield Shown("upload refused", response.content.decode(), [])


def long_note(w: World) -> Iterator[Shown]:
    opportunity = w.opportunity()
    url = reverse("opportunities:note_add", args=[opportunity.account_id])
    w.post(w.as_csm, url, {"body": LONG, "opportunity": opportunity.pk}, htmx=True)
    assert not opportunity.account.notes.exists()
    yield Shown("account page", w.account_page(w.as_csm, opportunity.account), [])


def long_qualification(w: World) -> Iterator[Shown]:
    opportunity = w.opportunity(stage=Stage.QUALIFY)
    data = {"version": opportunity.version, "decision_maker": LONG, "action": "save"}
    response = w.post(w.as_csm, reverse("opportunities:qualify", args=[opportunity.pk]), data, htmx=True, status=422)
    opportunity.refresh_from_db()
    assert opportunity.qualification == {}
    yield Shown("qualify refused (htmx answer)", response.content.decode(), [])


def long_lost_detail(w: World) -> Iterator[Shown]:
    """A free-text box without a limit takes it, and the page still shows it as text."""
    opportunity = w.opportunity()
    reason = LostReason.objects.filter(active=True).first()
    data = {"version": opportunity.version, "outcome": "lost", "lost_reason": reason.pk, "lost_detail": LONG}
    w.post(w.as_csm, reverse("opportunities:close", args=[opportunity.pk]), data, htmx=True, status=200)
    yield Shown("account page", w.account_page(w.as_csm, opportunity.account), [LONG])


def long_play_name(w: World) -> Iterator[Shown]:
    from tests.test_play_settings import play_data

    response = w.post(w.as_admin, reverse("settings:play_create"), play_data(name=LONG), status=422)
    assert not Play.objects.exists()
    yield Shown("play refused", response.content.decode(), [])


def long_segment_traits(w: World) -> Iterator[Shown]:
    message = {
        "type": "group",
        "groupId": "seg-long",
        "messageId": "g-long",
        "traits": {"name": LONG, "industry": LONG},
    }
    body = json.dumps(message).encode()
    signature = hmac.new(SEGMENT_SECRET.encode(), body, hashlib.sha1).hexdigest()
    response = w.as_csm.post(
        "/api/v1/segment", body, content_type="application/json", headers={"X-Signature": signature}
    )
    assert response.status_code == 200, response.content
    account = Account.objects.get(external_id="seg-long")
    # Traits longer than the columns are cut to fit rather than refused: Segment cannot correct a call.
    assert (account.name, account.industry) == (LONG[:200], LONG[:60])
    Account.objects.filter(pk=account.pk).update(owner=w.csm)
    yield Shown("account page", w.account_page(w.as_csm, account), [LONG[:200]])


LONG_STRINGS = [
    long_account_via_api,
    long_account_via_csv,
    long_note,
    long_qualification,
    long_lost_detail,
    long_play_name,
    long_segment_traits,
]


@pytest.mark.parametrize("write", LONG_STRINGS, ids=lambda write: write.__name__)
def test_a_very_long_string_is_refused_or_kept_as_text_never_a_server_error(world, write):
    for response in write(world):
        assert_inert(response)
