"""wiki.importer: a folder of Markdown files in another tool's schema, imported (twice)."""

from __future__ import annotations

import hashlib
import shutil
from datetime import UTC, date, datetime
from pathlib import Path

import pytest

from wiki import config
from wiki import documents as d
from wiki.core import Wiki
from wiki.importer import ImporterError, import_folder

FOREIGN = Path(__file__).parent / "fixtures" / "import_foreign"
GOOD = {
    "morgue_naive_times.md",
    "morgue_summary_and_sections.md",
    "morgue_epoch_times_url_only.md",
    "notes/static_site_no_title.md",
}
BAD = {
    "invalid_yaml.md": "line 3: invalid YAML",
    "no_front_matter.md": "line 1: no front matter",
    "not_utf8.md": "line 2: not UTF-8: byte 0xe9",
    "title_is_a_list.md": "title: expected text, got a list",
}


@pytest.fixture
def wiki(content_dir: Path, tmp_path: Path) -> Wiki:
    wiki = Wiki(config.load({"CONTENT_DIR": content_dir, "DATA_DIR": tmp_path / "data"}))
    wiki.sync()
    return wiki


@pytest.fixture
def source(tmp_path: Path) -> Path:
    """A copy of the foreign folder, plus a Latin-1 file that is not UTF-8."""
    folder = tmp_path / "foreign"
    shutil.copytree(FOREIGN, folder)
    (folder / "not_utf8.md").write_bytes(
        "---\ntitle: Caf\u00e9 menu outage\n---\nThe caf\u00e9 was closed.\n".encode("latin-1"))
    return folder


def snapshot(folder: Path) -> dict[str, tuple[str, int]]:
    return {p.relative_to(folder).as_posix(): (hashlib.sha256(p.read_bytes()).hexdigest(),
                                                p.stat().st_mtime_ns)
            for p in sorted(folder.rglob("*")) if p.is_file()}


def imported(wiki: Wiki, report, source: str) -> d.Document:
    item = next(i for i in report.items if i.source == source)
    assert item.id, item
    return wiki.get(item.id)


def test_import_twice_imports_once_and_explains_every_skip(wiki, source):
    before = snapshot(source)
    files_before = len(wiki.store.files())

    first = import_folder(wiki, source)
    assert {i.source for i in first.imported} == GOOD
    assert {i.source: i.reason for i in first.skipped}.keys() == BAD.keys()
    for item in first.skipped:
        assert BAD[item.source] in item.reason, item
    ids = {i.source: i.id for i in first.imported}
    assert len(set(ids.values())) == 4 and all(i.startswith("PM-") for i in ids.values())
    assert len(wiki.store.files()) == files_before + 4

    second = import_folder(wiki, source)
    assert second.imported == [] and second.updated == []
    assert {i.source: i.id for i in second.unchanged} == ids
    assert {i.source for i in second.skipped} == BAD.keys()
    assert len(wiki.store.files()) == files_before + 4  # no duplicates
    assert "0 imported, 0 updated, 4 unchanged, 4 skipped" in second.summary()

    assert snapshot(source) == before  # the source folder is only read
    assert not any(p.name.startswith(".") for p in source.rglob("*"))


def test_tags_dates_services_and_summary_are_mapped(wiki, source):
    report = import_folder(wiki, source)
    doc = imported(wiki, report, "morgue_naive_times.md")
    assert doc.title == "API errors during a database failover"
    assert doc.tags == ["databases", "failover", "mysql", "connection-pool"]
    assert doc.services == ["api"]
    assert doc.get("authors") == ["Dana Reyes"]
    assert doc.get("severity") == "SEV1"
    assert doc.status == "published"
    assert doc.get("date") == date(2016, 5, 31)
    assert doc.get("started_at") == datetime(2016, 5, 31, 14, 2, tzinfo=UTC)
    assert doc.get("resolved_at") == datetime(2016, 5, 31, 15, 30, tzinfo=UTC)
    assert doc.section("Summary").startswith("The primary database failed over")
    assert "connection pool still pointed at the old primary" in doc.body  # body kept
    assert "summary" not in doc.front_matter
    item = next(i for i in report.items if i.source == "morgue_naive_times.md")
    assert "times without a zone read as UTC: start_time, end_time" in item.notes


def test_a_body_with_its_own_summary_keeps_the_summary_field(wiki, source):
    report = import_folder(wiki, source)
    doc = imported(wiki, report, "morgue_summary_and_sections.md")
    assert doc.section("Summary").startswith("The certificate for static.example.com expired")
    assert doc.get("summary") == "Browsers refused images and scripts for 2 h 45 min."
    assert doc.tags == ["tls", "cdn", "certificates"]
    assert doc.services == ["static-assets", "cdn"]
    assert doc.get("resolved_at").utcoffset().total_seconds() == 3600  # zone kept
    assert doc.durations()["time_to_resolve"].total_seconds() == 2 * 3600 + 45 * 60


def test_epoch_times_and_yaml_coercion_traps(wiki, source):
    report = import_folder(wiki, source)
    doc = imported(wiki, report, "morgue_epoch_times_url_only.md")
    assert doc.get("started_at") == datetime(2021, 2, 3, 9, 47, 58, tzinfo=UTC)
    assert doc.tags == ["search", "index-corruption", "on"]  # not the boolean True
    assert doc.get("severity") is None
    assert doc.get("source_severity") == "critical"  # unmappable, set aside, not lost
    assert doc.get("imported_from")["source"] == (
        "url:https://postmortems.example.com/2021/02/03/search-index-corruption")


def test_unknown_fields_are_preserved_in_the_written_file(wiki, source):
    report = import_folder(wiki, source)
    cdn = imported(wiki, report, "morgue_summary_and_sections.md")
    text = wiki.store.absolute(cdn.path).read_text("utf-8")
    assert "company: Example Corp" in text and "jira: OPS-1182" in text
    assert cdn.get("imported_from")["uuid"] == "8a71e3d2-0c4f-4b8e-a6a1-2b9f5c3d7e02"

    notes = imported(wiki, report, "notes/static_site_no_title.md")
    assert notes.title == "Payment retries doubled checkout load"  # from the first heading
    assert notes.get("layout") == "postmortem"
    assert notes.get("metrics") == {"p99_ms": 2300, "version": "1.10"}  # not the float 1.1
    assert notes.status == "published" and notes.get("source_status") == "resolved"
    assert notes.get("imported_from")["source"] == "file:notes/static_site_no_title.md"


def test_a_changed_source_file_updates_its_document(wiki, source):
    first = import_folder(wiki, source)
    ident = next(i.id for i in first.items if i.source == "morgue_naive_times.md")
    path = source / "morgue_naive_times.md"
    path.write_text(path.read_text("utf-8").replace("severity: 1", "severity: 2"), "utf-8")

    second = import_folder(wiki, source)
    assert [(i.source, i.id) for i in second.updated] == [("morgue_naive_times.md", ident)]
    assert len(second.unchanged) == 3
    assert wiki.get(ident).get("severity") == "SEV2"
    assert import_folder(wiki, source).updated == []


def test_a_document_edited_in_the_wiki_is_never_overwritten(wiki, source):
    first = import_folder(wiki, source)
    ident = next(i.id for i in first.items if i.source == "morgue_naive_times.md")
    doc = wiki.get(ident)
    wiki.update(ident, doc.front_matter, doc.body + "\nAdded in the wiki.\n", doc.revision)
    path = source / "morgue_naive_times.md"
    path.write_text(path.read_text("utf-8").replace("severity: 1", "severity: 2"), "utf-8")

    second = import_folder(wiki, source)
    item = next(i for i in second.items if i.source == "morgue_naive_times.md")
    assert item.status == "skipped" and "edited in the wiki" in item.reason
    assert "Added in the wiki." in wiki.get(ident).body
    assert wiki.get(ident).get("severity") == "SEV1"


def test_dry_run_writes_nothing(wiki, source, content_dir):
    before = snapshot(content_dir)
    report = import_folder(wiki, source, dry_run=True)
    assert len(report.imported) == 4 and all(i.id is None for i in report.imported)
    assert "would import" in "\n".join(report.lines())
    assert snapshot(content_dir) == before


def test_the_same_uuid_twice_in_one_folder_is_imported_once(wiki, tmp_path):
    folder = tmp_path / "dupes"
    folder.mkdir()
    shutil.copy(FOREIGN / "morgue_naive_times.md", folder / "a.md")
    shutil.copy(FOREIGN / "morgue_naive_times.md", folder / "b.md")
    report = import_folder(wiki, folder)
    assert [i.source for i in report.imported] == ["a.md"]
    assert "same uuid as a.md" in report.skipped[0].reason


def test_import_as_signatures_maps_times_to_first_and_last_seen(wiki, tmp_path):
    folder = tmp_path / "sigs"
    folder.mkdir()
    shutil.copy(FOREIGN / "morgue_naive_times.md", folder / "failover.md")
    report = import_folder(wiki, folder, kind="signature")
    doc = imported(wiki, report, "failover.md")
    assert doc.kind is d.SIGNATURE and doc.id.startswith("SIG-")
    assert doc.status == "active"
    assert doc.get("first_seen") == date(2016, 5, 31) == doc.get("last_seen")
    assert doc.get("severity") == 1  # not a signature field: kept as it was


def test_refuses_a_folder_inside_the_content_folder_or_missing(wiki, content_dir, tmp_path):
    with pytest.raises(ImporterError, match="inside the content folder"):
        import_folder(wiki, content_dir / "postmortems")
    with pytest.raises(ImporterError, match="does not exist"):
        import_folder(wiki, tmp_path / "nowhere")
