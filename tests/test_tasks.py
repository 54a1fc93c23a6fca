"""Tasks: created by hand, by a play or a feedback request, completed once, and due-today notifications."""

import datetime as dt

import pytest

from accounts.models import Notification, Task
from accounts.work_selectors import due_phrase, task_board, task_timeline, tasks_due_counts
from accounts.work_services import task_complete, task_create, tasks_due_notify
from tests.factories import AccountFactory, UserFactory

AT = dt.datetime(2026, 3, 10, 9, 0, tzinfo=dt.UTC)
TODAY = dt.date(2026, 3, 10)


def a_task(account, *, due_on=TODAY, assignee=None, title="Call about seats", **kwargs) -> Task:
    return task_create(account=account, assignee=assignee or account.owner, title=title, due_on=due_on, at=AT, **kwargs)


def test_it_creates_a_task_with_who_and_when_it_was_created(account, csm, manager):
    task = task_create(
        account=account,
        assignee=csm,
        title="  Send the   pricing sheet ",
        due_on=TODAY,
        at=AT,
        detail="They asked for annual prices.",
        source=Task.Source.PLAY,
        opportunity_id=42,
        by=manager,
    )

    task.refresh_from_db()
    assert (task.title, task.status, task.source, task.opportunity_id) == (
        "Send the pricing sheet",
        Task.Status.OPEN,
        Task.Source.PLAY,
        42,
    )
    assert (task.created_at, task.created_by, task.completed_at) == (AT, manager, None)


def test_it_clips_a_title_longer_than_its_column_instead_of_failing(account):
    task = a_task(account, title="x" * 500)

    assert len(task.title) == 200 and task.title.endswith("…")


def test_it_completes_a_task_once_and_keeps_the_first_completion(account, csm, manager):
    task = a_task(account)
    later = AT + dt.timedelta(hours=1)

    task_complete(task=task, by=csm, at=AT)
    again = task_complete(task=Task.objects.get(pk=task.pk), by=manager, at=later)

    assert (again.status, again.completed_at, again.completed_by) == (Task.Status.DONE, AT, csm)


def test_it_completes_a_stale_copy_without_overwriting_the_first_completion(account, csm, manager):
    task = a_task(account)
    stale = Task.objects.get(pk=task.pk)  # drawn before the first click
    task_complete(task=task, by=csm, at=AT)

    task_complete(task=stale, by=manager, at=AT + dt.timedelta(minutes=5))

    task.refresh_from_db()
    assert (task.completed_at, task.completed_by) == (AT, csm)


@pytest.mark.parametrize(
    ("days", "words"),
    [(0, "today"), (1, "tomorrow"), (5, "in 5 days"), (-1, "yesterday"), (-3, "3 days overdue")],
)
def test_it_says_when_a_task_is_due_in_words(days, words):
    assert due_phrase(TODAY + dt.timedelta(days=days), today=TODAY) == words


def test_it_groups_a_csms_tasks_into_overdue_today_upcoming_and_done_recently(account, csm):
    overdue = a_task(account, due_on=TODAY - dt.timedelta(days=2), title="Overdue")
    today = a_task(account, title="Today")
    upcoming = a_task(account, due_on=TODAY + dt.timedelta(days=3), title="Upcoming")
    done = a_task(account, title="Done")
    task_complete(task=done, by=csm, at=AT)

    board = task_board(user=csm, today=TODAY)

    assert [[row.task for row in group.rows] for group in board.groups] == [[overdue], [today], [upcoming]]
    assert [row.task for row in board.done.rows] == [done]
    assert board.open_total == 3


def test_it_shows_a_csm_tasks_assigned_to_them_and_tasks_on_their_accounts_but_not_another_csms(
    csm, other_csm, account
):
    on_my_account = a_task(account, assignee=other_csm, title="On my account")
    olives_account = AccountFactory(owner=other_csm)
    assigned_to_me = a_task(olives_account, assignee=csm, title="Handed to me")
    a_task(olives_account, title="Olive's own")

    board = task_board(user=csm, today=TODAY)

    assert {row.task for row in board.groups[1].rows} == {on_my_account, assigned_to_me}


def test_it_shows_a_manager_everyones_tasks_or_one_csms(manager, csm, other_csm, account):
    casey = a_task(account)
    olive = a_task(AccountFactory(owner=other_csm))

    assert {row.task for row in task_board(user=manager, today=TODAY).groups[1].rows} == {casey, olive}
    assert [row.task for row in task_board(user=manager, today=TODAY, csm_id=other_csm.pk).groups[1].rows] == [olive]


def test_it_counts_the_open_tasks_due_by_today_per_account(account, csm):
    other = AccountFactory(owner=csm)
    a_task(account, due_on=TODAY - dt.timedelta(days=1))
    a_task(account)
    a_task(account, due_on=TODAY + dt.timedelta(days=1))  # not due yet
    task_complete(task=a_task(other), by=csm, at=AT)  # done

    assert tasks_due_counts(account_ids=[account.pk, other.pk], today=TODAY) == {account.pk: 2}


def test_it_puts_a_tasks_creation_and_completion_in_the_account_timeline(account, csm, manager):
    task = a_task(account, by=manager)
    task_complete(task=task, by=csm, at=AT + dt.timedelta(hours=2))

    items = task_timeline(account_id=account.pk, limit=50)

    assert [(item.kind, item.title, item.actor) for item in items] == [
        ("task_created", "Task: Call about seats", manager),
        ("task_done", "Task done: Call about seats", csm),
    ]


def test_it_notifies_each_assignee_of_their_tasks_due_today_once_however_often_it_runs(account, csm):
    due = a_task(account, title="Send the quote")
    a_task(account, due_on=TODAY + dt.timedelta(days=1))
    task_complete(task=a_task(account), by=csm, at=AT)

    tasks_due_notify(on=TODAY, at=AT)
    tasks_due_notify(on=TODAY, at=AT + dt.timedelta(hours=1))

    notification = Notification.objects.get()
    assert (notification.recipient, notification.kind, notification.account) == (csm, "task_due", account)
    assert notification.title == f"Due today: Send the quote ({account.name})"
    assert notification.dedupe_key == f"task-due:{due.pk}:{TODAY.isoformat()}"
    assert notification.url == f"/accounts/{account.pk}/#tasks"


def test_it_notifies_a_task_still_open_again_on_another_day_only_if_it_is_due_then(account, csm):
    a_task(account)

    tasks_due_notify(on=TODAY + dt.timedelta(days=1), at=AT)

    assert not Notification.objects.exists()


def test_it_leaves_an_inactive_assignee_without_due_notifications(account):
    gone = UserFactory(is_active=False, role="CSM")
    a_task(account, assignee=gone)

    tasks_due_notify(on=TODAY, at=AT)

    assert not Notification.objects.exists()
