"""wiki.similar: the features a big sync computes are kept for the next process, and document
frequencies are looked up once per word while the index does not change."""

from __future__ import annotations

import sys
from pathlib import Path

from tests.conftest import make_app

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "bench"))
from corpus import generate  # noqa: E402


def test_a_big_sync_leaves_its_features_for_the_next_process(tmp_path, monkeypatch):
    content, data = tmp_path / "content", tmp_path / "data"
    generate(content, 80, seed=3)
    first = make_app(content, data)  # the first start: syncs 80 documents
    cache = data / "similar" / "features.json"
    assert cache.exists()  # written by the sync, before any page asked for similar incidents
    assert len(first.extensions["similar"]) == 80

    second = make_app(content, data)  # a restart: nothing changed on disk
    index = second.extensions["similar"]
    monkeypatch.setattr(index, "add", lambda doc: (_ for _ in ()).throw(
        AssertionError(f"{doc.id} computed again")))
    assert index.reconcile() == (0, 0)  # everything came from the cache
    assert len(index) == 80


def test_document_frequencies_are_read_once_per_word(tmp_path, monkeypatch):
    content, data = tmp_path / "content", tmp_path / "data"
    generate(content, 30, seed=4)
    app = make_app(content, data)
    index = app.extensions["similar"]
    searcher = index._searcher()
    reader = searcher.reader()
    calls = []
    real = type(reader).doc_frequency

    def counting(self, fieldname, text):
        calls.append((fieldname, text))
        return real(self, fieldname, text)

    monkeypatch.setattr(type(reader), "doc_frequency", counting)
    text = "replication lag on the primary database delayed the replication of orders " * 5
    first = index.lexical_features(text, "Replication lag")
    looked_up = len(calls)
    assert looked_up > 0
    assert index.lexical_features(text, "Replication lag") == first  # same answer…
    assert len(calls) == looked_up  # …without asking the index again
