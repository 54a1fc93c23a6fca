"""Every main page passes axe-core's checks (WCAG 2.x A and AA and its best practices) as each persona sees it:
on a laptop in the light scheme, and on a phone in the dark one, where tables scroll inside their cards and
the dark colours must still give text its contrast."""

import pytest
from axe_playwright_python.sync_playwright import Axe
from playwright.sync_api import Browser, Page

from tests.browser.main_pages import PERSONAS, main_pages
from tests.browser.test_account_journey import sign_in

pytestmark = pytest.mark.browser

AXE = Axe()
SETUPS = {"laptop, light": (1440, "light"), "phone, dark": (390, "dark")}


def violations(page: Page) -> list[str]:
    """axe-core's findings on the page as it stands, one line each: rule, impact and the first element."""
    found = AXE.run(page).response["violations"]
    return [f"{rule['id']} ({rule['impact']}): {rule['nodes'][0]['target']}" for rule in found]


def findings_of(browser: Browser, base: str, username: str, width: int, scheme: str) -> dict[str, list[str]]:
    context = browser.new_context(viewport={"width": width, "height": 900}, color_scheme=scheme)
    page = context.new_page()
    try:
        found = {}
        page.goto(f"{base}/login/")
        if problems := violations(page):
            found["/login/"] = problems
        sign_in(page, base, username)
        for url in main_pages(username):
            response = page.goto(f"{base}{url}")
            assert response is not None and response.status == 200, url
            page.wait_for_load_state("networkidle")
            if problems := violations(page):
                found[url] = problems
        return found
    finally:
        context.close()


@pytest.mark.parametrize("setup", SETUPS)
@pytest.mark.parametrize("username", PERSONAS)
def test_every_main_page_passes_axe(browser, live_server, demo, username, setup):
    width, scheme = SETUPS[setup]
    assert findings_of(browser, live_server.url, username, width, scheme) == {}


def test_a_wide_table_on_a_phone_can_be_scrolled_from_the_keyboard(page, live_server, demo):
    """static/js/app.js gives a box that scrolls a tab stop, and takes it back once the box fits again."""
    page.set_viewport_size({"width": 390, "height": 900})
    sign_in(page, live_server.url, "csm1")
    page.goto(f"{live_server.url}/queue/")
    scroller = page.locator(".table-scroll").first

    assert scroller.get_attribute("tabindex") == "0"
    scroller.focus()
    page.keyboard.press("ArrowRight")
    page.wait_for_function("document.querySelector('.table-scroll').scrollLeft > 0")

    page.set_viewport_size({"width": 1440, "height": 900})
    page.wait_for_function("!document.querySelector('.table-scroll').hasAttribute('tabindex')")


def test_the_check_notices_what_axe_should(page, live_server, demo):
    """The check above can fail: an image without a text alternative and grey text on grey are found."""
    sign_in(page, live_server.url, "csm1")
    page.goto(f"{live_server.url}/queue/")
    page.evaluate(
        """() => {
          const main = document.querySelector("main");
          main.insertAdjacentHTML("beforeend", '<img src="/static/img/favicon.svg">');
          main.insertAdjacentHTML("beforeend", '<p style="color:#aaa;background:#bbb">Faint words</p>');
        }"""
    )

    assert [line.split(" ")[0] for line in violations(page)] == ["color-contrast", "image-alt"]
