"""The app's URLs plus the two baselines bench/pages.py compares the queue and the account page with.

Both baselines sit behind the same middleware as the app (LoginRequiredMiddleware included), so every
endpoint pays the same session and user lookups.
"""

from django.http import HttpResponse
from django.shortcuts import render
from django.urls import include, path

from opportunities import views as opportunity_views
from opportunities.models import Opportunity, Outcome

BASELINE_ROWS = 50
# The goal compares pages of 50 rows; the queue shows fewer a page, so the bench raises its page size.
opportunity_views.QUEUE_PER_PAGE = BASELINE_ROWS


def bare(request):
    return HttpResponse("ok", content_type="text/plain")


def rows(request):
    """The queue's first page, plainly: one query on the (owner, outcome, score) index, no layout."""
    opportunities = (
        Opportunity.objects.filter(owner=request.user, outcome=Outcome.OPEN)
        .select_related("account__plan")
        .only("score", "reasons", "account__name", "account__mrr", "account__plan__name")
        .order_by("-score", "pk")[:BASELINE_ROWS]
    )
    return render(request, "bench/rows.html", {"opportunities": opportunities})


urlpatterns = [
    path("bench/bare/", bare),
    path("bench/rows/", rows),
    path("", include("upsell_crm.urls")),
]
