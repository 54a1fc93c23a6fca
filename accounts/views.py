"""The account list and the login page (home and the account page live in opportunities.views)."""

from __future__ import annotations

from django.conf import settings
from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_not_required
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
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
    ("sales1", Role.SALES),
    ("manager", Role.MANAGER),
    ("admin", Role.ADMIN),
]


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
        "is_sales": role_of(request.user) == Role.SALES,
        "csms": selectors.csm_choices() if is_manager else [],
    }
    # htmx asks for a whole page when it restores history it no longer has cached.
    partial = request.htmx and not request.htmx.history_restore_request
    template = "accounts/list.html#results" if partial else "accounts/list.html"
    response = render(request, template, context)
    patch_vary_headers(response, ["HX-Request"])
    return response


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
