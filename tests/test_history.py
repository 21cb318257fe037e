"""History without Flask: revisions in the data dir and in git, diffs, restore and merge3."""

from __future__ import annotations

import inspect
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from wiki import documents as d
from wiki.core import Wiki
from wiki.history import (
    IMPORTED,
    GitError,
    History,
    RevisionNotFound,
    inline_diff,
    merge3,
    side_by_side,
    split_author,
)
from wiki.store import NotFound, StaleRevision

ANA = "Ana Lima <ana@example.com>"
BO = "Bo <bo@example.com>"

pytestmark = pytest.mark.filterwarnings("error")


@pytest.fixture(autouse=True)
def hermetic_git(tmp_path: Path, monkeypatch):
    """No user or system git configuration (signing, hooks paths, identities) leaks in."""
    config = tmp_path / "gitconfig"
    config.write_text("")
    monkeypatch.setenv("GIT_CONFIG_GLOBAL", str(config))
    monkeypatch.setenv("GIT_CONFIG_NOSYSTEM", "1")
    for name in ("GIT_DIR", "GIT_WORK_TREE", "GIT_INDEX_FILE", "GIT_AUTHOR_NAME",
                 "GIT_AUTHOR_EMAIL", "GIT_COMMITTER_NAME", "GIT_COMMITTER_EMAIL"):
        monkeypatch.delenv(name, raising=False)


def make_wiki(content: Path, data: Path, **history_options) -> tuple[Wiki, History]:
    wiki = Wiki({"CONTENT_DIR": content, "DATA_DIR": data,
                 "DATABASE_URL": f"sqlite:///{data / 'wiki.db'}"})
    history = History(wiki, **history_options)
    wiki.listeners.append(history)
    wiki.sync()
    return wiki, history


def edit(wiki: Wiki, ident: str, body: str, author: str | None = ANA, message: str | None = None,
         **front_matter):
    doc = wiki.get(ident)
    return wiki.update(ident, {**doc.front_matter, **front_matter}, body, doc.revision,
                       author=author, message=message)


def git(cwd: Path, *args: str) -> str:
    result = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, check=True)
    return result.stdout


def init_repo(root: Path) -> None:
    git(root, "init", "-q", "-b", "main")
    git(root, "config", "user.name", "Repo Owner")
    git(root, "config", "user.email", "owner@example.com")


needs_git = pytest.mark.skipif(shutil.which("git") is None, reason="git is not installed")


# --------------------------------------------------------------------------------------------
# Revisions in the data dir


@pytest.fixture
def files(content_dir: Path, tmp_path: Path) -> tuple[Wiki, History]:
    wiki, history = make_wiki(content_dir, tmp_path / "data")
    assert history.backend == "files"
    return wiki, history


def three_saves(wiki: Wiki) -> list[d.Document]:
    original = wiki.get("PM-1").body
    return [
        edit(wiki, "PM-1", original + "\nFirst addition.\n", ANA, "Add a line"),
        edit(wiki, "PM-1", original + "\nFirst addition, reworded.\n", BO, "Reword"),
        edit(wiki, "PM-1", original + "\nFirst addition, reworded.\n\nSecond addition.\n",
             None, "Add another line"),
    ]


def test_each_save_is_a_revision_with_author_time_and_message(files):
    wiki, history = files
    saved = three_saves(wiki)

    revisions = history.list("PM-1")
    assert [r.revision for r in revisions[:3]] == [doc.revision for doc in reversed(saved)]
    assert [r.message for r in revisions[:3]] == ["Add another line", "Reword", "Add a line"]
    assert [r.author for r in revisions[:3]] == [
        "Postmortem Wiki <wiki@localhost>", BO, ANA]
    assert all(r.time.tzinfo is not None for r in revisions)
    assert revisions[0].time >= revisions[1].time >= revisions[2].time
    log_lines = (wiki.data_dir / "revisions" / "PM-1" / "log.jsonl").read_text().splitlines()
    assert len(log_lines) == len(revisions)


def test_the_original_of_hand_written_content_survives_its_first_edit(files, content_dir):
    wiki, history = files
    original = (content_dir / "postmortems/PM-1-checkout-latency.md").read_bytes()
    three_saves(wiki)

    oldest = history.list("PM-1")[-1]
    assert oldest.message == IMPORTED
    assert oldest.revision == d.content_hash(original)
    assert history.get("PM-1", oldest.revision) == original


def test_current_file_is_imported_lazily_when_history_is_listed(content_dir, tmp_path):
    wiki = Wiki({"CONTENT_DIR": content_dir, "DATA_DIR": tmp_path / "data",
                 "DATABASE_URL": f"sqlite:///{tmp_path / 'data' / 'wiki.db'}"})
    wiki.sync()  # before history listens: nothing imported at sync time
    history = History(wiki)
    assert not (tmp_path / "data" / "revisions").exists()

    revisions = history.list("SIG-1")
    assert [r.message for r in revisions] == [IMPORTED]
    assert revisions[0].revision == wiki.get("SIG-1").revision
    assert len(history.list("SIG-1")) == 1  # imported once


def test_an_edit_on_disk_becomes_a_revision(files, content_dir):
    wiki, history = files
    edit(wiki, "PM-1", "Saved in the browser.\n", message="Browser edit")
    path = content_dir / "postmortems/PM-1-checkout-latency.md"
    path.write_text(path.read_text().replace("Saved in the browser.", "Edited by hand."))

    revisions = history.list("PM-1")
    assert revisions[0].message == IMPORTED
    assert b"Edited by hand." in history.get("PM-1", revisions[0].revision)


def test_diff_between_first_and_last_shows_the_changed_lines(files):
    wiki, history = files
    first, _, last = three_saves(wiki)

    diff = history.diff("PM-1", first.revision, last.revision)
    assert "-First addition." in diff.unified
    assert "+First addition, reworded." in diff.unified
    assert "+Second addition." in diff.unified
    assert diff.unified[0].startswith("--- PM-1@" + first.revision[:8])
    kinds = {line.kind for line in diff.inline}
    assert {"hunk", "delete", "insert"} <= kinds
    assert diff.counts == (3, 1)
    replaced = [row for row in diff.rows if row.kind == "replace"]
    assert replaced and replaced[0].new == (("First addition", False), (", reworded", True),
                                            (".", False))
    assert not history.diff("PM-1", first.revision, first.revision).changed


def test_restore_writes_the_old_content_as_a_new_revision(files):
    wiki, history = files
    first, _, last = three_saves(wiki)

    restored = history.restore("PM-1", first.revision, author=BO)
    assert restored.revision == first.revision  # same bytes: same hash
    assert wiki.get("PM-1").body == first.body
    revisions = history.list("PM-1")
    assert revisions[0].revision == first.revision
    assert revisions[0].message == f"Restore revision {first.revision[:8]}"
    assert revisions[0].author == BO
    assert len([r for r in revisions if r.revision == first.revision]) == 2
    assert history.get("PM-1", last.revision) != history.get("PM-1", first.revision)


def test_restore_is_conflict_checked(files):
    wiki, history = files
    first, second, _ = three_saves(wiki)
    with pytest.raises(StaleRevision):
        history.restore("PM-1", first.revision, base_revision=second.revision)
    assert "Second addition" in wiki.get("PM-1").body


def test_unknown_revisions_and_documents(files):
    wiki, history = files
    three_saves(wiki)
    with pytest.raises(RevisionNotFound):
        history.get("PM-1", "0" * 20)
    with pytest.raises(RevisionNotFound):
        history.get("PM-1", "../../wiki.db")
    with pytest.raises(RevisionNotFound):
        history.find("PM-1", history.list("PM-1")[0].revision[:3])  # too short a prefix
    with pytest.raises(NotFound):
        history.list("PM-99")
    with pytest.raises(NotFound):
        history.list("not-an-id")


def test_a_revision_can_be_named_by_a_prefix(files):
    wiki, history = files
    first = three_saves(wiki)[0]
    assert history.find("pm-1", first.revision[:8]).revision == first.revision
    assert d.content_hash(history.get("PM-1", first.revision[:8])) == first.revision


def test_a_deletion_is_a_revision(files):
    wiki, history = files
    doc = edit(wiki, "PM-1", "Soon gone.\n")
    history.on_delete(doc, wiki, author=ANA, message="Duplicate of PM-2")  # as Wiki.delete will
    doc_path = wiki.store.absolute(doc.path)
    doc_path.unlink()
    wiki.sync()

    revisions = history.list("PM-1")  # still listed from the log
    assert revisions[0].deleted and revisions[0].message == "Duplicate of PM-2"
    assert history.get("PM-1", revisions[1].revision) == d.to_bytes(doc)


@pytest.mark.skipif("on_delete" not in inspect.getsource(Wiki.delete),
                    reason="Wiki.delete does not tell listeners yet (see the history report)")
def test_wiki_delete_is_recorded(files):
    wiki, history = files
    edit(wiki, "PM-1", "Soon gone.\n")
    wiki.delete("PM-1")
    assert history.list("PM-1")[0].deleted


def test_a_failing_history_never_fails_the_save(files, monkeypatch, caplog):
    wiki, history = files

    def broken(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(history.files, "record", broken)
    doc = edit(wiki, "PM-1", "Still saved.\n")
    assert wiki.get("PM-1").revision == doc.revision
    assert "could not record the save of PM-1" in caplog.text


def test_split_author():
    assert split_author("Ana Lima <ana@example.com>") == ("Ana Lima", "ana@example.com")
    assert split_author("ana") == ("ana", "wiki@localhost")
    assert split_author(None) == ("Postmortem Wiki", "wiki@localhost")
    for part in split_author("Eve <eve@x>\n<evil>\x00"):
        assert part and not set(part) & set("<>\n\x00")
    assert split_author("", "Bot <bot@example.com>") == ("Bot", "bot@example.com")


def test_backend_setting_is_checked(content_dir, tmp_path):
    with pytest.raises(ValueError, match="HISTORY must be one of"):
        make_wiki(content_dir, tmp_path / "data", backend="svn")


# --------------------------------------------------------------------------------------------
# Revisions as git commits


@pytest.fixture
def repo(content_dir: Path, tmp_path: Path) -> Path:
    """A repository with the content in a subfolder, everything committed by its owner."""
    root = tmp_path / "repo"
    root.mkdir()
    shutil.copytree(content_dir, root / "content")
    (root / "README.md").write_text("Our postmortems.\n")
    init_repo(root)
    git(root, "add", ".")
    git(root, "commit", "-q", "-m", "Initial import")
    return root


@pytest.fixture
def in_git(repo: Path, tmp_path: Path) -> tuple[Wiki, History]:
    wiki, history = make_wiki(repo / "content", tmp_path / "data",
                              author="Wiki Bot <bot@example.com>")
    assert history.backend == "git"
    return wiki, history


PM1 = "content/postmortems/PM-1-checkout-latency.md"


@needs_git
def test_each_save_is_a_commit_with_the_right_author_and_message(in_git, repo):
    wiki, _ = in_git
    three_saves(wiki)

    log = git(repo, "log", "--format=%an|%ae|%cn|%ce|%s", "--", PM1).splitlines()
    assert log == [
        "Wiki Bot|bot@example.com|Wiki Bot|bot@example.com|PM-1: Add another line",
        "Bo|bo@example.com|Wiki Bot|bot@example.com|PM-1: Reword",
        "Ana Lima|ana@example.com|Wiki Bot|bot@example.com|PM-1: Add a line",
        "Repo Owner|owner@example.com|Repo Owner|owner@example.com|Initial import",
    ]
    for commit in git(repo, "log", "-3", "--format=%H").split():
        assert git(repo, "show", "--format=", "--name-only", commit).split() == [PM1]
    assert git(repo, "status", "--porcelain").strip() == ""  # index and work tree agree
    assert not (wiki.data_dir / "revisions" / "PM-1").exists()


@needs_git
def test_unrelated_staged_work_is_not_committed(in_git, repo):
    wiki, _ = in_git
    (repo / "README.md").write_text("Work in progress.\n")
    (repo / "notes.txt").write_text("A new file.\n")
    git(repo, "add", "README.md", "notes.txt")

    edit(wiki, "PM-1", "Edited in the browser.\n", message="Browser edit")

    assert git(repo, "show", "--format=", "--name-only", "HEAD").split() == [PM1]
    assert sorted(git(repo, "diff", "--cached", "--name-only").split()) == ["README.md",
                                                                          "notes.txt"]
    assert git(repo, "show", "HEAD:README.md") == "Our postmortems.\n"


@needs_git
def test_history_lists_the_commits_of_the_file(in_git, repo):
    wiki, history = in_git
    original = wiki.get("PM-1")
    saved = three_saves(wiki)

    revisions = history.list("PM-1")
    assert [r.message for r in revisions] == [
        "Add another line", "Reword", "Add a line", "Initial import"]
    assert [r.revision for r in revisions] == [
        *(doc.revision for doc in reversed(saved)), original.revision]
    assert all(r.commit for r in revisions)
    assert revisions[-1].author == "Repo Owner <owner@example.com>"
    assert d.content_hash(history.get("PM-1", original.revision)) == original.revision
    diff = history.diff("PM-1", original.revision, saved[-1].revision)
    assert "+Second addition." in diff.unified

    restored = history.restore("PM-1", original.revision, author=ANA)
    assert restored.body == original.body
    assert git(repo, "log", "-1", "--format=%an|%s").strip() == (
        f"Ana Lima|PM-1: Restore revision {original.revision[:8]}")


@needs_git
def test_a_new_document_is_committed_with_the_id_counters(in_git, repo):
    wiki, history = in_git
    doc = wiki.create("postmortem", {"title": "Queue backlog", "severity": "SEV3"}, "## Summary\n",
                      author=BO)
    files = git(repo, "show", "--format=", "--name-only", "HEAD").split()
    assert files == ["content/.wiki-ids.yml", f"content/{doc.path}"]
    assert [r.message for r in history.list(doc.id)] == ["Create"]
    assert git(repo, "status", "--porcelain").strip() == ""


@needs_git
def test_uncommitted_hand_edits_are_listed_as_imported(in_git, repo):
    wiki, history = in_git
    path = repo / PM1
    path.write_text(path.read_text() + "\nAdded by hand.\n")
    revisions = history.list("PM-1")
    assert [r.message for r in revisions] == [IMPORTED, "Initial import"]
    assert revisions[0].commit is None


@needs_git
def test_untracked_hand_written_documents_keep_their_original(repo, tmp_path):
    text = (repo / PM1).read_text().replace("PM-1", "PM-2")
    (repo / "content/postmortems/PM-2-by-hand.md").write_text(text)  # never committed
    wiki, history = make_wiki(repo / "content", tmp_path / "data")  # the sync imports PM-2 only
    assert sorted(p.name for p in (tmp_path / "data" / "revisions").iterdir()) == ["PM-2"]

    edit(wiki, "PM-2", "Edited in the browser.\n", message="First browser edit")
    revisions = history.list("PM-2")
    assert [r.message for r in revisions] == ["First browser edit", IMPORTED]
    assert revisions[0].commit and revisions[1].commit is None
    assert history.text("PM-2", revisions[1]) == text


@needs_git
def test_git_failure_keeps_the_revision_in_the_data_dir(in_git, repo, monkeypatch, caplog):
    wiki, history = in_git

    def fail(*args, **kwargs):
        raise GitError(["commit-tree"], 128, "fatal: unable to write")

    monkeypatch.setattr(history.git, "commit_files", fail)
    doc = edit(wiki, "PM-1", "Saved while git is broken.\n", message="While broken")

    assert wiki.get("PM-1").revision == doc.revision
    assert "git commit of postmortems/PM-1-checkout-latency.md failed" in caplog.text
    revisions = history.list("PM-1")
    assert revisions[0].revision == doc.revision and revisions[0].message == "While broken"
    assert revisions[0].commit is None
    assert history.get("PM-1", doc.revision) == d.to_bytes(doc)


@needs_git
def test_deleting_a_never_committed_document_is_logged_in_the_data_dir(in_git, repo):
    wiki, history = in_git
    doc = wiki.create("postmortem", {"title": "Short-lived"}, "")
    (repo / "content" / doc.path).unlink()
    git(repo, "rm", "-q", "--cached", f"content/{doc.path}")
    git(repo, "commit", "-q", "-m", "Untrack it")
    history.on_delete(doc, wiki, message="Gone")
    assert git(repo, "log", "-1", "--format=%s").strip() == "Untrack it"
    assert history.files.entries(doc.id)[-1].deleted


@needs_git
def test_a_deletion_is_a_commit(in_git, repo):
    wiki, history = in_git
    doc = wiki.get("PM-1")
    wiki.store.delete(doc)
    history.on_delete(doc, wiki, author=ANA, message="Duplicate")  # as Wiki.delete will
    lines = git(repo, "log", "-1", "--format=%an|%s", "--name-status").strip().split("\n")
    assert lines[0] == "Ana Lima|PM-1: Duplicate"
    # The id counter moves past the deleted id (ids are never reused) and is committed with it.
    assert sorted(lines[2:]) == ["A\tcontent/.wiki-ids.yml", f"D\t{PM1}"]


@needs_git
def test_ignored_content_is_not_committed(content_dir, tmp_path):
    repo = tmp_path / "repo"
    repo.mkdir()
    shutil.copytree(content_dir, repo / "content")
    (repo / ".gitignore").write_text("content/\n")
    init_repo(repo)
    git(repo, "add", ".")
    git(repo, "commit", "-q", "-m", "Code only")
    wiki, history = make_wiki(repo / "content", tmp_path / "data")
    before = git(repo, "rev-parse", "HEAD")
    edit(wiki, "PM-1", "Not for git.\n", message="Private edit")
    assert git(repo, "rev-parse", "HEAD") == before
    assert [r.message for r in history.list("PM-1")] == ["Private edit", IMPORTED]


@needs_git
def test_a_repository_without_commits_gets_its_first(content_dir, tmp_path):
    init_repo(content_dir)
    wiki, history = make_wiki(content_dir, tmp_path / "data")
    edit(wiki, "PM-1", "First commit.\n", message="Start")
    assert git(content_dir, "log", "--format=%s").split("\n")[0] == "PM-1: Start"
    assert git(content_dir, "ls-files").split() == ["postmortems/PM-1-checkout-latency.md"]


@needs_git
def test_files_backend_can_be_forced(repo, tmp_path):
    wiki, history = make_wiki(repo / "content", tmp_path / "data", backend="files")
    before = git(repo, "rev-parse", "HEAD")
    edit(wiki, "PM-1", "Kept in the data dir.\n")
    assert git(repo, "rev-parse", "HEAD") == before
    assert history.backend == "files"


# --------------------------------------------------------------------------------------------
# Diff structures


def test_side_by_side_skips_unchanged_stretches():
    old = "".join(f"line {n}\n" for n in range(1, 21))
    new = old.replace("line 10\n", "line ten\n")
    rows = side_by_side(old, new, context=2)
    assert [r.kind for r in rows] == ["skip", "equal", "equal", "replace", "equal", "equal",
                                      "skip"]
    assert rows[3].old_no == rows[3].new_no == 10
    assert rows[3].old == (("line ", False), ("10", True))
    assert side_by_side(old, old) == []


def test_inline_diff_numbers_lines():
    lines = inline_diff("a\nb\nc\n", "a\nc\nd\n")
    assert [(line.kind, line.old_no, line.new_no, line.text) for line in lines] == [
        ("hunk", None, None, "@@ -1,3 +1,3 @@"),
        ("context", 1, 1, "a"),
        ("delete", 2, None, "b"),
        ("context", 3, 2, "c"),
        ("insert", None, 3, "d"),
    ]


# --------------------------------------------------------------------------------------------
# merge3

BASE = "title\n\none\ntwo\nthree\nfour\nfive\n"


def test_merge3_takes_edits_to_different_lines():
    mine = BASE.replace("one", "ONE")
    theirs = BASE.replace("five", "FIVE")
    assert merge3(BASE, mine, theirs) == ("title\n\nONE\ntwo\nthree\nfour\nFIVE\n", False)


def test_merge3_takes_the_same_edit_once_and_one_sided_edits():
    same = BASE.replace("three", "3")
    assert merge3(BASE, same, same) == (same, False)
    assert merge3(BASE, BASE, same) == (same, False)
    assert merge3(BASE, same, BASE) == (same, False)
    added = BASE + "six\n"
    removed = BASE.replace("two\n", "")
    assert merge3(BASE, added, removed) == (removed + "six\n", False)


def test_merge3_marks_overlapping_edits_as_conflicts():
    mine = BASE.replace("three", "three (mine)")
    theirs = BASE.replace("three", "three (theirs)").replace("one", "1")
    merged, conflicts = merge3(BASE, mine, theirs, labels=("your edit", "current"))
    assert conflicts
    assert merged == (
        "title\n\n1\ntwo\n"
        "<<<<<<< your edit\nthree (mine)\n=======\nthree (theirs)\n>>>>>>> current\n"
        "four\nfive\n"
    )


def test_merge3_keeps_agreed_lines_outside_the_conflict():
    mine = BASE.replace("two\nthree", "2\nthree (mine)")
    theirs = BASE.replace("two\nthree", "2\nthree (theirs)")
    merged, conflicts = merge3(BASE, mine, theirs)
    assert conflicts
    assert "2\n<<<<<<< mine\nthree (mine)\n=======\nthree (theirs)\n>>>>>>> theirs\n" in merged


def test_merge3_conflict_markers_start_on_their_own_line():
    merged, conflicts = merge3("a\nb", "a\nmine", "a\ntheirs")
    assert conflicts
    assert merged == "a\n<<<<<<< mine\nmine\n=======\ntheirs\n>>>>>>> theirs\n"


def test_merge3_of_empty_base():
    assert merge3("", "x\n", "x\n") == ("x\n", False)
    assert merge3("", "x\n", "y\n")[1] is True


def test_sync_imports_each_changed_file_once(files, content_dir):
    """A sync logs the on-disk state of what changed outside the app, once per revision, with
    the file's modification time; a full reindex does not log unchanged files again."""
    wiki, history = files  # make_wiki synced: both documents imported
    log_path = wiki.data_dir / "revisions" / "PM-1" / "log.jsonl"
    assert len(log_path.read_text().splitlines()) == 1
    wiki.sync(full=True)
    wiki.sync(full=True)
    assert len(log_path.read_text().splitlines()) == 1
    assert len((wiki.data_dir / "revisions" / "SIG-1" / "log.jsonl").read_text().splitlines()) == 1

    path = content_dir / "postmortems/PM-1-checkout-latency.md"
    path.write_text(path.read_text().replace("Checkout latency", "Checkout slowness"))
    os.utime(path, ns=(path.stat().st_atime_ns, path.stat().st_mtime_ns + 10**9))
    wiki.sync()
    revisions = history.files.entries("PM-1")
    assert [r.message for r in revisions] == [IMPORTED, IMPORTED]
    assert revisions[-1].revision == d.content_hash(path.read_bytes())
    assert revisions[-1].time.timestamp() == pytest.approx(path.stat().st_mtime, abs=1e-3)
    assert history.get("PM-1", revisions[-1].revision) == path.read_bytes()
    assert not list((wiki.data_dir / "revisions" / "PM-1").glob(".*.tmp"))


def test_import_many_skips_files_gone_since_the_sync(files, content_dir):
    wiki, history = files
    doc = wiki.get("PM-1")
    (content_dir / doc.path).unlink()
    shutil.rmtree(wiki.data_dir / "revisions")
    assert history.files.import_many([doc], content_dir) == 0
