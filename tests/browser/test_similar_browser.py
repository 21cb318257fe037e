"""Similar incidents in a real headless Chromium: the panel follows the draft in the editor, and
"link" / "not related" work from the editor and from a document page. See conftest.py."""

from __future__ import annotations

import re

import pytest

from wiki import documents as d

pytestmark = pytest.mark.browser

HASH_LINE = ("2024-02-03T11:20:41Z WARN sync-api upload rejected reason=malformed_hash_list "
             "hash_list=3fa9c02b17e4d8a6l9b0e51c4d7a2f836")


def shown(page) -> list[str]:
    return page.eval_on_selector_all("#similar-panel .similar__item:not([hidden])",
                                     "items => items.map(i => i.dataset.id)")


def front_matter(live, ident: str) -> dict:
    content = live.wiki.content_dir
    path = next(content.glob(f"*/{ident}-*.md"))
    return d.parse(path.read_bytes(), path=str(path.relative_to(content))).front_matter


def test_the_panel_follows_the_draft_and_curates(live, page, screenshot):
    page.goto(f"{live.url}/postmortems/PM-5/edit")
    page.wait_for_selector("#similar-panel .similar__item")
    assert "SIG-1" not in shown(page)

    # Paste a log line of the bitflip bug: the signature and its postmortem come up
    page.click("#body")
    page.keyboard.press("Control+End")
    page.keyboard.insert_text("\n\n" + HASH_LINE + "\n")
    page.wait_for_function("() => [...document.querySelectorAll('#similar-panel .similar__item')]"
                           ".slice(0, 2).some(i => i.dataset.id === 'SIG-1')")
    assert {"SIG-1", "PM-1"} <= set(shown(page)[:3])
    panel = page.locator("#similar-panel").inner_text()
    assert "signature" in panel.lower()
    if screenshot.wanted:
        page.locator("#similar-panel").scroll_into_view_if_needed()
        screenshot(page, "similar-editor.png")

    # Not related: gone from the panel, remembered in the other document
    page.click("#similar-panel .similar__item[data-id='PM-1'] button[data-action='dismiss']")
    page.wait_for_function("() => !document.querySelector("
                           "'#similar-panel .similar__item[data-id=\"PM-1\"]:not([hidden])')")
    assert "PM-5" in front_matter(live, "PM-1")["not_related"]

    # Link: the other document lists this one; this form's Related field gets the id
    page.click("#similar-panel .similar__item[data-id='SIG-1'] button[data-action='link']")
    page.wait_for_function("() => /SIG-1/.test(document.getElementById('f-related').value)")
    assert "PM-5" in front_matter(live, "SIG-1")["related"]
    page.click("#save-button")
    page.wait_for_url(re.compile(r"/postmortems/PM-5/"))
    assert "SIG-1" in front_matter(live, "PM-5")["related"]


def test_link_from_a_document_page(live, page, screenshot):
    page.goto(f"{live.url}/postmortems/PM-3")
    first = page.locator("#similar-panel .similar__item").first
    target = first.get_attribute("data-id")
    assert first.locator(".similar__reasons li").count() >= 1
    if screenshot.wanted:
        page.locator("#similar-panel").scroll_into_view_if_needed()
        screenshot(page, "similar-page.png")
    first.locator("button", has_text="Link").click()
    page.wait_for_selector(".flash--success")
    assert target not in shown(page)
    assert target in front_matter(live, "PM-3")["related"]
    assert "PM-3" in front_matter(live, target)["related"]
