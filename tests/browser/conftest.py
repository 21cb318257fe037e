"""Browser tests: the real app on a free port, driven by Debian's headless Chromium.

Without a ``chromium`` on PATH the tests are skipped, unless ``WIKI_REQUIRE_BROWSER=1`` (set by
CI), which turns the skip into a failure. ``WIKI_SCREENSHOTS=1`` makes the tests that show the
editor, the conflict view and the history diff save them to ``docs/screenshots/``.
"""

from __future__ import annotations

import os
import shutil
import threading

import pytest
from werkzeug.serving import make_server

from tests.conftest import DEMO_CONTENT, ROOT
from wiki import create_app

SCREENSHOTS = ROOT / "docs" / "screenshots"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]



@pytest.fixture(scope="session")
def browser():
    executable = shutil.which("chromium") or shutil.which("chromium-browser")
    if not executable:
        if os.environ.get("WIKI_REQUIRE_BROWSER") == "1":
            pytest.fail("WIKI_REQUIRE_BROWSER=1 but no chromium on PATH (apt-get install chromium)")
        pytest.skip("no chromium on PATH (apt-get install chromium); CI runs these tests")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        if os.environ.get("WIKI_REQUIRE_BROWSER") == "1":
            pytest.fail("WIKI_REQUIRE_BROWSER=1 but Playwright is not installed")
        pytest.skip("Playwright is not installed (pip install -e '.[test]')")
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


class LiveServer:
    """The app served by werkzeug in a thread, on 127.0.0.1 and a free port."""

    def __init__(self, app):
        self.app = app
        self.server = make_server("127.0.0.1", 0, app, threaded=True)
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def wiki(self):
        return self.app.extensions["wiki"]

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.server.shutdown()
        self.thread.join(timeout=10)
        self.server.server_close()


@pytest.fixture
def live(tmp_path):
    """A fresh copy of the demo content, served with CSRF on, as in production."""
    content = tmp_path / "content"
    shutil.copytree(DEMO_CONTENT, content)
    app = create_app({"CONTENT_DIR": content, "DATA_DIR": tmp_path / "data",
                      "SECRET_KEY": "browser-tests", "HISTORY": "files"})
    with LiveServer(app) as server:
        yield server


@pytest.fixture
def context(browser):
    context = browser.new_context(viewport={"width": 1440, "height": 1000}, locale="en-GB",
                                  timezone_id="UTC")
    context.set_default_timeout(15_000)
    yield context
    context.close()


@pytest.fixture
def page(context):
    return context.new_page()


@pytest.fixture
def screenshot():
    """``screenshot(page, "editor.png")`` saves a full-page picture when WIKI_SCREENSHOTS=1."""

    def take(page, name: str, **kwargs):
        if not take.wanted:
            return None
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        path = SCREENSHOTS / name
        page.screenshot(path=str(path), **kwargs)
        return path

    take.wanted = os.environ.get("WIKI_SCREENSHOTS") == "1"
    return take
