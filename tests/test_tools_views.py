"""Editor tools over HTTP: the hints, timeline and upload APIs, /assets and /tools/timeline."""

from __future__ import annotations

import io
import json
import os
import re
import shutil
import threading

import pytest
from conftest import DEMO_CONTENT, make_app
from test_assets import WEBP_LOSSY, make_gif, make_jpeg, make_png

from tests.browser.conftest import CHROMIUM_ARGS, LiveServer
from wiki import create_app
from wiki.views import tools


def fetch(client, url, **kwargs):
    """GET and close (a served file stays open until its response is closed)."""
    response = client.get(url, **kwargs)
    response.get_data()
    response.close()
    return response


def with_tools(app):
    """Register the tools blueprint unless create_app does already (before the first request)."""
    if "tools" not in app.blueprints:
        app.register_blueprint(tools.bp)
    return app


@pytest.fixture
def app(content_dir, tmp_path):
    return with_tools(make_app(content_dir, tmp_path / "data"))


@pytest.fixture
def client(app):
    return app.test_client()


# --------------------------------------------------------------------------------------------
# POST /api/v1/hints


def test_hints_api(client):
    text = "Intro.\nIt was human error: Ana deleted the table."
    response = client.post("/api/v1/hints", json={"text": text, "names": ["Ana Lima"]})
    assert response.status_code == 200
    hints = response.get_json()["hints"]
    assert [(h["rule"], h["phrase"], h["line"], h["column"]) for h in hints] == [
        ("human-error", "human error", 2, 8), ("name-as-subject", "Ana deleted", 2, 21)]
    for h in hints:
        assert text[h["start"]:h["end"]] == h["phrase"]
        assert set(h) >= {"start", "end", "line", "column", "phrase", "suggestion"}


def test_hints_api_without_names_and_with_nothing_to_say(client):
    assert client.post("/api/v1/hints", json={"text": "All good."}).get_json() == {"hints": []}
    assert client.post("/api/v1/hints", json={"text": ""}).get_json() == {"hints": []}


@pytest.mark.parametrize("body, message", [
    ({"text": 5}, '"text" must be a string'),
    ({"text": "x", "names": [1, 2]}, '"names" must be a list of strings'),
    ([1, 2], "Send a JSON object"),
])
def test_hints_api_bad_requests(client, body, message):
    response = client.post("/api/v1/hints", json=body)
    assert response.status_code == 400
    assert message in response.get_json()["error"]


def test_hints_api_needs_json(client):
    response = client.post("/api/v1/hints", data="text=human error",
                           content_type="application/x-www-form-urlencoded")
    assert response.status_code == 400 and "JSON" in response.get_json()["error"]


def test_hints_api_size_limit(content_dir, tmp_path):
    app = with_tools(make_app(content_dir, tmp_path / "data", MAX_FILE_BYTES=1000))
    client = app.test_client()
    response = client.post("/api/v1/hints", json={"text": "x" * 1001})
    assert response.status_code == 413
    assert "limit is 1,000 bytes" in response.get_json()["error"]


def test_hints_file_setting(content_dir, tmp_path):
    rules = tmp_path / "rules.yml"
    rules.write_text("rules:\n  - name: hero\n    phrases: [rockstar]\n"
                     "    suggestion: Describe the work.\n", "utf-8")
    app = with_tools(make_app(content_dir, tmp_path / "data", HINTS_FILE=str(rules)))
    client = app.test_client()
    hints = client.post("/api/v1/hints", json={"text": "our rockstar, human error"}).get_json()
    assert [h["rule"] for h in hints["hints"]] == ["hero"]

    rules.write_text("rules: [broken", "utf-8")
    import os

    os.utime(rules, ns=(1, 3_000_000_000_000_000_000))
    response = client.post("/api/v1/hints", json={"text": "x"})
    assert response.status_code == 500
    assert "hints file is broken" in response.get_json()["error"]


def test_the_hints_partial_for_the_no_js_preview(app):
    from flask import render_template

    from wiki.hints import find_hints

    with app.test_request_context():
        html = render_template("tools/_hints.html",
                               hints=find_hints("**Bob** forgot. It was <i>human error</i>."))
        assert render_template("tools/_hints.html", hints=[]).strip() == ""
    assert "2 writing hints" in html
    assert '<span class="hint__phrase">human error</span>' in html
    assert "line 1" in html and "<i>" not in html


# --------------------------------------------------------------------------------------------
# POST /api/v1/timeline/parse


def test_timeline_api_plain_lines(client):
    text = "14:02 alice: restarted the pods\nand scaled up\n[14:05] bob: ok"
    response = client.post("/api/v1/timeline/parse",
                           json={"text": text, "day": "2023-06-14", "tz": "Europe/Berlin"})
    assert response.status_code == 200
    assert response.get_json()["lines"] == [
        {"time": "2023-06-14T14:02:00+02:00", "date": "2023-06-14", "display_time": "14:02",
         "author": "alice", "text": "restarted the pods\nand scaled up", "in_thread": False},
        {"time": "2023-06-14T14:05:00+02:00", "date": "2023-06-14", "display_time": "14:05",
         "author": "bob", "text": "ok", "in_thread": False},
    ]


def test_timeline_api_slack_export(client):
    export = [{"ts": "1686751320.000100", "user": "U1", "text": "hi <@U1>",
               "user_profile": {"real_name": "Alice"}},
              {"ts": "1686751300.000100", "subtype": "channel_join", "user": "U1",
               "text": "joined"}]
    lines = client.post("/api/v1/timeline/parse",
                        json={"text": json.dumps(export)}).get_json()["lines"]
    assert [(line["display_time"], line["author"], line["text"]) for line in lines] == [
        ("14:02", "Alice", "hi @Alice")]
    assert lines[0]["time"] == "2023-06-14T14:02:00+00:00"


@pytest.mark.parametrize("body, status, message", [
    ({"text": "14:02 a: b", "tz": "Mars/Base"}, 400, "Unknown time zone"),
    ({"text": "14:02 a: b", "day": "yesterday"}, 400, "is not a date"),
    ({"text": "14:02 a: b", "day": 5}, 400, '"day" and "tz" must be strings'),
    ({"text": "bin\x00ary"}, 400, "binary file"),
    ({"text": "x" * 4_000_001}, 413, "limit is 4,000,000 bytes"),
    ({"nope": 1}, 200, None),
])
def test_timeline_api_errors(client, body, status, message):
    response = client.post("/api/v1/timeline/parse", json=body)
    assert response.status_code == status
    if message:
        assert message in response.get_json()["error"]
    else:
        assert response.get_json() == {"lines": []}


# --------------------------------------------------------------------------------------------
# /tools/timeline (no JavaScript)


def test_timeline_page_form(client):
    page = client.get("/tools/timeline").get_data(as_text=True)
    assert '<textarea id="tl-text" name="text"' in page
    assert 'name="tz"' in page and 'name="day"' in page


def test_timeline_page_shows_a_markdown_table_escaped(client):
    text = "14:02 <script>alert(1)</script>: <b>restarted</b> | \"pods\" & more\n14:03 bob: ok"
    response = client.post("/tools/timeline", data={"text": text, "day": "2023-06-14", "tz": "UTC"})
    assert response.status_code == 200
    page = response.get_data(as_text=True)
    assert "<script>alert(1)</script>" not in page
    assert "<b>restarted</b>" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    # The Markdown table is in a read-only textarea, escaped; the pipe is escaped for Markdown.
    markdown = re.search(r'<textarea id="tl-markdown"[^>]*>(.*?)</textarea>', page, re.S).group(1)
    assert "| Time | Event |" in markdown
    assert "&lt;b&gt;restarted&lt;/b&gt; \\| &#34;pods&#34; &amp; more" in markdown
    assert "| 14:03 | bob: ok |" in markdown
    assert '<time datetime="2023-06-14T14:02:00+00:00">14:02</time>' in page


def test_timeline_page_errors_keep_the_text(client):
    response = client.post("/tools/timeline", data={"text": "14:02 a: <i>b</i>", "tz": "Nowhere/X"})
    assert response.status_code == 400
    page = response.get_data(as_text=True)
    assert "Unknown time zone" in page and "&#39;Nowhere/X&#39;" in page
    assert "14:02 a: &lt;i&gt;b&lt;/i&gt;</textarea>" in page


def test_timeline_page_nothing_found(client):
    response = client.post("/tools/timeline", data={"text": "   "})
    assert response.status_code == 400
    assert "Paste a chat transcript first" in response.get_data(as_text=True)
    page = client.post("/tools/timeline", data={"text": "[]"}).get_data(as_text=True)
    assert "No chat lines found" in page


# --------------------------------------------------------------------------------------------
# POST /api/v1/assets and GET /assets/…


@pytest.mark.parametrize("data, ext, content_type", [
    (make_png(), "png", "image/png"),
    (make_jpeg(), "jpg", "image/jpeg"),
    (make_gif(), "gif", "image/gif"),
    (WEBP_LOSSY, "webp", "image/webp"),
])
def test_upload_multipart_then_serve(client, content_dir, data, ext, content_type):
    response = client.post("/api/v1/assets",
                           data={"file": (io.BytesIO(data), "P99 graph.png")},
                           content_type="multipart/form-data")
    assert response.status_code == 201, response.get_json()
    body = response.get_json()
    assert re.fullmatch(rf"/assets/\d{{4}}/\d{{2}}/p99-graph-[0-9a-f]{{8}}\.{ext}", body["url"])
    assert body["markdown"] == f"![P99 graph]({body['url']})"
    assert body["path"] == body["url"][1:]
    assert (content_dir / body["path"]).read_bytes() == data
    assert response.headers["Location"].endswith(body["url"])

    served = fetch(client, body["url"])
    assert served.status_code == 200
    assert served.data == data
    assert served.headers["Content-Type"] == content_type
    assert served.headers["X-Content-Type-Options"] == "nosniff"
    assert "default-src 'none'" in served.headers["Content-Security-Policy"]
    assert "sandbox" in served.headers["Content-Security-Policy"]
    assert "attachment" not in served.headers.get("Content-Disposition", "")


def test_upload_raw_body_with_x_filename(client):
    response = client.post("/api/v1/assets", data=make_png(), content_type="image/png",
                           headers={"X-Filename": "Gr%C3%A4fik%20%C3%BCber.png"})
    assert response.status_code == 201
    assert "/grafik-uber-" in response.get_json()["url"]
    assert response.get_json()["markdown"].startswith("![Gräfik über](")


def test_upload_a_text_file_renamed_png_is_415(client, content_dir):
    response = client.post("/api/v1/assets",
                           data={"file": (io.BytesIO(b"hello, I am text"), "graph.png")},
                           content_type="multipart/form-data")
    assert response.status_code == 415
    assert "not a PNG, JPEG, GIF or WebP image" in response.get_json()["error"]
    assert not (content_dir / "assets").exists()


def test_upload_svg_is_415(client):
    response = client.post("/api/v1/assets", data=b"<svg onload='alert(1)'/>",
                           headers={"X-Filename": "x.svg"})
    assert response.status_code == 415
    assert "SVG" in response.get_json()["error"]


def test_upload_over_the_limit_is_413_with_the_limit(content_dir, tmp_path):
    app = with_tools(make_app(content_dir, tmp_path / "data", MAX_UPLOAD_BYTES=1000))
    client = app.test_client()
    big = make_png() + b"\x00" * 5000
    for kwargs in ({"data": {"file": (io.BytesIO(big), "big.png")},
                    "content_type": "multipart/form-data"},
                   {"data": big, "headers": {"X-Filename": "big.png"}},
                   {"data": make_png() + b"\x00" * 950, "headers": {"X-Filename": "big.png"}}):
        response = client.post("/api/v1/assets", **kwargs)
        assert response.status_code == 413
        assert "the limit is 1,000 bytes" in response.get_json()["error"]


def test_the_default_upload_limit_is_5_mb(client):
    big = make_png() + b"\x00" * (5 * 1024 * 1024)
    response = client.post("/api/v1/assets", data=big, headers={"X-Filename": "big.png"})
    assert response.status_code == 413
    assert "5,242,880 bytes (5 MB" in response.get_json()["error"]


@pytest.mark.parametrize("kwargs, message", [
    ({"data": make_png()}, "X-Filename"),
    ({"data": {"other": (io.BytesIO(make_png()), "x.png")}, "content_type": "multipart/form-data"},
     "multipart field 'file'"),
    ({"data": b"", "headers": {"X-Filename": "x.png"}}, "empty"),
])
def test_upload_bad_requests(client, kwargs, message):
    response = client.post("/api/v1/assets", **kwargs)
    assert response.status_code == 400
    assert message in response.get_json()["error"]


def test_upload_path_traversal_is_impossible(client, content_dir):
    response = client.post("/api/v1/assets", data=make_png(),
                           headers={"X-Filename": "..%2F..%2F..%2Fx.png"})
    assert response.status_code == 201
    path = (content_dir / response.get_json()["path"]).resolve()
    assert content_dir.resolve() / "assets" in path.parents
    assert not (content_dir.parent / "x.png").exists()


@pytest.mark.parametrize("url", [
    "/assets/2023/06/nope.png", "/assets/../postmortems/PM-1-checkout-latency.md",
    "/assets/%2e%2e/postmortems/PM-1-checkout-latency.md", "/assets/.git/config",
    "/assets/", "/assets/..%2f..%2fetc%2fpasswd",
])
def test_serving_missing_or_outside_files_is_404(client, content_dir, url):
    (content_dir / "assets" / ".git").mkdir(parents=True)
    (content_dir / "assets" / ".git" / "config").write_text("secret")
    response = fetch(client, url)
    assert response.status_code == 404
    assert b"secret" not in response.data and b"Checkout" not in response.data


def test_other_files_under_assets_are_downloads_never_html(client, content_dir):
    (content_dir / "assets").mkdir()
    (content_dir / "assets" / "page.html").write_text("<script>alert(1)</script>")
    (content_dir / "assets" / "d.svg").write_text("<svg onload='alert(1)'/>")
    for name in ("page.html", "d.svg"):
        response = fetch(client, f"/assets/{name}")
        assert response.status_code == 200
        assert response.headers["Content-Type"] == "application/octet-stream"
        assert response.headers["Content-Disposition"].startswith("attachment")
        assert response.headers["X-Content-Type-Options"] == "nosniff"


def test_served_images_answer_conditional_requests(client):
    url = client.post("/api/v1/assets", data=make_png(),
                      headers={"X-Filename": "g.png"}).get_json()["url"]
    first = fetch(client, url)
    again = fetch(client, url, headers={"If-None-Match": first.headers["ETag"]})
    assert again.status_code == 304


def test_uploaded_markdown_renders_as_an_image(client):
    from wiki.render import render_markdown

    markdown = client.post("/api/v1/assets", data=make_png(),
                           headers={"X-Filename": "g.png"}).get_json()["markdown"]
    html = str(render_markdown(markdown).html)
    url = markdown.split("](")[1][:-1]
    assert f'<img alt="g" src="{url}"' in html or f'<img src="{url}" alt="g"' in html


# --------------------------------------------------------------------------------------------
# /tools/image (no JavaScript)


def test_image_page_uploads_and_shows_the_markdown(client, content_dir):
    assert 'type="file"' in client.get("/tools/image").get_data(as_text=True)
    response = client.post("/tools/image", content_type="multipart/form-data",
                           data={"file": (io.BytesIO(make_png()), "<b>graph<b>.png")})
    assert response.status_code == 200
    page = response.get_data(as_text=True)
    markdown = re.search(r'<textarea id="img-markdown"[^>]*>(.*?)</textarea>', page, re.S).group(1)
    assert re.fullmatch(r"!\[b graph b\]\(/assets/\d{4}/\d{2}/b-graph-b-[0-9a-f]{8}\.png\)",
                        markdown)
    assert "<b>" not in page
    assert len(list((content_dir / "assets").rglob("*.png"))) == 1


@pytest.mark.parametrize("data, status, message", [
    ({"file": (io.BytesIO(b"<script>alert(1)</script>"), "x.png")}, 415, "not a PNG"),
    ({}, 400, "Choose an image file"),
])
def test_image_page_errors(client, data, status, message):
    response = client.post("/tools/image", content_type="multipart/form-data", data=data)
    assert response.status_code == status
    page = response.get_data(as_text=True)
    assert message in page and "<script>alert" not in page


# --------------------------------------------------------------------------------------------
# CSRF: /api/ is exempt from the app-wide check, but a cross-site form can post multipart


@pytest.fixture
def csrf_client(content_dir, tmp_path):
    app = with_tools(make_app(content_dir, tmp_path / "data", WTF_CSRF_ENABLED=True))
    return app.test_client()


def _token(client) -> str:
    page = client.get("/tools/timeline").get_data(as_text=True)
    return re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)


def test_multipart_uploads_need_the_csrf_token(csrf_client):
    def post(headers=None):
        return csrf_client.post("/api/v1/assets", headers=headers or {},
                                data={"file": (io.BytesIO(make_png()), "g.png")},
                                content_type="multipart/form-data")

    refused = post()
    assert refused.status_code == 400
    assert "This upload could not be accepted" in refused.get_json()["error"]
    assert post({"X-CSRFToken": _token(csrf_client)}).status_code == 201


def test_raw_uploads_and_json_apis_need_no_token(csrf_client):
    # A cross-site form can set neither X-Filename nor a JSON content type.
    assert csrf_client.post("/api/v1/assets", data=make_png(),
                            headers={"X-Filename": "g.png"}).status_code == 201
    assert csrf_client.post("/api/v1/hints", json={"text": "x"}).status_code == 200
    assert csrf_client.post("/api/v1/timeline/parse", json={"text": "x"}).status_code == 200


def test_the_image_form_needs_the_token(csrf_client):
    def post(extra):
        return csrf_client.post("/tools/image", content_type="multipart/form-data",
                                data={"file": (io.BytesIO(make_png()), "g.png"), **extra})

    assert post({}).status_code == 400
    assert post({"csrf_token": _token(csrf_client)}).status_code == 200


def test_the_timeline_form_carries_the_token(csrf_client):
    assert csrf_client.post("/tools/timeline", data={"text": "14:02 a: b"}).status_code == 400
    token = _token(csrf_client)
    response = csrf_client.post("/tools/timeline", data={"text": "14:02 a: b", "csrf_token": token})
    assert response.status_code == 200


# --------------------------------------------------------------------------------------------
# In a real browser: the three plug-ins on the editor page (CSRF on, as in production)

@pytest.fixture
def live_tools(tmp_path):
    content = tmp_path / "content"
    shutil.copytree(DEMO_CONTENT, content)
    app = with_tools(create_app({"CONTENT_DIR": content, "DATA_DIR": tmp_path / "data",
                                 "SECRET_KEY": "browser-tests", "HISTORY": "files"}))
    with LiveServer(app) as server:
        yield server


def in_browser(scenario) -> None:
    """Run ``scenario(browser)`` in a headless Chromium of its own, in a thread of its own: the
    browser tests' session-wide Playwright may be running in this thread already, and the sync
    API allows one per thread. Skipped without Chromium unless WIKI_REQUIRE_BROWSER=1."""
    executable = shutil.which("chromium") or shutil.which("chromium-browser")
    required = os.environ.get("WIKI_REQUIRE_BROWSER") == "1"
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        sync_playwright = None
    if not executable or sync_playwright is None:
        why = "no chromium on PATH" if not executable else "Playwright is not installed"
        if required:
            pytest.fail(f"WIKI_REQUIRE_BROWSER=1 but {why}")
        pytest.skip(why)
    failure: list[BaseException] = []

    def run():
        try:
            with sync_playwright() as p:
                browser = p.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
                try:
                    scenario(browser)
                finally:
                    browser.close()
        except BaseException as exc:  # noqa: BLE001 - re-raised in the test's thread
            failure.append(exc)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(timeout=300)
    assert not thread.is_alive(), "the browser scenario did not finish in 5 minutes"
    if failure:
        raise failure[0]


@pytest.mark.browser
def test_the_plugins_in_the_editor(live_tools, tmp_path):
    in_browser(lambda browser: _plugins_scenario(browser, live_tools, tmp_path))


def _plugins_scenario(browser, live_tools, tmp_path):
    context = browser.new_context(viewport={"width": 1400, "height": 1000}, timezone_id="UTC")
    context.set_default_timeout(15_000)
    page = context.new_page()
    problems = []
    page.on("pageerror", lambda exc: problems.append(str(exc)))
    try:
        page.goto(f"{live_tools.url}/postmortems/PM-1/edit")
        body = page.locator("#body")

        # Hints: typing shows them; a name from the form counts; clicking selects the phrase.
        page.fill('[name="authors"]', "Ana Lima")
        body.click()
        page.keyboard.press("Control+End")
        page.keyboard.type("\n\nIt was human error: Ana deleted the table.\n")
        page.wait_for_selector("#hints .hint")
        assert page.locator("#hints .hint__phrase").all_inner_texts() == [
            "human error", "Ana deleted"]
        page.locator("#hints .hint").first.click()
        assert page.evaluate("() => { const b = document.getElementById('body');"
                             " return b.value.slice(b.selectionStart, b.selectionEnd); }") \
            == "human error"

        # Timeline from chat: parse, shift-click a range, add the rows.
        page.click("text=Timeline from chat…")
        page.fill("#chat-timeline-text", "14:02 alice: restarted the pods\nand scaled up\n"
                                         "14:05 bob: <b>ok</b>\n14:07 carol: done")
        page.fill("#chat-timeline-day", "2021-03-04")
        page.fill("#chat-timeline-tz", "UTC")
        page.click("text=Find lines")
        boxes = page.locator(".chat-lines input")
        boxes.first.wait_for()
        assert boxes.count() == 3
        boxes.nth(0).click()
        boxes.nth(2).click(modifiers=["Shift"])
        page.locator(".chat-lines label").nth(1).click()  # untick the middle one
        page.click(".tools-dialog .tools-button--primary")
        rows = page.eval_on_selector_all(
            "#timeline-rows tr", "trs => trs.map(tr => [...tr.querySelectorAll("
            "'[name=tl_time], [name=tl_event]')].map(i => i.value))")
        # The demo timeline has dates, so the new rows get them too.
        assert ["2021-03-04 14:02", "alice: restarted the pods and scaled up"] in rows
        assert ["2021-03-04 14:07", "carol: done"] in rows
        assert not any("bob" in event for _, event in rows)

        # Images: the Image… button uploads (with the CSRF token) and inserts the Markdown.
        image = tmp_path / "p99 graph.png"
        image.write_bytes(make_png())
        with page.expect_file_chooser() as chooser:
            page.click("text=Image…")
        chooser.value.set_files(str(image))
        page.wait_for_function(
            "() => document.getElementById('body').value.includes('![p99 graph](/assets/')")
        assert "Uploading" not in body.input_value()
        page.wait_for_selector("#preview img[src^='/assets/']")
        assert page.eval_on_selector("#preview img[src^='/assets/']", "i => i.naturalWidth") == 2

        # A dropped text file is refused with the server's message, and leaves no placeholder.
        page.evaluate("""() => {
          const dt = new DataTransfer();
          dt.items.add(new File(['hello'], 'notes.png', {type: 'image/png'}));
          document.getElementById('body').dispatchEvent(
            new DragEvent('drop', {dataTransfer: dt, bubbles: true, cancelable: true}));
        }""")
        page.wait_for_selector(".upload-status--error")
        assert "not a PNG, JPEG, GIF or WebP image" in page.inner_text(".upload-status")
        assert "Uploading" not in body.input_value()
        assert problems == []
    finally:
        context.close()


def test_raw_uploads_need_an_api_token_once_one_exists(csrf_client, tmp_path):
    from wiki.tokens import TokenStore

    _, secret = TokenStore(tmp_path / "data").create("uploader")

    def raw(headers):
        return csrf_client.post("/api/v1/assets", data=make_png(),
                                headers={"X-Filename": "g.png", **headers})

    refused = raw({})
    assert refused.status_code == 401
    assert "token" in refused.get_json()["error"]
    assert raw({"Authorization": "Bearer pmw_not-the-token"}).status_code == 401
    assert raw({"Authorization": f"Bearer {secret}"}).status_code == 201
    # The editor's upload comes with the session's CSRF token and needs no API token.
    editor = csrf_client.post("/api/v1/assets", headers={"X-CSRFToken": _token(csrf_client)},
                              data={"file": (io.BytesIO(make_png()), "h.png")},
                              content_type="multipart/form-data")
    assert editor.status_code == 201
