"""wiki/similar.py: ranking on the demo corpus, reasons, filters, curating, the features cache."""

from __future__ import annotations

import shutil
from datetime import UTC, date, datetime
from pathlib import Path

import pytest
from conftest import SHARED, make_app

from wiki import documents as d
from wiki import similar as sim
from wiki.core import Wiki

RELAY_DRAFT = "retries from the notification service kept every worker busy waiting on storage"
HASH_LIST = "3fa9c02b17e4d8a6l9b0e51c4d7a2f836"
HASH_PASTE = (f"2024-02-03T11:20:41Z WARN sync-api upload rejected reason=malformed_hash_list "
              f"device=win-4411ab client=desktop/7.3.1 hash_list={HASH_LIST}\n")


def engine(app) -> sim.SimilarIndex:
    return app.extensions["similar"]


def ids(result: sim.SimilarResult) -> list[str]:
    return [s.id for s in result.suggestions]


# --------------------------------------------------------------------------------------------
# Ranking on the demo corpus


def test_a_draft_about_retries_finds_the_relay_outage_first(demo_app):
    result = engine(demo_app).similar(RELAY_DRAFT)
    first = result.suggestions[0]
    assert first.id == "PM-3"
    kinds = {r.kind for r in first.reasons}
    assert "terms" in kinds
    terms = next(r for r in first.reasons if r.kind == "terms").values
    assert {"worker", "storage"} <= set(terms)
    assert "services" in kinds  # "notification service" names notification-service


def test_the_relay_draft_as_a_postmortem_query(demo_app):
    result = engine(demo_app).similar(RELAY_DRAFT, kind="postmortem", limit=3)
    assert ids(result)[0] == "PM-3"
    assert all(i.startswith("PM-") for i in ids(result))


def test_a_hash_list_paste_finds_the_bitflip_signature_and_its_postmortem(demo_app):
    result = engine(demo_app).similar(HASH_PASTE, limit=5)
    top = ids(result)[:2]
    assert set(top) == {"SIG-1", "PM-1"}
    by_id = {s.id: s for s in result.suggestions}
    assert any(r.kind == "signatures" for r in by_id["SIG-1"].reasons)
    pm1 = next(r for r in by_id["PM-1"].reasons if r.kind == "signatures")
    assert pm1.values == ["SIG-1"] and "SIG-1" in pm1.text


def test_a_bare_hash_list_is_found_as_a_shared_error_string(demo_app):
    result = engine(demo_app).similar(f"client keeps sending {HASH_LIST}", limit=3)
    first = result.suggestions[0]
    assert first.id == "SIG-1"
    assert any(r.kind == "exact" and HASH_LIST in r.values for r in first.reasons)


def test_every_suggestion_has_reasons_and_a_score(demo_app):
    for text in (RELAY_DRAFT, HASH_PASTE, "Redis failover token refresh storm",
                 "psycopg_pool.PoolTimeout: couldn't get a connection after 30.00 sec"):
        result = engine(demo_app).similar(text, limit=10)
        assert result.suggestions, text
        scores = [s.score for s in result.suggestions]
        assert scores == sorted(scores, reverse=True)
        for s in result.suggestions:
            assert 0 < s.score <= 1
            assert s.reasons and all(r.text and r.kind in sim.SIGNALS for r in s.reasons)


def test_a_traceback_finds_the_pool_timeout_signature(demo_app):
    paste = ('Traceback (most recent call last):\n'
             '  File "/srv/app/db.py", line 41, in connection\n'
             '    with pool.connection(timeout=30) as conn:\n'
             'psycopg_pool.PoolTimeout: couldn\'t get a connection after 30.00 sec\n')
    result = engine(demo_app).similar(paste, limit=3)
    assert ids(result)[0] == "SIG-10"
    assert "PM-11" in ids(result)


# --------------------------------------------------------------------------------------------
# Filters


def test_exclude_kind_before_and_limit(demo_app):
    e = engine(demo_app)
    assert "PM-3" not in ids(e.similar(RELAY_DRAFT, exclude=["PM-3", "PM-999", "nonsense"]))
    assert all(i.startswith("SIG-") for i in ids(e.similar(RELAY_DRAFT, kind="signature")))
    assert len(e.similar(RELAY_DRAFT, limit=2).suggestions) == 2
    # PM-3 happened on 2023-06-14 (started 09:12 UTC)
    assert "PM-3" not in ids(e.similar(RELAY_DRAFT, before="2023-06-14"))
    assert "PM-3" not in ids(e.similar(RELAY_DRAFT, before="2023-06-14T09:12:00+00:00"))
    assert "PM-3" in ids(e.similar(RELAY_DRAFT, before="2023-06-14T09:13:00Z"))
    assert "PM-3" in ids(e.similar(RELAY_DRAFT, before=datetime(2024, 1, 1, tzinfo=UTC)))
    early = e.similar(RELAY_DRAFT, before="2000-01-01")
    assert early.suggestions == []


def test_bad_queries_are_refused_with_a_reason(demo_app):
    e = engine(demo_app)
    for text in ("", "   \n\t"):
        with pytest.raises(sim.BadQuery, match="empty"):
            e.similar(text)
    with pytest.raises(sim.BadQuery, match="before"):
        e.similar(RELAY_DRAFT, before="last tuesday")
    with pytest.raises(sim.BadQuery, match="kind"):
        e.similar(RELAY_DRAFT, kind="incident")


def test_a_huge_text_is_cut_and_still_answers(demo_app):
    text = (RELAY_DRAFT + "\n") * 70_000  # ≈ 5.7 MB
    result = engine(demo_app).similar(text, limit=3)
    assert result.suggestions[0].id == "PM-3"
    assert any("first" in m for m in result.messages)


def test_parse_before():
    assert sim.parse_before(None) is None and sim.parse_before("") is None
    assert sim.parse_before("2023-06-14") == datetime(2023, 6, 14, tzinfo=UTC).timestamp()
    assert sim.parse_before(date(2023, 6, 14)) == sim.parse_before("2023-06-14")
    assert sim.parse_before("2023-06-14T10:00:00+02:00") == \
        datetime(2023, 6, 14, 8, tzinfo=UTC).timestamp()
    assert sim.parse_before("2023-06-14T08:00:00") == sim.parse_before("2023-06-14T08:00:00Z")
    for bad in ("2023-13-01", "14/06/2023", "yesterday", "2023-06-14T25:00"):
        with pytest.raises(sim.BadQuery):
            sim.parse_before(bad)


# --------------------------------------------------------------------------------------------
# Documents


def test_a_document_is_not_similar_to_itself_nor_to_what_it_links(demo_app):
    wiki = demo_app.extensions["wiki"]
    result = engine(demo_app).similar_to(wiki.get("PM-3"), limit=20)
    found = ids(result)
    assert "PM-3" not in found
    for linked in ("PM-9", "SIG-3"):  # related: [PM-9], signatures: [SIG-3]
        assert linked not in found
    assert found  # but other documents are


def test_a_signature_page_finds_postmortems_like_it(demo_app):
    wiki = demo_app.extensions["wiki"]
    result = engine(demo_app).similar_to(wiki.get("SIG-10"), limit=5)
    assert "PM-11" not in ids(result)  # its own incident is linked already
    assert result.suggestions and all(s.reasons for s in result.suggestions)


def test_new_documents_are_candidates_at_once(demo_app):
    wiki = demo_app.extensions["wiki"]
    doc = wiki.create("postmortem", {"title": "Quasar flux capacitor overheated",
                                     "date": "2024-05-01"},
                      "## Summary\n\nThe quasar flux capacitor overheated twice.\n")
    result = engine(demo_app).similar("quasar flux capacitor", limit=3)
    assert ids(result)[0] == doc.id


def test_identifier_parts():
    assert sim.identifier_parts("DFSClient") == ["DFS", "Client"]
    assert sim.identifier_parts("getBlockLocations") == ["get", "Block", "Locations"]
    assert sim.identifier_parts("S3AFileSystem") == ["S3", "File", "System"]
    assert sim.identifier_parts("NullPointerException") == ["Null", "Pointer", "Exception"]
    for plain in ("timeout", "Timeout", "ABFS", "log4j", "HTTP2", "x86", ""):
        assert sim.identifier_parts(plain) == []


def _found_first_by_terms(demo_app, title: str, summary: str, query: str):
    """Create a postmortem, then ask for ``query``: it must come first; its "terms" reason."""
    doc = demo_app.extensions["wiki"].create(
        "postmortem", {"title": title, "date": "2024-05-01"}, f"## Summary\n\n{summary}\n")
    result = engine(demo_app).similar(query, limit=3)
    assert ids(result)[0] == doc.id
    return doc, next(r for r in result.suggestions[0].reasons if r.kind == "terms")


def test_a_text_saying_dfs_client_finds_the_incident_that_wrote_dfsclient(demo_app):
    doc, terms = _found_first_by_terms(
        demo_app, "Uploads stalled for an hour",
        "Every DFSClient of the ingest tier waited on a lease that never came back.",
        "the DFS client kept waiting on a lease")
    assert "dfs" in terms.values and "DFSClient" in terms.text
    # without the parts, "DFS client" and "DFSClient" have no word in common
    whole = sim.DEFAULT_WEIGHTS.replace(identifier_parts=False)
    alone = engine(demo_app).similar("DFS client", limit=20, weights=whole)
    assert doc.id not in ids(alone)
    assert ids(engine(demo_app).similar("DFS client", limit=3))[0] == doc.id


def test_an_identifier_in_the_text_finds_the_incident_that_wrote_its_words(demo_app):
    _, terms = _found_first_by_terms(
        demo_app, "Ingest tier hung",
        "The quorum journal writer stopped answering, so the ingest tier hung.",
        "QuorumJournalWriter.flush() timed out")
    assert {"quorum", "journal"} <= set(terms.values) and "QuorumJournalWriter" in terms.text


def test_a_past_incident_whose_title_the_text_covers_comes_first(demo_app):
    wiki = demo_app.extensions["wiki"]
    doc = wiki.create("postmortem", {"title": "Quokka cache evictions stalled checkout",
                                     "date": "2024-05-03"},
                      "## Summary\n\nA deploy halved the memory of a cache tier.\n")
    text = ("Checkout stalled again this morning. The quokka cache kept dropping entries "
            "(evictions went up tenfold) after the memory limit changed.")
    result = engine(demo_app).similar(text, limit=3)
    assert ids(result)[0] == doc.id
    title = next(r for r in result.suggestions[0].reasons if r.kind == "title")
    assert {"quokka", "evictions", "checkout"} <= set(title.values)
    assert title.text.startswith("Its title's words are in the text")
    assert result.suggestions[0].signals["title"] > 0.5


def test_document_text_counts_the_first_paragraph_once():
    doc = d.new_document("postmortem", {"id": "PM-1", "title": "Queue backed up",
                                        "status": "draft"},
                         "## Summary\n\nThe queue backed up\nfor an hour.\n\nMore.\n")
    assert sim.document_text(doc).count("for an hour") == 1
    assert "Queue backed up" not in sim.document_text(doc, title=False)
    with_summary = d.new_document("postmortem", {"id": "PM-2", "title": "T", "status": "draft",
                                                 "summary": "Workers starved."}, "Body.\n")
    assert "Workers starved." in sim.document_text(with_summary)


def test_it_works_without_a_search_index(demo_app):
    wiki = demo_app.extensions["wiki"]
    bare = sim.SimilarIndex(search=None, signatures=demo_app.extensions["signatures"])
    bare.attach(wiki)
    result = bare.similar(HASH_PASTE, limit=3)
    assert {"SIG-1", "PM-1"} <= set(ids(result))


# --------------------------------------------------------------------------------------------
# Curating


def _front_matter(content: Path, ident: str) -> dict:
    path = next(content.glob(f"*/{ident}-*.md"))
    return d.parse(path.read_bytes(), path=str(path.relative_to(content))).front_matter


def test_link_writes_related_into_both_files(demo_app):
    wiki = demo_app.extensions["wiki"]
    content = Path(demo_app.config["CONTENT_DIR"])
    before = wiki.get("PM-4").revision
    sim.link(wiki, "PM-3", "PM-4", author="Ana")
    assert _front_matter(content, "PM-3")["related"] == ["PM-9", "PM-4"]
    assert _front_matter(content, "PM-4")["related"] == ["PM-6", "PM-8", "PM-3"]
    assert wiki.get("PM-4").revision != before
    # linking again changes nothing
    revision = wiki.get("PM-3").revision
    sim.link(wiki, "PM-3", "PM-4")
    assert wiki.get("PM-3").revision == revision
    assert "PM-4" not in ids(engine(demo_app).similar_to(wiki.get("PM-3"), limit=20))


def test_link_refuses_a_stale_base_revision_and_bad_ids(demo_app):
    from wiki.store import NotFound, StaleRevision

    wiki = demo_app.extensions["wiki"]
    with pytest.raises(StaleRevision):
        sim.link(wiki, "PM-3", "PM-4", base_revision="0" * 20)
    with pytest.raises(sim.CurateError):
        sim.link(wiki, "PM-3", "PM-3")
    with pytest.raises(NotFound):
        sim.link(wiki, "PM-3", "PM-404")


def test_a_dismissal_is_remembered_in_the_files_and_survives_a_restart(demo_app, tmp_path):
    wiki = demo_app.extensions["wiki"]
    content = Path(demo_app.config["CONTENT_DIR"])
    suggested = ids(engine(demo_app).similar_to(wiki.get("PM-3"), limit=20))
    target = suggested[0]
    sim.dismiss(wiki, "PM-3", target)
    assert _front_matter(content, "PM-3")[sim.NOT_RELATED] == [target]
    assert "PM-3" in _front_matter(content, target)[sim.NOT_RELATED]
    assert target not in ids(engine(demo_app).similar_to(wiki.get("PM-3"), limit=20))
    assert "PM-3" not in ids(engine(demo_app).similar_to(wiki.get(target), limit=20))
    # a new app on the same content, with or without its derived data
    for data in (Path(demo_app.config["DATA_DIR"]), tmp_path / "fresh-data"):
        again = make_app(content, data)
        found = ids(again.extensions["similar"].similar_to(
            again.extensions["wiki"].get("PM-3"), limit=20))
        assert target not in found and found


def test_one_sided_dismissal_is_enough(demo_app):
    wiki = demo_app.extensions["wiki"]
    target = ids(engine(demo_app).similar_to(wiki.get("PM-3"), limit=20))[0]
    sim._add_to(wiki, target, sim.NOT_RELATED, "PM-3", None, None, "test")
    assert target not in ids(engine(demo_app).similar_to(wiki.get("PM-3"), limit=20))


# --------------------------------------------------------------------------------------------
# Keeping current, the cache


def test_the_features_cache_spares_a_restart_from_reading_files(demo_app):
    content = Path(demo_app.config["CONTENT_DIR"])
    data = Path(demo_app.config["DATA_DIR"])
    engine(demo_app).similar(RELAY_DRAFT)  # first use writes the cache
    assert (data / "similar" / "features.json").exists()
    again = make_app(content, data)
    assert again.extensions["similar"].reconcile() == (0, 0)
    assert len(again.extensions["similar"]) == len(engine(demo_app))


def test_a_broken_cache_is_rebuilt(demo_app):
    content = Path(demo_app.config["CONTENT_DIR"])
    data = Path(demo_app.config["DATA_DIR"])
    engine(demo_app).similar(RELAY_DRAFT)
    (data / "similar" / "features.json").write_text("{not json", "utf-8")
    again = make_app(content, data)
    assert ids(again.extensions["similar"].similar(RELAY_DRAFT))[0] == "PM-3"


def test_deleted_and_edited_documents_follow(demo_app):
    wiki = demo_app.extensions["wiki"]
    e = engine(demo_app)
    assert ids(e.similar(RELAY_DRAFT))[0] == "PM-3"
    doc = wiki.get("PM-3")
    wiki.delete("PM-3", doc.revision)
    assert "PM-3" not in ids(e.similar(RELAY_DRAFT, limit=20))
    pm9 = wiki.get("PM-9")
    fm = dict(pm9.front_matter, title="Zebra stripes in the quokka cache")
    wiki.update("PM-9", fm, pm9.body, pm9.revision)
    assert ids(e.similar("zebra stripes quokka"))[0] == "PM-9"


def test_a_wiki_without_flask(tmp_path, demo_copy):
    """The engine, the wiki and the search index, put together by hand (as a CLI would)."""
    from wiki import signatures as signatures_module
    from wiki.search import Search, WhooshIndex

    content = tmp_path / "content"
    shutil.copytree(demo_copy, content)
    wiki = Wiki({"CONTENT_DIR": content, "DATA_DIR": tmp_path / "data",
                 "DATABASE_URL": f"sqlite:///{tmp_path / 'wiki.db'}"})
    index = WhooshIndex(tmp_path / "index")
    wiki.listeners.append(Search(index, wiki))
    sigs = signatures_module.SignatureIndex().attach(wiki)
    engine_ = sim.SimilarIndex(index, sigs, tmp_path / "features.json").attach(wiki)
    wiki.sync()
    assert ids(engine_.similar(RELAY_DRAFT))[0] == "PM-3"


def test_lexical_features_take_the_fast_words_for_the_index_analyzer(demo_app, monkeypatch):
    """The index's own prose analyzer (unpickled with the index) is recognised, so a sync
    reads words by wiki.search.prose_words; another analyzer is still run as it is."""
    from whoosh.analysis import StandardAnalyzer

    e = engine(demo_app)
    schema = e._searcher().schema
    assert sim._is_prose(schema["title"].analyzer)
    assert not sim._is_prose(StandardAnalyzer())
    text = "Retries retrying the getBlockLocations call timed out"
    expected = e.lexical_features(text, "Retry storm")
    calls = []
    monkeypatch.setattr(sim.wsearch, "prose_words",
                        lambda t: calls.append(t) or [w.text for w in schema["title"].analyzer(
                            t, mode="query")])
    assert e.lexical_features(text, "Retry storm") == expected and calls


# --------------------------------------------------------------------------------------------
# Evidence of a text


def test_line_templates_ignore_prose_fragments_and_normalise_values():
    a = sim.line_templates("2023-06-14T09:27:32Z ERROR read of receipts/en.html from 10.0.0.7 "
                           "timed out after 30000 ms\n## Summary\n|---|---|\n")
    b = sim.line_templates("2024-01-01T00:00:00Z ERROR read of receipts/fr.html from 10.0.0.9 "
                           "timed out after 12 ms")
    assert set(a) == set(b) and len(a) == 1


def test_error_keys_keep_exception_names_and_their_short_form():
    keys = sim.error_keys("java.net.SocketTimeoutException: Read timed out\nECONNRESET")
    assert "java.net.sockettimeoutexception" in keys and "sockettimeoutexception" in keys
    assert "econnreset" in keys


# --------------------------------------------------------------------------------------------
# The evaluation harness (needs ../shared)

EVAL = SHARED / "eval" / "gitbugs-hadoop"


def _bench():
    import importlib.util

    spec = importlib.util.spec_from_file_location(
        "similar_eval", Path(__file__).resolve().parent.parent / "bench" / "similar_eval.py")
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    return bench


def test_cross_validation_ranks_each_query_with_a_setting_fitted_without_it():
    bench = _bench()
    seen_by_fit = []

    def fit(train):
        seen_by_fit.append(set(train))
        return frozenset(train)

    def ranks_for(setting):  # rank 1 where the query was trained on, 99 where it was not
        return [1 if q in setting else 99 for q in range(12)]

    ranks, chosen = bench.cross_validated(12, seed=7, folds=4, fit=fit, ranks_for=ranks_for)
    assert ranks == [99] * 12  # every query is ranked by a fit that never saw it
    assert len(chosen) == 4 and all(len(train) == 9 for train in seen_by_fit)
    assert set.union(*seen_by_fit) == set(range(12))


def test_the_softmax_fit_weighs_the_signal_that_finds_the_answers():
    bench = _bench()
    # "title" puts the answer first every time; "terms" prefers a wrong candidate
    lists = [{"terms": {"right": 0.5, "wrong": 1.0}, "title": {"right": 0.9, "wrong": 0.1}}
             for _ in range(10)]
    weights = bench.fit_softmax(lists, ["right"] * 10, range(10), steps=200)
    assert weights["title"] > weights["terms"] and weights["title"] > weights["cosine"]
    assert all(v >= 0 for v in weights.values())
    # with both pointing the right way, both count, "terms" is the unit
    for item in lists:
        item["terms"] = {"right": 1.0, "wrong": 0.5}
    weights = bench.fit_softmax(lists, ["right"] * 10, range(10), steps=200)
    assert weights["terms"] == 1.0 and weights["title"] > 0


@pytest.mark.skipif(not (EVAL / "hadoop_bugs.csv").exists(),
                    reason="../shared/eval/gitbugs-hadoop is not available")
def test_the_evaluation_harness_imports_reports_as_documents(tmp_path):
    bench = _bench()
    reports, pairs = bench.load(EVAL)
    assert len(reports) == 2503 and len(pairs) == 66  # a cell listing two ids gives two pairs
    some = dict(list(reports.items())[:40])
    mapping = bench.import_reports(some, tmp_path / "content")
    for source_id, ident in mapping.items():
        path = tmp_path / "content" / "postmortems" / f"{ident}.md"
        doc = d.parse(path.read_bytes(), path=f"postmortems/{ident}.md")
        assert doc.get("source_id") == source_id
        assert doc.front_matter["started_at"] == some[source_id]["created"]
    assert bench.figures([1, 3, None, 12]) == {"R@1": 0.25, "R@5": 0.5, "R@10": 0.5,
                                                "MRR": (1 + 1 / 3 + 1 / 12) / 4}
