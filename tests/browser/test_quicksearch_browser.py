"""Quick search under the header's search box in a real headless Chromium
(static/js/quicksearch.js): documents listed as you type, the word being typed matched as a
prefix, keyboard and mouse, the ARIA combobox, titles as text, a phone-sized screen, and the
plain form when JavaScript is off or the API fails."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import pytest

pytestmark = pytest.mark.browser

BOX = "#site-search-q"
LIST = "#site-search-listbox"
OPTIONS = "#site-search-listbox [role=option]"
HOSTILE = "<img src=x onerror=alert(1)> Quokka <script>alert(2)</script>"


def is_api(url: str) -> bool:
    return urlsplit(url).path == "/api/v1/search"


def api_queries(page) -> list[str]:
    """Start recording the ``q`` of every quick-search request the page makes."""
    seen: list[str] = []

    def record(request):
        url = urlsplit(request.url)
        if url.path == "/api/v1/search":
            seen.append(parse_qs(url.query).get("q", [""])[0])

    page.on("request", record)
    return seen


def type_and_wait(page, text: str) -> None:
    """Type into the header's box like a person and wait until the list shows this text."""
    page.click(BOX)
    page.keyboard.type(text, delay=30)
    page.wait_for_function(
        """text => { const list = document.getElementById('site-search-listbox');
                     const all = list && list.querySelector('.quicksearch__all');
                     return !list.hidden && !!all &&
                            all.textContent.includes('“' + text.trim() + '”'); }""",
        arg=text)


def shown_ids(page) -> list[str]:
    return page.eval_on_selector_all(
        f"{OPTIONS} .doc-id", "els => els.map(el => el.textContent)")


def is_open(page) -> bool:
    return page.evaluate(
        "() => { const l = document.getElementById('site-search-listbox'); "
        "return !!l && !l.hidden && l.getBoundingClientRect().height > 0; }")


def test_part_of_a_word_finds_the_document_as_you_type(live, page):
    queries = api_queries(page)
    page.goto(live.url + "/")
    type_and_wait(page, "bitfl")
    # "bitfl" is no word of the bitflip signature: only the prefix query finds it
    assert shown_ids(page)[0] == "SIG-1"
    first = page.locator(OPTIONS).first
    assert "Bitflip" in first.inner_text() and "signature" in first.inner_text()
    assert page.locator(OPTIONS).last.inner_text() == "Search for “bitfl” — all results"
    assert queries[-1] == "bitfl*"
    assert "b" not in queries  # nothing asked for one letter
    # the combobox pattern, as a screen reader reads it
    box = page.locator(BOX)
    assert box.get_attribute("role") == "combobox"
    assert box.get_attribute("aria-expanded") == "true"
    assert box.get_attribute("aria-autocomplete") == "list"
    assert page.get_attribute(f"#{box.get_attribute('aria-controls')}", "role") == "listbox"
    assert page.locator(f"{LIST} > li").count() == page.locator(OPTIONS).count()
    snapshot = page.locator("header").aria_snapshot()
    assert "combobox" in snapshot and "listbox" in snapshot and "option" in snapshot
    assert "Bitflip" in snapshot
    assert page.text_content("form.site-search [role=status]").startswith("1 document")


def test_an_id_is_listed_first(live, page):
    page.goto(live.url + "/postmortems/")
    type_and_wait(page, "SIG-2")
    assert shown_ids(page)[0] == "SIG-2"
    page.fill(BOX, "")
    type_and_wait(page, "pm-3")
    assert shown_ids(page)[0] == "PM-3"
    assert len(shown_ids(page)) <= 6


def test_arrows_and_enter_open_the_highlighted_document(live, page):
    page.goto(live.url + "/")
    type_and_wait(page, "PM-3")
    box = page.locator(BOX)
    assert box.get_attribute("aria-activedescendant") is None
    page.keyboard.press("ArrowDown")
    page.keyboard.press("ArrowDown")
    page.keyboard.press("ArrowUp")
    active = box.get_attribute("aria-activedescendant")
    first = page.locator(OPTIONS).first
    assert active == first.get_attribute("id")
    assert first.get_attribute("aria-selected") == "true"
    assert page.locator(f"{OPTIONS}[aria-selected=true]").count() == 1
    assert page.evaluate("document.activeElement.id") == "site-search-q"  # focus stays put
    page.keyboard.press("Enter")
    page.wait_for_url("**/postmortems/PM-3/**")
    assert page.locator("h1").first.inner_text().startswith("Email relay restart loop")


def test_up_from_the_box_reaches_search_for_all_results(live, page):
    page.goto(live.url + "/")
    type_and_wait(page, "retry sto")
    page.keyboard.press("ArrowUp")  # from the box, Up goes to the last option
    last = page.locator(OPTIONS).last
    assert page.get_attribute(BOX, "aria-activedescendant") == last.get_attribute("id")
    page.keyboard.press("Enter")
    page.wait_for_url("**/search?q=retry+sto")


def test_enter_with_nothing_highlighted_goes_to_the_search_page(live, page):
    page.goto(live.url + "/signatures/")
    type_and_wait(page, "retry storm")
    assert is_open(page)
    page.keyboard.press("Enter")
    page.wait_for_url("**/search?q=retry+storm")
    assert page.input_value(BOX) == "retry storm"
    assert not is_open(page)


def test_escape_closes_and_keeps_the_text(live, page):
    page.goto(live.url + "/")
    type_and_wait(page, "bitfl")
    page.keyboard.press("ArrowDown")
    page.keyboard.press("Escape")
    assert not is_open(page)
    assert page.get_attribute(BOX, "aria-expanded") == "false"
    assert page.get_attribute(BOX, "aria-activedescendant") is None
    page.keyboard.press("Escape")  # a search field would clear itself: not this one
    assert page.input_value(BOX) == "bitfl"
    assert page.evaluate("document.activeElement.id") == "site-search-q"
    page.keyboard.press("ArrowDown")  # reopens what was there
    assert is_open(page) and shown_ids(page)[0] == "SIG-1"
    page.keyboard.press("Escape")
    page.keyboard.press("Enter")  # closed, nothing highlighted: the full search
    page.wait_for_url("**/search?q=bitfl")


def test_mouse_click_opens_and_a_click_outside_closes(live, page):
    page.goto(live.url + "/")
    type_and_wait(page, "bitfl")
    page.mouse.click(5, 600)  # the page, not the header
    assert not is_open(page)
    page.click(BOX)
    page.keyboard.type("i")
    page.wait_for_function("() => !document.getElementById('site-search-listbox').hidden")
    page.locator(OPTIONS).filter(has_text="SIG-1").click()
    page.wait_for_url("**/signatures/SIG-1/**")


def test_titles_are_shown_as_text_never_as_html(live, page):
    dialogs = []
    page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
    page.goto(live.url + "/")
    created = page.request.post(live.url + "/api/v1/documents", data={
        "kind": "signature", "front_matter": {"title": HOSTILE},
        "body": "## How to recognise it\nThe quokka handshake stalls.\n"})
    assert created.status == 201, created.text()
    ident = created.json()["id"]
    type_and_wait(page, "quokk")
    option = page.locator(OPTIONS).filter(has_text=ident)
    assert option.locator(".quicksearch__title").text_content() == HOSTILE
    assert page.locator(f"{LIST} img, {LIST} script").count() == 0
    page.wait_for_timeout(300)  # an injected onerror would have fired by now
    assert dialogs == []


def test_a_later_answer_replaces_an_earlier_one_never_the_reverse(live, page):
    held = []

    def hold_the_first(route):
        if not held:
            held.append(route)  # the answer for "bitf" comes late
        else:
            route.continue_()

    page.route(is_api, hold_the_first)
    page.goto(live.url + "/")
    page.click(BOX)
    page.keyboard.type("bitf")
    page.wait_for_timeout(400)
    assert held and not is_open(page)
    page.keyboard.type("l")
    page.wait_for_function("() => !document.getElementById('site-search-listbox').hidden")
    assert shown_ids(page)[0] == "SIG-1"
    try:
        held[0].fulfill(status=200, content_type="application/json", body=(
            '{"total": 1, "facets": {}, "suggestion": null, "results": [{"id": "PM-99", '
            '"kind": "postmortem", "title": "Stale answer", "url": "/PM-99", "score": 1, '
            '"snippet": "", "section": null}]}'))
    except Exception:  # the script already aborted it: as good
        pass
    page.wait_for_timeout(300)
    assert "PM-99" not in shown_ids(page)
    assert page.locator(OPTIONS).last.inner_text() == "Search for “bitfl” — all results"


@pytest.mark.parametrize("failure", ["500", "network"])
def test_a_failing_api_closes_the_list_and_typing_goes_on(live, page, failure):
    def fail(route):
        if failure == "500":
            route.fulfill(status=500, content_type="application/json", body='{"error": "boom"}')
        else:
            route.abort()

    page.goto(live.url + "/")
    type_and_wait(page, "retr")
    page.route(is_api, fail)
    page.keyboard.type("y storm", delay=30)
    page.wait_for_timeout(500)
    assert not is_open(page)
    assert page.get_attribute(BOX, "aria-expanded") == "false"
    assert page.input_value(BOX) == "retry storm"
    page.unroute(is_api)
    page.keyboard.type("s")
    page.wait_for_function("() => !document.getElementById('site-search-listbox').hidden")
    page.keyboard.press("Enter")
    page.wait_for_url("**/search?q=retry+storms")


def test_only_the_word_being_typed_becomes_a_prefix(live, page):
    queries = api_queries(page)
    page.goto(live.url + "/")
    for text, sent in [("retry sto", "retry sto*"),       # the last word, 3 letters
                       ("retry st", "retry st"),          # too short
                       ("retry ", "retry "),              # finished with a space
                       ('"hash lis', '"hash lis'),        # inside quotes
                       ("service:search", "service:search"),  # a field:value
                       ("-staging", "-staging"),          # not a plain word
                       ("dns OR", "dns OR")]:             # an operator
        page.fill(BOX, "")
        type_and_wait(page, text)
        assert queries[-1] == sent, text


def test_debounced_while_typing(live, page):
    queries = api_queries(page)
    page.goto(live.url + "/")
    page.click(BOX)
    page.keyboard.type("b")
    page.wait_for_timeout(400)
    assert queries == [] and not is_open(page)
    page.keyboard.type("itflip", delay=25)
    page.wait_for_function("() => !document.getElementById('site-search-listbox').hidden")
    assert queries[-1] == "bitflip*"
    assert len(queries) <= 3, queries  # not one request per keystroke


def test_the_list_fits_a_phone_screen(live, browser):
    context = browser.new_context(viewport={"width": 390, "height": 844}, has_touch=True)
    try:
        page = context.new_page()
        page.goto(live.url + "/PM-1")
        type_and_wait(page, "retry")
        assert len(shown_ids(page)) == 6
        box = page.locator(LIST).bounding_box()
        assert box["x"] >= 0 and box["x"] + box["width"] <= 390, box
        assert box["width"] >= 390 - 2 * 8 - 1, box  # spans the screen, not just the box
        assert box["y"] + box["height"] <= 844, box
        rights = page.eval_on_selector_all(
            f"{LIST} *", "els => els.map(el => el.getBoundingClientRect().right)")
        assert max(rights) <= 390
        assert page.evaluate("document.documentElement.scrollWidth") <= 390
        page.tap(f"{OPTIONS} >> nth=0")
        page.wait_for_url("**/postmortems/PM-*/**")
    finally:
        context.close()


def test_the_list_sits_under_the_box_on_a_laptop(live, page):
    page.goto(live.url + "/PM-1")
    type_and_wait(page, "retry")
    form = page.locator("form.site-search").bounding_box()
    box = page.locator(LIST).bounding_box()
    assert box["y"] >= form["y"] + form["height"]
    assert box["width"] >= form["width"]
    assert abs((box["x"] + box["width"]) - (form["x"] + form["width"])) <= 1  # right-aligned
    assert box["x"] + box["width"] <= 1440 and box["x"] >= 0


def test_without_javascript_the_box_is_the_plain_form(live, browser):
    context = browser.new_context(java_script_enabled=False)
    try:
        page = context.new_page()
        page.goto(live.url + "/")
        assert page.get_attribute(BOX, "role") is None
        assert page.locator(LIST).count() == 0
        page.fill(BOX, "bitflip")
        page.press(BOX, "Enter")
        page.wait_for_url("**/search?q=bitflip")
        assert "SIG-1" in page.inner_text("main")
    finally:
        context.close()
