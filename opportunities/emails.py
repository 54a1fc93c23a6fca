"""The presentation email: a play's template (or the default one) with merge fields filled in.

Templates are written by admins, so they render in the playbooks sandbox: a flat context of plain values
from the allow-list in playbooks.sandbox.MERGE_FIELDS, a few tags and filters, nothing that reaches a
model, a setting or a method. The CSM then edits the drafted text, which is sent as typed.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Mapping

from django.utils import timezone

from accounts.models import AccountIndicator
from opportunities.models import Opportunity
from playbooks.experiment_services import PlayContent, experiment_arm, play_content_for
from playbooks.sandbox import MERGE_FIELDS, Kind, TemplateRefused, sandbox_render
from playbooks.selectors import premium_feature_uses

# The merge fields a template may use (see playbooks.sandbox for their descriptions).
MERGE_FIELD_NAMES = tuple(MERGE_FIELDS)
PREMIUM_FEATURE_DAYS = 90
DEFAULT_SUBJECT = "{{ account_name }}: room to grow on {{ target_plan }}"
DEFAULT_BODY = """Hi,

{{ account_name }} is getting close to the limits of the {{ current_plan }} plan{% if metric and utilization %} \
({{ metric }} at {{ utilization }}{% if projected_limit_date %}, full around {{ projected_limit_date }}{% endif %})\
{% endif %}, so I had a look at what {{ target_plan }} would change for you.

{{ value_proposition }}

{{ roi_note }}

{{ target_plan }} is {{ target_price }} a month.{% if trial_ends_on %} You can try it free until \
{{ trial_ends_on }}.{% endif %}

Would a short call this week work to go through it?

{{ csm_name }}
"""


def merge(template: str, context: Mapping[str, object], *, kind: Kind | str = Kind.TEXT) -> str:
    """The template rendered in the sandbox with `context` (merge field -> plain value).

    Raises playbooks.sandbox.TemplateRefused for an unknown merge field, a tag or filter outside the
    allow-list, a dotted name or a template over the size limit.
    """
    return sandbox_render(template, context, kind=kind)


def _money(amount, currency: str) -> str:
    return f"{amount:,.2f} {currency}"


def _indicators(opportunity: Opportunity) -> list[AccountIndicator]:
    # The account page prefetches them; the email view's panel does not.
    prefetched = getattr(opportunity.account, "indicator_list", None)
    if prefetched is not None:
        return prefetched
    return list(AccountIndicator.objects.filter(account_id=opportunity.account_id).select_related("metric"))


def focus_indicator(opportunity: Opportunity, indicators: list[AccountIndicator]) -> AccountIndicator | None:
    """The limit the email talks about: the metric of the highest-scoring reason that names one, else the
    metric nearest its limit."""
    by_key = {indicator.metric.key: indicator for indicator in indicators}
    for reason in opportunity.reasons or []:
        if reason.get("metric") in by_key:
            return by_key[reason["metric"]]
    measured = [indicator for indicator in indicators if indicator.utilization is not None]
    return max(measured, key=lambda indicator: indicator.utilization, default=None)


def merge_context(
    opportunity: Opportunity, *, sender, premium_features: bool = False, content: PlayContent | None = None
) -> dict[str, object]:
    """The flat, plain values the merge fields take for this opportunity.

    price_delta = target plan's monthly price − current plan's monthly price (empty without both plans).
    premium_features (trial features used in the last 90 days, "Feature (n times)") costs a query, so it is
    looked up only when asked for. trial_days comes from `content` (the play's, or its A/B variant's) when
    given, else from the play.
    """
    account = opportunity.account
    current = account.plan if account.plan_id else None
    target = opportunity.target_plan
    play = opportunity.play
    focus = focus_indicator(opportunity, _indicators(opportunity))
    context: dict[str, object] = {
        "account_name": account.name,
        "current_plan": current.name if current else "current",
        "target_plan": target.name if target else "the next plan",
        "target_price": _money(target.monthly_price, target.currency) if target else "",
        "price_delta": _money(target.monthly_price - current.monthly_price, target.currency)
        if target and current
        else "",
        "metric": focus.metric.label if focus else "",
        "utilization": f"{focus.utilization * 100:.0f}%" if focus and focus.utilization is not None else "",
        "projected_limit_date": focus.projected_limit_on if focus else None,
        "roi_note": opportunity.roi_note,
        "value_proposition": (opportunity.roi_inputs or {}).get("value_proposition", ""),
        "trial_days": content.trial_days if content else (play.trial_days if play else None),
        "trial_ends_on": opportunity.trial_ends_on,
        "csm_name": sender.get_full_name() or sender.get_username(),
        "csm_email": sender.email,
    }
    if premium_features:
        since = timezone.now() - dt.timedelta(days=PREMIUM_FEATURE_DAYS)
        context["premium_features"] = [
            f"{feature} ({uses} time{'s' if uses != 1 else ''})"
            for feature, uses in premium_feature_uses(account=account, since=since)
        ]
    return context


def draft_content(opportunity: Opportunity) -> PlayContent | None:
    """What the opportunity's play sends this account: the play's email and trial offer, with the fields of
    the account's A/B variant in their place when the play runs an experiment. Read only: the arm is the
    stored one, else the one the account will get (the assignment is deterministic); sending stores it."""
    play = opportunity.play
    if play is None:
        return None
    arm = experiment_arm(account=opportunity.account, play=play)
    return play_content_for(play=play, variant=arm[1] if arm else None)


def draft(opportunity: Opportunity, *, sender) -> tuple[str, str]:
    """(subject, body) from the play's template (its A/B variant's, see `draft_content`), or the default
    one, merged for this opportunity.

    A play template the sandbox refuses (saved before it was checked, or through the Django admin) gives
    way to the default one rather than breaking the page.
    """
    content = draft_content(opportunity)
    subject = content.email_subject if content and content.email_subject else DEFAULT_SUBJECT
    body = content.email_body if content and content.email_body else DEFAULT_BODY
    context = merge_context(
        opportunity, sender=sender, premium_features="premium_features" in subject + body, content=content
    )
    try:
        subject = merge(subject, context, kind=Kind.SUBJECT)
    except TemplateRefused:
        subject = merge(DEFAULT_SUBJECT, context, kind=Kind.SUBJECT)
    try:
        body = merge(body, context)
    except TemplateRefused:
        body = merge(DEFAULT_BODY, context)
    return subject.strip(), re.sub(r"\n{3,}", "\n\n", body).strip() + "\n"
