"""An admin changes a plan's limit in a real browser: the comparison follows the form, the save lands, the audit
log shows the change."""

import re

import pytest
from playwright.sync_api import expect

from accounts.models import AuditEntry, PlanLimit
from tests.browser.test_account_journey import assert_no_console_problems, sign_in

pytestmark = pytest.mark.browser


def test_an_admin_changes_a_plans_limit_watches_the_comparison_and_finds_the_change_in_the_audit_log(
    page, live_server, demo, console, screenshot
):
    base = live_server.url
    sign_in(page, base, "admin")

    page.get_by_role("navigation", name="Main").get_by_role("link", name="Settings").click()
    expect(page.get_by_role("heading", name="Settings", exact=True)).to_be_visible()
    screenshot(page, "settings-index")

    page.get_by_role("link", name=re.compile(r"^Plans")).click()
    expect(page.get_by_role("heading", name="Plans", exact=True)).to_be_visible()
    screenshot(page, "settings-plans")

    page.get_by_role("link", name="Edit Pro").click()
    expect(page.get_by_role("heading", name="Edit Pro")).to_be_visible()
    preview = page.locator("#plan-preview")
    expect(preview.locator(".plan-compare__changed")).to_have_count(0)

    page.get_by_label("Seats").fill("40")

    # The comparison follows the form (htmx posts it with preview=1): the edited cell shows 40, highlighted.
    changed = preview.locator("td.plan-compare__changed")
    expect(changed).to_have_count(1)
    expect(changed).to_contain_text("40")
    assert PlanLimit.objects.get(plan__name="Pro", metric__key="seats").limit == 25, "a preview saves nothing"
    screenshot(page, "settings-plan-preview")

    page.get_by_role("button", name="Save plan").click()
    expect(page).to_have_url(f"{base}/settings/plans/")
    expect(page.get_by_role("status").filter(has_text="Saved Pro.")).to_be_visible()
    seats_row = page.locator("table.plan-compare tbody tr").filter(
        has=page.get_by_role("rowheader", name=re.compile("^Seats"))
    )
    expect(seats_row.locator("td").nth(1)).to_have_text("40")
    assert PlanLimit.objects.get(plan__name="Pro", metric__key="seats").limit == 40
    assert AuditEntry.objects.filter(object_type="accounts.Plan", action="updated").count() == 1

    page.get_by_role("link", name="History").click()
    expect(page.get_by_role("heading", name="Audit log")).to_be_visible()
    change = page.locator("table.audit-diff tbody tr").filter(has_text="Limit · Seats")
    expect(change).to_have_count(1)
    expect(change.locator(".audit-diff__before")).to_have_text("25")
    expect(change.locator(".audit-diff__after")).to_have_text("40")
    screenshot(page, "settings-audit")

    assert_no_console_problems(console)
