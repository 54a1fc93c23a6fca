"""Demo data for the day-to-day workspace: the people at each account, plays with their sequences and the
accounts running them, tasks, notifications, survey answers and downgrade/churn feedback.

Written by `opportunities.demo.demo_data_seed` once the accounts, MRR movements and opportunities exist, with
the same rules as the rest of the demo: every choice comes from `demo._rng` streams named by seed, purpose
and account, every moment is dated from `as_of` (the demo's "now" is 08:00 UTC that day), never from the
clock, and rows go in with bulk_create: one statement per table, per batch of rows for the contacts.

What the engines would have written is written as they write it: the step runs of an enrolment carry the
sequence engine's words (`playbooks.sequence_services`), an email sent leaves a touch, a task step leaves its
task, a feedback request its task for the CSM, and notifications use the producers' titles and dedupe keys,
so a later run of a producer adds nothing twice. Nothing is delivered: no email leaves.

Bounded: contacts go to every account (bulk), but enrolments, tasks and notifications are made for a handful
of opportunities and accounts in the demo users' books, at most NEEDS_ANSWERS_MAX answers to the needs survey
and feedback requests for the FEEDBACK_MAX latest downgrades and churns.
"""

from __future__ import annotations

import datetime as dt
import random
import re
import uuid
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from decimal import Decimal

from django.core.cache import cache
from django.db import transaction
from django.db.models import Case, Exists, OuterRef, Value, When
from django.db.models.functions import Lower
from django.urls import reverse
from django.utils import timezone

from accounts.models import Account, Contact, MrrMovement, Notification, Task, UsageSnapshot
from accounts.work_selectors import unread_cache_key
from opportunities.demo import BATCH_SIZE, AccountSpec, Catalogue, Tier, _rng
from opportunities.models import Opportunity, Outcome
from opportunities.notifications import experiments_significant_notify
from playbooks.experiment_services import Win, play_credits_record
from playbooks.models import (
    Enrollment,
    Experiment,
    FeedbackRequest,
    Play,
    SequenceStep,
    StepRun,
    Survey,
    SurveyQuestion,
    SurveyResponse,
    Touch,
)
from playbooks.sandbox import Kind, sandbox_render
from playbooks.selectors import premium_feature_uses
from playbooks.surveys import churn_feedback_survey, survey_link_url

CSMS = ("csm1", "csm2", "csm3", "csm4")
SCENARIO_CSMS = ("csm1", "csm2")
"""The books whose opportunities show a sequence in each state: running, paused, completed, stopped."""
AUTOMATIC_PER_CSM = 2
"""Open opportunities per CSM that the automatic play enrolled when flagging opened them (the latest ones)."""
NEEDS_ANSWERS_MIN, NEEDS_ANSWERS_MAX = 30, 60
FEEDBACK_DAYS = 180
"""Downgrades and churns this recent were asked why (the insights' default period is the last 12 months)."""
FEEDBACK_MAX = 80
FEEDBACK_DUE_DAYS = 2
RECENT_DAYS = 14
"""Notifications are written for what happened in the last two weeks; older ones would have been read."""

# --- The people at the accounts -------------------------------------------------------------------------

FIRST_NAMES = [
    "Alex", "Amara", "Ana", "Ben", "Carmen", "Chen", "Chloe", "Daniel", "Diego", "Elena", "Emeka", "Fatima",
    "Grace", "Hana", "Hugo", "Ines", "Isaac", "Jade", "Jonas", "Kai", "Lena", "Leo", "Lucia", "Malik", "Marta",
    "Mei", "Nadia", "Noah", "Olga", "Omar", "Pat", "Paula", "Rafael", "Ravi", "Rosa", "Sara", "Sofia", "Tariq",
    "Theo", "Yara", "Zoe",
]  # fmt: skip
LAST_NAMES = [
    "Adeyemi", "Andersen", "Baker", "Bianchi", "Brooks", "Castillo", "Chen", "Costa", "Dubois", "Eriksen",
    "Fischer", "Garcia", "Hansen", "Haddad", "Ito", "Jensen", "Kim", "Kowalski", "Larsen", "Lee", "Martin",
    "Moreau", "Nakamura", "Novak", "Okoye", "Olsen", "Patel", "Perez", "Quinn", "Rossi", "Santos", "Schmidt",
    "Silva", "Singh", "Sato", "Walsh", "Weber", "Yilmaz", "Zhang",
]  # fmt: skip
PRIMARY_TITLES = [
    "Head of Operations", "Operations Manager", "IT Manager", "Founder", "Chief Operating Officer",
    "Director of Customer Support", "Office Manager", "Head of Data", "VP Engineering", "Finance Director",
]  # fmt: skip
SECOND_TITLES = ["Team Lead", "Systems Administrator", "Analyst", "Project Manager", "Procurement Lead"]
SECOND_CONTACT_SHARE = 0.35
LEGAL_WORDS = {"inc", "ltd", "co"}


def company_domain(name: str) -> str:
    """A made-up mail domain for a company: its name's words, lower-cased and run together, without the legal
    form, under the reserved `.example` top-level domain ("Cedar Systems Inc." -> "cedarsystems.example")."""
    words = [w.lower() for w in re.findall(r"[A-Za-z0-9]+", name)]
    kept = [w for w in words if w not in LEGAL_WORDS] or words or ["customer"]
    return "".join(kept) + ".example"


def _person(rng: random.Random) -> tuple[str, str]:
    return rng.choice(FIRST_NAMES), rng.choice(LAST_NAMES)


def demo_contacts_build(spec: AccountSpec, *, seed: int) -> list[tuple[str, str, str, bool]]:
    """The account's people: (name, email, title, is primary), the primary first; a second one for some."""
    rng = _rng(seed, "contact", spec.index)
    domain = company_domain(spec.name)
    first, last = _person(rng)
    people = [(f"{first} {last}", f"{first}.{last}@{domain}".lower(), rng.choice(PRIMARY_TITLES), True)]
    if rng.random() < SECOND_CONTACT_SHARE:
        other = _person(rng)
        while other == (first, last):
            other = _person(rng)
        people.append((" ".join(other), f"{other[0]}.{other[1]}@{domain}".lower(), rng.choice(SECOND_TITLES), False))
    return people


# --- Plays and their sequences ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PlaySpec:
    key: str
    name: str
    description: str
    run_mode: str
    rules: tuple[str, ...]
    target: str
    """"next" = the plan above the first one, "top" = the highest plan."""
    metric: str | None
    fields: dict
    steps: tuple[tuple, ...]
    """(position, delay days, kind, subject, body, task due days)."""


DEMO_PLAYS = [
    PlaySpec(
        key="storage",
        name="Storage headroom",
        description="Accounts filling their storage: show what the next plan's room is worth before they hit the wall.",
        run_mode=Play.RunMode.AUTOMATIC,
        rules=("Storage at 80% or more", "Storage limit within 30 days"),
        target="next",
        metric="storage_gb",
        fields={
            "talking_points": (
                "Storage in accounts like this one grows about 10% a month once a team relies on it.\n"
                "The next plan has ten times the room, so nobody deletes files to make space.\n"
                "Offer to move their archive over the weekend if they worry about downtime."
            ),
            "case_study_url": "https://example.com/customers/storage-growth",
            "email_subject": "{{ account_name }}: room to grow on {{ target_plan }}",
            "email_body": (
                "Hi,\n\n"
                "{{ account_name }} {% if utilization %}is using {{ utilization }} of{% else %}is filling{% endif %} "
                "the storage in its {{ current_plan }} plan"
                "{% if projected_limit_date %}, and at the current pace it will be full around "
                "{{ projected_limit_date }}{% endif %}.\n\n"
                "{{ target_plan }} gives you ten times the room for {{ target_price }} a month "
                "({{ price_delta }} more than today), so nobody has to delete files to make space.\n\n"
                "If it helps, I can walk your team through the switch in 15 minutes: just reply to this email.\n\n"
                "{{ csm_name }}\n{{ csm_email }}"
            ),
            "prompt_kind": Play.PromptKind.BANNER,
            "prompt_text": (
                "{% if utilization %}You have used {{ utilization }} of your storage.{% else %}Your storage is "
                "filling up.{% endif %} {{ target_plan }} gives you ten times the room."
            ),
            "prompt_cta_label": "Compare plans",
            "prompt_cta_url": "https://example.com/pricing",
            "min_days_between_touches": 3,
        },
        steps=(
            (1, 0, SequenceStep.Kind.EMAIL, "", "", 2),
            (2, 3, SequenceStep.Kind.PROMPT, "", "", 2),
            (
                3,
                7,
                SequenceStep.Kind.TASK,
                "Call {{ account_name }} about storage on {{ target_plan }}",
                "They had the email on day 0 and the banner on day 3. Ask whether the growth will last, and "
                "offer a {{ target_plan }} trial if they hesitate.",
                2,
            ),
        ),
    ),
    PlaySpec(
        key="seats",
        name="Seats for the whole team",
        description="Teams out of seats: the next plan lets everyone in instead of sharing logins.",
        run_mode=Play.RunMode.MANUAL,
        rules=("Seats at 90% or more", "Seats limit within 30 days"),
        target="next",
        metric="seats",
        fields={
            "talking_points": (
                "Shared logins break the audit trail: a reason to upgrade their security team will back.\n"
                "Ask who is waiting for a seat today, and who joins next quarter."
            ),
            "email_subject": "More seats for {{ account_name }}",
            "email_body": (
                "Hi,\n\n"
                "Your team {% if utilization %}uses {{ utilization }} of{% else %}is running out of{% endif %} the "
                "seats in {{ current_plan }}. On {{ target_plan }} "
                "({{ target_price }} a month) everyone gets their own login, with room for the people who join "
                "next quarter.\n\n"
                "Shall I set up a call to size it?\n\n{{ csm_name }}"
            ),
            "prompt_kind": Play.PromptKind.MODAL,
            "prompt_text": (
                "{% if utilization %}Your team is using {{ utilization }} of its seats.{% else %}Your team is "
                "running out of seats.{% endif %} Add everyone with {{ target_plan }}."
            ),
            "prompt_cta_label": "Add seats",
            "prompt_cta_url": "https://example.com/pricing#seats",
            "min_days_between_touches": 3,
        },
        steps=(
            (1, 0, SequenceStep.Kind.EMAIL, "{{ csm_name }} here: seats for the rest of your team", "", 2),
            (2, 3, SequenceStep.Kind.PROMPT, "", "", 2),
            (3, 7, SequenceStep.Kind.TASK, "Size the seats {{ account_name }} needs next quarter", "", 3),
        ),
    ),
    PlaySpec(
        key="enterprise",
        name="Unlock Enterprise features",
        description="Accounts reaching for features their plan locks: a trial of the top plan, then a call.",
        run_mode=Play.RunMode.MANUAL,
        rules=("5+ locked-feature hits", "Premium features used in a trial"),
        target="top",
        metric=None,
        fields={
            "talking_points": (
                "Start from what they tried to open: SSO and the audit log usually mean a security review.\n"
                "The 14-day trial keeps their data; nothing to migrate back."
            ),
            "case_study_url": "https://example.com/customers/enterprise-rollout",
            "email_subject": "{{ account_name }}: try {{ target_plan }} free for {{ trial_days }} days",
            "email_body": (
                "Hi,\n\n"
                "Your team keeps reaching for features that come with {{ target_plan }}."
                "{% if premium_features %} In the last weeks:\n"
                "{% for feature in premium_features %}- {{ feature }}\n{% endfor %}{% endif %}\n"
                "Try them free for {{ trial_days }} days: your data stays where it is, and you can go back to "
                "{{ current_plan }} at any time.\n\n{{ csm_name }}\n{{ csm_email }}"
            ),
            "prompt_kind": Play.PromptKind.TOOLTIP,
            "prompt_text": "This is a {{ target_plan }} feature. Try it free for {{ trial_days }} days.",
            "prompt_cta_label": "Start the trial",
            "prompt_cta_url": "https://example.com/trial",
            "trial_days": 14,
            "min_days_between_touches": 3,
            "downgrade_save_subject": "Before {{ account_name }} changes plan",
            "downgrade_save_body": (
                "Hi,\n\nBefore you move off {{ current_plan }}: your team used "
                "{{ premium_features|join:', '|default:'several premium features' }} recently. Reply and I will "
                "find a plan that keeps what you rely on.\n\n{{ csm_name }}"
            ),
        },
        steps=(
            (1, 0, SequenceStep.Kind.EMAIL, "", "", 2),
            (2, 3, SequenceStep.Kind.PROMPT, "", "", 2),
            (
                3,
                7,
                SequenceStep.Kind.TASK,
                "Book the {{ target_plan }} trial review with {{ account_name }}",
                "Walk them through what they used in the trial and what the upgrade adds to the monthly price.",
                2,
            ),
        ),
    ),
]


# --- Surveys ------------------------------------------------------------------------------------------------

NEEDS_SURVEY = "What will you store next quarter?"
NEEDS_RULE = "Storage at 80% or more"
NEEDS_INTRO = "Two quick questions so we can plan your storage with you."
NEEDS_CHOICES = ["About the same", "Up to twice as much", "Two to five times as much", "More than five times as much"]
NEEDS_QUESTIONS = [
    ("How much more data do you expect to store next quarter?", SurveyQuestion.Kind.CHOICE, NEEDS_CHOICES),
    ("What will the new data be?", SurveyQuestion.Kind.TEXT, []),
]
NEEDS_TEXTS = {
    "Software": [
        "Build artifacts and logs, now that we keep 90 days of them.",
        "Backups of the customer databases.",
        "Screen recordings from the support team.",
        "Test data for the new mobile app.",
    ],
    "Fintech": [
        "Seven years of statements for the auditors.",
        "Scanned KYC documents for the new market.",
        "Call recordings compliance asks us to keep.",
        "Loan files from the branch we acquired.",
    ],
    "Healthcare": [
        "Imaging archives from the two new clinics.",
        "Patient intake forms we are digitising.",
        "Lab reports from the new partner lab.",
        "Training videos for the nursing staff.",
    ],
    "Retail": [
        "Product photos for the spring catalogue.",
        "Point-of-sale exports from the new stores.",
        "Supplier contracts and invoices, all scanned.",
        "Video for the online shop's product pages.",
    ],
    "Education": [
        "Lecture recordings for the online courses.",
        "Student portfolios for the design programme.",
        "Scanned exam papers for the archive.",
        "Course material for the summer school.",
    ],
    "Media": [
        "4K footage from the autumn campaign.",
        "The podcast back catalogue we are moving in.",
        "Raw photo shoots; the editors keep everything.",
        "Subtitled versions of the documentary series.",
    ],
    "Logistics": [
        "Proof-of-delivery photos from the drivers' app.",
        "Scanned customs paperwork.",
        "Telematics exports from the new trucks.",
        "Warehouse camera clips for damage claims.",
    ],
    "Manufacturing": [
        "CAD files for the new product line.",
        "Sensor data from the second factory.",
        "Quality-control photos from the assembly line.",
        "Supplier certificates for the audit.",
    ],
}
CHURN_REASONS = {
    # movement kind: (reason, weight)
    MrrMovement.Kind.CHURN: [
        (SurveyResponse.Reason.PRICE, 5),
        (SurveyResponse.Reason.COMPETITOR, 4),
        (SurveyResponse.Reason.NOT_USING, 4),
        (SurveyResponse.Reason.BUSINESS_CLOSED, 2),
        (SurveyResponse.Reason.BUDGET_CUT, 3),
        (SurveyResponse.Reason.MISSING_FEATURE, 2),
        (SurveyResponse.Reason.SUPPORT, 1),
        (SurveyResponse.Reason.OTHER, 1),
    ],
    MrrMovement.Kind.CONTRACTION: [
        (SurveyResponse.Reason.PRICE, 4),
        (SurveyResponse.Reason.BUDGET_CUT, 4),
        (SurveyResponse.Reason.NOT_USING, 3),
        (SurveyResponse.Reason.TECHNICAL, 1),
        (SurveyResponse.Reason.OTHER, 1),
    ],
}
CHURN_TEXTS = {
    SurveyResponse.Reason.PRICE: [
        "The jump to the next plan was more than a team our size could justify.",
        "We only needed a few extra seats; paying for a whole tier did not add up.",
    ],
    SurveyResponse.Reason.COMPETITOR: [
        "Our CRM now bundles something similar at no extra cost.",
        "A competitor offered the first year free.",
    ],
    SurveyResponse.Reason.NOT_USING: [
        "Only two of us logged in after the pilot.",
        "The team went back to spreadsheets over the summer.",
    ],
    SurveyResponse.Reason.BUSINESS_CLOSED: [
        "We merged with a company that uses another tool.",
        "The shop closed in the autumn.",
    ],
    SurveyResponse.Reason.BUDGET_CUT: [
        "Our software budget was cut by a third this year.",
        "Every subscription above the basics had to go until next fiscal year.",
    ],
    SurveyResponse.Reason.MISSING_FEATURE: [
        "We needed an on-premise option.",
        "No native integration with our ERP.",
    ],
    SurveyResponse.Reason.TECHNICAL: ["Exports kept timing out on our larger projects."],
    SurveyResponse.Reason.SUPPORT: ["Tickets took days to get an answer."],
    SurveyResponse.Reason.OTHER: ["Consolidating tools after a reorganisation."],
}
CHURN_ANSWERED_SHARE = 0.75


# --- Tasks by hand ------------------------------------------------------------------------------------------

OPPORTUNITY_TASKS = [
    ("Send the {target} proposal to {contact}", "Pricing for the annual option too; they asked on the last call."),
    ("Confirm the budget with the {decision_maker}", "{contact} said the budget owner signs off this month."),
    ("Book a {target} demo for {contact}'s team", "Focus on what they hit the limit with; 30 minutes is enough."),
    ("Prepare the ROI note for {account}", "Use the hours saved they quoted; keep it to one page."),
    ("Answer {contact}'s security questionnaire", "Ask the security team for the SOC 2 report first."),
]
ACCOUNT_TASKS = [
    ("Quarterly check-in with {contact}", "Review usage and what the team plans next quarter."),
    ("Review usage with {contact} before the renewal", "Bring the usage chart from the account page."),
    ("Share the storage clean-up guide with {account}", "They asked how to archive old projects."),
    ("Introduce {contact} to the new reporting dashboards", "Ten minutes at the end of the next call."),
    ("Confirm the invoice contact for {account}", "Finance bounced the last invoice."),
]
# Per CSM: how many tasks by hand fall in each group, and on which days relative to as_of.
MANUAL_TASK_DAYS = {
    "overdue": (2, (-6, -1)),
    "today": (2, (0, 0)),
    "upcoming": (3, (1, 12)),
    "done": (3, (-6, -1)),
}


# --- Building blocks --------------------------------------------------------------------------------------


@dataclass(slots=True)
class OppRow:
    pk: int
    account_id: int
    owner_id: int | None
    outcome: str
    stage: str
    source: str
    score: int
    reasons: list
    identified_at: dt.datetime
    closed_at: dt.datetime | None
    snoozed_until: dt.date | None
    target_plan_id: int | None
    qualification: dict
    actual_mrr_delta: Decimal | None
    play_id: int | None = None


@dataclass(slots=True)
class Workspace:
    """What the steps share: the moment, the accounts and their people, the plays, the opportunities."""

    seed: int
    as_of: dt.date
    now: dt.datetime
    users: dict
    tiers: list[Tier]
    specs: dict[int, AccountSpec]
    """By account id."""
    metric_labels: dict[str, str]
    metric_ids: dict[str, int]
    rule_ids: dict[str, int]
    contacts: dict[int, list[Contact]] = field(default_factory=dict)
    plays: dict[str, Play] = field(default_factory=dict)
    steps: dict[int, list[SequenceStep]] = field(default_factory=dict)
    opps: list[OppRow] = field(default_factory=list)
    tasks: list[Task] = field(default_factory=list)
    step_runs: list[StepRun] = field(default_factory=list)
    request_tasks: list[tuple[FeedbackRequest, Task]] = field(default_factory=list)
    responses: list[SurveyResponse] = field(default_factory=list)
    collaborations: list[tuple] = field(default_factory=list)
    """(collaborator id, opportunity id, user id, added by id, added at), in the order they were added."""
    plays_by_rule: dict[int, list[int]] = field(default_factory=lambda: defaultdict(list))
    """Rule id -> the active plays it triggers."""
    experimenting: bool = False
    """Some play runs an A/B test."""
    credited: int = 0
    """Wins credited to a play."""
    notifications: list[Notification] = field(default_factory=list)

    def user(self, user_id: int | None):
        return next((u for u in self.users.values() if u.pk == user_id), None)

    def tier_of_plan(self, plan_id: int | None) -> Tier | None:
        return next((t for t in self.tiers if t.id == plan_id), None)


def _day_at(day: dt.date, hour: int, minute: int = 0) -> dt.datetime:
    return dt.datetime.combine(day, dt.time(hour, minute), tzinfo=dt.UTC)


def _name(user) -> str:
    return (user.get_full_name() or user.get_username()) if user is not None else "nobody"


def _clip(text: str, limit: int = 300) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _account_url(account_id: int) -> str:
    return reverse("accounts:detail", args=[account_id])


def _opportunity_url(account_id: int, opportunity_id: int) -> str:
    return f"{_account_url(account_id)}#opportunity-{opportunity_id}"


def demo_workspace_seed(
    *,
    seed: int,
    as_of: dt.date,
    users: dict,
    catalogue: Catalogue,
    specs: Iterable[AccountSpec],
    ids: dict[str, int],
    log: Callable[[str], None],
) -> dict[str, int]:
    """Write contacts, plays with sequences and enrolments, tasks, notifications, survey answers and feedback
    for the demo whose accounts (`specs`, their ids by external id in `ids`) and opportunities exist; the
    rows written, by kind."""
    ws = Workspace(
        seed=seed,
        as_of=as_of,
        now=_day_at(as_of, 8),
        users=users,
        tiers=catalogue.tiers,
        specs={ids[s.external_id]: s for s in specs},
        metric_labels={m.key: m.label for m in catalogue.metrics},
        metric_ids={m.key: m.id for m in catalogue.metrics},
        rule_ids=catalogue.rule_ids,
    )
    primary, second = _contacts_create(ws)
    log(f"contacts: {primary + second} ({second} accounts with a second contact)")

    _plays_upsert(ws)
    _opportunities_load(ws)
    chosen = _opportunity_plays_set(ws)
    enrollments, runs, emails = _enrollments_create(ws)
    log(
        f"plays: {len(ws.plays)} with {sum(len(s) for s in ws.steps.values())} sequence steps, chosen for "
        f"{chosen} opportunities; enrolments: {_counts(enrollments)}; step runs: {_counts(runs)}; "
        f"emails sent: {emails}; wins credited to a play: {ws.credited}"
    )

    needs = _needs_survey_seed(ws)
    asked, answered = _feedback_seed(ws)
    SurveyResponse.objects.bulk_create(ws.responses, batch_size=BATCH_SIZE)
    log(
        f"survey answers: {len(ws.responses)} ({needs} to “{NEEDS_SURVEY}”); "
        f"feedback requests: {asked} ({answered} answered)"
    )

    _manual_tasks_build(ws)
    Task.objects.bulk_create(ws.tasks, batch_size=BATCH_SIZE)
    for run in ws.step_runs:
        run.task_id = run.task.pk if run.task else None
    StepRun.objects.bulk_create(ws.step_runs, batch_size=BATCH_SIZE)
    for request, task in ws.request_tasks:
        request.task = task
    FeedbackRequest.objects.bulk_update([request for request, _ in ws.request_tasks], ["task"], batch_size=BATCH_SIZE)
    log(f"tasks: {len(ws.tasks)} ({_counts(Counter(t.source for t in ws.tasks))}; open {_open_tasks(ws.tasks)})")

    _notifications_build(ws)
    Notification.objects.bulk_create(ws.notifications, batch_size=BATCH_SIZE)
    # An admin hears of an A/B test that found its winner, as the daily job tells them (none on a fresh install).
    significant = experiments_significant_notify(at=ws.now) if ws.experimenting else 0
    unread = sum(1 for n in ws.notifications if n.read_at is None)
    log(f"notifications: {len(ws.notifications) + significant} ({unread + significant} unread)")
    # Bells counted before the seed must count again (bulk_create bypasses accounts.work_services).
    keys = [unread_cache_key(u.pk) for u in users.values()]
    transaction.on_commit(lambda: cache.delete_many(keys))
    return {
        "contacts": primary + second,
        "plays": len(ws.plays),
        "enrolments": sum(enrollments.values()),
        "tasks": len(ws.tasks),
        "notifications": len(ws.notifications) + significant,
        "survey answers": len(ws.responses),
        "feedback requests": asked,
    }


def _counts(counter: Counter) -> str:
    return ", ".join(f"{key} {value}" for key, value in sorted(counter.items())) or "none"


def _open_tasks(tasks: list[Task]) -> int:
    return sum(1 for t in tasks if t.status == Task.Status.OPEN)


# --- Contacts -----------------------------------------------------------------------------------------------


def _contacts_create(ws: Workspace) -> tuple[int, int]:
    rows = [
        Contact(account_id=account_id, name=name, email=email, title=title, is_primary=is_primary)
        for account_id, spec in sorted(ws.specs.items())
        for name, email, title, is_primary in demo_contacts_build(spec, seed=ws.seed)
    ]
    Contact.objects.bulk_create(rows, batch_size=BATCH_SIZE)
    for contact in rows:
        ws.contacts.setdefault(contact.account_id, []).append(contact)
    second = sum(1 for c in rows if not c.is_primary)
    return len(rows) - second, second


def _primary(ws: Workspace, account_id: int) -> Contact | None:
    return next(iter(ws.contacts.get(account_id, [])), None)


def _first_name(ws: Workspace, account_id: int) -> str:
    contact = _primary(ws, account_id)
    return contact.name.split()[0] if contact is not None and contact.name else "the team"


# --- Plays ----------------------------------------------------------------------------------------------------


def _plays_upsert(ws: Workspace) -> None:
    """The demo plays, created or (after a reset, when they survived it) brought back to the demo's content,
    with their rules and a fresh sequence. No enrolment can hang off their steps: accounts were empty.

    One read of every play with its rules (a LEFT JOIN) also gives the other active plays' rules, for the
    choice of each opportunity's play, and whether some play runs an A/B test."""
    names = {spec.name.lower() for spec in DEMO_PLAYS}
    running = Experiment.objects.filter(play=OuterRef("pk"), status=Experiment.Status.RUNNING)
    existing: dict[str, int] = {}
    for pk, lname, active, experimenting, rule_id in Play.objects.annotate(
        lname=Lower("name"), experimenting=Exists(running)
    ).values_list("pk", "lname", "active", "experimenting", "rules__id"):
        ws.experimenting |= experimenting
        if lname in names:
            existing[lname] = pk
        elif active and rule_id is not None:
            ws.plays_by_rule[rule_id].append(pk)
    targets = {"next": ws.tiers[min(1, len(ws.tiers) - 1)], "top": ws.tiers[-1]}
    fresh = []
    for spec in DEMO_PLAYS:
        values = {
            "name": spec.name,
            "description": spec.description,
            "run_mode": spec.run_mode,
            "target_plan_id": targets[spec.target].id,
            "active": True,
            **spec.fields,
        }
        play = Play(pk=existing.get(spec.name.lower()), **values)
        if play.pk is None:
            fresh.append(play)
        else:
            Play.objects.filter(pk=play.pk).update(**values, updated_at=timezone.now())
        ws.plays[spec.key] = play
    Play.objects.bulk_create(fresh)
    for spec in DEMO_PLAYS:
        for rule in spec.rules:
            if rule in ws.rule_ids:
                ws.plays_by_rule[ws.rule_ids[rule]].append(ws.plays[spec.key].pk)
    kept = list(existing.values())
    Through = Play.rules.through
    if kept:
        Through.objects.filter(play_id__in=kept).delete()
        SequenceStep.objects.filter(play_id__in=kept).delete()
    Through.objects.bulk_create(
        Through(play_id=ws.plays[spec.key].pk, rule_id=ws.rule_ids[rule])
        for spec in DEMO_PLAYS
        for rule in spec.rules
        if rule in ws.rule_ids
    )
    steps = [
        SequenceStep(
            play=ws.plays[spec.key],
            position=position,
            delay_days=delay,
            kind=kind,
            subject=subject,
            body=body,
            task_due_days=due_days,
        )
        for spec in DEMO_PLAYS
        for position, delay, kind, subject, body, due_days in spec.steps
    ]
    SequenceStep.objects.bulk_create(steps)
    for step in steps:
        ws.steps.setdefault(step.play_id, []).append(step)


def _opportunities_load(ws: Workspace) -> None:
    """The opportunities, and the colleagues brought onto them, in one query: an opportunity comes once per
    collaborator (a LEFT JOIN)."""
    rows = Opportunity.objects.order_by("pk", "collaborators__added_at", "collaborators__pk").values_list(
        "pk",
        "account_id",
        "owner_id",
        "outcome",
        "stage",
        "source",
        "score",
        "reasons",
        "identified_at",
        "closed_at",
        "snoozed_until",
        "target_plan_id",
        "qualification",
        "actual_mrr_delta",
        "collaborators__pk",
        "collaborators__user_id",
        "collaborators__added_by_id",
        "collaborators__added_at",
    )
    for *opportunity, collaborator_id, user_id, added_by_id, added_at in rows:
        if not ws.opps or ws.opps[-1].pk != opportunity[0]:
            ws.opps.append(OppRow(*opportunity))
        if collaborator_id is not None:
            ws.collaborations.append((collaborator_id, opportunity[0], user_id, added_by_id, added_at))
    ws.collaborations.sort(key=lambda c: (c[4], c[0]))


def _opportunity_plays_set(ws: Workspace) -> int:
    """Each opportunity flagged by rules gets the play flagging would have chosen when it opened it: the active
    play whose rules fired for it with the most points (ties: the oldest play). One UPDATE."""
    chosen: dict[int, list[int]] = defaultdict(list)
    for opp in ws.opps:
        if opp.source != Opportunity.Source.RULES:
            continue
        points: Counter = Counter()
        for reason in opp.reasons:
            for play_id in ws.plays_by_rule.get(reason.get("rule_id"), ()):
                points[play_id] += reason["points"]
        if points:
            opp.play_id = min(points, key=lambda play_id: (-points[play_id], play_id))
            chosen[opp.play_id].append(opp.pk)
    if chosen:
        Opportunity.objects.filter(pk__in=[pk for pks in chosen.values() for pk in pks]).update(
            play=Case(*(When(pk__in=pks, then=Value(play_id)) for play_id, pks in chosen.items()))
        )
    return sum(len(pks) for pks in chosen.values())


# --- Enrolments -----------------------------------------------------------------------------------------------


@dataclass(slots=True)
class EnrollmentPlan:
    """One enrolment as the engine would have left it by `now`."""

    opp: OppRow
    play: Play
    started_at: dt.datetime
    started_by: object = None
    opportunity_id: int | None = None
    paused_at: dt.datetime | None = None
    stopped_at: dt.datetime | None = None
    stop_reason: str = ""
    current_tier: Tier | None = None
    row: Enrollment | None = None
    runs: list[StepRun] = field(default_factory=list)


def _enrollment_plans(ws: Workspace) -> list[EnrollmentPlan]:
    """Automatic enrolments of the latest open opportunities the automatic play was chosen for, in every CSM's
    book (started by flagging when it opened them: their state follows from the time since), then, in csm1's
    and csm2's books, one sequence of each state: started by the CSM three days ago and running (an email sent,
    the prompt due today), paused, completed, and stopped because the account upgraded."""
    automatic = ws.plays["storage"]
    plans: list[EnrollmentPlan] = []
    taken: set[int] = set()
    """Accounts given a sequence already: one each, so that every account page tells one story."""

    def add(plan: EnrollmentPlan) -> None:
        taken.add(plan.opp.account_id)
        plans.append(plan)

    by_owner: dict[int, list[OppRow]] = defaultdict(list)
    for opp in sorted(ws.opps, key=lambda o: (-o.identified_at.timestamp(), o.pk)):
        by_owner[opp.owner_id].append(opp)
    for username in CSMS:
        owned = by_owner.get(ws.users[username].pk, [])
        flagged = [
            o
            for o in owned
            if o.outcome == Outcome.OPEN and o.source == Opportunity.Source.RULES and o.play_id == automatic.pk
        ]
        for opp in flagged[:AUTOMATIC_PER_CSM]:
            add(EnrollmentPlan(opp=opp, play=automatic, started_at=opp.identified_at, opportunity_id=opp.pk))

    def free(username: str, outcome: str = Outcome.OPEN) -> Iterable[OppRow]:
        for opp in by_owner.get(ws.users[username].pk, []):
            if opp.outcome == outcome and opp.account_id not in taken:
                yield opp

    rng = _rng(ws.seed, "enrollments")
    scenarios = [
        # csm, days ago, state
        ("csm1", 3, "running"),
        ("csm2", 5, "paused"),
        ("csm2", 13, "completed"),
    ]
    for username, days_ago, state in scenarios:
        opp = next(iter(free(username)), None) or next(iter(free(SCENARIO_CSMS[0])), None)
        if opp is None:
            continue
        owner = ws.user(opp.owner_id)
        started = _day_at(ws.as_of - dt.timedelta(days=days_ago), rng.randint(9, 15), rng.randint(0, 59))
        plan = EnrollmentPlan(opp=opp, play=_fitting_play(ws, opp), started_at=started, started_by=owner)
        if state == "paused":
            plan.paused_at = _day_at(ws.as_of - dt.timedelta(days=1), rng.randint(9, 16), rng.randint(0, 59))
        add(plan)

    # The latest upgrade in csm1's or csm2's books, the sequence its CSM had started a few days before.
    won = sorted(
        (o for name in SCENARIO_CSMS for o in free(name, Outcome.WON)),
        key=lambda o: (-o.closed_at.timestamp(), o.pk),
    )
    fitting = [o for o in won if _fitting_play(ws, o, fallback=None) is not None]
    if won:
        opp = (fitting or won)[0]
        spec = ws.specs[opp.account_id]
        before = spec.moves[-1].tier_before if spec.moves else None
        add(
            EnrollmentPlan(
                opp=opp,
                play=_fitting_play(ws, opp),
                started_at=max(opp.identified_at, opp.closed_at - dt.timedelta(days=5)),
                started_by=ws.user(opp.owner_id),
                stopped_at=opp.closed_at,
                stop_reason=Enrollment.StopReason.UPGRADED,
                current_tier=ws.tiers[before] if before is not None else None,
            )
        )
    return plans


def _fitting_play(ws: Workspace, opp: OppRow, *, fallback: str | None = "enterprise") -> Play | None:
    """The demo play a CSM would start by hand on the opportunity: one whose rules fired for it, manual plays
    first, then by points; else `fallback`'s (None: none)."""
    points = {spec.key: sum(r["points"] for r in opp.reasons if r["rule"] in spec.rules) for spec in DEMO_PLAYS}
    fitting = sorted(
        (spec for spec in DEMO_PLAYS if points[spec.key]),
        key=lambda spec: (spec.run_mode != Play.RunMode.MANUAL, -points[spec.key]),
    )
    if fitting:
        return ws.plays[fitting[0].key]
    return ws.plays[fallback] if fallback else None


def _enrollments_create(ws: Workspace) -> tuple[Counter, Counter, int]:
    """The plans' enrolments and the touches of the emails sent (and of the prompts the product showed); their
    step runs, with the engine's words, and the tasks of the task steps wait in `ws` for the tasks' insert."""
    plans = _enrollment_plans(ws)
    rng = _rng(ws.seed, "step-runs")
    touches: list[Touch] = []
    step_tasks: list[Task] = []
    for plan in plans:
        steps = ws.steps[plan.play.pk]
        values = _merge_values(ws, plan)
        executed: list[dt.datetime] = []
        # The minute's delivery run picks a step up seconds after it is due; the same lag for every step keeps
        # the steps exactly their days apart, as pitch fatigue (3 days between touches) lets them go.
        lag = dt.timedelta(seconds=rng.randint(5, 55))
        for step in steps:
            due = plan.started_at + dt.timedelta(days=step.delay_days)
            run = StepRun(step=step, account_id=plan.opp.account_id, due_at=due)
            plan.runs.append(run)
            if plan.stopped_at is not None and due > plan.stopped_at:
                reason = Enrollment.StopReason(plan.stop_reason).label
                run.status, run.executed_at = StepRun.Status.CANCELLED, plan.stopped_at
                run.detail = f"Cancelled: {reason[:1].lower()}{reason[1:]}."
                continue
            if (plan.paused_at is not None and due > plan.paused_at) or due > ws.now:
                continue  # pending: not due yet, or held by the pause
            at = due + lag
            run.status, run.claimed_at, run.executed_at, run.attempts = StepRun.Status.SENT, at, at, 1
            run.claim_token = uuid.UUID(int=rng.getrandbits(128), version=4)
            executed.append(at)
            texts = _step_texts(plan.play, step)
            if step.kind == SequenceStep.Kind.EMAIL:
                contact = _primary(ws, plan.opp.account_id)
                subject = sandbox_render(texts[0], values, kind=Kind.SUBJECT)
                touch = Touch(
                    account_id=plan.opp.account_id,
                    play=plan.play,
                    kind=Touch.Kind.EMAIL,
                    occurred_at=at,
                    detail=subject,
                )
                touches.append(touch)
                run.touch, run.contact = touch, contact
                run.detail = _clip(f"Sent to {contact.email}: {subject}")
            elif step.kind == SequenceStep.Kind.PROMPT:
                run.detail = (
                    f"{plan.play.get_prompt_kind_display()} prompt offered in the product until the sequence ends."
                )
                seen = at + dt.timedelta(hours=rng.randint(1, 20))
                if seen <= (plan.paused_at or plan.stopped_at or ws.now):
                    touches.append(
                        Touch(
                            account_id=plan.opp.account_id,
                            play=plan.play,
                            kind=Touch.Kind.PROMPT_IMPRESSION,
                            occurred_at=seen,
                            detail=sandbox_render(texts[1], values, kind=Kind.TEXT)[:300],
                        )
                    )
            else:
                task = _step_task(ws, plan, step, texts, values, at=at, rng=rng)
                run.task = task
                step_tasks.append(task)
                run.detail = _clip(
                    f"Task for {_name(task.assignee)}, due {task.due_on:%b} {task.due_on.day}: {task.title}"
                )
        status = Enrollment.Status.ACTIVE
        ended_at = None
        if plan.stopped_at is not None:
            status, ended_at = Enrollment.Status.STOPPED, plan.stopped_at
        elif plan.paused_at is not None:
            status = Enrollment.Status.PAUSED
        elif all(run.status == StepRun.Status.SENT for run in plan.runs):
            status, ended_at = Enrollment.Status.COMPLETED, max(executed)
        plan.row = Enrollment(
            play=plan.play,
            account_id=plan.opp.account_id,
            opportunity_id=plan.opportunity_id,
            status=status,
            stop_reason=plan.stop_reason,
            started_at=plan.started_at,
            started_by=plan.started_by,
            paused_at=plan.paused_at,
            ended_at=ended_at,
        )
    Enrollment.objects.bulk_create([plan.row for plan in plans])
    Touch.objects.bulk_create(touches)
    # Each win goes to the play that touched the account first within the attribution window before it, as
    # closing a won opportunity credits it: the upgrade that stopped a sequence above is the play's.
    ws.credited = len(
        play_credits_record(
            wins=[
                Win(opportunity_id=o.pk, account_id=o.account_id, won_at=o.closed_at, mrr_delta=o.actual_mrr_delta)
                for o in ws.opps
                if o.outcome == Outcome.WON and o.actual_mrr_delta is not None
            ]
        )
    )
    ws.tasks.extend(step_tasks)
    for plan in plans:
        for run in plan.runs:
            run.enrollment = plan.row
            run.touch_id = run.touch.pk if run.touch else None
            ws.step_runs.append(run)
    return (
        Counter(plan.row.status for plan in plans),
        Counter(run.status for run in ws.step_runs),
        sum(1 for t in touches if t.kind == Touch.Kind.EMAIL),
    )


def _step_texts(play: Play, step: SequenceStep) -> tuple[str, str]:
    """The step's subject and body over the play's, as `playbooks.sequences.step_content` picks them."""
    if step.kind == SequenceStep.Kind.EMAIL:
        return step.subject or play.email_subject, step.body or play.email_body
    if step.kind == SequenceStep.Kind.PROMPT:
        return "", step.body or play.prompt_text
    return step.subject or f"Follow up on {play.name}", step.body


def _merge_values(ws: Workspace, plan: EnrollmentPlan) -> dict:
    """The merge fields of the play's templates for the account, as the engine fills them, from what the demo
    knows: the plan (the one before the upgrade for an account that upgraded since) and the reasons."""
    account_id, play = plan.opp.account_id, plan.play
    spec = ws.specs[account_id]
    current = plan.current_tier or (ws.tiers[spec.tier] if spec.tier is not None else None)
    target = ws.tier_of_plan(play.target_plan_id)
    metric_key = next((s.metric for s in DEMO_PLAYS if ws.plays[s.key].pk == play.pk), None)
    measured = [r for r in plan.opp.reasons if r.get("metric")]
    focus = next((r for r in measured if r["metric"] == metric_key), None) or next(iter(measured), None)
    utilization = days = None
    if focus is not None:
        utilization = focus["signals"].get("utilization")
        days = focus["signals"].get("days_to_limit")
    owner = ws.user(plan.opp.owner_id)
    values = {
        "account_name": spec.name,
        "current_plan": current.name if current else "current",
        "target_plan": target.name if target else "the next plan",
        "target_price": f"{target.monthly_price:,.2f} USD" if target else "",
        "price_delta": f"{target.monthly_price - current.monthly_price:,.2f} USD" if target and current else "",
        "metric": ws.metric_labels.get(focus["metric"], "") if focus else "",
        "utilization": f"{utilization * 100:.0f}%" if utilization is not None else "",
        "projected_limit_date": plan.opp.identified_at.date() + dt.timedelta(days=round(days)) if days else None,
        "trial_days": play.trial_days,
        "csm_name": _name(owner) if owner else "",
        "csm_email": owner.email if owner else "",
    }
    if play.pk == ws.plays["enterprise"].pk:
        account = Account(pk=account_id)
        since = plan.started_at - dt.timedelta(days=90)
        values["premium_features"] = [
            f"{feature} ({uses} time{'s' if uses != 1 else ''})"
            for feature, uses in premium_feature_uses(account=account, since=since)
        ]
    return values


def _step_task(
    ws: Workspace, plan: EnrollmentPlan, step: SequenceStep, texts: tuple[str, str], values: dict, *, at, rng
) -> Task:
    """The task a task step gives the account's CSM (as `accounts.work_services.task_create` writes it), done
    by now when it fell due more than a day ago."""
    owner = ws.user(plan.opp.owner_id)
    due_on = at.date() + dt.timedelta(days=step.task_due_days)
    task = Task(
        account_id=plan.opp.account_id,
        assignee=owner,
        title=_clip(sandbox_render(texts[0], values, kind=Kind.SUBJECT), 200),
        detail=sandbox_render(texts[1], values, kind=Kind.TEXT),
        due_on=due_on,
        source=Task.Source.PLAY,
        opportunity_id=plan.opportunity_id,
        created_at=at,
    )
    if due_on < ws.as_of - dt.timedelta(days=1) or (plan.stopped_at is not None and due_on <= ws.as_of):
        done = min(at + dt.timedelta(days=rng.randint(1, max(step.task_due_days, 1)), hours=rng.randint(0, 6)), ws.now)
        task.status, task.completed_at, task.completed_by = Task.Status.DONE, done, owner
    return task


# --- Surveys and feedback ---------------------------------------------------------------------------------------


def _needs_survey_seed(ws: Workspace) -> int:
    """The upcoming-needs survey on the storage rule, shown in the product, and the answers of the accounts
    fullest on storage today (one or two people each), spread over the last 40 days."""
    fields = {
        "purpose": Survey.Purpose.NEEDS,
        "channel": Survey.Channel.PROMPT,
        "rule_id": ws.rule_ids.get(NEEDS_RULE),
        "intro": NEEDS_INTRO,
        "active": True,
    }
    survey = Survey.objects.filter(name__iexact=NEEDS_SURVEY).first()
    if survey is None:
        survey = Survey.objects.create(name=NEEDS_SURVEY, **fields)
    else:
        for name, value in fields.items():
            setattr(survey, name, value)
        survey.save()
        SurveyQuestion.objects.filter(survey=survey).delete()
    SurveyQuestion.objects.bulk_create(
        SurveyQuestion(survey=survey, position=position, text=text, kind=kind, choices=choices)
        for position, (text, kind, choices) in enumerate(NEEDS_QUESTIONS, start=1)
    )
    storage = ws.metric_ids.get("storage_gb")
    latest = dict(
        UsageSnapshot.objects.filter(metric_id=storage, captured_on=ws.as_of).values_list("account_id", "value")
    )
    fullness = []
    for account_id, spec in sorted(ws.specs.items()):
        limit = ws.tiers[spec.tier].limits.get("storage_gb") if spec.tier is not None else None
        if spec.status == Account.Status.CHURNED or not limit or account_id not in latest:
            continue
        fullness.append((latest[account_id] / limit, account_id))
    fullness.sort(key=lambda row: (-row[0], row[1]))
    wanted = min(max(len(ws.specs) // 10, NEEDS_ANSWERS_MIN), NEEDS_ANSWERS_MAX)
    answered = 0
    for utilization, account_id in fullness:
        if answered >= wanted:
            break
        spec = ws.specs[account_id]
        rng = _rng(ws.seed, "needs-answer", spec.index)
        weights = [1, 3, 4, 2] if utilization >= 0.95 else [2, 4, 3, 1] if utilization >= 0.8 else [4, 3, 2, 1]
        people = ws.contacts.get(account_id, [])[: 2 if rng.random() < 0.4 else 1]
        for contact in people[: wanted - answered]:
            answered += 1
            answers = {"1": rng.choices(NEEDS_CHOICES, weights=weights)[0]}
            if rng.random() < 0.6:
                answers["2"] = rng.choice(NEEDS_TEXTS.get(spec.industry, NEEDS_TEXTS["Software"]))
            day = ws.as_of - dt.timedelta(days=rng.randint(1, 40))
            ws.responses.append(
                SurveyResponse(
                    survey=survey,
                    account_id=account_id,
                    contact_ref=contact.email,
                    answers=answers,
                    submitted_at=_day_at(day, rng.randint(9, 17), rng.randint(0, 59)),
                )
            )
    return len(ws.responses)


def _feedback_seed(ws: Workspace) -> tuple[int, int]:
    """The downgrade and churn feedback survey (`playbooks.surveys.churn_feedback_survey`: the default one,
    created on this first need, when none exists) asked of the FEEDBACK_MAX latest downgrades and churns of the
    last FEEDBACK_DAYS, as `playbooks.feedback` asks them when billing records the movement: a request, and a
    task for the CSM to collect the answer. Most were answered a few days later; the CSM's task was done
    then (or given up a week after it fell due)."""
    survey = churn_feedback_survey(at=ws.now)
    if survey is None:
        return 0, 0
    questions = list(SurveyQuestion.objects.filter(survey=survey).order_by("position"))
    movements = list(
        MrrMovement.objects.filter(
            kind__in=[MrrMovement.Kind.CONTRACTION, MrrMovement.Kind.CHURN],
            occurred_on__gte=ws.as_of - dt.timedelta(days=FEEDBACK_DAYS),
            occurred_on__lte=ws.as_of,
        ).order_by("-occurred_on", "pk")[:FEEDBACK_MAX]
    )
    plans = {t.id: t.name for t in ws.tiers}
    requests = []
    for movement in movements:
        rng = _rng(ws.seed, f"feedback:{movement.occurred_on}:{movement.kind}", ws.specs[movement.account_id].index)
        asked = min(_day_at(movement.occurred_on, rng.randint(9, 17), rng.randint(0, 59)), ws.now)
        request = FeedbackRequest(survey=survey, account_id=movement.account_id, movement=movement, created_at=asked)
        answered = asked + dt.timedelta(days=rng.randint(1, 6), hours=rng.randint(0, 8))
        if rng.random() < CHURN_ANSWERED_SHARE and answered <= ws.now:
            request.answered_at = answered
        requests.append((request, movement, rng))
    FeedbackRequest.objects.bulk_create([request for request, _, _ in requests])
    for request, movement, rng in requests:
        spec = ws.specs[movement.account_id]
        owner = ws.users.get(spec.owner) if spec.owner else None
        what = "left" if movement.kind == MrrMovement.Kind.CHURN else "downgraded"
        if owner is not None:
            due_on = request.created_at.date() + dt.timedelta(days=FEEDBACK_DUE_DAYS)
            task = Task(
                account_id=movement.account_id,
                assignee=owner,
                title=_clip(f"Ask {spec.name} why they {what}", 200),
                detail=_feedback_detail(movement, survey, request, plans),
                due_on=due_on,
                source=Task.Source.FEEDBACK,
                created_at=request.created_at,
            )
            if request.answered_at is not None:
                task.status, task.completed_at = Task.Status.DONE, request.answered_at + dt.timedelta(minutes=20)
            elif due_on < ws.as_of - dt.timedelta(days=7):
                task.status, task.completed_at = Task.Status.DONE, _day_at(due_on + dt.timedelta(days=7), 16)
            if task.completed_at is not None:
                task.completed_at, task.completed_by = min(task.completed_at, ws.now), owner
            ws.tasks.append(task)
            ws.request_tasks.append((request, task))
        if request.answered_at is None:
            continue
        reason = rng.choices(*zip(*CHURN_REASONS[movement.kind], strict=True))[0]
        answers = {}
        for question in questions:
            if question.kind == SurveyQuestion.Kind.CHOICE and question.choices:
                answers[str(question.position)] = rng.choice(question.choices)
            elif rng.random() < 0.8:
                answers[str(question.position)] = rng.choice(CHURN_TEXTS[reason])
        contact = _primary(ws, movement.account_id)
        ws.responses.append(
            SurveyResponse(
                survey=survey,
                account_id=movement.account_id,
                request=request,
                contact_ref="" if survey.channel == Survey.Channel.EMAIL or contact is None else contact.email,
                reason=reason,
                answers=answers,
                submitted_at=request.answered_at,
            )
        )
    return len(requests), sum(1 for request, _, _ in requests if request.answered_at is not None)


def _feedback_detail(movement: MrrMovement, survey: Survey, request: FeedbackRequest, plans: dict[int, str]) -> str:
    """The feedback task's detail, in `playbooks.feedback`'s words."""
    amounts = f"{movement.mrr_before:,.2f} → {movement.mrr_after:,.2f} {movement.currency}"
    change = (
        f" ({plans.get(movement.plan_before_id, 'no plan')} → {plans.get(movement.plan_after_id, 'no plan')})."
        if movement.plan_before_id != movement.plan_after_id
        else "."
    )
    lines = [
        f"MRR {amounts} on {movement.occurred_on:%Y-%m-%d}{change}",
        f"Ask them why with the survey “{survey.name}”.",
    ]
    if survey.channel == Survey.Channel.EMAIL:
        url = survey_link_url(account_id=movement.account_id, survey_id=survey.pk, request_id=request.pk)
        lines.append(f"Send them this link: {url}")
    else:
        lines.append("It is shown to them in the product until someone answers.")
    return "\n".join(lines)


# --- Tasks by hand --------------------------------------------------------------------------------------------


def _manual_tasks_build(ws: Workspace) -> None:
    """Each CSM's own to-do list on their book (MANUAL_TASK_DAYS: overdue, due today, upcoming, done this week),
    the opportunities' first; a few for the manager (coaching on csm3's and csm4's deals), the admin
    (onboarding the latest top-plan customer) and the account executive (the deals she works on)."""
    open_by_owner: dict[int, list[OppRow]] = defaultdict(list)
    for opp in ws.opps:
        if opp.outcome == Outcome.OPEN and opp.owner_id is not None:
            open_by_owner[opp.owner_id].append(opp)
    for username in CSMS:
        user = ws.users[username]
        rng = _rng(ws.seed, "tasks", CSMS.index(username))
        opps = sorted(open_by_owner.get(user.pk, []), key=lambda o: (-o.score, o.pk))
        accounts = [
            account_id
            for account_id, spec in sorted(ws.specs.items())
            if spec.owner == username and spec.status != Account.Status.CHURNED
        ]
        rng.shuffle(accounts)
        slots = [(group, n) for group, (count, _) in MANUAL_TASK_DAYS.items() for n in range(count)]
        for k, (group, _) in enumerate(slots):
            low, high = MANUAL_TASK_DAYS[group][1]
            due_on = ws.as_of + dt.timedelta(days=rng.randint(low, high))
            if k % 2 == 0 and opps:
                opp = opps[(k // 2) % len(opps)]
                title, detail = OPPORTUNITY_TASKS[(k // 2) % len(OPPORTUNITY_TASKS)]
                account_id, opportunity_id = opp.account_id, opp.pk
            elif accounts:
                title, detail = ACCOUNT_TASKS[(k // 2) % len(ACCOUNT_TASKS)]
                account_id, opportunity_id, opp = accounts[k % len(accounts)], None, None
            else:
                continue
            task = _hand_task(ws, rng, user, account_id, opportunity_id, title, detail, due_on, opp=opp)
            if group == "done":
                done = _day_at(ws.as_of - dt.timedelta(days=rng.randint(1, 6)), rng.randint(9, 17), rng.randint(0, 59))
                task.created_at = min(task.created_at, done - dt.timedelta(days=rng.randint(1, 5)))
                task.status, task.completed_at, task.completed_by = Task.Status.DONE, done, user
            ws.tasks.append(task)
    _team_tasks_build(ws)


def _hand_task(ws, rng, user, account_id, opportunity_id, title, detail, due_on, *, opp=None) -> Task:
    """A task `user` wrote for themselves a few days before it falls due, its words filled in from the account,
    its primary contact and the opportunity."""
    target = ws.tier_of_plan(opp.target_plan_id) if opp is not None else None
    words = {
        "account": ws.specs[account_id].name,
        "contact": _first_name(ws, account_id),
        "target": target.name if target else "upgrade",
        "decision_maker": (opp.qualification or {}).get("decision_maker") or "budget owner" if opp else "",
    }
    created = _day_at(
        min(due_on, ws.as_of) - dt.timedelta(days=rng.randint(2, 9)), rng.randint(9, 17), rng.randint(0, 59)
    )
    return Task(
        account_id=account_id,
        assignee=user,
        title=_clip(title.format(**words), 200),
        detail=detail.format(**words),
        due_on=due_on,
        source=Task.Source.MANUAL,
        opportunity_id=opportunity_id,
        created_at=created,
        created_by=user,
    )


def _team_tasks_build(ws: Workspace) -> None:
    rng = _rng(ws.seed, "team-tasks")
    manager, admin, seller = ws.users["manager"], ws.users["admin"], ws.users["sales1"]
    coached = [
        o
        for name in ("csm3", "csm4")
        for o in sorted(ws.opps, key=lambda o: (-o.score, o.pk))
        if o.owner_id == ws.users[name].pk and o.outcome == Outcome.OPEN
    ]
    plans = [
        (coached[0] if coached else None, "Review {account}'s proposal with its CSM", -1, False),
        (coached[1] if len(coached) > 1 else None, "Approve the discount {contact} asked for", 0, False),
        (coached[-1] if coached else None, "Coach the team on the ROI note for {account}", -3, True),
    ]
    for opp, title, days, done in plans:
        if opp is None:
            continue
        task = _hand_task(
            ws, rng, manager, opp.account_id, opp.pk, title, "", ws.as_of + dt.timedelta(days=days), opp=opp
        )
        if done:
            task.status, task.completed_at, task.completed_by = Task.Status.DONE, ws.now - dt.timedelta(days=2), manager
        ws.tasks.append(task)
    top = ws.tiers[-1].id
    won = sorted(
        (o for o in ws.opps if o.outcome == Outcome.WON and o.target_plan_id == top),
        key=lambda o: (-o.closed_at.timestamp(), o.pk),
    )
    if won:
        opp = won[0]
        for title, days in (("Set up SSO for {account}", 3), ("Import {account}'s user list for SSO", 0)):
            ws.tasks.append(
                _hand_task(
                    ws, rng, admin, opp.account_id, opp.pk, title, "", ws.as_of + dt.timedelta(days=days), opp=opp
                )
            )
    opps = {o.pk: o for o in ws.opps}
    for k, (_, opportunity_id, _, _, _) in enumerate(ws.collaborations):
        opp = opps.get(opportunity_id)
        if opp is None:
            continue
        if opp.outcome == Outcome.WON:
            title, days = "Hand {account} over to onboarding", -2
        else:
            title, days = ("Send the {target} quote to {contact}", "Draft the contract for {account}")[k % 2], k
        task = _hand_task(
            ws, rng, seller, opp.account_id, opp.pk, title, "", ws.as_of + dt.timedelta(days=days), opp=opp
        )
        if opp.outcome == Outcome.WON:
            task.status, task.completed_at, task.completed_by = Task.Status.DONE, ws.now - dt.timedelta(days=1), seller
        ws.tasks.append(task)


# --- Notifications ----------------------------------------------------------------------------------------------


def _notifications_build(ws: Workspace) -> None:
    """What the producers would have put in each demo user's notification centre over the last days, with their
    titles and dedupe keys: new candidates, snoozes back, upgrades closed by billing, tasks due (the 07:00 job),
    feedback asked and answered, being brought onto an opportunity. Read when older than a day, mostly."""
    names = {account_id: spec.name for account_id, spec in ws.specs.items()}
    recent = ws.now - dt.timedelta(days=RECENT_DAYS)
    drafts: list[tuple[int, str, str, str, int | None, str, dt.datetime]] = []

    def add(user_id, kind, title, url, account_id, key, at) -> None:
        if user_id is not None and at <= ws.now:
            drafts.append((user_id, kind, title, url, account_id, key, at))

    by_owner: dict[int, list[OppRow]] = defaultdict(list)
    for opp in sorted(ws.opps, key=lambda o: (-o.identified_at.timestamp(), o.pk)):
        by_owner[opp.owner_id].append(opp)
    for username in CSMS:
        owned = by_owner.get(ws.users[username].pk, [])
        flagged = [
            o
            for o in owned
            if o.source == Opportunity.Source.RULES and o.identified_at >= recent and o.outcome == Outcome.OPEN
        ]
        for o in flagged[:4]:
            title = f"New candidate: {names[o.account_id]} (score {o.score})"
            url = _opportunity_url(o.account_id, o.pk)
            add(
                o.owner_id,
                Notification.Kind.NEW_CANDIDATE,
                title,
                url,
                o.account_id,
                f"new-candidate:{o.pk}",
                o.identified_at,
            )
        for o in owned:
            if o.outcome == Outcome.SNOOZED and recent.date() < o.snoozed_until <= ws.as_of:
                add(
                    o.owner_id,
                    Notification.Kind.SNOOZE_RETURNED,
                    f"Back from snooze: {names[o.account_id]}",
                    _opportunity_url(o.account_id, o.pk),
                    o.account_id,
                    f"snooze-returned:{o.pk}:{o.snoozed_until.isoformat()}",
                    _day_at(o.snoozed_until, 7, 5),
                )
        won = [o for o in owned if o.outcome == Outcome.WON and o.closed_at >= ws.now - dt.timedelta(days=30)]
        for o in sorted(won, key=lambda o: (-o.closed_at.timestamp(), o.pk))[:2]:
            add(
                o.owner_id,
                Notification.Kind.BILLING_UPGRADE,
                f"Upgrade closed by billing: {names[o.account_id]}",
                _opportunity_url(o.account_id, o.pk),
                o.account_id,
                f"billing-won:{o.pk}",
                o.closed_at + dt.timedelta(minutes=2),
            )
    # The 07:00 job of each of the last days: the open tasks due that day.
    for task in ws.tasks:
        for back in range(RECENT_DAYS // 2 + 1):
            day = ws.as_of - dt.timedelta(days=back)
            at = _day_at(day, 7)
            if task.due_on == day and task.created_at < at and (task.completed_at is None or task.completed_at > at):
                add(
                    task.assignee.pk,
                    Notification.Kind.TASK_DUE,
                    _clip(f"Due today: {task.title} ({names[task.account_id]})"),
                    _account_url(task.account_id) + "#tasks",
                    task.account_id,
                    f"task-due:{task.pk}:{day.isoformat()}",
                    at,
                )
    for request, task in ws.request_tasks:
        if request.created_at >= recent:
            what = "left" if request.movement.kind == MrrMovement.Kind.CHURN else "downgraded"
            add(
                task.assignee.pk,
                Notification.Kind.FEEDBACK,
                f"{names[request.account_id]} {what}: ask them why",
                _account_url(request.account_id),
                request.account_id,
                f"feedback-request-{request.pk}",
                request.created_at,
            )
    for response in ws.responses:
        owner = ws.users.get(ws.specs[response.account_id].owner or "")
        if owner is not None and response.submitted_at >= recent:
            what = SurveyResponse.Reason(response.reason).label.lower() if response.reason else "new answers"
            add(
                owner.pk,
                Notification.Kind.FEEDBACK,
                f"{names[response.account_id]} answered “{response.survey.name}”: {what}",
                _account_url(response.account_id),
                response.account_id,
                f"survey-response-{response.pk}",
                response.submitted_at,
            )
    opps = {o.pk: o for o in ws.opps}
    for collaborator_id, opportunity_id, user_id, added_by_id, added_at in ws.collaborations:
        opp = opps[opportunity_id]
        add(
            user_id,
            Notification.Kind.COLLABORATOR_ADDED,
            f"{_name(ws.user(added_by_id))} added you to the opportunity on {names[opp.account_id]}",
            _opportunity_url(opp.account_id, opp.pk),
            opp.account_id,
            f"collaborator:{collaborator_id}",
            added_at,
        )
    for user_id, kind, title, url, account_id, key, at in sorted(drafts, key=lambda d: (d[6], d[0], d[1], d[2])):
        # Its own stream, named by what it says: the keys hold ids, which change with every reset.
        rng = _rng(ws.seed, f"notification:{kind}:{at.isoformat()}:{title}")
        read_at = None
        if at < ws.now - dt.timedelta(days=1) and rng.random() < 0.85:
            read_at = min(at + dt.timedelta(hours=rng.randint(1, 20)), ws.now)
        ws.notifications.append(
            Notification(
                recipient_id=user_id,
                kind=kind,
                title=_clip(title),
                url=url,
                account_id=account_id,
                dedupe_key=key,
                created_at=at,
                read_at=read_at,
                digested_at=_digested_at(at, now=ws.now),
            )
        )


def _digested_at(at: dt.datetime, *, now: dt.datetime) -> dt.datetime | None:
    """When the daily digest (17:30) carried a notification: that day's, or the next day's for a later one."""
    digest = _day_at(at.date(), 17, 30)
    if at > digest:
        digest += dt.timedelta(days=1)
    return digest if digest <= now else None
