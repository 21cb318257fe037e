"""Similar-incidents latency: a 2,000-character text against 10,000 documents.

    python bench/similar_latency.py                    # 10,000 documents, 200 texts
    python bench/similar_latency.py --docs 1000 --queries 50

Builds a temporary wiki from ``bench/corpus.py`` (``generate(content_dir, n_docs, seed)``),
starts the app as ``wiki serve`` would (database sync, search index, signature index, similar
index), then times, on the same texts in the same run:

* ``SimilarIndex.similar`` — the engine (every signal: key terms, error tokens, line templates,
  signatures, services and tags, fusion, reasons), top 10;
* ``POST /api/v1/similar`` — the same through the HTTP API (Flask's test client: routing, JSON,
  the view; no network);
* **baseline**: Whoosh ``Searcher.more_like`` with its default settings (5 key terms) on the
  same index's ``body`` field, top 10.

Each text is 2,000 characters of a corpus document's body (sections, error strings and stack
traces as the generator writes them), a different document for each query. The first query
(which loads the similar index's per-document features) is reported apart. Latencies are
medians and 99th percentiles (nearest rank). Numbers depend on the machine: the script prints
the CPU count and load average.
"""

from __future__ import annotations

import argparse
import logging
import math
import os
import platform
import random
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from corpus import generate  # noqa: E402

from wiki import create_app  # noqa: E402

TEXT_CHARS = 2000


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[max(0, math.ceil(p / 100 * len(ordered)) - 1)]


def texts_from(content: Path, n: int, seed: int) -> list[str]:
    files = sorted(content.glob("postmortems/*.md"))
    rng = random.Random(seed)
    out = []
    for path in rng.sample(files, min(n, len(files))):
        body = path.read_text("utf-8").split("\n---\n", 1)[-1].strip()
        while len(body) < TEXT_CHARS:
            body += "\n\n" + body
        cut = body[:TEXT_CHARS]
        out.append(cut)
    return out


def timed(fn, texts: list[str]) -> list[float]:
    out = []
    for text in texts:
        started = time.perf_counter()
        fn(text)
        out.append((time.perf_counter() - started) * 1000)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--docs", type=int, default=10_000)
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--keep", type=Path, help="build the wiki here and keep it")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)

    def say(text: str) -> None:
        print(text, flush=True)

    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    say(f"Python {platform.python_version()}, {os.cpu_count()} CPUs, load average {load:.2f}")
    workdir = args.keep or Path(tempfile.mkdtemp(prefix="wiki-similar-bench-"))
    try:
        content = workdir / "content"
        if not (content / "postmortems").exists():
            stats = generate(content, args.docs, args.seed)
            say(f"generated {stats.postmortems:,} postmortems and {stats.signatures:,} "
                f"signatures ({stats.bytes / 1e6:.1f} MB) in {stats.seconds:.1f} s")
        started = time.perf_counter()
        app = create_app({"CONTENT_DIR": content, "DATA_DIR": workdir / "data",
                          "TESTING": True, "SECRET_KEY": "bench"})
        say(f"app started (sync, search index, similar features) in "
            f"{time.perf_counter() - started:.1f} s")
        engine = app.extensions["similar"]
        search = app.extensions["search"]
        client = app.test_client()
        texts = texts_from(content, args.queries + 1, args.seed)
        first, texts = texts[0], texts[1:]

        started = time.perf_counter()
        engine.similar(first)
        say(f"first query (loads the features, writes their cache): "
            f"{(time.perf_counter() - started) * 1000:.0f} ms; {len(engine):,} documents")

        def more_like(text: str):
            s = search.index.searcher()
            return [hit["id"] for hit in s.more_like(-1, "body", text=text, top=10)]

        def api(text: str):
            response = client.post("/api/v1/similar", json={"text": text})
            assert response.status_code == 200, response.status_code

        for fn in (more_like, engine.similar, api):  # warm every path once
            fn(texts[0])
        rows = [
            ("SimilarIndex.similar (all signals, top 10)", timed(engine.similar, texts)),
            ("POST /api/v1/similar (HTTP API, test client)", timed(api, texts)),
            ("baseline: Whoosh more_like, default settings, top 10", timed(more_like, texts)),
        ]
        say(f"\n{args.docs:,} documents, {len(texts)} texts of {TEXT_CHARS:,} characters\n")
        say("| What | p50 | p99 |\n|---|---|---|")
        for name, values in rows:
            say(f"| {name} | {percentile(values, 50):.1f} ms | {percentile(values, 99):.1f} ms |")
        p50 = percentile(rows[0][1], 50)
        say(f"\nTarget p50 < 100 ms: {'met' if p50 < 100 else 'NOT met'} ({p50:.1f} ms)")
    finally:
        if not args.keep:
            shutil.rmtree(workdir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
