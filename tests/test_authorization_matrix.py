"""The authorization matrix: what every URL answers each role, for every method it serves.

TABLE declares, for each (URL name, method), the answer expected from seven requesters: an anonymous visitor,
Casey (the CSM who owns the accounts below), Olive (another CSM), Morgan (a manager), Ada (an admin), an
API token (a request with `Authorization: Bearer`, no session) and Sasha (an account executive in the Sales
role who collaborates on none of the opportunities below; tests/test_collaboration_access.py tries one
who does). The URLconf is walked (namespaces, the
settings pages, the API's path operations with their methods, the admin by family), so a new URL or API
operation without an entry fails the suite, and so does an entry whose URL is gone.

Every case also checks that a refused POST changed nothing in the database, that a refusal left a line on
the `upsell_crm.security` logger, and every GET that it wrote nothing.

The Django admin is covered by one entry per URL family (changelist, add, change, ...), tried on the account
model: which admin may see which model is tests/test_admin.py's business.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import re
from collections.abc import Callable
from types import SimpleNamespace
from typing import NamedTuple
from urllib.parse import urlsplit

import pytest
from django.apps import apps
from django.conf import settings
from django.contrib.contenttypes.models import ContentType
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection, transaction
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import URLPattern, URLResolver, get_resolver, reverse
from django.utils import timezone

from accounts.models import AccountEngagement, ImportJob, Metric, Notification, Plan, StripePriceMapping
from accounts.tokens import api_token_create
from accounts.work_services import notify, task_create
from opportunities.models import Collaborator, LostReason, Outcome, Stage
from playbooks.experiment_services import VariantSpec, experiment_create, experiment_start
from playbooks.models import Enrollment, Play, Rule, SequenceStep, StepRun, Survey
from playbooks.prompts import PromptRef, prompt_id
from playbooks.surveys import QuestionSpec, survey_link_token, survey_offer_id, survey_save
from playbooks.unsubscribe import unsubscribe_token
from tests.factories import AccountFactory, OpportunityFactory, UserFactory
from upsell_crm.api import api

pytestmark = pytest.mark.django_db

# --- What a response is, in the table's words ------------------------------------------------------------

LOGIN = "→ login"  # a redirect to the login page
ADMIN_LOGIN = "→ admin login"  # a redirect to the admin's login page
REDIRECT = "→ elsewhere"  # a redirect anywhere else: a form that did its work, a signed-in user sent home

LOGIN_PATH = reverse("login")
ADMIN_LOGIN_PATH = reverse("admin:login")


def outcome(response) -> int | str:
    """The status code, or for a redirect where it leads."""
    if response.status_code not in (301, 302, 303, 307, 308):
        return response.status_code
    path = urlsplit(response["Location"]).path
    if path == LOGIN_PATH:
        return LOGIN
    if path == ADMIN_LOGIN_PATH:
        return ADMIN_LOGIN
    return REDIRECT


ROLES = ("anonymous", "owner", "other_csm", "manager", "admin", "token", "sales")
AS_OTHER_CSM = "= other_csm"  # Sasha's answer is Olive's: see Expect.sales


class Expect(NamedTuple):
    anonymous: int | str
    owner: int | str
    other_csm: int | str
    manager: int | str
    admin: int | str
    token: int | str
    # Sasha sees nothing of Casey's: on every URL so far she gets what Olive gets (404 on Casey's things, 403
    # on managers' and admins' pages, her own empty home, queue and account list). An entry where that stops
    # being true names her answer as a seventh value; the default is checked like any declared answer.
    sales: int | str = AS_OTHER_CSM


def expected_answer(entry: Expect, role: str) -> int | str:
    answer = getattr(entry, role)
    return entry.other_csm if answer == AS_OTHER_CSM else answer


# The usual rows. Another CSM's account or opportunity answers 404: it does not exist as far as she knows.
PAGE = Expect(LOGIN, 200, 200, 200, 200, LOGIN)  # every signed-in role, each seeing their own
OWNED = Expect(LOGIN, 200, 404, 200, 200, LOGIN)  # Casey's account or opportunity
OWNED_POST = Expect(LOGIN, REDIRECT, 404, REDIRECT, REDIRECT, LOGIN)
MANAGERS = Expect(LOGIN, 403, 403, 200, 200, LOGIN)
MANAGERS_POST = Expect(LOGIN, 403, 403, REDIRECT, REDIRECT, LOGIN)
ADMINS = Expect(LOGIN, 403, 403, 403, 200, LOGIN)
ADMINS_POST = Expect(LOGIN, 403, 403, 403, REDIRECT, LOGIN)
API = Expect(401, 401, 401, 401, 401, 200)  # tokens only: a session does not authenticate the API
STAFF = Expect(ADMIN_LOGIN, ADMIN_LOGIN, ADMIN_LOGIN, ADMIN_LOGIN, 200, ADMIN_LOGIN)  # is_staff: Ada only
STAFF_POST = Expect(ADMIN_LOGIN, ADMIN_LOGIN, ADMIN_LOGIN, ADMIN_LOGIN, REDIRECT, ADMIN_LOGIN)
# A model's admin pages: the login-required middleware sends anonymous visitors to the app's login first.
MODEL_ADMIN = Expect(LOGIN, ADMIN_LOGIN, ADMIN_LOGIN, ADMIN_LOGIN, 200, LOGIN)
MODEL_ADMIN_DONE = Expect(LOGIN, ADMIN_LOGIN, ADMIN_LOGIN, ADMIN_LOGIN, REDIRECT, LOGIN)

TABLE: dict[tuple[str, str], Expect] = {
    # --- Public, and the session -------------------------------------------------------------------------
    ("login", "GET"): Expect(200, REDIRECT, REDIRECT, REDIRECT, REDIRECT, 200),
    ("login", "POST"): Expect(200, REDIRECT, REDIRECT, REDIRECT, REDIRECT, 200),  # a wrong password: the form again
    ("logout", "POST"): Expect(LOGIN, LOGIN, LOGIN, LOGIN, LOGIN, LOGIN),
    ("healthz", "GET"): Expect(200, 200, 200, 200, 200, 200),
    # A play email's unsubscribe link: public, the signed token is the key; the POST records the opt-out.
    ("unsubscribe", "GET"): Expect(200, 200, 200, 200, 200, 200),
    ("unsubscribe", "POST"): Expect(200, 200, 200, 200, 200, 200),
    # An emailed survey's page: public, the signed token is the key; the POST stores the answer and shows thanks.
    ("survey_public", "GET"): Expect(200, 200, 200, 200, 200, 200),
    ("survey_public", "POST"): Expect(REDIRECT, REDIRECT, REDIRECT, REDIRECT, REDIRECT, REDIRECT),
    ("home", "GET"): PAGE,
    # --- Accounts and imports ----------------------------------------------------------------------------
    ("accounts:list", "GET"): PAGE,
    ("accounts:detail", "GET"): OWNED,
    ("accounts:imports", "GET"): MANAGERS,
    ("accounts:imports", "POST"): MANAGERS_POST,
    ("accounts:import_detail", "GET"): MANAGERS,
    ("accounts:import_errors", "GET"): MANAGERS,
    ("accounts:import_template", "GET"): MANAGERS,
    # --- Working opportunities ---------------------------------------------------------------------------
    ("opportunities:queue", "GET"): PAGE,
    # From one of Casey's opportunities to the next account in the queue: a redirect, to it or to the queue.
    ("opportunities:queue_next", "GET"): Expect(LOGIN, REDIRECT, 404, REDIRECT, REDIRECT, LOGIN),
    ("opportunities:actions", "GET"): OWNED,
    ("opportunities:advance", "POST"): OWNED_POST,
    ("opportunities:snooze", "POST"): OWNED_POST,
    ("opportunities:reopen", "POST"): OWNED_POST,
    # Only managers assign: Casey's forged post is refused before the form, as an authorization failure.
    ("opportunities:assign", "POST"): Expect(LOGIN, 403, 403, REDIRECT, REDIRECT, LOGIN),
    # Only managers move accounts between CSMs.
    ("accounts:reassign", "POST"): Expect(LOGIN, 403, 403, REDIRECT, REDIRECT, LOGIN),
    ("opportunities:qualify", "POST"): OWNED_POST,
    ("opportunities:present", "POST"): OWNED_POST,
    ("opportunities:email", "POST"): OWNED_POST,
    ("opportunities:close", "POST"): OWNED_POST,
    # Casey, Morgan or Ada bring an account executive onto an opportunity (or take one off it).
    ("opportunities:collaborator_add", "POST"): OWNED_POST,
    ("opportunities:collaborator_remove", "POST"): OWNED_POST,
    ("opportunities:open", "POST"): OWNED_POST,
    ("opportunities:note_add", "POST"): OWNED_POST,
    ("opportunities:timeline", "GET"): OWNED,
    # The account page's "Plays running" panel: Casey, Morgan or Ada start, pause, resume and stop plays.
    ("sequences:enrollment_start", "POST"): OWNED_POST,
    ("sequences:enrollment_pause", "POST"): OWNED_POST,
    ("sequences:enrollment_resume", "POST"): OWNED_POST,
    ("sequences:enrollment_stop", "POST"): OWNED_POST,
    # --- Tasks and notifications ---------------------------------------------------------------------------
    ("tasks:list", "GET"): PAGE,  # each their own; a manager everyone's
    ("tasks:complete", "POST"): OWNED_POST,  # a task on Casey's account
    ("tasks:add", "POST"): OWNED_POST,  # on Casey's account
    ("notifications:list", "GET"): PAGE,
    # A notification is its recipient's alone (Casey's here), whatever the role of whoever asks.
    ("notifications:read", "POST"): Expect(LOGIN, REDIRECT, 404, 404, 404, LOGIN),
    ("notifications:read_all", "POST"): Expect(LOGIN, REDIRECT, REDIRECT, REDIRECT, REDIRECT, LOGIN),
    ("notifications:settings", "GET"): PAGE,
    ("notifications:settings", "POST"): Expect(LOGIN, REDIRECT, REDIRECT, REDIRECT, REDIRECT, LOGIN),
    # --- Managers' pages ---------------------------------------------------------------------------------
    ("metrics:page", "GET"): MANAGERS,
    ("pipeline:page", "GET"): MANAGERS,
    ("insights:adoption", "GET"): MANAGERS,
    ("insights:predictors", "GET"): MANAGERS,
    ("insights:cohorts", "GET"): MANAGERS,
    ("insights:surveys", "GET"): MANAGERS,
    ("insights:feedback", "GET"): MANAGERS,
    ("insights:winloss", "GET"): MANAGERS,
    # --- Settings: admins only ---------------------------------------------------------------------------
    ("settings:index", "GET"): ADMINS,
    ("settings:plans", "GET"): ADMINS,
    ("settings:plan_create", "GET"): ADMINS,
    ("settings:plan_create", "POST"): ADMINS_POST,
    ("settings:plan_edit", "GET"): ADMINS,
    ("settings:plan_edit", "POST"): ADMINS_POST,
    ("settings:metrics", "GET"): ADMINS,
    ("settings:metric_create", "GET"): ADMINS,
    ("settings:metric_create", "POST"): ADMINS_POST,
    ("settings:metric_edit", "GET"): ADMINS,
    ("settings:metric_edit", "POST"): ADMINS_POST,
    ("settings:stripe_prices", "GET"): ADMINS,
    ("settings:stripe_price_create", "GET"): ADMINS,
    ("settings:stripe_price_create", "POST"): ADMINS_POST,
    ("settings:stripe_price_edit", "GET"): ADMINS,
    ("settings:stripe_price_edit", "POST"): ADMINS_POST,
    ("settings:stripe_price_delete", "POST"): ADMINS_POST,
    ("settings:tokens", "GET"): ADMINS,
    ("settings:tokens", "POST"): ADMINS,  # the created token shows once, on the page answering the POST
    ("settings:token_revoke", "POST"): ADMINS_POST,
    ("settings:audit", "GET"): ADMINS,
    ("settings:lost_reasons", "GET"): ADMINS,
    ("settings:lost_reason_create", "GET"): ADMINS,
    ("settings:lost_reason_create", "POST"): ADMINS_POST,
    ("settings:lost_reason_edit", "GET"): ADMINS,
    ("settings:lost_reason_edit", "POST"): ADMINS_POST,
    ("settings:lost_reason_move", "POST"): ADMINS_POST,
    ("settings:lost_reason_set_active", "POST"): ADMINS_POST,
    ("settings:rules", "GET"): ADMINS,
    ("settings:rules", "POST"): ADMINS_POST,
    ("settings:rule_create", "GET"): ADMINS,
    ("settings:rule_create", "POST"): ADMINS_POST,
    ("settings:rule_edit", "GET"): ADMINS,
    ("settings:rule_edit", "POST"): ADMINS_POST,
    ("settings:rule_toggle", "POST"): ADMINS_POST,
    ("settings:plays", "GET"): ADMINS,
    ("settings:play_create", "GET"): ADMINS,
    ("settings:play_create", "POST"): ADMINS_POST,
    ("settings:play_edit", "GET"): ADMINS,
    ("settings:play_edit", "POST"): ADMINS_POST,
    ("settings:play_step_create", "GET"): ADMINS,
    ("settings:play_step_create", "POST"): ADMINS_POST,
    ("settings:play_step_edit", "GET"): ADMINS,
    ("settings:play_step_edit", "POST"): ADMINS_POST,
    ("settings:play_step_delete", "POST"): ADMINS_POST,
    ("settings:play_step_move", "POST"): ADMINS_POST,
    ("settings:experiments", "GET"): ADMINS,
    ("settings:experiment_create", "GET"): ADMINS,
    ("settings:experiment_create", "POST"): ADMINS_POST,
    ("settings:experiment_detail", "GET"): ADMINS,
    ("settings:experiment_start", "POST"): ADMINS_POST,
    ("settings:experiment_stop", "POST"): ADMINS_POST,
    ("settings:surveys", "GET"): ADMINS,
    ("settings:survey_create", "GET"): ADMINS,
    ("settings:survey_create", "POST"): ADMINS_POST,
    ("settings:survey_edit", "GET"): ADMINS,
    ("settings:survey_edit", "POST"): ADMINS_POST,
    # --- The JSON API ------------------------------------------------------------------------------------
    ("api-v1:api-root", "GET"): Expect(404, 404, 404, 404, 404, 404),  # nothing at the root
    ("api-v1:openapi-json", "GET"): Expect(200, 200, 200, 200, 200, 200),  # code generators fetch it
    ("api-v1:openapi-view", "GET"): STAFF,
    ("api-v1:accounts_post", "POST"): API,
    ("api-v1:usage_post", "POST"): API,
    ("api-v1:events_post", "POST"): API,
    ("api-v1:subscriptions_post", "POST"): API,
    ("api-v1:account_get", "GET"): API,
    ("api-v1:account_indicators", "GET"): API,
    ("api-v1:metrics_get", "GET"): API,
    ("api-v1:prompts_get", "GET"): API,
    ("api-v1:prompt_events_post", "POST"): Expect(401, 401, 401, 401, 401, 201),
    ("api-v1:survey_responses_post", "POST"): Expect(401, 401, 401, 401, 401, 201),
    # Segment's signature, Basic secret or an API token; no session.
    ("api-v1:segment_post", "POST"): API,
    # Stripe signs the body; nobody else gets in, whatever session or token they hold.
    ("api-v1:stripe_webhook", "POST"): Expect(400, 400, 400, 400, 400, 400),
    # --- The Django admin, one entry per family (see ADMIN_FAMILIES) -------------------------------------
    ("admin:index", "GET"): STAFF,
    ("admin:login", "GET"): Expect(200, 200, 200, 200, REDIRECT, 200),  # non-staff are told to switch user
    # Non-staff are sent to the admin index (and from there to its login); Ada is signed out.
    ("admin:logout", "POST"): Expect(ADMIN_LOGIN, REDIRECT, REDIRECT, REDIRECT, LOGIN, ADMIN_LOGIN),
    ("admin:password_change", "GET"): STAFF,
    ("admin:password_change_done", "GET"): STAFF,
    ("admin:autocomplete", "GET"): STAFF,
    ("admin:jsi18n", "GET"): STAFF,
    ("admin:view_on_site", "GET"): STAFF_POST,
    ("admin:app_list", "GET"): STAFF,
    ("admin:<model>_changelist", "GET"): MODEL_ADMIN,
    ("admin:<model>_add", "GET"): MODEL_ADMIN,
    ("admin:<model>_add", "POST"): MODEL_ADMIN,  # an empty form: the page again, with its errors
    ("admin:<model>_change", "GET"): MODEL_ADMIN,
    ("admin:<model>_change", "POST"): MODEL_ADMIN,
    ("admin:<model>_delete", "GET"): MODEL_ADMIN,
    ("admin:<model>_delete", "POST"): MODEL_ADMIN_DONE,
    ("admin:<model>_history", "GET"): MODEL_ADMIN,
    # The Admin group holds the product's permissions, not those on users: a superuser sets passwords.
    ("admin:auth_user_password_change", "GET"): Expect(LOGIN, ADMIN_LOGIN, ADMIN_LOGIN, ADMIN_LOGIN, 403, LOGIN),
    ("admin:<model>/<object_id>/", "GET"): MODEL_ADMIN_DONE,
    ("admin:<catch-all>", "GET"): Expect(ADMIN_LOGIN, ADMIN_LOGIN, ADMIN_LOGIN, ADMIN_LOGIN, 404, ADMIN_LOGIN),
}

TABLE_NAMES = {name for name, _ in TABLE}

# Admin URL names, grouped: each family stands for every model's URL of that kind, and is tried on one.
ADMIN_FAMILIES: list[tuple[str, re.Pattern]] = [
    ("admin:<model>_changelist", re.compile(r"admin:\w+_changelist")),
    ("admin:<model>_add", re.compile(r"admin:\w+_add")),
    ("admin:<model>_change", re.compile(r"admin:\w+_change")),
    ("admin:<model>_delete", re.compile(r"admin:\w+_delete")),
    ("admin:<model>_history", re.compile(r"admin:\w+_history")),
    # Unnamed: /admin/<app>/<model>/<id>/ sends on to the change page; anything else under /admin/ is a 404.
    ("admin:<model>/<object_id>/", re.compile(r"admin/\w+/\w+/<path:object_id>/")),
    ("admin:<catch-all>", re.compile(re.escape("admin/(?P<url>.*)$"))),
]


def table_name(name: str) -> str:
    """The name TABLE knows a URL by: its own, or its admin family's."""
    if name.startswith("admin") and name not in TABLE_NAMES:
        for family, pattern in ADMIN_FAMILIES:
            if pattern.fullmatch(name):
                return family
    return name


# --- The URLconf, walked -----------------------------------------------------------------------------------


def walk(resolver: URLResolver, route: str = "", namespaces: tuple = ()):
    """(name, route) of every pattern; "namespace:name", or the route when the pattern has no name."""
    for pattern in resolver.url_patterns:
        here = route + str(pattern.pattern)
        if isinstance(pattern, URLResolver):
            yield from walk(pattern, here, (*namespaces, pattern.namespace) if pattern.namespace else namespaces)
        elif isinstance(pattern, URLPattern):
            yield (":".join((*namespaces, pattern.name)) if pattern.name else here), here


def api_operations() -> dict[str, set[str]]:
    """The API's URL names ("api-v1:<name>") with the methods of their path operation.

    ninja mounts one URL pattern per operation, all of a path's operations on the same view, so a method
    added to an existing path shows here and not in the URLconf. (`_get_bound_routers` is the only way to
    the mounted operations in django-ninja 1.7.)
    """
    operations: dict[str, set[str]] = {}
    for router in api._get_bound_routers():
        for path_view in router.path_operations.values():
            for operation in path_view.operations:
                name = getattr(operation, "url_name", "") or api.get_operation_url_name(
                    operation, router=router.template
                )
                operations.setdefault(f"{api.urls_namespace}:{name}", set()).update(operation.methods)
    return operations


ROUTES = dict(walk(get_resolver()))
API_OPERATIONS = api_operations()


# --- The world the URLs point into --------------------------------------------------------------------------


def build_world() -> SimpleNamespace:
    """Casey's accounts with an opportunity at each step, and one row of everything a URL names."""
    now = timezone.now()
    today = timezone.localdate()
    owner = UserFactory(username="casey", first_name="Casey", last_name="Moreno", role="CSM")
    other = UserFactory(username="olive", first_name="Olive", last_name="Park", role="CSM")
    manager = UserFactory(username="morgan", first_name="Morgan", last_name="Lee", role="Manager")
    admin = UserFactory(username="ada", first_name="Ada", last_name="Stone", role="Admin", is_staff=True)
    sales = UserFactory(username="sasha", first_name="Sasha", last_name="Ivers", role="Sales")
    # Another account executive, on one of Casey's opportunities: the one a remove takes off.
    partner = UserFactory(username="rafael", first_name="Rafael", last_name="Ortiz", role="Sales")
    basic, pro = Plan.objects.get(name="Basic"), Plan.objects.get(name="Pro")

    account = AccountFactory(owner=owner, name="Acme Analytics", external_id="acme", plan=basic)
    identify = OpportunityFactory(account=account, stage=Stage.IDENTIFY)
    qualify = OpportunityFactory(account=AccountFactory(owner=owner, plan=basic), stage=Stage.QUALIFY)
    present = OpportunityFactory(account=AccountFactory(owner=owner, plan=basic), stage=Stage.PRESENT, target_plan=pro)
    snoozed = OpportunityFactory(
        account=AccountFactory(owner=owner, plan=basic),
        outcome=Outcome.SNOOZED,
        snoozed_until=today + dt.timedelta(days=10),
        closed_at=now,
    )
    Collaborator.objects.create(opportunity=qualify, user=partner, added_by=owner, added_at=now)

    import_job = ImportJob.objects.create(
        kind=ImportJob.Kind.USAGE,
        status=ImportJob.Status.FAILED,
        filename="usage.csv",
        content="account,metric,value,date\nacme,seats,x,2026-01-01\n",
        total_rows=1,
        processed_rows=1,
        error_count=1,
        errors=[{"row": 2, "column": "value", "message": "Not a number.", "value": "x"}],
        created_by=manager,
        created_at=now,
    )
    play = Play.objects.create(name="Seats upgrade", target_plan=pro, email_subject="Room to grow")
    # Two steps on day 0: the first one moves down, is edited or deleted; Casey may start the play.
    step = SequenceStep.objects.create(play=play, position=1, delay_days=0, kind=SequenceStep.Kind.TASK)
    SequenceStep.objects.create(play=play, position=2, delay_days=0, kind=SequenceStep.Kind.NOTIFY)
    # Another play running on Acme (pause, stop) and paused on another of Casey's accounts (resume).
    nurture = Play.objects.create(name="Nurture", target_plan=pro)
    nurture_step = SequenceStep.objects.create(play=nurture, position=1, delay_days=3, kind=SequenceStep.Kind.TASK)
    enrollment = Enrollment.objects.create(play=nurture, account=account, started_at=now, started_by=owner)
    paused_enrollment = Enrollment.objects.create(
        play=nurture,
        account=AccountFactory(owner=owner, plan=basic),
        status=Enrollment.Status.PAUSED,
        started_at=now,
        paused_at=now,
    )
    for live in (enrollment, paused_enrollment):
        StepRun.objects.create(
            enrollment=live, step=nurture_step, account=live.account, due_at=now + dt.timedelta(days=3)
        )
    draft = experiment_create(
        play=play,
        name="Subject line",
        hypothesis="",
        variants=[VariantSpec(name="A"), VariantSpec(name="B")],
        by=admin,
        at=now,
    )
    # Umbrella keeps hitting locked features, so the running experiment's play offers it its prompt (variant A
    # or B: the experiment holds no one out): the prompts GET computes an arm it must not store.
    running_play = Play.objects.create(name="Storage upgrade", target_plan=pro, prompt_text="Room on {{ target_plan }}")
    running_play.rules.add(Rule.objects.create(name="Locked features", min_locked_feature_hits=1, weight=40))
    prompted = AccountFactory(owner=owner, name="Umbrella", external_id="umbrella", plan=basic)
    AccountEngagement.objects.create(account=prompted, as_of=today, locked_feature_hits=5, refreshed_at=now)
    running = experiment_create(
        play=running_play,
        name="Tone",
        hypothesis="",
        variants=[VariantSpec(name="A"), VariantSpec(name="B")],
        by=admin,
        at=now,
        control_share=0.0,
    )
    experiment_start(experiment=running, by=admin, at=now)
    token, raw = api_token_create(name="usage exporter")
    revocable, _ = api_token_create(name="old exporter")
    # Asked of Acme in the product (the API) and by an emailed link (the public page).
    survey = survey_save(
        survey=Survey(),
        data={"name": "What comes next?", "rule": Rule.objects.order_by("pk").first()},
        questions=[QuestionSpec("What will you need?", "choice", ("More seats", "More storage"))],
        by=admin,
        at=now,
    )

    task = task_create(account=account, assignee=owner, title="Call about seats", due_on=today, at=now)
    notification = notify(recipient=owner, kind=Notification.Kind.NEW_CANDIDATE, title="New candidate", at=now)

    sessions, requesters = {}, {"anonymous": "anonymous", "token": f"api_token:{token.pk}"}
    for role, user in (
        ("owner", owner),
        ("other_csm", other),
        ("manager", manager),
        ("admin", admin),
        ("sales", sales),
    ):
        client = Client()
        client.force_login(user)
        sessions[role] = client.cookies[settings.SESSION_COOKIE_NAME].value
        requesters[role] = f"user:{user.pk}"

    return SimpleNamespace(
        owner=owner,
        other=other,
        admin=admin,
        sales=sales,
        partner=partner,
        basic=basic,
        pro=pro,
        account=account,
        prompted=prompted,
        identify=identify,
        qualify=qualify,
        present=present,
        snoozed=snoozed,
        import_job=import_job,
        metric=Metric.objects.get(key="seats"),
        stripe_price=StripePriceMapping.objects.create(price_id="price_pro_monthly", plan=pro),
        lost_reason=LostReason.objects.filter(active=True).order_by("display_order").first(),
        rule=Rule.objects.order_by("pk").first(),
        play=play,
        step=step,
        enrollment=enrollment,
        paused_enrollment=paused_enrollment,
        draft=draft,
        running=running,
        survey=survey,
        token=token,
        token_raw=raw,
        revocable=revocable,
        sessions=sessions,
        requesters=requesters,
        today=today,
        task=task,
        notification=notification,
    )


@pytest.fixture(scope="module")
def world(django_db_setup, django_db_blocker):
    """Built once for the module, inside a transaction rolled back at its end; each case runs in a savepoint
    of its own (pytest-django's `db`), so what one case changes the next does not see."""
    with django_db_blocker.unblock(), transaction.atomic():
        yield build_world()
        transaction.set_rollback(True)


# --- Where each URL points, and what each POST sends -------------------------------------------------------

ARGS: dict[str, Callable[[SimpleNamespace], list]] = {
    "accounts:detail": lambda w: [w.account.pk],
    "accounts:import_detail": lambda w: [w.import_job.pk],
    "accounts:import_errors": lambda w: [w.import_job.pk],
    "accounts:import_template": lambda w: [ImportJob.Kind.USAGE],
    "opportunities:actions": lambda w: [w.identify.pk],
    "opportunities:advance": lambda w: [w.identify.pk],
    "opportunities:snooze": lambda w: [w.identify.pk],
    "opportunities:reopen": lambda w: [w.snoozed.pk],
    "opportunities:assign": lambda w: [w.identify.pk],
    "opportunities:qualify": lambda w: [w.qualify.pk],
    "opportunities:present": lambda w: [w.present.pk],
    "opportunities:email": lambda w: [w.present.pk],
    "opportunities:close": lambda w: [w.present.pk],
    "opportunities:collaborator_add": lambda w: [w.identify.pk],
    "opportunities:collaborator_remove": lambda w: [w.qualify.pk],
    "opportunities:open": lambda w: [w.snoozed.account_id],
    "opportunities:note_add": lambda w: [w.account.pk],
    "opportunities:timeline": lambda w: [w.account.pk],
    "tasks:complete": lambda w: [w.task.pk],
    "tasks:add": lambda w: [w.account.pk],
    "notifications:read": lambda w: [w.notification.pk],
    "settings:plan_edit": lambda w: [w.pro.pk],
    "settings:metric_edit": lambda w: [w.metric.pk],
    "settings:stripe_price_edit": lambda w: [w.stripe_price.pk],
    "settings:stripe_price_delete": lambda w: [w.stripe_price.pk],
    "settings:token_revoke": lambda w: [w.revocable.pk],
    "settings:lost_reason_edit": lambda w: [w.lost_reason.pk],
    "settings:lost_reason_move": lambda w: [w.lost_reason.pk],
    "settings:lost_reason_set_active": lambda w: [w.lost_reason.pk],
    "settings:rule_edit": lambda w: [w.rule.pk],
    "settings:rule_toggle": lambda w: [w.rule.pk],
    "settings:play_edit": lambda w: [w.play.pk],
    "settings:play_step_create": lambda w: [w.play.pk],
    "settings:play_step_edit": lambda w: [w.play.pk, w.step.pk],
    "settings:play_step_delete": lambda w: [w.play.pk, w.step.pk],
    "settings:play_step_move": lambda w: [w.play.pk, w.step.pk],
    "sequences:enrollment_start": lambda w: [w.account.pk],
    "sequences:enrollment_pause": lambda w: [w.enrollment.pk],
    "sequences:enrollment_resume": lambda w: [w.paused_enrollment.pk],
    "sequences:enrollment_stop": lambda w: [w.enrollment.pk],
    "settings:experiment_detail": lambda w: [w.draft.pk],
    "settings:experiment_start": lambda w: [w.draft.pk],
    "settings:experiment_stop": lambda w: [w.running.pk],
    "api-v1:account_get": lambda w: [w.account.external_id],
    "api-v1:account_indicators": lambda w: [w.account.external_id],
    "api-v1:prompts_get": lambda w: [w.prompted.external_id],
    "unsubscribe": lambda w: [unsubscribe_token(email="buyer@acme.example", account_id=w.account.pk, step_run_id=None)],
    "survey_public": lambda w: [survey_link_token(account_id=w.account.pk, survey_id=w.survey.pk)],
    "settings:survey_edit": lambda w: [w.survey.pk],
    "api-v1:survey_responses_post": lambda w: [survey_offer_id(account_id=w.account.pk, survey_id=w.survey.pk)],
    "api-v1:prompt_events_post": lambda w: [
        prompt_id(PromptRef(account_id=w.account.pk, play_id=w.play.pk, variant_id=None))
    ],
}
# Admin families are tried on the account model (and the account row).
ADMIN_URLS: dict[str, Callable[[SimpleNamespace], str]] = {
    "admin:<model>_changelist": lambda w: reverse("admin:accounts_account_changelist"),
    "admin:<model>_add": lambda w: reverse("admin:accounts_account_add"),
    "admin:<model>_change": lambda w: reverse("admin:accounts_account_change", args=[w.account.pk]),
    "admin:<model>_delete": lambda w: reverse("admin:accounts_account_delete", args=[w.account.pk]),
    "admin:<model>_history": lambda w: reverse("admin:accounts_account_history", args=[w.account.pk]),
    "admin:auth_user_password_change": lambda w: reverse("admin:auth_user_password_change", args=[w.owner.pk]),
    "admin:<model>/<object_id>/": lambda w: f"/admin/accounts/account/{w.account.pk}/",
    "admin:<catch-all>": lambda w: "/admin/no-such-page/",
    "admin:view_on_site": lambda w: reverse("admin:view_on_site", args=[_account_content_type(), w.account.pk]),
    "admin:app_list": lambda w: reverse("admin:app_list", args=["accounts"]),
}
QUERY: dict[str, str | Callable[[SimpleNamespace], str]] = {
    "api-v1:metrics_get": "?start=2026-01-01&end=2026-03-31",
    "opportunities:queue_next": lambda w: f"?after={w.identify.pk}",
    "admin:autocomplete": "?app_label=accounts&model_name=usagesnapshot&field_name=account&term=acme",
}


def _account_content_type() -> int:
    return ContentType.objects.get(app_label="accounts", model="account").pk


def url_of(name: str, world: SimpleNamespace) -> str:
    if name in ADMIN_URLS:
        return ADMIN_URLS[name](world)
    args = ARGS[name](world) if name in ARGS else []
    query = QUERY.get(name, "")
    return reverse(name, args=args) + (query(world) if callable(query) else query)


def plan_form(world: SimpleNamespace, plan: Plan | None, **fields) -> dict:
    """What the plan form posts: the plan as stored (or a blank one), then `fields`."""
    metrics = list(Metric.objects.filter(kind=Metric.Kind.LIMIT).order_by("display_order", "key"))
    limits = {pl.metric.key: pl.limit for pl in plan.limits.select_related("metric")} if plan else {}
    data = {
        "name": plan.name if plan else "",
        "tier_rank": plan.tier_rank if plan else "",
        "monthly_price": plan.monthly_price if plan else "",
        "annual_price": plan.annual_price if plan else "",
        "currency": "USD",
        "description": "",
        "active": "on",
        "limits-TOTAL_FORMS": len(metrics),
        "limits-INITIAL_FORMS": len(metrics),
        "features-TOTAL_FORMS": 0,
        "features-INITIAL_FORMS": 0,
    }
    for i, m in enumerate(metrics):
        data[f"limits-{i}-metric"] = m.key
        data[f"limits-{i}-limit"] = "" if limits.get(m.key) is None else f"{limits[m.key]:g}"
    return {**data, **fields}


def rule_form(world: SimpleNamespace, **fields) -> dict:
    return {
        "name": "Storage at 85%",
        "description": "Nearly full",
        "metric": Metric.objects.get(key="storage_gb").pk,
        "min_utilization": "85",
        "plans": [world.basic.pk],
        "weight": "30",
        "enabled": "on",
        **fields,
    }


def play_form(world: SimpleNamespace, **fields) -> dict:
    return {
        "name": "Projects upgrade",
        "active": "on",
        "target_plan": world.pro.pk,
        "email_subject": "{{ account_name }}: room on {{ target_plan }}",
        "email_body": "Hi,\n\n{{ metric }} is at {{ utilization }}.",
        "prompt_kind": "banner",
        "trial_days": "14",
        "prompt_max_per_week": "3",
        "min_days_between_touches": "7",
        **fields,
    }


def survey_form(world: SimpleNamespace, **fields) -> dict:
    return {
        "name": "Storage plans",
        "purpose": "needs",
        "channel": "prompt",
        "rule": world.rule.pk,
        "intro": "",
        "active": "on",
        "questions-TOTAL_FORMS": "3",
        "questions-INITIAL_FORMS": "0",
        "questions-0-text": "How much storage will you need?",
        "questions-0-kind": "choice",
        "questions-0-choices": "Twice as much\nTen times as much",
        **fields,
    }


def step_form(**fields) -> dict:
    """What the step editor posts: its fields carry the "step-" prefix."""
    data = {"delay_days": "0", "kind": "email", "subject": "", "body": "", "when_fatigued": "wait", **fields}
    return {f"step-{name}": value for name, value in data.items()}


def usage_upload() -> SimpleUploadedFile:
    return SimpleUploadedFile("usage.csv", b"account,metric,value,date\nacme,seats,4,2026-01-02\n", "text/csv")


# A body that does the work when the role may (so a missing check would show as a change), harmless otherwise.
BODIES: dict[tuple[str, str], Callable[[SimpleNamespace], dict]] = {
    ("login", "POST"): lambda w: {"username": "casey", "password": "not her password"},
    ("accounts:imports", "POST"): lambda w: {"kind": "usage", "on_error": "reject", "file": usage_upload()},
    ("opportunities:advance", "POST"): lambda w: {"to": Stage.QUALIFY, "version": w.identify.version},
    ("opportunities:snooze", "POST"): lambda w: {
        "until": (w.today + dt.timedelta(days=14)).isoformat(),
        "version": w.identify.version,
    },
    ("opportunities:reopen", "POST"): lambda w: {"version": w.snoozed.version},
    ("opportunities:assign", "POST"): lambda w: {"owner": w.owner.pk, "version": w.identify.version},
    ("accounts:reassign", "POST"): lambda w: {"accounts": [w.account.pk], "to": w.other.pk},
    ("opportunities:qualify", "POST"): lambda w: {
        "need_confirmed": "yes",
        "business_goals": "Hiring ten people",
        "version": w.qualify.version,
    },
    ("opportunities:present", "POST"): lambda w: {
        "target_plan": w.pro.pk,
        "value_proposition": "Room for the new hires",
        "hours_saved_per_month": "10",
        "hourly_cost": "50",
        "avoided_per_month": "0",
        "version": w.present.version,
    },
    ("opportunities:email", "POST"): lambda w: {
        "to": "buyer@example.com",
        "subject": "Room to grow",
        "body": "Hello",
        "action": "send",
        "version": w.present.version,
    },
    ("opportunities:close", "POST"): lambda w: {
        "outcome": Outcome.LOST,
        "lost_reason": w.lost_reason.pk,
        "version": w.present.version,
    },
    ("opportunities:note_add", "POST"): lambda w: {"body": "Called about seats"},
    ("tasks:add", "POST"): lambda w: {"title": "Send the quote", "due_on": w.today.isoformat()},
    ("notifications:settings", "POST"): lambda w: {"kinds": ["task_due"], "daily_digest": "on"},
    ("opportunities:collaborator_add", "POST"): lambda w: {"user": w.sales.pk, "version": w.identify.version},
    ("opportunities:collaborator_remove", "POST"): lambda w: {"user": w.partner.pk, "version": w.qualify.version},
    ("settings:plan_create", "POST"): lambda w: plan_form(
        w, None, name="Scale", tier_rank=9, monthly_price="900", annual_price="9000"
    ),
    ("settings:plan_edit", "POST"): lambda w: plan_form(w, w.pro, description="Changed"),
    ("settings:metric_create", "POST"): lambda w: {
        "key": "dashboards",
        "label": "Dashboards",
        "unit": "",
        "kind": "limit",
        "display_order": 9,
        "description": "",
    },
    ("settings:metric_edit", "POST"): lambda w: {
        "key": w.metric.key,
        "label": "Licensed seats",
        "unit": w.metric.unit,
        "kind": w.metric.kind,
        "display_order": w.metric.display_order,
        "description": "",
    },
    ("settings:stripe_price_create", "POST"): lambda w: {"price_id": "price_pro_yearly", "plan": w.pro.pk},
    ("settings:stripe_price_edit", "POST"): lambda w: {
        "price_id": w.stripe_price.price_id,
        "plan": w.basic.pk,
        "description": "Changed",
    },
    ("settings:tokens", "POST"): lambda w: {"name": "billing sync"},
    ("settings:lost_reason_create", "POST"): lambda w: {
        "key": "wrong_contact",
        "label": "Wrong contact",
        "active": "on",
    },
    ("settings:lost_reason_edit", "POST"): lambda w: {"key": w.lost_reason.key, "label": "Renamed", "active": "on"},
    ("settings:lost_reason_move", "POST"): lambda w: {"direction": "down"},
    ("settings:lost_reason_set_active", "POST"): lambda w: {"active": "0"},
    ("settings:rules", "POST"): lambda w: {
        "flag_threshold": 50,
        "clear_margin": 10,
        "cool_off_days": 30,
        "max_touches_per_30_days": 4,
    },
    ("settings:rule_create", "POST"): lambda w: rule_form(w),
    ("settings:rule_edit", "POST"): lambda w: rule_form(w, name="Renamed"),
    ("settings:rule_toggle", "POST"): lambda w: {"enabled": "0" if w.rule.enabled else "1"},
    ("settings:play_create", "POST"): lambda w: play_form(w),
    ("settings:play_edit", "POST"): lambda w: play_form(w, name="Renamed"),
    ("settings:play_step_create", "POST"): lambda w: step_form(delay_days="3", kind="task", subject="Call them"),
    ("settings:play_step_edit", "POST"): lambda w: step_form(delay_days="0", kind="task", subject="Call again"),
    ("settings:play_step_move", "POST"): lambda w: {"direction": "down"},
    ("sequences:enrollment_start", "POST"): lambda w: {"play": w.play.pk},
    ("settings:experiment_create", "POST"): lambda w: {
        "play": w.play.pk,
        "name": "Second test",
        "hypothesis": "",
        "control_percent": "10",
        "attribution_days": "90",
        "variants-TOTAL_FORMS": "2",
        "variants-INITIAL_FORMS": "0",
        "variants-MIN_NUM_FORMS": "2",
        "variants-MAX_NUM_FORMS": "5",
        "variants-0-name": "Plain",
        "variants-0-weight": "1",
        "variants-1-name": "Urgent",
        "variants-1-weight": "1",
    },
    ("api-v1:accounts_post", "POST"): lambda w: {"accounts": [{"external_id": "globex", "name": "Globex"}]},
    ("api-v1:usage_post", "POST"): lambda w: {
        "snapshots": [{"account": "acme", "metric": "seats", "value": 4, "date": "2026-01-02"}]
    },
    ("api-v1:events_post", "POST"): lambda w: {
        "events": [{"id": "evt-1", "account": "acme", "type": "login", "timestamp": "2026-01-02T10:00:00Z"}]
    },
    ("api-v1:subscriptions_post", "POST"): lambda w: {
        "changes": [{"account": "acme", "date": "2026-01-02", "plan": "Pro", "mrr": 99}]
    },
    ("api-v1:segment_post", "POST"): lambda w: {"type": "group", "groupId": "initech", "traits": {"name": "Initech"}},
    ("api-v1:stripe_webhook", "POST"): lambda w: {"id": "evt_1", "type": "customer.subscription.updated"},
    ("api-v1:prompt_events_post", "POST"): lambda w: {"account": "acme", "type": "impression"},
    ("api-v1:survey_responses_post", "POST"): lambda w: {
        "account": "acme",
        "contact": "buyer@acme.example",
        "answers": {"1": "More seats"},
    },
    ("survey_public", "POST"): lambda w: {"q1": "More storage"},
    ("settings:survey_create", "POST"): lambda w: survey_form(w),
    ("settings:survey_edit", "POST"): lambda w: survey_form(w, name="Renamed"),
    ("unsubscribe", "POST"): lambda w: {"List-Unsubscribe": "One-Click"},  # RFC 8058's one-click body
    ("admin:<model>_change", "POST"): lambda w: {"name": "Renamed"},
    ("admin:<model>_delete", "POST"): lambda w: {"post": "yes"},
    ("admin:logout", "POST"): lambda w: {},
}


def client_for(role: str, world: SimpleNamespace) -> Client:
    # A crashing view answers 500 here, which shows in the table's terms rather than as a test error.
    if role == "token":
        return Client(raise_request_exception=False, headers={"Authorization": f"Bearer {world.token_raw}"})
    client = Client(raise_request_exception=False)
    if role != "anonymous":
        client.cookies[settings.SESSION_COOKIE_NAME] = world.sessions[role]
    return client


def send(role: str, name: str, method: str, world: SimpleNamespace):
    client, url = client_for(role, world), url_of(name, world)
    if method == "GET":
        return client.get(url)
    body = BODIES[(name, method)](world) if (name, method) in BODIES else {}
    if name.startswith("api-v1:"):
        return client.generic(method, url, json.dumps(body), content_type="application/json")
    if method == "POST":
        return client.post(url, body)
    return client.generic(method, url)


# --- The database, before and after -------------------------------------------------------------------------

# Sessions and axes' logs change with signing in and out; content types never change.
UNWATCHED_APPS = {"sessions", "axes", "contenttypes"}


def database_state() -> dict[str, list]:
    """Every row of every table (users, groups and the admin's log included) but UNWATCHED_APPS', by model."""
    return {
        model._meta.label: list(model._base_manager.order_by("pk").values_list())
        for model in apps.get_models(include_auto_created=True)
        if model._meta.app_label not in UNWATCHED_APPS
    }


def changed_tables(before: dict, after: dict) -> list[str]:
    return sorted(label for label in before if before[label] != after[label])


# GETs may write only these, each for its reason.
GET_WRITES_ALLOWED = [
    # The token's last use, shown on the tokens page, is stamped at most once a minute per token.
    re.compile(r'^UPDATE "accounts_apitoken" SET "last_used_at"'),
]


def writes(queries) -> list[str]:
    return [
        q["sql"]
        for q in queries
        if re.match(r"\s*(INSERT|UPDATE|DELETE|REPLACE)\b", q["sql"], re.IGNORECASE)
        and not any(allowed.match(q["sql"]) for allowed in GET_WRITES_ALLOWED)
    ]


# --- The cases ----------------------------------------------------------------------------------------------

CASES = [(name, method, role) for (name, method) in TABLE for role in ROLES]
REFUSALS = {401, 403, 404}
SUCCESS = {200, 201, REDIRECT}  # what a role that may do the thing gets; anything else must leave no trace


@pytest.fixture(autouse=True)
def _webhook_secrets(settings):
    settings.STRIPE_WEBHOOK_SECRET = "whsec_matrix"


def test_it_has_an_entry_for_every_url_and_api_operation():
    declared = {name for name, _ in TABLE}
    missing = sorted(name for name in ROUTES if table_name(name) not in declared)

    assert missing == [], f"URLs with no entry in TABLE: {missing}"


def test_it_declares_exactly_the_methods_of_every_api_operation():
    declared = {(name, method) for name, method in TABLE if name in API_OPERATIONS}
    served = {(name, method) for name, methods in API_OPERATIONS.items() for method in methods}

    assert declared == served


def test_it_has_no_entry_for_a_url_that_is_gone():
    known = {table_name(name) for name in ROUTES}

    assert sorted({name for name, _ in TABLE} - known) == []


@pytest.mark.parametrize(("name", "method", "role"), CASES, ids=lambda v: str(v))
def test_it_answers_each_role_as_the_table_says(world, caplog, name, method, role):
    """The declared answer; and a GET writes nothing, a refused POST changes nothing, a refusal is logged."""
    expected = expected_answer(TABLE[(name, method)], role)
    before = database_state() if method != "GET" else None

    with CaptureQueriesContext(connection) as queries, caplog.at_level(logging.WARNING, "upsell_crm.security"):
        response = send(role, name, method, world)

    assert outcome(response) == expected, f"{role} {method} {url_of(name, world)}"
    if method == "GET":
        assert writes(queries.captured_queries) == [], "a GET wrote to the database"
    elif expected not in SUCCESS:
        assert changed_tables(before, database_state()) == [], "a refused request changed the database"
    # A token is known only where the API authenticates it; elsewhere its bearer is anonymous. A 404 is a
    # refusal only for someone known.
    requester = world.requesters["anonymous" if role == "token" and name not in API_OPERATIONS else role]
    if expected in REFUSALS and not (expected == 404 and requester == "anonymous"):
        logged = [(r.status, r.requester) for r in caplog.records if r.name == "upsell_crm.security"]
        assert (expected, requester) in logged, "the refusal was not logged"


OTHER_METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE")
# Views that answer whatever the method, each harmless for its reason; the others answer 405.
ANY_METHOD = {
    "api-v1:api-root": "ninja's root view: a 404 to every method",
    "api-v1:openapi-json": "the schema, read-only: the same document to every method",
    "api-v1:openapi-view": "the docs page, read-only, for staff",
    "login": "Django's LoginView treats PUT as POST: a sign-in, CSRF-checked like one",
}
UNDECLARED = [
    (name, method)
    for name in sorted(TABLE_NAMES)
    if not name.startswith("admin")  # the Django admin's own views take any method; test_admin covers them
    for method in OTHER_METHODS
    if (name, method) not in TABLE
]


@pytest.mark.parametrize(("name", "method"), UNDECLARED, ids=lambda v: str(v))
def test_a_method_missing_from_the_table_is_refused_even_to_the_most_trusted(world, name, method):
    role = "token" if name in API_OPERATIONS else "admin"
    before = database_state()

    response = send(role, name, method, world)

    if name not in ANY_METHOD:
        assert response.status_code == 405
    assert changed_tables(before, database_state()) == []
