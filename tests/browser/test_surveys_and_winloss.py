"""Surveys and the voice of the customer in a real browser: an admin writes a survey, a customer answers an
emailed one, a manager reads the answers, the reasons for leaving and the win/loss tab with their charts drawn,
in light and dark, with no console error (the content security policy allows no inline script)."""

import re
from decimal import Decimal

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from accounts.ingest import SubscriptionChange, subscription_changes_apply
from accounts.models import Account, MrrMovement
from playbooks.models import FeedbackRequest, Rule, Survey, SurveyResponse
from playbooks.surveys import survey_link_path
from tests.browser.test_account_journey import sign_in

pytestmark = pytest.mark.browser

CHOICES = ["More seats", "More storage", "More integrations"]


def assert_no_console_problems(console: list[str]) -> None:
    problems = [m for m in console if m.startswith(("error", "pageerror")) or "Content Security Policy" in m]
    assert problems == []


def test_an_admin_writes_a_survey_and_a_manager_reads_the_answers(page, live_server, demo, console, screenshot):
    base = live_server.url
    rule = Rule.objects.filter(enabled=True).order_by("pk").first()
    sign_in(page, base, "admin")

    page.goto(f"{base}/settings/")
    page.get_by_role("link", name=re.compile("^Surveys")).click()
    expect(page.get_by_role("heading", name="Surveys", level=1)).to_be_visible()
    page.get_by_role("link", name="New survey").first.click()
    page.get_by_label("Name").fill("What comes next?")
    page.get_by_label("Rule").select_option(str(rule.pk))
    page.get_by_label("Intro").fill("Two quick questions about the coming months.")
    first = page.locator("fieldset.survey-question").nth(0)
    first.get_by_label("Question").fill("What will you need most next quarter?")
    first.get_by_label("Answer").select_option("choice")
    first.get_by_label("Choices").fill("\n".join(CHOICES))
    second = page.locator("fieldset.survey-question").nth(1)
    second.get_by_label("Question").fill("Anything else we should know?")
    screenshot(page, "survey-editor")
    page.emulate_media(color_scheme="dark")
    screenshot(page, "survey-editor-dark")
    page.emulate_media(color_scheme="light")
    page.get_by_role("button", name="Create the survey").click()
    expect(page.get_by_text("Survey “What comes next?” saved.")).to_be_visible()
    survey = Survey.objects.get(name="What comes next?")
    assert list(survey.questions.values_list("kind", flat=True)) == ["choice", "text"]

    # Answers from the product, and a churn answered on the emailed link.
    accounts = list(Account.objects.filter(mrr__gt=0).order_by("pk")[:12])
    for i, account in enumerate(accounts[:9]):
        SurveyResponse.objects.create(
            survey=survey,
            account=account,
            contact_ref=f"user-{i}",
            answers={"1": CHOICES[i % 3 if i < 6 else 0], "2": f"We plan to grow the team by {i + 2} people."},
            submitted_at=timezone.now(),
        )
    churning = accounts[9:12]
    subscription_changes_apply(
        changes=[
            SubscriptionChange(account_id=a.pk, on=timezone.localdate(), mrr=Decimal("0"), plan_id=a.plan_id)
            for a in churning
        ],
        source=MrrMovement.Source.API,
        at=timezone.now(),
    )
    requests = list(FeedbackRequest.objects.filter(account__in=churning).order_by("pk"))
    assert len(requests) == 3

    # The demo's own answers count too: two more say "too expensive" below.
    too_expensive = SurveyResponse.objects.filter(reason=SurveyResponse.Reason.PRICE).count()
    customer = page.context.browser.new_context()
    survey_page = customer.new_page()
    survey_page.on("console", lambda message: console.append(f"{message.type}: {message.text}"))
    link = survey_link_path(
        account_id=requests[0].account_id, survey_id=requests[0].survey_id, request_id=requests[0].pk
    )
    survey_page.goto(f"{base}{link}")
    expect(survey_page.get_by_role("heading", name="Why did you downgrade or leave?")).to_be_visible()
    screenshot(survey_page, "survey-public")
    survey_page.emulate_media(color_scheme="dark")
    screenshot(survey_page, "survey-public-dark")
    survey_page.get_by_label("Too expensive").check()
    survey_page.get_by_label("What could we have done better?").fill("Seats cost too much for a team of four.")
    survey_page.get_by_role("button", name="Send my answer").click()
    expect(survey_page.get_by_text("Thank you: we have your answer")).to_be_visible()
    customer.close()
    for request, reason in zip(requests[1:], ["competitor", "price"], strict=True):
        SurveyResponse.objects.create(
            survey=request.survey,
            account=request.account,
            request=request,
            reason=reason,
            answers={},
            submitted_at=timezone.now(),
        )

    # The manager reads the surveys tab: counts, shares and the chart of each choice question.
    page.context.clear_cookies()
    sign_in(page, base, "manager")
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Insights").click()
    tabs = page.get_by_role("navigation", name="Insights sections")
    tabs.get_by_role("link", name="Surveys").click()
    expect(page).to_have_url(re.compile(r"/insights/surveys/"))
    expect(page.locator('[data-choice-count="More seats"]').first).to_have_text("5")
    expect(page.locator("[data-voice-chart] svg.main-svg").first).to_be_visible(timeout=20_000)
    expect(page.get_by_text("We plan to grow the team by 2 people.")).to_be_visible()
    screenshot(page, "insights-surveys")
    page.emulate_media(color_scheme="dark")
    screenshot(page, "insights-surveys-dark")
    page.emulate_media(color_scheme="light")

    # Why they left, next to why upsells were lost.
    tabs.get_by_role("link", name="Downgrades and churn").click()
    expect(page.locator('[data-reason-count="Too expensive"]')).to_have_text(str(too_expensive + 2))
    expect(page.locator('[data-voice-chart="feedback-by-plan"] svg.main-svg').first).to_be_visible(timeout=20_000)
    screenshot(page, "insights-feedback")

    # Win/loss: the month chart drawn; a CSM filter keeps the tab and narrows it.
    tabs.get_by_role("link", name="Win/loss").click()
    expect(page).to_have_url(re.compile(r"/insights/win-loss/"))
    expect(page.locator('[data-voice-chart="winloss-months"] svg.main-svg').first).to_be_visible(timeout=20_000)
    screenshot(page, "insights-winloss")
    page.emulate_media(color_scheme="dark")
    screenshot(page, "insights-winloss-dark")
    page.emulate_media(color_scheme="light")
    page.get_by_label("CSM", exact=True).select_option(label=page.locator("#id_csm option").nth(1).inner_text())
    expect(page).to_have_url(re.compile(r"csm=\d+"))
    expect(
        page.locator(".voice-winloss").first.or_(page.get_by_text("Nothing won or lost in the period"))
    ).to_be_visible()

    assert_no_console_problems(console)
