"""Shared fixtures: every app builds its own content and data folders in ``tmp_path``."""

from __future__ import annotations

import gc
import shutil
import textwrap
import warnings
from pathlib import Path

import pytest

from wiki import create_app


@pytest.fixture(autouse=True, scope="module")
def _collect_leaked_index_files():
    """Apps made by a test module leave Whoosh searchers open (wiki/search.py keeps one per
    thread and never closes it): collect them at the end of the module, quietly, rather than in
    a later module that turns warnings into errors."""
    yield
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ResourceWarning)
        gc.collect()

ROOT = Path(__file__).resolve().parent.parent
DEMO_CONTENT = ROOT / "content"
SHARED = ROOT.parent / "shared"


def write_doc(content_dir: Path, rel: str, text: str) -> Path:
    """Write a content file (dedented) and return its path."""
    path = content_dir / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text).lstrip("\n"), encoding="utf-8")
    return path


MINIMAL_PM = """\
---
id: PM-1
title: Checkout latency after cache flush
status: published
severity: SEV2
date: 2023-05-02
started_at: 2023-05-02T10:00:00+00:00
detected_at: 2023-05-02T10:07:00+00:00
mitigated_at: 2023-05-02T10:30:00+00:00
resolved_at: 2023-05-02T12:00:00+00:00
services: [checkout, cache]
tags: [latency, cache]
root_cause_category: capacity
detection: alert
signatures: [SIG-1]
action_items:
  - title: Warm the cache before a flush
    owner: Ana
    due: 2023-06-01
    status: open
created: 2023-05-03
updated: 2023-05-03
---

## Summary
A cache flush sent every checkout request to the database; see [[SIG-1]].

## Impact
Checkout p99 rose to 9 s for 23 minutes.
"""

MINIMAL_SIG = """\
---
id: SIG-1
title: Cache stampede after a flush
status: active
services: [cache]
tags: [cache]
incidents: [PM-1]
patterns:
  - kind: literal
    value: cache miss storm
examples:
  - "WARN cache miss storm detected"
---

## How to recognise it
Many cache misses at once right after a flush.
"""


@pytest.fixture
def content_dir(tmp_path: Path) -> Path:
    root = tmp_path / "content"
    (root / "postmortems").mkdir(parents=True)
    (root / "signatures").mkdir(parents=True)
    write_doc(root, "postmortems/PM-1-checkout-latency.md", MINIMAL_PM)
    write_doc(root, "signatures/SIG-1-cache-stampede.md", MINIMAL_SIG)
    return root


def make_app(content: Path, data: Path, **extra):
    return create_app({"CONTENT_DIR": content, "DATA_DIR": data, "TESTING": True,
                       "SECRET_KEY": "test", **extra})


@pytest.fixture
def app(content_dir: Path, tmp_path: Path):
    return make_app(content_dir, tmp_path / "data")


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def runner(app):
    return app.test_cli_runner()


@pytest.fixture(scope="session")
def demo_copy(tmp_path_factory) -> Path:
    """A pristine copy of the demo content (tests must not write into the repository)."""
    target = tmp_path_factory.mktemp("demo") / "content"
    shutil.copytree(DEMO_CONTENT, target)
    return target


@pytest.fixture
def demo_app(tmp_path: Path, demo_copy: Path):
    content = tmp_path / "content"
    shutil.copytree(demo_copy, content)
    return make_app(content, tmp_path / "data")


@pytest.fixture
def demo_client(demo_app):
    return demo_app.test_client()


@pytest.fixture(scope="session")
def naughty_strings() -> list[str]:
    path = SHARED / "data" / "naughty-strings.json"
    if not path.exists():
        pytest.skip("../shared/data/naughty-strings.json is not available")
    import json

    return json.loads(path.read_text("utf-8"))
