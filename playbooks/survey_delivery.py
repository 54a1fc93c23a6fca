"""Email-link surveys delivered by their rule: each account a survey's rule flags gets the survey by email, once.

An active upcoming-needs survey with channel "email" and an enabled rule (say storage over 80%: "What will you
store next quarter?") is emailed every day (`survey_emails_send`, from Celery beat) to the accounts it asks:

- the rule fires on the account's stored indicators and engagement, the facts flagging scores
  (`playbooks.facts.stored_facts`, evaluated with `playbooks.rules.evaluate`), and the account is not churned;
- the account has not been asked this survey before (no `FeedbackRequest` on it, whatever made it) and nobody
  at the account has answered it;
- the account has a primary contact whose address has not opted out (`accounts.models.EmailOptOut`,
  compared lower-cased: an opt-out from a play email holds for surveys too);
- pitch fatigue (`playbooks.fatigue`): fewer than `max_touches_per_30_days` touches of the account in the last
  30 days, counting the survey emails of this run. A survey has no play, so no play gap applies.

What one account asked records: a feedback request on the survey (no movement, no task), and a touch of kind
email with no play, detail "Survey: <name>", which counts against fatigue from then on. The email carries the
survey's intro and its link on the public page (`playbooks.surveys.survey_link_url`, naming the request, so an
answer there fulfils it and marks it answered), with the unsubscribe footer and List-Unsubscribe headers play
emails carry (`playbooks.unsubscribe.unsubscribable_email`).
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass, field

from django.db import transaction
from django.utils import timezone

from accounts.models import Account, Contact, EmailOptOut, Task
from accounts.work_services import task_create
from playbooks import rules as scoring
from playbooks.facts import stored_facts
from playbooks.fatigue import fatigue_check
from playbooks.models import FeedbackRequest, ScoringPolicy, Survey, SurveyResponse, Touch
from playbooks.selectors import RecentTouch, past_touches, recent_touches_by_account
from playbooks.surveys import LINK_MAX_AGE, survey_link_url
from playbooks.unsubscribe import unsubscribable_email

logger = logging.getLogger(__name__)

SEND_LIMIT = 1000
"""At most this many survey emails a run; the accounts left over are asked by the next run."""
_COUNTS = {1: "One question", 2: "Two questions", 3: "Three questions"}


@dataclass
class SurveyEmailReport:
    """What one run did: the surveys it looked at, the emails sent and failed, and why accounts a rule fires on
    were not emailed."""

    surveys: int = 0
    sent: int = 0
    failed: int = 0
    asked_before: int = 0
    no_contact: int = 0
    opted_out: int = 0
    fatigued: int = 0
    deferred: int = 0
    """Over the run's limit: left for the next run."""
    failures: list[str] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class _Pick:
    survey: Survey
    account_id: int
    contact: Contact


def survey_email_text(*, survey: Survey, contact_name: str, account_name: str, url: str, signed: str) -> str:
    """The body of a survey email (before the unsubscribe footer): a greeting, the survey's intro, how many
    questions, the link and how long it works, and the CSM's name (`signed`, blank for none)."""
    first = contact_name.split()[0] if contact_name.strip() else "there"
    count = len(survey.questions.all())
    lines = [f"Hi {first},", ""]
    if survey.intro.strip():
        lines += [survey.intro.strip(), ""]
    lines += [
        f"{_COUNTS.get(count, f'{count} questions')}, answered in a minute or two:",
        url,
        "",
        f"The link answers for {account_name} and works for {LINK_MAX_AGE.days} days.",
    ]
    if signed:
        lines += ["", signed]
    return "\n".join(lines)


def survey_emails_send(*, at: dt.datetime, limit: int = SEND_LIMIT) -> SurveyEmailReport:
    """Email each active email-link survey with a rule to the accounts it asks today (see the module
    docstring), at most `limit` emails. Call it outside a transaction (the Celery task does).

    Once per survey and account, also under two workers or a retry, at most once:

    1. Select, set-based: a fixed number of queries whatever the number of surveys and accounts (the
       surveys, the stored facts, the requests and answers made, contacts, opt-outs, recent touches).
    2. Claim, in one transaction: lock the chosen accounts' rows (`SELECT ... FOR UPDATE`, in id order so two
       workers never deadlock), read again which (survey, account) already have a request and the accounts'
       recent touches, and drop what a concurrent run asked or fatigued meanwhile; then insert the requests
       and the email touches in bulk. A second worker waits on the locks and then finds the requests.
    3. Send each email after that commit. A send that fails is logged and is not retried: its request stays
       (so no later run emails the survey blindly again: the customer may have got it), its touch is removed
       (so fatigue does not count it), and the account's CSM gets a task, source feedback, due today, naming
       the error and the link to send by hand; the request points at that task. A worker that dies between
       the commit and the send leaves the request too: nobody is ever emailed a survey twice.
    """
    report = SurveyEmailReport()
    surveys = _email_surveys()
    report.surveys = len(surveys)
    if not surveys:
        return report
    picks, accounts = _select(surveys, at=at, limit=limit, report=report)
    if not picks:
        return _finish(report, at=at)
    claimed = _claim(picks, at=at, report=report)
    failed: list[tuple[_Pick, FeedbackRequest, Touch, Exception]] = []
    for pick, request, touch in claimed:
        account = accounts[pick.account_id]
        url = survey_link_url(account_id=account.pk, survey_id=pick.survey.pk, request_id=request.pk)
        owner = account.owner
        message = unsubscribable_email(
            to=pick.contact.email,
            account_id=account.pk,
            account_name=account.name,
            reply_to=owner.email if owner is not None else None,
            subject=pick.survey.name,
            body=survey_email_text(
                survey=pick.survey,
                contact_name=pick.contact.name,
                account_name=account.name,
                url=url,
                signed=(owner.get_full_name() or owner.get_username()) if owner is not None else "",
            ),
            message_id=f"survey-request-{request.pk}",
        )
        try:
            message.send()
        except Exception as error:  # the mailer's failure, whatever its kind: recorded, never retried
            logger.warning("Survey request %s: the email was not sent (%s).", request.pk, error)
            failed.append((pick, request, touch, error))
            continue
        report.sent += 1
    if failed:
        _record_failures(failed, accounts=accounts, at=at, report=report)
    return _finish(report, at=at)


def _finish(report: SurveyEmailReport, *, at: dt.datetime) -> SurveyEmailReport:
    logger.info("Survey emails at %s: %s", at.isoformat(), report)
    return report


def _email_surveys() -> list[Survey]:
    """The active upcoming-needs surveys sent by email with an enabled rule and at least one question, oldest
    first, with their questions and rule (metric and plans loaded, for `Rule.as_spec`). Three queries."""
    surveys = (
        Survey.objects.filter(
            active=True,
            channel=Survey.Channel.EMAIL,
            purpose=Survey.Purpose.NEEDS,
            rule__isnull=False,
            rule__enabled=True,
        )
        .select_related("rule__metric")
        .prefetch_related("questions", "rule__plans")
        .order_by("pk")
    )
    return [s for s in surveys if s.questions.all()]


def _select(
    surveys: list[Survey], *, at: dt.datetime, limit: int, report: SurveyEmailReport
) -> tuple[list[_Pick], dict[int, Account]]:
    """Who gets which survey this run, and those accounts with their owners. Reads only, a fixed number of
    queries: the stored facts (four), requests made, answers given, primary contacts, opt-outs, recent
    touches, the policy and the accounts."""
    stored = stored_facts(metric_ids={s.rule.metric_id for s in surveys if s.rule.metric_id})
    firing: dict[int, list[int]] = {}
    for survey in surveys:
        spec = survey.rule.as_spec()
        firing[survey.pk] = [f.account_id for f in stored.facts if scoring.evaluate(spec, f) is not None]
    account_ids = sorted({aid for ids in firing.values() for aid in ids})
    if not account_ids:
        return [], {}
    survey_ids = [s.pk for s in surveys]
    done = set(
        FeedbackRequest.objects.filter(survey_id__in=survey_ids, account_id__in=account_ids).values_list(
            "survey_id", "account_id"
        )
    ) | set(
        SurveyResponse.objects.filter(survey_id__in=survey_ids, account_id__in=account_ids).values_list(
            "survey_id", "account_id"
        )
    )
    contacts = {c.account_id: c for c in Contact.objects.filter(account_id__in=account_ids, is_primary=True)}
    opted_out = set(
        EmailOptOut.objects.filter(email__in={c.email.strip().lower() for c in contacts.values()}).values_list(
            "email", flat=True
        )
    )
    touches = recent_touches_by_account(account_ids=account_ids, now=at)
    cap = ScoringPolicy.current().max_touches_per_30_days
    picks: list[_Pick] = []
    for survey in surveys:
        for account_id in firing[survey.pk]:
            contact = contacts.get(account_id)
            if (survey.pk, account_id) in done:
                report.asked_before += 1
            elif contact is None:
                report.no_contact += 1
            elif contact.email.strip().lower() in opted_out:
                report.opted_out += 1
            elif _fatigued(touches.setdefault(account_id, []), cap=cap, at=at):
                report.fatigued += 1
            elif len(picks) >= limit:
                report.deferred += 1
            else:
                picks.append(_Pick(survey=survey, account_id=account_id, contact=contact))
                touches[account_id].append(RecentTouch(occurred_at=at, play_id=None, kind=Touch.Kind.EMAIL))
    accounts = Account.objects.filter(pk__in={p.account_id for p in picks}).select_related("owner")
    return picks, {a.pk: a for a in accounts}


def _fatigued(touches: list[RecentTouch], *, cap: int, at: dt.datetime) -> bool:
    # play_id 0 matches no touch: a survey has no play, hence no play gap.
    return fatigue_check(past_touches(touches, play_id=0), play_gap_days=0, max_per_30_days=cap, now=at) is not None


@transaction.atomic
def _claim(
    picks: list[_Pick], *, at: dt.datetime, report: SurveyEmailReport
) -> list[tuple[_Pick, FeedbackRequest, Touch]]:
    """Lock the accounts, check again what a concurrent run may have done, and record the requests and touches
    of the picks still due (see `survey_emails_send`, step 2). A fixed number of queries."""
    account_ids = sorted({p.account_id for p in picks})
    live = set(
        Account.objects.select_for_update(no_key=True)
        .filter(pk__in=account_ids)
        .exclude(status=Account.Status.CHURNED)
        .order_by("pk")
        .values_list("pk", flat=True)
    )
    taken = set(
        FeedbackRequest.objects.filter(
            survey_id__in={p.survey.pk for p in picks}, account_id__in=account_ids
        ).values_list("survey_id", "account_id")
    )
    touches = recent_touches_by_account(account_ids=account_ids, now=at)
    cap = ScoringPolicy.current().max_touches_per_30_days
    due: list[_Pick] = []
    for pick in picks:
        if pick.account_id not in live or (pick.survey.pk, pick.account_id) in taken:
            report.asked_before += 1
        elif _fatigued(touches.setdefault(pick.account_id, []), cap=cap, at=at):
            report.fatigued += 1
        else:
            due.append(pick)
            touches[pick.account_id].append(RecentTouch(occurred_at=at, play_id=None, kind=Touch.Kind.EMAIL))
    if not due:
        return []
    requests = FeedbackRequest.objects.bulk_create(
        FeedbackRequest(survey=p.survey, account_id=p.account_id, created_at=at) for p in due
    )
    touches_made = Touch.objects.bulk_create(
        Touch(
            account_id=p.account_id,
            play=None,
            kind=Touch.Kind.EMAIL,
            occurred_at=at,
            detail=f"Survey: {p.survey.name}"[:300],
        )
        for p in due
    )
    return list(zip(due, requests, touches_made, strict=True))


@transaction.atomic
def _record_failures(
    failed: list[tuple[_Pick, FeedbackRequest, Touch, Exception]],
    *,
    accounts: dict[int, Account],
    at: dt.datetime,
    report: SurveyEmailReport,
) -> None:
    """Remove the touches of the emails not sent, and give each account's CSM a task to send the link by hand
    (see `survey_emails_send`, step 3). The requests stay: they are not sent again."""
    Touch.objects.filter(pk__in=[touch.pk for _, _, touch, _ in failed]).delete()
    with_task = []
    for pick, request, _, error in failed:
        report.failed += 1
        account = accounts[pick.account_id]
        report.failures.append(f"{account.name}: {pick.survey.name} to {pick.contact.email} ({error})")
        if account.owner is None or not account.owner.is_active:
            continue
        url = survey_link_url(account_id=account.pk, survey_id=pick.survey.pk, request_id=request.pk)
        request.task = task_create(
            account=account,
            assignee=account.owner,
            title=f"Send {account.name} the survey “{pick.survey.name}”",
            detail=(
                f"The survey email to {pick.contact.email} was not sent: the mailer refused it ({error}). "
                f"It is not sent again automatically.\nSend them this link: {url}"
            ),
            due_on=timezone.localdate(at),
            at=at,
            source=Task.Source.FEEDBACK,
        )
        with_task.append(request)
    if with_task:
        FeedbackRequest.objects.bulk_update(with_task, ["task"])
