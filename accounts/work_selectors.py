"""Reads for a user's work: their tasks grouped by when they are due, an account's tasks, the notification
centre and its bell. Each list comes from a fixed number of queries, whatever its length."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

from django.core.cache import cache
from django.core.paginator import Page, Paginator
from django.db.models import Count, F, Q, QuerySet

from accounts.lookups import AnyOf
from accounts.models import Notification, NotificationSetting, Task
from accounts.roles import is_manager_or_admin

TASK_GROUP_LIMIT = 50
"""Rows shown per group of the task list; the group's heading gives the whole count."""
DONE_RECENTLY_DAYS = 7
ACCOUNT_PANEL_DONE_DAYS = 14
ACCOUNT_PANEL_LIMIT = 20


# --- Tasks ---------------------------------------------------------------------------------------------------


def tasks_visible_to(user) -> QuerySet[Task]:
    """The tasks `user` may see and complete: every task for managers and admins; for anyone else, those
    assigned to them and those on the accounts they own (a task stays reachable after its account changed
    hands). Another CSM's task does not exist for them: a 404, forged posts included."""
    if is_manager_or_admin(user):
        return Task.objects.all()
    return Task.objects.filter(Q(assignee=user) | Q(account__owner=user))


def task_for(*, user, pk: int) -> QuerySet[Task]:
    return tasks_visible_to(user).filter(pk=pk).select_related("account", "assignee")


def due_phrase(due_on: dt.date, *, today: dt.date) -> str:
    """When a task is due, in words, relative to `today`: "today", "tomorrow", "in 3 days", "yesterday",
    "3 days overdue"."""
    days = (due_on - today).days
    if days == 0:
        return "today"
    if days == 1:
        return "tomorrow"
    if days > 1:
        return f"in {days} days"
    if days == -1:
        return "yesterday"
    return f"{-days} days overdue"


@dataclass(frozen=True)
class TaskRow:
    task: Task
    due: str
    overdue: bool
    due_today: bool


def task_rows(tasks, *, today: dt.date) -> list[TaskRow]:
    return [
        TaskRow(
            task=task,
            due=due_phrase(task.due_on, today=today),
            overdue=task.status == Task.Status.OPEN and task.due_on < today,
            due_today=task.status == Task.Status.OPEN and task.due_on == today,
        )
        for task in tasks
    ]


@dataclass(frozen=True)
class TaskGroup:
    key: str
    title: str
    rows: list[TaskRow]
    total: int
    empty_text: str = ""


@dataclass(frozen=True)
class TaskBoard:
    groups: list[TaskGroup]
    done: TaskGroup
    open_total: int = 0
    extra: dict = field(default_factory=dict)


def tasks_scope(*, user, csm_id: int | None = None, account_id: int | None = None) -> QuerySet[Task]:
    """The tasks the list shows: a CSM's own (see `tasks_visible_to`); for a manager, everyone's, or one
    CSM's when `csm_id` is chosen; narrowed to one account when `account_id` is given."""
    tasks = tasks_visible_to(user)
    if csm_id is not None and is_manager_or_admin(user):
        tasks = tasks.filter(Q(assignee_id=csm_id) | Q(account__owner_id=csm_id))
    if account_id is not None:
        tasks = tasks.filter(account_id=account_id)
    return tasks


def task_board(
    *,
    user,
    today: dt.date,
    csm_id: int | None = None,
    account_id: int | None = None,
    limit: int = TASK_GROUP_LIMIT,
) -> TaskBoard:
    """Open tasks in three groups (overdue, due today, upcoming; soonest first) and those done in the last
    DONE_RECENTLY_DAYS days (latest first), at most `limit` rows each, with each group's whole count.
    Five queries: the counts, then one per group."""
    scope = tasks_scope(user=user, csm_id=csm_id, account_id=account_id)
    is_open = Q(status=Task.Status.OPEN)
    done_since = Q(status=Task.Status.DONE, completed_at__date__gte=today - dt.timedelta(days=DONE_RECENTLY_DAYS))
    filters = {
        "overdue": is_open & Q(due_on__lt=today),
        "today": is_open & Q(due_on=today),
        "upcoming": is_open & Q(due_on__gt=today),
        "done": done_since,
    }
    counts = scope.aggregate(**{key: Count("pk", filter=condition) for key, condition in filters.items()})

    def rows(key: str, *ordering: str) -> list[TaskRow]:
        tasks = scope.filter(filters[key]).select_related("account", "assignee").order_by(*ordering)[:limit]
        return task_rows(tasks, today=today)

    groups = [
        TaskGroup("overdue", "Overdue", rows("overdue", "due_on", "pk"), counts["overdue"], "Nothing overdue."),
        TaskGroup("today", "Due today", rows("today", "pk"), counts["today"], "Nothing due today."),
        TaskGroup("upcoming", "Upcoming", rows("upcoming", "due_on", "pk"), counts["upcoming"], "Nothing planned."),
    ]
    done = TaskGroup("done", "Done recently", rows("done", "-completed_at", "-pk"), counts["done"])
    return TaskBoard(groups=groups, done=done, open_total=sum(group.total for group in groups))


def account_tasks(*, account_id: int, today: dt.date, limit: int = ACCOUNT_PANEL_LIMIT) -> list[TaskRow]:
    """The account page's tasks: open ones soonest first, then those done in the last
    ACCOUNT_PANEL_DONE_DAYS days, in one query."""
    since = today - dt.timedelta(days=ACCOUNT_PANEL_DONE_DAYS)
    tasks = (
        Task.objects.filter(account_id=account_id)
        .filter(Q(status=Task.Status.OPEN) | Q(completed_at__date__gte=since))
        .select_related("assignee")
        .order_by("-status", "due_on", "pk")[:limit]
    )
    return task_rows(tasks, today=today)


def tasks_due_counts(*, account_ids: list[int], today: dt.date) -> dict[int, int]:
    """Open tasks due today or earlier per account, for the queue's rows: one query for the page."""
    if not account_ids:
        return {}
    rows = (
        Task.objects.filter(AnyOf(F("account_id"), account_ids), status=Task.Status.OPEN, due_on__lte=today)
        .values("account_id")
        .annotate(count=Count("pk"))
        .order_by()
    )
    return {row["account_id"]: row["count"] for row in rows}


@dataclass(frozen=True)
class TaskTimelineItem:
    at: dt.datetime
    kind: str
    title: str
    body: str
    actor: object


def task_timeline(*, account_id: int, limit: int) -> list[TaskTimelineItem]:
    """The account timeline's task entries: each task's creation and, once done, its completion; the
    `limit` most recently created or completed tasks, in one query."""
    tasks = (
        Task.objects.filter(account_id=account_id)
        .select_related("created_by", "completed_by", "assignee")
        .order_by("-created_at", "-pk")[:limit]
    )
    items = []
    for task in tasks:
        source = "" if task.source == Task.Source.MANUAL else f" · from a {task.get_source_display().lower()}"
        assignee = task.assignee.get_full_name() or task.assignee.get_username()
        items.append(
            TaskTimelineItem(
                at=task.created_at,
                kind="task_created",
                title=f"Task: {task.title}",
                body=f"Due {task.due_on:%b %-d, %Y} · for {assignee}{source}",
                actor=task.created_by,
            )
        )
        if task.completed_at is not None:
            items.append(
                TaskTimelineItem(
                    at=task.completed_at,
                    kind="task_done",
                    title=f"Task done: {task.title}",
                    body="",
                    actor=task.completed_by,
                )
            )
    return items


# --- Notifications -------------------------------------------------------------------------------------------


def notification_for(*, user, pk: int) -> QuerySet[Notification]:
    """A notification is its recipient's alone, whatever their role."""
    return Notification.objects.filter(recipient=user, pk=pk)


def notification_page(*, user, number, per_page: int, unread_only: bool = False) -> Page:
    """Page `number` of `user`'s notifications, newest first: a count and the page, two queries."""
    notifications = Notification.objects.filter(recipient=user)
    if unread_only:
        notifications = notifications.filter(read_at__isnull=True)
    notifications = notifications.select_related("account").order_by("-created_at", "-pk")
    return Paginator(notifications, per_page).get_page(number)


UNREAD_CACHE_SECONDS = 300
"""How long the bell's count is kept; every write through accounts.work_services forgets it sooner."""


def unread_cache_key(user_id: int) -> str:
    return f"notifications:unread:{user_id}"


def unread_count(*, user) -> int:
    """The bell's number: one COUNT over the recipient's index, kept in the cache for the pages after."""
    count = Notification.objects.filter(recipient=user, read_at__isnull=True).count()
    cache.set(unread_cache_key(user.pk), count, UNREAD_CACHE_SECONDS)
    return count


def unread_count_cached(*, user) -> int | None:
    """The bell's number as last counted, or None when it is not in the cache (the page then asks for it
    with htmx once it has loaded, so rendering a page never waits for the count)."""
    return cache.get(unread_cache_key(user.pk))


def latest_notifications(*, user, limit: int = 6) -> list[Notification]:
    return list(Notification.objects.filter(recipient=user).order_by("-created_at", "-pk")[:limit])


def notification_setting_of(user) -> NotificationSetting:
    """The user's choices, or the defaults (nothing muted, the digest on) before their first save. Never
    writes: a GET shows the defaults without storing them."""
    return NotificationSetting.objects.filter(user=user).first() or NotificationSetting(user=user)
