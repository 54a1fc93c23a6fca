"""The screens where accounts meet their opportunities: each role's home, the CSM's queue, the account page
and the forms that work an opportunity from Identify to Close."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from decimal import Decimal, InvalidOperation

from django.contrib import messages
from django.core.cache import cache
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse
from django.middleware.csrf import get_token
from django.shortcuts import get_object_or_404, redirect, render
from django.template.loader import render_to_string
from django.urls import NoReverseMatch, reverse
from django.utils import timezone
from django.utils.cache import patch_vary_headers
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_GET, require_POST

from accounts import reference, work_selectors
from accounts import selectors as account_selectors
from accounts.models import Account
from accounts.roles import Role, is_manager_or_admin, role_of
from accounts.templatetags.account_format import money
from accounts.work_forms import TaskForm
from opportunities import collaboration, emails, selectors, services
from opportunities.filters import QueueFilter
from opportunities.forms import (
    DEFAULT_TRIAL_DAYS,
    AdvanceForm,
    AssignForm,
    CloseForm,
    CollaboratorAddForm,
    EmailForm,
    NoteForm,
    PresentForm,
    QualifyForm,
    ReassignForm,
    ReopenForm,
    SnoozeForm,
    VersionedForm,
    yes_no_initial,
)
from opportunities.models import Opportunity, Outcome, Stage
from opportunities.queue_markup import queue_row_html
from opportunities.reassignment import ReassignmentRefused
from opportunities.reassignment import accounts_reassign as accounts_reassign_service
from opportunities.roi import RoiInputs, roi_calculate
from playbooks.experiment_services import experiment_arm, play_content_for
from playbooks.sequence_views import account_plays_context

QUEUE_PER_PAGE = 25
LOCKED_FEATURE_DAYS = 30
# Admin pages linked from the admin's home, most used first; the admin index closes the list.
ADMIN_LINKS = [
    ("settings:plans", "Plans", "Tiers, prices, limits and features, previewed as a pricing page"),
    ("settings:rules", "Rules", "Thresholds that flag upsell candidates, with a preview and a backtest"),
    ("settings:plays", "Playbooks", "Email templates, in-app prompts, trial offers and pitch-fatigue caps"),
    ("settings:experiments", "A/B tests", "Variants of a play against a control group"),
    ("settings:audit", "Audit log", "Who changed which setting, when, from what to what"),
    ("admin:auth_user_changelist", "Users", "CSMs, managers and admins"),
]


def _admin_links() -> list[dict]:
    """The ADMIN_LINKS whose pages exist (a model may not be registered in the Django admin)."""
    links = []
    for name, title, text in ADMIN_LINKS:
        try:
            links.append({"url": reverse(name), "title": title, "text": text})
        except NoReverseMatch:
            continue
    return links


@require_GET
def home(request: HttpRequest) -> HttpResponse:
    """What each role starts the day with: a CSM's book, a manager's pipeline, an admin's catalogue."""
    role = role_of(request.user)
    context: dict = {"role": role}
    if role == Role.ADMIN:
        context["catalogue"] = account_selectors.plan_catalogue()
        context["admin_links"] = _admin_links()
    elif role == Role.MANAGER:
        context["totals"] = account_selectors.organisation_totals()
        context["stages"] = selectors.open_opportunities_per_stage()
        context["owners"] = account_selectors.accounts_per_owner()
    elif role == Role.CSM:
        context["book"] = account_selectors.csm_book_totals(user=request.user)
        context["near_limit"] = list(account_selectors.near_limit_accounts(user=request.user))
        context["near_limit_count"] = account_selectors.near_limit_account_count(user=request.user)
        context["opportunities"] = list(selectors.top_open_opportunities(user=request.user))
        context["open_opportunity_count"] = selectors.open_opportunity_count(user=request.user)
    elif role == Role.SALES:
        # An account executive's opportunities are those CSMs brought them onto (Opportunity.visible_to).
        context["opportunities"] = list(selectors.top_open_opportunities(user=request.user))
        context["open_opportunity_count"] = selectors.open_opportunity_count(user=request.user)
    return render(request, "home.html", context)


# --- The queue -------------------------------------------------------------------------------------------


class _RowUrls:
    """The URLs of queue rows, each name reversed once and every row's pk filled in: reverse() costs about
    as much as the rest of a row."""

    MARKER = 987654321

    def __init__(self):
        self.patterns = {
            name: reverse(name, args=[self.MARKER]).replace(str(self.MARKER), "{}")
            for name in ("opportunities:advance", "opportunities:actions", "opportunities:reopen", "accounts:detail")
        }

    def __call__(self, name: str, pk: int) -> str:
        return self.patterns[name].format(pk)


def _queue_columns(user) -> tuple[bool, bool]:
    """(show the owner column, mark the rows shared with `user`): a manager sees everyone's work and an
    account executive (Sales) works other CSMs' opportunities, so both see whose each is; a CSM's queue
    marks the opportunities they were brought onto as a collaborator."""
    role = role_of(user)
    return role in (Role.MANAGER, Role.ADMIN, Role.SALES), role == Role.CSM


def _queue_rows(values: list[dict], *, today: dt.date, request: HttpRequest, show_owner: bool) -> list[dict]:
    """What each queue row shows, from `selectors.queue_rows`, worked out here once per row rather than by
    the template: at 25 to 50 rows a page, every template lookup, filter and printed number (the engine
    localizes each one) adds up to most of the page's time. Numbers therefore arrive as text, and each row's
    markup as `html` (opportunities/queue_markup.py)."""
    csrf_token = get_token(request)
    url = _RowUrls()
    tasks_url = reverse("tasks:list")
    rows = []
    for value in values:
        pk, stage, outcome = value["pk"], Stage(value["stage"]), value["outcome"]
        days = max((today - timezone.localdate(value["stage_entered_at"])).days, 0)
        back_from_snooze = outcome == Outcome.SNOOZED and value["snoozed_until"] <= today
        next_stage = services.NEXT_STAGE.get(stage) if outcome == Outcome.OPEN else None
        if back_from_snooze:
            badge = ("badge--outcome-snoozed", "Back from snooze", f"Snoozed until {value['snoozed_until']:%b %-d}")
        elif outcome == Outcome.SNOOZED:
            badge = ("badge--outcome-snoozed", "Snoozed", f"Back in the queue on {value['snoozed_until']:%b %-d}")
        elif outcome != Outcome.OPEN:
            badge = (f"badge--outcome-{outcome}", Outcome(outcome).label, "")
        else:
            badge = (f"badge--stage-{stage}", stage.label, "")
        plan_name = value["account__plan__name"]
        next_step_on = value["next_step_on"]
        status = value["account__status"]
        row = {
            "dom_id": f"queue-row-{pk}",
            "score": str(value["score"]),
            "account_name": value["account__name"],
            "account_url": f"{url('accounts:detail', value['account_id'])}#opportunity-{pk}",
            "segment": " · ".join(part for part in (value["account__industry"], value["account__region"]) if part),
            # A trial or a churned account says so beside its segment, as on the account list: the MRR of a
            # trial is $0.00 for a reason.
            "status": status,
            "status_label": "" if status == Account.Status.ACTIVE else STATUS_LABELS.get(status, status),
            "plan_name": plan_name or "No plan",
            # As the plan_class filter has it: plans keep their colour wherever they show.
            "plan_class": f"badge--tier{min(value['account__plan__tier_rank'], 4)}" if plan_name else "badge--none",
            "mrr": money(value["account__mrr"], value["account__currency"]),
            "why_now": value["top_reason"] or "—",
            "badge_class": badge[0],
            "badge_label": badge[1],
            "badge_title": badge[2],
            "days": f"{days} d",
            "next_step_iso": next_step_on.isoformat() if next_step_on else "",
            "next_step": f"{next_step_on:%b %-d}" if next_step_on else "",
            "overdue": next_step_on is not None and next_step_on < today,
            "owner_name": _owner_name(value) if "owner_id" in value else "",
            "shared": value.get("shared", False),
            "version": str(value["version"]),
            "open": outcome == Outcome.OPEN,
            "back_from_snooze": back_from_snooze,
            # A row answering a quick action may have left the queue (snoozed, say): it stays, dimmed.
            "in_queue": outcome == Outcome.OPEN or back_from_snooze,
            "next_stage": next_stage.value if next_stage else "",
            "next_stage_label": next_stage.label if next_stage else "",
            "advance_url": url("opportunities:advance", pk),
            "actions_url": url("opportunities:actions", pk),
            "reopen_url": url("opportunities:reopen", pk),
            "tasks_due": _tasks_due_label(value["tasks_due"]),
            "tasks_url": f"{tasks_url}?account={value['account_id']}",
        }
        row["html"] = queue_row_html(row, csrf_token=csrf_token, show_owner=show_owner)
        rows.append(row)
    return rows


STATUS_LABELS = dict(Account.Status.choices)


def _tasks_due_label(count: int) -> str:
    return "" if not count else f"{count} task{'s' if count != 1 else ''} due"


def _owner_name(value: dict) -> str:
    if value["owner_id"] is None:
        return "Unassigned"
    full = f"{value['owner__first_name']} {value['owner__last_name']}".strip()
    return full or value["owner__username"]


@require_GET
def queue(request: HttpRequest) -> HttpResponse:
    """The open opportunities a CSM works (every one for a manager), ranked by score; HTMX gets the results."""
    today = timezone.localdate()
    show_owner, mark_shared = _queue_columns(request.user)
    filterset = QueueFilter(
        request.GET or None, queryset=selectors.queue(user=request.user, today=today), request=request
    )
    allowed = None if show_owner else set(selectors.QUEUE_SORTS) - {"owner"}
    sort_key, descending = selectors.parse_queue_sort(request.GET.get("sort"), allowed=allowed)
    page = selectors.queue_page(
        selectors.queue_sorted(filterset.qs, key=sort_key, descending=descending),
        number=request.GET.get("page"),
        per_page=QUEUE_PER_PAGE,
        today=today,
        with_owner=show_owner,
        shared_with=request.user if mark_shared else None,
    )
    rows = _queue_rows(page.object_list, today=today, request=request, show_owner=show_owner)
    context = {
        "today": today,
        "show_owner": show_owner,
        "filter": filterset,
        "page": page,
        "rows": rows,
        "sort_key": sort_key,
        "sort_descending": descending,
        "sort_value": f"-{sort_key}" if descending else sort_key,
    }
    partial = request.htmx and not request.htmx.history_restore_request
    response = render(request, "opportunities/queue.html#results" if partial else "opportunities/queue.html", context)
    patch_vary_headers(response, ["HX-Request"])
    return response


@require_GET
def queue_next(request: HttpRequest) -> HttpResponse:
    """The account of the opportunity that follows ?after= in the queue (highest score first), so a CSM goes
    from one account to the next without going back to the list; the queue itself after the last one."""
    try:
        after_pk = int(request.GET.get("after", ""))
    except ValueError:
        return HttpResponse("after: the number of an opportunity is expected.", status=400, content_type="text/plain")
    # Only an opportunity the user may see can serve as the cursor: the score of another's stays unknown.
    after = get_object_or_404(selectors.queue_cursor(user=request.user, pk=after_pk))
    following = selectors.next_in_queue(user=request.user, after=after, today=timezone.localdate())
    if following is None:
        messages.info(request, "That was the last opportunity in your queue.")
        return redirect("opportunities:queue")
    return redirect("accounts:detail", following.account_id)


@require_GET
def opportunity_actions(request: HttpRequest, pk: int) -> HttpResponse:
    """A queue row's further actions: snooze until a date, and assign for managers. htmx loads them into the
    row's menu when it opens; without JavaScript they are a page of their own whose forms lead back to the
    queue. Only the row asked for carries these forms, which keeps the queue page small."""
    opportunity = _opportunity_or_404(request, pk)
    today = timezone.localdate()
    manager = is_manager_or_admin(request.user)
    context = {
        "opportunity": opportunity,
        "show_owner": manager,
        "owners": list(AssignForm().fields["owner"].queryset) if manager else [],
        "snooze_default": today + dt.timedelta(days=DEFAULT_TRIAL_DAYS),
        "snooze_earliest": today + dt.timedelta(days=1),
        "in_row": bool(request.htmx),
    }
    template = "opportunities/actions.html#menu" if request.htmx else "opportunities/actions.html"
    response = render(request, template, context)
    patch_vary_headers(response, ["HX-Request"])
    return response


# --- The account page ------------------------------------------------------------------------------------


def _current_opportunity(opportunities: list[Opportunity], *, today: dt.date) -> Opportunity | None:
    """The opportunity the panel works: the open one, else a snoozed one whose day has come."""
    for opportunity in opportunities:
        if opportunity.outcome == Outcome.OPEN:
            return opportunity
    for opportunity in opportunities:
        if opportunity.outcome == Outcome.SNOOZED and opportunity.snoozed_until and opportunity.snoozed_until <= today:
            return opportunity
    return None


def _panel_forms(request: HttpRequest, opportunity: Opportunity, *, today: dt.date) -> dict:
    """Unbound forms for the opportunity's stage, drawn at its current version."""
    version = {"version": opportunity.version}
    account = opportunity.account
    forms: dict = {"advance_form": AdvanceForm(initial=version), "snooze_form": SnoozeForm(initial=version)}
    forms["close_form"] = CloseForm(
        initial={
            **version,
            "outcome": Outcome.WON,
            "plan": opportunity.target_plan_id,
            "mrr_delta": opportunity.expected_mrr_delta,
            "snoozed_until": today + dt.timedelta(days=30),
        },
        today=today,
    )
    if opportunity.stage == Stage.QUALIFY:
        answers = opportunity.qualification or {}
        forms["qualify_form"] = QualifyForm(
            initial={
                **version,
                **answers,
                "need_confirmed": yes_no_initial(answers.get("need_confirmed")),
                "budget_confirmed": yes_no_initial(answers.get("budget_confirmed")),
                "next_step_on": opportunity.next_step_on,
            }
        )
    if opportunity.stage in (Stage.PRESENT, Stage.CLOSE):
        roi_inputs = opportunity.roi_inputs or {}
        suggested = opportunity.target_plan_id or (opportunity.play.target_plan_id if opportunity.play else None)
        forms["present_form"] = PresentForm(
            initial={
                **version,
                "target_plan": suggested,
                "value_proposition": roi_inputs.get("value_proposition", ""),
                "hours_saved_per_month": roi_inputs.get("hours_saved_per_month", 0),
                "hourly_cost": roi_inputs.get("hourly_cost", 0),
                "avoided_per_month": roi_inputs.get("avoided_per_month", 0),
                "trial": bool(opportunity.trial_ends_on),
                **({"trial_ends_on": opportunity.trial_ends_on} if opportunity.trial_ends_on else {}),
                "next_step_on": opportunity.next_step_on,
            },
            current_plan=account.plan,
            today=today,
            trial_days=_offered_trial_days(opportunity),
        )
        if opportunity.target_plan_id:
            subject, body = emails.draft(opportunity, sender=request.user)
            # Accounts carry no contact address: the CSM types the customer's.
            forms["email_form"] = EmailForm(initial={**version, "subject": subject, "body": body})
    return forms


def _panel_context(request: HttpRequest, opportunity: Opportunity | None, *, today: dt.date, **bound) -> dict:
    context: dict = {"opportunity": opportunity, "today": today, "note_form": NoteForm()}
    if opportunity is not None:
        context.update(_panel_forms(request, opportunity, today=today))
        # Who works on it besides its owner (templates/opportunities/collaborators.html).
        context.update(collaboration.collaboration_panel(opportunity=opportunity, user=request.user))
        if context["may_manage_collaborators"]:
            initial = {"version": opportunity.version}
            context["collaborator_form"] = CollaboratorAddForm(
                initial=initial, opportunity=opportunity, on_it=context["collaborators"]
            )
        context.update(bound)
        if opportunity.roi_inputs:
            inputs = {
                key: _decimal(opportunity.roi_inputs.get(key))
                for key in ("hours_saved_per_month", "hourly_cost", "avoided_per_month", "price_delta_per_month")
            }
            # ROI inputs saved by other means (imports, the demo) may lack the price delta: take it from the plans.
            if "price_delta_per_month" not in opportunity.roi_inputs and opportunity.target_plan_id:
                current = opportunity.account.plan.monthly_price if opportunity.account.plan_id else 0
                inputs["price_delta_per_month"] = opportunity.target_plan.monthly_price - current
            context["roi"] = roi_calculate(RoiInputs(**inputs))
    return context


def _decimal(value) -> Decimal:
    try:
        return Decimal(str(value)) if value not in (None, "") else Decimal(0)
    except InvalidOperation:
        return Decimal(0)


def _offered_trial_days(opportunity: Opportunity) -> int | None:
    """The trial the play offers this account: its A/B variant's length when the play is being tested."""
    play = opportunity.play
    if play is None:
        return None
    arm = experiment_arm(account=opportunity.account, play=play)
    return play_content_for(play=play, variant=arm[1] if arm else None).trial_days


# How long the account page keeps a section drawn from the last refresh, in seconds: a new refresh changes
# its key anyway, so this only bounds what an unused key takes in the cache.
REFRESHED_SECTION_TTL = 24 * 60 * 60


def _refreshed_key(name: str, account, stamp: dt.datetime | None, today: dt.date) -> str:
    moment = stamp.timestamp() if stamp else 0
    return f"account-page:{name}:{account.pk}:{account.plan_id}:{moment}:{today}:{reference.generation()}"


def _kept_per_refresh(name: str, account, *, today: dt.date, draw: Callable):
    """`draw(stamp)`, kept under the account's last refresh (`stamp`, when it refreshed, or None): the refresh
    writes the account's engagement with the same time as its indicators."""
    engagement = selectors.account_engagement(account)
    stamp = engagement.refreshed_at if engagement else None
    key = _refreshed_key(name, account, stamp, today)
    value = cache.get(key)
    if value is None:
        value = draw(stamp)
        cache.set(key, value, REFRESHED_SECTION_TTL)
    return value


def _usage_section(account, *, today: dt.date) -> str:
    """The usage section's markup (the figures and the projection charts), kept under the account's last
    indicator refresh.

    Everything the section shows comes from that refresh: the indicators themselves, and the snapshots that
    were in when it ran, since new usage, a plan change and the pipeline each refresh the account. Between
    two refreshes it is the same markup, so it is drawn once per refresh instead of on every view: the
    snapshot query and the series, and a quarter of the template.
    """

    def draw(_stamp) -> str:
        account.indicator_list = account_selectors.account_indicators(account)
        series = account_selectors.account_usage_series(account, account_selectors.limit_metrics(), until=today)
        context = {
            "usage": series,
            "has_usage": any(item.indicator or item.values for item in series),
            "usage_span": account_selectors.usage_span(series, until=today),
            "usage_chart_data": [selectors.usage_chart_data(item) for item in series],
        }
        return render_to_string("accounts/detail.html#usage", context)

    return _kept_per_refresh("usage", account, today=today, draw=draw)


def _locked_features(account, *, today: dt.date) -> list[dict]:
    """Locked-feature hits per feature over the LOCKED_FEATURE_DAYS before the last engagement refresh, kept
    under that refresh, whose totals the engagement section shows beside them."""

    def draw(stamp) -> list[dict]:
        since = (stamp or timezone.now()) - dt.timedelta(days=LOCKED_FEATURE_DAYS)
        return selectors.locked_feature_hits(account, since=since)

    return _kept_per_refresh("locked-features", account, today=today, draw=draw)


def _account_context(request: HttpRequest, account, *, today: dt.date, **bound) -> dict:
    metrics = account_selectors.limit_metrics()
    # A collaborator's panel works the opportunities they were brought onto, not any other of the account's.
    workable = selectors.workable_opportunity_ids(account, user=request.user)
    mine = [o for o in account.opportunity_list if workable is None or o.pk in workable]
    opportunity = _current_opportunity(mine, today=today)
    score = selectors.account_score(account)
    suggested = (opportunity.target_plan if opportunity else None) or (score.target_plan if score else None)
    return {
        "account": account,
        "usage_html": _usage_section(account, today=today),
        "movements": account.movement_list,
        "mrr_chart_data": account_selectors.mrr_history_chart_data(account.movement_list, until=today),
        "opportunities": account.opportunity_list,
        "score": score,
        "comparison": selectors.plan_comparison(current=account.plan, suggested=suggested, metrics=metrics),
        "locked_features": _locked_features(account, today=today),
        "engagement": selectors.engagement_trend(account),
        "locked_feature_days": LOCKED_FEATURE_DAYS,
        # The timeline's entries come in a request of their own (account_timeline below).
        "defer_timeline": True,
        "csms": account_selectors.csm_choices() if is_manager_or_admin(request.user) else [],
        # The Tasks panel (templates/work/account_tasks.html).
        "account_tasks": work_selectors.account_tasks(account_id=account.pk, today=today),
        "task_form": TaskForm(today=today, initial={"due_on": today}),
        # The "Plays running" panel (templates/sequences/account_panel.html).
        **account_plays_context(account=account, user=request.user),
        **_panel_context(request, opportunity, today=today, **bound),
    }


def _or_404(account):
    # Another CSM's account does not exist as far as this user is concerned.
    if account is None:
        raise Http404("No such account.")
    return account


def _account_or_404(request: HttpRequest, pk: int):
    """The account as its page reads it (`selectors.account_for_page`)."""
    return _or_404(selectors.account_for_page(user=request.user, pk=pk))


def _account_detail_or_404(request: HttpRequest, pk: int):
    """The account with its plans and MRR movements only (`account_selectors.account_for_detail`)."""
    return _or_404(account_selectors.account_for_detail(user=request.user, pk=pk))


@require_GET
def account_detail(request: HttpRequest, pk: int) -> HttpResponse:
    """One account: usage against limits with projections, the score explained, plans compared, MRR history,
    the timeline, and the panel that works its open opportunity."""
    account = _account_or_404(request, pk)
    return render(request, "accounts/detail.html", _account_context(request, account, today=timezone.localdate()))


# The timeline the account page loads after itself, and the one its own page shows.
TIMELINE_ON_ACCOUNT_PAGE = 50
TIMELINE_ON_ITS_PAGE = 500


def _timeline_filter(account) -> dict:
    """The timeline's filter links: everything, then each kind of TIMELINE_SHOWS."""
    url = reverse("opportunities:timeline", args=[account.pk])
    shows = [(key, label, f"{url}?show={key}") for key, (label, _sources) in selectors.TIMELINE_SHOWS.items()]
    return {"timeline_shows": [("", "Everything", url), *shows]}


@require_GET
def account_timeline(request: HttpRequest, pk: int) -> HttpResponse:
    """The account's timeline, newest first. htmx asks for its latest entries once the account page is up, so
    the dozen queries behind them do not hold the page back; without JavaScript, or from the link under those
    entries, it is a page of its own with the note form and a longer history."""
    account = _account_detail_or_404(request, pk)
    partial = request.htmx and not request.htmx.history_restore_request
    limit = TIMELINE_ON_ACCOUNT_PAGE if partial else TIMELINE_ON_ITS_PAGE
    # What to show (TIMELINE_SHOWS: notes, billing, plays...); anything else shows everything.
    show = request.GET.get("show", "")
    show = show if show in selectors.TIMELINE_SHOWS else ""
    timeline = selectors.account_timeline(account, movements=account.movement_list, limit=limit, show=show)
    url = reverse("opportunities:timeline", args=[account.pk])
    context = {"account": account, "timeline": timeline, "timeline_show": show, **_timeline_filter(account)}
    if partial:
        if len(timeline) == limit:
            context["timeline_more_url"] = f"{url}?show={show}" if show else url
        response = render(request, "accounts/detail.html#timeline-entries", context)
    else:
        open_ones = [o for o in account.opportunities.all() if o.is_open]
        context["opportunity"] = open_ones[0] if len(open_ones) == 1 else None
        context["nav_section"] = "accounts"  # an account's page, wherever its URL lives
        response = render(request, "accounts/timeline.html", context)
    patch_vary_headers(response, ["HX-Request"])
    return response


# --- Working an opportunity ------------------------------------------------------------------------------


def _opportunity_or_404(request: HttpRequest, pk: int) -> Opportunity:
    # Another CSM's opportunity does not exist as far as this user is concerned, forged posts included.
    return get_object_or_404(selectors.opportunity_for(user=request.user, pk=pk))


def _with_messages(request: HttpRequest, html: str) -> str:
    return html + render_to_string("partials/messages.html", {"oob": True}, request=request)


def _panel_response(request: HttpRequest, opportunity: Opportunity, *, status: int = 200, **bound) -> HttpResponse:
    """The fresh panel (and timeline, out of band) for HTMX; without JavaScript, back to the account page."""
    if request.POST.get("from") == "queue":
        return _row_response(request, opportunity, status=status)
    if not request.htmx:
        if status == 200:
            return redirect(opportunity.account.get_absolute_url() + "#work")
        account = _account_or_404(request, opportunity.account_id)
        context = _account_context(request, account, today=timezone.localdate(), **bound)
        return render(request, "accounts/detail.html", context, status=status)
    today = timezone.localdate()
    opportunity = _opportunity_or_404(request, opportunity.pk)
    account = _account_or_404(request, opportunity.account_id)
    context = _panel_context(request, opportunity, today=today, **bound)
    context["account"] = account
    html = render_to_string("accounts/detail.html#work-panel", context, request=request)
    # The timeline and the opportunity list below the panel change with every step: refresh them out of band.
    others = {
        "account": account,
        "opportunity": opportunity,
        "opportunities": account.opportunity_list,
        "timeline": selectors.account_timeline(account, movements=account.movement_list),
        **_timeline_filter(account),
        "oob": True,
    }
    html += render_to_string("accounts/detail.html#timeline", others, request=request)
    html += render_to_string("accounts/detail.html#opportunities", others, request=request)
    return HttpResponse(_with_messages(request, html), status=status)


def _row_response(request: HttpRequest, opportunity: Opportunity, *, status: int = 200) -> HttpResponse:
    """The fresh queue row for HTMX (dimmed once it left the queue); without JavaScript, back to the queue."""
    if not request.htmx:
        return redirect(reverse("opportunities:queue"))
    today = timezone.localdate()
    show_owner, mark_shared = _queue_columns(request.user)
    # The opportunity passed `_opportunity_or_404` before the action; the row is read as the queue reads it.
    shared_with = request.user if mark_shared else None
    values = selectors.queue_rows([opportunity.pk], today=today, with_owner=show_owner, shared_with=shared_with)
    [row] = _queue_rows(values, today=today, request=request, show_owner=show_owner)
    return HttpResponse(_with_messages(request, row["html"]), status=status)


def _run(request: HttpRequest, opportunity: Opportunity, action, *, success: str, **bound) -> HttpResponse:
    """Run one service call; a stale version answers 409 with a fresh panel, a refused step 422."""
    try:
        action()
    except services.Conflict:
        messages.warning(request, "Someone changed this opportunity meanwhile. Here it is as it stands now.")
        return _panel_response(request, opportunity, status=409)
    except services.TransitionNotAllowed as error:
        messages.error(request, str(error))
        return _panel_response(request, opportunity, status=422, **bound)
    messages.success(request, success)
    return _panel_response(request, opportunity)


def _invalid(request: HttpRequest, opportunity: Opportunity, **bound) -> HttpResponse:
    form = next(iter(bound.values()))
    if "version" in form.errors:
        return _panel_response(request, opportunity, status=409)
    messages.error(request, "Please check the highlighted fields.")
    return _panel_response(request, opportunity, status=422, **bound)


def _quick_action(
    request: HttpRequest,
    pk: int,
    form_class: type[VersionedForm],
    *,
    form_name: str,
    run: Callable[..., Opportunity],
    success: Callable[[Opportunity, dict], str],
) -> HttpResponse:
    """The queue's quick actions (and the panel's one-button steps) in one shape: parse the form, make one
    service call at the version the form was drawn at, answer with the fresh row or panel.

    `run(opportunity, data, by=, at=, version=)` calls the service; `success(opportunity, data)` words it.
    """
    opportunity = _opportunity_or_404(request, pk)
    form = form_class(request.POST)
    if not form.is_valid():
        return _invalid(request, opportunity, **{form_name: form})
    data = form.cleaned_data
    return _run(
        request,
        opportunity,
        lambda: run(opportunity, data, by=request.user, at=timezone.now(), version=data["version"]),
        success=success(opportunity, data),
    )


@require_POST
def opportunity_advance(request: HttpRequest, pk: int) -> HttpResponse:
    return _quick_action(
        request,
        pk,
        AdvanceForm,
        form_name="advance_form",
        run=lambda opportunity, data, **common: services.opportunity_advance(
            opportunity=opportunity, to=Stage(data["to"]), **common
        ),
        success=lambda opportunity, data: f"{opportunity.account.name} moved to {Stage(data['to']).label}.",
    )


@require_POST
def opportunity_snooze(request: HttpRequest, pk: int) -> HttpResponse:
    return _quick_action(
        request,
        pk,
        SnoozeForm,
        form_name="snooze_form",
        run=lambda opportunity, data, **common: services.opportunity_snooze(
            opportunity=opportunity, until=data["until"], **common
        ),
        success=lambda opportunity, data: f"{opportunity.account.name} snoozed until {data['until']:%b %-d}.",
    )


@require_POST
def opportunity_reopen(request: HttpRequest, pk: int) -> HttpResponse:
    return _quick_action(
        request,
        pk,
        ReopenForm,
        form_name="reopen_form",
        run=lambda opportunity, data, **common: services.opportunity_reopen(opportunity=opportunity, **common),
        success=lambda opportunity, data: f"{opportunity.account.name} is back in your queue.",
    )


@require_POST
def opportunity_assign(request: HttpRequest, pk: int) -> HttpResponse:
    # Refused before the form: a CSM's forged assignment is an authorization failure (403, logged), not a
    # form error.
    if not is_manager_or_admin(request.user):
        raise PermissionDenied("Only a manager assigns opportunities.")
    return _quick_action(
        request,
        pk,
        AssignForm,
        form_name="assign_form",
        run=lambda opportunity, data, **common: services.opportunity_assign(
            opportunity=opportunity, owner=data["owner"], **common
        ),
        success=lambda opportunity, data: (
            f"{opportunity.account.name} assigned to {data['owner'].get_full_name() or data['owner'].username}."
        ),
    )


@require_POST
def opportunity_qualify(request: HttpRequest, pk: int) -> HttpResponse:
    opportunity = _opportunity_or_404(request, pk)
    form = QualifyForm(request.POST)
    if not form.is_valid():
        return _invalid(request, opportunity, qualify_form=form)
    move_on = request.POST.get("action") == "move_on"
    return _run(
        request,
        opportunity,
        lambda: services.opportunity_qualify(
            opportunity=opportunity,
            answers=form.answers,
            move_on=move_on,
            next_step_on=form.cleaned_data["next_step_on"],
            by=request.user,
            at=timezone.now(),
            version=form.cleaned_data["version"],
        ),
        success="Qualified: on to Present." if move_on else "Qualification saved.",
        qualify_form=form,
    )


@require_POST
def opportunity_present(request: HttpRequest, pk: int) -> HttpResponse:
    opportunity = _opportunity_or_404(request, pk)
    today = timezone.localdate()
    form = PresentForm(
        request.POST,
        current_plan=opportunity.account.plan,
        today=today,
        trial_days=_offered_trial_days(opportunity),
    )
    if not form.is_valid():
        return _invalid(request, opportunity, present_form=form)
    data = form.cleaned_data
    account = opportunity.account
    roi = RoiInputs(
        hours_saved_per_month=data["hours_saved_per_month"],
        hourly_cost=data["hourly_cost"],
        avoided_per_month=data["avoided_per_month"],
        price_delta_per_month=data["target_plan"].monthly_price - (account.plan.monthly_price if account.plan else 0),
    )
    move_on = request.POST.get("action") == "move_on"
    return _run(
        request,
        opportunity,
        lambda: services.opportunity_present(
            opportunity=opportunity,
            target_plan=data["target_plan"],
            value_proposition=data["value_proposition"],
            roi=roi,
            trial_ends_on=data["trial_ends_on"],
            move_on=move_on,
            next_step_on=data["next_step_on"],
            by=request.user,
            at=timezone.now(),
            version=data["version"],
        ),
        success="Presented: on to Close." if move_on else "Presentation saved with its ROI.",
        present_form=form,
    )


@require_POST
def opportunity_email(request: HttpRequest, pk: int) -> HttpResponse:
    """Preview the edited email (nothing is sent), or send it and record it in the timeline."""
    opportunity = _opportunity_or_404(request, pk)
    form = EmailForm(request.POST)
    if not form.is_valid():
        return _invalid(request, opportunity, email_form=form)
    data = form.cleaned_data
    if request.POST.get("action") != "send":
        return _panel_response(request, opportunity, email_form=form, email_preview=data)
    return _run(
        request,
        opportunity,
        lambda: services.opportunity_email_send(
            opportunity=opportunity,
            to=[data["to"]],
            subject=data["subject"],
            body=data["body"],
            by=request.user,
            at=timezone.now(),
            version=data["version"],
        ),
        success=f"Email sent to {data['to']}.",
        email_form=form,
    )


@require_POST
def opportunity_close(request: HttpRequest, pk: int) -> HttpResponse:
    """Close as won (new plan, actual MRR change), lost (a reason) or not now (snoozed until a date)."""
    opportunity = _opportunity_or_404(request, pk)
    form = CloseForm(request.POST, today=timezone.localdate())
    if not form.is_valid():
        return _invalid(request, opportunity, close_form=form)
    data = form.cleaned_data
    common = {"opportunity": opportunity, "by": request.user, "at": timezone.now(), "version": data["version"]}
    name = opportunity.account.name
    if data["outcome"] == Outcome.WON:
        action = lambda: services.opportunity_close_won(plan=data["plan"], mrr_delta=data["mrr_delta"], **common)  # noqa: E731
        success = f"Won: {name} is on {data['plan'].name} now."
    elif data["outcome"] == Outcome.LOST:
        action = lambda: services.opportunity_close_lost(  # noqa: E731
            reason=data["lost_reason"], detail=data["lost_detail"], **common
        )
        success = f"{name} closed as lost."
    else:
        action = lambda: services.opportunity_snooze(until=data["snoozed_until"], **common)  # noqa: E731
        success = f"{name} snoozed until {data['snoozed_until']:%b %-d}."
    return _run(request, opportunity, action, success=success, close_form=form)


@require_POST
def opportunity_open(request: HttpRequest, pk: int) -> HttpResponse:
    """Open an opportunity on an account by hand."""
    account = _account_detail_or_404(request, pk)
    # An account executive sees the account through an opportunity they were brought onto; opening one,
    # which they would own, is the CSM's call.
    if role_of(request.user) == Role.SALES:
        raise PermissionDenied("Only a CSM or a manager opens an opportunity.")
    try:
        opportunity = services.opportunity_open_manually(account=account, by=request.user, at=timezone.now())
    except services.TransitionNotAllowed as error:
        messages.error(request, str(error))
        return redirect(account.get_absolute_url())
    messages.success(request, "Opportunity opened in Identify.")
    return _panel_response(request, opportunity)


@require_POST
def note_add(request: HttpRequest, pk: int) -> HttpResponse:
    """Add a note to the account (about its open opportunity when the form names it)."""
    account = _account_detail_or_404(request, pk)
    form = NoteForm(request.POST)
    if not form.is_valid():
        messages.error(request, "A note needs some text.")
        return redirect(account.get_absolute_url())
    opportunity = None
    if form.cleaned_data["opportunity"]:
        opportunity = _opportunity_or_404(request, form.cleaned_data["opportunity"])
    try:
        services.note_add(
            account=account,
            opportunity=opportunity,
            author=request.user,
            body=form.cleaned_data["body"],
            at=timezone.now(),
        )
    except services.TransitionNotAllowed as error:
        messages.error(request, str(error))
    else:
        messages.success(request, "Note added.")
    if not request.htmx:
        return redirect(account.get_absolute_url() + "#timeline")
    timeline = selectors.account_timeline(account, movements=list(account.movement_list))
    html = render_to_string(
        "accounts/detail.html#timeline",
        {
            "timeline": timeline,
            "account": account,
            "note_form": NoteForm(),
            "opportunity": opportunity,
            **_timeline_filter(account),
        },
        request=request,
    )
    return HttpResponse(_with_messages(request, html))


# --- Reassigning accounts ----------------------------------------------------------------------------------


@require_POST
def accounts_reassign(request: HttpRequest) -> HttpResponse:
    """A manager gives the chosen accounts, with their open opportunities, to another CSM; back to the page
    the form was on (the account list with its filters, or the account page), with a message either way."""
    if not is_manager_or_admin(request.user):
        raise PermissionDenied("Only a manager reassigns accounts.")
    back = request.POST.get("next", "")
    if not url_has_allowed_host_and_scheme(back, allowed_hosts={request.get_host()}, require_https=request.is_secure()):
        back = reverse("accounts:list")
    form = ReassignForm(request.POST)
    if not form.is_valid():
        for errors in form.errors.values():
            for error in errors:
                messages.error(request, error)
        return redirect(back)
    to = form.cleaned_data["to"]
    try:
        moved = accounts_reassign_service(
            account_ids=form.cleaned_data["accounts"], to=to, by=request.user, at=timezone.now()
        )
    except ReassignmentRefused as refusal:
        messages.error(request, str(refusal))
        return redirect(back)
    name = to.get_full_name() or to.get_username()
    if moved.accounts:
        messages.success(
            request,
            f"{moved.accounts} account{'s' if moved.accounts != 1 else ''} and {moved.opportunities} open "
            f"opportunit{'ies' if moved.opportunities != 1 else 'y'} moved to {name}.",
        )
    else:
        messages.info(request, f"Nothing to move: those accounts are {name}'s already.")
    return redirect(back)
