"""The presentation email: a play's template rendered in the sandbox with the opportunity's merge fields."""

import datetime as dt
from decimal import Decimal

import pytest
from django.core import mail
from django.urls import reverse
from django.utils import timezone

from accounts.models import AccountIndicator, EngagementEvent
from opportunities.emails import draft, merge
from opportunities.models import Opportunity, OpportunityEvent, Stage
from playbooks.experiment_services import VariantSpec, experiment_create, experiment_start
from playbooks.models import Assignment, Play, ScoringPolicy, Touch
from playbooks.sandbox import TemplateRefused
from playbooks.services import touch_record
from tests.factories import EngagementEventFactory, OpportunityFactory, metric, plan

HTMX = {"HX-Request": "true"}


def indicator(account, key: str, *, utilization: float, projected_limit_on: dt.date | None = None):
    return AccountIndicator.objects.create(
        account=account,
        metric=metric(key),
        as_of=dt.date(2026, 11, 20),
        latest=utilization * 10,
        limit=10,
        utilization=utilization,
        projected_limit_on=projected_limit_on,
        refreshed_at=timezone.now(),
    )


def test_it_refuses_what_the_sandbox_refuses_instead_of_leaving_it_as_typed():
    for text in ("Hi {{ secret }}", "{% load static %}", "{{ account_name.upper }}"):
        with pytest.raises(TemplateRefused):
            merge(text, {"account_name": "Acme"})


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


def test_it_fills_the_limit_fields_from_the_metric_of_the_top_reason(account, csm):
    indicator(account, "seats", utilization=0.96)
    indicator(account, "storage_gb", utilization=0.85, projected_limit_on=dt.date(2026, 12, 3))
    play = Play.objects.create(
        name="Storage",
        email_subject="{{ metric }} at {{ utilization }}",
        email_body="Full around {{ projected_limit_date }}; {{ target_plan }} adds {{ price_delta }} a month.",
    )
    opportunity = OpportunityFactory(
        account=account,
        play=play,
        target_plan=plan("Pro"),
        reasons=[{"rule": "Storage 80%", "metric": "storage_gb", "points": 40, "text": "Storage at 85%"}],
    )
    subject, body = draft(opportunity, sender=csm)
    assert subject == "Storage at 85%"
    assert body == "Full around December 3, 2026; Pro adds 70.00 USD a month.\n"


def test_without_a_metric_reason_it_talks_about_the_fullest_limit(account, csm):
    indicator(account, "seats", utilization=0.96)
    indicator(account, "storage_gb", utilization=0.85)
    play = Play.objects.create(name="Any", email_subject="{{ metric }} at {{ utilization }}", email_body="x")
    opportunity = OpportunityFactory(account=account, play=play, target_plan=plan("Pro"))

    assert draft(opportunity, sender=csm)[0] == "Seats at 96%"


def test_it_lists_the_premium_features_used_in_a_trial_when_the_template_asks(account, csm):
    for feature, uses in (("Advanced reporting", 3), ("SSO", 1)):
        for _ in range(uses):
            EngagementEventFactory(account=account, kind=EngagementEvent.Kind.TRIAL_FEATURE_USED, feature=feature)
    play = Play.objects.create(
        name="Keep premium",
        email_subject="What you used",
        email_body="{% for feature in premium_features %}- {{ feature }}\n{% endfor %}",
    )
    opportunity = OpportunityFactory(account=account, play=play, target_plan=plan("Pro"))

    assert draft(opportunity, sender=csm)[1] == "- Advanced reporting (3 times)\n- SSO (1 time)\n"


def test_a_stored_unsafe_play_template_gives_way_to_the_default_one(account, csm):
    # Saved around the settings page's check (the Django admin, an old row): it must neither render nor break.
    play = Play.objects.create(name="Old", email_subject="{{ account.owner.password }}", email_body="{% debug %}")
    opportunity = OpportunityFactory(account=account, play=play, target_plan=plan("Pro"))

    subject, body = draft(opportunity, sender=csm)

    assert subject == "Acme Analytics: room to grow on Pro"
    assert body.startswith("Hi,\n\nAcme Analytics is getting close to the limits of the Basic plan")


def test_it_falls_back_to_the_default_template_without_a_trial_sentence(account, csm):
    opportunity = OpportunityFactory(account=account, target_plan=plan("Pro"))
    subject, body = draft(opportunity, sender=csm)
    assert subject == "Acme Analytics: room to grow on Pro"
    assert "try it free" not in body
    assert "{{" not in body and "{%" not in body


def test_the_default_template_mentions_the_limit_and_the_trial_when_there_are_some(account, csm):
    indicator(account, "seats", utilization=0.96, projected_limit_on=dt.date(2026, 12, 3))
    opportunity = OpportunityFactory(account=account, target_plan=plan("Pro"), trial_ends_on=dt.date(2026, 12, 8))

    body = draft(opportunity, sender=csm)[1]

    assert "limits of the Basic plan (Seats at 96%, full around December 3, 2026), so I had a look" in body
    assert "Pro is 99.00 USD a month. You can try it free until December 8, 2026." in body


def _present(opportunity, **fields):
    Opportunity.objects.filter(pk=opportunity.pk).update(stage=Stage.PRESENT, **fields)
    opportunity.refresh_from_db()
    return opportunity


SEND = {"version": 1, "to": "buyer@example.com", "subject": "Pro for Acme", "body": "Hi", "action": "send"}


def test_sending_the_email_records_a_touch_of_the_account_by_the_play(
    csm_client, csm, account, django_capture_on_commit_callbacks
):
    play = Play.objects.create(name="Seats upgrade", target_plan=plan("Pro"))
    opportunity = _present(OpportunityFactory(account=account, play=play), target_plan=plan("Pro"))

    with django_capture_on_commit_callbacks(execute=True):
        response = csm_client.post(reverse("opportunities:email", args=[opportunity.pk]), SEND, headers=HTMX)

    assert response.status_code == 200
    assert len(mail.outbox) == 1
    touch = Touch.objects.get()
    assert (touch.account, touch.play, touch.variant, touch.kind, touch.actor) == (
        account,
        play,
        None,
        Touch.Kind.EMAIL,
        csm,
    )
    assert touch.detail == "Pro for Acme"


def test_it_refuses_to_send_within_the_plays_gap_between_touches(
    csm_client, account, django_capture_on_commit_callbacks
):
    play = Play.objects.create(name="Seats upgrade", target_plan=plan("Pro"), min_days_between_touches=7)
    opportunity = _present(OpportunityFactory(account=account, play=play), target_plan=plan("Pro"))
    touch_record(
        account=account,
        play=play,
        variant=None,
        kind=Touch.Kind.PROMPT_IMPRESSION,
        by=None,
        at=timezone.now() - dt.timedelta(days=2),
    )

    with django_capture_on_commit_callbacks(execute=True):
        response = csm_client.post(reverse("opportunities:email", args=[opportunity.pk]), SEND, headers=HTMX)

    assert response.status_code == 422
    assert "waits 7 days between touches" in response.content.decode()
    assert mail.outbox == []
    assert Touch.objects.count() == 1
    assert not OpportunityEvent.objects.filter(kind=OpportunityEvent.Kind.EMAIL_SENT).exists()
    opportunity.refresh_from_db()
    assert opportunity.version == 1


def test_it_refuses_to_send_over_the_global_cap_whatever_the_play(csm_client, account):
    policy = ScoringPolicy.current()
    policy.max_touches_per_30_days = 2
    policy.save()
    other = Play.objects.create(name="Storage", min_days_between_touches=0)
    for days in (3, 20):
        touch_record(
            account=account,
            play=other,
            variant=None,
            kind=Touch.Kind.EMAIL,
            by=None,
            at=timezone.now() - dt.timedelta(days=days),
        )
    opportunity = _present(OpportunityFactory(account=account), target_plan=plan("Pro"))

    response = csm_client.post(reverse("opportunities:email", args=[opportunity.pk]), SEND, headers=HTMX)

    assert response.status_code == 422
    assert "the most allowed is 2" in response.content.decode()
    assert mail.outbox == []


def running_experiment(play, by, *, variants, control_share=0.10):
    experiment = experiment_create(
        play=play, name="Subject test", variants=variants, control_share=control_share, by=by, at=timezone.now()
    )
    return experiment_start(experiment=experiment, by=by, at=timezone.now())


def test_the_draft_takes_the_subject_body_and_trial_of_the_accounts_variant(account, csm, admin_user):
    play = Play.objects.create(
        name="Seats upgrade", email_subject="Room on {{ target_plan }}", email_body="Plain", trial_days=14
    )
    # No control group and one variant: every account is in it.
    running_experiment(
        play,
        admin_user,
        control_share=0,
        variants=[
            VariantSpec(
                name="Urgent",
                email_subject="Only days left, {{ account_name }}",
                email_body="{{ trial_days }} days free",
                trial_days=30,
            )
        ],
    )
    opportunity = OpportunityFactory(account=account, play=play, target_plan=plan("Pro"))

    assert draft(opportunity, sender=csm) == ("Only days left, Acme Analytics", "30 days free\n")
    assert not Assignment.objects.exists()  # drafting stores nothing; sending assigns


def test_sending_assigns_the_account_and_records_its_variant_on_the_touch(
    csm_client, account, admin_user, django_capture_on_commit_callbacks
):
    play = Play.objects.create(name="Seats upgrade", target_plan=plan("Pro"))
    experiment = running_experiment(play, admin_user, control_share=0, variants=[VariantSpec(name="Urgent")])
    opportunity = _present(OpportunityFactory(account=account, play=play), target_plan=plan("Pro"))

    with django_capture_on_commit_callbacks(execute=True):
        response = csm_client.post(reverse("opportunities:email", args=[opportunity.pk]), SEND, headers=HTMX)

    assert response.status_code == 200
    assert len(mail.outbox) == 1
    urgent = experiment.variants.get()
    assert Touch.objects.get().variant == urgent
    assert Assignment.objects.get(account=account).variant == urgent


def test_it_sends_nothing_to_an_account_in_the_control_group(
    csm_client, account, admin_user, django_capture_on_commit_callbacks
):
    play = Play.objects.create(name="Seats upgrade", target_plan=plan("Pro"))
    experiment = running_experiment(play, admin_user, variants=[VariantSpec(name="Urgent")])
    Assignment.objects.create(experiment=experiment, account=account, variant=None, assigned_at=timezone.now())
    opportunity = _present(OpportunityFactory(account=account, play=play), target_plan=plan("Pro"))

    with django_capture_on_commit_callbacks(execute=True):
        response = csm_client.post(reverse("opportunities:email", args=[opportunity.pk]), SEND, headers=HTMX)

    assert response.status_code == 422
    assert (
        "This account is in the control group of experiment “Subject test”: the play sends it nothing."
        in response.content.decode()
    )
    assert mail.outbox == []
    assert not Touch.objects.exists()
    assert not OpportunityEvent.objects.filter(kind=OpportunityEvent.Kind.EMAIL_SENT).exists()
    opportunity.refresh_from_db()
    assert opportunity.version == 1
