"""Signature matching figures: one RE2 set vs a naive loop of Python ``re`` searches.

    python bench/match.py                      # the table (10 KB and 1 MB × 100/1,000/10,000)
    python bench/match.py --quick              # smaller run for a smoke test
    python bench/match.py --write-background wiki/data/background.log

For each number of signatures it generates realistic signatures (one or two regex/template/
literal patterns each, built from log vocabulary, codes and placeholders; one in ten with a
``not`` pattern), builds a :class:`wiki.signatures.SignatureIndex`, and times
:meth:`SignatureIndex.match` on 10 KB, 100 KB and 1 MB pastes of ordinary log lines in which one
line in 200 confirms a signature. It first checks that the RE2 set finds exactly the
(line, pattern) pairs the naive loop finds. Beside it, the
naive approach: every pattern as a Python ``re`` regex, searched in every line. The naive loop
gets a time budget per cell; when it runs out, its lines/s come from the lines it did and the
total time is extrapolated (marked ``~``). Each cell is the median of ``--repeat`` runs.

The same module generates ``wiki/data/background.log``, the sample of ordinary log lines the
too-broad guard tries signatures against (``--write-background``): nginx and envoy access
lines, systemd, kubelet, sshd and cron lines, JVM GC lines, application INFO lines in Spring,
Python, Node, logfmt and JSON styles, PostgreSQL and Redis lines, with the odd benign warning.
"""

from __future__ import annotations

import argparse
import random
import re
import statistics
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

# --------------------------------------------------------------------------------------------
# Ordinary log lines

SERVICES = ["checkout", "orders", "payments", "search-api", "auth", "inventory", "profile",
            "notifications", "ledger", "catalog", "shipping", "billing", "gateway", "reports"]
HOSTS = [f"{p}-{n}" for p in ("web", "api", "worker", "db", "cache", "edge") for n in range(1, 9)]
USERS = ["deploy", "ubuntu", "ci", "backup", "postgres", "root"]
PATHS = ["/api/v1/orders", "/api/v1/orders/{id}", "/api/v2/search", "/healthz", "/readyz",
         "/metrics", "/api/v1/users/{id}/profile", "/static/js/app.{hex}.js", "/login",
         "/api/v1/cart/{id}/items", "/api/v1/payments/{id}/capture", "/favicon.ico",
         "/api/v1/catalog/items?page={n}", "/api/v1/inventory/sku-{n}", "/robots.txt"]
AGENTS = ["Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
          "Chrome/124.0 Safari/537.36",
          "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_4) AppleWebKit/605.1.15 Version/17.4 "
          "Safari/605.1.15",
          "kube-probe/1.29", "curl/8.5.0", "Go-http-client/1.1", "okhttp/4.12.0",
          "python-requests/2.31.0", "Prometheus/2.51.0"]
JAVA_LOGGERS = ["c.e.orders.OrderService", "c.e.payments.CaptureController",
                "o.s.web.servlet.DispatcherServlet", "c.e.inventory.StockReconciler",
                "o.h.engine.jdbc.batch.internal.BatchingBatch", "c.e.ledger.PostingJob",
                "c.z.hikari.pool.HikariPool", "o.s.s.concurrent.ThreadPoolTaskScheduler"]
PY_LOGGERS = ["app.jobs.export", "app.api.search", "celery.worker.strategy", "app.billing.invoices",
              "gunicorn.access", "app.cache", "urllib3.connectionpool", "app.sync.scheduler"]
SYSTEMD_UNITS = ["logrotate.service", "apt-daily.service", "fstrim.service", "certbot.timer",
                 "node-exporter.service", "containerd.service", "docker.service",
                 "systemd-tmpfiles-clean.service", "man-db.service", "unattended-upgrades.service"]
PODS = [f"{s}-{h}-{t}" for s in ("checkout", "orders", "search-api", "auth")
        for h, t in (("7f9c4d6b8", "x2k9p"), ("5d8f7c9b4", "q7w4e"), ("6b4c8d7f5", "m3n8b"))]
KUBELET_FILES = ["kubelet.go", "prober.go", "kuberuntime_manager.go", "reconciler_common.go"]
WORDS = ["cache", "index", "batch", "session", "snapshot", "queue", "report", "export",
         "manifest", "partition", "segment", "token", "schedule", "config", "feed"]


def _hex(rng: random.Random, n: int) -> str:
    return "".join(rng.choice("0123456789abcdef") for _ in range(n))


def _ip(rng: random.Random, private: bool = True) -> str:
    if private:
        return f"10.{rng.randint(0, 31)}.{rng.randint(0, 255)}.{rng.randint(1, 254)}"
    a, b, c, d = rng.randint(23, 212), rng.randint(0, 255), rng.randint(0, 255), rng.randint(1, 254)
    return f"{a}.{b}.{c}.{d}"


def _path(rng: random.Random) -> str:
    return rng.choice(PATHS).format(id=rng.randint(1, 999_999), hex=_hex(rng, 8),
                                    n=rng.randint(1, 40))


def _uuid(rng: random.Random) -> str:
    a, b, c = _hex(rng, 8), _hex(rng, 4), _hex(rng, 3)
    d, e, f = rng.choice("89ab"), _hex(rng, 3), _hex(rng, 12)
    return f"{a}-{b}-4{c}-{d}{e}-{f}"


def ordinary_log_lines(count: int, seed: int = 7) -> list[str]:
    """``count`` ordinary log lines of many formats, deterministic for a seed."""
    rng = random.Random(seed)
    now = datetime(2024, 3, 11, 6, 0, tzinfo=UTC)
    out = []

    def iso(ms: bool = True) -> str:
        fraction = f".{now.microsecond // 1000:03d}Z" if ms else "Z"
        return now.strftime("%Y-%m-%dT%H:%M:%S") + fraction

    def nginx() -> str:
        status = rng.choices([200, 201, 204, 301, 304, 404, 499], [70, 5, 5, 3, 8, 6, 1])[0]
        method = rng.choices(["GET", "POST", "PUT", "DELETE"], [80, 12, 5, 3])[0]
        return (f'{_ip(rng, rng.random() < 0.3)} - - [{now.strftime("%d/%b/%Y:%H:%M:%S")} +0000] '
                f'"{method} {_path(rng)} HTTP/1.1" {status} {rng.randint(0, 48_000)} "-" '
                f'"{rng.choice(AGENTS)}" {rng.randint(1, 900) / 1000:.3f}')

    def envoy() -> str:
        return (f'[{iso()}] "{rng.choice(["GET", "POST"])} {_path(rng)} HTTP/2" '
                f'{rng.choice([200, 200, 200, 204, 304])} - via_upstream - "-" 0 '
                f'{rng.randint(2, 40_000)} {rng.randint(1, 300)} {rng.randint(1, 290)} "-" '
                f'"{rng.choice(AGENTS)}" "{_uuid(rng)}" "{rng.choice(SERVICES)}.internal" '
                f'"{_ip(rng)}:8080"')

    def syslog_prefix(proc: str, pid: int | None = None) -> str:
        stamp = f"{now:%b} {now.day:>2} {now:%H:%M:%S}"
        return f"{stamp} {rng.choice(HOSTS)} {proc}{f'[{pid}]' if pid else ''}:"

    def systemd() -> str:
        unit = rng.choice(SYSTEMD_UNITS)
        msg = rng.choice([
            f"Starting {unit.split('.')[0].replace('-', ' ').title()}...",
            f"{unit}: Deactivated successfully.",
            f"Finished {unit.split('.')[0].replace('-', ' ').title()}.",
            f"Started Session {rng.randint(1, 9000)} of User {rng.choice(USERS)}.",
            f"{unit}: Consumed {rng.randint(1, 900) / 100:.2f}s CPU time.",
            "Reloading.", f"Created slice User Slice of UID {rng.randint(1000, 1010)}.",
            f"session-{rng.randint(1, 9000)}.scope: Deactivated successfully.",
        ])
        return f"{syslog_prefix('systemd', 1)} {msg}"

    def kubelet() -> str:
        pod = rng.choice(PODS)
        msg = rng.choice([
            f'"SyncLoop (PLEG): event for pod" pod="prod/{pod}" event={{"ID":"{_uuid(rng)}",'
            f'"Type":"ContainerStarted","Data":"{_hex(rng, 64)}"}}',
            f'"Probe succeeded" probeType="Readiness" pod="prod/{pod}" containerName="app"',
            f'"Pulling image" image="registry.example.com/{pod.split("-")[0]}:v{rng.randint(1, 9)}'
            f'.{rng.randint(0, 40)}.{rng.randint(0, 9)}"',
            f'"Successfully pulled image" image="registry.example.com/{pod.split("-")[0]}:v1.'
            f'{rng.randint(0, 40)}.0" duration="{rng.randint(300, 9000)}ms"',
            f'"RemoveContainer" containerID="containerd://{_hex(rng, 64)}"',
            f'"Volume detached for volume" volume="kube-api-access-{_hex(rng, 5)}" '
            f'nodeName="{rng.choice(HOSTS)}"',
        ])
        return (f"I{now.strftime('%m%d %H:%M:%S')}.{now.microsecond:06d}    "
                f"{rng.randint(900, 1200)} {rng.choice(KUBELET_FILES)}:"
                f"{rng.randint(100, 2500)}] {msg}")

    def spring() -> str:
        logger = rng.choice(JAVA_LOGGERS)
        level = rng.choices(["INFO", "DEBUG", "WARN"], [85, 10, 5])[0]
        msg = rng.choice([
            f"Created order id={rng.randint(10**5, 10**6)} customer={rng.randint(1, 90_000)} "
            f"total={rng.randint(100, 90_000) / 100:.2f} EUR",
            f"Captured payment {_uuid(rng)} in {rng.randint(20, 900)} ms",
            f"Completed initialization in {rng.randint(1, 40)} ms",
            f"Reconciled {rng.randint(10, 5000)} SKUs for warehouse WH-{rng.randint(1, 12)}",
            f"HikariPool-1 - Pool stats (total={rng.randint(10, 40)}, active={rng.randint(0, 9)}, "
            f"idle={rng.randint(1, 30)}, waiting=0)",
            f"Executing batch of {rng.randint(2, 200)} statements",
            f"Posted {rng.randint(1, 800)} ledger entries for period 2024-{rng.randint(1, 3):02d}",
            f"Slow request GET {_path(rng)} took {rng.randint(1000, 3000)} ms (threshold 1000 ms)",
        ])
        thread = rng.choice([f"http-nio-8080-exec-{rng.randint(1, 200)}", "scheduling-1",
                             f"task-{rng.randint(1, 16)}", "main"])
        return (f"{now.strftime('%Y-%m-%d %H:%M:%S')}.{now.microsecond // 1000:03d} {level:>5} "
                f"{rng.randint(1, 9)} --- [{thread:>15}] {logger:<40} : {msg}")

    def python_app() -> str:
        logger = rng.choice(PY_LOGGERS)
        level = rng.choices(["INFO", "DEBUG", "WARNING"], [85, 10, 5])[0]
        msg = rng.choice([
            f"exported {rng.randint(1, 20_000)} rows to s3://exports-prod/{now:%Y/%m/%d}/"
            f"{rng.choice(WORDS)}-{_hex(rng, 6)}.csv.gz",
            f"search q={rng.choice(WORDS)!r} hits={rng.randint(0, 900)} "
            f"took={rng.randint(3, 400)}ms",
            f"Task app.tasks.{rng.choice(WORDS)}_refresh[{_uuid(rng)}] received",
            f"Task app.tasks.{rng.choice(WORDS)}_refresh[{_uuid(rng)}] succeeded in "
            f"{rng.randint(1, 9000) / 1000:.3f}s: None",
            f"Starting new HTTPS connection (1): {rng.choice(SERVICES)}.internal:443",
            f"cache warm: {rng.randint(100, 9000)} keys in {rng.randint(10, 900)} ms",
            f"invoice INV-{rng.randint(10_000, 99_999)} rendered for account "
            f"{rng.randint(1, 9999)}",
            f"Connection pool is full, discarding connection: {rng.choice(SERVICES)}.internal",
        ])
        return (f"{now.strftime('%Y-%m-%d %H:%M:%S')},{now.microsecond // 1000:03d} {level} "
                f"[{logger}] {msg}")

    def gc() -> str:
        heap = rng.choice([1024, 2048, 4096])
        before = rng.randint(heap // 4, heap - 10)
        after = rng.randint(heap // 16, before)
        kind = rng.choice(["Pause Young (Normal) (G1 Evacuation Pause)",
                           "Pause Young (Concurrent Start) (G1 Humongous Allocation)",
                           "Pause Remark", "Pause Cleanup", "Pause Young (Prepare Mixed) "
                           "(G1 Evacuation Pause)"])
        n = rng.randint(1, 9000)
        return rng.choice([
            f"[{iso()}][info][gc] GC({n}) {kind} {before}M->{after}M({heap}M) "
            f"{rng.randint(1, 60_000) / 1000:.3f}ms",
            f"[{iso()}][info][gc,heap] GC({n}) Eden regions: {rng.randint(10, 300)}->0"
            f"({rng.randint(100, 300)})",
            f"[{iso()}][info][gc,cpu] GC({n}) User=0.{rng.randint(1, 99):02d}s Sys=0.00s "
            f"Real=0.0{rng.randint(1, 9)}s",
            f"[{iso()}][info][gc,start] GC({n}) Pause Young (Normal) (G1 Evacuation Pause)",
        ])

    def postgres() -> str:
        pid = rng.randint(1000, 60_000)
        msg = rng.choice([
            "LOG:  checkpoint starting: time",
            f"LOG:  checkpoint complete: wrote {rng.randint(10, 9000)} buffers "
            f"({rng.randint(0, 30)}.{rng.randint(0, 9)}%); 0 WAL file(s) added, "
            f"{rng.randint(0, 3)} removed, {rng.randint(0, 9)} recycled; "
            f"write={rng.randint(1, 270)}"
            f".{rng.randint(100, 999)} s",
            f"LOG:  duration: {rng.randint(1, 900)}.{rng.randint(100, 999)} ms  statement: "
            f"SELECT id, status FROM orders WHERE customer_id = {rng.randint(1, 90_000)}",
            f"LOG:  automatic vacuum of table "
            f"\"shop.public.{rng.choice(['orders', 'carts', 'sessions'])}\": "
            f"index scans: {rng.randint(0, 2)}",
            f"LOG:  connection authorized: user={rng.choice(['app', 'reports', 'replicator'])} "
            f"database=shop application_name={rng.choice(SERVICES)}",
            f"LOG:  disconnection: session time: 0:0{rng.randint(0, 9)}:{rng.randint(10, 59)}."
            f"{rng.randint(100, 999)} user=app database=shop host={_ip(rng)} "
            f"port={rng.randint(30_000, 60_000)}",
        ])
        stamp = f"{now.strftime('%Y-%m-%d %H:%M:%S')}.{now.microsecond // 1000:03d}"
        return f"{stamp} UTC [{pid}] {msg}"

    def redis() -> str:
        msg = rng.choice([
            f"* Background saving started by pid {rng.randint(100, 9999)}",
            "* Background saving terminated with success",
            f"* {rng.randint(1, 900)} changes in 300 seconds. Saving...",
            "* DB saved on disk",
            f"* Fork CoW for RDB: current {rng.randint(1, 90)} MB, peak {rng.randint(1, 90)} MB",
        ])
        return f"1:M {now.strftime('%d %b %Y %H:%M:%S')}.{now.microsecond // 1000:03d} {msg}"

    def logfmt() -> str:
        msg = rng.choice([
            f'msg="request completed" method=GET path={_path(rng)} status=200 '
            f'duration={rng.randint(1, 900)}ms bytes={rng.randint(10, 90_000)}',
            f'msg="cache refreshed" entries={rng.randint(10, 90_000)} took={rng.randint(1, 900)}ms',
            f'msg="leader lease renewed" lease={rng.choice(SERVICES)}-leader '
            f'holder={rng.choice(PODS)}',
            f'msg="flushed batch" topic={rng.choice(WORDS)}-events partition={rng.randint(0, 11)} '
            f'offset={rng.randint(10**6, 10**8)} size={rng.randint(1, 500)}',
            f'msg="retrying request" attempt=2 backoff={rng.randint(50, 400)}ms '
            f'upstream={rng.choice(SERVICES)}.internal',
            f'msg="config reloaded" version={rng.randint(100, 999)} checksum={_hex(rng, 12)}',
        ])
        level = "warn" if "retrying" in msg else rng.choice(["info", "info", "info", "debug"])
        return f"time={iso(False)} level={level} service={rng.choice(SERVICES)} {msg}"

    def json_line() -> str:
        return rng.choice([
            f'{{"level":"info","ts":{now.timestamp():.3f},'
            f'"caller":"server/http.go:{rng.randint(50, 400)}",'
            f'"msg":"handled request","method":"POST","path":"{_path(rng)}","status":201,'
            f'"latency_ms":{rng.randint(1, 500)},"request_id":"{_uuid(rng)}"}}',
            f'{{"time":"{iso()}","level":"INFO","logger":"{rng.choice(SERVICES)}.worker",'
            f'"message":"processed {rng.randint(1, 500)} jobs","queue":"{rng.choice(WORDS)}",'
            f'"duration_ms":{rng.randint(1, 9000)}}}',
            f'{{"@timestamp":"{iso()}","log.level":"info","message":"user signed in",'
            f'"user.id":"u-{_hex(rng, 6)}","client.ip":"{_ip(rng, False)}","event.duration":'
            f'{rng.randint(10**5, 10**8)}}}',
        ])

    def sys_misc() -> str:
        return rng.choice([
            f"{syslog_prefix('CRON', rng.randint(1000, 90_000))} ({rng.choice(USERS)}) CMD "
            f"(/usr/local/bin/{rng.choice(WORDS)}-sync --quiet)",
            f"{syslog_prefix('sshd', rng.randint(1000, 90_000))} Accepted publickey for "
            f"{rng.choice(USERS)} from {_ip(rng)} port {rng.randint(30_000, 65_000)} ssh2: "
            f"ED25519 SHA256:{_hex(rng, 20)}",
            f"{syslog_prefix('sshd', rng.randint(1000, 90_000))} pam_unix(sshd:session): session "
            f"opened for user {rng.choice(USERS)}(uid={rng.randint(1000, 1010)}) by (uid=0)",
            f"{syslog_prefix('kernel')} "
            f"[{rng.randint(10_000, 999_999)}.{rng.randint(100_000, 999_999)}] "
            f"IPv4: martian source {_ip(rng)} from {_ip(rng)}, on dev eth0",
            f"{syslog_prefix('dockerd', rng.randint(500, 900))} time=\"{iso(False)}\" level=info "
            f"msg=\"ignoring event\" container={_hex(rng, 64)} module=libcontainerd "
            f"namespace=moby topic=/tasks/delete type=\"*events.TaskDelete\"",
            f"{syslog_prefix('chronyd', rng.randint(500, 900))} Selected source {_ip(rng, False)} "
            f"(ntp.example.net)",
        ])

    def node() -> str:
        return rng.choice([
            f"{rng.choice(['GET', 'POST'])} {_path(rng)} {rng.choice([200, 200, 304, 201])} "
            f"{rng.randint(1, 900)}.{rng.randint(100, 999)} ms - {rng.randint(2, 9000)}",
            f"[{iso()}] info: worker {rng.randint(1, 8)} ready (pid {rng.randint(100, 9999)})",
            f"[{iso()}] info: webpack compiled successfully in {rng.randint(300, 9000)} ms",
            f"[{iso()}] info: session store: pruned {rng.randint(0, 900)} expired sessions",
        ])

    def k8s_event() -> str:
        pod = rng.choice(PODS)
        return rng.choice([
            f"{rng.randint(1, 59)}s  Normal  Scheduled  pod/{pod}  "
            f"Successfully assigned prod/{pod} "
            f"to {rng.choice(HOSTS)}",
            f"{rng.randint(1, 59)}m  Normal  Pulled  pod/{pod}  "
            f"Container image \"registry.example.com/"
            f"{pod.split('-')[0]}:v1.{rng.randint(0, 40)}.0\" already present on machine",
            f"{rng.randint(1, 59)}m  Normal  ScalingReplicaSet  deployment/{pod.split('-')[0]}  "
            f"Scaled up replica set {pod.rsplit('-', 1)[0]} to {rng.randint(2, 12)}",
        ])

    families = [(nginx, 20), (envoy, 4), (systemd, 8), (kubelet, 8), (spring, 10),
                (python_app, 8), (gc, 6), (postgres, 6), (redis, 3), (logfmt, 8),
                (json_line, 6), (sys_misc, 6), (node, 5), (k8s_event, 2)]
    makers, weights = zip(*families, strict=True)
    for _ in range(count):
        now += timedelta(milliseconds=rng.randint(1, 2500))
        out.append(rng.choices(makers, weights)[0]())
    return out


def write_background(path: Path, count: int = 2400, seed: int = 7) -> None:
    lines = ordinary_log_lines(count, seed)
    header = ("# Ordinary log lines for the too-broad guard of bug signatures. Generated by "
              "bench/match.py --write-background; do not edit by hand.")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(header + "\n" + "\n".join(lines) + "\n", encoding="utf-8")
    print(f"wrote {len(lines):,} lines to {path}")


# --------------------------------------------------------------------------------------------
# Generated signatures

COMPONENTS = ["OrderService", "PaymentGateway", "StockReconciler", "TokenCache", "ShardRouter",
              "BlobStore", "MailRelay", "LedgerWriter", "SearchIndexer", "FeedBuilder",
              "SessionStore", "RateLimiter", "ReplicaMonitor", "UploadWorker", "PdfRenderer"]
VERBS = ["failed", "timed out", "rejected", "stalled", "aborted", "gave up", "was dropped",
         "retried", "overflowed", "deadlocked"]
NOUNS = ["batch", "request", "lease", "snapshot", "segment", "checkpoint", "handshake", "commit",
         "manifest", "cursor", "partition", "upload", "refresh", "invoice", "transfer"]
PHRASES = ["connection reset", "lock wait exceeded", "checksum mismatch", "quota exhausted",
           "stale generation", "fencing token rejected", "schema version skew",
           "unexpected end of stream", "duplicate delivery", "clock skew detected"]


def generated_signatures(count: int, seed: int = 11) -> tuple[list[dict], list[str]]:
    """``count`` signatures (front matter) and, for each, a log line that confirms it."""
    rng = random.Random(seed)
    sigs, lines = [], []
    for n in range(1, count + 1):
        service, component = rng.choice(SERVICES), rng.choice(COMPONENTS)
        verb, noun, phrase = rng.choice(VERBS), rng.choice(NOUNS), rng.choice(PHRASES)
        code = f"E{n:05d}"
        shape = n % 5
        if shape == 0:
            patterns = [{"kind": "template",
                         "value": f"{component} {noun} <num> {verb} after <num> ms ({code})"}]
            line = f"WARN {service} {component} {noun} {rng.randint(1, 99999)} {verb} after " \
                   f"{rng.randint(1, 9000)} ms ({code}) host={rng.choice(HOSTS)}"
        elif shape == 1:
            patterns = [{"kind": "regex",
                         "value": rf"{component}Exception: {phrase} \(code={code}\)"},
                        {"kind": "literal", "value": f"{service} {noun}"}]
            line = f"ERROR {service} {noun} failed: com.example.{component}Exception: {phrase} " \
                   f"(code={code})"
        elif shape == 2:
            patterns = [{"kind": "template",
                         "value": f"{noun} <uuid> {verb} in queue {service}-{n}"},
                        {"kind": "regex", "value": rf"attempt=(?:[3-9]|[1-9][0-9]+) {code}\b"}]
            line = f"WARN {noun} {_uuid(rng)} {verb} in queue {service}-{n} " \
                   f"attempt={rng.randint(3, 40)} {code}"
        elif shape == 3:
            other = rng.choice(VERBS)
            regex = rf"(?i){service}[-_]{noun}_{n} (?:{verb}|{other}): .*shard=[0-9]+"
            patterns = [{"kind": "regex", "value": regex}]
            line = f"ERROR {service}_{noun}_{n} {verb}: {phrase} shard={rng.randint(0, 63)}"
        else:
            patterns = [{"kind": "template",
                         "value": f"{component}: {phrase} for <path> from <ip> [{code}]"}]
            line = f"ERROR {component}: {phrase} for /var/lib/{service}/{noun}.db from " \
                   f"{_ip(rng)} [{code}]"
        fm = {"id": f"SIG-{n}", "title": f"{component} {noun} {verb} ({code})", "status": "active",
              "match": "all", "patterns": patterns}
        if n % 10 == 0:
            fm["not"] = [{"kind": "literal", "value": f"loadtest-{n}"}]
        sigs.append(fm)
        lines.append(line)
    return sigs, lines


def paste(size: int, sig_lines: list[str], seed: int = 5, rate: float = 0.005) -> str:
    """About ``size`` bytes of ordinary log lines; one line in 200 (``rate``) confirms a
    signature."""
    rng = random.Random(seed)
    pool = ordinary_log_lines(4000, seed=seed)
    out, total = [], 0
    while total < size:
        line = rng.choice(sig_lines) if rng.random() < rate else rng.choice(pool)
        out.append(line)
        total += len(line.encode()) + 1
    return "\n".join(out) + "\n"


# --------------------------------------------------------------------------------------------
# Timing


def naive(sources: list[tuple[str, str]], text: str, budget: float) -> tuple[float, int, set]:
    """Every pattern as a Python ``re``, searched in every line, until ``budget`` seconds."""
    compiled = [(ident, re.compile(source)) for ident, source in sources]
    lines = text.splitlines()
    hits: set[tuple[int, str]] = set()
    started = time.perf_counter()
    done = 0
    for n, line in enumerate(lines, 1):
        for ident, pattern in compiled:
            if pattern.search(line):
                hits.add((n, ident))
        done = n
        if time.perf_counter() - started > budget:
            break
    return time.perf_counter() - started, done, hits


def run(counts: list[int], sizes: list[int], repeat: int, budget: float) -> list[dict]:
    from wiki import signatures as s

    rows = []
    for count in counts:
        sigs, sig_lines = generated_signatures(count)
        started = time.perf_counter()
        index = s.SignatureIndex()
        index.rebuild(sigs)
        len(index)  # builds the set
        build = time.perf_counter() - started
        sources = [(fm["id"], s.compile_pattern(p).regex) for fm in sigs for p in fm["patterns"]]
        for size in sizes:
            text = paste(size, sig_lines)
            lines = text.count("\n")
            times = []
            for _ in range(repeat if size >= 1_000_000 else max(repeat, 25)):
                started = time.perf_counter()
                result = index.match(text)
                times.append(time.perf_counter() - started)
            median = statistics.median(times)
            naive_time, naive_lines, _ = naive(sources, text, budget)
            rows.append({
                "signatures": count, "patterns": len(sources), "build_s": build,
                "bytes": len(text.encode()), "lines": lines, "set_s": median,
                "set_lines_s": lines / median, "confirmed": len(result.confirmed),
                "naive_s": naive_time * lines / naive_lines,
                "naive_lines_s": naive_lines / naive_time,
                "naive_extrapolated": naive_lines < lines,
            })
    return rows


def check_equivalence(count: int = 1000) -> None:
    """On a 10 KB paste the set finds exactly the (line, pattern) pairs of the naive loop."""
    from wiki import signatures as s

    sigs, sig_lines = generated_signatures(count)
    text = paste(10_000, sig_lines, rate=0.3)
    snapshot = s._Snapshot([s.compile_signature(fm) for fm in sigs])
    got = set()
    for pattern_set, offset in snapshot.sets:
        for n, line in enumerate(text.splitlines(), 1):
            for i in pattern_set.Match(line) or ():
                got.add((n, offset + i))
    sources = [s.compile_pattern(p).regex
               for fm in sigs for p in fm["patterns"] + fm.get("not", [])]
    _, _, expected = naive([(str(i), src) for i, src in enumerate(sources)], text, 1e9)
    expected = {(n, int(i)) for n, i in expected}
    ordered = [p for fm in sigs for p in fm["patterns"] + fm.get("not", [])]
    assert len(ordered) == len(snapshot.line_patterns)
    assert got == expected, f"set and naive loop disagree on {len(got ^ expected)} hits"
    print(f"check: RE2 set and naive loop agree on {len(got)} (line, pattern) hits "
          f"({count:,} signatures, 10 KB)")


def table(rows: list[dict]) -> str:
    def human(n: int) -> str:
        return f"{n / 1_000_000:.0f} MB" if n >= 1_000_000 else f"{n / 1000:.0f} KB"

    out = ["| signatures (patterns) | paste (lines) | build set | RE2 set: total "
           "| RE2 set: lines/s | naive `re`: total | naive `re`: lines/s | speed-up |",
           "|---|---|---|---|---|---|---|---|"]
    for r in rows:
        approx = "~" if r["naive_extrapolated"] else ""
        out.append(
            f"| {r['signatures']:,} ({r['patterns']:,}) | {human(r['bytes'])} ({r['lines']:,}) "
            f"| {r['build_s'] * 1000:,.0f} ms | {r['set_s'] * 1000:,.1f} ms "
            f"| {r['set_lines_s']:,.0f} | {approx}{r['naive_s']:,.1f} s "
            f"| {r['naive_lines_s']:,.0f} | {approx}{r['naive_s'] / r['set_s']:,.0f}× |")
    return "\n".join(out)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--write-background", type=Path, metavar="PATH")
    parser.add_argument("--quick", action="store_true", help="100 and 1,000 signatures only")
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--budget", type=float, default=4.0,
                        help="seconds the naive loop gets per cell before extrapolating")
    args = parser.parse_args()
    if args.write_background:
        write_background(args.write_background)
        sys.exit(0)
    check_equivalence(300 if args.quick else 1000)
    counts = [100, 1000] if args.quick else [100, 1000, 10_000]
    rows = run(counts, [10_000, 100_000, 1_000_000], args.repeat, args.budget)
    print()
    print(table(rows))
    print()
    for count in counts:
        small, middle, big = [r for r in rows if r["signatures"] == count]
        print(f"{count:,} signatures: ×{middle['lines'] / small['lines']:.0f} and "
              f"×{big['lines'] / small['lines']:.0f} the lines of 10 KB take "
              f"×{middle['set_s'] / small['set_s']:.0f} and ×{big['set_s'] / small['set_s']:.0f} "
              f"the time")
