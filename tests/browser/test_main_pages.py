"""Every main page, as each persona sees it on a phone in the dark scheme and on a laptop in the light one:

- fits the window: the page never scrolls sideways, the top bar keeps every link within reach, and a table
  wider than its card scrolls inside the card instead of being cut off;
- passes axe-core's checks (WCAG 2.x A and AA, and its best practices), the dark colours' contrast included.

One walk through the pages per persona and setup serves both checks."""

import pytest
from axe_playwright_python.sync_playwright import Axe
from playwright.sync_api import Browser, Page, expect

from tests.browser.main_pages import PERSONAS, main_pages
from tests.browser.test_account_journey import sign_in

pytestmark = pytest.mark.browser

PHONE, LAPTOP = 390, 1024
SETUPS = {"phone, dark": (PHONE, "dark"), "laptop, light": (LAPTOP, "light")}
AXE = Axe()

# What overflows the window, as readable lines: the page's own width, and each table whose nearest clipping
# box (an ancestor that does not let content spill) cuts it off instead of scrolling it.
OVERFLOWS = """() => {
  const width = window.innerWidth, problems = [];
  const page = document.documentElement.scrollWidth;
  if (page > width) problems.push(`the page is ${page} px wide`);
  for (const table of document.querySelectorAll("table")) {
    if (!table.getClientRects().length) continue;
    let box = table.parentElement;
    while (box !== document.body && getComputedStyle(box).overflowX === "visible") box = box.parentElement;
    const scrolls = ["auto", "scroll"].includes(getComputedStyle(box).overflowX);
    const room = box === document.body ? width : box.clientWidth;
    if (!scrolls && table.getBoundingClientRect().width > room + 1) {
      problems.push(`table.${table.className.replaceAll(" ", ".")} is cut off`);
    }
  }
  return problems;
}"""

# Top-bar links a user cannot reach: outside the window, and in no box that scrolls them into it.
UNREACHABLE_LINKS = """() => {
  const list = document.querySelector(".topbar__links");
  if (!list) return [];  // the sign-in page has no top bar
  const scrolls = ["auto", "scroll"].includes(getComputedStyle(list).overflowX);
  return [...list.querySelectorAll("a")]
    .filter((link) => link.getBoundingClientRect().right > window.innerWidth && !scrolls)
    .map((link) => link.textContent.trim());
}"""


def violations(page: Page) -> list[str]:
    """axe-core's findings on the page as it stands, one line each: rule, impact and the first element."""
    found = AXE.run(page).response["violations"]
    return [f"{rule['id']} ({rule['impact']}): {rule['nodes'][0]['target']}" for rule in found]


def layout_problems(page: Page) -> list[str]:
    problems = page.evaluate(OVERFLOWS)
    if unreachable := page.evaluate(UNREACHABLE_LINKS):
        problems.append(f"top-bar links out of reach: {', '.join(unreachable)}")
    return problems


def findings_of(browser: Browser, base: str, username: str, width: int, scheme: str) -> dict[str, list[str]]:
    """Each page's layout problems and axe-core's violations, by path; the sign-in page's too."""
    context = browser.new_context(viewport={"width": width, "height": 900}, color_scheme=scheme)
    page = context.new_page()
    try:
        found = {}
        page.goto(f"{base}/login/")
        if problems := layout_problems(page) + violations(page):
            found["/login/"] = problems
        sign_in(page, base, username)
        for url in main_pages(username):
            response = page.goto(f"{base}{url}")
            assert response is not None and response.status == 200, url
            page.wait_for_load_state("networkidle")
            if problems := layout_problems(page) + violations(page):
                found[url] = problems
        return found
    finally:
        context.close()


@pytest.mark.parametrize("setup", SETUPS)
@pytest.mark.parametrize("username", PERSONAS)
def test_every_main_page_fits_the_window_and_passes_axe(browser, live_server, demo, username, setup):
    width, scheme = SETUPS[setup]
    assert findings_of(browser, live_server.url, username, width, scheme) == {}


def test_a_wide_table_on_a_phone_can_be_scrolled_from_the_keyboard(page, live_server, demo):
    """static/js/app.js gives a box that scrolls a tab stop, and takes it back once the box fits again."""
    page.set_viewport_size({"width": PHONE, "height": 900})
    sign_in(page, live_server.url, "csm1")
    page.goto(f"{live_server.url}/queue/")
    scroller = page.locator(".table-scroll").first

    # The script sets the tab stop from a ResizeObserver, after the page has loaded: wait for it.
    expect(scroller).to_have_attribute("tabindex", "0")
    scroller.focus()
    page.keyboard.press("ArrowRight")
    page.wait_for_function("() => document.querySelector('.table-scroll').scrollLeft > 0")

    page.set_viewport_size({"width": 1440, "height": 900})
    page.wait_for_function("() => !document.querySelector('.table-scroll').hasAttribute('tabindex')")


def test_the_checks_notice_a_page_too_wide_a_table_cut_off_and_a_link_out_of_reach(page, live_server, demo):
    """The checks above can fail: a banner wider than a phone, a card that clips its table, and a top bar
    that clips its links."""
    page.set_viewport_size({"width": PHONE, "height": 900})
    sign_in(page, live_server.url, "csm1")
    page.goto(f"{live_server.url}/queue/")
    page.evaluate(
        """() => {
          document.querySelector(".queue-table").closest(".table-scroll").style.overflowX = "hidden";
          const banner = document.createElement("div");
          banner.style.width = "600px";
          banner.style.height = "1px";
          document.querySelector("main").append(banner);
          const links = document.querySelector(".topbar__links");
          links.style.overflowX = "hidden";
          for (const name of ["Far away", "Further"]) {
            const item = document.createElement("li");
            item.innerHTML = `<a href="/">${name}</a>`;
            item.firstChild.style.width = "200px";
            links.append(item);
          }
        }"""
    )

    too_wide, cut_off = page.evaluate(OVERFLOWS)
    assert too_wide.startswith("the page is 6") and cut_off == "table.data-table.queue-table is cut off"
    assert page.evaluate(UNREACHABLE_LINKS) == ["Far away", "Further"]


def test_axe_notices_what_it_should(page, live_server, demo):
    """The axe check above can fail: an image without a text alternative and grey text on grey are found."""
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
