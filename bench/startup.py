"""Start-up, full reindex and page-render figures (issue 2).

    python bench/startup.py                     # demo content + 10,000 generated documents
    python bench/startup.py --docs 2000         # a smaller generated corpus
    python bench/startup.py --no-demo --repeats 3 --content /tmp/c10k   # an existing corpus

Prints one table per corpus, and the load average before and after each (timings on a shared
machine are noisy: quote medians, and the load beside them). Every figure stands beside a
baseline measured in the same run:

* start-up: ``create_app`` on an empty data dir (first sync: database, search index, history,
  similar-incident features) and on an unchanged one (the usual restart), beside ``create_app``
  with syncing switched off (the cost of Flask, imports and opening the database alone);
* full reindex: ``wiki reindex --full`` (``Wiki.sync(full=True)``) beside parsing every file
  only (``Store.scan``);
* where the time goes: the first start and the full reindex split into the database sync
  (reading, parsing, validating and writing the rows) and each listener of the sync (the search
  index, history, signature matcher, similar incidents), medians over the runs;
* page render: p50/p99 of ``GET`` a postmortem page over 200 requests through the Flask test
  client, *warm* (what a reader sees: the rendered body and the similar-incidents panel are
  remembered per revision) and *cold* (both caches cleared before each request, as the first
  view after a save), beside the JSON API for the same document (same lookup, no Markdown/HTML)
  and ``render_markdown`` of its body alone; and the very first view after start-up.

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

#: Phases of a sync, in the order they run (listeners by class name).
DATABASE = "database"

STARTUP_SNIPPET = """
import json, sys, time
sys.path[:0] = [sys.argv[4], sys.argv[4] + "/bench"]
from startup import instrument
phases = instrument()
t0 = time.perf_counter()
from wiki import create_app
app = create_app({"CONTENT_DIR": sys.argv[1], "DATA_DIR": sys.argv[2],
                  "SYNC_ON_START": sys.argv[3] == "1"})
print(json.dumps({"seconds": time.perf_counter() - t0, "phases": phases}))
"""


def instrument() -> dict[str, float]:
    """Time every sync from now on: ``{phase: seconds}`` (the database sync, then each listener's
    ``on_sync``), summed over the syncs. Patches :class:`wiki.core.Wiki` in this process."""
    from wiki import core

    phases: dict[str, float] = {}
    if getattr(core.Wiki.sync, "_instrumented", None) is not None:
        return core.Wiki.sync._instrumented

    def timed(name, method):
        """``method``, adding the time of each call to ``phases[name]``."""
        def on_sync(*args, **kwargs):
            t0 = time.perf_counter()
            try:
                return method(*args, **kwargs)
            finally:
                phases[name] = phases.get(name, 0.0) + time.perf_counter() - t0
        on_sync.timed = True
        return on_sync

    original = core.Wiki.sync

    def sync(self, full=False, progress=None):
        for listener in self.listeners:
            method = getattr(listener, "on_sync", None)
            if method is not None and not getattr(method, "timed", False):
                listener.on_sync = timed(type(listener).__name__, method)
        return original(self, full=full, progress=progress)

    core.db.sync = timed(DATABASE, core.db.sync)
    sync._instrumented = phases
    core.Wiki.sync = sync
    return phases


def startup(content: Path, data: Path, sync: bool) -> dict:
    out = subprocess.run(
        [sys.executable, "-c", STARTUP_SNIPPET, str(content), str(data), "1" if sync else "0",
         str(ROOT)],
        check=True, capture_output=True, text=True, cwd=ROOT,
    ).stdout
    result = json.loads(out.strip().splitlines()[-1])
    print(f"  start-up ({'sync' if sync else 'no sync'}): {fmt(result['seconds'])}; "
          f"{phase_text(result['phases'], result['seconds'])}; {load()}", file=sys.stderr,
          flush=True)
    return result


def percentile(values: list[float], pct: float) -> float:
    ordered = sorted(values)
    k = (len(ordered) - 1) * pct / 100
    lo, hi = int(k), min(int(k) + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (k - lo)


def fmt(seconds: float) -> str:
    return f"{seconds * 1000:,.1f} ms" if seconds < 10 else f"{seconds:,.1f} s"


def load() -> str:
    return "load average " + " / ".join(f"{x:.1f}" for x in os.getloadavg())


def median_phases(runs: list[dict[str, float]]) -> dict[str, float]:
    names = list(dict.fromkeys(name for run in runs for name in run))
    return {name: statistics.median(run.get(name, 0.0) for run in runs) for name in names}


def phase_text(phases: dict[str, float], total: float) -> str:
    parts = [f"{name} {fmt(seconds)}" for name, seconds in phases.items() if seconds >= 0.0005]
    rest = total - sum(phases.values())
    if rest >= 0.0005:
        parts.append(f"rest {fmt(rest)}")
    return "; ".join(parts)


class Rows(list):
    """Rows printed as soon as they are measured, so a long run shows progress."""

    def append(self, row) -> None:
        super().append(row)
        print("| " + " | ".join(row) + " |", flush=True)


def measure(label: str, content: Path, repeats: int = 3, requests: int = 200) -> list:
    print(f"\n### {label}\n\n({load()} at the start)\n")
    print("| measure | wiki | baseline (same run) |")
    print("|---|---|---|", flush=True)
    rows = Rows()
    work = Path(tempfile.mkdtemp(prefix="pw-bench-"))
    try:
        cold = [startup(content, work / f"cold-{n}", True) for n in range(repeats)]
        warm_data = work / "cold-0"
        warm = [startup(content, warm_data, True) for _ in range(repeats)]
        bare = [startup(content, work / "bare", False) for _ in range(repeats)]
        bare_s = statistics.median(r["seconds"] for r in bare)
        cold_s = statistics.median(r["seconds"] for r in cold)
        rows.append(("start-up, first (empty data dir)", fmt(cold_s),
                     f"{fmt(bare_s)} without sync"))
        rows.append(("start-up, unchanged content",
                     fmt(statistics.median(r["seconds"] for r in warm)),
                     f"{fmt(bare_s)} without sync"))

        phases = instrument()
        from wiki import create_app

        app = create_app({"CONTENT_DIR": content, "DATA_DIR": warm_data})
        wiki = app.extensions["wiki"]
        full, full_phases = [], []
        for _ in range(repeats):
            phases.clear()
            t0 = time.perf_counter()
            wiki.sync(full=True)
            full.append(time.perf_counter() - t0)
            full_phases.append(dict(phases))
            print(f"  full reindex: {fmt(full[-1])}; {phase_text(phases, full[-1])}; {load()}",
                  file=sys.stderr, flush=True)
        scan = []
        for _ in range(repeats):
            t0 = time.perf_counter()
            wiki.store.scan()
            scan.append(time.perf_counter() - t0)
        full_s = statistics.median(full)
        rows.append(("full reindex (`wiki reindex --full`)", fmt(full_s),
                     f"{fmt(statistics.median(scan))} parse only"))
        rows.append(("first start: where the time goes", "",
                     phase_text(median_phases([r["phases"] for r in cold]), cold_s)
                     + " (rest: Flask, imports, opening the database)"))
        rows.append(("full reindex: where the time goes", "",
                     phase_text(median_phases(full_phases), full_s)))

        from wiki import db, render

        similar = app.extensions.get("similar")

        def clear_caches():
            render._render_cached.cache_clear()
            panels = getattr(similar, "_panel_cache", None)
            if panels is not None:
                panels.clear()

        with wiki.session() as session:
            pm_rows, _ = db.list_documents(session, db.Filters(kind="postmortem"), limit=1)
        doc = wiki.get(pm_rows[0].id)
        client = app.test_client()
        url = client.get(f"/{doc.id}").headers["Location"]
        # The first view in a fresh process, before any page was ever shown: the similar
        # index's features computed by the syncs were never saved (they are saved by the first
        # similar query), so this view computes them all again.
        first = startup_first_view(content, warm_data, url)
        page, cold_page, api, md = [], [], [], []
        for _ in range(requests):
            t0 = time.perf_counter()
            response = client.get(url)
            page.append(time.perf_counter() - t0)
            assert response.status_code == 200, response.status_code
            clear_caches()  # the same page with nothing remembered
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
        words = f"{doc.id}, {len(doc.body.split()):,} words"
        for pct in (50, 99):
            rows.append((f"postmortem page p{pct}, warm ({words})", fmt(percentile(page, pct)),
                         f"API {fmt(percentile(api, pct))}; Markdown alone "
                         f"{fmt(percentile(md, pct))}"))
            rows.append((f"postmortem page p{pct}, cold (render and similar caches cleared)",
                         fmt(percentile(cold_page, pct)), ""))
        # And after a restart once pages have been shown (the features' cache is written).
        again = startup_first_view(content, warm_data, url)
        rows.append(("postmortem page, first view after a start-up, no page ever shown before",
                     fmt(first["page"]), f"{fmt(first['second'])} for the second view"))
        rows.append(("postmortem page, first view after a restart", fmt(again["page"]),
                     f"{fmt(again['second'])} for the second view"))
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print(f"\n({load()} at the end)", flush=True)
    return rows


FIRST_VIEW_SNIPPET = """
import json, sys, time
from wiki import create_app
app = create_app({"CONTENT_DIR": sys.argv[1], "DATA_DIR": sys.argv[2]})
client = app.test_client()
t0 = time.perf_counter()
assert client.get(sys.argv[3]).status_code == 200
page = time.perf_counter() - t0
t0 = time.perf_counter()
client.get(sys.argv[3])
print(json.dumps({"page": page, "second": time.perf_counter() - t0}))
"""


def startup_first_view(content: Path, data: Path, url: str) -> dict:
    out = subprocess.run(
        [sys.executable, "-c", FIRST_VIEW_SNIPPET, str(content), str(data), url],
        check=True, capture_output=True, text=True, cwd=ROOT,
    ).stdout
    return json.loads(out.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--docs", type=int, default=10_000, help="generated corpus size (0: skip)")
    parser.add_argument("--content", type=Path,
                        help="use this content folder instead of generating --docs documents")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--requests", type=int, default=200, help="page requests per figure")
    parser.add_argument("--no-demo", action="store_true", help="skip the demo content")
    args = parser.parse_args()
    print(f"python {sys.version.split()[0]}, {os.cpu_count()} cores; medians of {args.repeats} "
          f"runs for start-up and reindex; {load()}")
    if not args.no_demo:
        measure(f"demo content ({len(list((ROOT / 'content').rglob('*.md')))} documents)",
                ROOT / "content", args.repeats, args.requests)
    if args.content:
        n = len(list(args.content.rglob("*.md")))
        measure(f"{n:,} documents in {args.content}", args.content, args.repeats, args.requests)
    elif args.docs:
        from corpus import generate

        tmp = Path(tempfile.mkdtemp(prefix="pw-corpus-"))
        try:
            t0 = time.perf_counter()
            generate(tmp / "content", args.docs, seed=1)
            print(f"\n(generated {args.docs:,} documents in {time.perf_counter() - t0:.1f} s)")
            measure(f"{args.docs:,} generated documents", tmp / "content", args.repeats,
                    args.requests)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
