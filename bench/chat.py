"""Chat benchmark: how fast the Slack slash command answers ``search`` and ``seen``.

    python bench/chat.py                    # 10,000 documents, 200 commands of each kind
    python bench/chat.py --docs 2000 --commands 50 --out bench/out/chat.md

Slack shows "failed with the error operation_timeout" when a slash command's answer takes more
than 3 seconds; the wiki answers in the HTTP response itself (Bolt's ``ack`` with the Block Kit
message), so that response time is what counts.

It generates a corpus with ``bench/corpus.py`` into a temporary wiki, syncs it (database, search
index, signature index, similar-incident features), then sends **signed** ``POST
/slack/commands`` requests — signed as Slack signs them, with ``slack_sdk``'s
``SignatureVerifier`` — through Flask's **test client** (the whole app: signature check, Bolt's
parsing and dispatch, the command, Block Kit rendering, JSON; no network or HTTP server). Beside
each, in the same run and on the same queries, the baseline: the JSON API doing the same lookup
(``GET /api/v1/search?limit=5&facets=0`` for ``search``; ``POST /api/v1/match`` then ``POST
/api/v1/similar`` for ``seen``).

Queries: ``search`` — one or two words from the frequent, middling and rare bands of the
vocabulary and the corpus's error strings; ``seen`` — a 30-line log paste around a
signature's example (a third), around a recurring error string that is no signature's (a
third), or with nothing known in it (a third); and a few of the largest pastes chat takes
(40,000 characters, about 600 lines, a signature's example inside). The search index's result
cache is cleared before every command. Latencies are nearest-rank percentiles, never means.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import random
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import urlencode

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from corpus import CorpusGenerator  # noqa: E402
from slack_sdk.signature import SignatureVerifier  # noqa: E402

from wiki import create_app  # noqa: E402

SECRET = "bench-signing-secret"
SLACK_LIMIT_MS = 3000


def percentile(values: list[float], pct: float) -> float:
    if not values:
        return math.nan
    ordered = sorted(values)
    return ordered[max(1, math.ceil(pct / 100 * len(ordered))) - 1]


def signed_command(text: str) -> tuple[str, dict]:
    body = urlencode({"token": "x", "team_id": "T1", "team_domain": "bench", "channel_id": "C1",
                      "channel_name": "incident", "user_id": "U1", "user_name": "bench",
                      "command": "/pm", "text": text, "api_app_id": "A1",
                      "response_url": "https://hooks.slack.invalid/x", "trigger_id": "1"})
    ts = str(int(time.time()))
    sig = SignatureVerifier(SECRET).generate_signature(timestamp=ts, body=body)
    return body, {"X-Slack-Request-Timestamp": ts, "X-Slack-Signature": sig}


def log_paste(rng: random.Random, middle: list[str], lines: int = 30) -> str:
    """A log excerpt: ordinary lines around ``middle``."""
    noise = ["INFO request handled in {n} ms path=/api/v{v}/items/{id}",
             "DEBUG cache hit key=user:{id}", "INFO health check ok from 10.0.{v}.{n}",
             "WARN slow query took {n} ms on replica-{v}", "INFO worker {v} picked job {id}"]
    out = []
    for i in range(lines - len(middle)):
        line = rng.choice(noise).format(n=rng.randint(1, 999), v=rng.randint(1, 9),
                                        id=rng.randint(1000, 99999))
        out.append(f"2024-03-0{1 + i % 9}T10:{i:02d}:00Z {line}")
    at = rng.randrange(len(out) + 1)
    return "\n".join(out[:at] + middle + out[at:])


def make_commands(samples: dict, signatures: list, n: int, seed: int) -> dict[str, list[str]]:
    rng = random.Random(seed)
    bands = ("common", "medium", "rare")
    search = []
    for i in range(n):
        if i % 10 == 9:
            search.append(rng.choice(samples["errors"]))
        else:
            words = [rng.choice(samples[bands[(i + k) % 3]]) for k in range(1 + i % 2)]
            search.append(" ".join(words))
    examples = [str(e) for s in signatures for e in s.get("examples", []) if str(e).strip()]
    seen = []
    for i in range(n):
        if i % 3 == 0 and examples:
            middle = rng.choice(examples).splitlines()
        elif i % 3 == 1:
            middle = [f"ERROR {rng.choice(samples['errors'])}"]
        else:
            middle = []
        seen.append(log_paste(rng, middle))
    # The largest paste chat takes (40,000 characters, about 600 lines), a known error inside.
    big = [log_paste(rng, rng.choice(examples).splitlines() if examples else [],
                     lines=620)[:40_000] for _ in range(max(5, n // 10))]
    return {"search": search, "seen": seen, "seen, 40,000-character paste": big}


def run(client, search_index, commands: dict[str, list[str]]) -> dict:
    out = {}
    for label, texts in commands.items():
        kind = label.split(",")[0]
        chat_ms, api_ms, sizes = [], [], []
        for text in texts:
            body, headers = signed_command(f"{kind} {text}")
            search_index.index.clear_cache()
            started = time.perf_counter()
            response = client.post("/slack/commands", data=body, headers=headers,
                                   content_type="application/x-www-form-urlencoded")
            chat_ms.append((time.perf_counter() - started) * 1000)
            assert response.status_code == 200, response.get_data(as_text=True)[:300]
            answer = response.get_json()
            assert answer["response_type"] == "ephemeral" and answer["blocks"], answer
            sizes.append(len(answer["blocks"]))

            search_index.index.clear_cache()
            started = time.perf_counter()
            if kind == "search":
                r = client.get("/api/v1/search?" + urlencode({"q": text, "limit": 5,
                                                              "facets": "0"}))
                assert r.status_code == 200, r.get_data(as_text=True)[:300]
            else:
                r = client.post("/api/v1/match", json={"text": text})
                assert r.status_code == 200, r.get_data(as_text=True)[:300]
                r = client.post("/api/v1/similar", json={"text": text, "kind": "postmortem",
                                                         "limit": 5})
                assert r.status_code in (200, 404), r.get_data(as_text=True)[:300]
            api_ms.append((time.perf_counter() - started) * 1000)
        out[label] = {"n": len(texts), "chat_p50": percentile(chat_ms, 50),
                     "chat_p99": percentile(chat_ms, 99), "chat_max": max(chat_ms),
                     "api_p50": percentile(api_ms, 50), "api_p99": percentile(api_ms, 99),
                     "blocks_p50": percentile(sizes, 50)}
    return out


def table(n_docs: int, results: dict, setup: dict) -> str:
    rows = [
        f"### Slack slash command, {n_docs:,} documents "
        f"({setup['postmortems']:,} postmortems, {setup['signatures']:,} signatures)",
        "",
        f"python {platform.python_version()}, {os.cpu_count()} cores, load "
        f"{os.getloadavg()[0]:.2f}; signed `POST /slack/commands` through Flask's test client; "
        f"{results['search']['n']} commands of each kind; corpus sync "
        f"{setup['sync_s']:.0f} s.",
        "",
        "| sub-command | chat p50 | chat p99 | chat max | baseline p50 | baseline p99 | baseline "
        "(same run, same queries) | within Slack's 3 s |",
        "|---|---|---|---|---|---|---|---|",
    ]
    baselines = {"search": "`GET /api/v1/search?limit=5&facets=0`",
                 "seen": "`POST /api/v1/match` + `POST /api/v1/similar`"}
    for label, r in results.items():
        kind, _, note = label.partition(", ")
        name = f"`/pm {kind}`" + (f" ({note}, n={r['n']})" if note else "")
        rows.append(f"| {name} | {r['chat_p50']:.1f} ms | {r['chat_p99']:.1f} ms | "
                    f"{r['chat_max']:.1f} ms | {r['api_p50']:.1f} ms | {r['api_p99']:.1f} ms | "
                    f"{baselines[kind]} | {'yes' if r['chat_max'] < SLACK_LIMIT_MS else 'NO'} |")
    return "\n".join(rows) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--docs", type=int, default=10_000)
    parser.add_argument("--commands", type=int, default=200, help="commands of each kind")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--out", type=Path, help="also write the table (Markdown) here")
    parser.add_argument("--json", type=Path, help="write the raw figures here")
    args = parser.parse_args(argv)

    with tempfile.TemporaryDirectory(prefix="wiki-chat-bench-") as tmp:
        root = Path(tmp)
        print(f"generating {args.docs:,} documents…", file=sys.stderr)
        stats = CorpusGenerator(args.seed).write(root / "content", args.docs)
        app = create_app({"CONTENT_DIR": root / "content", "DATA_DIR": root / "data",
                          "TESTING": True, "SYNC_ON_START": False, "SLACK_SIGNING_SECRET": SECRET,
                          "BASE_URL": "https://wiki.example.com"})
        wiki, search = app.extensions["wiki"], app.extensions["search"]
        print("syncing (database, search index, similar features)…", file=sys.stderr)
        started = time.perf_counter()
        wiki.sync()
        sync_s = time.perf_counter() - started
        client = app.test_client()
        docs, _ = wiki.store.scan()
        signatures = [doc for doc in docs.values() if doc.kind.name == "signature"]
        commands = make_commands(stats.samples, signatures, args.commands, args.seed)
        warm = {k: v[:5] for k, v in commands.items()}
        run(client, search, warm)  # open searchers, compile the signature set, load features
        results = run(client, search, commands)
    setup = {"postmortems": stats.postmortems, "signatures": stats.signatures, "sync_s": sync_s}
    text = table(args.docs, results, setup)
    print(text)
    if args.out:
        args.out.write_text(text, "utf-8")
    if args.json:
        args.json.write_text(json.dumps({"docs": args.docs, "setup": setup,
                                         "results": results}, indent=2), "utf-8")
    slow = [k for k, r in results.items() if r["chat_max"] >= SLACK_LIMIT_MS]
    return 1 if slow else 0


if __name__ == "__main__":
    sys.exit(main())
