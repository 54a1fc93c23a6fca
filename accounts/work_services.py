"""Writes of a user's work: tasks on accounts, notifications in their centre, and the daily digest."""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractBaseUser
from django.core.cache import cache
from django.core.mail import EmailMessage
from django.db import IntegrityError, transaction
from django.db.models import Exists, OuterRef, Q
from django.template.loader import render_to_string
from django.urls import reverse

from accounts.models import Account, Notification, NotificationSetting, Task
from accounts.work_selectors import unread_cache_key

logger = logging.getLogger(__name__)

TITLE_MAX = Task._meta.get_field("title").max_length
NOTIFICATION_TITLE_MAX = Notification._meta.get_field("title").max_length
NOTIFICATION_URL_MAX = Notification._meta.get_field("url").max_length
DEDUPE_KEY_MAX = Notification._meta.get_field("dedupe_key").max_length


def _clip(text: str, limit: int) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _forget_unread(user_ids: Iterable[int]) -> None:
    """Drop the bells' cached counts of `user_ids`: now, and again once the transaction commits, so a page
    drawn meanwhile cannot keep the count from before the change."""
    keys = [unread_cache_key(pk) for pk in set(user_ids)]
    if not keys:
        return

    def forget() -> None:
        try:
            cache.delete_many(keys)
        except Exception:
            # The cache is down: nothing can be read from it either.
            logger.warning("The unread counts of %d users could not be dropped from the cache", len(keys))

    forget()
    transaction.on_commit(forget)


def _app_path(url: str) -> str:
    """Only a path inside the app is kept as a link target: an absolute, protocol-relative or `javascript:`
    address would turn the notification centre into an open redirect."""
    url = (url or "").strip()
    if not url.startswith("/") or url.startswith("//") or len(url) > NOTIFICATION_URL_MAX:
        return ""
    return url


@transaction.atomic
def task_create(
    *,
    account: Account,
    assignee: AbstractBaseUser,
    title: str,
    due_on: dt.date,
    at: dt.datetime,
    detail: str = "",
    source: str = Task.Source.MANUAL,
    opportunity_id: int | None = None,
    by: AbstractBaseUser | None = None,
) -> Task:
    """Give `assignee` something to do for `account` by `due_on`; `by` is None when a play or a feedback
    request created it. The title is clipped to its column rather than refused: steps and surveys write it."""
    return Task.objects.create(
        account=account,
        assignee=assignee,
        title=_clip(title, TITLE_MAX),
        detail=detail or "",
        due_on=due_on,
        source=source,
        opportunity_id=opportunity_id,
        created_at=at,
        created_by=by,
    )


@transaction.atomic
def task_complete(*, task: Task, by: AbstractBaseUser, at: dt.datetime) -> Task:
    """Mark an open task done, once: a conditional UPDATE on `status = open` claims it, so a double click, a
    retry or two people completing it together leave the first completion (its time and its user) in place.
    Completing a task already done changes nothing and returns it as it is."""
    Task.objects.filter(pk=task.pk, status=Task.Status.OPEN).update(
        status=Task.Status.DONE, completed_at=at, completed_by=by
    )
    task.refresh_from_db(fields=["status", "completed_at", "completed_by"])
    return task


def notify(
    *,
    recipient: AbstractBaseUser,
    kind: str,
    title: str,
    at: dt.datetime,
    url: str = "",
    account: Account | None = None,
    dedupe_key: str = "",
) -> Notification | None:
    """Put a notification in the recipient's centre, or return None when they should not get it: they muted
    `kind`, they are inactive, or `dedupe_key` was already notified to them.

    The dedupe is the database's (a unique constraint per recipient and non-blank key): the insert runs in a
    savepoint and a conflict is swallowed, so two workers racing on the same key store one row and neither
    raises. `url` keeps only a path inside the app.
    """
    if recipient is None or not getattr(recipient, "is_active", True):
        return None
    muted = NotificationSetting.objects.filter(user_id=recipient.pk).values_list("muted_kinds", flat=True).first()
    if muted and kind in muted:
        return None
    fields = {
        "recipient_id": recipient.pk,
        "kind": kind,
        "title": _clip(title, NOTIFICATION_TITLE_MAX),
        "url": _app_path(url),
        "account": account,
        "created_at": at,
    }
    if not dedupe_key:
        notification = Notification.objects.create(**fields)
        _forget_unread([recipient.pk])
        return notification
    key = dedupe_key[:DEDUPE_KEY_MAX]
    if Notification.objects.filter(recipient_id=recipient.pk, dedupe_key=key).exists():
        return None
    try:
        with transaction.atomic():
            notification = Notification.objects.create(dedupe_key=key, **fields)
    except IntegrityError:
        # Another worker stored the same key between the check and the insert.
        return None
    _forget_unread([recipient.pk])
    return notification


@dataclass(frozen=True, slots=True)
class NotificationDraft:
    """One notification to store, as `notifications_send` takes them: ids, not instances, so a set-based
    caller builds thousands without loading a user or an account."""

    recipient_id: int
    kind: str
    title: str
    url: str = ""
    account_id: int | None = None
    dedupe_key: str = ""


def notifications_send(*, drafts: Sequence[NotificationDraft], at: dt.datetime) -> int:
    """`notify` for many at once, in two queries whatever their number: the recipients (active, with what
    they muted), and one INSERT that skips every row whose dedupe key its recipient already had (the unique
    constraint, ON CONFLICT DO NOTHING). Returns how many were offered to the database after muting."""
    if not drafts:
        return 0
    muted = {
        pk: set(kinds or ())
        for pk, kinds in get_user_model()
        .objects.filter(pk__in={d.recipient_id for d in drafts}, is_active=True)
        .values_list("pk", "notification_setting__muted_kinds")
    }
    rows = [
        Notification(
            recipient_id=d.recipient_id,
            kind=d.kind,
            title=_clip(d.title, NOTIFICATION_TITLE_MAX),
            url=_app_path(d.url),
            account_id=d.account_id,
            dedupe_key=d.dedupe_key[:DEDUPE_KEY_MAX],
            created_at=at,
        )
        for d in drafts
        if d.recipient_id in muted and d.kind not in muted[d.recipient_id]
    ]
    if rows:
        Notification.objects.bulk_create(rows, ignore_conflicts=True)
        _forget_unread(row.recipient_id for row in rows)
    return len(rows)


def tasks_due_notify(*, on: dt.date, at: dt.datetime) -> int:
    """Tell each assignee about their open tasks due on `on`, once per task and day (the dedupe key names
    both, so a re-run or a retry of the day's job adds nothing). Three queries."""
    tasks = Task.objects.filter(status=Task.Status.OPEN, due_on=on).values_list(
        "pk", "assignee_id", "account_id", "title", "account__name"
    )
    return notifications_send(
        drafts=[
            NotificationDraft(
                recipient_id=assignee_id,
                kind=Notification.Kind.TASK_DUE,
                title=f"Due today: {title} ({account_name})",
                url=reverse("accounts:detail", args=[account_id]) + "#tasks",
                account_id=account_id,
                dedupe_key=f"task-due:{pk}:{on.isoformat()}",
            )
            for pk, assignee_id, account_id, title, account_name in tasks
        ],
        at=at,
    )


def notification_read(*, notification: Notification, at: dt.datetime) -> Notification:
    """Mark one notification read, keeping the first time it was read."""
    if Notification.objects.filter(pk=notification.pk, read_at__isnull=True).update(read_at=at):
        _forget_unread([notification.recipient_id])
    notification.refresh_from_db(fields=["read_at"])
    return notification


def notifications_read_all(*, recipient: AbstractBaseUser, at: dt.datetime) -> int:
    """Mark every unread notification of `recipient` read, in one UPDATE; returns how many."""
    count = Notification.objects.filter(recipient=recipient, read_at__isnull=True).update(read_at=at)
    if count:
        _forget_unread([recipient.pk])
    return count


def notification_setting_save(
    *, user: AbstractBaseUser, muted_kinds: Iterable[str], daily_digest: bool
) -> NotificationSetting:
    """Store what `user` chose: the kinds they mute (known kinds only, in the catalogue's order) and
    whether they want the daily digest. The row is created on the first save."""
    wanted = set(muted_kinds)
    kinds = [kind for kind in Notification.Kind.values if kind in wanted]
    setting, _ = NotificationSetting.objects.update_or_create(
        user=user, defaults={"muted_kinds": kinds, "daily_digest": daily_digest}
    )
    return setting


# --- The daily digest ---------------------------------------------------------------------------------------

DIGEST_WINDOW = dt.timedelta(days=1)
"""A digest carries the notifications of the day before it: those created in the 24 hours up to its run."""


def _digest_items(user_id: int, *, muted: Iterable[str], at: dt.datetime) -> list[Notification]:
    return list(
        Notification.objects.filter(
            recipient_id=user_id, digested_at__isnull=True, created_at__gt=at - DIGEST_WINDOW, created_at__lte=at
        )
        .exclude(kind__in=list(muted))
        .select_related("account")
        .order_by("created_at", "pk")
    )


def _absolute(url: str) -> str:
    base = settings.APP_URL.rstrip("/")
    return f"{base}{url}" if url else ""


def digest_send(*, user: AbstractBaseUser, on: dt.date, at: dt.datetime) -> bool:
    """Email `user` one digest of their notifications of the day (kinds they muted left out), at most once
    on `on`; False when they want none, have no address, or nothing is new.

    Once per day holds under retries and concurrent workers: a conditional UPDATE of `last_digest_on`
    (WHERE it is before `on` and the digest is on) claims the day, and the email goes out in the same
    transaction, so a second worker's claim waits for the first and then matches no row, and a failed send
    rolls the claim back for the retry. The carried notifications are marked digested.
    """
    if not user.is_active or not user.email:
        return False
    setting = NotificationSetting.objects.filter(user=user).first()
    if setting is not None and not setting.daily_digest:
        return False
    muted = setting.muted_kinds if setting else []
    if not _digest_items(user.pk, muted=muted, at=at):
        return False
    with transaction.atomic():
        if setting is None:
            setting, _ = NotificationSetting.objects.get_or_create(user=user)
        claimed = (
            NotificationSetting.objects.filter(pk=setting.pk, daily_digest=True)
            .filter(Q(last_digest_on__isnull=True) | Q(last_digest_on__lt=on))
            .update(last_digest_on=on)
        )
        if not claimed:
            return False
        # Read again under the claim: what another worker digested meanwhile is not carried twice.
        items = _digest_items(user.pk, muted=setting.muted_kinds, at=at)
        if not items:
            transaction.set_rollback(True)
            return False
        context = {
            "user": user,
            "on": on,
            "items": [(item, _absolute(item.url)) for item in items],
            "centre_url": _absolute("/notifications/"),
            "settings_url": _absolute("/notifications/settings/"),
        }
        count = len(items)
        EmailMessage(
            subject=f"Your Upsell CRM digest: {count} new notification{'s' if count != 1 else ''}",
            body=render_to_string("work/digest_email.txt", context),
            to=[user.email],
        ).send()
        Notification.objects.filter(pk__in=[item.pk for item in items]).update(digested_at=at)
    return True


@dataclass(frozen=True, slots=True)
class DigestReport:
    sent: int
    failed: int


def digests_send(*, on: dt.date, at: dt.datetime) -> DigestReport:
    """Send the day's digest to everyone who wants one (no setting yet means yes) and has something new in
    it. Users with nothing new cost nothing: the query leaves them out. A digest that fails to send (a bad
    address, the mail server down) is logged and counted, and its day stays unclaimed, so a retry of the
    whole run sends exactly the ones that are missing."""
    User = get_user_model()
    fresh = Notification.objects.filter(
        recipient=OuterRef("pk"), digested_at__isnull=True, created_at__gt=at - DIGEST_WINDOW, created_at__lte=at
    )
    users = (
        User.objects.filter(is_active=True)
        .exclude(email="")
        .filter(Q(notification_setting__isnull=True) | Q(notification_setting__daily_digest=True))
        .filter(Exists(fresh))
        .order_by("pk")
    )
    sent = failed = 0
    for user in list(users):
        try:
            sent += digest_send(user=user, on=on, at=at)
        except Exception:
            # One bad address must not keep the digest from everyone else.
            failed += 1
            logger.exception("The digest of user %s could not be sent", user.pk)
    return DigestReport(sent=sent, failed=failed)
