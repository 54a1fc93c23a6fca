"""The presentation email: a play's template (or the default one) with merge fields filled in.

Templates are written by admins and edited by CSMs, so they never reach Django's template engine: only
`{{ field }}` placeholders from MERGE_FIELDS are replaced, with plain strings; anything else stays as typed.
"""

from __future__ import annotations

import re

from opportunities.models import Opportunity

MERGE_FIELDS = (
    "account_name",
    "current_plan",
    "target_plan",
    "target_price",
    "roi_note",
    "value_proposition",
    "trial_ends_on",
    "csm_name",
    "csm_email",
)
DEFAULT_SUBJECT = "{{ account_name }}: room to grow on {{ target_plan }}"
DEFAULT_BODY = """Hi,

{{ account_name }} is getting close to the limits of the {{ current_plan }} plan, so I had a look at what
{{ target_plan }} would change for you.

{{ value_proposition }}

{{ roi_note }}

{{ target_plan }} is {{ target_price }} a month.{{ trial_sentence }}

Would a short call this week work to go through it?

{{ csm_name }}
"""
PLACEHOLDER = re.compile(r"\{\{\s*([a-z_]+)\s*\}\}")


def merge(template: str, context: dict[str, str]) -> str:
    """Replace `{{ field }}` with context[field] for allowed fields; unknown placeholders stay as written."""

    def replace(match: re.Match) -> str:
        key = match.group(1)
        return context[key] if key in context else match.group(0)

    return PLACEHOLDER.sub(replace, template)


def merge_context(opportunity: Opportunity, *, sender) -> dict[str, str]:
    """The flat, plain-string values the placeholders may use."""
    account = opportunity.account
    target = opportunity.target_plan
    trial = opportunity.trial_ends_on
    context = {
        "account_name": account.name,
        "current_plan": account.plan.name if account.plan_id else "current",
        "target_plan": target.name if target else "the next plan",
        "target_price": f"{target.monthly_price:,.2f} {target.currency}" if target else "",
        "roi_note": opportunity.roi_note,
        "value_proposition": (opportunity.roi_inputs or {}).get("value_proposition", ""),
        "trial_ends_on": f"{trial:%B %-d, %Y}" if trial else "",
        "csm_name": sender.get_full_name() or sender.get_username(),
        "csm_email": sender.email,
    }
    # Not a merge field an admin types: it lets the default template drop the trial sentence when there is none.
    context["trial_sentence"] = f" You can try it free until {context['trial_ends_on']}." if trial else ""
    return context


def draft(opportunity: Opportunity, *, sender) -> tuple[str, str]:
    """(subject, body) from the play's template, or the default one, merged for this opportunity."""
    play = opportunity.play
    subject = play.email_subject if play and play.email_subject else DEFAULT_SUBJECT
    body = play.email_body if play and play.email_body else DEFAULT_BODY
    context = merge_context(opportunity, sender=sender)
    return merge(subject, context).strip(), re.sub(r"\n{3,}", "\n\n", merge(body, context)).strip() + "\n"
