"""A CSM's day in a real browser: sign in, find an account in the list, open it and read its usage charts."""

import re
from decimal import Decimal

import pytest
from playwright.sync_api import Page, expect

from accounts.models import Account

pytestmark = pytest.mark.browser

# plotly.js is 3.5 MB of script to parse before the first chart appears; a busy CI machine needs a while.
CHART_TIMEOUT_MS = 20_000


def sign_in(page: Page, base_url: str, username: str) -> None:
    page.goto(f"{base_url}/login/")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill("demo")
    page.get_by_role("button", name="Sign in", exact=True).click()
    expect(page).to_have_url(f"{base_url}/")


def listed_names(page: Page) -> list[str]:
    return page.locator(".accounts-table tbody th.account-cell > a").all_inner_texts()


def listed_mrr(page: Page) -> list[Decimal]:
    cells = page.locator(".accounts-table tbody td.num:nth-child(3)").all_inner_texts()
    return [Decimal(re.sub(r"[^\d.]", "", cell)) for cell in cells]


def assert_no_console_problems(console: list[str]) -> None:
    problems = [m for m in console if m.startswith(("error", "pageerror")) or "Content Security Policy" in m]
    assert problems == []


def test_it_takes_a_csm_from_sign_in_to_an_account_page(page, live_server, demo, console, screenshot, settings):
    base = live_server.url
    own = Account.objects.filter(owner__username="csm1")
    settings.DEBUG = True  # the demo logins show, as on a demo install
    page.goto(f"{base}/")
    expect(page).to_have_url(re.compile(r"/login/\?next=/$"))
    expect(page.get_by_role("heading", name="Demo logins")).to_be_visible()
    screenshot(page, "login")
    settings.DEBUG = False

    sign_in(page, base, "csm1")
    expect(page.get_by_role("heading", name="Top open opportunities")).to_be_visible()
    screenshot(page, "home-csm")

    # The top opportunity leads to its account, where the opportunity shows with its reasons.
    page.locator(".home-csm .data-table tbody a").first.click()
    expect(page.locator(".opportunity--open")).to_be_visible()
    expect(page.locator("[data-usage-chart] svg.main-svg").first).to_be_visible(timeout=CHART_TIMEOUT_MS)
    screenshot(page, "account-page-opportunity")

    page.get_by_role("navigation", name="Main").get_by_role("link", name="Accounts").click()
    expect(page.locator(".accounts-table")).to_be_visible()
    assert sorted(listed_names(page)) == sorted(own.values_list("name", flat=True))

    # Filtering and sorting swap the results in place and keep the state in the address bar.
    page.locator("#id_plan").select_option(label="Basic")
    expect(page).to_have_url(re.compile(r"plan=\d+"))
    basic = sorted(own.filter(plan__name="Basic").values_list("name", flat=True))
    expect(page.locator(".accounts-table tbody tr")).to_have_count(len(basic))
    assert sorted(listed_names(page)) == basic
    assert set(page.locator(".accounts-table tbody .badge--plan").all_inner_texts()) == {"Basic"}

    page.locator("th.sortable", has_text="MRR").get_by_role("link").click()
    expect(page).to_have_url(re.compile(r"sort=-mrr"))
    expect(page.locator('th[aria-sort="descending"]')).to_contain_text("MRR")
    assert listed_mrr(page) == sorted(listed_mrr(page), reverse=True)
    assert sorted(listed_names(page)) == basic

    # Clearing a filter keeps the sort: it travels with the filter form.
    page.locator("#id_plan").select_option(label="Any plan")
    expect(page.locator(".accounts-table tbody tr")).to_have_count(own.count())
    expect(page).to_have_url(re.compile(r"sort=-mrr"))
    assert listed_mrr(page) == sorted(listed_mrr(page), reverse=True)
    screenshot(page, "accounts-list")

    # The fullest account first: the one a CSM opens next.
    page.locator("th.sortable", has_text="Peak").get_by_role("link").click()
    expect(page).to_have_url(re.compile(r"sort=-usage"))
    expect(page.locator('th[aria-sort="descending"]')).to_contain_text("Peak")
    first = listed_names(page)[0]
    page.get_by_role("link", name=first, exact=True).click()
    expect(page.get_by_role("heading", level=1)).to_have_text(first)
    expect(page.locator("[data-usage-chart] svg.main-svg").first).to_be_visible(timeout=CHART_TIMEOUT_MS)
    expect(page.locator("[data-mrr-chart] svg.main-svg").first).to_be_visible(timeout=CHART_TIMEOUT_MS)
    screenshot(page, "account-page")

    page.emulate_media(color_scheme="dark")
    page.go_back()
    expect(page.locator(".accounts-table")).to_be_visible()
    screenshot(page, "accounts-list-dark")
    page.go_forward()
    expect(page.locator("[data-usage-chart] svg.main-svg").first).to_be_visible(timeout=CHART_TIMEOUT_MS)
    screenshot(page, "account-page-dark")

    assert_no_console_problems(console)


def test_it_shows_a_csm_only_their_own_book(page, live_server, demo, console):
    sign_in(page, live_server.url, "csm2")
    theirs = Account.objects.exclude(owner__username="csm2").first()

    response = page.goto(f"{live_server.url}{theirs.get_absolute_url()}")

    assert response.status == 404
    page.goto(f"{live_server.url}/accounts/?owner={theirs.owner_id}")
    assert theirs.name not in listed_names(page)


def test_it_gives_a_manager_and_an_admin_their_own_home(page, live_server, demo, console, screenshot):
    sign_in(page, live_server.url, "manager")
    expect(page.get_by_role("heading", name="Open pipeline by stage")).to_be_visible()
    expect(page.get_by_role("heading", name="Books per CSM")).to_be_visible()
    screenshot(page, "home-manager")

    page.get_by_role("button", name="Log out").click()
    expect(page).to_have_url(re.compile(r"/login/$"))

    sign_in(page, live_server.url, "admin")
    expect(page.get_by_role("heading", name="Plan catalogue")).to_be_visible()
    screenshot(page, "home-admin")

    assert_no_console_problems(console)
