"""The presentation email: merge fields from an allow-list, never the template engine."""

import datetime as dt
from decimal import Decimal

from opportunities.emails import draft, merge
from playbooks.models import Play
from tests.factories import OpportunityFactory, plan


def test_it_replaces_allowed_fields_and_leaves_anything_else_as_typed():
    text = merge(
        "Hi {{ account_name }}, {{ secret }} {% load static %} {{ account_name|upper }}", {"account_name": "Acme"}
    )
    assert text == "Hi Acme, {{ secret }} {% load static %} {{ account_name|upper }}"


def test_it_drafts_from_the_plays_template(account, csm):
    play = Play.objects.create(
        name="Seats upgrade",
        target_plan=plan("Pro"),
        email_subject="{{ target_plan }} for {{ account_name }}",
        email_body="Trial until {{ trial_ends_on }}. {{ roi_note }} {{ csm_name }}",
    )
    opportunity = OpportunityFactory(
        account=account,
        play=play,
        target_plan=plan("Pro"),
        trial_ends_on=dt.date(2026, 12, 8),
        roi_note="Worth 500 USD a month.",
        expected_mrr_delta=Decimal(70),
    )
    subject, body = draft(opportunity, sender=csm)
    assert subject == "Pro for Acme Analytics"
    assert body == "Trial until December 8, 2026. Worth 500 USD a month. Casey Moreno\n"


def test_it_falls_back_to_the_default_template_without_a_trial_sentence(account, csm):
    opportunity = OpportunityFactory(account=account, target_plan=plan("Pro"))
    subject, body = draft(opportunity, sender=csm)
    assert subject == "Acme Analytics: room to grow on Pro"
    assert "try it free" not in body
    assert "{{" not in body
