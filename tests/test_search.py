"""wiki.search: query parsing, the Whoosh index, keeping it in sync with the wiki, recovery."""

from __future__ import annotations

import gc
import multiprocessing
import shutil
import sys
import threading
import time
from pathlib import Path

import pytest
from conftest import DEMO_CONTENT, make_app, write_doc

from wiki import documents as d
from wiki import search as s
from wiki.search import Search, WhooshIndex, parse_query

# --------------------------------------------------------------------------------------------
# Documents for the index tests


def pm(n: int, title: str, body: str = "", **fm) -> d.Document:
    front = {"id": f"PM-{n}", "title": title, "status": "published", "severity": "SEV3",
             "date": "2022-03-04", **fm}
    doc = d.new_document("postmortem", front, body)
    doc.revision = f"rev-{n}-{hash(body) & 0xffff}"
    return doc


def sig(n: int, title: str, body: str = "", **fm) -> d.Document:
    doc = d.new_document("signature", {"id": f"SIG-{n}", "title": title, **fm}, body)
    doc.revision = f"rev-sig-{n}"
    return doc


CORPUS = [
    pm(1, "Relay outage after health check change",
       "## Summary\nThe email relay stopped accepting connections when the health check "
       "timed out.\n\n## Root cause and contributing factors\nRetries piled up: every client "
       "retried at once and the connection pool was exhausted. We saw `ECONNRESET` and "
       "`upstream connect error` in sns-inbound.\n\n## Timeline\n- 10:07 handshake timeout "
       "alerts fired\n",
       severity="SEV1", date="2021-06-01", services=["email-relay", "sns-inbound"],
       tags=["retries", "email"], root_cause_category="config-change"),
    pm(2, "Cron job nulled a foreign key",
       "## Summary\nA weekly cron job ran `del group.customers` and the ORM set the foreign key "
       "to NULL.\n\n## Root cause and contributing factors\nThe ORM collection `del` nulls the "
       "foreign key instead of deleting rows.\n",
       severity="SEV2", date="2022-09-15", services=["billing"], tags=["orm", "cron"],
       root_cause_category="deploy"),
    pm(3, "Pods OOMKilled during batch import",
       "## Summary\nImporter pods were OOMKilled; blk_-1608999687919862906 was lost and "
       "java.lang.NullPointerException appeared in the logs.\n\n## Impact\nThe byte 0x6C "
       "showed up where a comma should have been.\n",
       severity="SEV2", date="2023-01-20", services=["importer", "billing"],
       tags=["memory", "batch"], root_cause_category="capacity", status="draft"),
    pm(4, "Timestamp parsing broke in the timezone job",
       "## Summary\nA timeout in the timing service; timestamps were wrong.\n",
       severity="SEV4", date="2020-02-29", services=["scheduler"], tags=["time"],
       root_cause_category="time"),
    sig(1, "Bitflip: l instead of , in a 33-character hash list",
        "## How to recognise it\nA comma is replaced by the letter l on a line: one bit "
        "flipped in RAM.\n",
        services=["sync"], tags=["bitflip", "hardware"],
        patterns=[{"kind": "literal", "value": "0x6C"}],
        examples=["hash list 33 characters: a1l b2"]),
]


@pytest.fixture
def index(tmp_path: Path) -> WhooshIndex:
    ix = WhooshIndex(tmp_path / "index")
    ix.rebuild(CORPUS)
    return ix


def ids(result: s.SearchResult) -> list[str]:
    return [h.id for h in result.hits]


# --------------------------------------------------------------------------------------------
# Parsing


def test_parse_words_phrases_filters_and_exclusions():
    p = parse_query('health "handshake timeout" -staging service:Payments sev:SEV1 time* retires~')
    assert [(c.kind, c.text) for c in p.clauses] == [
        ("word", "health"), ("phrase", "handshake timeout"), ("prefix", "time"),
        ("fuzzy", "retires")]
    assert [c.text for c in p.excluded] == ["staging"]
    assert p.filters == {"service": ["Payments"], "severity": ["SEV1"]}
    assert p.messages == []


@pytest.mark.parametrize("alias, name", [
    ("service", "service"), ("services", "service"), ("severity", "severity"), ("sev", "severity"),
    ("status", "status"), ("kind", "kind"), ("type", "kind"), ("year", "year"), ("tag", "tag"),
    ("tags", "tag"), ("cause", "root_cause"), ("root_cause", "root_cause"), ("id", "id"),
    ("CAUSE", "root_cause"), ("Service", "service"),
])
def test_filter_aliases_are_case_insensitive(alias, name):
    assert parse_query(f"{alias}:x").filters == {name: ["x"]}


def test_negated_and_quoted_filters():
    p = parse_query('-service:search tag:"leap second" -"dry run"')
    assert p.excluded_filters == {"service": ["search"]}
    assert p.filters == {"tag": ["leap second"]}
    assert [(c.kind, c.text) for c in p.excluded] == [("phrase", "dry run")]


def test_or_groups_and_parentheses():
    p = parse_query("(dns OR tls) expired")
    group, word = p.clauses
    assert group.kind == "group" and group.any and [c.text for c in group.items] == ["dns", "tls"]
    assert word.text == "expired"
    assert str(p) == "(dns OR tls) expired"
    assert str(parse_query("a OR b OR c")) == "(a OR b OR c)"
    # A call in a stack trace keeps its parentheses as part of the word.
    assert [c.text for c in parse_query("Foo.bar(Foo.java:12)").clauses] == ["Foo.bar(Foo.java:12)"]


@pytest.mark.parametrize("text, message", [
    ('"unclosed phrase', "closing quote"),
    ("(unbalanced", "closing parenthesis"),
    ("unbalanced)", "unmatched"),
    ("-", "lone"),
    ("*", "lone"),
    ("service:", "needs a value"),
    ("severity:   ", "needs a value"),
    ("colour:blue", "no field"),
    ("a*", "too short"),
    ("x OR", "OR"),
    ("word " * 40, "first 32"),
    ("x" * 10_000, "first 1,000 characters"),
])
def test_bad_input_is_repaired_with_a_message(text, message):
    p = parse_query(text)
    assert any(message in m for m in p.messages), p.messages


def test_control_characters_and_invisible_characters_are_dropped():
    p = parse_query("time\x00out\x1b[31m \u200bretry\ufeff\ud800")
    assert [c.text for c in p.clauses] == ["time", "out", "[31m", "retry"]


def test_unknown_field_is_searched_as_text():
    p = parse_query("colour:blue")
    assert [c.text for c in p.clauses] == ["colour:blue"]


def test_naughty_strings_never_break_the_parser(naughty_strings):
    for text in naughty_strings:
        p = parse_query(text)
        assert isinstance(p.text, str) and len(p.text) <= s.MAX_QUERY_CHARS


# --------------------------------------------------------------------------------------------
# Analysis and fields


def test_error_tokens_are_kept_whole():
    text = ("ECONNRESET from sns-inbound at 0x6C: blk_-1608999687919862906 "
            "java.lang.NullPointerException, l instead of , OOMKilled Foo.java:12)")
    assert s.tokens(s.EXACT_ANALYZER, text) == [
        "sns-inbound", "0x6c", "blk_-1608999687919862906", "java.lang.nullpointerexception",
        "l", "foo.java:12"]
    prose = s.tokens(s.PROSE_ANALYZER, "retries retrying ECONNRESET OOMKilled")
    assert prose == ["retri", "retri", "econnreset", "oomkil"]


def test_prose_words_are_the_prose_analyzers_words():
    """The fast path gives exactly the analyzer's words: demo content, odd Unicode, long words,
    stop words, identifiers (the naughty strings have their own test below)."""
    import random

    from conftest import DEMO_CONTENT

    texts = [path.read_text("utf-8") for path in sorted(DEMO_CONTENT.rglob("*.md"))]
    texts += ["İstanbul ǅemal ßtraße ﬁle ＦＵＬＬ x² ½ ٣٤ 𝔘𝔫𝔦 e\u0301 ñ", "a " * 5 + "I am it",
              "x" * (s.MAX_TOKEN_CHARS + 1) + " " + "y" * s.MAX_TOKEN_CHARS,
              "getHTTPResponse_code snake_case kebab-case dotted.name 3xx v1.2.3"]
    rng = random.Random(4)
    alphabet = "abcdeiost _-.:'’İıßǅ\u0301½٣𝔘\n"
    texts += ["".join(rng.choice(alphabet) for _ in range(200)) for _ in range(200)]
    assert len(texts) > 220
    for text in texts:
        assert s.prose_words(text) == s.tokens(s.PROSE_ANALYZER, text), text[:80]


def test_prose_words_match_on_naughty_strings(naughty_strings):
    for text in naughty_strings:
        assert s.prose_words(text) == s.tokens(s.PROSE_ANALYZER, text), text
        assert _analysed(s.PROSE_ANALYZER, text) == _analysed(s.PROSE_CHAIN, text)


def _analysed(analyzer, text: str, **kwargs) -> list[tuple]:
    return [(t.text, t.pos, t.startchar, t.endchar, t.stopped, t.boost,
             getattr(t, "original", None))
            for t in analyzer(text, positions=True, chars=True, **kwargs)]


def test_the_one_loop_prose_analyzer_gives_the_chains_tokens():
    """Every token attribute Whoosh reads, with each of its arguments, as the filter chain."""
    from conftest import DEMO_CONTENT

    texts = [path.read_text("utf-8") for path in sorted(DEMO_CONTENT.rglob("*.md"))[:8]]
    texts += ["İstanbul ǅemal ßtraße, the API and a connection ½ e\u0301 " + "x" * 300, ""]
    options = [{}, {"removestops": False}, {"keeporiginal": True},
               {"start_pos": 7, "start_char": 3}, {"mode": "query"}, {"tokenize": False},
               {"removestops": False, "keeporiginal": True, "start_pos": 2}]
    for text in texts:
        for kwargs in options:
            assert _analysed(s.PROSE_ANALYZER, text, **kwargs) == \
                _analysed(s.PROSE_CHAIN, text, **kwargs), (text[:40], kwargs)
    schema = s.make_schema()
    assert schema["body"].analyzer == s.ProseAnalyzer()  # (how an index's schema compares)
    fmt = schema["body"].format
    assert list(fmt.word_values(texts[0], s.PROSE_ANALYZER)) == \
        list(fmt.word_values(texts[0], s.PROSE_CHAIN))


def test_document_fields_store_sections_for_snippets():
    fields = s.document_fields(CORPUS[0])
    assert fields["id"] == "PM-1" and fields["kind"] == "postmortem"
    assert fields["severity"] == "sev1" and fields["year"] == "2021" and fields["day"] == 20210601
    assert fields["services"] == "email-relay,sns-inbound"
    assert fields["root_cause"] == "config-change"
    import json
    import zlib

    headings = [h for h, _ in json.loads(zlib.decompress(fields["text"]))]
    assert headings == ["Summary", "Root cause and contributing factors", "Timeline"]


def test_signature_patterns_and_examples_are_searchable(index):
    assert ids(index.query("pattern:0x6C")) == ["SIG-1"]
    hit = index.query("a1l").hits[0]
    assert hit.id == "SIG-1" and hit.section == "Examples"


# --------------------------------------------------------------------------------------------
# Queries


@pytest.mark.parametrize("query, expected", [
    ("ECONNRESET", "PM-1"),
    ("econnreset", "PM-1"),
    ("OOMKilled", "PM-3"),
    ("blk_-1608999687919862906", "PM-3"),
    ("0x6C", "SIG-1"),
    ("NullPointerException", "PM-3"),
    ("java.lang.NullPointerException", "PM-3"),
    ("sns-inbound", "PM-1"),
    ('"handshake timeout"', "PM-1"),
    ('"upstream connect error"', "PM-1"),
])
def test_error_strings_are_found_as_typed(index, query, expected):
    result = index.query(query)
    assert ids(result)[0] == expected, (query, ids(result))


def test_words_are_stemmed(index):
    assert ids(index.query("retry"))[0] == "PM-1"  # the document says "retries", "retried"
    assert ids(index.query("exhausting")) == ["PM-1"]


def test_all_words_first_then_any(index):
    result = index.query("relay connections")
    assert result.mode == "all" and ids(result) == ["PM-1"]
    result = index.query("relay cron")
    assert result.mode == "any" and set(ids(result)) == {"PM-1", "PM-2"}
    assert any("some of them" in m for m in result.messages)


def test_phrase_needs_the_order(index):
    assert ids(index.query('"handshake timeout"')) == ["PM-1"]
    assert index.query('"timeout handshake"').total == 0


def test_exclusion(index):
    assert set(ids(index.query("summary"))) >= {"PM-1", "PM-2"}
    assert "PM-2" not in ids(index.query("foreign -cron"))
    assert ids(index.query("key -orm")) == []
    assert set(ids(index.query("-cron"))) == {"PM-1", "PM-3", "PM-4", "SIG-1"}


def test_prefix(index):
    result = index.query("time*")
    assert {"PM-1", "PM-4"} <= set(ids(result))
    assert "<mark>timestamps</mark>" in " ".join(h.snippet for h in result.hits)
    assert ids(index.query("blk_*")) == ["PM-3"]


def test_typos_fuzzy_and_did_you_mean(index):
    result = index.query("conection")
    assert result.suggestion == "connection" and result.corrected
    assert ids(result) == ["PM-1"]
    assert index.suggest("relay conection") == "relay connection"
    assert ids(index.query("exhaused~")) == ["PM-1"]
    # A known word gets no suggestion.
    assert index.query("relay").suggestion is None


def test_document_id_comes_first(index):
    assert ids(index.query("PM-2"))[:1] == ["PM-2"]
    assert ids(index.query("sig-1")) == ["SIG-1"]


def test_or_group(index):
    assert set(ids(index.query("(cron OR bitflip) key"))) == {"PM-2"}
    assert set(ids(index.query("cron OR bitflip"))) == {"PM-2", "SIG-1"}


def test_field_search(index):
    assert ids(index.query("title:timezone")) == ["PM-4"]
    assert index.query("title:health").total == 1
    assert index.query("title:ECONNRESET").total == 0


@pytest.mark.parametrize("query, expected", [
    ("service:billing", {"PM-2", "PM-3"}),
    ("service:BILLING", {"PM-2", "PM-3"}),
    ("severity:SEV2", {"PM-2", "PM-3"}),
    ("severity:sev1 severity:sev4", {"PM-1", "PM-4"}),
    ("status:draft", {"PM-3"}),
    ("kind:signature", {"SIG-1"}),
    ("kind:pm", {"PM-1", "PM-2", "PM-3", "PM-4"}),
    ("year:2022", {"PM-2"}),
    ("tag:cron", {"PM-2"}),
    ("tag:orm tag:cron", {"PM-2"}),
    ("tag:orm tag:memory", set()),
    ("cause:capacity", {"PM-3"}),
    ("root_cause:time", {"PM-4"}),
    ("id:pm-3", {"PM-3"}),
    ("-service:billing kind:postmortem", {"PM-1", "PM-4"}),
    ("summary service:billing", {"PM-2", "PM-3"}),
    ("summary service:billing severity:sev2 year:2023", {"PM-3"}),
])
def test_every_filter(index, query, expected):
    result = index.query(query)
    assert set(ids(result)) == expected
    assert result.total == len(expected)


def test_filters_given_apart_from_the_text(index):
    result = index.query("summary", filters={"service": ["billing"], "severity": ["SEV2"]})
    assert set(ids(result)) == {"PM-2", "PM-3"}
    assert result.filters == {"service": ["billing"], "severity": ["sev2"]}
    assert set(ids(index.query("", kind="signature"))) == {"SIG-1"}
    bad = index.query("summary", filters={"year": ["twenty"], "colour": ["red"]})
    assert bad.total >= 2 and len(bad.messages) == 2


def test_facets_count_every_field(index):
    result = index.query("summary OR bitflip")
    f = result.facets
    assert dict(f["kind"]) == {"postmortem": 4, "signature": 1}
    assert dict(f["severity"]) == {"SEV1": 1, "SEV2": 2, "SEV4": 1}
    assert dict(f["status"]) == {"published": 3, "draft": 1, "active": 1}
    assert dict(f["service"])["billing"] == 2
    assert dict(f["tag"])["cron"] == 1
    assert [y for y, _ in f["year"]] == ["2023", "2022", "2021", "2020"]
    assert dict(f["root_cause"]) == {"capacity": 1, "config-change": 1, "deploy": 1, "time": 1}


def test_facets_of_a_filtered_field_keep_their_other_values(index):
    """Severity values combine with OR, so the other severities keep their counts."""
    result = index.query("summary", filters={"severity": ["sev2"]})
    assert result.total == 2
    assert dict(result.facets["severity"]) == {"SEV1": 1, "SEV2": 2, "SEV4": 1}
    assert dict(result.facets["service"]) == {"billing": 2, "importer": 1}  # within the results


def test_sort_by_date_and_pages(index):
    result = index.query("kind:postmortem", sort="date")
    assert ids(result) == ["PM-3", "PM-2", "PM-1", "PM-4"]
    assert all(h.score is None for h in result.hits)
    page = index.query("kind:postmortem", sort="date", limit=2, offset=2)
    assert ids(page) == ["PM-1", "PM-4"] and page.total == 4
    assert index.query("summary", limit=10_000, offset=-5).limit == s.MAX_LIMIT


def test_hits_name_the_section_and_highlight(index):
    hit = index.query("pool exhausted").hits[0]
    assert hit.id == "PM-1" and hit.section == "Root cause and contributing factors"
    assert "<mark>pool</mark>" in hit.snippet and "<mark>exhausted</mark>" in hit.snippet
    assert index.query("bitflip").hits[0].title_html.startswith("<mark>Bitflip</mark>")


def test_stop_words_are_not_highlighted(index):
    # "one" stems to "on", a stop word that is not indexed and must not be marked either
    hit = index.query("bit one").hits[0]
    assert "<mark>one</mark>" in hit.snippet and " on a line" in hit.snippet


def test_highlighting_escapes_document_text(tmp_path):
    ix = WhooshIndex(tmp_path / "index")
    evil = pm(9, '<img src=x onerror=alert(1)> "quoted" & <b>bold</b>',
              "## Summary\n<script>alert('xss')</script> exploit &amp; <mark>fake</mark> "
              "exploit\n")
    ix.index_document(evil)
    hit = ix.query("exploit").hits[0]
    assert "<script>" not in hit.snippet and "&lt;script&gt;" in hit.snippet
    assert "<mark>fake</mark>" not in hit.snippet and "&lt;mark&gt;" in hit.snippet
    assert hit.snippet.count("<mark>") == hit.snippet.count("</mark>") == 2
    hit = ix.query("onerror").hits[0]
    assert "<img" not in hit.title_html and "&lt;img" in hit.title_html
    assert "&#34;quoted&#34; &amp; &lt;b&gt;bold&lt;/b&gt;" in hit.title_html


def test_empty_queries(index):
    assert index.query("").mode == "empty" and index.query("").total == 0
    assert index.query("the").total == 0
    assert any("too common" in m for m in index.query("the of").messages)


def test_every_bad_input_answers(index, naughty_strings):
    inputs = ['"', '"""', "(", ")", "((a", "a))", "-", "--", "*", "**", "~", "service:",
              ":", "::", "a:b:c", "colour:red", "x" * 10_000, "\x00\x01\x02", "OR", "AND NOT",
              "-(a b)", "(-a)", '-"', "title:", "id:nope", "year:20x2", "kind:nonsense"]
    for text in inputs + naughty_strings:
        result = index.query(text)
        assert result.total >= len(result.hits) and result.mode != "unavailable"


# --------------------------------------------------------------------------------------------
# Writing, concurrency, recovery


def test_update_replaces_and_remove_deletes(index):
    changed = pm(2, "Cron job nulled a foreign key", "## Summary\nNow about zeppelins.\n")
    index.index_document(changed)
    assert ids(index.query("zeppelins")) == ["PM-2"]
    assert index.query("orm").total == 0  # PM-2 no longer says it
    assert index.revisions()["PM-2"] == changed.revision
    index.remove("PM-2")
    assert index.query("zeppelins").total == 0 and "PM-2" not in index.revisions()
    assert index.doc_count() == len(CORPUS) - 1


def test_many_commits_never_duplicate_hits(tmp_path):
    """Segments pile up (commits don't merge) and are merged later; hits stay unique."""
    ix = WhooshIndex(tmp_path / "index")
    for n in range(1, s.MAX_SEGMENTS + 6):
        ix.index_document(pm(n, f"Outage number {n}", "## Summary\ncommon words here\n"))
        ix.index_document(pm(1, "Outage number 1", f"## Summary\ncommon words, edit {n}\n"))
        result = ix.query("common", limit=100)
        assert len(ids(result)) == len(set(ids(result))) == n
    assert ix.segment_count() <= s.MAX_SEGMENTS + 1


def test_searchers_see_other_threads_writes(index):
    seen = []

    def search_in_thread():
        index.query("zeppelin")  # this thread's searcher
        index.index_document(pm(8, "Zeppelin incident", "## Summary\nzeppelin\n"))
        seen.append(ids(index.query("zeppelin")))

    index.query("zeppelin")  # this thread's searcher, opened before the write
    t = threading.Thread(target=search_in_thread)
    t.start()
    t.join()
    assert seen == [["PM-8"]]
    assert ids(index.query("zeppelin")) == ["PM-8"]  # the old searcher was replaced


def test_a_failed_write_releases_the_lock(index):
    class Boom(Exception):
        pass

    def fail(writer):
        writer.add_document(**s.document_fields(pm(7, "Half written", "")))
        raise Boom

    with pytest.raises(Boom):
        index._write(fail)
    index.lock_timeout = 1
    index.index_document(pm(7, "Written after all", "## Summary\nafterwards\n"))
    assert ids(index.query("afterwards")) == ["PM-7"]


def test_a_held_lock_times_out_with_index_busy(index):
    index.lock_timeout = 0.3
    lock = index._storage().lock(f"{s.INDEX_NAME}_WRITELOCK")
    assert lock.acquire()
    try:
        started = time.monotonic()
        with pytest.raises(s.IndexBusy):
            index.index_document(pm(7, "Blocked", ""))
        assert time.monotonic() - started < 3
    finally:
        lock.release()
    index.index_document(pm(7, "Unblocked", "## Summary\nunblocked\n"))
    assert ids(index.query("unblocked")) == ["PM-7"]


def test_concurrent_writers_in_threads(tmp_path):
    ix = WhooshIndex(tmp_path / "index")
    errors = []

    def write(start):
        try:
            for n in range(start, start + 10):
                ix.index_document(pm(n, f"Doc {n}", "## Summary\nshared word\n"))
        except Exception as exc:  # pragma: no cover - the assertion below shows it
            errors.append(exc)

    threads = [threading.Thread(target=write, args=(k * 100 + 1,)) for k in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert ix.query("shared", limit=100).total == 30


def test_parallel_rebuild_keeps_every_document(tmp_path, monkeypatch):
    monkeypatch.setattr(s, "PARALLEL_MIN", 10)
    # Parallel builds only run when no other thread exists (forking with threads is unsafe);
    # earlier tests may leave idle threads (servers of browser tests) behind.
    monkeypatch.setattr(s.threading, "active_count", lambda: 1)
    ix = WhooshIndex(tmp_path / "index")
    calls = []
    original = ix._rebuild
    monkeypatch.setattr(ix, "_rebuild", lambda *a, **kw: calls.append(kw) or original(*a, **kw))
    docs = [pm(n, f"Parallel {n}", f"## Summary\nword{n} common\n") for n in range(1, 61)]
    assert ix.rebuild(iter(docs), total=len(docs)) == 60
    assert calls == [{"procs": 2, "multisegment": True, "batchsize": 50}]
    assert ix.doc_count() == 60 and ix.query("common", limit=100).total == 60
    assert ids(ix.query("word37")) == ["PM-37"]


def test_a_parallel_build_that_lost_documents_is_redone(tmp_path, monkeypatch, caplog):
    monkeypatch.setattr(s, "PARALLEL_MIN", 10)
    # Parallel builds only run when no other thread exists (forking with threads is unsafe);
    # earlier tests may leave idle threads (servers of browser tests) behind.
    monkeypatch.setattr(s.threading, "active_count", lambda: 1)
    ix = WhooshIndex(tmp_path / "index")
    counts = iter([59])  # the first count after the parallel build comes up short
    original = ix.doc_count
    monkeypatch.setattr(ix, "doc_count", lambda: next(counts, None) or original())
    docs = [pm(n, f"Parallel {n}", "## Summary\ncommon\n") for n in range(1, 61)]
    assert ix.rebuild(iter(docs), total=len(docs)) == 60
    assert ix.query("common", limit=100).total == 60
    assert "building it again" in caplog.text


@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")  # Whoosh leaks
def test_unreadable_index_raises_index_unavailable(index):
    for path in index.path.glob("MAIN_*"):  # every file of every segment
        path.write_bytes(path.read_bytes()[:100])
    index.close()
    with pytest.raises(s.IndexUnavailable):
        index.query("relay")
    gc.collect()  # here, where the warning about Whoosh's unclosed file is ignored


def test_old_schema_version_is_unavailable(index):
    (index.path / ".wiki-schema-version").write_text("0\n")
    index.close()
    with pytest.raises(s.IndexUnavailable):
        index.open()
    index.reset()
    assert index.doc_count() == 0


# --------------------------------------------------------------------------------------------
# In sync with the wiki (through the app)


def _search(app) -> Search:
    return app.extensions["search"]


def test_start_up_indexes_the_content(app):
    result = _search(app).query("stampede")
    assert ids(result) == ["SIG-1"]
    assert _search(app).index.revisions().keys() == {"PM-1", "SIG-1"}


def test_a_save_is_searchable_before_it_returns(app):
    wiki = app.extensions["wiki"]
    doc = wiki.create("postmortem", {"title": "Quasar outage", "severity": "SEV2"},
                      "## Summary\nThe quasar cluster melted.\n")
    assert ids(_search(app).query("quasar")) == [doc.id]
    wiki.update(doc.id, {**doc.front_matter, "title": "Pulsar outage"},
                "## Summary\nThe pulsar cluster melted.\n", doc.revision)
    assert _search(app).query("quasar").total == 0
    assert ids(_search(app).query("pulsar")) == [doc.id]
    wiki.delete(doc.id)
    assert _search(app).query("pulsar").total == 0


def test_a_file_edited_on_disk_is_found_after_a_restart(content_dir, tmp_path):
    make_app(content_dir, tmp_path / "data")
    path = content_dir / "postmortems/PM-1-checkout-latency.md"
    path.write_text(path.read_text("utf-8").replace("A cache flush", "A xylophone flush"),
                    "utf-8")
    write_doc(content_dir, "postmortems/PM-2-new.md", """\
        ---
        id: PM-2
        title: Written while the app was down
        ---
        ## Summary
        Marmalade everywhere.
        """)
    (content_dir / "signatures/SIG-1-cache-stampede.md").unlink()
    app = make_app(content_dir, tmp_path / "data")
    search = _search(app)
    assert ids(search.query("xylophone")) == ["PM-1"]
    assert ids(search.query("marmalade")) == ["PM-2"]
    assert search.query("stampede").total == 0


@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")  # Whoosh leaks
@pytest.mark.parametrize("damage", ["delete", "truncate", "garbage", "empty dir", "old version"])
def test_a_damaged_index_is_rebuilt_at_start_up(content_dir, tmp_path, damage, caplog):
    data = tmp_path / "data"
    make_app(content_dir, data)
    index_dir = data / "index"
    if damage == "delete":
        shutil.rmtree(index_dir)
    elif damage == "truncate":
        for path in index_dir.iterdir():
            if path.is_file() and path.name.startswith("_MAIN"):
                path.write_bytes(path.read_bytes()[: len(path.read_bytes()) // 3])
    elif damage == "garbage":
        for path in index_dir.glob("_MAIN_*.toc"):
            path.write_bytes(b"\x00garbage" * 10)
    elif damage == "empty dir":
        shutil.rmtree(index_dir)
        index_dir.mkdir()
    else:
        (index_dir / ".wiki-schema-version").write_text("0\n")
    with caplog.at_level("INFO", logger="wiki.search"):
        app = make_app(content_dir, data)
    assert ids(_search(app).query("stampede")) == ["SIG-1"]
    assert any("search index" in r.getMessage() for r in caplog.records)
    gc.collect()


@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")  # Whoosh leaks
@pytest.mark.parametrize("damage", ["delete", "truncate"])
def test_a_damaged_index_is_rebuilt_while_running(app, damage):
    search = _search(app)
    assert search.query("stampede").total == 1
    index_dir = search.index.path
    if damage == "delete":
        shutil.rmtree(index_dir)
    else:
        for path in index_dir.glob("MAIN_*"):
            path.write_bytes(path.read_bytes()[:64])
        search.index.close()
    result = search.query("stampede")
    assert ids(result) == ["SIG-1"]
    gc.collect()


def test_a_save_that_missed_the_index_is_caught_up(app, monkeypatch):
    search = _search(app)
    wiki = app.extensions["wiki"]

    def broken(doc):
        raise s.IndexBusy("locked")

    monkeypatch.setattr(search.index, "index_document", broken)
    doc = wiki.create("postmortem", {"title": "Missed by the index"}, "## Summary\nnebula\n")
    monkeypatch.undo()
    assert not search.reconciled
    assert ids(search.query("nebula")) == [doc.id]  # reconciled before the query


def test_start_up_survives_a_locked_index(content_dir, tmp_path, monkeypatch):
    """Another process holds the index lock for longer than a save waits: the app starts,
    and the index catches up on a later query."""
    monkeypatch.setattr(s, "WRITE_LOCK_TIMEOUT", 0.2)
    monkeypatch.setattr(s, "RECONCILE_RETRY", 0.0)
    data = tmp_path / "data"
    make_app(content_dir, data)
    path = content_dir / "postmortems/PM-1-checkout-latency.md"
    path.write_text(path.read_text("utf-8").replace("A cache flush", "A vortex flush"), "utf-8")
    lock = WhooshIndex(data / "index")._storage().lock(f"{s.INDEX_NAME}_WRITELOCK")
    assert lock.acquire()
    try:
        app = make_app(content_dir, data)
        assert not _search(app).reconciled
    finally:
        lock.release()
    assert ids(_search(app).query("vortex")) == ["PM-1"]


def test_reindex(app):
    search = _search(app)
    assert search.reindex() == (0, 0)
    assert search.reindex(full=True) == (2, 0)
    assert search.index.doc_count() == 2


def _save_in_another_process(content: str, data: str, word: str, count: int, queue) -> None:
    try:
        app = make_app(Path(content), Path(data))
        wiki = app.extensions["wiki"]
        made = [wiki.create("postmortem", {"title": f"{word} {n}"},
                            f"## Summary\n{word} happened.\n").id for n in range(count)]
        queue.put(("ok", made))
    except Exception as exc:  # pragma: no cover - reported to the parent
        queue.put(("error", repr(exc)))


def test_two_processes_saving_at_once_are_both_searchable(content_dir, tmp_path):
    data = tmp_path / "data"
    make_app(content_dir, data)
    ctx = multiprocessing.get_context("spawn")
    queue = ctx.Queue()
    procs = [ctx.Process(target=_save_in_another_process,
                         args=(str(content_dir), str(data), word, 4, queue))
             for word in ("walrus", "narwhal")]
    for p in procs:
        p.start()
    answers = [queue.get(timeout=120) for _ in procs]
    for p in procs:
        p.join(timeout=60)
    assert all(status == "ok" for status, _ in answers), answers
    made = {ident for _, idents in answers for ident in idents}
    assert len(made) == 8
    app = make_app(content_dir, data)
    search = _search(app)
    found = set(ids(search.query("walrus", limit=50))) | set(ids(search.query("narwhal", limit=50)))
    assert found == made
    assert search.index.revisions().keys() >= made


# --------------------------------------------------------------------------------------------
# Relevance on the demo content


needs_demo = pytest.mark.skipif(not (DEMO_CONTENT / "signatures").is_dir(),
                                reason="the demo content is not there")


def _first(app, query: str) -> tuple[str, str]:
    hit = _search(app).query(query).hits[0]
    return hit.id, hit.title


@needs_demo
@pytest.mark.parametrize("query", ["bitflip", "comma one bit", "33 characters"])
def test_demo_bitflip_signature_first(demo_app, query):
    ident, title = _first(demo_app, query)
    assert ident.startswith("SIG-") and "bitflip" in title.lower(), (query, ident, title)


@needs_demo
def test_demo_relay_outage(demo_app):
    ident, title = _first(demo_app, "health check connections retries")
    assert "relay" in title.lower(), (ident, title)


@needs_demo
def test_demo_orm_postmortem(demo_app):
    ident, title = _first(demo_app, "foreign key null cron")
    assert ident.startswith("PM-") and "foreign key" in title.lower(), (ident, title)


# --------------------------------------------------------------------------------------------
# The fast paths (matching without scoring, phrases checked once, top-N ranking) against what
# Whoosh alone gives, on a generated corpus of several segments with deleted documents


def _generated_docs(tmp_path: Path, n: int) -> list[d.Document]:
    import importlib.util

    from wiki.store import Store

    spec = importlib.util.spec_from_file_location(
        "bench_corpus", Path(__file__).resolve().parent.parent / "bench" / "corpus.py")
    corpus = importlib.util.module_from_spec(spec)
    sys.modules.setdefault(spec.name, corpus)  # its dataclasses look their module up
    spec.loader.exec_module(sys.modules[spec.name])
    corpus = sys.modules[spec.name]
    corpus.CorpusGenerator(7).write(tmp_path / "content", n)
    docs, problems = Store(tmp_path / "content", tmp_path / "data").scan()
    assert not problems
    return [docs[i] for i in sorted(docs)]


@pytest.fixture(scope="module")
def generated(tmp_path_factory) -> tuple[WhooshIndex, list[d.Document]]:
    tmp = tmp_path_factory.mktemp("generated")
    docs = _generated_docs(tmp, 360)
    ix = WhooshIndex(tmp / "index")
    ix.rebuild(docs[:240])
    for start in range(240, 360, 40):  # more segments, each commit without a merge
        ix.index_documents(docs[start:start + 40])
    ix.remove_many([docs[5].id, docs[250].id])  # deleted documents stay in their segments
    ix.index_document(docs[7])  # a replaced one too
    assert ix.segment_count() > 1
    return ix, docs


def _phrases(docs: list[d.Document], count: int) -> list[list[str]]:
    """Runs of 2–4 consecutive prose tokens of the documents' bodies, as the body has them."""
    import random

    rng = random.Random(3)
    out = []
    while len(out) < count:
        text = rng.choice(docs).body
        words, offsets = s.placed_tokens(s.PROSE_ANALYZER, text)
        if len(words) < 5:
            continue
        size = 2 + len(out) % 3
        k = rng.randrange(len(words) - size)
        if offsets[k + size - 1] - offsets[k] == size - 1:  # (no stop word between)
            out.append(words[k:k + size])
    return out


def test_phrases_with_gaps_match_the_documents_positions(generated):
    """A phrase typed with stop words in it matches where its words are as far apart as typed,
    checked against each document's analysed body."""
    import random

    ix, docs = generated
    searcher = ix.searcher()
    rng = random.Random(8)
    where = {}
    for n in range(searcher.doc_count_all()):
        if searcher.ixreader.is_deleted(n):
            continue
        doc = next(x for x in docs if x.id == searcher.stored_fields(n)["id"])
        words, offsets = s.placed_tokens(s.PROSE_ANALYZER, s.document_fields(doc)["body"])
        where[n] = {(w, p) for w, p in zip(words, offsets, strict=True)}
    gapped = 0
    for _ in range(40):
        text = rng.choice(docs).body
        words, offsets = s.placed_tokens(s.PROSE_ANALYZER, text)
        starts = [k for k in range(len(words) - 2) if offsets[k + 2] - offsets[k] > 2]
        if not starts:
            continue
        k = rng.choice(starts)
        phrase, gaps = words[k:k + 3], tuple(p - offsets[k] for p in offsets[k:k + 3])
        expected = {n for n, placed in where.items()
                    if any(all((w, p + g) in placed for w, g in zip(phrase, gaps, strict=True))
                           for w0, p in placed if w0 == phrase[0])}
        q = s._Phrase("body", phrase, offsets=gaps)
        assert s._docset(searcher, q) == expected, (phrase, gaps)
        assert expected
        gapped += 1
    assert gapped > 20


def test_packed_positions_round_trip_as_whooshs_format_does():
    from whoosh import formats

    fmt, theirs = s.PackedPositions(field_boost=2.0), formats.Positions(field_boost=2.0)
    for positions in ([0], [3, 4, 900], list(range(0, 70_000, 7)), [2**32 - 1]):
        value = fmt.encode(positions)
        assert fmt.decode_positions(value) == theirs.decode_positions(theirs.encode(positions))
        assert fmt.decode_frequency(value) == len(positions)
        assert fmt.decode_weight(value) == 2.0 * len(positions)
    assert fmt.decode_positions(fmt.combine([fmt.encode([5, 1]), fmt.encode([3])])) == [1, 3, 5]
    words = {w: (freq, value) for w, freq, _, value in
             fmt.word_values("retry the retries, then retry", s.PROSE_ANALYZER)}
    assert {w: fmt.decode_positions(v) for w, (_, v) in words.items()} == \
        {"retri": [0, 2, 4]}  # (stop words keep their place)


def test_body_phrases_match_whoosh_phrases(generated):
    from whoosh import query as wq

    ix, docs = generated
    searcher = ix.searcher()
    phrases = _phrases(docs, 60)
    phrases += [["health", "check"], ["connect", "pool"], ["retri", "retri"],
                ["zzzunknown", "check"], ["check", "health", "check"]]
    nonempty = 0
    for words in phrases:
        expected = set(wq.Phrase("body", words).docs(searcher))
        fast = s._Phrase("body", words)
        assert s._docset(searcher, fast) == expected, words
        assert set(fast.docs(searcher)) == expected, words
        # and the same scores as Whoosh's own phrase query
        slow = {n: score for score, n in
                searcher.search(wq.Phrase("body", words), limit=None).top_n}
        assert {n: score for score, n in searcher.search(fast, limit=None).top_n} == slow
        nonempty += bool(expected)
    assert nonempty > 30


def test_matching_reads_posting_lists_whole_and_counts_live_documents(generated):
    """Matching reads a word's posting list block by block (or only counts it): the same live
    documents as Whoosh's matcher, deleted ones left out."""
    import random

    from whoosh import query as wq

    ix, docs = generated
    searcher = ix.searcher()
    rng = random.Random(5)
    stems = sorted({w for doc in docs[:80] for w in s.tokens(s.PROSE_ANALYZER, doc.body)})
    for word in rng.sample(stems, 80) + ["zzznotthere"]:
        expected = set(wq.Term("body", word).docs(searcher))
        assert s._docset(searcher, wq.Term("body", word)) == expected, word
        assert s._count(searcher, wq.Term("body", word)) == len(expected), word
    for token in ("p99", "econnreset", "oomkilled"):
        expected = set(wq.Term("exact", token).docs(searcher))
        assert s._docset(searcher, wq.Term("exact", token)) == expected


def test_no_hits_when_the_filters_leave_nothing(index):
    """Nothing matches every word and, with the filter, nothing matches any: no hits shown."""
    result = index.query("relay zzyzx", filters={"severity": ["SEV4"]})
    assert result.total == 0 and result.hits == []
    assert index.query("relay zzyzx", filters={"severity": ["SEV4"]}, sort="date").hits == []


def test_a_quoted_phrase_needs_its_words_in_order_and_as_far_apart_as_typed(tmp_path):
    """Stop words are not indexed but keep their place: a phrase does not match across them
    in the text, and those typed in a phrase stand for any one word there."""
    ix = WhooshIndex(tmp_path / "index")
    ix.rebuild([pm(1, "One", "The health of the check was fine."),
                pm(2, "Two", "The check of the health was fine."),
                pm(3, "Three", "The health checks failed, then the API and connection pool."),
                pm(4, "Four", "Saw connection reset by peer on the api connection pool.")])
    assert ids(ix.query('"health check"')) == ["PM-3"]
    assert ids(ix.query('"check health"')) == []
    assert ids(ix.query('"health of the check"')) == ["PM-1"]
    assert ids(ix.query('"check of the health"')) == ["PM-2"]
    assert ids(ix.query('"the health of a check was fine"')) == ["PM-1"]
    assert ids(ix.query('"api connection pool"')) == ["PM-4"]
    assert ids(ix.query('"connection reset by peer"')) == ["PM-4"]
    assert ids(ix.query('"connection reset peer"')) == []
    assert ids(ix.query('"check health check"')) == []
    # the same in one field, and with the words also in the title
    assert ids(ix.query('body:"health of the check"')) == ["PM-1"]
    assert ids(ix.query('title:"one"')) == ["PM-1"]


def _slow(q):
    """``q`` with every body phrase as Whoosh's own :class:`~whoosh.query.Phrase`."""
    import copy

    from whoosh import query as wq

    if isinstance(q, s._Phrase):
        assert q.offsets == tuple(range(len(q.words)))  # (Whoosh's phrase: consecutive words)
        return wq.Phrase(q.fieldname, q.words, boost=q.boost)
    q = copy.copy(q)
    if hasattr(q, "subqueries"):
        q.subqueries = [_slow(sub) for sub in q.subqueries]
    if hasattr(q, "a"):
        q.a, q.b = _slow(q.a), _slow(q.b)
    if hasattr(q, "child"):
        q.child = _slow(q.child)
    return q


def _reference(ix: WhooshIndex, text: str, filters: dict, sort: str):
    """Every match scored by Whoosh (no block skipping), filtered and sorted in Python."""
    from whoosh import query as wq

    searcher = ix.searcher()
    parsed = parse_query(text)
    compiled = ix._compile(parsed, searcher)
    mask = set(_slow(compiled.excluded).docs(searcher)) if compiled.excluded else None
    for _, q in s._attempts(compiled.text):  # all the words; if none has them all, any
        items = list(searcher.search(_slow(q), limit=None, optimize=False, mask=mask).top_n)
        if items:
            break
    matched = [n for _, n in items]
    for name, values in filters.items():
        sets = [set(wq.Term(s.FILTERS[name], v.lower()).docs(searcher)) for v in values]
        allowed = set.intersection(*sets) if name in s.MULTI_VALUED else set.union(*sets)
        items = [item for item in items if item[1] in allowed]
    if sort == "date":
        days = searcher.reader().column_reader("day")
        items.sort(key=lambda item: (-days[item[1]], -item[0], item[1]))
    return items, matched


def _facet_reference(ix: WhooshIndex, matched: list[int]) -> dict[str, dict[str, int]]:
    searcher = ix.searcher()
    counts: dict[str, dict[str, int]] = {name: {} for name in s.FACETS}

    def add(name, value):
        if value:
            counts[name][value] = counts[name].get(value, 0) + 1

    for n in matched:
        meta = searcher.stored_fields(n)["meta"]
        add("kind", meta["kind"])
        add("severity", (meta.get("severity") or "").upper())
        add("status", meta["status"].lower())
        for service in meta.get("services") or []:
            add("service", service.lower())
        for tag in meta.get("tags") or []:
            add("tag", tag.lower())
        add("year", (meta.get("date") or "")[:4])
        add("root_cause", (meta.get("root_cause") or "").lower())
    return counts


@pytest.mark.parametrize("score_all, per_block", [(0, 128), (100_000, 128), (100_000, 1)])
def test_totals_facets_and_ranking_match_scoring_every_document(generated, monkeypatch,
                                                                score_all, per_block):
    """Matching without scoring, then scoring only the page (block-max top-N) or every match,
    gives what scoring every match with Whoosh gives: totals, facets, order, scores, pages.
    (``per_block`` 1 makes every *and* of a rare and a common word probe the common word's
    blocks for the rare word's documents instead of reading its posting list whole.)"""
    import random

    ix, docs = generated
    monkeypatch.setattr(s, "SCORE_ALL", score_all)
    monkeypatch.setattr(s, "POSTINGS_PER_BLOCK", per_block)
    probes = []
    probe = s.WhooshIndex._probe_postings
    monkeypatch.setattr(s.WhooshIndex, "_probe_postings",
                        lambda self, *args: probes.append(args[1:3]) or probe(self, *args))
    rng = random.Random(11)
    vocabulary = sorted({w for doc in docs[:60] for w in s._WORD_RE.findall(doc.title.lower())
                         if len(w) > 3 and w not in s.STOP})
    phrases = [" ".join(words) for words in _phrases(docs, 12)]
    queries = [("service", ""), ("request error", ""), ("ECONNRESET", ""),
               ("java.lang.NullPointerException", ""), ("timeout -retry", "")]
    queries += [(rng.choice(vocabulary), "") for _ in range(12)]
    queries += [(f"{rng.choice(vocabulary)} {rng.choice(vocabulary)}", "") for _ in range(6)]
    queries += [("service error request", ""), ("request error service", ""),
                (f'service "{phrases[0]}" error', "")]
    queries += [(f'"{p}"', "") for p in phrases]
    queries += [(rng.choice(vocabulary), name) for name in ("severity", "year", "service")]
    checked = 0
    for text, filter_name in queries:
        filters = {}
        if filter_name:
            meta = ix.searcher().stored_fields(rng.randrange(ix.doc_count()))["meta"]
            value = {"severity": meta.get("severity"), "year": (meta.get("date") or "")[:4],
                     "service": (meta.get("services") or [None])[0]}[filter_name]
            if not value:
                continue
            filters = {filter_name: [value]}
        for sort in ("relevance", "date"):
            expected, matched = _reference(ix, text, filters, sort)
            for offset, limit in ((0, 20), (20, 7), (len(expected) - 3 if expected else 0, 10)):
                ix.clear_cache()
                result = ix.query(text, filters=filters, sort=sort, offset=max(0, offset),
                                  limit=limit, facets=offset > 0)  # without: only counted
                assert result.mode in ("all", "any"), (text, result.mode)
                assert result.total == len(expected), (text, filters)
                page = expected[max(0, offset):max(0, offset) + limit]
                searcher = ix.searcher()
                assert ids(result) == [searcher.stored_fields(n)["id"] for _, n in page], \
                    (text, filters, sort, offset)
                if sort == "relevance":
                    assert [h.score for h in result.hits] == [round(x, 4) for x, _ in page]
                checked += 1
            if not filters and sort == "relevance":
                result = ix.query(text)
                reference = _facet_reference(ix, matched)
                for name in s.FACETS if result.mode == "all" else ():
                    got = dict(result.facets[name])
                    assert len(got) == min(len(reference[name]), s.FACET_VALUES), (text, name)
                    assert all(reference[name][value] == n for value, n in got.items()), \
                        (text, name)
    assert checked > 100
    if score_all and per_block == 1:
        assert len(probes) > 10


def test_paging_deep_after_the_first_page_extends_the_ranking(generated, monkeypatch):
    ix, _ = generated
    monkeypatch.setattr(s, "SCORE_ALL", 0)
    ix.clear_cache()
    first = ix.query("service error", limit=10)
    deep = ix.query("service error", offset=first.total - 5, limit=10)  # same cached matches
    ix.clear_cache()
    fresh = ix.query("service error", offset=first.total - 5, limit=10)
    assert first.total == deep.total == fresh.total > 60
    assert ids(deep) == ids(fresh) and len(ids(deep)) == 5
