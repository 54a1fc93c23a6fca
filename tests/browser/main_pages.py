"""The main pages of each persona of the demo book, for the checks every page must pass (layout, accessibility)."""

from accounts.models import Account, Plan
from opportunities.models import Opportunity
from playbooks.models import Play, Rule

PERSONAS = ("csm1", "manager", "admin")


def main_pages(username: str) -> list[str]:
    """Paths, each answering 200 to `username`; the account and opportunity pages are csm1's."""
    if username == "csm1":
        account = Account.objects.filter(owner__username="csm1", opportunities__outcome="open").first()
        opportunity = Opportunity.objects.filter(owner__username="csm1", outcome="open").first()
        return [
            "/",
            "/queue/",
            "/accounts/",
            account.get_absolute_url(),
            f"{account.get_absolute_url()}timeline/",
            f"/opportunities/{opportunity.pk}/actions/",
            "/tasks/",
            "/notifications/",
            "/notifications/settings/",
        ]
    if username == "manager":
        return [
            "/",
            "/queue/",
            "/accounts/imports/",
            "/pipeline/",
            "/metrics/",
            "/insights/",
            "/insights/predictors/",
            "/insights/cohorts/",
            "/insights/win-loss/",
            "/insights/feedback/",
            "/insights/surveys/",
        ]
    return [
        "/settings/",
        "/settings/plans/",
        f"/settings/plans/{Plan.objects.get(name='Pro').pk}/",
        "/settings/metrics/",
        "/settings/rules/",
        f"/settings/rules/{Rule.objects.order_by('pk').first().pk}/",
        "/settings/plays/",
        f"/settings/plays/{Play.objects.order_by('pk').first().pk}/",
        "/settings/experiments/",
        "/settings/audit/",
        "/settings/lost-reasons/",
        "/settings/surveys/",
        "/settings/tokens/",
    ]
