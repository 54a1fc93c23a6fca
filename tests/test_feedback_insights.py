"""Insights > Downgrades and churn: the reasons given in downgrade and churn feedback, overall, by the plan
left and by segment, the share of requests answered, next to the reasons upsells were lost."""

import csv
import datetime as dt
import io
from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from accounts.models import MrrMovement
from opportunities.models import LostReason, Outcome, Stage
from opportunities.voice_stats import reason_matrix
from playbooks.models import FeedbackRequest, Survey, SurveyResponse
from playbooks.survey_selectors import ReasonRecord, feedback_reason_records
from playbooks.surveys import QuestionSpec, survey_save
from tests.factories import AccountFactory, MrrMovementFactory, OpportunityFactory, plan


@pytest.fixture
def churn_survey(admin_user):
    return survey_save(
        survey=Survey(),
        data={"name": "Why the change?", "purpose": "churn_feedback", "channel": "email"},
        questions=[QuestionSpec("What could we have done better?")],
        by=admin_user,
        at=timezone.now(),
    )


def left(survey, account, reason, *, plan_before="Pro", kind="churn", answered=True, days_ago=2):
    """The account downgraded or churned from `plan_before`, was asked why and (if `answered`) said `reason`."""
    at = timezone.now() - dt.timedelta(days=days_ago)
    movement = MrrMovementFactory(
        account=account,
        occurred_on=at.date(),
        kind=kind,
        mrr_before=Decimal("99.00"),
        mrr_after=Decimal("0.00") if kind == "churn" else Decimal("29.00"),
        plan_before=plan(plan_before),
        plan_after=None if kind == "churn" else plan("Basic"),
    )
    request = FeedbackRequest.objects.create(
        survey=survey, account=account, movement=movement, created_at=at, answered_at=at if answered else None
    )
    if answered:
        SurveyResponse.objects.create(
            survey=survey, account=account, request=request, reason=reason, answers={}, submitted_at=at
        )


def test_the_matrix_counts_reasons_per_value_with_their_share_of_the_row():
    records = [
        ReasonRecord("price", "Pro", "Software", "11–50", "EMEA", "churn"),
        ReasonRecord("price", "Pro", "Retail", "11–50", "EMEA", "churn"),
        ReasonRecord("competitor", "Pro", "Software", "", "EMEA", "contraction"),
        ReasonRecord("support", "Basic", "Software", "", "", "churn"),
    ]
    reasons = list(SurveyResponse.Reason.choices)

    by_plan = reason_matrix(records, dimension="plan", label="Plan left", reasons=reasons)
    by_size = reason_matrix(records, dimension="size_band", label="Company size", reasons=reasons)

    assert by_plan.reasons == [
        ("price", "Too expensive"),
        ("competitor", "Moved to a competitor"),
        ("support", "Support experience"),
    ]
    assert [(r.value, r.total, r.counts, [str(s) for s in r.shares]) for r in by_plan.rows] == [
        ("Pro", 3, [2, 1, 0], ["66.7", "33.3", "0.0"]),
        ("Basic", 1, [0, 0, 1], ["0.0", "0.0", "100.0"]),
    ]
    assert [(r.value, r.total) for r in by_size.rows] == [("11–50", 2), ("Unknown", 2)]


def test_the_plan_is_the_one_the_account_left_not_its_current_one(churn_survey, csm):
    account = AccountFactory(owner=csm, plan=plan("Basic"))
    left(churn_survey, account, "price", plan_before="Enterprise", kind="contraction")
    today = timezone.localdate()

    [record] = feedback_reason_records(start=today - dt.timedelta(days=30), end=today)

    assert (record.reason, record.plan, record.kind) == ("price", "Enterprise", "contraction")


def test_the_page_shows_the_reasons_the_answer_rate_and_the_lost_reasons_next_to_them(
    manager_client, churn_survey, csm
):
    for reason in ("price", "price", "competitor"):
        left(churn_survey, AccountFactory(owner=csm, industry="Retail"), reason)
    left(churn_survey, AccountFactory(owner=csm), "", answered=False)
    needs = Survey.objects.create(name="Next quarter", purpose=Survey.Purpose.NEEDS, channel=Survey.Channel.EMAIL)
    FeedbackRequest.objects.create(survey=needs, account=AccountFactory(owner=csm), created_at=timezone.now())
    lost = LostReason.objects.filter(active=True).order_by("display_order").first()
    OpportunityFactory(
        account=AccountFactory(owner=csm),
        stage=Stage.CLOSE,
        outcome=Outcome.LOST,
        lost_reason=lost,
        closed_at=timezone.now() - dt.timedelta(days=1),
    )

    page = manager_client.get(reverse("insights:feedback")).content.decode()

    assert 'data-figure="asked">4<' in page and 'data-figure="answer-rate">75.0%<' in page
    assert 'data-reason-count="Too expensive">2<' in page and 'data-reason-share="Too expensive">66.7%<' in page
    assert 'data-cell="plan/Pro/0">2 ' in page and 'data-cell="industry/Retail/1">1 ' in page
    assert f'data-lost-count="{lost.label}">1<' in page


def test_the_reasons_by_segment_download_as_csv(manager_client, churn_survey, csm):
    left(churn_survey, AccountFactory(owner=csm, region="APAC"), "budget_cut")

    response = manager_client.get(reverse("insights:feedback"), {"export": "by_segment"})

    rows = list(csv.reader(io.StringIO(b"".join(response.streaming_content).decode("utf-8-sig"))))
    assert rows[0] == ["dimension", "value", "reason", "answers", "share_percent"]
    assert ["Region", "APAC", "Budget cut", "1", "100.0"] in rows
    assert ["Plan left", "Pro", "Budget cut", "1", "100.0"] in rows


def test_a_filter_by_region_keeps_only_those_accounts(manager_client, churn_survey, csm):
    left(churn_survey, AccountFactory(owner=csm, region="APAC"), "price")
    left(churn_survey, AccountFactory(owner=csm, region="EMEA"), "support")

    page = manager_client.get(reverse("insights:feedback"), {"region": "APAC"}).content.decode()

    assert 'data-reason-count="Too expensive">1<' in page
    assert 'data-reason-count="Support experience"' not in page


def test_without_feedback_the_page_says_so(manager_client):
    page = manager_client.get(reverse("insights:feedback")).content.decode()

    assert "No reason given in the period" in page and 'data-figure="answer-rate">—<' in page


def test_a_csm_is_refused(csm_client):
    assert csm_client.get(reverse("insights:feedback")).status_code == 403


def test_the_page_takes_the_same_queries_for_5_or_50_accounts(manager_client, churn_survey, csm, other_csm):
    reasons = [value for value, _ in SurveyResponse.Reason.choices]

    def churned(n, offset=0):
        for i in range(offset, offset + n):
            account = AccountFactory(owner=csm if i % 2 else other_csm, industry=f"Industry {i % 4}")
            left(churn_survey, account, reasons[i % len(reasons)], plan_before=("Basic", "Pro", "Enterprise")[i % 3])

    churned(5)
    manager_client.get(reverse("insights:feedback"))
    with CaptureQueriesContext(connection) as few:
        manager_client.get(reverse("insights:feedback"))
    churned(45, offset=5)

    with CaptureQueriesContext(connection) as many:
        page = manager_client.get(reverse("insights:feedback")).content.decode()

    assert len(many.captured_queries) == len(few.captured_queries)
    assert 'data-figure="reasons">50<' in page
    assert MrrMovement.objects.count() == 50
