"""Editor figures (issue 4): live-preview round trip and save latency.

    python bench/editor.py                  # 10,000 generated documents
    python bench/editor.py --docs 2000      # a smaller corpus
    python bench/editor.py --no-browser     # skip the Chromium measurement

Every figure stands beside a baseline measured in the same run:

* preview: ``POST /preview`` of a 5,000-word postmortem (the editor's whole form, as editor.js
  sends it) through the Flask test client, beside ``render_markdown`` of the same text alone.
  Each request changes one character, as a keystroke does, so the renderer's cache never helps.
* keystroke → rendered preview, in headless Chromium over real HTTP (werkzeug on 127.0.0.1): type
  one character at the end of that postmortem's body and wait until the preview shows it. This
  includes editor.js's 300 ms debounce; the figure without it is given too.
* save: ``POST /postmortems/<id>/edit`` (the editor form, a changed body each time) with the
  generated documents in the wiki, through the Flask test client: validation, atomic write,
  database row, search index, revision log. Beside a plain atomic write (temp file, fsync,
  rename) of the same bytes, and beside ``Wiki.update`` called directly (no HTTP, no form).
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

import logging  # noqa: E402

from werkzeug.datastructures import MultiDict  # noqa: E402

logging.disable(logging.INFO)


def percentile(values: list[float], pct: float) -> float:
    ordered = sorted(values)
    k = (len(ordered) - 1) * pct / 100
    lo, hi = int(k), min(int(k) + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (k - lo)


def ms(seconds: float) -> str:
    return f"{seconds * 1000:,.1f} ms"


def form_data(form) -> MultiDict:
    """What the browser sends for an editor showing ``form``."""
    data = MultiDict()
    for name, value in form.fields.items():
        data.add(name, value)
    for name, value in (("kind", form.kind.name), ("body", form.body),
                        ("extra_yaml", form.extra_yaml), ("base_revision", form.base_revision),
                        ("tl_header_time", form.timeline.header[0]),
                        ("tl_header_event", form.timeline.header[1]),
                        ("tl_at", form.timeline.at)):
        data.add(name, value)
    for time_, event in form.shown_timeline():
        data.add("tl_time", time_)
        data.add("tl_event", event)
    for row in form.shown_rows("action_items"):
        for column in ("title", "owner", "due", "status", "ticket", "extra"):
            data.add(f"ai_{column}", row[column])
    return data


def long_postmortem(words: int = 5000) -> tuple[dict, str]:
    """A postmortem whose body has ``words`` words: sections, a timeline table, code, lists."""
    from corpus import CorpusGenerator

    writer = CorpusGenerator(seed=7)
    fm, body = writer.postmortem(1, 0)
    parts = [body]
    n = len(body.split())
    i = 0
    while n < words:
        i += 1
        paragraph = writer.paragraph([writer.error()], 6)
        bullets = f"- {writer.sentence([])}\n- {writer.sentence([])}\n"
        extra = f"\n\n## Notes {i}\n\n{paragraph}\n\n{bullets}"
        parts.append(extra)
        n += len(extra.split())
    return fm, "".join(parts)


def bench_preview(client, body: str, runs: int) -> tuple[list[float], list[float]]:
    from wiki.editing import EditorForm
    from wiki.render import render_markdown

    form = EditorForm.from_form("postmortem", MultiDict({"title": "x", "body": body}))
    base = form_data(form)
    http, alone = [], []
    for n in range(runs):
        text = f"{body}\n{n}"
        data = base.copy()
        data["body"] = text
        t0 = time.perf_counter()
        response = client.post("/preview", data=data)
        http.append(time.perf_counter() - t0)
        assert response.status_code == 200, response.status_code
        t0 = time.perf_counter()
        render_markdown(f"{body}\n{n}x")
        alone.append(time.perf_counter() - t0)
    return http, alone


def bench_saves(app, runs: int) -> tuple[list[float], list[float], list[float]]:
    from wiki import documents as d
    from wiki.editing import EditorForm
    from wiki.store import atomic_write

    wiki = app.extensions["wiki"]
    client = app.test_client()
    with wiki.session() as session:
        from wiki import db

        ids = sorted(i for i in db.all_ids(session) if i.startswith("PM-"))
    step = max(1, len(ids) // runs)
    targets = ids[::step][:runs]
    scratch = Path(tempfile.mkdtemp(prefix="bench-write-"))
    saves, writes, direct = [], [], []
    for n, ident in enumerate(targets):
        doc = wiki.get(ident)
        form = EditorForm.from_document(doc.kind, doc.front_matter, doc.body, doc.revision)
        data = form_data(form)
        data["body"] = form.body + f"\nEdited in the benchmark, save {n}.\n"
        data["message"] = "bench"
        t0 = time.perf_counter()
        response = client.post(f"/postmortems/{ident}/edit", data=data)
        saves.append(time.perf_counter() - t0)
        assert response.status_code == 303, response.get_data(as_text=True)[:500]
        with client.session_transaction() as session:  # the page after the redirect shows them
            session.pop("_flashes", None)

        saved = wiki.get(ident)
        raw = d.to_bytes(saved)
        t0 = time.perf_counter()
        atomic_write(scratch / f"{ident}.md", raw)
        writes.append(time.perf_counter() - t0)

        t0 = time.perf_counter()
        wiki.update(ident, saved.front_matter, saved.body + "Direct.\n", saved.revision,
                    message="bench direct")
        direct.append(time.perf_counter() - t0)
    shutil.rmtree(scratch, ignore_errors=True)
    return saves, writes, direct


def bench_keystrokes(app, body: str, runs: int) -> list[float] | None:
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if not chromium:
        print("(no chromium on PATH: keystroke figure skipped)")
        return None
    from playwright.sync_api import sync_playwright
    from werkzeug.serving import make_server

    wiki = app.extensions["wiki"]
    doc = wiki.create("postmortem", {"title": "Five thousand words"}, body)
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{server.server_port}/postmortems/{doc.id}/edit"
    times = []
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=chromium, args=[
                "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"])
            page = browser.new_page(viewport={"width": 1440, "height": 1000})
            page.goto(url)
            page.wait_for_function("document.querySelector('#preview h2')")
            page.click("#body")
            page.keyboard.press("Control+End")
            page.keyboard.type("\n\nZ")
            for n in range(runs):
                marker = f"Zq{n}"
                # Measured in the page: from the key event to the preview showing the marker.
                page.evaluate("""(marker) => {
                    window.__seen = null;
                    const start = performance.now();
                    const observer = new MutationObserver(() => {
                        if (document.getElementById('preview').textContent.includes(marker)) {
                            window.__seen = performance.now() - start; observer.disconnect();
                        }
                    });
                    observer.observe(document.getElementById('preview'),
                                     {childList: true, subtree: true});
                }""", marker)
                page.keyboard.type(f"q{n}" if n < 10 else f"q{n}", delay=0)
                page.wait_for_function("window.__seen !== null", timeout=10_000)
                times.append(page.evaluate("window.__seen") / 1000)
                page.keyboard.type(" ")
                page.keyboard.press("Backspace")
                page.keyboard.type("\nZ")
            browser.close()
    finally:
        server.shutdown()
        thread.join(timeout=10)
        server.server_close()
    return times


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--docs", type=int, default=10_000)
    parser.add_argument("--saves", type=int, default=200)
    parser.add_argument("--previews", type=int, default=100)
    parser.add_argument("--keystrokes", type=int, default=30)
    parser.add_argument("--no-browser", action="store_true")
    args = parser.parse_args(argv)

    from corpus import generate

    from wiki import create_app

    work = Path(tempfile.mkdtemp(prefix="bench-editor-"))
    try:
        content = work / "content"
        t0 = time.perf_counter()
        generate(content, args.docs, seed=1)
        print(f"generated {args.docs:,} documents in {time.perf_counter() - t0:.1f} s")
        t0 = time.perf_counter()
        app = create_app({"CONTENT_DIR": content, "DATA_DIR": work / "data", "TESTING": True,
                          "HISTORY": "files", "SECRET_KEY": "bench"})
        print(f"first start (database + index of {args.docs:,} documents): "
              f"{time.perf_counter() - t0:.1f} s")

        _fm, body = long_postmortem(5000)
        words = len(body.split())
        http, alone = bench_preview(app.test_client(), body, args.previews)
        saves, writes, direct = bench_saves(app, args.saves)
        keys = None if args.no_browser else bench_keystrokes(app, body, args.keystrokes)

        rows = [
            (f"Preview round trip, POST /preview, {words:,}-word postmortem (test client)",
             http, f"render_markdown alone: p50 {ms(statistics.median(alone))}"),
        ]
        if keys:
            rows.append(("Keystroke → preview shows it, headless Chromium, real HTTP "
                         "(incl. 300 ms debounce)", keys,
                         f"without the debounce: p50 {ms(statistics.median(keys) - 0.3)}"))
        rows.append((f"Save from the editor form, POST /postmortems/<id>/edit, {args.docs:,} "
                     "documents (test client)", saves,
                     f"atomic file write alone: p50 {ms(statistics.median(writes))}, "
                     f"p99 {ms(percentile(writes, 99))}; Wiki.update direct: p50 "
                     f"{ms(statistics.median(direct))}, p99 {ms(percentile(direct, 99))}"))
        print()
        print("| Figure | n | p50 | p99 | Baseline (same run) |")
        print("|---|---|---|---|---|")
        for label, values, baseline in rows:
            print(f"| {label} | {len(values)} | {ms(statistics.median(values))} | "
                  f"{ms(percentile(values, 99))} | {baseline} |")
        print(f"\nmachine: {os.cpu_count()} CPUs, Python {sys.version.split()[0]}")
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
