"""Layout in a real headless Chromium: on a laptop and on a phone, no page of the demo content is
wider than the screen and nothing sticks out of its column (long titles, error strings and
identifiers wrap), and the header fits on one line on a laptop."""

from __future__ import annotations

import pytest

from tests.conftest import DEMO_CONTENT

pytestmark = pytest.mark.browser

PAGES = ["/", "/postmortems/", "/signatures/", "/tags/", "/services/", "/seen",
         "/search?q=retry", "/search/help", "/new", "/problems"]
PAGES += [f"/{path.stem.split('-')[0]}-{path.stem.split('-')[1]}"
          for kind in ("postmortems", "signatures")
          for path in sorted((DEMO_CONTENT / kind).glob("*.md"))]

#: Elements further right than the viewport, outside the places that scroll on purpose (code
#: blocks, wide tables, the phone's swipeable navigation strip).
STICKING_OUT = """() => {
  const width = document.documentElement.clientWidth;
  const out = [];
  for (const el of document.querySelectorAll("main *, header *")) {
    if (el.closest("pre, table, .table-wrap, .highlight, .site-nav")) continue;
    const box = el.getBoundingClientRect();
    const name = `${el.tagName.toLowerCase()}.${el.className}`;
    if (box.width > 0 && box.right > width + 1) {
      out.push(`${name} ends at ${Math.round(box.right)}px`);
    }
    // a box whose content is wider than itself: something sticks out of its column
    const style = getComputedStyle(el);
    if (el.clientWidth > 0 && style.display !== "inline" && style.overflowX === "visible" &&
        el.scrollWidth > el.clientWidth + 8) {  // (hover backgrounds may bleed a few px)
      out.push(`${name}: content ${el.scrollWidth}px wide in ${el.clientWidth}px`);
    }
  }
  return {page: document.documentElement.scrollWidth, width, out: out.slice(0, 5)};
}"""


@pytest.mark.parametrize("viewport", [(1280, 900), (390, 844)], ids=["laptop", "phone"])
def test_no_demo_page_is_wider_than_the_screen(live, browser, viewport):
    context = browser.new_context(viewport={"width": viewport[0], "height": viewport[1]})
    try:
        page = context.new_page()
        problems = {}
        for path in PAGES:
            response = page.goto(live.url + path)
            assert response.status == 200, path
            found = page.evaluate(STICKING_OUT)
            if found["page"] > found["width"] or found["out"]:
                problems[path] = found
        assert problems == {}
    finally:
        context.close()


def test_the_header_fits_on_one_line_on_a_laptop(live, browser):
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    try:
        page = context.new_page()
        page.goto(live.url + "/PM-1")
        tops = page.evaluate("""() => ['.brand', '.site-nav', '.site-search'].map(
            s => Math.round(document.querySelector(s).getBoundingClientRect().top))""")
        assert max(tops) - min(tops) < 20, tops
    finally:
        context.close()


def test_slash_jumps_to_the_search_box_but_not_while_typing(live, page):
    page.goto(live.url + "/PM-1")
    page.keyboard.press("/")
    assert page.evaluate("document.activeElement.id") == "site-search-q"
    page.keyboard.type("retries")
    page.keyboard.press("Enter")
    page.wait_for_url("**/search?q=retries")
    # in a text field "/" is just a character
    page.goto(live.url + "/seen")
    page.click("main textarea")
    page.keyboard.type("a/b")
    assert page.input_value("main textarea") == "a/b"
    assert page.evaluate("document.activeElement.tagName") == "TEXTAREA"
