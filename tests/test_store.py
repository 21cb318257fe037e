"""wiki.store: atomic writes, id allocation, conflict detection, scanning broken content."""

from __future__ import annotations

import os
import threading

import pytest

from tests.conftest import MINIMAL_PM, write_doc
from wiki import documents as d
from wiki.store import StaleRevision, Store, atomic_write


@pytest.fixture
def store(content_dir, tmp_path):
    return Store(content_dir, tmp_path / "data")


def test_atomic_write_crash_leaves_the_old_file(tmp_path, monkeypatch):
    target = tmp_path / "doc.md"
    target.write_bytes(b"old content")

    def crash(src, dst):
        raise OSError("disk unplugged")

    monkeypatch.setattr(os, "replace", crash)
    with pytest.raises(OSError):
        atomic_write(target, b"new content that never lands")
    assert target.read_bytes() == b"old content"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["doc.md"]  # no temp file left


def test_atomic_write_crash_while_writing_leaves_the_old_file(tmp_path, monkeypatch):
    target = tmp_path / "doc.md"
    target.write_bytes(b"old content")
    real_fsync = os.fsync

    def failing_fsync(fd):
        raise OSError("I/O error")

    monkeypatch.setattr(os, "fsync", failing_fsync)
    with pytest.raises(OSError):
        atomic_write(target, b"new")
    monkeypatch.setattr(os, "fsync", real_fsync)
    assert target.read_bytes() == b"old content"
    assert len(list(tmp_path.iterdir())) == 1


def test_atomic_write_replaces_and_keeps_mode(tmp_path):
    target = tmp_path / "doc.md"
    target.write_bytes(b"old")
    os.chmod(target, 0o640)
    atomic_write(target, b"new")
    assert target.read_bytes() == b"new"
    assert target.stat().st_mode & 0o777 == 0o640


def test_ids_are_never_reused(store):
    first = store.allocate_id(d.POSTMORTEM)
    assert first == "PM-2"  # PM-1 exists on disk
    doc = d.new_document("postmortem", {"id": first, "title": "Second"})
    store.write(doc)
    store.delete(doc)
    assert store.allocate_id(d.POSTMORTEM) == "PM-3"
    assert store.allocate_id(d.SIGNATURE) == "SIG-2"
    assert "PM: 4" in (store.root / ".wiki-ids.yml").read_text()


def test_ids_unique_under_concurrent_allocation(store):
    got: list[str] = []
    lock = threading.Lock()

    def grab():
        ident = store.allocate_id(d.SIGNATURE)
        with lock:
            got.append(ident)

    threads = [threading.Thread(target=grab) for _ in range(20)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(set(got)) == 20


def test_ids_file_lost_still_allocates_above_existing(store):
    store.allocate_id(d.POSTMORTEM)
    (store.root / ".wiki-ids.yml").unlink()
    assert store.allocate_id(d.POSTMORTEM) == "PM-2"  # PM-1 is the only file on disk


def test_stale_revision_is_refused_and_nothing_written(store):
    doc = store.read("postmortems/PM-1-checkout-latency.md")
    old_revision = doc.revision
    doc.body += "\nFirst edit."
    store.write(doc, expected_revision=old_revision)
    on_disk = store.absolute(doc.path).read_bytes()
    doc.body += "\nSecond edit based on the old revision."
    with pytest.raises(StaleRevision) as info:
        store.write(doc, expected_revision=old_revision)
    assert info.value.current == d.content_hash(on_disk)
    assert store.absolute(doc.path).read_bytes() == on_disk


def test_scan_reports_broken_files_and_duplicates(store):
    write_doc(store.root, "postmortems/broken.md", "---\nid: PM-5\ntitle: [x\n---\n")
    write_doc(store.root, "postmortems/zz-copy.md", MINIMAL_PM)
    write_doc(store.root, "postmortems/.hidden/ignored.md", "not even front matter")
    docs, problems = store.scan()
    assert set(docs) == {"PM-1", "SIG-1"}
    by_path = {p.path: p for p in problems}
    assert by_path["postmortems/broken.md"].line == 3
    assert "duplicate id PM-1" in by_path["postmortems/zz-copy.md"].message
    assert len(problems) == 2


def test_new_files_are_named_by_id_and_slug_and_keep_their_path(store):
    doc = d.new_document("postmortem", {"id": "PM-9", "title": "Disk full on build hosts"})
    store.write(doc)
    assert doc.path == "postmortems/PM-9-disk-full-on-build-hosts.md"
    doc.front_matter["title"] = "Renamed"
    store.write(doc)
    assert doc.path == "postmortems/PM-9-disk-full-on-build-hosts.md"
    assert store.read(doc.path).title == "Renamed"


def test_deleting_without_a_counter_file_still_never_reuses_the_id(store):
    assert not (store.root / ".wiki-ids.yml").exists()
    doc = store.read("postmortems/PM-1-checkout-latency.md")
    store.delete(doc)
    assert store.allocate_id(d.POSTMORTEM) == "PM-2"
