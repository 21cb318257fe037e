"""Search benchmark: Whoosh through the app's HTTP API, against SQLite FTS5 on the same corpus.

    python bench/search.py                      # 1,000 and 10,000 documents (a few minutes)
    python bench/search.py --docs 100000        # the long run (see docs/benchmarks.md)
    python bench/search.py --docs 2000 --queries 50 --json results.json

For each corpus size it generates documents with ``bench/corpus.py`` into a temporary wiki and
measures:

* **Build**: the database sync (not search, for reference), the index build from parsed
  documents (build rate), the full rebuild from the files (``Search.reindex(full=True)``: read
  and parse every file, then index), and the index's size on disk.
* **Queries**, five kinds, each a set of *different* queries so no answer comes from a cache
  (the index's cache of recent matches is also cleared before each one):
  ``term`` (one word: a third frequent, a third middling, a third rare words, and error tokens),
  ``multi`` (two or three words), ``phrase`` (a quoted phrase), ``filtered`` (a word plus a
  service, severity or year filter) — these four without facet counts — and ``faceted`` (a word
  with the seven facet counts, what the search page asks for). Each through the HTTP API with
  Flask's test client (``GET /api/v1/search``: routing, the view, JSON; no network or server),
  and the same call on the search object directly, to show what the HTTP layer costs.
* **The same queries on SQLite FTS5** (``porter unicode61`` tokenizer, bm25 ranking with the
  title weighted, ``snippet()``, a ``count(*)`` for the total, metadata in a side table for
  filters and ``GROUP BY`` facet counts), built from the same documents in the same run.
* **Save to searchable**: ``Wiki.create`` (and ``Wiki.update``) of a document with a new word,
  then API queries until it is found; the time from the start of the save.

Latencies are medians and percentiles (nearest rank), never means. Numbers depend on the
machine and on what else runs on it: the script prints the CPU count and load average.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import random
import re
import shutil
import sqlite3
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import urlencode

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from corpus import CorpusGenerator  # noqa: E402

from wiki import create_app  # noqa: E402
from wiki import documents as d  # noqa: E402

KINDS = ("term", "multi", "phrase", "filtered", "faceted")
TARGETS_10K = {"term": ("p99", 50.0), "phrase": ("p99", 150.0)}


def percentile(values: list[float], pct: float) -> float:
    """Nearest-rank percentile."""
    if not values:
        return math.nan
    ordered = sorted(values)
    return ordered[max(1, math.ceil(pct / 100 * len(ordered))) - 1]


def summary(values: list[float]) -> dict:
    return {"n": len(values), "p50": percentile(values, 50), "p90": percentile(values, 90),
            "p99": percentile(values, 99), "max": max(values) if values else math.nan}


def du(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())


# --------------------------------------------------------------------------------------------
# Queries


def make_queries(samples: dict[str, list[str]], docs: list[d.Document], n: int,
                 seed: int) -> dict[str, list[dict]]:
    """``n`` queries of each kind, as API parameters. Words are drawn in equal parts from the
    frequent, middling and rare bands of the vocabulary; one term query in ten is an error
    token; phrases are the corpus's recurring error phrases and word pairs that occur in it."""
    rng = random.Random(seed)
    bands = ("common", "medium", "rare")

    def word(i: int) -> str:
        return rng.choice(samples[bands[i % 3]])

    phrases = list(samples["phrases"])
    while len(phrases) < n:
        words = re.findall(r"[a-z]{3,}", rng.choice(docs).body.split("\n\n", 3)[-1])
        if len(words) > 3:
            k = rng.randrange(len(words) - 2)
            phrases.append(f'"{words[k]} {words[k + 1]}"')
    errors = samples["errors"]
    queries: dict[str, list[dict]] = {k: [] for k in KINDS}
    for i in range(n):
        queries["term"].append({"q": errors[i // 10 % len(errors)] if i % 10 == 9 else word(i)})
        queries["multi"].append({"q": " ".join(word(i + k) for k in range(2 + i % 2))})
        queries["phrase"].append({"q": phrases[i]})
        f = {0: ("service", rng.choice(samples["services"])),
             1: ("severity", rng.choice(["SEV1", "SEV2", "SEV3"])),
             2: ("year", str(rng.randint(2014, 2024)))}[i % 3]
        queries["filtered"].append({"q": word(i), f[0]: f[1], "facets": "0"})
        queries["faceted"].append({"q": word(i), "facets": "1"})
    for kind in ("term", "multi", "phrase"):
        for params in queries[kind]:
            params["facets"] = "0"
    return queries


def run_api(client, search, queries: list[dict]) -> tuple[list[float], list[int]]:
    times, totals = [], []
    for params in queries:
        search.index.clear_cache()
        started = time.perf_counter()
        response = client.get("/api/v1/search?" + urlencode(params))
        times.append((time.perf_counter() - started) * 1000)
        assert response.status_code == 200, response.get_data(as_text=True)
        totals.append(response.get_json()["total"])
    return times, totals


def run_direct(search, queries: list[dict]) -> list[float]:
    times = []
    for params in queries:
        params = dict(params)
        q = params.pop("q")
        facets = params.pop("facets") == "1"
        search.index.clear_cache()
        started = time.perf_counter()
        search.query(q, filters={k: [v] for k, v in params.items()}, facets=facets, limit=20)
        times.append((time.perf_counter() - started) * 1000)
    return times


# --------------------------------------------------------------------------------------------
# SQLite FTS5


class FTS5:
    """The same corpus in SQLite FTS5, queried the way the search page would."""

    FACETS = ("kind", "severity", "status", "year", "root_cause")

    def __init__(self, path: Path, create: bool = True):
        self.db = sqlite3.connect(path)
        if not create:
            return
        self.db.executescript("""
            PRAGMA journal_mode=WAL;
            CREATE VIRTUAL TABLE docs USING fts5(id UNINDEXED, title, body,
                                                 tokenize='porter unicode61');
            CREATE TABLE meta (rowid INTEGER PRIMARY KEY, kind, severity, status, year,
                               root_cause);
            CREATE TABLE services (rowid INTEGER, name);
            CREATE TABLE tags (rowid INTEGER, name);
        """)

    def build(self, docs: list[d.Document]) -> float:
        started = time.perf_counter()
        with self.db:
            for rowid, doc in enumerate(docs, 1):
                fm = doc.front_matter
                day = fm.get("date") or fm.get("first_seen")
                self.db.execute("INSERT INTO docs (rowid, id, title, body) VALUES (?, ?, ?, ?)",
                                (rowid, doc.id, doc.title, doc.body))
                self.db.execute("INSERT INTO meta VALUES (?, ?, ?, ?, ?, ?)", (
                    rowid, doc.kind.name, (fm.get("severity") or "").lower() or None,
                    doc.status, str(day.year) if day else None, fm.get("root_cause_category")))
                self.db.executemany("INSERT INTO services VALUES (?, ?)",
                                    [(rowid, s.lower()) for s in doc.services])
                self.db.executemany("INSERT INTO tags VALUES (?, ?)",
                                    [(rowid, t.lower()) for t in doc.tags])
            self.db.execute("CREATE INDEX services_name ON services (name, rowid)")
            self.db.execute("CREATE INDEX tags_name ON tags (name, rowid)")
        self.db.execute("INSERT INTO docs(docs) VALUES ('optimize')")
        return time.perf_counter() - started

    @staticmethod
    def match(q: str) -> str:
        """A query string in FTS5 syntax: each word quoted, phrases kept."""
        if q.startswith('"'):
            return '"' + q.strip('"').replace('"', '""') + '"'
        return " ".join('"' + w.replace('"', '""') + '"' for w in q.split())

    def query(self, params: dict) -> int:
        match = self.match(params["q"])
        where, args = "docs MATCH ?", [match]
        join = ""
        if "service" in params:
            where += " AND docs.rowid IN (SELECT rowid FROM services WHERE name = ?)"
            args.append(params["service"].lower())
        for name in ("severity", "year"):
            if name in params:
                join = " JOIN meta ON meta.rowid = docs.rowid"
                where += f" AND meta.{name} = ?"
                args.append(params[name].lower())
        self.db.execute(
            f"SELECT docs.id, snippet(docs, 2, '<mark>', '</mark>', '…', 24), "
            f"bm25(docs, 0.0, 3.0, 1.0) AS score FROM docs{join} WHERE {where} "
            f"ORDER BY score LIMIT 20", args).fetchall()
        total = self.db.execute(f"SELECT count(*) FROM docs{join} WHERE {where}",
                                args).fetchone()[0]
        if params.get("facets") == "1":
            matched = f"SELECT docs.rowid FROM docs{join} WHERE {where}"
            for name in self.FACETS:
                self.db.execute(f"SELECT {name}, count(*) FROM meta WHERE rowid IN ({matched}) "
                                f"GROUP BY {name}", args).fetchall()
            for table in ("services", "tags"):
                self.db.execute(f"SELECT name, count(*) FROM {table} WHERE rowid IN "
                                f"({matched}) GROUP BY name ORDER BY count(*) DESC LIMIT 50",
                                args).fetchall()
        return total

    def run(self, queries: list[dict]) -> tuple[list[float], list[int]]:
        times, totals = [], []
        for params in queries:
            started = time.perf_counter()
            totals.append(self.query(params))
            times.append((time.perf_counter() - started) * 1000)
        return times, totals


# --------------------------------------------------------------------------------------------
# One corpus size


class LazyDocs:
    """The documents of a kept corpus in id order, each read only when asked for (a reused
    100k corpus needs only a few of them, for phrase queries)."""

    def __init__(self, store, corpus: dict | None = None):
        self.store = store
        paths = [info.path for info in store.files()]
        if corpus:  # only the generated documents, not those an earlier save test added
            last = {"PM": corpus["postmortems"], "SIG": corpus["signatures"]}
            paths = [p for p in paths
                     if int(_id_of(p).split("-")[1]) <= last.get(_id_of(p).split("-")[0], 0)]
        self.paths = sorted(paths, key=_id_of)

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, i):
        return self.store.read(self.paths[i])


def _id_of(path) -> str:
    name = Path(path).name
    kind, number = name.split("-", 2)[:2]
    return f"{kind}-{number}"


def bench_size(n_docs: int, n_queries: int, seed: int, workdir: Path, log,
               parsed_build: bool = True, reuse: bool = False, prepare: bool = False) -> dict:
    """Measure one corpus size. With ``reuse``, a corpus, database, index and FTS5 file kept
    in ``workdir`` by an earlier run (``--keep``) are used as they are, and their build figures
    are the ones that run recorded; the index is rebuilt only if its schema version changed."""
    from wiki import search as wsearch

    out: dict = {"docs": n_docs}
    root = workdir / f"wiki-{n_docs}"
    content, data = root / "content", root / "data"
    saved_path = root / "build.json"
    saved = json.loads(saved_path.read_text()) if reuse and saved_path.exists() else {}
    log(f"\n== {n_docs:,} documents ==")
    gen = CorpusGenerator(seed)
    if saved.get("corpus"):
        out["corpus"] = saved["corpus"]
        samples = gen.samples()
        log(f"corpus: reusing {content} ({out['corpus']['bytes'] / 1e6:.1f} MB)")
    else:
        shutil.rmtree(root, ignore_errors=True)
        saved = {}
        stats = gen.write(content, n_docs)
        samples = stats.samples
        out["corpus"] = {"seconds": stats.seconds, "bytes": stats.bytes,
                         "postmortems": stats.postmortems, "signatures": stats.signatures}
        log(f"corpus: {stats.bytes / 1e6:.1f} MB written in {stats.seconds:.1f} s")

    def save() -> None:
        if reuse or saved_path.parent.exists():
            keys = ("corpus", "db_sync_s", "index_build_s", "build_rate", "full_rebuild_s",
                    "fts5_build_s")  # (an earlier run's figures are kept until remeasured)
            keep = {k: out[k] if k in out else saved[k] for k in keys if k in out or k in saved}
            keep["schema"] = wsearch.SCHEMA_VERSION
            keep["reused_from"] = saved.get("reused_from") or time.strftime("%Y-%m-%d %H:%M")
            saved_path.write_text(json.dumps(keep, indent=2))

    app = create_app({"CONTENT_DIR": content, "DATA_DIR": data, "TESTING": True,
                      "SYNC_ON_START": False})
    wiki, search = app.extensions["wiki"], app.extensions["search"]
    client = app.test_client()

    if "db_sync_s" in saved:
        out["db_sync_s"] = saved["db_sync_s"]
        log(f"database sync: reusing the database (it took {out['db_sync_s']:.1f} s)")
    else:
        # The database first, without the search listener, so each part is timed alone.
        wiki.listeners.remove(search)
        started = time.perf_counter()
        wiki.sync()
        out["db_sync_s"] = time.perf_counter() - started
        wiki.listeners.append(search)
        log(f"database sync (not search): {out['db_sync_s']:.1f} s")
        save()
    if prepare:
        return out

    index_ok = (saved.get("schema") == wsearch.SCHEMA_VERSION and "full_rebuild_s" in saved
                and search.index.doc_count() > 0)
    if index_ok:
        docs = LazyDocs(wiki.store, out["corpus"])
        for key in ("index_build_s", "build_rate", "full_rebuild_s"):
            out[key] = saved[key]
        search.reconcile()  # catch up documents saved by the earlier run's save test
        search.reconciled = True
        log(f"index: reusing it (schema {wsearch.SCHEMA_VERSION}; its full rebuild took "
            f"{out['full_rebuild_s']:.1f} s)")
    else:
        started = time.perf_counter()
        docs, _ = wiki.store.scan()
        docs = [docs[i] for i in sorted(docs)]
        read_s = time.perf_counter() - started
        if parsed_build:
            started = time.perf_counter()
            search.index.rebuild(docs, total=len(docs))
            out["index_build_s"] = time.perf_counter() - started
            out["build_rate"] = len(docs) / out["index_build_s"]
            log(f"index build from parsed documents: {out['index_build_s']:.1f} s "
                f"({out['build_rate']:.0f} docs/s; reading and parsing them took {read_s:.1f} s)")

        started = time.perf_counter()
        indexed, _ = search.reindex(full=True)
        out["full_rebuild_s"] = time.perf_counter() - started
        assert indexed == len(docs), (indexed, len(docs))
        search.reconciled = True
        if not parsed_build:  # the rate then includes reading and parsing the files
            out["index_build_s"] = out["full_rebuild_s"]
            out["build_rate"] = len(docs) / out["full_rebuild_s"]
        save()
    out["index_bytes"] = du(search.index.path)
    out["segments"] = search.index.segment_count()
    log(f"full rebuild from the files: {out['full_rebuild_s']:.1f} s; index "
        f"{out['index_bytes'] / 1e6:.1f} MB on disk ({out['segments']} segments) for "
        f"{out['corpus']['bytes'] / 1e6:.1f} MB of content")

    fts_path = root / "fts5.db"
    if "fts5_build_s" in saved and fts_path.exists():
        fts = FTS5(fts_path, create=False)
        out["fts5_build_s"] = saved["fts5_build_s"]
        log(f"FTS5: reusing {fts_path} (its build took {out['fts5_build_s']:.1f} s)")
    else:
        if not isinstance(docs, list):
            docs = [docs[i] for i in range(len(docs))]
        fts_path.unlink(missing_ok=True)
        fts = FTS5(fts_path)
        out["fts5_build_s"] = fts.build(docs)
        log(f"FTS5 build: {out['fts5_build_s']:.1f} s")
        save()
    out["fts5_bytes"] = sum(f.stat().st_size for f in root.glob("fts5.db*"))
    log(f"FTS5 on disk: {out['fts5_bytes'] / 1e6:.1f} MB")

    if not isinstance(docs, LazyDocs):  # the same queries whether the index was reused or not
        docs = LazyDocs(wiki.store, out["corpus"])
    queries = make_queries(samples, docs, n_queries, seed)
    warm = [dict(q) for q in queries["term"][:10]]
    run_api(client, search, warm)  # open the searcher, fill the facet caches
    fts.run(warm)
    out["queries"] = {}
    for kind in KINDS:
        api_ms, totals = run_api(client, search, queries[kind])
        direct_ms = run_direct(search, queries[kind])
        fts_ms, fts_totals = fts.run(queries[kind])
        out["queries"][kind] = {
            "api": summary(api_ms), "direct": summary(direct_ms), "fts5": summary(fts_ms),
            "median_hits": percentile(totals, 50), "fts5_median_hits": percentile(fts_totals, 50),
            "examples": [q["q"] for q in queries[kind][:3]],
        }
        r = out["queries"][kind]
        log(f"{kind:9} API p50 {r['api']['p50']:7.1f} ms p99 {r['api']['p99']:7.1f} | direct "
            f"p50 {r['direct']['p50']:7.1f} | FTS5 p50 {r['fts5']['p50']:6.1f} p99 "
            f"{r['fts5']['p99']:6.1f} | median hits {r['median_hits']:.0f} "
            f"(FTS5 {r['fts5_median_hits']:.0f})")

    out["save"] = save_to_searchable(client, wiki, search, log)
    out["segments_after_saves"] = search.index.segment_count()
    return out


def save_to_searchable(client, wiki, search, log, rounds: int = 30) -> dict:
    """Wiki.create / Wiki.update of a document with a new word, then API queries until found."""
    timings: dict[str, list[float]] = {"create": [], "create_searchable": [], "update": [],
                                       "update_searchable": [], "index_share": []}
    indexed = []
    original = search.on_save

    def timed_on_save(doc, wiki_, **kwargs):
        started = time.perf_counter()
        original(doc, wiki_, **kwargs)
        indexed.append((time.perf_counter() - started) * 1000)

    search.on_save = timed_on_save
    try:
        for n in range(rounds):
            for action in ("create", "update"):
                word = f"zq{action}{n}x{random.randint(0, 10**9)}"
                started = time.perf_counter()
                if action == "create":
                    doc = wiki.create("postmortem", {"title": f"Saved {n}", "severity": "SEV3"},
                                      f"## Summary\nThe {word} happened.\n")
                else:
                    doc = wiki.update(doc.id, doc.front_matter, f"## Summary\nNow {word}.\n",
                                      doc.revision)
                saved = time.perf_counter()
                while True:
                    response = client.get("/api/v1/search?" + urlencode({"q": word}))
                    if response.get_json()["total"]:
                        break
                    if time.perf_counter() - started > 30:
                        raise AssertionError(f"{word} not searchable after 30 s")
                found = time.perf_counter()
                timings[action].append((saved - started) * 1000)
                timings[f"{action}_searchable"].append((found - started) * 1000)
    finally:
        search.on_save = original
    timings["index_share"] = indexed
    result = {k: summary(v) for k, v in timings.items()}
    log(f"save to searchable: create p50 {result['create_searchable']['p50']:.0f} ms "
        f"(save {result['create']['p50']:.0f} ms, of which indexing "
        f"{result['index_share']['p50']:.0f} ms), update p50 "
        f"{result['update_searchable']['p50']:.0f} ms, max "
        f"{max(result['create_searchable']['max'], result['update_searchable']['max']):.0f} ms")
    return result


# --------------------------------------------------------------------------------------------
# Report


def tables(results: list[dict]) -> str:
    lines = []
    lines.append("| docs | content | index on disk | FTS5 on disk | index build | full rebuild "
                 "(read + index) | FTS5 build | DB sync (reference) |")
    lines.append("|---:|---:|---:|---:|---:|---:|---:|---:|")
    for r in results:
        lines.append(
            f"| {r['docs']:,} | {r['corpus']['bytes'] / 1e6:.0f} MB | "
            f"{r['index_bytes'] / 1e6:.0f} MB | {r['fts5_bytes'] / 1e6:.0f} MB | "
            f"{r['index_build_s']:.1f} s ({r['build_rate']:.0f} docs/s) | "
            f"{r['full_rebuild_s']:.1f} s | {r['fts5_build_s']:.1f} s | {r['db_sync_s']:.1f} s |")
    lines.append("")
    lines.append("| docs | query | median hits | Whoosh API p50 | p90 | p99 | Whoosh direct p50 | "
                 "FTS5 p50 | FTS5 p99 | Whoosh/FTS5 p50 | Whoosh/FTS5 p99 |")
    lines.append("|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for r in results:
        for kind in KINDS:
            q = r["queries"][kind]
            a, f = q["api"], q["fts5"]
            lines.append(
                f"| {r['docs']:,} | {kind} | {q['median_hits']:.0f} | {a['p50']:.1f} ms | "
                f"{a['p90']:.1f} ms | {a['p99']:.1f} ms | {q['direct']['p50']:.1f} ms | "
                f"{f['p50']:.2f} ms | {f['p99']:.2f} ms | {a['p50'] / f['p50']:.1f}× | "
                f"{a['p99'] / f['p99']:.1f}× |")
    lines.append("")
    lines.append("| docs | save → searchable p50 (create) | p90 | max | of which Wiki.create | "
                 "of which indexing | update → searchable p50 | max |")
    lines.append("|---:|---:|---:|---:|---:|---:|---:|---:|")
    for r in results:
        s = r["save"]
        lines.append(
            f"| {r['docs']:,} | {s['create_searchable']['p50']:.0f} ms | "
            f"{s['create_searchable']['p90']:.0f} ms | {s['create_searchable']['max']:.0f} ms | "
            f"{s['create']['p50']:.0f} ms | {s['index_share']['p50']:.0f} ms | "
            f"{s['update_searchable']['p50']:.0f} ms | {s['update_searchable']['max']:.0f} ms |")
    return "\n".join(lines)


def check_targets(results: list[dict]) -> list[str]:
    notes = []
    for r in results:
        if r["docs"] != 10_000:
            continue
        for kind, (stat, limit) in TARGETS_10K.items():
            value = r["queries"][kind]["api"][stat]
            notes.append(f"10k {kind} {stat} {value:.1f} ms (target ≤ {limit:.0f} ms): "
                         f"{'ok' if value <= limit else 'MISSED'}")
        value = r["save"]["create_searchable"]["p50"]
        notes.append(f"10k save→searchable p50 {value:.0f} ms (target ≤ 300 ms): "
                     f"{'ok' if value <= 300 else 'MISSED'}")
        notes.append(f"10k full rebuild {r['full_rebuild_s']:.1f} s (target ≤ 60 s): "
                     f"{'ok' if r['full_rebuild_s'] <= 60 else 'MISSED'}")
    return notes


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--docs", type=int, nargs="+", default=[1000, 10_000],
                        help="corpus sizes (default: 1000 10000; 100000 is the long run)")
    parser.add_argument("--queries", type=int, default=200, help="queries of each kind (200)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--json", type=Path, help="also write the results here")
    parser.add_argument("--keep", type=Path, help="build the wikis here and keep them")
    parser.add_argument("--reuse", action="store_true",
                        help="with --keep: reuse the corpus, database, index and FTS5 file an "
                             "earlier --keep run left there (the index is rebuilt if the schema "
                             "version changed); build figures are then those of that run")
    parser.add_argument("--prepare", action="store_true",
                        help="with --keep: only write the corpus and sync the database, for "
                             "later runs with --reuse")
    parser.add_argument("--no-parsed-build", action="store_true",
                        help="skip timing the index build from already parsed documents (the "
                             "full rebuild from the files is still timed; saves time at 100k)")
    args = parser.parse_args(argv)
    if (args.reuse or args.prepare) and not args.keep:
        parser.error("--reuse and --prepare need --keep DIR")

    import logging

    logging.basicConfig(level=logging.WARNING)

    def log(message: str) -> None:
        print(message, flush=True)

    load = os.getloadavg() if hasattr(os, "getloadavg") else ("?",)
    log(f"Python {platform.python_version()}, {os.cpu_count()} CPUs, load average "
        f"{load[0]:.2f}" if load != ("?",) else "")
    workdir = args.keep or Path(tempfile.mkdtemp(prefix="wiki-search-bench-"))
    started = time.perf_counter()
    results = []
    try:
        for n in args.docs:
            size_started = time.perf_counter()
            results.append(bench_size(n, args.queries, args.seed, workdir, log,
                                      parsed_build=not args.no_parsed_build,
                                      reuse=args.reuse, prepare=args.prepare))
            results[-1]["bench_s"] = time.perf_counter() - size_started
            log(f"({n:,} documents took {results[-1]['bench_s'] / 60:.1f} min)")
        if args.prepare:
            log(f"prepared in {workdir}; run again with --reuse")
            return 0
    finally:
        if not args.keep:
            shutil.rmtree(workdir, ignore_errors=True)
    log("\n" + tables(results) + "\n")
    for note in check_targets(results):
        log(note)
    log(f"\nTotal {(time.perf_counter() - started) / 60:.1f} min")
    if args.json:
        args.json.write_text(json.dumps(results, indent=2, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
