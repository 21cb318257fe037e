"""wiki.db: incremental sync of the metadata database from content/ files, and its queries."""

from __future__ import annotations

import os

import pytest

from tests.conftest import MINIMAL_PM, write_doc
from wiki import config, db
from wiki.core import Wiki


@pytest.fixture
def wiki(content_dir, tmp_path):
    return Wiki(config.load({"CONTENT_DIR": content_dir, "DATA_DIR": tmp_path / "data"}))


def touch_later(path):
    st = path.stat()
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000_000))


def rows(wiki):
    with wiki.session() as s:
        return {r.id: r for r in s.exec(db.select(db.DocumentRow))}


def test_first_sync_loads_everything_then_skips_unchanged(wiki):
    report = wiki.sync()
    assert sorted(report.changed_ids) == ["PM-1", "SIG-1"]
    row = rows(wiki)["PM-1"]
    assert (row.severity, row.year, row.time_to_detect) == ("SEV2", 2023, 420)
    again = wiki.sync()
    assert again.changed == [] and again.removed == [] and again.skipped == 2


def test_sync_add_modify_delete_rename(wiki, content_dir):
    wiki.sync()
    # add
    write_doc(content_dir, "postmortems/PM-2-new.md",
              MINIMAL_PM.replace("PM-1", "PM-2").replace("Checkout latency", "Queue backlog"))
    assert wiki.sync().changed_ids == ["PM-2"]
    # modify
    path = content_dir / "postmortems/PM-2-new.md"
    path.write_text(path.read_text().replace("Queue backlog", "Queue backlog grew"))
    touch_later(path)
    assert wiki.sync().changed_ids == ["PM-2"]
    assert rows(wiki)["PM-2"].title.startswith("Queue backlog grew")
    # rename: same id, new path
    new_path = content_dir / "postmortems/renamed.md"
    path.rename(new_path)
    report = wiki.sync()
    assert report.changed_ids == ["PM-2"] and report.removed == []
    assert rows(wiki)["PM-2"].path == "postmortems/renamed.md"
    # delete
    new_path.unlink()
    report = wiki.sync()
    assert report.removed == ["PM-2"]
    assert "PM-2" not in rows(wiki)


def test_tags_services_action_items_and_links(wiki):
    wiki.sync()
    with wiki.session() as s:
        assert ("cache", 2) in db.named_values(s, db.TagRow)
        assert [r.id for r in db.documents_with(s, db.ServiceRow, "CHECKOUT")] == ["PM-1"]
        items, total = db.open_action_items(s)
        assert total == 1 and items[0][0].title == "Warm the cache before a flush"
        back = db.backlinks(s, "SIG-1")
        assert ([(row.id, fields) for row, fields in back]
                == [("PM-1", ["mentions", "signatures"])]
                or [(row.id, sorted(fields)) for row, fields in back]
                == [("PM-1", ["mentions", "signatures"])])


def test_broken_file_becomes_a_problem_and_recovers(wiki, content_dir):
    wiki.sync()
    path = content_dir / "postmortems/PM-1-checkout-latency.md"
    good = path.read_text()
    path.write_text(good.replace("severity: SEV2", "severity: SEV9"))
    touch_later(path)
    report = wiki.sync()
    assert report.removed == ["PM-1"]
    with wiki.session() as s:
        problems = db.problems(s)
    assert [(p.path, p.field, p.line) for p in problems] == [(
        "postmortems/PM-1-checkout-latency.md", "severity", 5)]
    path.write_text(good)
    touch_later(path)
    assert wiki.sync().changed_ids == ["PM-1"]
    with wiki.session() as s:
        assert db.problems(s) == []


def test_duplicate_id_loses_until_the_winner_goes(wiki, content_dir):
    wiki.sync()
    write_doc(content_dir, "postmortems/zz-copy.md", MINIMAL_PM.replace("Checkout", "Copy"))
    wiki.sync()
    with wiki.session() as s:
        assert "duplicate id PM-1" in db.problems(s)[0].message
    assert rows(wiki)["PM-1"].title.startswith("Checkout")
    (content_dir / "postmortems/PM-1-checkout-latency.md").unlink()
    wiki.sync()
    assert rows(wiki)["PM-1"].title.startswith("Copy")
    with wiki.session() as s:
        assert db.problems(s) == []


def test_full_sync_rebuilds_from_files(wiki, content_dir):
    wiki.sync()
    with wiki.session() as s:
        s.exec(db.delete(db.TagRow))
        s.commit()
    report = wiki.sync(full=True)
    assert sorted(report.changed_ids) == ["PM-1", "SIG-1"]
    with wiki.session() as s:
        assert db.named_values(s, db.TagRow)


def test_filters_and_facets(wiki, content_dir):
    for n, (sev, service, year) in enumerate(
            [("SEV1", "payments", 2021), ("SEV3", "search", 2022)], 2):
        write_doc(content_dir, f"postmortems/PM-{n}.md",
                  MINIMAL_PM.replace("PM-1", f"PM-{n}").replace("SEV2", sev)
                  .replace("[checkout, cache]", f"[{service}]")
                  .replace("2023-05-02", f"{year}-05-02"))
    wiki.sync()
    with wiki.session() as s:
        got, total = db.list_documents(s, db.Filters(kind="postmortem", severity=["SEV1", "SEV3"]))
        assert total == 2 and {r.id for r in got} == {"PM-2", "PM-3"}
        got, total = db.list_documents(
            s, db.Filters(kind="postmortem", service=["Payments"], year=[2021]))
        assert [r.id for r in got] == ["PM-2"]
        got, _ = db.list_documents(s, db.Filters(kind="postmortem"), sort="date")
        assert [r.id for r in got] == ["PM-1", "PM-3", "PM-2"]
        facets = db.facet_values(s, db.Filters(kind="postmortem"))
        assert dict(facets["severity"]) == {"SEV1": 1, "SEV2": 1, "SEV3": 1}
        assert dict(facets["service"])["cache"] == 1


def test_create_and_update_through_wiki(wiki):
    wiki.sync()
    doc = wiki.create("postmortem", {"title": "Fresh incident", "severity": "SEV4"},
                      "## Summary\nNew.")
    assert doc.id == "PM-2" and rows(wiki)["PM-2"].severity == "SEV4"
    updated = wiki.update(doc.id, {**doc.front_matter, "title": "Fresh incident, renamed"},
                          doc.body, base_revision=doc.revision)
    assert rows(wiki)["PM-2"].title == "Fresh incident, renamed"
    assert updated.revision != doc.revision
    assert wiki.sync().changed == []  # the app's own write needs no resync


def test_non_ascii_names_match_case_insensitively(wiki, content_dir):
    write_doc(content_dir, "postmortems/PM-2.md",
              MINIMAL_PM.replace("PM-1", "PM-2").replace("[latency, cache]", "[Ärger, ÇA-VA]"))
    wiki.sync()
    with wiki.session() as s:
        assert db.canonical_name(s, db.TagRow, "ärger") == "Ärger"
        assert [r.id for r in db.documents_with(s, db.TagRow, "ça-va")] == ["PM-2"]
        got, total = db.list_documents(s, db.Filters(kind="postmortem", tag=["ÄRGER"]))
        assert [r.id for r in got] == ["PM-2"]


def test_facets_count_within_the_other_active_filters(wiki, content_dir):
    write_doc(content_dir, "postmortems/PM-2.md",
              MINIMAL_PM.replace("PM-1", "PM-2").replace("SEV2", "SEV1")
              .replace("[checkout, cache]", "[payments]"))
    wiki.sync()
    with wiki.session() as s:
        facets = db.facet_values(s, db.Filters(kind="postmortem", service=["payments"]))
        # Severity counts shrink to the payments postmortem; the service facet itself does not,
        # so the other services stay visible as alternatives.
        assert dict(facets["severity"]) == {"SEV1": 1}
        assert dict(facets["service"]) == {"payments": 1, "checkout": 1, "cache": 1}
        assert db.counts(s) == {"postmortem": 2, "signature": 1}


def test_schema_change_rebuilds_the_database(wiki, content_dir, tmp_path):
    wiki.sync()
    with wiki.session() as s:
        s.merge(db.Meta(key="schema_version", value="0"))
        s.commit()
    again = Wiki(config.load({"CONTENT_DIR": content_dir, "DATA_DIR": tmp_path / "data"}))
    assert sorted(again.sync().changed_ids) == ["PM-1", "SIG-1"]


# --------------------------------------------------------------------------------------------
# Bulk sync: one transaction, a few statements, the same decisions as file by file


def count_statements(engine):
    """``(statements, commits)`` counters fed by engine events (a list so callers see updates)."""
    from sqlalchemy import event

    seen = {"statements": 0, "commits": 0}

    @event.listens_for(engine, "before_cursor_execute")
    def _statement(*_args, **_kwargs):
        seen["statements"] += 1

    @event.listens_for(engine, "commit")
    def _commit(*_args, **_kwargs):
        seen["commits"] += 1

    return seen


def many_docs(content_dir, n):
    for i in range(2, n + 2):
        write_doc(content_dir, f"postmortems/PM-{i}.md",
                  MINIMAL_PM.replace("PM-1", f"PM-{i}").replace("Checkout", f"Checkout {i}"))


@pytest.mark.parametrize("full", [False, True])
def test_sync_of_many_files_commits_once_with_few_statements(wiki, content_dir, full):
    many_docs(content_dir, 60)
    if full:
        wiki.sync()
    seen = count_statements(wiki.engine)
    report = wiki.sync(full=full)
    assert len(report.changed) == 62
    assert seen["commits"] == 1
    # Bulk inserts: the number of statements does not grow with the number of files.
    assert seen["statements"] < 30, seen
    with wiki.session() as s:
        assert len(db.all_ids(s)) == 62
        tags = list(s.exec(db.select(db.TagRow)))
        assert len([t for t in tags if t.doc_id.startswith("PM-")]) == 61 * 2
        assert len(list(s.exec(db.select(db.FileState)))) == 62


def test_incremental_sync_after_bulk_keeps_state(wiki, content_dir):
    many_docs(content_dir, 10)
    wiki.sync()
    path = content_dir / "postmortems/PM-5.md"
    path.write_text(path.read_text().replace("Checkout 5", "Checkout five"))
    touch_later(path)
    (content_dir / "postmortems/PM-6.md").unlink()
    seen = count_statements(wiki.engine)
    report = wiki.sync()
    assert report.changed_ids == ["PM-5"] and report.removed == ["PM-6"] and report.skipped == 10
    assert seen["commits"] == 1
    got = rows(wiki)
    assert got["PM-5"].title.startswith("Checkout five") and "PM-6" not in got
    with wiki.session() as s:
        assert [t.name for t in s.exec(db.select(db.TagRow).where(db.TagRow.doc_id == "PM-5"))]
        assert not list(s.exec(db.select(db.TagRow).where(db.TagRow.doc_id == "PM-6")))
        assert {f.path for f in s.exec(db.select(db.FileState))} == {
            p.relative_to(content_dir).as_posix() for p in content_dir.rglob("*.md")}
    assert wiki.sync().skipped == 11


def test_ids_swapped_between_two_files_settle(wiki, content_dir):
    """A file taking an id another file still holds loses this sync and wins the next."""
    write_doc(content_dir, "postmortems/a.md", MINIMAL_PM.replace("PM-1", "PM-2"))
    write_doc(content_dir, "postmortems/b.md", MINIMAL_PM.replace("PM-1", "PM-3"))
    wiki.sync()
    a, b = content_dir / "postmortems/a.md", content_dir / "postmortems/b.md"
    a_text, b_text = a.read_text(), b.read_text()
    a.write_text(b_text)
    b.write_text(a_text)
    touch_later(a)
    touch_later(b)
    wiki.sync()
    wiki.sync()
    got = rows(wiki)
    assert (got["PM-2"].path, got["PM-3"].path) == ("postmortems/b.md", "postmortems/a.md")
    with wiki.session() as s:
        assert db.problems(s) == []


def test_moving_an_id_to_a_new_file_in_one_sync(wiki, content_dir):
    """Delete + add with the same id (a rename with an edit): one row, at the new path."""
    wiki.sync()
    old = content_dir / "postmortems/PM-1-checkout-latency.md"
    write_doc(content_dir, "postmortems/PM-1-renamed.md",
              old.read_text().replace("Checkout latency", "Renamed"))
    old.unlink()
    report = wiki.sync()
    assert report.changed_ids == ["PM-1"] and report.removed == []
    got = rows(wiki)
    assert got["PM-1"].path == "postmortems/PM-1-renamed.md"
    with wiki.session() as s:
        assert len(list(s.exec(db.select(db.TagRow).where(db.TagRow.doc_id == "PM-1")))) == 2
