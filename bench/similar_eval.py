"""Similar incidents on real duplicates: Recall@1/5/10 and MRR beside plain baselines.

    python bench/similar_eval.py                 # figures of the engine's weights + baselines
    python bench/similar_eval.py --tune          # also the grid search and its cross-validation
    python bench/similar_eval.py --data DIR      # another folder with the same two CSV files

Data: ``../shared/eval/gitbugs-hadoop`` (GitBugs, CC BY 4.0; see its ``SOURCE.md``):
``hadoop_bugs.csv`` (Summary, Issue id, Created, Description, …) and ``duplicates.csv`` (pairs of
issue ids describing the same bug).

Protocol (``SOURCE.md``'s, time-ordered): every report is imported as a document into a
temporary wiki — files written as any team's would be (Summary → ``title``, Description →
body, Created → ``date``, ``started_at`` and ``created``; the issue id kept as ``source_id``),
then the wiki starts as usual (database sync, search index, similar index). Nothing in the
engine knows this data set. For each duplicate pair whose two reports are both there and were
created at different times, the later report is the query, only documents created before it
are candidates, and the earlier report is the one right answer. We report where it ranks:
Recall@k (share of queries with the answer in the top k) and MRR (mean of 1/rank; 0 when it is
not in the top 50).

Rows, all measured in the same run on the same queries and candidates:

* **engine (document)** — :meth:`wiki.similar.SimilarIndex.similar_to` the later report, as
  ``GET /api/v1/documents/<id>/similar?before=…`` does;
* **engine (text)** — :meth:`~wiki.similar.SimilarIndex.similar` with the report's text
  (Summary, a blank line, Description), as ``POST /api/v1/similar`` does;
* **Whoosh more_like, defaults** — a plain Whoosh index of Summary + Description (default
  ``TEXT`` analyzer) queried with ``Searcher.more_like`` and its default settings (5 key terms,
  Bo1 model); also with 25 key terms, the setting ``SOURCE.md`` quotes;
* **TF-IDF cosine** — words ``[a-z0-9]+``, sublinear tf, smooth idf, l2-normalised vectors.

``--tune`` runs the grid search that set :data:`wiki.similar.DEFAULT_WEIGHTS`: the lexical
knobs (key terms, cosine terms, error tokens, title boost) × the fusion weights of the signals
this data has (cosine, exact, errors, lines; ``terms`` is the unit) × the fusion method. A
setting is judged by MRR averaged over it and its grid neighbours (a plateau, not a spike). With
65 queries a grid overfits easily, so it also reports **k-fold cross-validation**: for each fold
the setting chosen on the other folds is measured on this one; the figures of those held-out
folds are the honest estimate. Signatures, services and tags do not occur in this data set;
their weights cannot be set here and keep the values in ``wiki/similar.py`` (see
``docs/similar.md``).
"""

from __future__ import annotations

import argparse
import csv
import itertools
import logging
import math
import random
import re
import statistics
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from wiki import create_app  # noqa: E402
from wiki import documents as d  # noqa: E402
from wiki import similar as sim  # noqa: E402

DEFAULT_DATA = ROOT.parent / "shared" / "eval" / "gitbugs-hadoop"
DEPTH = 50  #: ranks beyond this count as not found
csv.field_size_limit(sys.maxsize)


# --------------------------------------------------------------------------------------------
# Data


def load(data_dir: Path):
    """``(reports by issue id, [(query id, answer id)])`` in the time-ordered protocol."""
    reports = {}
    with open(data_dir / "hadoop_bugs.csv", newline="", encoding="utf-8") as f:
        for row in csv.DictReader(f):
            created = datetime.strptime(row["Created"].strip(), "%d/%b/%y %H:%M").replace(
                tzinfo=UTC)
            reports[row["Issue id"].strip()] = {
                "id": row["Issue id"].strip(), "summary": row["Summary"] or "",
                "description": (row["Description"] or "").replace("\r\n", "\n"),
                "created": created}
    pairs = []
    with open(data_dir / "duplicates.csv", newline="", encoding="utf-8") as f:
        for row in csv.DictReader(f):
            # a cell may list several ids ("13547000, 13396667"): one pair each
            for a, b in itertools.product(_ids(row["Issue id"]), _ids(row["Duplicate id"])):
                if a == b or a not in reports or b not in reports:
                    continue
                ra, rb = reports[a], reports[b]
                if ra["created"] == rb["created"]:
                    continue  # no "earlier" report
                later, earlier = (a, b) if ra["created"] > rb["created"] else (b, a)
                if (later, earlier) not in pairs:
                    pairs.append((later, earlier))
    return reports, pairs


def _ids(cell: str | None) -> list[str]:
    return [i.strip() for i in (cell or "").split(",") if i.strip()]


def import_reports(reports: dict, content_dir: Path) -> dict[str, str]:
    """Write every report as a postmortem file; returns ``{issue id: document id}``."""
    folder = content_dir / "postmortems"
    folder.mkdir(parents=True, exist_ok=True)
    ids = {}
    ordered = sorted(reports.values(), key=lambda r: (r["created"], r["id"]))
    for n, report in enumerate(ordered, 1):
        title = " ".join(report["summary"].split())[:d.MAX_TITLE] or f"Issue {report['id']}"
        fm = {"id": f"PM-{n}", "title": title, "status": "published",
              "date": report["created"].date(), "started_at": report["created"],
              "created": report["created"].date(), "source_id": report["id"]}
        body = report["description"].replace("\x00", "")
        doc = d.new_document("postmortem", fm, body)
        (folder / f"PM-{n}.md").write_text(d.dumps(doc), encoding="utf-8")
        ids[report["id"]] = f"PM-{n}"
    return ids


def report_text(report: dict) -> str:
    return f"{report['summary']}\n\n{report['description']}"


# --------------------------------------------------------------------------------------------
# Metrics


def figures(ranks: list[int | None]) -> dict[str, float]:
    n = len(ranks) or 1
    return {
        "R@1": sum(1 for r in ranks if r and r <= 1) / n,
        "R@5": sum(1 for r in ranks if r and r <= 5) / n,
        "R@10": sum(1 for r in ranks if r and r <= 10) / n,
        "MRR": sum(1 / r for r in ranks if r and r <= DEPTH) / n,
    }


def rank_of(ranked: list[str], answer: str) -> int | None:
    try:
        return ranked.index(answer) + 1
    except ValueError:
        return None


def row(name: str, ranks: list[int | None], note: str = "") -> str:
    f = figures(ranks)
    return (f"| {name} | {f['R@1']:.3f} | {f['R@5']:.3f} | {f['R@10']:.3f} | {f['MRR']:.3f} |"
            + (f" {note} |" if note else " |"))


HEADER = "| Method | R@1 | R@5 | R@10 | MRR | Note |\n|---|---|---|---|---|---|"


# --------------------------------------------------------------------------------------------
# Baselines


def whoosh_more_like(reports: dict, queries, numterms: int, workdir: Path) -> list[int | None]:
    """A plain Whoosh index of Summary + Description, ``more_like`` with ``numterms``."""
    from whoosh import fields, index

    folder = workdir / f"plain-whoosh-{numterms}"
    folder.mkdir()
    schema = fields.Schema(id=fields.ID(stored=True, unique=True),
                           content=fields.TEXT(stored=True))
    ix = index.create_in(str(folder), schema)
    with ix.writer(limitmb=256) as writer:
        for report in reports.values():
            writer.add_document(id=report["id"], content=report_text(report))
    ranks = []
    with ix.searcher() as s:
        docnum = {s.stored_fields(n)["id"]: n for n in range(s.doc_count_all())}
        for later, earlier in queries:
            t = reports[later]["created"]
            allowed = {docnum[r["id"]] for r in reports.values() if r["created"] < t}
            hits = s.more_like(docnum[later], "content", text=report_text(reports[later]),
                               top=DEPTH, numterms=numterms, filter=allowed)
            ranks.append(rank_of([h["id"] for h in hits], earlier))
    return ranks


_TOKEN = re.compile(r"[a-z0-9]+")


def tfidf_cosine(reports: dict, queries) -> list[int | None]:
    """TF-IDF cosine (sublinear tf, smooth idf, l2 norm), written out: no extra dependency."""
    tokens = {i: Counter(_TOKEN.findall(report_text(r).lower())) for i, r in reports.items()}
    df = Counter(t for counts in tokens.values() for t in counts)
    n = len(tokens)
    idf = {t: math.log((1 + n) / (1 + c)) + 1 for t, c in df.items()}
    vectors, postings = {}, {}
    for ident, counts in tokens.items():
        vec = {t: (1 + math.log(c)) * idf[t] for t, c in counts.items()}
        norm = math.sqrt(sum(v * v for v in vec.values())) or 1.0
        vectors[ident] = {t: v / norm for t, v in vec.items()}
        for t, v in vectors[ident].items():
            postings.setdefault(t, []).append((ident, v))
    ranks = []
    for later, earlier in queries:
        t = reports[later]["created"]
        scores: dict[str, float] = {}
        for term, weight in vectors[later].items():
            for ident, v in postings[term]:
                scores[ident] = scores.get(ident, 0.0) + weight * v
        ranked = sorted((i for i in scores if reports[i]["created"] < t),
                        key=lambda i: (-scores[i], i))[:DEPTH]
        ranks.append(rank_of(ranked, earlier))
    return ranks


# --------------------------------------------------------------------------------------------
# The engine


def engine_ranks(engine: sim.SimilarIndex, wiki, ids: dict, reports: dict, queries,
                 weights: sim.Weights, as_text: bool = False):
    """Ranks of the answers, and each query's per-signal lists (for the grid search)."""
    ranks, lists, times = [], [], []
    for later, earlier in queries:
        before = reports[later]["created"]
        started = time.perf_counter()
        if as_text:
            result = engine.similar(report_text(reports[later]), before=before,
                                    kind="postmortem", limit=DEPTH, weights=weights,
                                    exclude=[ids[later]])
        else:
            doc = wiki.get(ids[later])
            result = engine.similar_to(doc, before=before, kind="postmortem", limit=DEPTH,
                                       weights=weights)
        times.append((time.perf_counter() - started) * 1000)
        ranks.append(rank_of([s.id for s in result.suggestions], ids[earlier]))
        lists.append({name: dict(items) for name, items in result.lists.items()})
    return ranks, lists, times


def fused_rank(engine: sim.SimilarIndex, lists: dict, weights: sim.Weights, answer: str):
    fused = engine._fuse(lists, weights)
    ranked = sorted(fused.items(), key=lambda kv: (-kv[1], kv[0]))[:DEPTH]
    return rank_of([i for i, _ in ranked], answer)


#: The lexical knobs (each needs the lists computed again) and the fusion grid. Where the
#: development set cannot tell settings apart (ties), the first in this order wins: the
#: error-string and log-line weights list their non-zero value first, so evidence this data set
#: has little of (bug reports, few logs) is kept rather than dropped on a tie.
LEXICAL_GRID = {
    "key_terms": (15, 30),
    "exact_terms": (10, 20),
    "title_boost": (0.5, 1.0, 2.0),
}
FUSION_GRID = {
    "cosine": (0.0, 0.5, 1.0, 1.5),
    "title": (0.0, 1.0, 2.0, 3.0, 4.0),
    "exact": (0.0, 0.15, 0.3, 0.6),
    "errors": (0.2, 0.0),
    "lines": (0.1, 0.0),
}


def mrr(ranks) -> float:
    return sum(1 / r for r in ranks if r and r <= DEPTH) / (len(ranks) or 1)


def tune(engine, wiki, ids, reports, queries, folds: int, seeds: list[int], log_progress):
    """Grid search; returns the chosen weights, their ranks, the cross-validated ranks, the
    setting chosen in each fold and the best settings.

    A setting is judged by its MRR **averaged with the MRR of its neighbours** in the grid
    (the settings one step away on one knob): with 65 queries a lone spike is luck, and a
    plateau is what should carry over to other data.
    """
    base = engine.weights
    answers = [ids[earlier] for _, earlier in queries]
    knobs = {**LEXICAL_GRID, **FUSION_GRID}
    lexical = list(itertools.product(*(range(len(v)) for v in LEXICAL_GRID.values())))
    fusion = list(itertools.product(*(range(len(v)) for v in FUSION_GRID.values())))
    settings: list[sim.Weights] = []
    coords: list[tuple[int, ...]] = []
    per_setting: list[list[int | None]] = []
    for n, lex in enumerate(lexical, 1):
        lex_values = {k: LEXICAL_GRID[k][i] for k, i in zip(LEXICAL_GRID, lex, strict=True)}
        lex_weights = base.replace(**lex_values)
        _, lists, _ = engine_ranks(engine, wiki, ids, reports, queries, lex_weights)
        for fus in fusion:
            values = {k: FUSION_GRID[k][i] for k, i in zip(FUSION_GRID, fus, strict=True)}
            w = lex_weights.replace(**values)
            settings.append(w)
            coords.append(lex + fus)
            per_setting.append([fused_rank(engine, lists[q], w, answers[q])
                                for q in range(len(queries))])
        log_progress(f"  lexical setting {n}/{len(lexical)}: {lex_values}")
    index = {c: i for i, c in enumerate(coords)}
    neighbours = []
    for c in coords:
        near = [i for k in range(len(knobs)) for step in (-1, 1)
                if (i := index.get(c[:k] + (c[k] + step,) + c[k + 1:])) is not None]
        neighbours.append(near)

    def choose(queries_used: list[int]) -> int:
        own = [mrr([r[q] for q in queries_used]) for r in per_setting]
        smooth = [(own[s] + sum(own[i] for i in neighbours[s])) / (1 + len(neighbours[s]))
                  for s in range(len(settings))]
        return max(range(len(settings)), key=lambda s: (round(smooth[s], 6), own[s], -s))

    def cross_validate(seed: int):
        cv_ranks, best = cross_validated(len(queries), seed, folds, choose,
                                         per_setting.__getitem__)
        return cv_ranks, [settings[b] for b in best]

    runs = {seed: cross_validate(seed) for seed in seeds}
    best_all = choose(list(range(len(queries))))
    top = sorted(range(len(settings)), key=lambda s: (mrr(per_setting[s]), -s),
                 reverse=True)[:5]
    table = [(settings[s], figures(per_setting[s])) for s in top]
    return settings[best_all], per_setting[best_all], runs, table


#: The signals whose weights the softmax model learns (``terms`` is the unit afterwards).
FIT_SIGNALS = ("terms", "cosine", "title", "exact", "errors", "lines")


#: Where the fit starts (whatever the shipped weights are, so that it is reproducible).
FIT_START = (1.0, 1.0, 1.0, 0.1, 0.1, 0.1)


def fit_softmax(lists: list[dict], answers: list[str], queries_used, l2: float = 0.01,
                steps: int = 600, rate: float = 0.5) -> dict[str, float]:
    """Weights of :data:`FIT_SIGNALS` that make the right answer likely: a softmax over each
    query's candidates (every document in one of its lists; a candidate's features are its
    normalised signal scores), fitted by gradient ascent on the mean log-likelihood of the
    answers, with an L2 penalty and weights kept ≥ 0. Returns them divided by ``terms``'s
    (as they are if that is 0).

    Six numbers fitted to 55–66 queries, smoothly: unlike a grid's best cell, a fold's
    weights hardly move when a few queries change (the cross-validated figures say so).
    """
    data = []
    for q in queries_used:
        features = {}
        for k, name in enumerate(FIT_SIGNALS):
            for ident, value in lists[q].get(name, {}).items():
                features.setdefault(ident, [0.0] * len(FIT_SIGNALS))[k] = value
        if answers[q] in features:
            data.append((list(features.values()), features[answers[q]]))
    w = list(FIT_START)
    for _ in range(steps):
        grad = [0.0] * len(w)
        for rows, answer in data:
            scores = [sum(a * b for a, b in zip(w, x, strict=True)) for x in rows]
            top = max(scores)
            exps = [math.exp(v - top) for v in scores]
            total = sum(exps)
            for k in range(len(w)):
                expected = sum(e * x[k] for e, x in zip(exps, rows, strict=True)) / total
                grad[k] += answer[k] - expected
        w = [max(0.0, wk + rate * (g / max(len(data), 1) - l2 * wk))
             for wk, g in zip(w, grad, strict=True)]
    unit = w[0] or 1.0
    return {name: round(wk / unit, 2) for name, wk in zip(FIT_SIGNALS, w, strict=True)}


def fit(engine, wiki, ids, reports, queries, folds: int, seeds: list[int]):
    """The softmax weights on all queries, and the k-fold cross-validation of fitting them."""
    base = engine.weights
    answers = [ids[earlier] for _, earlier in queries]
    _, lists, _ = engine_ranks(engine, wiki, ids, reports, queries, base)

    def ranks_with(weights: dict) -> list[int | None]:
        w = base.replace(**weights)
        return [fused_rank(engine, lists[q], w, answers[q]) for q in range(len(queries))]

    everything = fit_softmax(lists, answers, range(len(queries)))
    runs = {}
    for seed in seeds:
        runs[seed] = cross_validated(
            len(queries), seed, folds,
            lambda train: fit_softmax(lists, answers, train), ranks_with)
    return everything, ranks_with(everything), runs


def cross_validated(n: int, seed: int, folds: int, fit: Callable[[list[int]], Any],
                    ranks_for: Callable[[Any], list[int | None]]):
    """``(ranks, chosen)``: the queries split into ``folds`` (shuffled by ``seed``); for each
    fold a setting is fitted on the others (``fit(train queries)``) and its ranks
    (``ranks_for(setting)``) are kept for the fold's own queries only."""
    order = list(range(n))
    random.Random(seed).shuffle(order)
    fold_of = {q: i % folds for i, q in enumerate(order)}
    cv_ranks: list[int | None] = [None] * n
    chosen = []
    for fold in range(folds):
        setting = fit([q for q in order if fold_of[q] != fold])
        chosen.append(setting)
        ranks = ranks_for(setting)
        for q in order:
            if fold_of[q] == fold:
                cv_ranks[q] = ranks[q]
    return cv_ranks, chosen


def describe(w: sim.Weights) -> str:
    return (f"key_terms={w.key_terms} exact_terms={w.exact_terms} title_boost={w.title_boost} | "
            f"terms={w.terms} cosine={w.cosine} title={w.title} exact={w.exact} "
            f"errors={w.errors} lines={w.lines}")


# --------------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--tune", action="store_true", help="run the grid search and its CV")
    parser.add_argument("--fit", action="store_true",
                        help="fit the fusion weights with a softmax model, and its CV")
    parser.add_argument("--folds", type=int, default=6)
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3, 4, 5],
                        help="fold splits of the cross-validation (default 1 2 3 4 5)")
    args = parser.parse_args(argv)
    if not (args.data / "hadoop_bugs.csv").exists():
        print(f"No data in {args.data} (expected hadoop_bugs.csv and duplicates.csv).")
        return 2
    logging.basicConfig(level=logging.WARNING)

    def say(text: str) -> None:
        print(text, flush=True)

    reports, pairs = load(args.data)
    say(f"{len(reports):,} reports, {len(pairs)} time-ordered duplicate pairs")
    with tempfile.TemporaryDirectory(prefix="similar-eval-") as tmp:
        tmp = Path(tmp)
        started = time.perf_counter()
        ids = import_reports(reports, tmp / "content")
        app = create_app({"CONTENT_DIR": tmp / "content", "DATA_DIR": tmp / "data",
                          "TESTING": True, "SECRET_KEY": "bench"})
        wiki = app.extensions["wiki"]
        engine = app.extensions["similar"]
        engine.reconcile()
        say(f"imported and indexed in {time.perf_counter() - started:.1f} s "
            f"({len(engine):,} documents)")

        results = []
        ranks, _, times = engine_ranks(engine, wiki, ids, reports, pairs, engine.weights)
        results.append(("engine (document), weights in wiki/similar.py", ranks,
                        f"p50 {statistics.median(times):.0f} ms"))
        ranks_text, _, _ = engine_ranks(engine, wiki, ids, reports, pairs, engine.weights,
                                        as_text=True)
        results.append(("engine (text, as POST /api/v1/similar)", ranks_text, ""))
        for signal in ("terms", "cosine", "title"):
            only = engine.weights.replace(**{s: (1.0 if s == signal else 0.0)
                                             for s in sim.SIGNALS})
            r, _, _ = engine_ranks(engine, wiki, ids, reports, pairs, only)
            results.append((f"engine, `{signal}` signal alone", r, "ablation"))
        for name, change in (("without the `title` signal", {"title": 0.0}),
                             ("without identifier parts", {"identifier_parts": False})):
            r, _, _ = engine_ranks(engine, wiki, ids, reports, pairs,
                                   engine.weights.replace(**change))
            results.append((f"engine, {name}", r, "ablation"))
        results.append(("Whoosh more_like, default settings (5 key terms)",
                        whoosh_more_like(reports, pairs, 5, tmp), "baseline"))
        results.append(("Whoosh more_like, 25 key terms",
                        whoosh_more_like(reports, pairs, 25, tmp), "baseline"))
        results.append(("TF-IDF cosine", tfidf_cosine(reports, pairs), "baseline"))

        say(f"\n{len(pairs)} queries\n")
        say(HEADER)
        for name, r, note in results:
            say(row(name, r, note))

        if args.fit:
            say("\nSoftmax fit of the weights of " + ", ".join(FIT_SIGNALS)
                + " (lexical knobs as in wiki/similar.py)")
            weights, fit_ranks, runs = fit(engine, wiki, ids, reports, pairs, args.folds,
                                           args.seeds)
            say(f"Fitted on all queries: {weights}")
            say(f"Fitted per fold ({args.folds}-fold CV, seed {args.seeds[0]}):")
            for w in runs[args.seeds[0]][1]:
                say(f"  {w}")
            say("")
            say(HEADER)
            say(row("engine, fitted weights, in-sample", fit_ranks, "softmax"))
            cv_table(args.folds, runs, say)

        if args.tune:
            say(f"\nGrid search: {math.prod(len(v) for v in LEXICAL_GRID.values())} lexical "
                f"× {math.prod(len(v) for v in FUSION_GRID.values())} fusion settings")
            best, best_ranks, runs, table = tune(
                engine, wiki, ids, reports, pairs, args.folds, args.seeds, say)
            say("\nBest single settings on all queries (in-sample, for reference):")
            for w, f in table:
                say(f"  MRR {f['MRR']:.3f} R@1 {f['R@1']:.3f} R@5 {f['R@5']:.3f} "
                    f"R@10 {f['R@10']:.3f}  {describe(w)}")
            say(f"\nChosen on all queries (best plateau): {describe(best)}")
            first = args.seeds[0]
            say(f"Chosen per fold ({args.folds}-fold CV, seed {first}):")
            for w in runs[first][1]:
                say(f"  {describe(w)}")
            say("")
            say(HEADER)
            say(row("engine, chosen setting, in-sample (optimistic)", best_ranks, "grid"))
            cv_table(args.folds, runs, say)
    return 0


def cv_table(folds: int, runs: dict, say) -> None:
    for seed, (cv_ranks, _) in runs.items():
        say(row(f"engine, {folds}-fold cross-validated, seed {seed}", cv_ranks,
                "held-out folds"))
    if len(runs) > 1:
        per_seed = [figures(r) for r, _ in runs.values()]
        mean = {k: statistics.mean(f[k] for f in per_seed) for k in per_seed[0]}
        say(f"| engine, cross-validated, mean of {len(runs)} fold splits | "
            f"{mean['R@1']:.3f} | {mean['R@5']:.3f} | {mean['R@10']:.3f} | "
            f"{mean['MRR']:.3f} | honest estimate |")


if __name__ == "__main__":
    raise SystemExit(main())
