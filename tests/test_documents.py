"""wiki.documents: parsing, validation, coercion and round trips."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from pathlib import Path

import pytest

from wiki import documents as d

FIXTURES = Path(__file__).parent / "fixtures" / "documents"


def fixture(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()


def errors_of(data, kind="postmortem") -> list[d.FieldError]:
    with pytest.raises(d.DocumentError) as info:
        d.parse(data, kind, path="postmortems/x.md")
    return info.value.errors


FULL = """---
id: PM-7
title: Relay restart loop
status: published
severity: sev2
date: 2023-06-14
started_at: 2023-06-14T09:12:00+00:00
detected_at: 2023-06-14T09:31:00Z
mitigated_at: 2023-06-14T10:05:00+00:00
resolved_at: 2023-06-14T13:40:00+02:00
services: [mail-relay]
tags: relay, timeouts
root_cause_category: dependency
detection: alert
related: [pm-3]
signatures: [SIG-2]
action_items:
  - title: Separate health check pool
    owner: Tomasz
    due: 2023-07-01
    status: done
    ticket: OPS-1
    estimate: 3d
  - Add a timeout budget
team_field:
  oncall: [a, b]
  note: "kept: as is"
---

## Summary
The relay restarted in a loop.

## Impact
Delayed mail.
"""


def test_parse_coerces_every_known_field():
    doc = d.parse(FULL, "postmortem")
    fm = doc.front_matter
    assert doc.id == "PM-7"
    assert fm["severity"] == "SEV2"
    assert fm["date"] == date(2023, 6, 14)
    assert fm["detected_at"] == datetime.fromisoformat("2023-06-14T09:31:00+00:00")
    assert fm["tags"] == ["relay", "timeouts"]
    assert fm["related"] == ["PM-3"]
    assert fm["action_items"][0]["due"] == date(2023, 7, 1)
    assert fm["action_items"][0]["estimate"] == "3d"  # unknown keys of an item are kept
    assert fm["action_items"][1] == {"title": "Add a timeout budget", "status": "open"}
    assert fm["slug"] == "relay-restart-loop"


def test_durations_are_derived_from_timestamps():
    doc = d.parse(FULL, "postmortem")
    durations = doc.durations()
    assert durations["time_to_detect"] == timedelta(minutes=19)
    assert durations["time_to_mitigate"] == timedelta(minutes=53)
    # resolved_at is 13:40+02:00 = 11:40 UTC: the offsets are honoured.
    assert durations["time_to_resolve"] == timedelta(hours=2, minutes=28)


def test_sections_summary_and_links():
    doc = d.parse(FULL, "postmortem")
    assert [title for title, _ in doc.sections()] == ["Summary", "Impact"]
    assert doc.summary == "The relay restarted in a loop."
    assert doc.links() == {"related": ["PM-3"], "signatures": ["SIG-2"]}


def test_sections_ignore_headings_inside_code_fences():
    body = "## A\ntext\n```\n## not a heading\n```\n~~~\n## nor this\n~~~\n## B\nmore"
    assert [t for t, _ in d.split_sections(body)] == ["A", "B"]


def test_round_trip_preserves_unknown_fields_and_body():
    doc = d.parse(FULL, "postmortem")
    again = d.parse(d.dumps(doc), "postmortem")
    assert again.front_matter == doc.front_matter
    assert again.front_matter["team_field"] == {"oncall": ["a", "b"], "note": "kept: as is"}
    assert again.body == doc.body
    assert d.dumps(again) == d.dumps(doc)  # stable after one write


@pytest.mark.parametrize("prefix,newline", [("", "\n"), ("\ufeff", "\n"), ("", "\r\n"),
                                            ("\ufeff", "\r\n")])
def test_round_trip_keeps_bom_and_line_endings(prefix, newline):
    text = prefix + FULL.replace("\n", newline)
    doc = d.parse(text.encode("utf-8"), "postmortem")
    assert doc.bom == bool(prefix) and doc.newline == newline
    assert "\r" not in doc.body
    written = d.to_bytes(doc)
    assert written.startswith(prefix.encode("utf-8") + b"---")
    assert (b"\r\n" in written) == (newline == "\r\n")
    assert d.parse(written, "postmortem").front_matter == doc.front_matter


def test_unicode_and_empty_body_round_trip():
    text = "---\nid: SIG-2\ntitle: Ünïcödé ✓ 日本語 🚨\nnote: Ωmega\n---\n"
    doc = d.parse(text, "signature")
    assert doc.body == ""
    assert d.dumps(doc).count("---") == 2
    again = d.parse(d.dumps(doc), "signature")
    assert again.title == "Ünïcödé ✓ 日本語 🚨" and again.front_matter["note"] == "Ωmega"
    assert again.body == ""


def test_yaml_is_not_silently_coerced():
    doc = d.parse(fixture("postmortem_yaml_coercion.md"), "postmortem")
    fm = doc.front_matter
    assert doc.title == "NO"
    assert fm["tags"] == ["NO", "on", "yes", "1.10", "0123"]
    assert fm["version"] == "1.10"  # unknown field: the string as written
    assert fm["enabled"] == "on"
    assert fm["count"] == 12 and fm["nothing"] is None
    assert fm["date"] == date(2022, 2, 28)
    round_trip = d.parse(d.dumps(doc), "postmortem").front_matter
    assert round_trip == fm


@pytest.mark.parametrize(
    "name,field,line,words",
    [
        ("postmortem_missing_title.md", "title", None, "missing"),
        ("postmortem_unknown_severity.md", "severity", 4, "SEV9"),
        ("postmortem_invalid_yaml.md", None, 4, "invalid YAML"),
        ("postmortem_no_front_matter.md", None, 1, "no front matter"),
        ("postmortem_resolved_before_start.md", "resolved_at", 5, "before started_at"),
    ],
)
def test_each_validation_error_names_field_and_line(name, field, line, words):
    errors = errors_of(fixture(name))
    assert any(e.field == field and e.line == line and words in e.message for e in errors), errors


def test_all_wrong_types_are_reported_at_once():
    errors = {e.field: e for e in errors_of(fixture("postmortem_wrong_types.md"))}
    assert set(errors) >= {"date", "started_at", "related", "action_items"}
    assert "time zone" in errors["started_at"].message
    assert errors["date"].line == 4


def test_id_must_match_kind():
    errors = errors_of(fixture("signature_wrong_kind_id.md"), kind="signature")
    assert errors[0].field == "id" and "postmortem id" in errors[0].message


def test_non_utf8_and_oversized_and_binary():
    errors = errors_of(b"---\nid: PM-1\ntitle: caf\xe9\n---\n")
    assert "not UTF-8" in errors[0].message and errors[0].line == 3
    with pytest.raises(d.DocumentError) as info:
        d.parse(b"---\nid: PM-1\ntitle: x\n---\n" + b"a" * 10_000_000, "postmortem",
                max_bytes=2_000_000)
    assert "limit" in str(info.value)
    assert "NUL" in str(errors_of(b"---\nid: PM-1\ntitle: x\n---\n\x00\x01"))


def test_front_matter_must_be_a_mapping():
    assert "mapping" in errors_of("---\n- a\n- b\n---\nbody")[0].message


def test_signature_patterns_validated():
    text = """---
id: SIG-4
title: Pattern kinds
patterns:
  - kind: regex
    value: 'blk_-?\\d+'
  - plain literal
  - kind: frames
    value: ["app.*", "?"]
  - kind: exception
    type: NullPointerException
match: ANY
---
"""
    doc = d.parse(text, "signature")
    kinds = [p["kind"] for p in doc.front_matter["patterns"]]
    assert kinds == ["regex", "literal", "frames", "exception"]
    assert doc.front_matter["match"] == "any"
    bad = text.replace("kind: regex", "kind: glob")
    assert "glob" in str(errors_of(bad, kind="signature"))


@pytest.mark.parametrize("title,slug", [
    ("Relay: restart loop!", "relay-restart-loop"),
    ("Ünïcödé café", "unicode-cafe"),
    ("日本語", "untitled"),
    ("  --  ", "untitled"),
    ("a" * 200, "a" * 80),
    ("History", "history-page"),
])
def test_slugify(title, slug):
    assert d.slugify(title) == slug


def test_ids():
    assert d.normalise_id("pm-7") == "PM-7"
    assert d.normalise_id("SIG-03") is None
    assert d.normalise_id("PM-") is None
    assert [m.group(0) for m in d.ID_IN_TEXT_RE.finditer(
        "see PM-7, SIG-2; not XPM-1 or PM-1a")] == ["PM-7", "SIG-2"]


def test_new_document_applies_defaults():
    doc = d.new_document("signature", {"id": "SIG-9", "title": "T"}, "## How to recognise it\n")
    assert doc.status == "active" and doc.front_matter["match"] == "all"
    with pytest.raises(d.DocumentError):
        d.new_document("postmortem", {"id": "PM-9", "title": ""})


# --------------------------------------------------------------------------------------------
# The C (libyaml) loader goes first; it must load what the pure loader loads, and every error
# must be the pure loader's.

ROOT = Path(__file__).resolve().parent.parent

TRICKY_FRONT_MATTER = [
    "\nid: PM-1\ntitle: NO\ntags: [on, off, yes, 1.10, 0123, ~, null, 1e3, .inf, 0x1F]\n",
    "\nid: PM-1\ntitle: x\ndate: 2022-02-28\nat: 2022-02-28T10:00:00+01:00\nn: -12\nb: True\n",
    "\nid: PM-1\ntitle: 'quoted: colon'\nnote: \"esc \\u00e9 \\t tab\"\nblock: |\n  a\n   b\n",
    "\nid: PM-1\ntitle: x\nfolded: >\n  one\n  two\n\n  three\nkeep: |+\n  k\n\n",
    "\nid: PM-1\ntitle: x\nnested:\n  a: [1, {b: c}]\n  d:\n    - e\n    - f: g\n",
    "\nid: PM-1\ntitle: x\nanchor: &a {k: v}\nalias: *a\nmerge:\n  <<: *a\n  z: 1\n",
    "\nid: PM-1\ntitle: x\ntitle: y\n",  # a repeated key: the last one wins, in both
    "\nid: PM-1\ntitle: Ünïcödé ✓ 日本語 🚨\n'quoted key': 1\n? complex\n: value\n",
    "\nid: PM-1\ntitle: x\nempty:\nlist: []\nmap: {}\n# a comment\n",
    "\n",
    "\n# only a comment\n",
    "\n- a\n- b\n",
    "\njust a string\n",
    "\nid: PM-1\ntitle: [unclosed\nnext: 1\n",
    "\nid: PM-1\ntitle: \"unclosed\nnext: 1\n",
    "\nid: PM-1\n  bad indent: 1\n",
    "\nid: PM-1\ntitle: x\n\tcol: tab\n",
    "\nid: PM-1\ntitle: x: y\n",
    "\nid: PM-1\ntitle: x\nref: *missing\n",
    "\nid: PM-1\ntitle: x\ntagged: !!python/object:os.system ls\n",
    "\nid: PM-1\ntitle: x\nbell: \"\x07\"\n",
    "\nid: PM-1\ntitle: x\n? [a, b]\n: unhashable\n",
    "\nid: PM-1\n%YAML 1.1\n",
    # explicit tags and unusual keys: left to PyYAML's own constructor, same result
    "\nid: PM-1\ntitle: x\na: !!int 0x1F\nb: !!bool yes\nc: !!str 12\n"
    "d: !!null ''\ne: !!int '12'\n",
    "\nid: PM-1\ntitle: x\nf: !!float 1.5\ng: !!timestamp 2022-01-01\nh: !!binary aGk=\n",
    "\nid: PM-1\ntitle: x\ns: !!set {a, b}\no: !!omap [{a: 1}, {b: 2}]\np: !!pairs [{a: 1}]\n",
    "\nid: PM-1\ntitle: x\n1: int key\n~: null key\ntrue: bool key\n-0: minus zero\n+7: plus\n",
    "\nid: PM-1\ntitle: x\nv: {=: 1}\nm: !!map {a: 1}\nq: !!seq [1]\nu: !custom x\n",
    "\nid: PM-1\ntitle: x\nlist: &l [a, b]\nagain: *l\n",
    "\nid: PM-1\ntitle: x\nn: [0, -1, +2, 012, 1_000, 0o7, 1:30, TRUE, False, NULL, Null]\n",
    "\n---\nid: PM-1\n---\nid: PM-2\n",
]


def both_loaders(fm: str):
    """What the C and the pure loader each make of ``fm``: ``(mapping, lines)`` or the errors."""
    out = []
    for loader in (d._CLoader, d._Loader):
        try:
            out.append(d._load_front_matter(fm, loader))
        except d.DocumentError as exc:
            out.append([(e.field, e.line, e.message) for e in exc.errors])
    return out


def front_matter_of(path: Path) -> str | None:
    text = path.read_bytes().decode("utf-8", "replace").replace("\r\n", "\n").lstrip("\ufeff")
    try:
        return d.split_front_matter(text)[0]
    except d.DocumentError:
        return None


needs_libyaml = pytest.mark.skipif(d._CLoader is None, reason="PyYAML built without libyaml")


@needs_libyaml
@pytest.mark.parametrize("path", sorted((ROOT / "content").rglob("*.md"))
                         + sorted((ROOT / "tests" / "fixtures").rglob("*.md")),
                         ids=lambda p: p.name)
def test_c_loader_loads_every_real_file_like_the_pure_one(path):
    fm = front_matter_of(path)
    if fm is None:
        pytest.skip("no front matter")
    c, pure = both_loaders(fm)
    if isinstance(pure, list):  # an error: the C loader refuses it too (its message differs)
        assert isinstance(c, list)
    else:
        assert c == pure
    assert d.load_front_matter(fm) == pure if not isinstance(pure, list) else True


@needs_libyaml
@pytest.mark.parametrize("fm", TRICKY_FRONT_MATTER)
def test_load_front_matter_gives_the_pure_loaders_result_or_error(fm):
    c, pure = both_loaders(fm)
    try:
        got = d.load_front_matter(fm)
    except d.DocumentError as exc:
        got = [(e.field, e.line, e.message) for e in exc.errors]
    assert got == pure  # the same documents, the same messages and lines
    if not isinstance(pure, list):
        assert c == pure


@needs_libyaml
def test_generated_corpus_loads_the_same_with_both_loaders(tmp_path):
    import sys

    sys.path.insert(0, str(ROOT / "bench"))
    try:
        from corpus import generate
    finally:
        sys.path.remove(str(ROOT / "bench"))
    generate(tmp_path, 60, seed=3)
    paths = sorted(tmp_path.rglob("*.md"))
    assert len(paths) == 60
    for path in paths:
        c, pure = both_loaders(front_matter_of(path))
        assert c == pure and not isinstance(c, list), path


def test_parse_without_libyaml_is_the_same(monkeypatch):
    with_c = d.parse(FULL, "postmortem")
    errors_c = errors_of(fixture("postmortem_invalid_yaml.md"))
    monkeypatch.setattr(d, "_CLoader", None)
    assert d.parse(FULL, "postmortem") == with_c
    assert errors_of(fixture("postmortem_invalid_yaml.md")) == errors_c


@needs_libyaml
def test_invalid_yaml_is_reported_with_the_pure_loaders_message():
    errors = errors_of(fixture("postmortem_invalid_yaml.md"))
    assert errors[0].line == 4
    # libyaml says "did not find expected ','"; the message shown is PyYAML's own
    assert errors[0].message.startswith("invalid YAML: expected ',' or ']', but got ':'")


def test_control_character_in_front_matter_is_a_problem_with_its_line():
    # PyYAML's reader refuses it when the loader is made: that used to escape as a ReaderError
    errors = errors_of(b'---\nid: PM-1\ntitle: x\nbell: "\x07"\n---\nbody')
    assert errors[0].line == 4 and "unacceptable character #x0007" in errors[0].message


def test_ids_in_text_finds_what_the_look_behind_regex_finds():
    from hypothesis import given, settings
    from hypothesis import strategies as st

    def reference(text):
        return [f"{m.group(1)}-{m.group(2)}" for m in d.ID_IN_TEXT_RE.finditer(text)]

    fixed = ("PM-1 xPM-2 /PM-3 -PM-4 _PM-5 é PM-6 éPM-7 PM-8a PM-9- (SIG-10) PM-0 ٣PM-11 "
             "SIG-SIG-3 PPM-4")
    assert list(d.ids_in_text(fixed)) == reference(fixed) == ["PM-1", "PM-6", "SIG-10"]

    @settings(max_examples=400, deadline=None)
    @given(st.text(alphabet="PMSIG-/_0123456789 aé٣\n(", max_size=60))
    def same(text):
        assert list(d.ids_in_text(text)) == reference(text)

    same()


def test_sections_are_split_again_when_the_body_changes():
    doc = d.parse(FULL, "postmortem")
    assert doc.section("Impact") == "Delayed mail."
    doc.body = doc.body.replace("Delayed mail.", "Lost mail.")
    assert doc.section("Impact") == "Lost mail."
    doc.sections().clear()  # callers get their own list
    assert doc.section("Impact") == "Lost mail."



def test_aliases_keep_pyyamls_sharing_and_recursion():
    data, _ = d.load_front_matter(
        "\nid: PM-1\ntitle: x\nlist: &l [a, b]\nagain: *l\nrec: &r [*r]\n")
    assert data["again"] is data["list"] == ["a", "b"]
    assert data["rec"][0] is data["rec"]
