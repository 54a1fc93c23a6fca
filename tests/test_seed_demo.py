"""`manage.py seed_demo`: a realistic, deterministic demo that the rest of the product can be shown with."""

import datetime as dt
import hashlib
import io
from collections import Counter, defaultdict
from decimal import Decimal

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection
from django.db.models import Count, Max, Min
from django.test.utils import CaptureQueriesContext

from accounts.insight_selectors import upgrade_predictors
from accounts.insights import add_months, month_start
from accounts.models import (
    Account,
    Contact,
    EngagementEvent,
    Metric,
    MrrMovement,
    Notification,
    Plan,
    PlanFeature,
    PlanLimit,
    Task,
    UsageSnapshot,
    movement_kind,
)
from accounts.work_selectors import task_board
from opportunities.demo_history import HISTORY_EVENT_PREFIX
from opportunities.models import Opportunity, OpportunityEvent, Outcome, Stage
from playbooks.models import (
    Enrollment,
    FeedbackRequest,
    Play,
    PlayCredit,
    StepRun,
    Survey,
    SurveyResponse,
    Touch,
)
from playbooks.services import play_template_errors
from playbooks.surveys import answer_clean

AS_OF = dt.date(2026, 11, 20)
LIMIT_METRICS = ["seats", "storage_gb", "integrations", "api_calls", "projects"]

# DOMAIN.md, "Plans": the tables a fresh install ships, as written there (None = unlimited, "" = not included).
DOMAIN_PLANS = {
    "Basic": {
        "monthly": Decimal("29.00"),
        "annual": Decimal("290.00"),
        "limits": {"seats": 5, "storage_gb": 10, "integrations": 3, "api_calls": 10_000, "projects": 10},
        "features": {"reporting": "basic", "support": ""},
    },
    "Pro": {
        "monthly": Decimal("99.00"),
        "annual": Decimal("990.00"),
        "limits": {"seats": 25, "storage_gb": 100, "integrations": 10, "api_calls": 100_000, "projects": 100},
        "features": {"reporting": "advanced", "support": "priority"},
    },
    "Enterprise": {
        "monthly": Decimal("299.00"),
        "annual": Decimal("2990.00"),
        "limits": {"seats": None, "storage_gb": 1024, "integrations": None, "api_calls": None, "projects": None},
        "features": {"reporting": "custom", "support": "dedicated"},
    },
}


def seed_demo(**options) -> str:
    options = {"accounts": 40, "as_of": "2026-11-20", "pipeline": False} | options
    out = io.StringIO()
    call_command("seed_demo", stdout=out, **options)
    return out.getvalue()


def fingerprint() -> str:
    """A hash of what the demo says, without primary keys or the times rows were written."""
    parts = [
        Account.objects.order_by("external_id").values_list(
            "external_id",
            "name",
            "plan__name",
            "mrr",
            "billing_period",
            "status",
            "industry",
            "employees",
            "region",
            "owner__username",
            "first_purchase_on",
            "plan_started_on",
        ),
        UsageSnapshot.objects.order_by("account__external_id", "metric__key", "captured_on").values_list(
            "account__external_id", "metric__key", "captured_on", "value"
        ),
        MrrMovement.objects.order_by("account__external_id", "occurred_on", "kind").values_list(
            "account__external_id",
            "occurred_on",
            "kind",
            "mrr_before",
            "mrr_after",
            "plan_before__name",
            "plan_after__name",
        ),
        EngagementEvent.objects.order_by("external_id").values_list(
            "external_id", "account__external_id", "kind", "feature", "user_ref", "occurred_at"
        ),
        Opportunity.objects.order_by("account__external_id", "identified_at").values_list(
            "account__external_id",
            "stage",
            "outcome",
            "score",
            "reasons",
            "owner__username",
            "target_plan__name",
            "expected_mrr_delta",
            "qualification",
            "roi_note",
            "lost_reason__key",
            "snoozed_until",
            "identified_at",
            "closed_at",
        ),
        OpportunityEvent.objects.order_by("opportunity__account__external_id", "occurred_at", "kind").values_list(
            "opportunity__account__external_id",
            "occurred_at",
            "kind",
            "from_stage",
            "to_stage",
            "changes",
            "actor__username",
        ),
        Contact.objects.order_by("account__external_id", "-is_primary").values_list(
            "account__external_id", "name", "email", "title", "is_primary"
        ),
        Opportunity.objects.order_by("account__external_id", "identified_at").values_list("play__name"),
        StepRun.objects.order_by("account__external_id", "enrollment__play__name", "step__position").values_list(
            "account__external_id",
            "enrollment__play__name",
            "enrollment__status",
            "enrollment__stop_reason",
            "enrollment__started_at",
            "enrollment__started_by__username",
            "step__kind",
            "status",
            "due_at",
            "executed_at",
            "detail",
            "task__title",
        ),
        Touch.objects.order_by("account__external_id", "occurred_at", "kind").values_list(
            "account__external_id", "play__name", "kind", "occurred_at", "detail"
        ),
        # Not the detail: a feedback task's names the survey's signed link, which names the request's id.
        Task.objects.order_by("assignee__username", "account__external_id", "created_at", "title").values_list(
            "assignee__username", "account__external_id", "title", "due_on", "status", "source", "completed_at"
        ),
        Notification.objects.order_by("recipient__username", "created_at", "kind", "title").values_list(
            "recipient__username", "kind", "title", "created_at", "read_at"
        ),
        FeedbackRequest.objects.order_by("account__external_id", "movement__occurred_on").values_list(
            "account__external_id", "movement__occurred_on", "created_at", "answered_at", "task__title"
        ),
        SurveyResponse.objects.order_by("survey__name", "account__external_id", "contact_ref").values_list(
            "survey__name", "account__external_id", "contact_ref", "reason", "answers", "submitted_at"
        ),
    ]
    return hashlib.sha256(repr([list(p) for p in parts]).encode()).hexdigest()


@pytest.mark.django_db
def test_it_gives_the_same_demo_for_the_same_seed_and_date_and_another_for_another_seed():
    seed_demo()
    first = fingerprint()
    assert Account.objects.count() == 40

    seed_demo(reset=True)
    assert fingerprint() == first

    seed_demo(reset=True, seed=7)
    assert fingerprint() != first


@pytest.mark.django_db
def test_it_leaves_the_plans_exactly_as_domain_md_describes_them():
    seed_demo()

    assert set(Plan.objects.values_list("name", flat=True)) == set(DOMAIN_PLANS)
    for plan in Plan.objects.all():
        expected = DOMAIN_PLANS[plan.name]
        assert (plan.monthly_price, plan.annual_price) == (expected["monthly"], expected["annual"])
        limits = dict(PlanLimit.objects.filter(plan=plan).values_list("metric__key", "limit"))
        assert limits == expected["limits"]
        features = {k: v.lower() for k, v in PlanFeature.objects.filter(plan=plan).values_list("key", "value")}
        assert features == expected["features"]


@pytest.mark.django_db
def test_it_creates_the_demo_logins_with_their_roles_and_the_demo_password():
    output = seed_demo()

    users = {u.username: u for u in get_user_model().objects.prefetch_related("groups")}
    expected = {
        "csm1": "CSM",
        "csm2": "CSM",
        "csm3": "CSM",
        "csm4": "CSM",
        "sales1": "Sales",
        "manager": "Manager",
        "admin": "Admin",
    }
    for username, group in expected.items():
        user = users[username]
        assert [g.name for g in user.groups.all()] == [group]
        assert user.check_password("demo")
        assert user.first_name and user.last_name and user.email
        assert username in output
    assert users["admin"].is_staff and users["admin"].is_superuser
    assert not users["manager"].is_staff
    assert "'demo'" in output
    # The summary counts the workspace it wrote as well.
    assert f"contacts {Contact.objects.count():,}" in output and f"tasks {Task.objects.count():,}" in output
    # Each CSM has a book of accounts.
    owners = Counter(Account.objects.values_list("owner__username", flat=True))
    assert all(owners[f"csm{n}"] > 0 for n in range(1, 5))


@pytest.mark.django_db
def test_it_has_opportunities_in_every_stage_and_every_outcome_each_with_its_history():
    seed_demo()

    opportunities = list(Opportunity.objects.select_related("account", "lost_reason").prefetch_related("events"))
    assert {o.stage for o in opportunities} == set(Stage.values)
    assert {o.outcome for o in opportunities} == set(Outcome.values)
    assert {o.stage for o in opportunities if o.outcome == Outcome.OPEN} == set(Stage.values)
    for o in opportunities:
        assert o.owner_id == o.account.owner_id
        assert 0 <= o.score <= 100
        assert o.reasons and all({"text", "points", "rule"} <= r.keys() for r in o.reasons)
        assert o.events.all() and o.version == len(o.events.all())
        assert (o.closed_at is None) == (o.outcome == Outcome.OPEN)
        assert bool(o.qualification) == (o.qualified_at is not None)
        if o.presented_at:
            assert o.roi_note
        if o.outcome == Outcome.LOST:
            assert o.lost_reason is not None
        if o.outcome == Outcome.SNOOZED:
            assert o.snoozed_until is not None


@pytest.mark.django_db
def test_it_records_each_won_opportunity_as_the_expansion_it_brought():
    seed_demo()

    won = Opportunity.objects.filter(outcome=Outcome.WON)
    assert won
    for o in won:
        movement = MrrMovement.objects.get(
            account=o.account, kind=MrrMovement.Kind.EXPANSION, occurred_on=o.closed_at.date()
        )
        assert movement.plan_after_id == o.target_plan_id
        assert movement.mrr_after - movement.mrr_before == o.actual_mrr_delta


@pytest.mark.django_db
def test_it_chains_every_accounts_mrr_movements_up_to_its_current_mrr_and_plan():
    seed_demo()

    movements = defaultdict(list)
    for m in MrrMovement.objects.order_by("occurred_on", "pk"):
        movements[m.account_id].append(m)
    kinds = Counter()
    for account in Account.objects.all():
        chain = movements[account.pk]
        if account.status == Account.Status.TRIAL:
            assert not chain and account.mrr == 0 and account.first_purchase_on is None
            continue
        assert chain[0].kind == MrrMovement.Kind.NEW and chain[0].occurred_on == account.first_purchase_on
        before, paid = Decimal("0.00"), False
        for m in chain:
            assert m.source == MrrMovement.Source.DEMO
            assert m.mrr_before == before
            assert m.kind == movement_kind(mrr_before=m.mrr_before, mrr_after=m.mrr_after, paid_before=paid)
            before, paid = m.mrr_after, True
            kinds[m.kind] += 1
        last = chain[-1]
        assert account.mrr == last.mrr_after
        assert account.plan_id == last.plan_after_id
        assert (account.status == Account.Status.CHURNED) == (account.mrr == 0)
        if account.mrr:
            assert account.plan_started_on == last.occurred_on
    assert kinds[MrrMovement.Kind.NEW] and kinds[MrrMovement.Kind.EXPANSION]


@pytest.mark.django_db
def test_it_records_daily_usage_per_limit_metric_from_the_day_each_account_started_for_up_to_120_days():
    seed_demo()

    window_start = AS_OF - dt.timedelta(days=119)
    rows = list(
        UsageSnapshot.objects.values("account", "account__status", "account__first_purchase_on", "metric__key")
        .annotate(n=Count("id"), first=Min("captured_on"), last=Max("captured_on"), lowest=Min("value"))
        .order_by()
    )
    assert len(rows) == 40 * len(LIMIT_METRICS)
    assert set(Metric.objects.filter(kind=Metric.Kind.LIMIT).values_list("key", flat=True)) == set(LIMIT_METRICS)
    for row in rows:
        # One snapshot a day, without a gap, up to the seed's day.
        assert row["last"] == AS_OF
        assert window_start <= row["first"] and row["n"] == (row["last"] - row["first"]).days + 1
        assert row["lowest"] >= 0
        started = row["account__first_purchase_on"]
        if row["account__status"] == Account.Status.TRIAL:
            # Trials began within the last two weeks: nothing is recorded for the days before.
            assert row["first"] >= AS_OF - dt.timedelta(days=13), row
        elif started is not None and started <= window_start:
            assert row["n"] == 120, row
        elif started is not None:
            # Bought in the window, perhaps after a trial.
            assert row["first"] <= started, row
    assert any(row["n"] < 120 for row in rows), "no account in the demo started within the 120 days"
    for key, value in UsageSnapshot.objects.exclude(metric__key="storage_gb").values_list("metric__key", "value"):
        assert value == int(value), key


@pytest.mark.django_db
def test_it_puts_some_accounts_near_or_over_a_limit_and_some_on_course_to_reach_one():
    seed_demo(accounts=80)

    limits = {(p, k): v for p, k, v in PlanLimit.objects.values_list("plan_id", "metric__key", "limit")}
    series = defaultdict(list)
    for account_id, plan_id, key, value in (
        UsageSnapshot.objects.filter(account__status="active")
        .order_by("captured_on")
        .values_list("account_id", "account__plan_id", "metric__key", "value")
    ):
        series[(account_id, plan_id, key)].append(value)
    near, heading = set(), set()
    for (account_id, plan_id, key), values in series.items():
        limit = limits[(plan_id, key)]
        if limit is None:
            continue
        latest, window = values[-1], values[-30:]
        n = len(window)
        mean_x, mean_y = (n - 1) / 2, sum(window) / n
        slope = sum((x - mean_x) * (y - mean_y) for x, y in enumerate(window)) / sum(
            (x - mean_x) ** 2 for x in range(n)
        )
        if latest >= 0.8 * limit:
            near.add(account_id)
        elif slope > 0 and (limit - latest) / slope <= 90:
            heading.add(account_id)
    assert len(near) >= 8
    assert len(heading) >= 4


@pytest.mark.django_db
def test_it_spreads_engagement_over_the_last_two_30_day_windows():
    seed_demo()

    recent = EngagementEvent.objects.exclude(external_id__startswith=HISTORY_EVENT_PREFIX)
    events = list(recent.values_list("account__status", "kind", "occurred_at"))
    assert len(events) >= 40 * 20
    days = [(AS_OF - at.date()).days for _, _, at in events]
    assert min(days) >= 0 and max(days) <= 59
    assert any(d < 30 for d in days) and any(d >= 30 for d in days)
    kinds = {kind for _, kind, _ in events}
    assert {"login", "feature_used", "locked_feature_hit"} <= kinds
    trial_kinds = {kind for status, kind, _ in events if status == Account.Status.TRIAL}
    if Account.objects.filter(status=Account.Status.TRIAL).exists():
        assert "trial_feature_used" in trial_kinds


@pytest.mark.django_db
def test_it_writes_set_based_so_queries_do_not_grow_with_accounts(django_assert_max_num_queries):
    # A fixed number: the users, the bulk loads (PostgreSQL's drop and restore constraints around COPY; events
    # load twice, the recent window and the older history), one insert per table for the rest, and the first
    # need of the churn feedback survey, which creates it.
    with django_assert_max_num_queries(125):
        seed_demo()
    with CaptureQueriesContext(connection) as small:
        seed_demo(reset=True)
    with CaptureQueriesContext(connection) as triple:
        seed_demo(reset=True, accounts=120)

    # A query per account would add 80+ for each table; batches of rows add a handful in all.
    assert len(triple) - len(small) <= 20


@pytest.mark.django_db
def test_it_leaves_a_seeded_database_alone_with_if_empty():
    seed_demo()
    before = fingerprint()

    output = seed_demo(if_empty=True, seed=7)

    assert "already exist" in output
    assert fingerprint() == before


@pytest.mark.django_db
def test_it_refuses_to_seed_over_existing_accounts_without_reset(account):
    with pytest.raises(CommandError, match="--reset"):
        seed_demo()
    assert list(Account.objects.all()) == [account]


@pytest.mark.django_db
def test_it_lets_the_pipeline_fill_the_queue_afterwards(monkeypatch):
    calls = []
    monkeypatch.setattr("opportunities.pipeline.run_pipeline", lambda *, as_of: calls.append(as_of) or {})

    seed_demo(pipeline=True)

    assert calls == [AS_OF]


@pytest.mark.django_db
def test_it_gives_every_account_a_primary_contact_at_a_domain_named_after_the_company():
    seed_demo()

    accounts = Account.objects.prefetch_related("contacts")
    assert Contact.objects.filter(is_primary=False).exists()
    for account in accounts:
        primary = [c for c in account.contacts.all() if c.is_primary]
        assert len(primary) == 1, account.name
        assert primary[0].name and primary[0].email.endswith(".example")
        first_word = account.name.split()[0].lower()
        assert {c.email.split("@")[1] for c in account.contacts.all()} == {primary[0].email.split("@")[1]}
        assert primary[0].email.split("@")[1].startswith(first_word)


@pytest.mark.django_db
def test_it_shows_plays_with_a_three_step_sequence_one_automatic_and_accounts_running_them_in_every_state():
    seed_demo(accounts=150)

    plays = list(Play.objects.prefetch_related("steps", "rules").order_by("name"))
    assert {p.run_mode for p in plays} == {Play.RunMode.AUTOMATIC, Play.RunMode.MANUAL}
    for play in plays:
        steps = [(s.delay_days, s.kind) for s in play.steps.all()]
        assert steps == [(0, "email"), (3, "prompt"), (7, "task")], play.name
        assert play.rules.all() and play.target_plan_id
        assert play_template_errors({name: getattr(play, name) for name in ("email_subject", "email_body")}) == {}
        assert play_template_errors({"prompt_text": play.prompt_text}) == {}
    enrollments = list(Enrollment.objects.select_related("account__owner").prefetch_related("step_runs"))
    assert {e.status for e in enrollments} == set(Enrollment.Status.values)
    assert {e.stop_reason for e in enrollments if e.status == "stopped"} == {Enrollment.StopReason.UPGRADED}
    assert {e.account.owner.username for e in enrollments} >= {"csm1", "csm2"}
    runs = [run for e in enrollments for run in e.step_runs.all()]
    assert {run.status for run in runs} == {"sent", "pending", "cancelled"}
    for e in enrollments:
        statuses = [run.status for run in sorted(e.step_runs.all(), key=lambda run: run.step_id)]
        assert (e.status == "completed") == (statuses == ["sent"] * 3)
        assert (e.ended_at is None) == (e.status in ("active", "paused"))
    for run in StepRun.objects.filter(status="sent").select_related("step", "touch", "contact", "task"):
        assert run.executed_at >= run.due_at and run.detail
        if run.step.kind == "email":
            assert run.touch.kind == Touch.Kind.EMAIL and run.contact.is_primary
            assert run.detail == f"Sent to {run.contact.email}: {run.touch.detail}"
            assert "{" not in run.detail
        if run.step.kind == "task":
            assert run.task.source == Task.Source.PLAY and run.task.title in run.detail
    # The upgrade that stopped a sequence is credited to its play; an opportunity flagged by rules carries the
    # play flagging chose for it.
    upgraded = next(e for e in enrollments if e.status == "stopped")
    assert PlayCredit.objects.filter(account=upgraded.account, play=upgraded.play).exists()
    assert Opportunity.objects.filter(source="rules", play__isnull=False).exists()


@pytest.mark.django_db
def test_it_gives_each_csm_tasks_overdue_due_today_upcoming_and_done_and_unread_notifications():
    seed_demo()

    users = {u.username: u for u in get_user_model().objects.all()}
    board = task_board(user=users["csm1"], today=AS_OF)
    assert all(group.total > 0 for group in board.groups), [(g.key, g.total) for g in board.groups]
    assert board.done.total > 0
    for n in range(1, 5):
        sources = set(Task.objects.filter(assignee=users[f"csm{n}"]).values_list("source", flat=True))
        assert Task.Source.MANUAL in sources
    assert {s for s in Task.objects.values_list("source", flat=True)} == set(Task.Source.values)
    assert Notification.objects.filter(recipient=users["csm1"], read_at__isnull=True).exists()
    assert Notification.objects.filter(recipient=users["csm1"], read_at__isnull=False).exists()
    for username in ("csm1", "csm2", "csm3", "csm4", "manager", "sales1"):
        assert Notification.objects.filter(recipient=users[username]).exists(), username
    assert not Notification.objects.filter(created_at__gt=dt.datetime.combine(AS_OF, dt.time(8), tzinfo=dt.UTC))


@pytest.mark.django_db
def test_it_records_answers_to_the_needs_survey_and_feedback_on_recent_downgrades_and_churns():
    seed_demo()

    needs = Survey.objects.get(name="What will you store next quarter?")
    assert needs.purpose == Survey.Purpose.NEEDS and needs.rule.name == "Storage at 80% or more"
    questions = list(needs.questions.all())
    assert [(q.kind, len(q.choices)) for q in questions] == [("choice", 4), ("text", 0)]
    answers = list(SurveyResponse.objects.filter(survey=needs))
    assert 30 <= len(answers) <= 60
    assert len({a.account_id for a in answers}) > 10
    for answer in answers:
        assert (
            answer_clean(questions=questions, asks_reason=False, answers=answer.answers, reason="")[0] == answer.answers
        )

    requests = list(FeedbackRequest.objects.select_related("movement", "task", "survey", "response", "account"))
    assert requests
    assert {r.survey.name for r in requests} == {"Why did you downgrade or leave?"}
    assert any(r.answered_at for r in requests)
    for request in requests:
        assert request.movement.kind in ("contraction", "churn")
        # The account's CSM was given the task of collecting the answer (nobody, for an account without one).
        assert (request.task is None) == (request.account.owner_id is None)
        if request.task is not None:
            assert request.task.source == Task.Source.FEEDBACK and request.task.assignee_id == request.account.owner_id
        if request.answered_at:
            assert request.response.reason in SurveyResponse.Reason.values
            assert request.task is None or request.task.status == Task.Status.DONE
        else:
            assert not SurveyResponse.objects.filter(request=request).exists()


# --- Older engagement, for the insights pages --------------------------------------------------------------


def history_rows() -> list[tuple]:
    return list(
        EngagementEvent.objects.filter(external_id__startswith=HISTORY_EVENT_PREFIX)
        .order_by("external_id")
        .values_list("external_id", "account__external_id", "kind", "feature", "user_ref", "occurred_at")
    )


@pytest.mark.django_db
def test_it_adds_sparser_engagement_from_each_first_purchase_up_to_the_recent_60_days():
    seed_demo()

    recent_first_day = AS_OF - dt.timedelta(days=59)
    history = list(
        EngagementEvent.objects.filter(external_id__startswith=HISTORY_EVENT_PREFIX).values_list(
            "account_id", "account__first_purchase_on", "kind", "occurred_at"
        )
    )
    assert {kind for _, _, kind, _ in history} == set(EngagementEvent.Kind.values)
    for _, first_purchase_on, _, at in history:
        assert first_purchase_on is not None and first_purchase_on <= at.date() < recent_first_day
    # Older than the 90 days of follow-up "what precedes upgrades" leaves, back beyond a year.
    days = [(AS_OF - at.date()).days for *_, at in history]
    assert sum(d > 90 for d in days) > len(days) / 2 and max(days) > 365
    long_standing = Account.objects.filter(first_purchase_on__lt=AS_OF - dt.timedelta(days=150))
    assert long_standing and set(long_standing.values_list("pk", flat=True)) <= {a for a, *_ in history}
    # Sparser than the recent window: fewer events a month.
    recent = EngagementEvent.objects.exclude(external_id__startswith=HISTORY_EVENT_PREFIX).count()
    months = sum(
        max(1, (recent_first_day - day).days / 30.4)
        for day in long_standing.values_list("first_purchase_on", flat=True)
    )
    assert len(history) / months < recent / Account.objects.count() / 2


@pytest.mark.django_db
def test_it_writes_the_same_history_for_the_same_seed_and_date_and_another_for_another_seed():
    seed_demo()
    first = history_rows()
    assert first

    seed_demo(reset=True)
    assert history_rows() == first

    seed_demo(reset=True, seed=7)
    assert history_rows() != first


@pytest.mark.django_db
def test_the_insights_rank_a_signal_planted_before_upgrades_and_find_neutral_features_near_one():
    seed_demo(accounts=150)

    overview = upgrade_predictors(start=add_months(month_start(AS_OF), -11), end=AS_OF, today=AS_OF)

    # Signals the demo plants in the run-up to upgrades, and features it gives no part in them.
    planted = {"feature:automations", "feature:advanced_reporting", "locked:5", "trial:1", "trial:3", "logins:5"}
    neutral = {"feature:search", "feature:sharing"}
    confident = [s for s in overview.ranked if s.signal.key in planted and s.lift.ci_low > 1]
    assert confident, [(s.signal.key, s.lift) for s in overview.signals]
    assert all(s.lift.lift > 1 for s in confident)
    found = [s for s in overview.signals if s.signal.key in neutral]
    assert found and all(s.lift.ci_low < 1 < s.lift.ci_high for s in found)
