"""Writes for A/B tests of plays: create, start and stop experiments, assign accounts, credit won opportunities.

Configuration changes (create, start, stop) are audit-logged in their transaction. Assignment and credits
are data, not configuration: they are stored idempotently (unique constraints, ON CONFLICT DO NOTHING) so
two concurrent callers store one row and read back the same arm.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from decimal import Decimal

from django.contrib.auth.models import AbstractBaseUser
from django.db import IntegrityError, transaction

from accounts.audit import audit_record, audit_snapshot
from accounts.models import Account, AuditEntry
from playbooks.experiments import assign_arm
from playbooks.models import Assignment, Experiment, Play, PlayCredit, Touch, Variant
from playbooks.sandbox import Kind, template_errors

DEFAULT_ATTRIBUTION_DAYS = 90
VARIANT_CONTENT_FIELDS = (
    "email_subject",
    "email_body",
    "prompt_text",
    "prompt_cta_label",
    "prompt_cta_url",
    "trial_days",
)
# The variant's templates and how each renders, as for the play's own (see playbooks.sandbox).
VARIANT_TEMPLATES = {"email_subject": Kind.SUBJECT, "email_body": Kind.TEXT, "prompt_text": Kind.TEXT}


class ExperimentNotAllowed(Exception):
    """The experiment cannot take this step (wrong status, another one running on the play, no variants)."""


@dataclass(frozen=True, slots=True)
class VariantSpec:
    """A variant to create: its name, weight and content overrides (blank / None = the play's own)."""

    name: str
    weight: int = 1
    email_subject: str = ""
    email_body: str = ""
    prompt_text: str = ""
    prompt_cta_label: str = ""
    prompt_cta_url: str = ""
    trial_days: int | None = None


@dataclass(frozen=True, slots=True)
class PlayContent:
    """What the play sends or shows, with a variant's overrides applied."""

    email_subject: str
    email_body: str
    prompt_kind: str
    prompt_text: str
    prompt_cta_label: str
    prompt_cta_url: str
    trial_days: int | None


@dataclass(frozen=True, slots=True)
class Win:
    """A won opportunity to credit: named by id, since opportunities sit downstream of playbooks."""

    opportunity_id: int
    account_id: int
    won_at: dt.datetime
    mrr_delta: Decimal


def _experiment_snapshot(experiment: Experiment, variants: Iterable[Variant]) -> dict:
    return {**audit_snapshot(experiment), "variants": [audit_snapshot(v) for v in variants]}


@transaction.atomic
def experiment_create(
    *,
    play: Play,
    name: str,
    variants: Sequence[VariantSpec],
    by: AbstractBaseUser,
    at: dt.datetime,
    hypothesis: str = "",
    control_share: float = 0.10,
    attribution_days: int = DEFAULT_ATTRIBUTION_DAYS,
) -> Experiment:
    """A draft experiment on `play` with its variants; audit-logged with the variants in the snapshot.

    Variant templates go through the sandbox's checks, as a play's do: an unsafe one stores nothing.
    """
    if not variants:
        raise ExperimentNotAllowed("An experiment needs at least one variant.")
    names = [v.name.strip().lower() for v in variants]
    if len(set(names)) != len(names):
        raise ExperimentNotAllowed("Variant names must differ.")
    for spec in variants:
        for field, kind in VARIANT_TEMPLATES.items():
            problems = template_errors(getattr(spec, field), kind=kind)
            if problems:
                raise ExperimentNotAllowed(f"{spec.name}, {field.replace('_', ' ')}: {' '.join(problems)}")
    experiment = Experiment.objects.create(
        play=play,
        name=name.strip(),
        hypothesis=hypothesis.strip(),
        control_share=control_share,
        attribution_days=attribution_days,
        created_by=by,
        created_at=at,
    )
    created = Variant.objects.bulk_create(
        Variant(
            experiment=experiment,
            name=spec.name.strip(),
            weight=spec.weight,
            **{f: getattr(spec, f) for f in VARIANT_CONTENT_FIELDS},
        )
        for spec in variants
    )
    audit_record(
        obj=experiment,
        action=AuditEntry.Action.CREATED,
        before=None,
        after=_experiment_snapshot(experiment, created),
        by=by,
        at=at,
    )
    return experiment


def _change_status(
    experiment: Experiment, *, expected: str, changes: dict, by: AbstractBaseUser, at: dt.datetime
) -> Experiment:
    before = audit_snapshot(experiment)
    claimed = Experiment.objects.filter(pk=experiment.pk, status=expected).update(**changes)
    if not claimed:
        current = Experiment.objects.filter(pk=experiment.pk).values_list("status", flat=True).first()
        label = Experiment.Status(current).label.lower() if current else "deleted"
        raise ExperimentNotAllowed(f"The experiment is {label}; only a {expected} experiment can do that.")
    experiment.refresh_from_db()
    audit_record(
        obj=experiment, action=AuditEntry.Action.UPDATED, before=before, after=audit_snapshot(experiment), by=by, at=at
    )
    return experiment


@transaction.atomic
def experiment_start(*, experiment: Experiment, by: AbstractBaseUser, at: dt.datetime) -> Experiment:
    """Draft -> running. One experiment runs per play at a time (a partial unique constraint in the
    database): a second one is refused with the name of the one running."""
    if not experiment.variants.exists():
        raise ExperimentNotAllowed("Add at least one variant before starting the experiment.")
    try:
        with transaction.atomic():
            return _change_status(
                experiment,
                expected=Experiment.Status.DRAFT,
                changes={"status": Experiment.Status.RUNNING, "started_at": at},
                by=by,
                at=at,
            )
    except IntegrityError as error:
        running = (
            Experiment.objects.filter(play_id=experiment.play_id, status=Experiment.Status.RUNNING)
            .values_list("name", flat=True)
            .first()
        )
        raise ExperimentNotAllowed(
            f"“{running or 'Another experiment'}” is already running on this play; stop it before starting this one."
        ) from error


@transaction.atomic
def experiment_stop(*, experiment: Experiment, by: AbstractBaseUser, at: dt.datetime) -> Experiment:
    """Running -> stopped: no new assignments, control accounts get the play again; results stay readable
    and wins within the attribution window of earlier touches are still credited."""
    return _change_status(
        experiment,
        expected=Experiment.Status.RUNNING,
        changes={"status": Experiment.Status.STOPPED, "stopped_at": at},
        by=by,
        at=at,
    )


def _running_experiments(play_ids: Iterable[int]) -> dict[int, Experiment]:
    """The running experiment of each play, with its variants prefetched (two queries)."""
    return {
        e.play_id: e
        for e in Experiment.objects.filter(play_id__in=set(play_ids), status=Experiment.Status.RUNNING)
        .prefetch_related("variants")
        .order_by("pk")
    }


def _arm(experiment: Experiment, account_id: int) -> int | None:
    return assign_arm(
        experiment_id=experiment.pk,
        account_id=account_id,
        control_share=experiment.control_share,
        variants=[(v.pk, v.weight) for v in experiment.variants.all()],
    )


def experiment_assignments_record(*, pairs: Iterable[tuple[int, int]], at: dt.datetime) -> int:
    """Assign each (account id, play id) to the running experiment of the play, when it has one and the
    account has no assignment in it yet. Set-based: three queries whatever the number of pairs.

    The arm is the deterministic one (`assign_arm`); the unique (experiment, account) constraint with
    ON CONFLICT DO NOTHING keeps the first stored assignment when two callers race. Returns the number of
    pairs that met a running experiment.
    """
    pairs = list(pairs)
    if not pairs:
        return 0
    running = _running_experiments(play_id for _, play_id in pairs)
    rows = []
    for account_id, play_id in pairs:
        experiment = running.get(play_id)
        if experiment is not None:
            variant_id = _arm(experiment, account_id)
            rows.append(Assignment(experiment=experiment, account_id=account_id, variant_id=variant_id, assigned_at=at))
    if rows:
        Assignment.objects.bulk_create(rows, ignore_conflicts=True)
    return len(rows)


def experiment_assign(*, account: Account, play: Play, at: dt.datetime) -> tuple[Experiment, Variant | None] | None:
    """The arm of the account in the play's running experiment, assigned and stored the first time it is
    asked: (experiment, variant), variant None for the control group. None when the play runs no experiment.

    Safe under concurrency: the insert does nothing when the (experiment, account) row exists, and the arm
    is read back from the stored row, so every caller gets the first stored arm.
    """
    experiment = _running_experiments([play.pk]).get(play.pk)
    if experiment is None:
        return None
    stored = Assignment.objects.filter(experiment=experiment, account=account).select_related("variant").first()
    if stored is None:
        Assignment.objects.bulk_create(
            [
                Assignment(
                    experiment=experiment, account=account, variant_id=_arm(experiment, account.pk), assigned_at=at
                )
            ],
            ignore_conflicts=True,
        )
        stored = Assignment.objects.select_related("variant").get(experiment=experiment, account=account)
    return experiment, stored.variant


def _variant_of(experiment: Experiment, variant_id: int | None) -> Variant | None:
    return next((v for v in experiment.variants.all() if v.pk == variant_id), None)


def experiment_arm(*, account: Account, play: Play) -> tuple[Experiment, Variant | None] | None:
    """The arm of the account in the play's running experiment without storing anything: the stored one,
    else the one it will get (the assignment is deterministic). For pages that only show content, such as
    the email draft; None when the play runs no experiment. Three queries at most."""
    experiment = _running_experiments([play.pk]).get(play.pk)
    if experiment is None:
        return None
    stored = Assignment.objects.filter(experiment=experiment, account_id=account.pk).values_list("variant_id").first()
    variant_id = stored[0] if stored is not None else _arm(experiment, account.pk)
    return experiment, _variant_of(experiment, variant_id)


def experiment_assign_plays(
    *, account: Account, play_ids: Iterable[int], at: dt.datetime
) -> dict[int, tuple[Experiment, Variant | None]]:
    """`experiment_assign` for several plays at once: by play id, the account's (experiment, variant) in
    each play that runs an experiment (variant None = control), assigned and stored the first time.

    Five queries at most whatever the number of plays: running experiments and their variants, stored
    assignments, then the missing ones inserted (ON CONFLICT DO NOTHING) and read back.
    """
    running = _running_experiments(play_ids)
    if not running:
        return {}
    by_experiment = {e.pk: e for e in running.values()}
    stored = dict(
        Assignment.objects.filter(experiment_id__in=by_experiment, account_id=account.pk).values_list(
            "experiment_id", "variant_id"
        )
    )
    missing = [e for pk, e in by_experiment.items() if pk not in stored]
    if missing:
        Assignment.objects.bulk_create(
            [
                Assignment(experiment=e, account_id=account.pk, variant_id=_arm(e, account.pk), assigned_at=at)
                for e in missing
            ],
            ignore_conflicts=True,
        )
        stored.update(
            Assignment.objects.filter(experiment__in=missing, account_id=account.pk).values_list(
                "experiment_id", "variant_id"
            )
        )
    return {
        play_id: (experiment, _variant_of(experiment, stored[experiment.pk])) for play_id, experiment in running.items()
    }


def experiment_arms(*, account: Account, play_ids: Iterable[int]) -> dict[int, tuple[Experiment, Variant | None]]:
    """`experiment_assign_plays` without storing anything: by play id, the account's (experiment, variant) in
    each play that runs an experiment, the stored arm else the one it will get (the assignment is
    deterministic). For reads that must not write, such as the prompts API's GET. Three queries at most."""
    running = _running_experiments(play_ids)
    if not running:
        return {}
    stored = dict(
        Assignment.objects.filter(experiment__in=list(running.values()), account_id=account.pk).values_list(
            "experiment_id", "variant_id"
        )
    )
    return {
        play_id: (experiment, _variant_of(experiment, stored.get(experiment.pk, _arm(experiment, account.pk))))
        for play_id, experiment in running.items()
    }


def is_in_control(*, account: Account, play: Play) -> bool:
    """True when the account is held out of the play: it sits in the control group of the play's running
    experiment. Emails and in-app prompts of the play must skip such an account.

    An account not assigned yet is judged by the arm it will get (the assignment is deterministic), so the
    answer never changes once it is stored. Two queries at most.
    """
    experiment = _running_experiments([play.pk]).get(play.pk)
    if experiment is None:
        return False
    stored = Assignment.objects.filter(experiment=experiment, account_id=account.pk).values_list("variant_id").first()
    if stored is not None:
        return stored[0] is None
    return _arm(experiment, account.pk) is None


def play_content_for(*, play: Play, variant: Variant | None) -> PlayContent:
    """The play's email, prompt and trial offer with the variant's non-blank fields in place of the play's."""

    def pick(field: str):
        override = getattr(variant, field) if variant is not None else None
        return getattr(play, field) if override in (None, "") else override

    return PlayContent(
        email_subject=pick("email_subject"),
        email_body=pick("email_body"),
        prompt_kind=play.prompt_kind,
        prompt_text=pick("prompt_text"),
        prompt_cta_label=pick("prompt_cta_label"),
        prompt_cta_url=pick("prompt_cta_url"),
        trial_days=pick("trial_days"),
    )


def attribution_windows() -> dict[int, int]:
    """Attribution days by play id, from its running experiment, else its most recently started stopped one.
    Plays without one use DEFAULT_ATTRIBUTION_DAYS."""
    windows: dict[int, int] = {}
    rows = (
        Experiment.objects.filter(status__in=[Experiment.Status.RUNNING, Experiment.Status.STOPPED])
        .order_by("play_id", "started_at", "pk")
        .values_list("play_id", "status", "attribution_days")
    )
    running: set[int] = set()
    for play_id, status, days in rows:
        if play_id in running:
            continue
        windows[play_id] = days  # ordered by start: the latest stopped one overwrites earlier ones
        if status == Experiment.Status.RUNNING:
            running.add(play_id)
    return windows


def play_credits_record(*, wins: Sequence[Win]) -> list[PlayCredit]:
    """Credit each won opportunity to the play (and variant) of the account's first touch within the
    attribution window before the win, i.e. the earliest touch with  won_at − window(play) ≤ occurred_at ≤ won_at,
    where window(play) is the attribution days of the play's running (else last stopped) experiment, else 90.

    Idempotent: an opportunity is credited once (unique opportunity_id; a repeat does nothing). A win with
    no touch in any window is credited to nobody. Three queries whatever the number of wins.
    """
    if not wins:
        return []
    windows = attribution_windows()
    longest = max([DEFAULT_ATTRIBUTION_DAYS, *windows.values()])
    earliest = min(w.won_at for w in wins) - dt.timedelta(days=longest)
    latest = max(w.won_at for w in wins)
    touches: dict[int, list[Touch]] = {}
    for touch in (
        Touch.objects.filter(
            account_id__in={w.account_id for w in wins},
            play__isnull=False,
            occurred_at__gte=earliest,
            occurred_at__lte=latest,
        )
        .only("id", "account_id", "play_id", "variant_id", "occurred_at")
        .order_by("occurred_at", "pk")
    ):
        touches.setdefault(touch.account_id, []).append(touch)
    credits = []
    for win in wins:
        first = next(
            (
                t
                for t in touches.get(win.account_id, [])
                if win.won_at - dt.timedelta(days=windows.get(t.play_id, DEFAULT_ATTRIBUTION_DAYS))
                <= t.occurred_at
                <= win.won_at
            ),
            None,
        )
        if first is not None:
            credits.append(
                PlayCredit(
                    opportunity_id=win.opportunity_id,
                    account_id=win.account_id,
                    play_id=first.play_id,
                    variant_id=first.variant_id,
                    touch=first,
                    mrr_delta=win.mrr_delta,
                    won_at=win.won_at,
                )
            )
    if credits:
        PlayCredit.objects.bulk_create(credits, ignore_conflicts=True)
    return credits


def play_credit_record(
    *, opportunity_id: int, account: Account, won_at: dt.datetime, mrr_delta: Decimal
) -> PlayCredit | None:
    """Credit one won opportunity (see `play_credits_record`); returns the stored credit, or None when no
    play touched the account within its window."""
    play_credits_record(
        wins=[Win(opportunity_id=opportunity_id, account_id=account.pk, won_at=won_at, mrr_delta=mrr_delta)]
    )
    return PlayCredit.objects.filter(opportunity_id=opportunity_id).first()
