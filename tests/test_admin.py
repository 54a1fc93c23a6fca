"""Ada, the admin, can open, search and edit every table of the product in the Django admin."""

import datetime as dt
from decimal import Decimal

import pytest
from django.apps import apps
from django.contrib import admin
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from accounts.models import (
    AccountEngagement,
    AccountIndicator,
    ApiToken,
    AuditEntry,
    Contact,
    EmailOptOut,
    IdempotencyKey,
    ImportJob,
    Metric,
    Notification,
    NotificationSetting,
    Plan,
    SegmentEventMapping,
    SegmentUser,
    StripeEvent,
    StripePriceMapping,
    Task,
)
from accounts.tokens import api_token_create
from opportunities.models import AccountScore, Collaborator, Note, OpportunityEvent, ScoreHistory
from playbooks.models import (
    Assignment,
    Enrollment,
    Experiment,
    FeedbackRequest,
    Play,
    PlayCredit,
    SequenceStep,
    StepRun,
    Survey,
    SurveyQuestion,
    SurveyResponse,
    Touch,
    Variant,
)
from tests.factories import (
    AccountFactory,
    EngagementEventFactory,
    MrrMovementFactory,
    OpportunityFactory,
    UsageSnapshotFactory,
    UserFactory,
)

pytestmark = pytest.mark.django_db

OUR_APPS = ("accounts", "playbooks", "opportunities")
REGISTERED = sorted(
    (model for model in admin.site._registry if model._meta.app_label in OUR_APPS), key=lambda m: m._meta.label
)
# A single-row table has nothing to search.
WITHOUT_SEARCH = {"playbooks.ScoringPolicy"}


def populate(account) -> None:
    """One row of every table that grows with accounts, for `account`."""
    now = timezone.now()
    today = now.date()
    seats = Metric.objects.get(key="seats")
    UsageSnapshotFactory(account=account, metric=seats, captured_on=today)
    EngagementEventFactory(account=account)
    MrrMovementFactory(account=account)
    opportunity = OpportunityFactory(account=account)
    OpportunityEvent.objects.create(opportunity=opportunity, occurred_at=now, kind=OpportunityEvent.Kind.CREATED)
    Note.objects.create(account=account, opportunity=opportunity, body="Called about seats", created_at=now)
    AccountIndicator.objects.create(
        account=account, metric=seats, as_of=today, latest=4, limit=5, utilization=0.8, refreshed_at=now
    )
    AccountEngagement.objects.create(account=account, as_of=today, refreshed_at=now)
    AccountScore.objects.create(account=account, as_of=today, score=60, computed_at=now)
    ScoreHistory.objects.create(account=account, scored_on=today - dt.timedelta(days=1), score=55)
    StripeEvent.objects.create(
        event_id=f"evt_{account.pk}", type="customer.subscription.updated", account=account, received_at=now
    )
    SegmentUser.objects.create(user_id=f"user-{account.pk}", account=account, updated_at=now)
    owner = account.owner or UserFactory()
    contact = Contact.objects.create(account=account, name="Pat Buyer", email=f"pat{account.pk}@example.com")
    EmailOptOut.objects.create(email=f"gone{account.pk}@example.com", opted_out_at=now, account=account)
    task = Task.objects.create(account=account, assignee=owner, title="Call about seats", due_on=today, created_at=now)
    Notification.objects.create(
        recipient=owner,
        kind=Notification.Kind.TASK_DUE,
        title="Call about seats",
        account=account,
        created_at=now,
    )
    Collaborator.objects.create(opportunity=opportunity, user=owner, added_at=now)
    return contact, task


@pytest.fixture
def admin_client_for_ada(client, admin_user, account):
    contact, task = populate(account)
    NotificationSetting.objects.create(user=admin_user, daily_digest=False)
    play = Play.objects.create(name="Seats upgrade", target_plan=Plan.objects.get(name="Pro"))
    step = SequenceStep.objects.create(play=play, position=1, delay_days=0, kind=SequenceStep.Kind.EMAIL)
    enrollment = Enrollment.objects.create(play=play, account=account, started_at=timezone.now())
    StepRun.objects.create(
        enrollment=enrollment, step=step, account=account, due_at=timezone.now(), contact=contact, task=task
    )
    survey = Survey.objects.create(name="Next quarter", purpose=Survey.Purpose.CHURN_FEEDBACK)
    SurveyQuestion.objects.create(survey=survey, position=1, text="What will you store next quarter?")
    request = FeedbackRequest.objects.create(survey=survey, account=account, created_at=timezone.now())
    SurveyResponse.objects.create(
        survey=survey, account=account, request=request, answers={"1": "Video"}, submitted_at=timezone.now()
    )
    experiment = Experiment.objects.create(play=play, name="Shorter email", created_at=timezone.now())
    variant = Variant.objects.create(experiment=experiment, name="Short")
    Assignment.objects.create(experiment=experiment, account=account, variant=variant, assigned_at=timezone.now())
    touch = Touch.objects.create(account=account, play=play, variant=variant, kind="email", occurred_at=timezone.now())
    PlayCredit.objects.create(
        opportunity_id=1, account=account, play=play, variant=variant, touch=touch, mrr_delta=70, won_at=timezone.now()
    )
    AuditEntry.objects.create(
        object_type="playbooks.Play",
        object_id=str(play.pk),
        object_repr="acme play",
        action="created",
        after={"name": play.name},
        actor=admin_user,
        at=timezone.now(),
    )
    token, _ = api_token_create(name="Usage exporter", created_by=admin_user)
    IdempotencyKey.objects.create(
        token=token,
        key="import-1",
        fingerprint="0" * 64,
        status_code=201,
        content_type="application/json",
        response_body=b"{}",
        created_at=timezone.now(),
    )
    ImportJob.objects.create(
        kind="usage",
        filename="acme-usage.csv",
        content="x",
        total_rows=1,
        created_by=admin_user,
        created_at=timezone.now(),
    )
    StripePriceMapping.objects.create(price_id="price_pro_monthly", plan=Plan.objects.get(name="Pro"))
    SegmentEventMapping.objects.get_or_create(
        event_name="Report Exported", defaults={"kind": "feature_used", "feature": "reporting"}
    )
    client.force_login(admin_user)
    return client


def admin_url(model, view: str, *args) -> str:
    return reverse(f"admin:{model._meta.app_label}_{model._meta.model_name}_{view}", args=args)


def test_it_registers_every_model_of_the_product():
    ours = {model for app in OUR_APPS for model in apps.get_app_config(app).get_models()}

    assert ours - set(REGISTERED) == set()


def test_it_titles_the_admin_after_the_product(admin_client_for_ada):
    response = admin_client_for_ada.get(reverse("admin:index"))

    assert response.status_code == 200
    assert "Upsell CRM admin" in response.text


@pytest.mark.parametrize("model", REGISTERED, ids=lambda m: m._meta.label)
def test_it_lets_ada_open_the_list_the_search_and_a_row(admin_client_for_ada, model):
    changelist = admin_client_for_ada.get(admin_url(model, "changelist"))
    assert changelist.status_code == 200
    assert changelist.context["cl"].result_count >= 1, "every table has a row here, so its columns render"

    model_admin = admin.site._registry[model]
    if model._meta.label not in WITHOUT_SEARCH:
        assert model_admin.search_fields, "a list without a search box is unusable past a few hundred rows"
        search = admin_client_for_ada.get(admin_url(model, "changelist"), {"q": "acme"})
        assert search.status_code == 200

    row = model._default_manager.first()
    assert admin_client_for_ada.get(admin_url(model, "change", row.pk)).status_code == 200


@pytest.mark.parametrize("model", REGISTERED, ids=lambda m: m._meta.label)
def test_it_lets_ada_open_the_add_page_of_every_table_she_may_add_to(admin_client_for_ada, admin_user, rf, model):
    request = rf.get("/")
    request.user = admin_user
    may_add = admin.site._registry[model].has_add_permission(request)

    response = admin_client_for_ada.get(admin_url(model, "add"))

    assert response.status_code == (200 if may_add else 403)


@pytest.mark.parametrize(
    "model",
    [m for m in REGISTERED if m._meta.label not in WITHOUT_SEARCH],
    ids=lambda m: m._meta.label,
)
def test_it_lists_any_number_of_rows_in_the_same_number_of_queries(admin_client_for_ada, model):
    url = admin_url(model, "changelist")
    with CaptureQueriesContext(connection) as one_account:
        admin_client_for_ada.get(url)
    for _ in range(3):
        populate(AccountFactory())

    with CaptureQueriesContext(connection) as four_accounts:
        admin_client_for_ada.get(url)

    assert len(four_accounts) == len(one_account)


def test_it_finds_an_account_by_name(admin_client_for_ada, account):
    AccountFactory(name="Globex")

    response = admin_client_for_ada.get(admin_url(account, "changelist"), {"q": "acme"})

    assert [row.pk for row in response.context["cl"].result_list] == [account.pk]


def test_it_keeps_the_audit_trail_read_only(admin_client_for_ada, account):
    event = OpportunityEvent.objects.filter(opportunity__account=account).get()

    response = admin_client_for_ada.post(admin_url(OpportunityEvent, "change", event.pk), {"message": "rewritten"})

    assert response.status_code == 403
    event.refresh_from_db()
    assert event.message == ""


def test_it_records_an_admin_edit_of_an_opportunity_and_bumps_its_version(admin_client_for_ada, admin_user, account):
    opportunity = account.opportunities.get()
    url = admin_url(opportunity, "change", opportunity.pk)
    form = admin_client_for_ada.get(url).context["adminform"].form
    data = {name: value for name, value in form.initial.items() if value is not None and name in form.fields}
    data.update(
        {
            "expected_mrr_delta": "70.00",
            "identified_at_0": opportunity.identified_at.date().isoformat(),
            "identified_at_1": "10:00:00",
            "stage_entered_at_0": opportunity.stage_entered_at.date().isoformat(),
            "stage_entered_at_1": "10:00:00",
            "events-TOTAL_FORMS": "1",
            "events-INITIAL_FORMS": "1",
            "events-MIN_NUM_FORMS": "0",
            "events-MAX_NUM_FORMS": "0",
            "events-0-id": opportunity.events.get().pk,
            "events-0-opportunity": opportunity.pk,
        }
    )
    for json_field in ("qualification", "roi_inputs"):
        data[json_field] = "{}"
    for drop in ("identified_at", "stage_entered_at", "closed_at"):
        data.pop(drop, None)

    response = admin_client_for_ada.post(url, data)

    assert response.status_code == 302, response.context["adminform"].form.errors if response.context else ""
    opportunity.refresh_from_db()
    assert opportunity.expected_mrr_delta == Decimal("70.00")
    assert opportunity.version == 2
    edit = opportunity.events.get(kind=OpportunityEvent.Kind.UPDATED)
    assert edit.actor == admin_user
    assert "expected_mrr_delta" in edit.message


def test_it_lets_ada_revoke_an_api_token(admin_client_for_ada):
    token = ApiToken.objects.get(name="Usage exporter")

    response = admin_client_for_ada.post(
        admin_url(ApiToken, "changelist"), {"action": "revoke", "_selected_action": [token.pk]}
    )

    assert response.status_code == 302
    token.refresh_from_db()
    assert token.revoked_at is not None
