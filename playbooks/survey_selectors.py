"""Reads about surveys: the settings list, the account timeline's answers, and the summaries of the answers
per question and of the downgrade and churn reasons (for the insights pages), each in a fixed number of
queries whatever the number of accounts, surveys or answers."""

from __future__ import annotations

import datetime as dt
from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal

from django.db.models import Count, F, IntegerField, OuterRef, Q, QuerySet, Subquery, Value
from django.db.models.functions import Coalesce
from django.utils import timezone

from accounts.models import Account, size_band
from accounts.revenue_selectors import EVERYTHING, Segment
from playbooks.models import FeedbackRequest, Survey, SurveyQuestion, SurveyResponse
from playbooks.surveys import MAX_QUESTIONS

RECENT_TEXTS = 10
"""Free-text answers shown per question: the most recent ones."""
HUNDRED = Decimal(100)
ONE_DECIMAL = Decimal("0.1")


def share(part: int, whole: int) -> Decimal | None:
    """part / whole × 100, one decimal; None when whole is 0."""
    if not whole:
        return None
    return (Decimal(part) * HUNDRED / Decimal(whole)).quantize(ONE_DECIMAL, rounding=ROUND_HALF_UP)


def _count_of(model, **filters) -> Coalesce:
    rows = model.objects.filter(survey=OuterRef("pk"), **filters).order_by().values("survey").annotate(n=Count("pk"))
    return Coalesce(Subquery(rows.values("n")[:1], output_field=IntegerField()), Value(0))


def surveys_for_settings() -> QuerySet[Survey]:
    """Every survey, active first then by name, with its rule, questions and counts of answers and of open
    feedback requests. Three queries."""
    return (
        Survey.objects.select_related("rule")
        .prefetch_related("questions")
        .annotate(
            response_count=_count_of(SurveyResponse),
            open_request_count=_count_of(FeedbackRequest, answered_at__isnull=True),
        )
        .order_by("-active", "name")
    )


# --- The account's timeline -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SurveyAnswerItem:
    """An answer as the account's timeline shows it: the same fields as a timeline entry."""

    at: dt.datetime
    kind: str
    title: str
    body: str
    actor: object = None


def _question_text(position: int) -> Subquery:
    rows = SurveyQuestion.objects.filter(survey=OuterRef("survey_id"), position=position).values("text")[:1]
    return Subquery(rows)


def account_survey_answers(*, account_id: int, limit: int = 50) -> list[SurveyAnswerItem]:
    """The account's survey answers, newest first: "Survey answered: <name>" (and by whom), with the reason
    and each question and answer as body. One query (the question texts are subqueries of it)."""
    rows = (
        SurveyResponse.objects.filter(account_id=account_id)
        .annotate(
            survey_name=F("survey__name"),
            **{f"q{position}": _question_text(position) for position in range(1, MAX_QUESTIONS + 1)},
        )
        .order_by("-submitted_at", "-pk")
        .values("submitted_at", "survey_name", "contact_ref", "reason", "answers", "q1", "q2", "q3")[:limit]
    )
    items = []
    for row in rows:
        lines = []
        if row["reason"]:
            lines.append(f"Reason: {SurveyResponse.Reason(row['reason']).label}")
        for position in range(1, MAX_QUESTIONS + 1):
            answer = (row["answers"] or {}).get(str(position))
            if answer:
                question = row[f"q{position}"] or f"Question {position}"
                lines.append(f"{question} — {answer}")
        title = f"Survey answered: {row['survey_name']}"
        if row["contact_ref"]:
            title += f" by {row['contact_ref']}"
        items.append(SurveyAnswerItem(at=row["submitted_at"], kind="survey", title=title, body="\n".join(lines)))
    return items


# --- Summaries --------------------------------------------------------------------------------------------


def period_bounds(start: dt.date, end: dt.date) -> tuple[dt.datetime, dt.datetime]:
    """[beginning of `start`, beginning of the day after `end`) in the current time zone."""
    zone = timezone.get_current_timezone()
    return (
        dt.datetime.combine(start, dt.time.min, tzinfo=zone),
        dt.datetime.combine(end + dt.timedelta(days=1), dt.time.min, tzinfo=zone),
    )


def _responses(*, start: dt.date, end: dt.date, segment: Segment) -> QuerySet[SurveyResponse]:
    """Answers submitted in [start, end] by accounts of `segment` (the account's current owner and segment)."""
    since, until = period_bounds(start, end)
    responses = SurveyResponse.objects.filter(submitted_at__gte=since, submitted_at__lt=until)
    if not segment.is_everything:
        responses = responses.filter(account__in=segment.apply(Account.objects.all()))
    return responses


@dataclass(frozen=True, slots=True)
class ChoiceCount:
    choice: str
    count: int
    share: Decimal | None
    """count / answers to the question × 100."""
    current: bool = True
    """False for an answer that is no longer one of the question's choices (the survey was edited)."""


@dataclass(frozen=True, slots=True)
class TextAnswer:
    text: str
    account_id: int
    account_name: str
    contact: str
    submitted_at: dt.datetime


@dataclass(slots=True)
class QuestionSummary:
    position: int
    text: str
    kind: str
    answered: int = 0
    choices: list[ChoiceCount] = field(default_factory=list)
    texts: list[TextAnswer] = field(default_factory=list)

    @property
    def is_choice(self) -> bool:
        return self.kind == SurveyQuestion.Kind.CHOICE


@dataclass(slots=True)
class SurveySummary:
    id: int
    name: str
    purpose: str
    purpose_label: str
    channel_label: str
    active: bool
    responses: int
    questions: list[QuestionSummary]
    reasons: list[ChoiceCount] = field(default_factory=list)


def choice_counts(choices: Iterable[str], counted: dict[str, int]) -> tuple[int, list[ChoiceCount]]:
    """(answers, one row per choice in the survey's order then any former choice answered): count and share
    = count / answers × 100. Choices nobody picked count 0."""
    choices = list(choices)
    total = sum(counted.values())
    rows = [ChoiceCount(c, counted.get(c, 0), share(counted.get(c, 0), total)) for c in choices]
    former = sorted((value, n) for value, n in counted.items() if value not in choices)
    rows += [ChoiceCount(value, n, share(n, total), current=False) for value, n in former]
    return total, rows


def survey_summaries(*, start: dt.date, end: dt.date, segment: Segment = EVERYTHING) -> list[SurveySummary]:
    """Per survey with answers in the period (and every active survey), per question: a choice question's
    count and share of each choice; a free-text question's number of answers and its RECENT_TEXTS latest.
    Downgrade and churn feedback adds its reasons' counts and shares.

    Queries: answers per survey (1), surveys with questions (2), the period's answers (1, read once, newest
    first, only the fields counted); whatever the number of accounts. Answers are keyed by position in a
    JSON object, which the databases' JSON paths would read as array indexes: they are counted here.
    """
    responses = _responses(start=start, end=end, segment=segment)
    per_survey = dict(responses.order_by().values("survey_id").annotate(n=Count("pk")).values_list("survey_id", "n"))
    surveys = list(
        Survey.objects.filter(Q(active=True) | Q(pk__in=list(per_survey)))
        .prefetch_related("questions")
        .order_by("-active", "name")
    )
    kinds = {(s.pk, q.position): q.kind for s in surveys for q in s.questions.all()}
    chosen: dict[tuple[int, int], Counter] = defaultdict(Counter)
    texts: dict[tuple[int, int], list[TextAnswer]] = defaultdict(list)
    text_counts: Counter = Counter()
    reasons: dict[int, Counter] = defaultdict(Counter)
    rows = responses.order_by("-submitted_at", "-pk").values_list(
        "survey_id", "answers", "reason", "account_id", "account__name", "contact_ref", "submitted_at"
    )
    for survey_id, answers, reason, account_id, account_name, contact, submitted_at in rows.iterator(chunk_size=2000):
        if reason:
            reasons[survey_id][reason] += 1
        for key, value in (answers or {}).items():
            if not key.isdigit() or not isinstance(value, str) or not value:
                continue
            position = (survey_id, int(key))
            kind = kinds.get(position)
            if kind == SurveyQuestion.Kind.CHOICE:
                chosen[position][value] += 1
            elif kind == SurveyQuestion.Kind.TEXT:
                text_counts[position] += 1
                if len(texts[position]) < RECENT_TEXTS:
                    texts[position].append(TextAnswer(value, account_id, account_name, contact, submitted_at))
    summaries = []
    for survey in surveys:
        questions = []
        for q in sorted(survey.questions.all(), key=lambda q: q.position):
            summary = QuestionSummary(position=q.position, text=q.text, kind=q.kind)
            if q.kind == SurveyQuestion.Kind.CHOICE:
                summary.answered, summary.choices = choice_counts(q.choices, chosen.get((survey.pk, q.position), {}))
            else:
                summary.answered = text_counts.get((survey.pk, q.position), 0)
                summary.texts = texts.get((survey.pk, q.position), [])
            questions.append(summary)
        reason_rows: list[ChoiceCount] = []
        if survey.purpose == Survey.Purpose.CHURN_FEEDBACK:
            counted = reasons.get(survey.pk, {})
            total = sum(counted.values())
            reason_rows = sorted(
                (ChoiceCount(SurveyResponse.Reason(r).label, n, share(n, total)) for r, n in counted.items()),
                key=lambda row: (-row.count, row.choice),
            )
        summaries.append(
            SurveySummary(
                id=survey.pk,
                name=survey.name,
                purpose=survey.purpose,
                purpose_label=survey.get_purpose_display(),
                channel_label=survey.get_channel_display(),
                active=survey.active,
                responses=per_survey.get(survey.pk, 0),
                questions=questions,
                reasons=reason_rows,
            )
        )
    return summaries


# --- Downgrade and churn reasons --------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ReasonRecord:
    """One downgrade or churn answer's reason with the account's segment; `plan` is the plan it left (the
    movement's plan before) when the answer fulfils a feedback request, else the account's current plan."""

    reason: str
    plan: str
    industry: str
    size_band: str
    region: str
    kind: str
    """The movement's kind (contraction or churn); "" when the answer is not tied to a movement."""


def feedback_reason_records(*, start: dt.date, end: dt.date, segment: Segment = EVERYTHING) -> list[ReasonRecord]:
    """The reasons given in downgrade and churn feedback answered in the period, one record per answer.
    One query."""
    rows = (
        _responses(start=start, end=end, segment=segment)
        .exclude(reason="")
        .annotate(
            plan_name=Coalesce(F("request__movement__plan_before__name"), F("account__plan__name")),
            movement_kind=F("request__movement__kind"),
        )
        .values_list(
            "reason", "plan_name", "account__industry", "account__employees", "account__region", "movement_kind"
        )
    )
    records = []
    for reason, plan, industry, employees, region, kind in rows:
        band = size_band(employees)
        records.append(
            ReasonRecord(
                reason=reason,
                plan=plan or "",
                industry=industry or "",
                size_band=Account.Size(band).label if band else "",
                region=region or "",
                kind=kind or "",
            )
        )
    return records


@dataclass(frozen=True, slots=True)
class RequestCounts:
    asked: int
    answered: int
    rate: Decimal | None
    """answered / asked × 100."""


def feedback_request_counts(*, start: dt.date, end: dt.date, segment: Segment = EVERYTHING) -> RequestCounts:
    """Downgrade and churn feedback requests made in the period to accounts of `segment`, and how many of them
    were answered (by now); the requests of needs surveys sent by email are not feedback. One query."""
    since, until = period_bounds(start, end)
    requests = FeedbackRequest.objects.filter(
        created_at__gte=since, created_at__lt=until, survey__purpose=Survey.Purpose.CHURN_FEEDBACK
    )
    if not segment.is_everything:
        requests = requests.filter(account__in=segment.apply(Account.objects.all()))
    counts = requests.aggregate(asked=Count("pk"), answered=Count("pk", filter=Q(answered_at__isnull=False)))
    return RequestCounts(counts["asked"], counts["answered"], share(counts["answered"], counts["asked"]))
