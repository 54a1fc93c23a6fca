"""A manager moves accounts between CSMs from the account list, in a real browser."""

import pytest
from playwright.sync_api import expect

from accounts.models import Account
from tests.browser.test_account_journey import assert_no_console_problems, sign_in

pytestmark = pytest.mark.browser


def test_a_manager_selects_accounts_and_gives_them_to_another_csm(page, live_server, demo, console, screenshot):
    base = live_server.url
    sign_in(page, base, "manager")
    page.goto(f"{base}/accounts/?sort=name")
    rows = page.locator(".accounts-table tbody tr")
    names = [rows.nth(i).locator("th a").inner_text() for i in range(2)]
    new_owner = Account.objects.get(name=names[0]).owner
    target = next(a.owner for a in Account.objects.exclude(owner=new_owner).exclude(owner=None))
    for i in range(2):
        rows.nth(i).get_by_role("checkbox").check()
    page.get_by_label("Reassign the selected accounts and their open opportunities to").select_option(str(target.pk))
    screenshot(page, "accounts-reassign")

    page.get_by_role("button", name="Reassign").click()

    expect(page.locator(".messages")).to_contain_text("moved to")
    expect(page).to_have_url(f"{base}/accounts/?sort=name")
    assert set(Account.objects.filter(name__in=names).values_list("owner", flat=True)) == {target.pk}
    assert_no_console_problems(console)
