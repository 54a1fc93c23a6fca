"""The task pages: my tasks grouped by when they are due, completing one with a click, adding one on the
account page, and the queue's "tasks due" badge."""

import datetime as dt

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from accounts.models import Task
from accounts.work_services import task_complete, task_create
from tests.caches import empty_caches
from tests.factories import AccountFactory, OpportunityFactory

LIST_URL = reverse("tasks:list")
HTMX = {"HX-Request": "true"}


def a_task(account, *, days=0, assignee=None, title="Call about seats", **kwargs) -> Task:
    return task_create(
        account=account,
        assignee=assignee or account.owner,
        title=title,
        due_on=timezone.localdate() + dt.timedelta(days=days),
        at=timezone.now(),
        **kwargs,
    )


def group_titles(response, key: str) -> list[str]:
    [group] = [g for g in response.context["board"].groups if g.key == key]
    return [row.task.title for row in group.rows]


def complete_url(task) -> str:
    return reverse("tasks:complete", args=[task.pk])


def test_it_lists_a_csms_tasks_overdue_first_then_today_then_upcoming(csm_client, account):
    a_task(account, days=2, title="Send the quote")
    a_task(account, days=-3, title="Chase the invoice")
    a_task(account, title="Call the CFO")

    response = csm_client.get(LIST_URL)

    assert response.status_code == 200
    assert group_titles(response, "overdue") == ["Chase the invoice"]
    assert group_titles(response, "today") == ["Call the CFO"]
    assert group_titles(response, "upcoming") == ["Send the quote"]
    html = response.content.decode()
    assert "3 days overdue" in html and "in 2 days" in html
    assert f'href="/accounts/{account.pk}/#tasks">{account.name}</a>' in html


def test_it_shows_the_source_and_the_opportunity_of_a_task_from_a_play(csm_client, account):
    opportunity = OpportunityFactory(account=account)
    a_task(account, source=Task.Source.PLAY, opportunity_id=opportunity.pk)

    html = csm_client.get(LIST_URL).content.decode()

    assert "Play step" in html
    assert f'href="/accounts/{account.pk}/#opportunity-{opportunity.pk}">Opportunity #{opportunity.pk}</a>' in html


def test_it_names_whom_a_task_on_her_account_is_for_when_it_is_not_her(csm_client, account, manager):
    a_task(account, title="Send the quote", assignee=manager)
    a_task(account, title="Call the CFO")

    html = csm_client.get(LIST_URL).content.decode()

    assert html.count('class="cell-sub task-assignee"') == 1
    assert f"For {manager.get_full_name()}, on your account" in html


def test_it_shows_an_empty_list_with_words_for_each_group(csm_client):
    html = csm_client.get(LIST_URL).content.decode()

    assert "Nothing overdue." in html and "Nothing due today." in html and "Nothing planned." in html


def test_it_lets_a_manager_pick_one_csm(manager_client, csm, other_csm, account):
    a_task(account, title="Casey's")
    a_task(AccountFactory(owner=other_csm), title="Olive's")

    assert sorted(group_titles(manager_client.get(LIST_URL), "today")) == ["Casey's", "Olive's"]
    assert group_titles(manager_client.get(LIST_URL, {"csm": other_csm.pk}), "today") == ["Olive's"]


def test_it_ignores_a_csm_filter_sent_by_a_csm(csm_client, other_csm, account):
    a_task(account, title="Mine")
    a_task(AccountFactory(owner=other_csm), title="Olive's")

    assert group_titles(csm_client.get(LIST_URL, {"csm": other_csm.pk}), "today") == ["Mine"]


def test_it_narrows_the_list_to_one_account_and_refuses_another_csms(csm_client, csm, other_csm, account):
    a_task(account, title="Acme's")
    a_task(AccountFactory(owner=csm), title="Another account's")
    olives = AccountFactory(owner=other_csm)

    assert group_titles(csm_client.get(LIST_URL, {"account": account.pk}), "today") == ["Acme's"]
    assert csm_client.get(LIST_URL, {"account": olives.pk}).status_code == 404


def test_it_answers_htmx_with_the_board_alone(manager_client, account):
    a_task(account)

    response = manager_client.get(LIST_URL, headers=HTMX)

    html = response.content.decode()
    assert html.lstrip().startswith('<div id="board"') and "<html" not in html
    assert "HX-Request" in response["Vary"]


def _list_queries(client) -> int:
    empty_caches()
    with CaptureQueriesContext(connection) as queries:
        assert client.get(LIST_URL).status_code == 200
    return len(queries)


def _tasks_in_every_group(account, csm, count: int) -> None:
    for index in range(count):
        a_task(account, days=(index % 3) - 1, title=f"Task {index}")
        if index % 4 == 0:
            task_complete(task=a_task(account, title=f"Done {index}"), by=csm, at=timezone.now())


@pytest.mark.parametrize("persona", ["csm", "manager"])
def test_it_runs_as_many_queries_for_50_tasks_as_for_5(db, client, csm, account, persona, request):
    client.force_login(request.getfixturevalue(persona))
    _tasks_in_every_group(account, csm, 5)
    few = _list_queries(client)
    _tasks_in_every_group(account, csm, 45)

    assert _list_queries(client) == few


def test_it_stays_within_its_query_budget(csm_client, csm, account, django_assert_max_num_queries):
    _tasks_in_every_group(account, csm, 6)
    # Session, user, role; the counts and the four groups. The bell's count comes from the cache or later.
    with django_assert_max_num_queries(8):
        csm_client.get(LIST_URL)


# --- Completing a task ------------------------------------------------------------------------------------------


def test_it_completes_a_task_with_one_htmx_click_and_answers_with_the_row(csm_client, csm, account):
    task = a_task(account, title="Call the CFO")

    response = csm_client.post(complete_url(task), headers=HTMX)

    assert response.status_code == 200
    html = response.content.decode()
    assert html.lstrip().startswith(f'<tr id="task-row-{task.pk}" class="task-row task-row--done">')
    assert "Done: Call the CFO." in html and 'hx-swap-oob="true"' in html
    task.refresh_from_db()
    assert (task.status, task.completed_by) == (Task.Status.DONE, csm)


def test_it_answers_the_account_panel_with_its_own_item(csm_client, account):
    task = a_task(account)

    response = csm_client.post(complete_url(task), {"from": "panel"}, headers=HTMX)

    html = response.content.decode().lstrip()
    assert html.startswith(f'<li id="task-item-{task.pk}" class="task-item task-item--done">')


def test_it_completes_without_javascript_and_goes_back_where_it_was(csm_client, account):
    task = a_task(account)

    response = csm_client.post(complete_url(task), {"next": f"/accounts/{account.pk}/#tasks"})

    assert response.status_code == 302 and response["Location"] == f"/accounts/{account.pk}/#tasks"
    assert Task.objects.get(pk=task.pk).status == Task.Status.DONE


def test_it_never_redirects_off_site_after_completing(csm_client, account):
    response = csm_client.post(complete_url(a_task(account)), {"next": "https://evil.example/"})

    assert response["Location"] == LIST_URL


def test_it_leaves_a_task_done_twice_as_it_was_done_first(csm_client, manager, account):
    task = a_task(account)
    first = timezone.now() - dt.timedelta(hours=1)
    task_complete(task=task, by=manager, at=first)

    response = csm_client.post(complete_url(task), headers=HTMX)

    assert response.status_code == 200 and "was already done" in response.content.decode()
    task.refresh_from_db()
    assert (task.completed_at, task.completed_by) == (first, manager)


@pytest.mark.parametrize("headers", [{}, HTMX], ids=["form", "forged htmx"])
def test_it_hides_another_csms_task_and_changes_nothing(client, other_csm, account, headers):
    task = a_task(account)
    client.force_login(other_csm)

    response = client.post(complete_url(task), headers=headers)

    assert response.status_code == 404
    task.refresh_from_db()
    assert (task.status, task.completed_at, task.completed_by) == (Task.Status.OPEN, None, None)


def test_it_lets_a_manager_complete_any_task(manager_client, manager, account):
    task = a_task(account)

    manager_client.post(complete_url(task), headers=HTMX)

    task.refresh_from_db()
    assert (task.status, task.completed_by) == (Task.Status.DONE, manager)


def test_it_refuses_to_complete_with_a_get(csm_client, account):
    task = a_task(account)

    assert csm_client.get(complete_url(task)).status_code == 405
    assert Task.objects.get(pk=task.pk).status == Task.Status.OPEN


# --- Adding a task on the account page -------------------------------------------------------------------------


def add_url(account) -> str:
    return reverse("tasks:add", args=[account.pk])


def test_it_shows_the_tasks_panel_on_the_account_page(csm_client, account):
    a_task(account, title="Call the CFO")

    html = csm_client.get(account.get_absolute_url()).content.decode()

    assert 'id="tasks"' in html and "Call the CFO" in html and 'name="due_on"' in html
    assert f'action="/tasks/accounts/{account.pk}/"' in html


def test_it_adds_a_task_by_hand_for_the_accounts_csm(client, manager, csm, account):
    client.force_login(manager)
    due = timezone.localdate() + dt.timedelta(days=2)

    response = client.post(add_url(account), {"title": "Book the review", "due_on": due.isoformat(), "detail": "Q3"})

    assert response.status_code == 302 and response["Location"] == f"/accounts/{account.pk}/#tasks"
    task = Task.objects.get()
    assert (task.title, task.due_on, task.detail, task.assignee, task.created_by, task.source) == (
        "Book the review",
        due,
        "Q3",
        csm,
        manager,
        Task.Source.MANUAL,
    )


def test_it_answers_htmx_with_the_fresh_panel(csm_client, account):
    response = csm_client.post(
        add_url(account), {"title": "Book the review", "due_on": timezone.localdate().isoformat()}, headers=HTMX
    )

    html = response.content.decode()
    assert response.status_code == 200
    assert html.lstrip().startswith('<section id="tasks"') and "Book the review" in html
    assert "Task added: Book the review" in html


@pytest.mark.parametrize(
    ("due_on", "error"),
    [
        ("", "This field is required."),
        ("31/02/2026", "Enter a valid date."),
        ("2026-02-31", "Enter a valid date."),
        ("2020-01-01", "Pick today or a later day."),
    ],
    ids=["missing", "not a date", "no such day", "in the past"],
)
@pytest.mark.parametrize("headers", [{}, HTMX], ids=["form", "htmx"])
def test_it_refuses_a_bad_due_date_naming_the_field_and_stores_nothing(csm_client, account, due_on, error, headers):
    response = csm_client.post(add_url(account), {"title": "Book the review", "due_on": due_on}, headers=headers)

    assert response.status_code == 422
    assert response.context["task_form"].errors == {"due_on": [error]}
    assert error in response.content.decode()
    assert not Task.objects.exists()


def test_it_refuses_a_blank_title(csm_client, account):
    response = csm_client.post(add_url(account), {"title": "   ", "due_on": timezone.localdate().isoformat()})

    assert response.status_code == 422 and "title" in response.context["task_form"].errors
    assert not Task.objects.exists()


def test_it_refuses_a_task_on_another_csms_account(client, other_csm, account):
    client.force_login(other_csm)

    response = client.post(add_url(account), {"title": "Sneaky", "due_on": timezone.localdate().isoformat()})

    assert response.status_code == 404 and not Task.objects.exists()


def test_it_puts_tasks_in_the_account_timeline(csm_client, csm, account):
    task = a_task(account, title="Call the CFO")
    task_complete(task=task, by=csm, at=timezone.now())

    html = csm_client.get(reverse("opportunities:timeline", args=[account.pk])).content.decode()

    assert "Task: Call the CFO" in html and "Task done: Call the CFO" in html


# --- The queue's badge -------------------------------------------------------------------------------------------


def test_it_shows_the_tasks_due_on_each_queue_row(csm_client, account):
    OpportunityFactory(account=account)
    a_task(account, days=-1)
    a_task(account)
    a_task(account, days=1)

    html = csm_client.get(reverse("opportunities:queue")).content.decode()

    assert f'href="/tasks/?account={account.pk}"' in html and "2 tasks due" in html
