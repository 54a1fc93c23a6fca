"""A user's work: their tasks (the list, completing one, adding one on an account), the notification centre
with its bell, and their notification choices."""

from __future__ import annotations

import datetime as dt

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone
from django.utils.cache import patch_vary_headers
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from accounts import work_selectors as selectors
from accounts import work_services as services
from accounts.models import Account, Task
from accounts.roles import is_admin, is_manager_or_admin
from accounts.work_forms import NotificationSettingsForm, TaskFilterForm, TaskForm

NOTIFICATIONS_PER_PAGE = 25
BELL_PANEL_ID = "bell-panel"
BELL_COUNT_ID = "bell-count"
BELL_LIMIT = 6


def _with_messages(request: HttpRequest, html: str) -> str:
    return html + render_to_string("partials/messages.html", {"oob": True}, request=request)


def _safe_next(request: HttpRequest, default: str) -> str:
    """The `next` the form sent when it points inside the app, else `default`."""
    back = request.POST.get("next", "")
    if back and url_has_allowed_host_and_scheme(back, allowed_hosts={request.get_host()}, require_https=False):
        return back
    return default


# --- Tasks ---------------------------------------------------------------------------------------------------


@require_GET
def task_list(request: HttpRequest) -> HttpResponse:
    """My tasks, overdue first, then due today, then upcoming, and those done lately (collapsed). A manager
    sees everyone's, or one CSM's; `?account=` narrows the list to one account."""
    today = timezone.localdate()
    manager = is_manager_or_admin(request.user)
    form = TaskFilterForm(request.GET or None, manager=manager)
    csm_id = form.csm_id() if form.is_bound else None
    account_id = form.account_id() if form.is_bound else None
    account = None
    if account_id is not None:
        account = get_object_or_404(Account.objects.visible_to(request.user).only("pk", "name"), pk=account_id)
    board = selectors.task_board(user=request.user, today=today, csm_id=csm_id, account_id=account_id)
    context = {
        "board": board,
        "form": form,
        "manager": manager,
        "filtered_account": account,
        "today": today,
        "show_assignee": manager,
    }
    partial = request.htmx and not request.htmx.history_restore_request
    response = render(request, "work/tasks.html#board" if partial else "work/tasks.html", context)
    patch_vary_headers(response, ["HX-Request"])
    return response


def _task_row_response(request: HttpRequest, task: Task, *, status: int = 200) -> HttpResponse:
    """The fresh row, where it was clicked: the task list's table row or the account panel's item."""
    today = timezone.localdate()
    [row] = selectors.task_rows([task], today=today)
    template = "work/account_tasks.html#task" if request.POST.get("from") == "panel" else "work/tasks.html#row"
    context = {"row": row, "today": today, "show_assignee": is_manager_or_admin(request.user)}
    html = render_to_string(template, context, request=request)
    return HttpResponse(_with_messages(request, html), status=status)


@require_POST
def task_complete(request: HttpRequest, pk: int) -> HttpResponse:
    """Mark a task done, once: a second click (or someone else's) leaves the first completion standing."""
    task = get_object_or_404(selectors.task_for(user=request.user, pk=pk))
    if task.status == Task.Status.DONE:
        messages.info(request, f"“{task.title}” was already done.")
    else:
        services.task_complete(task=task, by=request.user, at=timezone.now())
        messages.success(request, f"Done: {task.title}.")
    if not request.htmx:
        return redirect(_safe_next(request, reverse("tasks:list")))
    return _task_row_response(request, task)


def _panel_html(request: HttpRequest, account: Account, *, today: dt.date, form: TaskForm | None = None) -> str:
    context = {
        "account": account,
        "account_tasks": selectors.account_tasks(account_id=account.pk, today=today),
        "task_form": form or TaskForm(today=today, initial={"due_on": today}),
        "today": today,
    }
    return render_to_string("work/account_tasks.html#panel", context, request=request)


@require_POST
def task_add(request: HttpRequest, pk: int) -> HttpResponse:
    """Add a task by hand to an account one may see; it goes to the account's CSM (to oneself when the
    account has none)."""
    account = get_object_or_404(Account.objects.visible_to(request.user).select_related("owner"), pk=pk)
    today = timezone.localdate()
    form = TaskForm(request.POST, today=today)
    if not form.is_valid():
        messages.error(request, "Please check the highlighted fields.")
        if request.htmx:
            return HttpResponse(
                _with_messages(request, _panel_html(request, account, today=today, form=form)), status=422
            )
        context = {"account": account, "task_form": form, "today": today}
        return render(request, "work/task_form.html", context, status=422)
    data = form.cleaned_data
    task = services.task_create(
        account=account,
        assignee=account.owner or request.user,
        title=data["title"],
        due_on=data["due_on"],
        detail=data["detail"],
        at=timezone.now(),
        by=request.user,
    )
    messages.success(request, f"Task added: {task.title}, due {task.due_on:%b %-d}.")
    if not request.htmx:
        return redirect(account.get_absolute_url() + "#tasks")
    return HttpResponse(_with_messages(request, _panel_html(request, account, today=today)))


# --- Notifications -------------------------------------------------------------------------------------------


def _bell_oob(request: HttpRequest) -> str:
    count = selectors.unread_count(user=request.user)
    return render_to_string(
        "work/bell.html#count", {"unread": count, "unread_known": True, "oob": True}, request=request
    )


@require_GET
def notification_list(request: HttpRequest) -> HttpResponse:
    """The notification centre: newest first, unread ones highlighted; `?unread=1` shows only those. The
    bell's menu asks for the latest few (an htmx request aimed at its panel)."""
    if request.htmx and request.htmx.target == BELL_COUNT_ID:
        context = {"unread": selectors.unread_count(user=request.user), "unread_known": True}
        response = render(request, "work/bell.html#count", context)
        patch_vary_headers(response, ["HX-Request"])
        return response
    if request.htmx and request.htmx.target == BELL_PANEL_ID:
        context = {"notifications": selectors.latest_notifications(user=request.user, limit=BELL_LIMIT)}
        response = render(request, "work/notifications.html#bell-list", context)
        patch_vary_headers(response, ["HX-Request"])
        return response
    unread_only = request.GET.get("unread") == "1"
    page = selectors.notification_page(
        user=request.user, number=request.GET.get("page"), per_page=NOTIFICATIONS_PER_PAGE, unread_only=unread_only
    )
    context = {"page": page, "unread_only": unread_only, "unread": selectors.unread_count(user=request.user)}
    partial = request.htmx and not request.htmx.history_restore_request
    response = render(request, "work/notifications.html#results" if partial else "work/notifications.html", context)
    patch_vary_headers(response, ["HX-Request"])
    return response


@require_POST
def notification_read(request: HttpRequest, pk: int) -> HttpResponse:
    """Mark one of my notifications read; htmx gets the row again and the bell's new count."""
    notification = get_object_or_404(selectors.notification_for(user=request.user, pk=pk))
    services.notification_read(notification=notification, at=timezone.now())
    if not request.htmx:
        return redirect(_safe_next(request, reverse("notifications:list")))
    html = render_to_string("work/notifications.html#item", {"item": notification}, request=request)
    return HttpResponse(html + _bell_oob(request))


@require_POST
def notifications_read_all(request: HttpRequest) -> HttpResponse:
    count = services.notifications_read_all(recipient=request.user, at=timezone.now())
    if count:
        messages.success(request, f"{count} notification{'s' if count != 1 else ''} marked read.")
    else:
        messages.info(request, "Nothing was unread.")
    return redirect(_safe_next(request, reverse("notifications:list")))


@require_http_methods(["GET", "POST"])
def notification_settings(request: HttpRequest) -> HttpResponse:
    """Which kinds reach my notification centre, and whether I get the daily digest by email."""
    setting = selectors.notification_setting_of(request.user)
    admin = is_admin(request.user)
    if request.method == "POST":
        form = NotificationSettingsForm(request.POST, admin=admin)
        if form.is_valid():
            services.notification_setting_save(
                user=request.user,
                muted_kinds=form.muted_kinds(list(setting.muted_kinds or ())),
                daily_digest=form.cleaned_data["daily_digest"],
            )
            messages.success(request, "Notification settings saved.")
            return redirect(reverse("notifications:settings"))
        messages.error(request, "Please check the highlighted fields.")
        status = 422
    else:
        form = NotificationSettingsForm(initial=NotificationSettingsForm.initial_for(setting), admin=admin)
        status = 200
    return render(request, "work/settings.html", {"form": form, "setting": setting}, status=status)
