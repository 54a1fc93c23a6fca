"""A manager imports usage from a CSV file in a real browser: a bad file is refused whole, a good one lands."""

import pytest
from django.utils import timezone
from playwright.sync_api import Page, expect

from accounts.models import Account, ImportJob, UsageSnapshot
from tests.browser.test_account_journey import assert_no_console_problems, sign_in

pytestmark = pytest.mark.browser


def upload(page: Page, base: str, *, name: str, text: str) -> None:
    page.goto(f"{base}/accounts/imports/")
    page.get_by_label("Usage snapshots").check()
    page.get_by_label("CSV file").set_input_files(
        files=[{"name": name, "mimeType": "text/csv", "buffer": text.encode("utf-8-sig")}]
    )
    page.get_by_role("button", name="Upload and import").click()


def test_a_manager_sees_a_bad_file_refused_with_its_errors_and_a_good_one_imported(
    page, live_server, demo, console, screenshot
):
    base = live_server.url
    account = Account.objects.filter(plan__isnull=False).order_by("pk").first()
    today = timezone.localdate().isoformat()
    snapshots_before = UsageSnapshot.objects.count()
    sign_in(page, base, "manager")
    page.get_by_role("link", name="Imports").click()
    expect(page.get_by_role("heading", name="Import a CSV file")).to_be_visible()
    screenshot(page, "import-upload")

    upload(
        page,
        base,
        name="usage-bad.csv",
        text=(
            "account,metric,value,date\n"
            f"{account.external_id},api_calls,4321,{today}\n"
            f"{account.external_id},bandwidth,12,{today}\n"
        ),
    )

    expect(page.get_by_role("heading", name="Not imported")).to_be_visible()
    errors = page.locator("table.import-errors tbody tr")
    expect(errors).to_have_count(1)
    expect(errors.first).to_contain_text("3")
    expect(errors.first).to_contain_text("No metric 'bandwidth'.")
    expect(page.get_by_role("link", name="Download the error report (CSV)")).to_be_visible()
    assert UsageSnapshot.objects.count() == snapshots_before, "a refused file stores nothing"
    screenshot(page, "import-refused")

    upload(
        page,
        base,
        name="usage-good.csv",
        text=(
            "account,metric,value,date\n"
            f"{account.external_id},api_calls,4321,{today}\n"
            f"{account.external_id},projects,3,{today}\n"
        ),
    )

    expect(page.get_by_role("heading", name="Imported")).to_be_visible()
    expect(page.get_by_test_id("import-percent")).to_have_text("100%")
    expect(page.locator("progress#import-progress")).to_have_attribute("value", "2")
    job = ImportJob.objects.order_by("-pk").first()
    assert (job.status, job.created + job.updated) == (ImportJob.Status.SUCCEEDED, 2)
    screenshot(page, "import-done")

    page.goto(f"{base}{account.get_absolute_url()}")
    expect(page.locator(".metric-row", has_text="API calls").locator(".metric-row__figure")).to_contain_text("4,321")
    assert_no_console_problems(console)
