"""The metadata database on a real PostgreSQL server (``DATABASE_URL=postgresql+psycopg://…``).

Runs when ``WIKI_TEST_POSTGRES_URL`` points at a server (``.ci/run`` starts one and sets it); it
fails instead of skipping when ``WIKI_REQUIRE_POSTGRES=1``, so CI cannot silently skip it.
"""

from __future__ import annotations

import os

import pytest
from sqlmodel import SQLModel, create_engine

from tests.conftest import MINIMAL_PM, make_app, write_doc
from wiki import db


@pytest.fixture
def pg_url():
    url = os.environ.get("WIKI_TEST_POSTGRES_URL")
    if not url:
        if os.environ.get("WIKI_REQUIRE_POSTGRES") == "1":
            pytest.fail("WIKI_REQUIRE_POSTGRES=1 but WIKI_TEST_POSTGRES_URL is not set")
        pytest.skip("set WIKI_TEST_POSTGRES_URL to run the PostgreSQL tests")
    engine = create_engine(url)
    SQLModel.metadata.drop_all(engine)
    engine.dispose()
    return url


def test_sync_list_filter_and_api_on_postgres(pg_url, content_dir, tmp_path):
    write_doc(content_dir, "postmortems/PM-2-db.md",
              MINIMAL_PM.replace("PM-1", "PM-2").replace("SEV2", "SEV1")
              .replace("Checkout latency after cache flush", "Ünïcödé — 'quotes' and 日本語"))
    app = make_app(content_dir, tmp_path / "data", DATABASE_URL=pg_url)
    wiki = app.extensions["wiki"]
    assert wiki.engine.dialect.name == "postgresql"
    with wiki.session() as s:
        rows, total = db.list_documents(s, db.Filters(kind="postmortem", severity=["SEV1"]))
        assert total == 1 and rows[0].title.startswith("Ünïcödé")
        assert dict(db.facet_values(s, db.Filters(kind="postmortem"))["severity"]) == \
            {"SEV1": 1, "SEV2": 1}
        assert [r.id for r, _ in db.backlinks(s, "SIG-1")] == ["PM-1", "PM-2"]
    client = app.test_client()
    body = client.get("/api/v1/documents/PM-2").get_json()
    assert body["front_matter"]["severity"] == "SEV1"

    created = wiki.create("postmortem", {"title": "Made on PostgreSQL"}, "## Summary\nx")
    assert created.id == "PM-3"
    assert client.get("/api/v1/documents?kind=postmortem").get_json()["total"] == 3
    # A restart with unchanged files syncs nothing.
    again = make_app(content_dir, tmp_path / "data", DATABASE_URL=pg_url)
    assert again.extensions["wiki"].sync().changed == []


def test_bulk_sync_full_and_incremental_on_postgres(pg_url, content_dir, tmp_path):
    """The bulk sync (one transaction, parents inserted before children, deletions by id
    lists) on PostgreSQL, which checks the foreign keys."""
    from sqlalchemy import event

    from wiki import config
    from wiki.core import Wiki

    for i in range(2, 620):  # over one IN-list chunk (500) of ids and paths
        write_doc(content_dir, f"postmortems/PM-{i}.md",
                  MINIMAL_PM.replace("PM-1", f"PM-{i}").replace("Checkout", f"Checkout {i}"))
    write_doc(content_dir, "postmortems/PM-900-broken.md",
              MINIMAL_PM.replace("PM-1", "PM-900").replace("SEV2", "SEV9"))
    wiki = Wiki(config.load({"CONTENT_DIR": content_dir, "DATA_DIR": tmp_path / "data",
                             "DATABASE_URL": pg_url}))
    commits = []
    event.listen(wiki.engine, "commit", lambda *_: commits.append(1))
    report = wiki.sync()
    assert len(report.changed) == 620 and len(commits) == 1
    with wiki.session() as s:
        assert len(db.all_ids(s)) == 620
        assert [p.path for p in db.problems(s)] == ["postmortems/PM-900-broken.md"]
        assert [r.id for r, _ in db.backlinks(s, "SIG-1")][:2] == ["PM-1", "PM-2"]

    for i in range(2, 560):  # edit many, delete one, fix the broken one
        path = content_dir / f"postmortems/PM-{i}.md"
        path.write_text(path.read_text().replace(f"Checkout {i}", f"Till {i}"))
        st = path.stat()
        os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))
    (content_dir / "postmortems/PM-600.md").unlink()
    broken = content_dir / "postmortems/PM-900-broken.md"
    broken.write_text(broken.read_text().replace("SEV9", "SEV3"))
    st = broken.stat()
    os.utime(broken, ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))
    report = wiki.sync()
    assert len(report.changed) == 559 and report.removed == ["PM-600"]
    with wiki.session() as s:
        assert db.get_row(s, "PM-7").title.startswith("Till 7")
        assert db.get_row(s, "PM-600") is None and db.problems(s) == []
        assert len(db.all_ids(s)) == 620

    report = wiki.sync(full=True)
    assert len(report.changed) == 620
    with wiki.session() as s:
        assert len(db.all_ids(s)) == 620
        assert dict(db.named_values(s, db.TagRow))["latency"] == 619  # every postmortem
