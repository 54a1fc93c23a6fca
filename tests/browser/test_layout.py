"""Every main page fits the window it is opened in, from a phone to a laptop: the page never scrolls sideways,
the top bar keeps every link reachable, and a table wider than its card scrolls inside the card instead of
being cut off."""

import pytest
from playwright.sync_api import Browser, Page

from tests.browser.main_pages import PERSONAS, main_pages
from tests.browser.test_account_journey import sign_in

pytestmark = pytest.mark.browser

PHONE, LAPTOP = 390, 1024

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
  const scrolls = ["auto", "scroll"].includes(getComputedStyle(list).overflowX);
  return [...list.querySelectorAll("a")]
    .filter((link) => link.getBoundingClientRect().right > window.innerWidth && !scrolls)
    .map((link) => link.textContent.trim());
}"""


def problems_at(browser: Browser, base: str, username: str, width: int) -> dict[str, list[str]]:
    context = browser.new_context(viewport={"width": width, "height": 900})
    page: Page = context.new_page()
    try:
        sign_in(page, base, username)
        found = {}
        for url in main_pages(username):
            response = page.goto(f"{base}{url}")
            assert response is not None and response.status == 200, url
            page.wait_for_load_state("networkidle")
            problems = page.evaluate(OVERFLOWS)
            unreachable = page.evaluate(UNREACHABLE_LINKS)
            if unreachable:
                problems.append(f"top-bar links out of reach: {', '.join(unreachable)}")
            if problems:
                found[url] = problems
        return found
    finally:
        context.close()


@pytest.mark.parametrize("width", [PHONE, LAPTOP])
@pytest.mark.parametrize("username", PERSONAS)
def test_every_main_page_fits_the_window(browser, live_server, demo, username, width):
    assert problems_at(browser, live_server.url, username, width) == {}


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
