""""Copy link" on a document page in a real headless Chromium (static/js/copy-link.js): the short
link goes to the clipboard; with JavaScript off the button is a plain link to it."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.browser


def test_copy_link_puts_the_short_link_on_the_clipboard(live, context, page):
    context.grant_permissions(["clipboard-read", "clipboard-write"], origin=live.url)
    page.goto(f"{live.url}/postmortems/PM-3")
    url = page.url
    page.click("a[data-copy-link]")
    page.wait_for_function("() => document.querySelector('a[data-copy-link]').textContent "
                           "=== 'Copied'")
    assert page.url == url  # not followed
    assert page.evaluate("navigator.clipboard.readText()") == f"{live.url}/PM-3"
    status = page.text_content("[data-copy-link-status]")
    assert status == f"Link copied: {live.url}/PM-3"


def test_without_javascript_it_is_a_link_to_the_short_url(live, browser):
    context = browser.new_context(java_script_enabled=False)
    try:
        page = context.new_page()
        page.goto(f"{live.url}/signatures/SIG-2")
        with page.expect_navigation() as navigation:
            page.click("a[data-copy-link]")
        first = navigation.value.request.redirected_from
        assert first is not None and first.url == f"{live.url}/SIG-2"  # the short link…
        assert page.url.startswith(f"{live.url}/signatures/SIG-2/")  # …back to the page
    finally:
        context.close()
