"""wiki.signatures: normaliser, stack-trace parsers, patterns, the RE2 set matcher, examples and
the too-broad guard. No Flask here (see test_match_views.py for the pages and the API)."""

# ruff: noqa: E501 - log lines and their templates are kept whole in the test tables

from __future__ import annotations

import random
import re
import threading
from pathlib import Path

import pytest

from wiki import documents as d
from wiki import signatures as s

ROOT = Path(__file__).resolve().parent.parent
DEMO_SIGNATURES = sorted((ROOT / "content" / "signatures").glob("*.md"))


def signature(patterns, *, ident="SIG-1", mode="all", nots=(), status="active", **extra):
    """A signature as front matter (what compile_signature and SignatureIndex accept)."""
    return {"id": ident, "title": f"Signature {ident}", "slug": ident.lower(), "status": status,
            "match": mode, "patterns": list(patterns), "not": list(nots), **extra}


def lit(value, **extra):
    return {"kind": "literal", "value": value, **extra}


def rx(value, **extra):
    return {"kind": "regex", "value": value, **extra}


def tpl(value, **extra):
    return {"kind": "template", "value": value, **extra}


def matched_ids(index, text):
    return [(m.id, m.confidence) for m in index.match(text).matches]


def run_with_timeout(fn, seconds=60):
    """Run ``fn`` in a thread; fail (instead of hanging the suite) if it does not finish."""
    box = {}

    def target():
        try:
            box["value"] = fn()
        except BaseException as exc:  # noqa: BLE001
            box["error"] = exc

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    thread.join(seconds)
    assert not thread.is_alive(), f"did not finish within {seconds} s"
    if "error" in box:
        raise box["error"]
    return box.get("value")


# --------------------------------------------------------------------------------------------
# Normaliser


def test_strip_ansi_removes_colours_and_titles():
    text = "\x1b[31mERROR\x1b[0m \x1b[1;33mdisk\x1b[m full\x1b]0;title\x07 now"
    assert s.strip_ansi(text) == "ERROR disk full now"


@pytest.mark.parametrize("line, rest", [
    ("2023-06-14T09:27:32Z ERROR mail-relay read timed out", "mail-relay read timed out"),
    ("2023-06-14 09:27:32,123 INFO [main] app started", "app started"),
    ("[2022-05-11 05:12:45.240 +02:00] W uploader: failed", "uploader: failed"),
    ("Jun 14 09:12:00 web-3 systemd[1]: Started Session 42.", "Started Session 42."),
    ("I0614 09:12:00.123456    1234 kubelet.go:2123] \"SyncLoop\"", "\"SyncLoop\""),
    ("2023-09-12 13:07:44.512 ERROR 1 --- [nio-8080-exec-7] o.a.c : boom", "o.a.c : boom"),
    ("2024-01-02T03:04:05.678Z stderr F panic: oops", "panic: oops"),
    ("1686734000.123 WARN slow", "slow"),
    ("[WARN] disk 91% full", "disk 91% full"),
    ("plain line without prefix", "plain line without prefix"),
    ("Information is not a level", "Information is not a level"),
])
def test_strip_prefix(line, rest):
    assert s.strip_prefix(line) == rest


@pytest.mark.parametrize("line, template", [
    ("took 250 ms and 1.5s, offset -42", "took <num> ms and <num>s, offset <num>"),
    ("served blk_-1608999687919862906 ok", "served blk_<num> ok"),
    ("addr=0x7f1a2b pc=0xC0FFEE sha 3fa9c02b17e4 build deadbeef", "addr=<hex> pc=<hex> sha <hex> build deadbeef"),
    ("msg 6f1c2a9e-0b3d-4c7e-9a51-2d8e7f4b1c03 sent", "msg <uuid> sent"),
    ("from 10.251.42.84:50010 and 192.168.0.1", "from <ip>:<num> and <ip>"),
    ("peer fe80::1ff:fe23:4567:890a and ::1 and 2001:db8:0:0:0:0:2:1", "peer <ip> and <ip> and <ip>"),
    ("to /10.251.42.84:50010:", "to /<ip>:<num>:"),
    ("read /var/lib/app/data.db and ./run.sh and ~/x/y", "read <path> and <path> and <path>"),
    ("at src/app.js:12:5 (lib/util/io.py)", "at <path>:<num>:<num> (<path>)"),
    (r"open C:\Users\qa\AppData\app.exe failed", "open <path> failed"),
    ("and/or text/html HTTP/1.1 14/Jun/2023", "and/or text/html HTTP/<num> <num>/Jun/<num>"),
    ("mail ana.lopez+ops@example.co.uk bounced", "mail <email> bounced"),
    ("see https://sqlalche.me/e/14/bhk3 now", "see https://sqlalche.me<path> now"),
    ("because \"existing\" is null, key 'k-12' and `name'", "because \"<*>\" is null, key '<*>' and `<*>'"),
    ("msg=\"cache refreshed ok\" can't won't", "msg=\"cache refreshed ok\" can't won't"),
    ("at com.foo.Bar.<init>(Bar.java:12) in <module>", "at com.foo.Bar.\\<init>(Bar.java:<num>) in \\<module>"),
    ("v1.2 python3.11 utf8 x86_64 sha256", "v1.2 python3.11 utf8 x86_64 sha256"),
    ("hash_list=3fa9c02b17e4d8a6l9b0e51c4d7a2f836", "hash_list=3fa9c02b17e4d8a6l9b0e51c4d7a2f836"),
])
def test_normalise_line_uses_typed_placeholders(line, template):
    assert s.normalise_line(line) == template


def test_normalise_line_strips_ansi_prefix_and_collapses_whitespace():
    line = "\x1b[2m2023-06-14T09:27:32Z\x1b[0m \x1b[31mERROR\x1b[0m   read   of  42   failed"
    assert s.normalise_line(line) == "read of <num> failed"


def normalised_lines():
    lines = list(s.load_background())
    for path in DEMO_SIGNATURES:
        doc = d.parse(path.read_bytes(), path=f"signatures/{path.name}")
        for snippet in doc.get("examples", []) + doc.get("not_examples", []):
            lines.extend(snippet.splitlines())
    return lines


def test_every_normalised_line_is_a_template_matching_its_line():
    """What the normaliser writes, the template compiler reads back: round trip on thousands
    of ordinary log lines and every line of the demo examples."""
    lines = [line for line in normalised_lines() if line.strip()]
    assert len(lines) > 2000
    failures = []
    for line in lines:
        template = s.normalise_line(line)
        try:
            compiled = s.compile_pattern(tpl(template)) if re.search(r"[A-Za-z]", template) else None
        except s.PatternError as exc:
            failures.append((line, template, str(exc)))
            continue
        if compiled is not None and compiled.compiled.search(line) is None:
            failures.append((line, template, "no match"))
    assert failures == []


def test_template_from_lines_dedupes_and_skips_lines_without_text():
    lines = ["2023-06-14T09:27:02Z ERROR read of 42 failed", "", "2023-06-14T09:27:03Z ERROR read of 43 failed",
             "12345", "WARN cache miss"]
    assert s.template_from_lines(lines) == ["read of <num> failed", "cache miss"]


def test_background_sample_is_large_and_varied():
    lines = s.load_background()
    assert len(lines) >= 2000
    assert len({s.normalise_line(line) for line in lines}) > 300
    for marker in ("HTTP/1.1\"", "systemd[1]", "kubelet.go", "[gc]", "LOG:  ", "level=info", "{\""):
        assert any(marker in line for line in lines), marker


# --------------------------------------------------------------------------------------------
# Templates


@pytest.mark.parametrize("placeholder, good, bad", [
    ("num", ["0", "42", "-7", "+3", "30.00", "1.2.3"], ["x", "-", "."]),
    ("hex", ["0x1d", "DEADbeef", "3fa9c02b", "0"], ["xyz", "g1"]),
    ("uuid", ["6f1c2a9e-0b3d-4c7e-9a51-2d8e7f4b1c03"], ["6f1c2a9e-0b3d-4c7e-9a51", "not-a-uuid"]),
    ("ip", ["10.0.0.1", "255.255.255.255", "::1", "fe80::1ff:fe23:4567:890a"], ["10.0.1", "host"]),
    ("path", ["/var/log/x.log", "./a/b", "~/x", "src/app.js", r"C:\Users\qa\x.exe", "/a"], ["word", "a.b"]),
    ("email", ["a@b.co", "ana.lopez+ops@example.co.uk"], ["a@b", "@example.com", "plain"]),
])
def test_each_placeholder_type(placeholder, good, bad):
    pattern = s.compile_pattern(tpl(f"value=<{placeholder}> end"))
    for value in good:
        assert pattern.compiled.search(f"x value={value} end y"), value
    for value in bad:
        assert pattern.compiled.search(f"x value={value} end y") is None, value


def test_template_star_matches_any_run_of_tokens_including_none():
    pattern = s.compile_pattern(tpl("POST /v1/client-logs <*> status=500"))
    assert pattern.compiled.search("POST /v1/client-logs device=d-1 bundle=b status=500")
    assert pattern.compiled.search("POST /v1/client-logs status=500")
    assert pattern.compiled.search("POST /v1/client-logsstatus=500") is None
    glued = s.compile_pattern(tpl("id=<*>;"))
    assert glued.compiled.search("id=;") and glued.compiled.search("id=a b c;")


def test_template_whitespace_is_flexible_and_case_sensitive_by_default():
    pattern = s.compile_pattern(tpl("  read   timed out  "))
    assert pattern.compiled.search("read\t timed  out")
    assert pattern.compiled.search("READ TIMED OUT") is None
    assert pattern.compiled.search("readtimed out") is None
    insensitive = s.compile_pattern(tpl("read timed out", case_sensitive=False))
    assert insensitive.compiled.search("READ TIMED OUT")


def test_template_special_characters_are_literal():
    pattern = s.compile_pattern(tpl(r"a.b (c) [d] $e ^f \g* \<init> <NUM>"))
    assert pattern.compiled.search(r"a.b (c) [d] $e ^f \g* <init> 7")
    assert pattern.compiled.search(r"aXb (c) [d] $e ^f \g* <init> 7") is None


@pytest.mark.parametrize("template, message", [
    ("blk_<nmu> served", "unknown placeholder <nmu>"),
    ("<script>alert(1)</script>", "unknown placeholder <script>"),
    ("<*> <num>", "no literal text"),
    ("   ", "non-empty"),
])
def test_invalid_templates_are_rejected_with_a_reason(template, message):
    with pytest.raises(s.PatternError, match=re.escape(message)):
        s.compile_pattern(tpl(template))


# --------------------------------------------------------------------------------------------
# Other pattern kinds


def test_literal_is_case_insensitive_unless_asked():
    assert s.compile_pattern(lit("Disk Full")).compiled.search("ERROR: DISK FULL on /")
    sensitive = s.compile_pattern(lit("Disk Full", case_sensitive=True))
    assert sensitive.compiled.search("ERROR: DISK FULL on /") is None
    assert s.compile_pattern(lit("a.b*c")).compiled.search("xa.b*cx")
    assert s.compile_pattern(lit("a.b*c")).compiled.search("xaxbbcx") is None


@pytest.mark.parametrize("regex, reason", [
    (r"(a)\1", "backreferences are not supported"),
    (r"(?P<x>a)(?P=x)", "backreferences are not supported"),
    (r"foo(?=bar)", "lookahead and lookbehind are not supported"),
    (r"(?<!x)foo", "lookahead and lookbehind are not supported"),
    (r"(?<=x)foo", "lookahead and lookbehind are not supported"),
    (r"a{2000}", "repetition counts go up to 1000"),
    (r"[a-", "missing ]"),
    (r"x*", "matches an empty line"),
])
def test_regexes_re2_cannot_run_are_rejected_with_the_reason(regex, reason):
    with pytest.raises(s.PatternError, match=re.escape(reason)):
        s.compile_pattern(rx(regex))


def test_pattern_errors_names_field_and_pattern():
    fm = signature([lit("ok"), rx(r"(a)\1")], nots=[tpl("<bad>")])
    errors = s.pattern_errors(fm)
    assert [field for field, _ in errors] == ["patterns", "not"]
    assert errors[0][1].startswith("pattern 2 (regex) is not a regular expression RE2 can run")
    assert errors[1][1].startswith("pattern 1 (template) unknown placeholder <bad>")


@pytest.mark.parametrize("pattern, message", [
    ({"kind": "exception"}, "needs a type"),
    ({"kind": "exception", "type": "Foo Bar"}, "is not an exception type name"),
    ({"kind": "exception", "type": "E", "message": "<zzz>"}, "message unknown placeholder"),
    ({"kind": "frames", "value": []}, "needs a list of frame globs"),
    ({"kind": "frames", "value": ["*", "?"]}, "at least one frame glob"),
    ({"kind": "sql", "value": "x"}, "is not one of"),
    ({"kind": "regex", "value": ["a"]}, "non-empty text"),
])
def test_invalid_exception_and_frames_patterns(pattern, message):
    with pytest.raises(s.PatternError, match=re.escape(message)):
        s.compile_pattern(pattern)


# --------------------------------------------------------------------------------------------
# Stack traces, per language

PYTHON_TRACE = """\
2025-04-15T10:02:37.914Z ERROR search-api GET /v2/search 503
Traceback (most recent call last):
  File "/srv/search-api/app/db.py", line 41, in connection
    with pool.connection(timeout=30) as conn:
         ^^^^^^^^^^^^^^^^^^^^^^^^^^^
  File "/srv/app/.venv/lib/python3.12/site-packages/psycopg_pool/pool.py", line 201, in getconn
    raise PoolTimeout(
psycopg_pool.PoolTimeout: couldn't get a connection after 30.00 sec

During handling of the above exception, another exception occurred:

Traceback (most recent call last):
  File "/srv/search-api/app/views.py", line 12, in search
    return db.query()
KeyError: 'shard'
"""

JAVA_TRACE = """\
2023-09-12 13:07:44.512 ERROR 1 --- [nio-8080-exec-7] o.a.c.c.C.[dispatcherServlet] : threw exception

java.lang.IllegalStateException: Failed to save profile
\tat com.lumen.profiles.api.ProfileController.patch(ProfileController.java:64)
\tat java.base/jdk.internal.reflect.DirectMethodHandleAccessor.invoke(DirectMethodHandleAccessor.java:103)
Caused by: java.net.SocketTimeoutException: Read timed out
\tat java.base/java.net.SocketInputStream.socketRead0(Native Method)
\tat com.lumen.profilestore.client.StoreClient.get(StoreClient.java:77)
\t... 12 more
"""

NODE_TRACE = """\
/app/index.js:10
    throw new TypeError('boom');
    ^

TypeError: Cannot read properties of undefined (reading 'id')
    at Object.<anonymous> (/app/src/handler.js:10:11)
    at Module._compile (node:internal/modules/cjs/loader:1256:14)
    at async Promise.all (index 0)
    at node:internal/main/run_main_module:23:47
"""

GO_TRACE = """\
panic: runtime error: invalid memory address or nil pointer dereference
[signal SIGSEGV: segmentation violation code=0x1 addr=0x0 pc=0x49a8f5]

goroutine 1 [running]:
main.(*Server).handle(0xc000010000, {0x7b4c30, 0xc000192000})
\t/home/user/app/server.go:42 +0x25
github.com/acme/app/store.(*DB).Get(...)
\t/home/user/app/store/db.go:17
main.main()
\t/home/user/app/main.go:10 +0x3a

goroutine 18 [chan receive]:
net/http.(*conn).serve(0xc0001a4000)
\t/usr/local/go/src/net/http/server.go:1868 +0x1d
created by net/http.(*Server).Serve in goroutine 1
\t/usr/local/go/src/net/http/server.go:3086 +0x5cb
exit status 2
"""

RUBY_TRACE = """\
/app/models/user.rb:12:in `save': undefined method `name' for nil:NilClass (NoMethodError)
\tfrom /app/controllers/users_controller.rb:5:in `create'
\tfrom bin/rails:4:in `<main>'
"""

RAILS_TRACE = """\
NoMethodError (undefined method 'name' for nil):
  app/models/user.rb:12:in 'User#save'
  app/controllers/users_controller.rb:5:in 'UsersController#create'
"""

DOTNET_TRACE = """\
Unhandled exception. System.InvalidOperationException: Sequence contains no elements
   at System.Linq.ThrowHelper.ThrowNoElementsException()
   at Acme.Orders.OrderService.Get(Int32 id) in C:\\src\\Orders\\OrderService.cs:line 42
"""


def summary(trace):
    return (trace.language, trace.exception, trace.message, [f.name for f in trace.frames],
            [f.text_line for f in trace.frames])


def test_python_trace_with_chained_exception():
    first, second = s.parse_stack_traces(PYTHON_TRACE)
    assert summary(first) == (
        "python", "psycopg_pool.PoolTimeout", "couldn't get a connection after 30.00 sec",
        ["srv.search-api.app.db.connection", "psycopg_pool.pool.getconn"], [3, 6])
    assert first.frames[1].file.endswith("psycopg_pool/pool.py") and first.frames[1].line == 201
    assert (first.start_line, first.header_line) == (2, 8)
    assert summary(second)[:3] == ("python", "KeyError", "'shard'")
    assert second.caused_by is first


def test_python_exception_message_continues_over_lines():
    text = ("Traceback (most recent call last):\n  File \"/a.py\", line 1, in run\n    go()\n"
            "sqlalchemy.exc.IntegrityError: (NotNullViolation) null value\nDETAIL:  Failing row\n\n"
            "[SQL: UPDATE t]\n")
    (trace,) = s.parse_stack_traces(text)
    assert trace.exception == "sqlalchemy.exc.IntegrityError"
    assert trace.message == "(NotNullViolation) null value\nDETAIL:  Failing row"


def test_java_trace_with_caused_by():
    top, cause = s.parse_stack_traces(JAVA_TRACE)
    assert summary(top) == (
        "java", "java.lang.IllegalStateException", "Failed to save profile",
        ["com.lumen.profiles.api.ProfileController.patch",
         "jdk.internal.reflect.DirectMethodHandleAccessor.invoke"], [4, 5])
    assert top.caused_by is cause
    assert summary(cause) == (
        "java", "java.net.SocketTimeoutException", "Read timed out",
        ["java.net.SocketInputStream.socketRead0", "com.lumen.profilestore.client.StoreClient.get"],
        [7, 8])
    assert cause.frames[1].file == "StoreClient.java" and cause.frames[1].line == 77


def test_node_trace():
    (trace,) = s.parse_stack_traces(NODE_TRACE)
    assert summary(trace) == (
        "javascript", "TypeError", "Cannot read properties of undefined (reading 'id')",
        ["Object.<anonymous>", "Module._compile", "Promise.all", "node:internal/main/run_main_module"],
        [6, 7, 8, 9])
    assert trace.frames[0].file == "/app/src/handler.js" and trace.frames[0].line == 10


def test_node_assertion_error_with_code_and_message_lines():
    text = ("AssertionError [ERR_ASSERTION]: The expression evaluated to a falsy value:\n\n"
            "  assert(a.compare(b))\n\n    at Context.<anonymous> (test/buf.test.js:27:5)\n")
    (trace,) = s.parse_stack_traces(text)
    assert (trace.exception, trace.code) == ("AssertionError", "ERR_ASSERTION")
    assert trace.message == "The expression evaluated to a falsy value:\nassert(a.compare(b))"
    assert [f.file for f in trace.frames] == ["test/buf.test.js"]


def test_go_panic_and_goroutines():
    first, second = s.parse_stack_traces(GO_TRACE)
    assert summary(first) == (
        "go", "panic", "runtime error: invalid memory address or nil pointer dereference",
        ["main.(*Server).handle", "github.com/acme/app/store.(*DB).Get", "main.main"], [5, 7, 9])
    assert first.frames[0].function == "(*Server).handle" and first.frames[0].module == "main"
    assert first.frames[1].file == "/home/user/app/store/db.go" and first.frames[1].line == 17
    assert summary(second) == ("go", "", "", ["net/http.(*conn).serve", "net/http.(*Server).Serve"],
                               [13, 15])


def test_go_fatal_error_without_goroutines():
    (trace,) = s.parse_stack_traces("fatal error: concurrent map writes\n")
    assert (trace.exception, trace.message, trace.frames) == ("fatal error", "concurrent map writes", [])


def test_ruby_trace():
    (trace,) = s.parse_stack_traces(RUBY_TRACE)
    assert summary(trace) == ("ruby", "NoMethodError", "undefined method `name' for nil:NilClass",
                              ["save", "create", "<main>"], [1, 2, 3])
    assert trace.frames[1].file == "/app/controllers/users_controller.rb"


def test_rails_trace():
    (trace,) = s.parse_stack_traces(RAILS_TRACE)
    assert summary(trace) == ("ruby", "NoMethodError", "undefined method 'name' for nil",
                              ["User.save", "UsersController.create"], [2, 3])


def test_dotnet_trace():
    (trace,) = s.parse_stack_traces(DOTNET_TRACE)
    assert summary(trace)[:3] == ("dotnet", "System.InvalidOperationException",
                                  "Sequence contains no elements")
    assert trace.frames[1].file == r"C:\src\Orders\OrderService.cs" and trace.frames[1].line == 42


def test_traces_with_log_prefixes_on_every_line():
    text = "\n".join(f"2024-01-02T03:04:05.678Z stderr F {line}" for line in JAVA_TRACE.splitlines())
    top, cause = s.parse_stack_traces(text)
    assert top.exception == "java.lang.IllegalStateException" and len(top.frames) == 2
    assert cause.exception == "java.net.SocketTimeoutException"


def test_no_trace_in_ordinary_logs():
    assert s.parse_stack_traces("\n".join(s.load_background())) == []


def test_error_tokens():
    text = "\n".join([
        PYTHON_TRACE, JAVA_TRACE,
        "ERROR upstream reset: read ECONNRESET (code ERR_STREAM_PREMATURE_CLOSE)",
        "Warning  BackOff  pod/x  Back-off restarting; last state: OOMKilled exit code 137",
        "10.0.0.1 - - [x] \"GET / HTTP/1.1\" 502 0", "status=503 grpc: DEADLINE_EXCEEDED",
        "process received SIGSEGV", "HTTP 200 OK is not an error",
    ])
    assert s.error_tokens(text) == [
        "psycopg_pool.PoolTimeout", "KeyError", "java.lang.IllegalStateException",
        "java.net.SocketTimeoutException", "read timed out", "ECONNRESET",
        "ERR_STREAM_PREMATURE_CLOSE", "BackOff", "OOMKilled", "exit code 137", "HTTP 502",
        "HTTP 503", "DEADLINE_EXCEEDED", "SIGSEGV"]


# --------------------------------------------------------------------------------------------
# Matching: all / any / not, exception and frames


def test_match_all_any_and_not():
    index = s.SignatureIndex()
    index.rebuild([
        signature([lit("disk full"), tpl("volume <path> is read-only")], ident="SIG-1"),
        signature([lit("cache miss storm"), rx(r"evictions=[0-9]{4,}")], ident="SIG-2", mode="any"),
        signature([lit("token refresh failed")], ident="SIG-3", nots=[lit("status=401")]),
    ])
    assert matched_ids(index, "ERROR disk full\nvolume /data is read-only") == [("SIG-1", "confirmed")]
    assert matched_ids(index, "ERROR disk full on /data") == [("SIG-1", "partial")]
    assert matched_ids(index, "evictions=12345") == [("SIG-2", "confirmed")]
    assert matched_ids(index, "token refresh failed status=503") == [("SIG-3", "confirmed")]
    assert matched_ids(index, "token refresh failed status=503\nlater: status=401") == []
    assert matched_ids(index, "nothing to see") == []


def test_confirmed_matches_come_before_partial_ones_and_carry_evidence():
    index = s.SignatureIndex()
    index.rebuild([
        signature([lit("alpha"), lit("beta"), lit("gamma")], ident="SIG-1"),
        signature([lit("delta")], ident="SIG-2"),
    ])
    result = index.match("x\nalpha one\ny\nbeta two\ndelta three")
    assert [(m.id, m.confidence) for m in result.matches] == [("SIG-2", "confirmed"), ("SIG-1", "partial")]
    assert result.lines == 5
    partial = result.matches[1]
    assert [(e.line, e.pattern, e.span) for e in partial.evidence] == [
        (2, "literal: alpha", (0, 5)), (4, "literal: beta", (0, 4))]
    assert partial.missing == ["literal: gamma"]
    assert partial.to_json("u") == {"id": "SIG-1", "title": "Signature SIG-1", "url": "u",
                                    "confidence": "partial", "evidence": [
                                        {"line": 2, "text": "alpha one", "pattern": "literal: alpha"},
                                        {"line": 4, "text": "beta two", "pattern": "literal: beta"}]}


def test_exception_pattern_on_traces_and_log_lines():
    index = s.SignatureIndex()
    index.rebuild([
        signature([{"kind": "exception", "type": "psycopg_pool.PoolTimeout",
                    "message": "couldn't get a connection after <num> sec"}], ident="SIG-1"),
        signature([{"kind": "exception", "type": "SocketTimeoutException"}], ident="SIG-2"),
        signature([{"kind": "exception", "type": "*.IllegalStateException",
                    "message": "Failed to <*> profile"}], ident="SIG-3"),
        signature([{"kind": "exception", "type": "KeyError", "message": "'user'"}], ident="SIG-4"),
    ])
    assert matched_ids(index, PYTHON_TRACE) == [("SIG-1", "confirmed")]
    assert [e.line for e in index.match(PYTHON_TRACE).matches[0].evidence] == [8]
    assert sorted(matched_ids(index, JAVA_TRACE)) == [("SIG-2", "confirmed"), ("SIG-3", "confirmed")]
    line = "WARN client: call failed: java.net.SocketTimeoutException: connect timed out"
    assert matched_ids(index, line) == [("SIG-2", "confirmed")]


def test_frames_pattern_with_one_and_any_frame_wildcards():
    def frames(*globs):
        index = s.SignatureIndex()
        index.rebuild([signature([{"kind": "frames", "value": list(globs)}])])
        return bool(index.match(GO_TRACE).matches)

    assert frames("main.(*Server).handle", "*.(*DB).Get")
    assert frames("*Server*", "?", "main.main")
    assert frames("*Server*", "*", "main.main")
    assert not frames("*Server*", "main.main")  # not adjacent
    assert not frames("*Server*", "?", "?", "main.main")
    assert frames("store.(*DB).Get")  # a dotted/slashed suffix of the name
    assert frames("db.go")  # the file name
    assert not frames("main.main", "*Server*")  # order matters


def test_frames_evidence_lines_are_the_matched_frames():
    index = s.SignatureIndex()
    index.rebuild([signature([{"kind": "frames", "value": ["*.ProfileController.patch", "*", "*.invoke"]}])])
    (found,) = index.match(JAVA_TRACE).matches
    assert [e.line for e in found.evidence] == [4, 5]


def test_retired_signatures_do_not_match_and_updates_apply():
    index = s.SignatureIndex()
    index.rebuild([signature([lit("disk full")], ident="SIG-1")])
    assert matched_ids(index, "disk full") == [("SIG-1", "confirmed")]
    index.update(signature([lit("disk full")], ident="SIG-1", status="retired"))
    assert matched_ids(index, "disk full") == []
    index.update(signature([lit("disk nearly full")], ident="SIG-1"))
    assert matched_ids(index, "disk full") == []
    assert matched_ids(index, "disk nearly full") == [("SIG-1", "confirmed")]
    index.update(signature([lit("other")], ident="SIG-2"))
    index.remove("SIG-1")
    assert matched_ids(index, "disk nearly full other") == [("SIG-2", "confirmed")]


def test_broken_signatures_are_left_out_and_reported():
    index = s.SignatureIndex()
    index.rebuild([signature([rx(r"(a)\1")], ident="SIG-1"), signature([lit("fine")], ident="SIG-2")])
    assert matched_ids(index, "aa fine") == [("SIG-2", "confirmed")]
    assert list(index.problems()) == ["SIG-1"]
    assert "backreferences" in index.problems()["SIG-1"][0]


def test_set_results_equal_individual_pattern_results():
    """The RE2 set only pre-selects: the matches must be exactly those of a per-pattern loop."""
    rng = random.Random(3)
    words = ["cache", "timeout", "shard", "queue", "token", "replica", "upload", "relay"]
    sigs = []
    for n in range(1, 301):
        a, b = rng.sample(words, 2)
        patterns = [rng.choice([lit(f"{a} {b}"), rx(rf"{a}[-_ ]{b}=[0-9]{{{rng.randint(1, 3)}}}\b"),
                                tpl(f"{a} <*> {b} <num>")])]
        if rng.random() < 0.3:
            patterns.append(lit(rng.choice(words)))
        sigs.append(signature(patterns, ident=f"SIG-{n}", mode=rng.choice(["all", "any"])))
    lines = [f"{rng.choice(words)} {rng.choice(['x', 'y'])} {rng.choice(words)}"
             f"{rng.choice([' ', '-', '_'])}{rng.choice(words)}={rng.randint(1, 9999)} {rng.choice(words)} {rng.randint(1, 99)}"
             for _ in range(400)]
    paste = "\n".join(lines)
    index = s.SignatureIndex()
    index.rebuild(sigs)
    expected = []
    for fm in sigs:
        compiled = [s.compile_pattern(p) for p in fm["patterns"]]
        hit = [any(c.compiled.search(line) for line in lines) for c in compiled]
        if all(hit) or (fm["match"] == "any" and any(hit)):
            expected.append(fm["id"])
    got = [m.id for m in index.match(paste, max_partial=0).matches]
    assert sorted(got) == sorted(expected) and expected


def test_the_index_is_safe_to_use_from_many_threads():
    index = s.SignatureIndex()
    index.rebuild([signature([lit(f"marker-{n}")], ident=f"SIG-{n}") for n in range(1, 50)])
    errors = []

    def reader():
        for _ in range(200):
            found = [m.id for m in index.match("marker-7 and marker-8").matches]
            if not {"SIG-7", "SIG-8"} <= set(found):
                errors.append(found)

    def writer():
        for n in range(50, 120):
            index.update(signature([lit(f"marker-{n}")], ident=f"SIG-{n}"))

    threads = [threading.Thread(target=reader) for _ in range(4)] + [threading.Thread(target=writer)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert errors == [] and len(index) == 119


def test_paste_decoding_never_fails():
    assert s.Paste(b"\xff\xfe\x00 bad \xc3\x28 bytes\r\nline two\rthree\n").lines == [
        "\ufffd\ufffd\x00 bad \ufffd( bytes", "line two", "three"]
    assert s.Paste("lone \ud800 surrogate").lines == ["lone ? surrogate"]
    assert s.Paste("\ufeffBOM first").lines == ["BOM first"]


# --------------------------------------------------------------------------------------------
# Hostile input


REDOS = [r"(x+x+)+y", r"(a|aa)+$", r"(a*)*b", r"^(([a-z])+.)+[A-Z]([a-z])+$", r"(.*a){12}",
         r"(\w+\s?)+$", r"(x+)+y"]


def test_catastrophic_regexes_are_harmless_against_100_kb():
    index = s.SignatureIndex()
    index.rebuild([signature([rx(r)], ident=f"SIG-{n}") for n, r in enumerate(REDOS, 1)])
    one_line = "x" * 100_000
    many_lines = "\n".join(["a" * 99] * 1000)
    mixed = ("aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa!\n"
             * 1200)[:100_000]
    for text in (one_line, many_lines, mixed):
        result = run_with_timeout(lambda text=text: index.match(text))
        assert result.lines >= 1
    # …and the normaliser, parsers and token extraction on the same input
    for text in (one_line, many_lines, "a@" * 50_000, "/a" * 50_000, "0x" + "f" * 100_000,
                 "\x1b]" * 50_000, "\"" + "\\\"" * 50_000, "at " + "a." * 50_000 + "b("):
        run_with_timeout(lambda text=text: (s.normalise_line(text), s.parse_stack_traces(text),
                                            s.error_tokens(text), s.template_from_lines([text])))


def test_naughty_strings_as_pastes(naughty_strings):
    index = s.SignatureIndex()
    index.rebuild([signature([lit("undefined")], ident="SIG-1"),
                   signature([tpl("\\<script> <*>")], ident="SIG-2"),
                   signature([{"kind": "exception", "type": "Error"}], ident="SIG-3")])
    for text in naughty_strings:
        run_with_timeout(lambda text=text: (index.match(text), s.normalise_line(text),
                                            s.error_tokens(text)), 30)
    run_with_timeout(lambda: index.match("\n".join(naughty_strings)))


def test_naughty_strings_as_patterns(naughty_strings):
    """Every naughty string as each kind of pattern: compiles, or says why not; never crashes."""
    compiled = []
    for text in naughty_strings:
        for pattern in (lit(text), rx(text), tpl(text), {"kind": "exception", "type": text,
                                                         "message": text},
                        {"kind": "frames", "value": [text]}):
            try:
                compiled.append(signature([s.compile_pattern(pattern) and pattern],
                                          ident=f"SIG-{len(compiled) + 1}"))
            except s.PatternError as exc:
                assert str(exc), pattern
    index = s.SignatureIndex()
    run_with_timeout(lambda: index.rebuild(compiled))
    run_with_timeout(lambda: index.match("\n".join(naughty_strings)))
    assert len(index) > len(naughty_strings)


# --------------------------------------------------------------------------------------------
# Examples are tests; the too-broad guard


def test_check_examples_reports_each_failing_example():
    fm = signature([lit("disk full"), tpl("volume <path> is read-only")], nots=[lit("selftest")],
                   examples=["disk full\nvolume /data is read-only", "disk full only",
                             "disk full\nvolume /x is read-only selftest"],
                   not_examples=["volume /data is read-only", "disk full\nvolume /y is read-only"])
    assert s.check_examples(fm) == [
        "example 2 does not match: template: volume <path> is read-only matched no line",
        "example 3 is ruled out by a `not` pattern: literal: selftest",
        "not_example 2 matches, but must not (line 1 by literal: disk full; "
        "line 2 by template: volume <path> is read-only)",
    ]


def test_check_examples_reports_broken_patterns():
    assert s.check_examples(signature([rx("(?=x)")])) == [
        "patterns: pattern 1 (regex) is not a regular expression RE2 can run: invalid perl "
        "operator: (?= — lookahead and lookbehind are not supported (RE2 matches in linear time)"]
    assert s.check_examples(signature([])) == []
    assert s.check_examples(signature([], examples=["x"])) == [
        "patterns: none yet, so the examples cannot match"]


@pytest.mark.parametrize("path", DEMO_SIGNATURES, ids=lambda p: p.name.split("-", 2)[1])
def test_every_demo_signature_passes_its_examples(path):
    doc = d.parse(path.read_bytes(), path=f"signatures/{path.name}")
    assert doc.get("examples"), "a demo signature should show what it matches"
    assert s.check_examples(doc) == []
    assert s.breadth_warnings(doc) == []


def test_breadth_warnings():
    background = ["GET /healthz 200", "GET /api/v1/orders 200", "POST /login 302"] + \
        [f"worker {n} idle" for n in range(97)]
    broad = signature([lit("GET /")], mode="any")
    assert s.breadth_warnings(broad, background) == [
        "pattern 1 (literal: GET /) matches 2 of 100 ordinary log lines (2.0%), "
        "e.g. 'GET /healthz 200'"]
    short = signature([rx(r"E[0-9]+"), lit("boom")], mode="any")
    assert s.breadth_warnings(short, background) == [
        "pattern 1 (regex: E[0-9]+) has no literal text of at least 4 characters; with match: "
        "any it alone confirms the signature"]
    assert s.breadth_warnings(signature([rx(r"E[0-9]+"), lit("boom")]), background) == []
    assert s.breadth_warnings(signature([rx("ab+c"), lit("xyz")]), background) == [
        "no pattern has literal text of at least 4 characters to anchor the signature"]
    elsewhere = signature([lit("disk full")], incidents=["PM-1"])
    texts = {"PM-1": "disk full", "PM-2": "we saw disk full", "PM-3": "fine", "SIG-1": "disk full"}
    assert s.breadth_warnings(elsewhere, background, texts) == [
        "also matches 1 document(s) of the wiki it is not linked to: PM-2"]


def test_breadth_guard_uses_the_shipped_background_by_default():
    warnings = s.breadth_warnings(signature([tpl("level=info service=<*> msg=")]))
    assert len(warnings) == 1 and "ordinary log lines" in warnings[0]


# --------------------------------------------------------------------------------------------
# The documentation's examples hold


def test_the_documented_signature_example_passes_its_examples():
    text = (ROOT / "docs" / "content-format.md").read_text("utf-8")
    section = text.split("## Signatures (`content/signatures/`)")[1]
    yaml_block = section.split("```yaml\n", 1)[1].split("```", 1)[0]
    doc = d.parse(yaml_block, path="signatures/SIG-1-example.md")
    assert s.check_examples(doc) == []


def test_the_documented_normalisation_example():
    text = (ROOT / "docs" / "content-format.md").read_text("utf-8")
    line, template = re.search(r"For example\n`([^`]+)`\nbecomes `([^`]+)`", text).groups()
    assert s.normalise_line(line) == template


# --------------------------------------------------------------------------------------------
# Several processes: a signature saved by one is matched by the others


def test_signatures_saved_by_another_process_are_matched(tmp_path):
    from wiki.core import Wiki

    content = tmp_path / "content"
    (content / "signatures").mkdir(parents=True)
    (content / "postmortems").mkdir()
    config = {"CONTENT_DIR": content, "DATA_DIR": tmp_path / "data",
              "DATABASE_URL": f"sqlite:///{tmp_path / 'wiki.db'}"}
    here, there = Wiki(config), Wiki(config)  # two workers: own engines, same files and database
    here.sync()
    index = s.SignatureIndex(recheck_seconds=0).attach(here)
    paste = "worker 7 gave up: quota-ledger drift 0x1f beyond tolerance"
    assert matched_ids(index, paste) == []

    made = there.create("signature", {"title": "Quota ledger drift", "patterns": [
        {"kind": "template", "value": "quota-ledger drift <hex> beyond tolerance"}]})
    assert matched_ids(index, paste) == [(made.id, "confirmed")]

    changed = there.update(made.id, {**made.front_matter, "patterns": [
        {"kind": "literal", "value": "quota-ledger overflow"}]}, made.body, made.revision)
    assert matched_ids(index, paste) == []
    assert matched_ids(index, "quota-ledger overflow in worker 3") == [(made.id, "confirmed")]

    there.delete(made.id, changed.revision)
    assert matched_ids(index, "quota-ledger overflow in worker 3") == []


def test_a_signature_saved_here_is_not_compiled_twice(tmp_path):
    from wiki.core import Wiki

    content = tmp_path / "content"
    (content / "signatures").mkdir(parents=True)
    (content / "postmortems").mkdir()
    wiki = Wiki({"CONTENT_DIR": content, "DATA_DIR": tmp_path / "data",
                 "DATABASE_URL": f"sqlite:///{tmp_path / 'wiki.db'}"})
    wiki.sync()
    index = s.SignatureIndex(recheck_seconds=0).attach(wiki)
    index.match("warm up")
    wiki.create("signature", {"title": "Pool drained", "patterns": [
        {"kind": "literal", "value": "pool drained"}]})
    assert index.refresh() == 0  # the save reached it as a listener, with the same revision
