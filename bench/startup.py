"""Start-up, full reindex and page-render figures (issue 2).

    python bench/startup.py                 # demo content + 10,000 generated documents
    python bench/startup.py --docs 2000     # a smaller generated corpus

Prints one table per corpus. Every figure stands beside a baseline measured in the same run:

* start-up: ``create_app`` on an empty data dir (first sync: database + search index) and on an
  unchanged one (the usual restart), beside ``create_app`` with syncing switched off (the cost of
  Flask, imports and opening the database alone);
* full reindex: ``wiki reindex --full`` (``Wiki.sync(full=True)``: parse, database, index) beside
  parsing every file only (``Store.scan``);
* page render: p50/p99 of ``GET`` a postmortem page over 200 requests through the Flask test
  client, beside the JSON API for the same document (same lookup, no Markdown/HTML) and beside
  ``render_markdown`` of its body alone.

Start-up runs are separate processes so imports and caches are cold each time.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

STARTUP_SNIPPET = """
import json, sys, time
t0 = time.perf_counter()
from wiki import create_app
app = create_app({"CONTENT_DIR": sys.argv[1], "DATA_DIR": sys.argv[2],
                  "SYNC_ON_START": sys.argv[3] == "1"})
print(json.dumps({"seconds": time.perf_counter() - t0}))
"""


def startup_seconds(content: Path, data: Path, sync: bool) -> float:
    out = subprocess.run(
        [sys.executable, "-c", STARTUP_SNIPPET, str(content), str(data), "1" if sync else "0"],
        check=True, capture_output=True, text=True, cwd=ROOT,
    ).stdout
    return json.loads(out.strip().splitlines()[-1])["seconds"]


def percentile(values: list[float], pct: float) -> float:
    ordered = sorted(values)
    k = (len(ordered) - 1) * pct / 100
    lo, hi = int(k), min(int(k) + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (k - lo)


def fmt(seconds: float) -> str:
    return f"{seconds * 1000:,.1f} ms" if seconds < 10 else f"{seconds:,.1f} s"


class Rows(list):
    """Rows printed as soon as they are measured, so a long run shows progress."""

    def append(self, row) -> None:
        super().append(row)
        print("| " + " | ".join(row) + " |", flush=True)


def measure(label: str, content: Path, repeats: int = 3) -> list[tuple[str, str, str]]:
    print(f"\n### {label}\n")
    print("| measure | wiki | baseline (same run) |")
    print("|---|---|---|", flush=True)
    rows = Rows()
    work = Path(tempfile.mkdtemp(prefix="pw-bench-"))
    try:
        cold = []
        for _ in range(repeats):
            data = work / f"cold-{len(cold)}"
            cold.append(startup_seconds(content, data, True))
        warm_data = work / "cold-0"
        warm = [startup_seconds(content, warm_data, True) for _ in range(repeats)]
        bare = [startup_seconds(content, work / "bare", False) for _ in range(repeats)]
        rows.append(("start-up, first (empty data dir)", fmt(statistics.median(cold)),
                     f"{fmt(statistics.median(bare))} without sync"))
        rows.append(("start-up, unchanged content", fmt(statistics.median(warm)),
                     f"{fmt(statistics.median(bare))} without sync"))

        from wiki import create_app

        app = create_app({"CONTENT_DIR": content, "DATA_DIR": warm_data})
        wiki = app.extensions["wiki"]
        full = []
        for _ in range(repeats):
            t0 = time.perf_counter()
            wiki.sync(full=True)
            full.append(time.perf_counter() - t0)
        scan = []
        for _ in range(repeats):
            t0 = time.perf_counter()
            wiki.store.scan()
            scan.append(time.perf_counter() - t0)
        rows.append(("full reindex (parse + database + index)", fmt(statistics.median(full)),
                     f"{fmt(statistics.median(scan))} parse only"))

        from wiki import db, render

        with wiki.session() as session:
            pm_rows, _ = db.list_documents(session, db.Filters(kind="postmortem"), limit=1)
        doc = wiki.get(pm_rows[0].id)
        client = app.test_client()
        url = client.get(f"/{doc.id}").headers["Location"]
        page, cold_page, api, md = [], [], [], []
        for _ in range(200):
            t0 = time.perf_counter()
            response = client.get(url)
            page.append(time.perf_counter() - t0)
            assert response.status_code == 200, response.status_code
            render._render_cached.cache_clear()  # the same page with nothing cached
            t0 = time.perf_counter()
            client.get(url)
            cold_page.append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            client.get(f"/api/v1/documents/{doc.id}")
            api.append(time.perf_counter() - t0)
            render._render_cached.cache_clear()
            t0 = time.perf_counter()
            render.render_markdown(doc.body)
            md.append(time.perf_counter() - t0)
        for pct in (50, 99):
            rows.append((f"postmortem page p{pct} ({doc.id}, {len(doc.body.split()):,} words)",
                         fmt(percentile(page, pct)),
                         f"API {fmt(percentile(api, pct))}; Markdown alone "
                         f"{fmt(percentile(md, pct))}"))
            rows.append((f"postmortem page p{pct}, render cache cleared",
                         fmt(percentile(cold_page, pct)), ""))
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--docs", type=int, default=10_000, help="generated corpus size (0: skip)")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    print(f"python {sys.version.split()[0]}, {os.cpu_count()} cores; medians of {args.repeats} runs "
          "for start-up and reindex")
    measure(f"demo content ({len(list((ROOT / 'content').rglob('*.md')))} documents)",
            ROOT / "content", args.repeats)
    if args.docs:
        from corpus import generate

        tmp = Path(tempfile.mkdtemp(prefix="pw-corpus-"))
        try:
            t0 = time.perf_counter()
            generate(tmp / "content", args.docs, seed=1)
            print(f"\n(generated {args.docs:,} documents in {time.perf_counter() - t0:.1f} s)")
            measure(f"{args.docs:,} generated documents", tmp / "content", args.repeats)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
