"""The home page of each role, the account list and the account page."""

from __future__ import annotations

from django.conf import settings
from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_not_required
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, render
from django.urls import NoReverseMatch, reverse
from django.utils import timezone
from django.utils.cache import patch_vary_headers
from django.views.decorators.http import require_GET

from accounts import selectors
from accounts.filters import AccountFilter
from accounts.roles import Role, is_manager_or_admin, role_of

ACCOUNTS_PER_PAGE = 25
# The users `seed_demo` creates, offered as one-click logins while DEBUG is on.
DEMO_LOGINS = [
    ("csm1", Role.CSM),
    ("csm2", Role.CSM),
    ("csm3", Role.CSM),
    ("csm4", Role.CSM),
    ("manager", Role.MANAGER),
    ("admin", Role.ADMIN),
]
# Admin pages linked from the admin's home, most used first; the admin index closes the list.
ADMIN_LINKS = [
    ("admin:accounts_plan_changelist", "Plans", "Tiers, prices, limits and features"),
    ("admin:accounts_metric_changelist", "Metrics", "What usage is measured, and in which unit"),
    ("admin:playbooks_rule_changelist", "Rules", "Thresholds and rules that flag upsell candidates"),
    ("admin:playbooks_play_changelist", "Plays", "Email templates, in-app prompts and trial offers"),
    ("admin:auth_user_changelist", "Users", "CSMs, managers and admins"),
    ("admin:index", "Everything else", "The full administration site"),
]


def _admin_links() -> list[dict]:
    """The ADMIN_LINKS whose admin pages exist (a model may not be registered in the admin)."""
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
        context["catalogue"] = selectors.plan_catalogue()
        context["admin_links"] = _admin_links()
    elif role == Role.MANAGER:
        context["totals"] = selectors.organisation_totals()
        context["stages"] = selectors.open_opportunities_per_stage()
        context["owners"] = selectors.accounts_per_owner()
    elif role == Role.CSM:
        context["book"] = selectors.csm_book_totals(user=request.user)
        context["near_limit"] = list(selectors.near_limit_accounts(user=request.user))
        context["near_limit_count"] = selectors.near_limit_account_count(user=request.user)
        context["opportunities"] = list(selectors.top_open_opportunities(user=request.user))
        context["open_opportunity_count"] = selectors.open_opportunity_count(user=request.user)
    return render(request, "home.html", context)


@require_GET
def account_list(request: HttpRequest) -> HttpResponse:
    """The accounts the user may see, filtered, sorted and paginated; HTMX gets the results partial."""
    is_manager = is_manager_or_admin(request.user)
    filterset = AccountFilter(request.GET or None, queryset=selectors.account_list(user=request.user), request=request)
    allowed_sorts = None if is_manager else set(selectors.ACCOUNT_SORTS) - {"owner"}
    sort_key, descending = selectors.parse_sort(request.GET.get("sort"), allowed=allowed_sorts)
    accounts = selectors.account_list_sorted(filterset.qs, key=sort_key, descending=descending)
    page = Paginator(accounts, ACCOUNTS_PER_PAGE).get_page(request.GET.get("page"))
    metrics = selectors.limit_metrics()
    rows = [(account, selectors.usage_cells(account, metrics)) for account in page.object_list]
    context = {
        "filter": filterset,
        "page": page,
        "rows": rows,
        "metrics": metrics,
        "sort_key": sort_key,
        "sort_descending": descending,
        "sort_value": f"-{sort_key}" if descending else sort_key,
        "show_owner": is_manager,
    }
    # htmx asks for a whole page when it restores history it no longer has cached.
    partial = request.htmx and not request.htmx.history_restore_request
    template = "accounts/list.html#results" if partial else "accounts/list.html"
    response = render(request, template, context)
    patch_vary_headers(response, ["HX-Request"])
    return response


@require_GET
def account_detail(request: HttpRequest, pk: int) -> HttpResponse:
    """One account: who they are, usage against limits with trends, MRR history and opportunities."""
    account = get_object_or_404(selectors.account_detail(user=request.user), pk=pk)
    metrics = selectors.limit_metrics()
    today = timezone.localdate()
    series = selectors.account_usage_series(account, metrics, until=today)
    context = {
        "account": account,
        "usage": series,
        "has_usage": any(item.indicator or item.values for item in series),
        "usage_chart_data": [item.as_chart_data() for item in series],
        "movements": account.movement_list,
        "mrr_chart_data": selectors.mrr_history_chart_data(account.movement_list, until=today),
        "opportunities": account.opportunity_list,
    }
    return render(request, "accounts/detail.html", context)


class LoginView(auth_views.LoginView):
    redirect_authenticated_user = True

    def get_context_data(self, **kwargs) -> dict:
        context = super().get_context_data(**kwargs)
        # Whoever tries the demo signs in with one click; production (DEBUG off) never shows the password.
        if settings.DEBUG:
            context["demo_logins"] = DEMO_LOGINS
            context["demo_password"] = settings.DEMO_PASSWORD
        return context


login_view = login_not_required(LoginView.as_view())
