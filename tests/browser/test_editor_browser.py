"""The editor in a real headless Chromium: templates, fields, preview, autosave, conflicts,
history. See conftest.py for the server and the browser."""

from __future__ import annotations

import re

import pytest

pytestmark = pytest.mark.browser

DRAFT_KEYS = "() => Object.keys(localStorage).filter(k => k.startsWith('wiki-draft:'))"


def wait_for_draft(page):
    page.wait_for_function("() => /Draft kept in this browser/.test("
                           "document.getElementById('autosave-status').textContent)")


def type_at_end(page, text: str):
    page.click("#body")
    page.keyboard.press("Control+End")
    page.keyboard.type(text)


def test_write_a_postmortem_from_a_template(live, page, screenshot):
    page.goto(f"{live.url}/")
    page.click("text=New postmortem")
    page.check("input[value='postmortem-full']")
    page.fill("#f-title", "Checkout 502s after the load balancer certificate rotation")
    page.click("text=Create and start writing")
    page.wait_for_url(re.compile(r"/postmortems/PM-12/edit$"))
    assert page.locator(".flash--success").inner_text().startswith("Created PM-12 as a draft")

    # Fields
    page.select_option("#f-severity", "SEV2")
    page.fill("#f-date", "2024-03-11")
    page.fill("#f-started_at", "2024-03-11T09:02")
    page.select_option("#f-started_at_tz", "+01:00")
    page.fill("#f-detected_at", "2024-03-11T09:09")
    page.select_option("#f-detected_at_tz", "+01:00")
    page.fill("#f-services", "checkout, edge-lb")
    page.fill("#f-tags", "tls, certificates")
    page.fill("#f-incident_commander", "Rafael")
    page.fill("#f-customer_impact",
              "About 4% of checkout requests failed with HTTP 502 for 38 minutes.")
    page.select_option("#f-root_cause_category", "config-change")
    page.select_option("#f-detection", "alert")

    # Timeline rows, one added in place by the script
    rows = page.locator("#timeline-rows tr")
    rows.nth(0).locator("input[name=tl_time]").fill("09:02")
    rows.nth(0).locator("input[name=tl_event]").fill(
        "Certificate rotation job replaces the edge certificate")
    rows.nth(1).locator("input[name=tl_time]").fill("09:09")
    rows.nth(1).locator("input[name=tl_event]").fill("Alert: checkout 5xx above 2%")
    before = rows.count()
    page.click("[data-add-row='add-tl']")
    assert rows.count() == before + 1
    page.evaluate(
        "WikiEditor.addTimelineRow('09:40', 'Old certificate chain restored; errors stop')")

    # Action items
    items = page.locator("#action-item-rows tr")
    items.nth(0).locator("input[name=ai_title]").fill("Check the full chain before a rotation")
    items.nth(0).locator("input[name=ai_owner]").fill("Ana")
    items.nth(0).locator("input[name=ai_due]").fill("2024-04-01")
    items.nth(0).locator("input[name=ai_ticket]").fill("NET-812")
    items.nth(1).locator("input[name=ai_title]").fill("Alert on TLS handshake failures at the edge")
    items.nth(1).locator("select[name=ai_status]").select_option("open")

    # The body, with the toolbar and a shortcut, and the live preview
    page.click("#body")
    page.keyboard.press("Control+Home")
    page.keyboard.press("Control+End")
    type_at_end(page, "\n\nThe rotation job installed a certificate without its ")
    page.keyboard.press("Control+b")
    page.keyboard.type("intermediate")
    page.keyboard.press("ArrowRight")
    page.keyboard.press("ArrowRight")
    page.keyboard.type(" chain.")
    page.wait_for_function(
        "() => document.querySelector('#preview strong')?.textContent === 'intermediate'")
    assert page.locator("#preview td", has_text="Old certificate chain restored").count() == 1
    wait_for_draft(page)
    if screenshot.wanted:
        # A viewport as tall as the page, so the sticky save bar sits at the bottom.
        page.locator("#body").evaluate("el => el.scrollTop = 0")
        height = page.evaluate("document.documentElement.scrollHeight")
        page.set_viewport_size({"width": 1440, "height": height})
        screenshot(page, "editor.png")
        page.set_viewport_size({"width": 1440, "height": 1000})

    # Reload: the browser offers the draft back
    page.reload()
    offer = page.locator("#draft-offer")
    offer.wait_for(state="visible")
    assert "Restore unsaved draft from" in offer.inner_text()
    page.click("[data-draft-restore]")
    assert page.input_value("#f-severity") == "SEV2"
    assert page.input_value("#f-started_at_tz") == "+01:00"
    assert "**intermediate** chain." in page.input_value("#body")
    assert page.locator("#timeline-rows input[name=tl_event]").nth(2).input_value() == \
        "Old certificate chain restored; errors stop"
    assert page.locator("#action-item-rows input[name=ai_owner]").first.input_value() == "Ana"

    # Save
    page.fill("#f-message", "First draft from the incident channel")
    page.fill("#f-author", "Ana Lima")
    page.click("#save-button")
    page.wait_for_url(re.compile(r"/postmortems/PM-12/checkout-502s"))
    assert "Saved PM-12" in page.locator(".flash--success").inner_text()
    page.wait_for_function(f"() => ({DRAFT_KEYS})().length === 0")

    doc = live.wiki.get("PM-12")
    fm = doc.front_matter
    assert fm["status"] == "draft" and fm["severity"] == "SEV2"
    assert fm["started_at"].isoformat() == "2024-03-11T09:02:00+01:00"
    assert fm["services"] == ["checkout", "edge-lb"]
    assert fm["action_items"][0] == {"title": "Check the full chain before a rotation",
                                     "owner": "Ana", "due": fm["action_items"][0]["due"],
                                     "status": "open", "ticket": "NET-812"}
    assert fm["action_items"][0]["due"].isoformat() == "2024-04-01"
    assert "| 09:40 | Old certificate chain restored; errors stop |" in doc.section("Timeline")
    assert "**intermediate** chain." in doc.body
    assert live.app.extensions["history"].list("PM-12")[0].message == \
        "First draft from the incident channel"


def test_ctrl_s_saves_and_keeps_editing(live, page):
    page.goto(f"{live.url}/postmortems/PM-3/edit")
    type_at_end(page, "\nOne more line.\n")
    page.keyboard.press("Control+s")
    page.wait_for_url(re.compile(r"/postmortems/PM-3/edit$"))
    page.locator(".flash--success").wait_for()
    assert live.wiki.get("PM-3").body.endswith("One more line.\n")


def test_two_browsers_edit_the_same_document(live, browser, screenshot):
    first = browser.new_context(viewport={"width": 1440, "height": 1000}, timezone_id="UTC")
    second = browser.new_context(viewport={"width": 1440, "height": 1000}, timezone_id="UTC")
    try:
        a, b = first.new_page(), second.new_page()
        url = f"{live.url}/postmortems/PM-3/edit"
        a.goto(url)
        b.goto(url)
        body = a.input_value("#body")
        summary = re.search(r"## Summary\n\n(.+)", body).group(1)

        a.fill("#body", body.replace(summary, summary + " Alice adds a sentence here."))
        a.fill("#f-author", "Alice")
        a.click("#save-button")
        a.wait_for_url(re.compile(r"/postmortems/PM-3/[a-z]"))

        b.fill("#body", body.replace(summary, summary + " Bob adds another one."))
        b.fill("#f-author", "Bob")
        b.click("#save-button")
        b.locator("#conflict").wait_for()
        assert "was saved by someone else while you were editing" in b.inner_text("#conflict")
        assert "Alice" in b.inner_text("#conflict")
        assert "Bob adds another one." in b.input_value("#conflict-mine")
        assert "Alice adds a sentence here." in b.input_value("#conflict-theirs")
        merged = b.input_value("#body")
        assert "<<<<<<< yours" in merged and "Alice adds a sentence here." in merged
        if screenshot.wanted:
            b.set_viewport_size({"width": 1440, "height": 1500})
            b.evaluate("window.scrollTo(0, 0)")
            screenshot(b, "conflict.png")

        # the server kept Alice's version; Bob's is on the page and in his browser's drafts
        assert "Alice adds a sentence here." in live.wiki.get("PM-3").body
        drafts = b.evaluate(DRAFT_KEYS)
        assert any(k.startswith("wiki-draft:PM-3:") for k in drafts)

        resolved = re.sub(r"<<<<<<< yours\n(.*?)\n=======\n(.*?)\n>>>>>>> current\n",
                          lambda m: m.group(2).rstrip() + " Bob adds another one.\n", merged,
                          flags=re.S)
        b.fill("#body", resolved)
        b.click("#save-button")
        b.wait_for_url(re.compile(r"/postmortems/PM-3/[a-z]"))
        saved = live.wiki.get("PM-3").body
        assert "Alice adds a sentence here." in saved and "Bob adds another one." in saved
        b.wait_for_function(f"() => ({DRAFT_KEYS})().length === 0")
    finally:
        first.close()
        second.close()


def test_restore_an_old_revision_from_history(live, page, screenshot):
    wiki = live.wiki

    def save(message):
        page.fill("#f-message", message)
        page.click("#save-button")
        page.wait_for_url(re.compile(r"/postmortems/PM-4/[a-z]"))

    page.goto(f"{live.url}/postmortems/PM-4/edit")
    page.fill("#f-title", "Weekly cron job nulled the customer group key")
    save("Shorter title")
    first = wiki.get("PM-4")

    page.goto(f"{live.url}/postmortems/PM-4/edit")
    body = page.input_value("#body")
    page.fill("#body", body.replace(
        "## Summary\n\n", "## Summary\n\nReviewed on 2020-02-20 with the billing team. ", 1))
    rows = page.locator("#action-item-rows tr")
    blank = rows.count() - 2
    rows.nth(blank).locator("input[name=ai_title]").fill("Alert when a group loses its pricing")
    rows.nth(blank).locator("input[name=ai_owner]").fill("Olu")
    save("Review notes and one more action")
    assert "Reviewed on 2020-02-20" in wiki.get("PM-4").body

    page.click("text=History")
    page.wait_for_url(re.compile(r"/postmortems/PM-4/history"))
    page.click("text=Compare selected revisions")
    page.wait_for_url(re.compile(r"/postmortems/PM-4/diff"))
    assert page.locator(".diff--insert", has_text="Reviewed on 2020-02-20").count() == 1
    screenshot(page, "history-diff.png")

    page.locator(".restore-form button").click()
    page.wait_for_url(re.compile(r"/postmortems/PM-4/[a-z]"))
    assert "Restored revision" in page.locator(".flash--success").inner_text()
    restored = wiki.get("PM-4")
    assert restored.body == first.body and restored.title == first.title
    assert "Restore revision" in live.app.extensions["history"].list("PM-4")[0].message


def test_a_20_mb_body_is_refused_in_the_browser_and_kept(live, page):
    page.set_default_timeout(120_000)  # Chromium takes seconds to lay out 720,000 lines
    page.goto(f"{live.url}/postmortems/PM-5/edit")
    page.evaluate("""() => {
        const body = document.getElementById('body');
        body.value = body.value + '\\n' + ('x'.repeat(1000) + '\\n').repeat(21000);
        body.dispatchEvent(new Event('input', {bubbles: true}));
    }""")
    size = page.evaluate("() => new Blob([document.getElementById('body').value]).size")
    assert size > 20_000_000
    page.click("#save-button")
    error = page.locator("#body-size-error")
    error.wait_for()
    assert "bytes; a document can be at most 2,000,000 bytes" in error.inner_text()
    assert "kept as a draft in this browser" in error.inner_text()
    assert page.url.endswith("/postmortems/PM-5/edit")
    assert len(live.wiki.get("PM-5").body) < 1_000_000

    wait_for_draft(page)
    page.reload()
    page.locator("#draft-offer").wait_for(state="visible")
    page.click("[data-draft-restore]")
    assert page.evaluate("() => document.getElementById('body').value.length") > 20_000_000


def test_the_editor_works_without_javascript(live, browser):
    context = browser.new_context(java_script_enabled=False)
    try:
        page = context.new_page()
        page.goto(f"{live.url}/postmortems/PM-6/edit")
        page.fill("#body", "## Summary\n\nWritten **without** scripts.\n")
        page.locator(".editor-savebar button[value=preview]").click()
        assert page.locator("#preview strong").inner_text() == "without"
        assert "Written **without** scripts." in page.input_value("#body")
        page.locator("#timeline-rows input[name=tl_time]").first.fill("10:00")
        page.locator("#timeline-rows input[name=tl_event]").first.fill("Written by hand")
        page.click("#save-button")
        page.wait_for_url(re.compile(r"/postmortems/PM-6/[a-z]"))
        doc = live.wiki.get("PM-6")
        assert "Written **without** scripts." in doc.body
        assert "| 10:00 | Written by hand |" in doc.body
    finally:
        context.close()
