"""Surveys: the admin's writes, which accounts are asked, and how an answer is checked and stored.

A survey has one to three questions. A choice question offers two to ten options and must be answered with
one of them; a free-text question may be left blank (up to ANSWER_MAX_CHARS characters). An answer with
nothing in it at all is refused. A downgrade and churn feedback survey also asks for a reason from the
fixed list `SurveyResponse.Reason`, which is required.

**Who is asked.** An active in-app survey (channel "prompt") is offered through the prompts API to an
account when either

- the account has an open feedback request on it (`FeedbackRequest`, answered_at empty: after a downgrade
  or churn, see `playbooks.feedback`), or
- it is an upcoming-needs survey whose rule is enabled and fires on the account's stored indicators and
  engagement (the facts flagging scores, `playbooks.facts`), the account is not churned, and nobody at the
  account has answered the survey yet.

An email-link survey is answered on a public page, `/s/<token>/`; the signed token names the account, the
survey and the feedback request (if any), and is good for LINK_MAX_AGE. Reading the offer or the page
writes nothing.

**One answer per contact.** The API names the customer's user who answers (`contact`); a link answers as
the account. While the account has an open feedback request on the survey, an answer fulfils it (and the
request is marked answered). Otherwise a second answer from the same contact is not stored again: the same
answers are a duplicate (the stored answer is returned), different ones a conflict. The account row is
locked while this is decided, so two identical requests at once store one answer.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace

from django.conf import settings
from django.core import signing
from django.db import transaction
from django.db.models import Count, Q
from django.urls import reverse

from accounts.audit import audit_record, audit_snapshot
from accounts.models import Account, AccountEngagement, AccountIndicator, AuditEntry, Metric, Notification
from accounts.work_services import notify
from playbooks import rules as scoring
from playbooks.facts import ENGAGEMENT_FIELDS, INDICATOR_FIELDS, account_facts
from playbooks.models import FeedbackRequest, Survey, SurveyQuestion, SurveyResponse

MAX_QUESTIONS = 3
MIN_CHOICES = 2
MAX_CHOICES = 10
CHOICE_MAX_CHARS = 100
ANSWER_MAX_CHARS = 2000
"""Longest free-text answer, in characters."""
CONTACT_MAX_CHARS = SurveyResponse._meta.get_field("contact_ref").max_length
LINK_MAX_AGE = dt.timedelta(days=90)
"""How long an emailed survey link stays good."""

DEFAULT_CHURN_SURVEY = "Why did you downgrade or leave?"
DEFAULT_CHURN_INTRO = "We are sorry to see you change your plan. Two minutes of your time helps us do better."
DEFAULT_CHURN_QUESTION = "What could we have done better?"

SURVEY_FIELDS = ("name", "purpose", "channel", "rule", "intro", "active")
"""What the editor changes, and what the audit trail records (with the questions)."""

_OFFER_SIGNER = signing.Signer(salt="playbooks.survey")
_LINK_SIGNER = signing.TimestampSigner(salt="playbooks.survey.link")
_OFFER_RE = re.compile(r"(\d+)-(\d+)")
_LINK_RE = re.compile(r"(\d+)-(\d+)-(\d+)")


class UnknownSurvey(Exception):
    """The survey id or link was not issued here (or was altered, or has expired), or the survey is gone."""


class SurveyNotOffered(Exception):
    """The survey was offered to another account, or is closed (switched off) since."""


class AnswerConflict(Exception):
    """This contact has answered the survey already, differently."""


@dataclass(frozen=True, slots=True)
class AnswerError:
    """What is wrong with one part of an answer: `path` names it ("answers", "2"), ("reason",)."""

    path: tuple[str, ...]
    message: str


class AnswerInvalid(Exception):
    def __init__(self, errors: list[AnswerError]):
        self.errors = errors
        super().__init__(f"{len(errors)} problem(s) with the answer")


# --- Ids and links ----------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class OfferRef:
    account_id: int
    survey_id: int


def survey_offer_id(*, account_id: int, survey_id: int) -> str:
    """The id of a survey offered to an account: "<account>-<survey>:<signature>", stable for the pair."""
    return _OFFER_SIGNER.sign(f"{account_id}-{survey_id}")


def survey_offer_ref(value: str) -> OfferRef | None:
    """What an offer id stands for; None when it was not issued here or was altered."""
    try:
        unsigned = _OFFER_SIGNER.unsign(value)
    except signing.BadSignature:
        return None
    match = _OFFER_RE.fullmatch(unsigned)
    if match is None:
        return None
    return OfferRef(account_id=int(match[1]), survey_id=int(match[2]))


@dataclass(frozen=True, slots=True)
class LinkRef:
    account_id: int
    survey_id: int
    request_id: int | None


def survey_link_token(*, account_id: int, survey_id: int, request_id: int | None = None) -> str:
    """The token of an emailed survey link: account, survey and feedback request (0 = none), signed with
    the time it was made (it expires after LINK_MAX_AGE)."""
    return _LINK_SIGNER.sign(f"{account_id}-{survey_id}-{request_id or 0}")


def survey_link_ref(token: str) -> LinkRef | None:
    """What a link token stands for; None when forged, altered, malformed or expired."""
    try:
        unsigned = _LINK_SIGNER.unsign(token, max_age=LINK_MAX_AGE)
    except signing.BadSignature:  # SignatureExpired is a BadSignature
        return None
    match = _LINK_RE.fullmatch(unsigned)
    if match is None:
        return None
    return LinkRef(account_id=int(match[1]), survey_id=int(match[2]), request_id=int(match[3]) or None)


def survey_link_path(*, account_id: int, survey_id: int, request_id: int | None = None) -> str:
    """The path of the public page answering the survey (`/s/<token>/`)."""
    token = survey_link_token(account_id=account_id, survey_id=survey_id, request_id=request_id)
    return reverse("survey_public", kwargs={"token": token})


def survey_link_url(*, account_id: int, survey_id: int, request_id: int | None = None) -> str:
    """The absolute address of that page, on the app's public address (APP_URL), to send to the customer."""
    path = survey_link_path(account_id=account_id, survey_id=survey_id, request_id=request_id)
    return settings.APP_URL.rstrip("/") + path


# --- Checking an answer -----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class QuestionSpec:
    """A question as the editor and the checks see it (positions follow the list order, from 1)."""

    text: str
    kind: str = SurveyQuestion.Kind.TEXT
    choices: tuple[str, ...] = ()


def asks_reason(survey: Survey) -> bool:
    return survey.purpose == Survey.Purpose.CHURN_FEEDBACK


def answer_clean(
    *, questions: Sequence[SurveyQuestion], asks_reason: bool, answers: Mapping[str, object], reason: str | None
) -> tuple[dict[str, str], str]:
    """(answers by position as text, reason) after checking them; raises AnswerInvalid naming each problem.

    Keys are question positions ("1".."3"). A choice question needs one of its choices (matched ignoring
    case and surrounding spaces, stored as the survey spells it); free text is optional, stripped, at most
    ANSWER_MAX_CHARS characters, and left out when blank. A reason is required when `asks_reason` (one of
    `SurveyResponse.Reason`) and refused otherwise. Something must be answered.
    """
    errors: list[AnswerError] = []
    by_position = {str(q.position): q for q in questions}
    for key in answers:
        if key not in by_position:
            errors.append(AnswerError(("answers", key), f"No question {key}: the survey has {len(questions)}."))
    cleaned: dict[str, str] = {}
    for key, question in by_position.items():
        value = answers.get(key)
        if value is not None and not isinstance(value, str):
            errors.append(AnswerError(("answers", key), "Expected a string."))
            continue
        text = (value or "").strip()
        if question.kind == SurveyQuestion.Kind.CHOICE:
            if not text:
                errors.append(AnswerError(("answers", key), "Required: choose one of the options."))
                continue
            match = next((c for c in question.choices if c.strip().casefold() == text.casefold()), None)
            if match is None:
                options = ", ".join(question.choices)
                errors.append(AnswerError(("answers", key), f"Not one of the choices: {options}."))
                continue
            cleaned[key] = match
        elif len(text) > ANSWER_MAX_CHARS:
            errors.append(
                AnswerError(
                    ("answers", key), f"Too long: at most {ANSWER_MAX_CHARS:,} characters ({len(text):,} sent)."
                )
            )
        elif text:
            cleaned[key] = text
    reason = (reason or "").strip()
    if asks_reason:
        if not reason:
            errors.append(AnswerError(("reason",), "Required: say why the account downgraded or left."))
        elif reason not in SurveyResponse.Reason.values:
            errors.append(AnswerError(("reason",), f"Not one of: {', '.join(SurveyResponse.Reason.values)}."))
    elif reason:
        errors.append(AnswerError(("reason",), "Only downgrade and churn feedback asks for a reason."))
    if not errors and not cleaned and not reason:
        errors.append(AnswerError(("answers",), "Nothing was answered."))
    if errors:
        raise AnswerInvalid(errors)
    return cleaned, reason


# --- The admin's writes -----------------------------------------------------------------------------------


def _questions_plain(survey: Survey) -> list[dict]:
    return [
        {"position": q.position, "text": q.text, "kind": q.kind, "choices": list(q.choices)}
        for q in SurveyQuestion.objects.filter(survey=survey).order_by("position")
    ]


def _snapshot(survey: Survey) -> dict:
    return audit_snapshot(survey, fields=SURVEY_FIELDS) | {"questions": _questions_plain(survey)}


@transaction.atomic
def survey_save(*, survey: Survey, data: Mapping, questions: Sequence[QuestionSpec], by, at: dt.datetime) -> Survey:
    """Create the survey (no pk yet) or update it from `data` (SURVEY_FIELDS) and replace its questions with
    `questions` (positions 1..n in order), recording who changed what, questions included.

    One to MAX_QUESTIONS questions; choice questions with MIN_CHOICES to MAX_CHOICES distinct options (a
    free-text question keeps none). Raises ValueError otherwise, and ValidationError for what the model's
    checks refuse; nothing is stored then. Answers are stored by position: changing a question changes how
    the answers given before read.
    """
    if not 1 <= len(questions) <= MAX_QUESTIONS:
        raise ValueError(f"A survey has one to {MAX_QUESTIONS} questions.")
    for spec in questions:
        if spec.kind == SurveyQuestion.Kind.CHOICE and not MIN_CHOICES <= len(set(spec.choices)) <= MAX_CHOICES:
            raise ValueError(f"A choice question has {MIN_CHOICES} to {MAX_CHOICES} distinct choices.")
    creating = survey.pk is None
    if creating:
        target, before = Survey(), None
    else:
        target = Survey.objects.select_for_update().get(pk=survey.pk)
        before = _snapshot(target)
    for name in SURVEY_FIELDS:
        if name in data:
            setattr(target, name, data[name])
    target.full_clean()
    target.save()
    SurveyQuestion.objects.filter(survey=target).delete()
    SurveyQuestion.objects.bulk_create(
        SurveyQuestion(
            survey=target,
            position=position,
            text=spec.text.strip(),
            kind=spec.kind,
            choices=list(spec.choices) if spec.kind == SurveyQuestion.Kind.CHOICE else [],
        )
        for position, spec in enumerate(questions, start=1)
    )
    audit_record(
        obj=target,
        action=AuditEntry.Action.CREATED if creating else AuditEntry.Action.UPDATED,
        before=before,
        after=_snapshot(target),
        by=by,
        at=at,
    )
    return target


def churn_feedback_survey(*, at: dt.datetime) -> Survey | None:
    """The survey downgrades and churns are asked: the oldest active downgrade and churn feedback survey.

    When no such survey exists at all, the default one is created on this first need (an email link,
    DEFAULT_CHURN_SURVEY with one free-text question besides the reason), recorded in the audit trail as
    made by the system. When every such survey has been switched off, nobody is asked: None.
    """
    surveys = Survey.objects.filter(purpose=Survey.Purpose.CHURN_FEEDBACK)
    active = surveys.filter(active=True).order_by("pk").first()
    if active is not None or surveys.exists():
        return active
    # A savepoint: a concurrent first need creating the same name must not break the caller's transaction.
    with transaction.atomic():
        survey, created = Survey.objects.get_or_create(
            name=DEFAULT_CHURN_SURVEY,
            defaults={
                "purpose": Survey.Purpose.CHURN_FEEDBACK,
                "channel": Survey.Channel.EMAIL,
                "intro": DEFAULT_CHURN_INTRO,
            },
        )
        if created:
            SurveyQuestion.objects.create(
                survey=survey, position=1, text=DEFAULT_CHURN_QUESTION, kind=SurveyQuestion.Kind.TEXT
            )
            audit_record(
                obj=survey, action=AuditEntry.Action.CREATED, before=None, after=_snapshot(survey), by=None, at=at
            )
    if survey.purpose != Survey.Purpose.CHURN_FEEDBACK or not survey.active:
        return None
    return survey


# --- Who is asked -----------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class OfferedQuestion:
    position: int
    text: str
    kind: str
    choices: list[str]
    required: bool


@dataclass(frozen=True, slots=True)
class OfferedSurvey:
    """A survey to show in the customer's product, as the prompts API returns it."""

    id: str
    name: str
    purpose: str
    intro: str
    questions: list[OfferedQuestion]
    reasons: list[dict[str, str]] = field(default_factory=list)
    """The reasons to choose from (key and label), for downgrade and churn feedback; empty otherwise."""


def reason_options() -> list[dict[str, str]]:
    return [{"key": value, "label": label} for value, label in SurveyResponse.Reason.choices]


def offered_questions(survey: Survey) -> list[OfferedQuestion]:
    """The survey's questions (prefetched as `questions`), in order."""
    return [
        OfferedQuestion(
            position=q.position,
            text=q.text,
            kind=q.kind,
            choices=list(q.choices) if q.kind == SurveyQuestion.Kind.CHOICE else [],
            required=q.kind == SurveyQuestion.Kind.CHOICE,
        )
        for q in sorted(survey.questions.all(), key=lambda q: q.position)
    ]


def _facts(account: Account, *, with_percentile: bool) -> scoring.AccountFacts:
    """The account's facts from its stored indicators and engagement, as flagging builds them. Three
    queries, four with the login percentile (the share of accounts logging in less often)."""
    metrics = {m.pk: m for m in Metric.objects.filter(kind=Metric.Kind.LIMIT)}
    indicators = AccountIndicator.objects.filter(account_id=account.pk, metric_id__in=list(metrics)).values(
        *INDICATOR_FIELDS
    )
    engagement = AccountEngagement.objects.filter(account_id=account.pk).values(*ENGAGEMENT_FIELDS).first()
    facts = account_facts(
        account={"id": account.pk, "plan_id": account.plan_id, "industry": account.industry, "region": account.region},
        indicators=indicators,
        engagement=engagement,
        metrics=metrics,
        logins_sorted=[],
    )
    if with_percentile and facts.logins_per_week:
        counts = AccountEngagement.objects.aggregate(
            total=Count("pk"), below=Count("pk", filter=Q(logins_per_week__lt=facts.logins_per_week))
        )
        if counts["total"]:
            facts = replace(facts, login_percentile=counts["below"] / counts["total"] * 100)
    return facts


def surveys_offer(*, account: Account, at: dt.datetime) -> list[OfferedSurvey]:
    """The in-app surveys to show `account` now (see the module docstring for who is asked): those it has an
    open feedback request on first, then the rest, oldest survey first. Writes nothing; a fixed number of
    queries whatever the number of surveys (the stored facts only when a rule has to be evaluated)."""
    surveys = [
        s
        for s in Survey.objects.filter(active=True, channel=Survey.Channel.PROMPT)
        .select_related("rule__metric")
        .prefetch_related("questions", "rule__plans")
        .order_by("pk")
        if s.questions.all()
    ]
    if not surveys:
        return []
    ids = [s.pk for s in surveys]
    requested = set(
        FeedbackRequest.objects.filter(account=account, survey_id__in=ids, answered_at__isnull=True).values_list(
            "survey_id", flat=True
        )
    )
    by_rule = [
        s
        for s in surveys
        if s.pk not in requested
        and s.purpose == Survey.Purpose.NEEDS
        and s.rule is not None
        and s.rule.enabled
        and account.status != Account.Status.CHURNED
    ]
    firing: set[int] = set()
    if by_rule:
        answered = set(
            SurveyResponse.objects.filter(account=account, survey_id__in=[s.pk for s in by_rule]).values_list(
                "survey_id", flat=True
            )
        )
        by_rule = [s for s in by_rule if s.pk not in answered]
        if by_rule:
            facts = _facts(account, with_percentile=any(s.rule.min_login_percentile is not None for s in by_rule))
            firing = {s.pk for s in by_rule if scoring.evaluate(s.rule.as_spec(), facts) is not None}
    chosen = [s for s in surveys if s.pk in requested] + [s for s in surveys if s.pk in firing]
    return [
        OfferedSurvey(
            id=survey_offer_id(account_id=account.pk, survey_id=s.pk),
            name=s.name,
            purpose=s.purpose,
            intro=s.intro,
            questions=offered_questions(s),
            reasons=reason_options() if asks_reason(s) else [],
        )
        for s in chosen
    ]


# --- Recording an answer ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class AnswerResult:
    response: SurveyResponse
    created: bool
    """False: the same answer was stored before (a duplicate), nothing was written."""


def survey_answer_record(
    *,
    survey_id: int,
    account: Account,
    contact: str,
    answers: Mapping[str, object],
    reason: str | None,
    at: dt.datetime,
    request_id: int | None = None,
) -> AnswerResult:
    """Store `account`'s answer to the survey, from `contact` ("" = the account, through a link).

    The answer fulfils the account's open feedback request on the survey (`request_id` when a link names
    one, else the oldest open one), marking it answered; otherwise a second answer from the same contact is
    a duplicate (same answers: the stored one is returned, created False) or raises AnswerConflict. The
    account's CSM is notified (kind feedback). Raises UnknownSurvey (survey gone), SurveyNotOffered (survey
    switched off), AnswerInvalid (see `answer_clean`); nothing is stored then.
    Queries: the survey and its questions, the account (locked), the request, the duplicate, two writes.
    """
    survey = Survey.objects.filter(pk=survey_id).prefetch_related("questions").first()
    if survey is None:
        raise UnknownSurvey("This survey has been deleted.")
    if not survey.active:
        raise SurveyNotOffered("This survey is closed: it is no longer asked.")
    cleaned, reason = answer_clean(
        questions=list(survey.questions.all()), asks_reason=asks_reason(survey), answers=answers, reason=reason
    )
    contact = contact.strip()[:CONTACT_MAX_CHARS]
    with transaction.atomic():
        # Serialises answers of one account, so that a retried request finds the first one.
        Account.objects.select_for_update().filter(pk=account.pk).values_list("pk", flat=True).first()
        open_requests = FeedbackRequest.objects.select_for_update().filter(
            survey=survey, account=account, answered_at__isnull=True
        )
        if request_id is not None:
            open_requests = open_requests.filter(pk=request_id)
        request = open_requests.order_by("created_at", "pk").first()
        if request is None:
            existing = (
                SurveyResponse.objects.filter(survey=survey, account=account, contact_ref=contact)
                .order_by("-submitted_at", "-pk")
                .first()
            )
            if existing is not None:
                if existing.answers == cleaned and existing.reason == reason:
                    return AnswerResult(response=existing, created=False)
                raise AnswerConflict("This contact has answered this survey already.")
        response = SurveyResponse.objects.create(
            survey=survey,
            account=account,
            request=request,
            contact_ref=contact,
            reason=reason,
            answers=cleaned,
            submitted_at=at,
        )
        if request is not None:
            FeedbackRequest.objects.filter(pk=request.pk).update(answered_at=at)
        if account.owner_id is not None:
            what = SurveyResponse.Reason(reason).label.lower() if reason else "new answers"
            notify(
                recipient=account.owner,
                kind=Notification.Kind.FEEDBACK,
                title=f"{account.name} answered “{survey.name}”: {what}",
                at=at,
                url=account.get_absolute_url(),
                account=account,
                dedupe_key=f"survey-response-{response.pk}",
            )
    return AnswerResult(response=response, created=True)
