"""A realistic synthetic corpus: postmortems and bug signatures as valid content files.

Used by the benchmarks (``bench/search.py``) and reusable by anyone who needs many documents::

    python bench/corpus.py /tmp/big/content --docs 10000 --seed 1

What makes it "realistic" enough for search figures:

* **Zipf vocabulary.** Prose is drawn from a vocabulary of real English and operations words at the
  top ranks followed by a long tail of invented words, with rank-frequency ``1/r^1.07`` (close to
  what English text shows). So a few words are in almost every document and most are rare, like
  real postmortems; posting lists and the term dictionary have realistic shapes.
* **Recurring error strings.** Every document quotes a few error messages picked (also
  Zipf-weighted) from a pool of real-looking ones — ``ECONNRESET``, ``OOMKilled``,
  ``blk_-1608999687919862906``, ``x509: certificate has expired…`` — with variable parts, in
  running text and in code blocks, so exact-token and phrase queries have something to find.
* **Stack traces** (Java, Python, Go) in fenced blocks, built from pools of packages and functions.
* **Front matter** as a team would write it: severity, status, services and tags drawn from pools
  with a skewed popularity, root-cause category, consistent timestamps, action items; about one
  document in ten is a signature with patterns and examples pointing at its incidents.

Every file parses with :func:`wiki.documents.parse`; ids are ``PM-1…`` and ``SIG-1…`` and
``content/.wiki-ids.yml`` is written so the app allocates the next ids after them.
Generation is deterministic for a given ``seed``.
"""

from __future__ import annotations

import argparse
import bisect
import itertools
import math
import random
import sys
import time
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

# The most frequent words first: function words and the words of every incident write-up.
COMMON_WORDS = """
the to and of a in was we that for on is it with as at this by from were be after not
which when an our had service request requests error errors traffic database latency
deploy deployment users customers minutes time alert team on-call engineer incident
cluster node nodes queue cache config configuration change timeout timeouts retry retries
load balancer connection connections pool memory disk cpu replica primary failover
rollback release version job jobs worker workers backlog message messages rate limit
health check checks upstream downstream dependency region zone network dns certificate
storage write writes read reads index query queries schema migration lock locks thread
threads process restart restarted page paged dashboard graph metric metrics log logs
p99 spike increase drop outage degraded partial full recovered mitigated detected
investigation cause root trigger fix patch hotfix script cron batch backup snapshot
replication lag leader election consensus quorum partition shard shards key keys value
client clients server servers endpoint api gateway proxy sidecar container pod pods
kubernetes autoscaler capacity throttling backpressure circuit breaker fallback
because however then until while before during also only more than about into could
would should did not all some many most other same new old first last next previous
""".split()

# Error strings that recur across incidents. ``{n}`` etc. are filled per use.
ERROR_TEMPLATES = (
    "ECONNRESET",
    "connect ECONNREFUSED 10.{a}.{b}.{c}:{port}",
    "OOMKilled",
    "java.lang.NullPointerException",
    "java.lang.OutOfMemoryError: Java heap space",
    "blk_-{blk}",
    "x509: certificate has expired or is not yet valid",
    "handshake timeout",
    "context deadline exceeded",
    "upstream connect error or disconnect/reset before headers",
    "Too many open files",
    "deadlock detected",
    "ERROR 1213 (40001): Deadlock found when trying to get lock",
    "FATAL: remaining connection slots are reserved for non-replication superuser connections",
    "panic: runtime error: invalid memory address or nil pointer dereference",
    "KafkaException: Broker: Not enough in-sync replicas",
    "redis.exceptions.ConnectionError: Error 111 connecting to cache-{b}:6379",
    "HTTP 503 Service Unavailable",
    "SSL_ERROR_SYSCALL",
    "ETIMEDOUT",
    "EPIPE",
    "CrashLoopBackOff",
    "ImagePullBackOff",
    "NXDOMAIN",
    "SIGSEGV",
    "ORA-00060: deadlock detected while waiting for resource",
    "psycopg2.OperationalError: server closed the connection unexpectedly",
    "ConcurrentModificationException",
    "StackOverflowError",
    "byte 0x{hexb} at offset {n}",
    "checksum mismatch on block {n}",
    "sns-inbound delivery failed",
    "TLS handshake error from 10.{a}.{b}.{c}:{port}: EOF",
    "no space left on device",
    "read-only file system",
    "clock skew detected: {n}ms",
    "lease expired for shard {b}",
    "rate limit exceeded for key {hexid}",
    "invalid character 'l' looking for beginning of value",
    "unexpected EOF",
)

SERVICE_PARTS_A = ("payments", "checkout", "search", "auth", "ledger", "inventory", "email",
                   "sns", "billing", "profile", "catalog", "orders", "shipping", "media",
                   "notifications", "ingest", "reports", "gateway", "session", "pricing")
SERVICE_PARTS_B = ("api", "worker", "inbound", "outbound", "relay", "db", "cache", "cron",
                   "frontend", "consumer", "indexer", "proxy", "scheduler")
TAG_POOL = (
    "latency", "availability", "data-loss", "data-corruption", "security", "deploy", "config",
    "dns", "tls", "certificates", "kafka", "postgres", "mysql", "redis", "kubernetes", "memory",
    "disk", "network", "retries", "timeouts", "cron", "batch", "orm", "cache", "queue",
    "third-party", "email", "billing", "capacity", "autoscaling", "clock", "leap-second",
    "encoding", "unicode", "bitflip", "hardware", "rollback", "feature-flag", "migration",
    "backup", "replication", "failover", "load-balancer", "rate-limit", "health-check",
    "monitoring", "alerting", "on-call", "runbook", "customer-facing", "internal", "mobile",
    "search", "cdn", "storage", "s3", "iam", "secrets", "logging", "observability",
)
ROOT_CAUSES = ("config-change", "deploy", "capacity", "dependency", "hardware", "data-corruption",
               "time", "security", "unknown")
DETECTIONS = ("alert", "customer-report", "engineer-noticed", "automated-test", "other")
PEOPLE = ("ana", "bo", "chen", "dara", "eli", "fatima", "gus", "hana", "ivan", "jo", "kemal",
          "lena", "mo", "noor", "otto", "priya", "quinn", "rosa", "sam", "tariq")
JAVA_PACKAGES = ("com.example.payments", "com.example.ledger", "org.apache.kafka.clients",
                 "io.netty.channel", "com.example.search.index", "org.hibernate.engine")
JAVA_CLASSES = ("LedgerService", "PaymentProcessor", "RetryingClient", "ConnectionPool",
                "BatchWriter", "SessionManager", "HealthChecker", "IndexWriter", "Scheduler")
PY_MODULES = ("app/jobs/nightly.py", "app/models/account.py", "app/relay/smtp.py",
              "app/api/views.py", "lib/retry.py", "app/cache/client.py")
GO_FUNCS = ("main.(*Server).handle", "net/http.(*conn).serve", "github.com/example/relay.Send",
            "github.com/example/ingest.(*Worker).run", "database/sql.(*DB).conn")
SYMPTOMS = ("5xx spike", "elevated latency", "partial outage", "full outage", "data loss",
            "duplicate charges", "stuck queue", "failed logins", "missing emails",
            "corrupted records", "slow searches", "dropped messages", "stale cache",
            "failed deploys", "certificate expiry", "disk full", "memory leak", "split brain")
TRIGGERS = ("config push", "deploy", "traffic spike", "certificate rotation", "schema migration",
            "leap second", "dependency upgrade", "region failover", "cron job", "batch import",
            "cache flush", "DNS change", "feature flag", "kernel upgrade", "autoscaler change")
SECTION_WEIGHTS = {  # relative length of each postmortem section
    "Summary": 2, "Impact": 2, "Timeline": 3, "Root cause and contributing factors": 4,
    "Trigger": 1, "Detection": 1, "Response and recovery": 3, "What went well": 1,
    "What went wrong": 2, "Where we got lucky": 1, "Action items": 1, "Lessons learned": 2,
}
SIGNATURE_SECTIONS = ("How to recognise it", "Why it happens", "How to confirm",
                      "Fix or workaround", "Seen in")


class Zipf:
    """Sample items with probability proportional to ``1 / rank**s``."""

    def __init__(self, items, s: float = 1.07):
        self.items = list(items)
        weights = [1.0 / (r ** s) for r in range(1, len(self.items) + 1)]
        self.cumulative = list(itertools.accumulate(weights))
        self.total = self.cumulative[-1]

    def sample(self, rng: random.Random):
        return self.items[bisect.bisect_left(self.cumulative, rng.random() * self.total)]

    def many(self, rng: random.Random, k: int) -> list:
        return [self.sample(rng) for _ in range(k)]


def invented_words(rng: random.Random, n: int) -> list[str]:
    """Pronounceable words that are not in the common list (the vocabulary's long tail)."""
    onsets = ("b", "br", "c", "cl", "d", "dr", "f", "fl", "g", "gr", "h", "j", "k", "l", "m",
              "n", "p", "pl", "r", "s", "st", "t", "tr", "v", "w", "z", "sh", "ch", "qu")
    vowels = ("a", "e", "i", "o", "u", "ai", "ea", "io", "ou")
    codas = ("", "n", "r", "s", "t", "l", "x", "nd", "st", "rk", "m")
    seen = set(COMMON_WORDS)
    out = []
    while len(out) < n:
        word = "".join(rng.choice(onsets) + rng.choice(vowels) for _ in range(rng.randint(1, 3)))
        word += rng.choice(codas)
        if len(word) > 2 and word not in seen:
            seen.add(word)
            out.append(word)
    return out


@dataclass
class CorpusStats:
    postmortems: int = 0
    signatures: int = 0
    bytes: int = 0
    seconds: float = 0.0
    #: words and strings benchmarks can query for, by kind of query
    samples: dict[str, list[str]] = field(default_factory=dict)


class CorpusGenerator:
    """Generates documents; :meth:`write` puts ``n`` of them under a content folder."""

    def __init__(self, seed: int = 0, vocabulary: int = 30_000):
        self.rng = random.Random(seed)
        tail = invented_words(random.Random(seed + 1), vocabulary - len(COMMON_WORDS))
        self.words = Zipf(COMMON_WORDS + tail)
        self.errors = Zipf(ERROR_TEMPLATES, s=0.9)
        self.services = Zipf([f"{a}-{b}" for a in SERVICE_PARTS_A for b in SERVICE_PARTS_B], s=1.1)
        self.tags = Zipf(TAG_POOL, s=0.9)
        self.start = date(2014, 1, 1)

    # -- pieces ----------------------------------------------------------------------------

    def error(self) -> str:
        r = self.rng
        return self.errors.sample(r).format(
            a=r.randint(0, 255), b=r.randint(0, 255), c=r.randint(1, 254),
            port=r.choice((443, 5432, 6379, 8080, 9092, 25)),
            blk=r.randint(10**17, 9 * 10**18), n=r.randint(1, 99999),
            hexb=f"{r.randint(0, 255):02X}", hexid=f"{r.getrandbits(48):012x}",
        )

    def sentence(self, errors: list[str]) -> str:
        r = self.rng
        words = self.words.many(r, r.randint(7, 22))
        if errors and r.random() < 0.12:
            words.insert(r.randint(0, len(words)), f"`{r.choice(errors)}`")
        elif r.random() < 0.05:
            words.insert(r.randint(0, len(words)), self.services.sample(r))
        text = " ".join(words)
        return text[0].upper() + text[1:] + r.choice("....?")

    def paragraph(self, errors: list[str], sentences: int) -> str:
        return " ".join(self.sentence(errors) for _ in range(sentences))

    def stack_trace(self, error: str) -> str:
        r = self.rng
        style = r.choice(("java", "python", "go"))
        if style == "java":
            lines = [f"{error}"] + [
                f"    at {r.choice(JAVA_PACKAGES)}.{r.choice(JAVA_CLASSES)}.{self.words.sample(r)}"
                f"({r.choice(JAVA_CLASSES)}.java:{r.randint(20, 900)})"
                for _ in range(r.randint(3, 8))]
        elif style == "python":
            lines = ["Traceback (most recent call last):"]
            for _ in range(r.randint(2, 5)):
                lines.append(f'  File "/srv/{r.choice(PY_MODULES)}", line {r.randint(10, 600)}, '
                             f"in {self.words.sample(r)}_{self.words.sample(r)}")
                lines.append(f"    {self.words.sample(r)}({self.words.sample(r)})")
            lines.append(error)
        else:
            lines = [f"panic: {error}", "", f"goroutine {r.randint(1, 9000)} [running]:"]
            for _ in range(r.randint(3, 6)):
                lines.append(f"{r.choice(GO_FUNCS)}(0x{r.getrandbits(40):x})")
                lines.append(f"\t/go/src/app/{self.words.sample(r)}.go:{r.randint(10, 500)} "
                             f"+0x{r.randint(16, 4095):x}")
        return "```\n" + "\n".join(lines) + "\n```"

    def timestamp(self, day: date, minutes: int) -> datetime:
        base = datetime(day.year, day.month, day.day, 0, 0, tzinfo=UTC)
        return base + timedelta(minutes=minutes)

    # -- documents -------------------------------------------------------------------------

    def postmortem(self, number: int, n_signatures: int) -> tuple[dict, str]:
        r = self.rng
        day = self.start + timedelta(days=r.randint(0, 4000))
        services = list(dict.fromkeys(self.services.many(r, r.randint(1, 3))))
        tags = list(dict.fromkeys(self.tags.many(r, r.randint(1, 4))))
        errors = [self.error() for _ in range(r.randint(1, 3))]
        start = r.randint(0, 1300)
        detect = start + r.randint(1, 90)
        mitigate = detect + r.randint(5, 240)
        resolve = mitigate + r.randint(5, 2000)
        title = (f"{services[0]} {r.choice(SYMPTOMS)} after {r.choice(TRIGGERS)}"
                 f" ({self.words.sample(r)} {self.words.sample(r)})")
        fm = {
            "id": f"PM-{number}",
            "title": title,
            "status": r.choices(("published", "in-review", "draft"), (8, 1, 1))[0],
            "severity": r.choices(("SEV1", "SEV2", "SEV3", "SEV4"), (1, 3, 5, 3))[0],
            "date": day.isoformat(),
            "started_at": self.timestamp(day, start).isoformat(),
            "detected_at": self.timestamp(day, detect).isoformat(),
            "mitigated_at": self.timestamp(day, mitigate).isoformat(),
            "resolved_at": self.timestamp(day, resolve).isoformat(),
            "services": services,
            "tags": tags,
            "authors": r.sample(PEOPLE, r.randint(1, 3)),
            "incident_commander": r.choice(PEOPLE),
            "root_cause_category": r.choices(ROOT_CAUSES, (5, 6, 4, 4, 1, 1, 1, 1, 2))[0],
            "detection": r.choices(DETECTIONS, (6, 2, 2, 1, 1))[0],
            "action_items": [
                {"title": self.sentence([])[:120].rstrip("."), "owner": r.choice(PEOPLE),
                 "due": (day + timedelta(days=r.randint(7, 90))).isoformat(),
                 "status": r.choices(("open", "done", "wontfix"), (3, 6, 1))[0]}
                for _ in range(r.randint(1, 4))
            ],
            "created": day.isoformat(),
            "updated": (day + timedelta(days=r.randint(1, 30))).isoformat(),
        }
        if n_signatures and r.random() < 0.3:
            fm["signatures"] = [f"SIG-{r.randint(1, n_signatures)}"]
        # Document length: log-normal, median ~700 words, a few very long ones.
        scale = min(6.0, math.exp(r.gauss(0, 0.55)))
        sections = []
        for name, weight in SECTION_WEIGHTS.items():
            paragraphs = []
            n_par = max(1, round(weight * scale * 0.6))
            for _ in range(n_par):
                paragraphs.append(self.paragraph(errors, r.randint(2, 5)))
            if name == "Root cause and contributing factors" and r.random() < 0.6:
                paragraphs.append(self.stack_trace(errors[0]))
            if name == "Timeline":
                times = sorted(r.randint(start, resolve) for _ in range(r.randint(3, 8)))
                paragraphs = ["\n".join(
                    f"- {self.timestamp(day, t).strftime('%H:%M')} {self.sentence(errors)}"
                    for t in times)] + paragraphs[:1]
            if name == "Detection" and r.random() < 0.5:
                paragraphs.append(f"```\n{errors[-1]}\n```")
            sections.append(f"## {name}\n\n" + "\n\n".join(paragraphs))
        return fm, "\n\n".join(sections) + "\n"

    def signature(self, number: int, n_postmortems: int) -> tuple[dict, str]:
        r = self.rng
        error = self.error()
        service = self.services.sample(r)
        incidents = sorted({r.randint(1, max(1, n_postmortems)) for _ in range(r.randint(1, 4))})
        first = self.start + timedelta(days=r.randint(0, 3000))
        fm = {
            "id": f"SIG-{number}",
            "title": f"{error[:80]} in {service}",
            "status": r.choices(("active", "retired"), (4, 1))[0],
            "services": [service],
            "tags": list(dict.fromkeys(self.tags.many(r, r.randint(1, 3)))),
            "first_seen": first.isoformat(),
            "last_seen": (first + timedelta(days=r.randint(0, 900))).isoformat(),
            "incidents": [f"PM-{n}" for n in incidents] if n_postmortems else [],
            "match": "any",
            "patterns": [{"kind": "literal", "value": error}],
            "examples": [f"{first.isoformat()}T10:0{r.randint(0, 9)}:00Z ERROR {service}: {error}"],
        }
        sections = []
        for name in SIGNATURE_SECTIONS:
            text = self.paragraph([error], r.randint(2, 6))
            if name == "How to recognise it":
                text += "\n\n" + self.stack_trace(error)
            if name == "Seen in":
                text = "\n".join(f"- [[PM-{n}]]" for n in incidents) if n_postmortems else text
            sections.append(f"## {name}\n\n{text}")
        return fm, "\n\n".join(sections) + "\n"

    # -- files -----------------------------------------------------------------------------

    def write(self, content_dir: Path | str, n_docs: int, signature_ratio: float = 0.1,
              progress=None) -> CorpusStats:
        """Write ``n_docs`` documents (about ``signature_ratio`` of them signatures)."""
        from wiki.documents import dump_yaml, slugify

        started = time.perf_counter()
        root = Path(content_dir)
        (root / "postmortems").mkdir(parents=True, exist_ok=True)
        (root / "signatures").mkdir(parents=True, exist_ok=True)
        n_sig = int(n_docs * signature_ratio)
        n_pm = n_docs - n_sig
        stats = CorpusStats(postmortems=n_pm, signatures=n_sig)
        jobs = [("pm", i) for i in range(1, n_pm + 1)] + [("sig", i) for i in range(1, n_sig + 1)]
        for done, (kind, number) in enumerate(jobs, 1):
            if kind == "pm":
                fm, body = self.postmortem(number, n_sig)
                folder = "postmortems"
            else:
                fm, body = self.signature(number, n_pm)
                folder = "signatures"
            data = f"---\n{dump_yaml(fm)}---\n\n{body}".encode()
            name = f"{fm['id']}-{slugify(fm['title'], 50)}.md"
            (root / folder / name).write_bytes(data)
            stats.bytes += len(data)
            if progress and done % 1000 == 0:
                progress(done, len(jobs))
        (root / ".wiki-ids.yml").write_text(
            "# Next id of each kind. Ids are never reused, even after a document is deleted.\n"
            f"PM: {n_pm + 1}\nSIG: {n_sig + 1}\n", encoding="utf-8")
        stats.seconds = time.perf_counter() - started
        stats.samples = self.samples()
        return stats

    def samples(self) -> dict[str, list[str]]:
        """Query material: words by frequency band, error tokens, phrases, services, tags."""
        words = self.words.items
        return {
            "common": words[40:140],  # frequent content words (skipping function words)
            "medium": words[300:1300],
            "rare": words[3000:8000],
            "errors": ["ECONNRESET", "OOMKilled", "NullPointerException", "CrashLoopBackOff",
                       "ETIMEDOUT", "NXDOMAIN", "SIGSEGV", "EPIPE",
                       "ConcurrentModificationException"],
            "phrases": ['"handshake timeout"', '"context deadline exceeded"',
                        '"deadlock detected"', '"Too many open files"', '"no space left on device"',
                        '"unexpected EOF"', '"read-only file system"', '"health check"',
                        '"connection pool"', '"circuit breaker"', '"root cause"',
                        '"leader election"'],
            "services": list(self.services.items[:30]),
            "tags": list(TAG_POOL[:30]),
        }


def generate(content_dir: Path | str, n_docs: int, seed: int = 0, signature_ratio: float = 0.1,
             progress=None) -> CorpusStats:
    """Write a corpus of ``n_docs`` documents under ``content_dir`` (see the module docstring)."""
    return CorpusGenerator(seed).write(content_dir, n_docs, signature_ratio, progress)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("content_dir", type=Path,
                        help="folder to write postmortems/ and signatures/ into")
    parser.add_argument("--docs", type=int, default=1000, help="number of documents (default 1000)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--signatures", type=float, default=0.1, help="share of signatures (0.1)")
    args = parser.parse_args(argv)
    stats = generate(args.content_dir, args.docs, args.seed, args.signatures,
                     progress=lambda n, total: print(f"  {n:,}/{total:,}", file=sys.stderr))
    print(f"wrote {stats.postmortems:,} postmortems and {stats.signatures:,} signatures "
          f"({stats.bytes / 1e6:.1f} MB) to {args.content_dir} in {stats.seconds:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
