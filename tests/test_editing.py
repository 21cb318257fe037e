"""wiki.editing: the editor's form ↔ front matter and body, timeline rows, merges. No Flask."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
from werkzeug.datastructures import MultiDict

from tests.conftest import DEMO_CONTENT, MINIMAL_PM, MINIMAL_SIG
from wiki import documents as d
from wiki.editing import (
    EditorForm,
    Timeline,
    extract_timeline,
    has_conflict_markers,
    insert_timeline,
    merge_fields,
    offsets_for,
)


def submitted(form: EditorForm) -> MultiDict:
    """What a browser sends for an editor showing ``form`` (blank rows included)."""
    data = MultiDict()
    for name, value in form.fields.items():
        data.add(name, value)
    data.add("body", form.body)
    data.add("extra_yaml", form.extra_yaml)
    data.add("base_revision", form.base_revision)
    if form.kind is d.POSTMORTEM:
        data.add("tl_header_time", form.timeline.header[0])
        data.add("tl_header_event", form.timeline.header[1])
        data.add("tl_at", form.timeline.at)
        data.add("tl_editable", "1" if form.timeline.editable else "0")
        for time, event in form.shown_timeline():
            data.add("tl_time", time)
            data.add("tl_event", event)
        for row in form.shown_rows("action_items"):
            for column in ("title", "owner", "due", "status", "ticket", "extra"):
                data.add(f"ai_{column}", row[column])
    else:
        for name, prefix in (("patterns", "pat"), ("not", "notpat")):
            for row in form.shown_rows(name):
                for column in ("kind", "value", "extra"):
                    data.add(f"{prefix}_{column}", row[column])
        for name, key in (("examples", "example"), ("not_examples", "not_example")):
            for text in form.shown_examples(name):
                data.add(key, text)
    return data


def parse(text: str) -> d.Document:
    return d.parse(text.encode(), path="postmortems/x.md" if "PM-" in text.split("\n")[1]
                   else "signatures/x.md")


def round_trip(doc: d.Document, **changes) -> tuple[dict, str]:
    form = EditorForm.from_document(doc.kind, doc.front_matter, doc.body, doc.revision)
    data = submitted(form)
    for key, value in changes.items():
        data.setlist(key, value if isinstance(value, list) else [value])
    return EditorForm.from_form(doc.kind, data).to_document(doc.front_matter)


# --------------------------------------------------------------------------------------------
# Round trips


DEMO_FILES = sorted(p for p in DEMO_CONTENT.rglob("*.md") if ".templates" not in p.parts)


@pytest.mark.parametrize("path", DEMO_FILES, ids=lambda p: p.name[:40])
def test_an_unchanged_form_saves_the_same_document(path: Path):
    doc = d.parse(path.read_bytes(), path=path.relative_to(DEMO_CONTENT).as_posix())
    fm, body = round_trip(doc)
    assert body == doc.body
    assert fm == doc.front_matter
    assert list(fm) == list(doc.front_matter)


def test_demo_postmortems_timelines_become_rows():
    path = next(p for p in DEMO_FILES if p.name.startswith("PM-1-"))
    doc = d.parse(path.read_bytes(), path="postmortems/" + path.name)
    form = EditorForm.from_document(doc.kind, doc.front_matter, doc.body)
    assert form.timeline.header == ("Time (UTC)", "Event")
    assert form.timeline.rows[0][0] == "2021-03-02 06:40"
    assert "| 2021-03-02 06:40 |" not in form.body
    assert "## Timeline" in form.body


def test_minimal_documents_show_their_fields():
    pm = parse(MINIMAL_PM)
    form = EditorForm.from_document(pm.kind, pm.front_matter, pm.body, pm.revision)
    assert form.fields["severity"] == "SEV2"
    assert form.fields["started_at"] == "2023-05-02T10:00"
    assert form.fields["started_at_tz"] == "+00:00"
    assert form.fields["services"] == "checkout, cache"
    assert form.rows["action_items"][0]["due"] == "2023-06-01"
    assert form.base_revision == pm.revision
    sig = parse(MINIMAL_SIG)
    form = EditorForm.from_document(sig.kind, sig.front_matter, sig.body)
    assert form.rows["patterns"] == [{"kind": "literal", "value": "cache miss storm", "extra": ""}]
    assert form.examples["examples"] == ["WARN cache miss storm detected"]
    assert form.fields["match"] == "all"


# --------------------------------------------------------------------------------------------
# Fields


def test_date_times_take_the_offset_of_their_zone_select():
    pm = parse(MINIMAL_PM)
    fm, _ = round_trip(pm, started_at="2023-05-02T11:00", started_at_tz="+01:00")
    assert fm["started_at"] == datetime(2023, 5, 2, 10, 0, tzinfo=UTC)
    assert fm["started_at"].utcoffset() == timedelta(hours=1)
    fm, _ = round_trip(pm, detected_at="2023-05-02T15:37", detected_at_tz="+05:30")
    assert fm["detected_at"].isoformat() == "2023-05-02T15:37:00+05:30"


def test_a_bad_zone_or_time_is_an_error_on_that_field():
    pm = parse(MINIMAL_PM)
    with pytest.raises(d.DocumentError) as info:
        round_trip(pm, started_at_tz="Europe/Nowhere", detected_at="yesterday")
    fields = {e.field: e.message for e in info.value.errors}
    assert "UTC offset" in fields["started_at"]
    assert "yesterday" in fields["detected_at"]


def test_resolved_before_start_is_an_error_on_resolved_at():
    pm = parse(MINIMAL_PM)
    with pytest.raises(d.DocumentError) as info:
        round_trip(pm, resolved_at="2023-05-01T09:00")
    assert [e.field for e in info.value.errors] == ["resolved_at"]


@pytest.mark.parametrize("changes, field", [
    ({"title": "   "}, "title"),
    ({"severity": "SEV9"}, "severity"),
    ({"root_cause_category": "gremlins"}, "root_cause_category"),
    ({"related": "PM-1, not-an-id"}, "related"),
    ({"date": "last tuesday"}, "date"),
])
def test_bad_values_are_errors_named_after_their_input(changes, field):
    with pytest.raises(d.DocumentError) as info:
        round_trip(parse(MINIMAL_PM), **changes)
    assert field in [e.field for e in info.value.errors]


def test_lists_split_on_commas_and_chat_links_on_lines():
    fm, _ = round_trip(parse(MINIMAL_PM), services="checkout,  cache\npayments, checkout",
                       chat_links="https://chat.example.com/a,b\n\nhttps://chat.example.com/c")
    assert fm["services"] == ["checkout", "cache", "payments"]
    assert fm["chat_links"] == ["https://chat.example.com/a,b", "https://chat.example.com/c"]


def test_clearing_a_field_removes_it_and_new_fields_go_after_the_old_ones():
    pm = parse(MINIMAL_PM)
    fm, _ = round_trip(pm, tags="", incident_commander="Ana", trigger="A cache flush")
    assert "tags" not in fm
    assert list(fm)[-2:] == ["incident_commander", "trigger"]
    assert list(fm)[:3] == ["id", "title", "status"]


def test_default_values_are_not_added_to_a_file_that_lacks_them():
    sig = d.parse(MINIMAL_SIG.replace("status: active\n", "").encode(), path="signatures/x.md")
    fm, _ = round_trip(sig)
    assert "match" not in fm and "status" not in fm


def test_unknown_fields_go_through_the_yaml_box():
    text = MINIMAL_PM.replace("created: 2023-05-03", "created: 2023-05-03\nteam: payments\n"
                              "review: {by: Ana, on: 2023-05-10}")
    pm = parse(text)
    form = EditorForm.from_document(pm.kind, pm.front_matter, pm.body)
    assert "team: payments" in form.extra_yaml
    assert "review:" in form.extra_yaml
    fm, _ = round_trip(pm)
    assert fm["team"] == "payments" and fm["review"] == {"by": "Ana", "on": "2023-05-10"}
    fm, _ = round_trip(pm, extra_yaml="team: search\ncost_center: 42\n")
    assert fm["team"] == "search" and fm["cost_center"] == 42 and "review" not in fm


def test_yaml_that_does_not_parse_or_repeats_a_field_is_an_error():
    pm = parse(MINIMAL_PM)
    with pytest.raises(d.DocumentError) as info:
        round_trip(pm, extra_yaml="team: [unclosed\n")
    assert info.value.errors[0].field == "extra_yaml"
    with pytest.raises(d.DocumentError) as info:
        round_trip(pm, extra_yaml="severity: SEV1\n")
    assert info.value.errors[0].field == "extra_yaml"
    assert "severity" in info.value.errors[0].message


def test_a_form_with_no_title_reports_it():
    with pytest.raises(d.DocumentError) as info:
        EditorForm.from_form("postmortem", MultiDict({"title": "", "body": "x"})).to_document()
    assert [e.field for e in info.value.errors] == ["title"]


# --------------------------------------------------------------------------------------------
# Rows


def test_action_item_rows_skip_blank_rows_honour_remove_and_keep_unknown_keys():
    text = MINIMAL_PM.replace("    status: open\n", "    status: open\n    id: AI-7\n")
    pm = parse(text)
    form = EditorForm.from_document(pm.kind, pm.front_matter, pm.body)
    data = submitted(form)
    titles = data.getlist("ai_title")
    titles[1] = "Alert on cache hit ratio"
    data.setlist("ai_title", titles)
    fm, _ = EditorForm.from_form("postmortem", data).to_document(pm.front_matter)
    assert fm["action_items"][0]["id"] == "AI-7"
    assert fm["action_items"][1] == {"title": "Alert on cache hit ratio", "status": "open"}
    assert len(fm["action_items"]) == 2

    data.add("ai_remove", "0")
    fm, _ = EditorForm.from_form("postmortem", data).to_document(pm.front_matter)
    assert [i["title"] for i in fm["action_items"]] == ["Alert on cache hit ratio"]


def test_an_action_item_without_a_title_is_an_error():
    pm = parse(MINIMAL_PM)
    data = submitted(EditorForm.from_document(pm.kind, pm.front_matter, pm.body))
    owners = data.getlist("ai_owner")
    owners[1] = "Ben"
    data.setlist("ai_owner", owners)
    with pytest.raises(d.DocumentError) as info:
        EditorForm.from_form("postmortem", data).to_document(pm.front_matter)
    assert info.value.errors[0].field == "action_items"
    assert "title" in info.value.errors[0].message


def test_pattern_rows():
    sig = d.parse(MINIMAL_SIG.replace(
        "    value: cache miss storm\n",
        "    value: cache miss storm\n    case_sensitive: true\n"
        "  - kind: exception\n    type: TimeoutError\n    message: read <*>\n").encode(),
        path="signatures/x.md")
    form = EditorForm.from_document(sig.kind, sig.front_matter, sig.body)
    assert form.rows["patterns"][1]["value"] == "TimeoutError"
    data = submitted(form)
    kinds, values = data.getlist("pat_kind"), data.getlist("pat_value")
    kinds[2], values[2] = "frames", "app.handle\n*\ndb.query\n"
    data.setlist("pat_kind", kinds)
    data.setlist("pat_value", values)
    fm, _ = EditorForm.from_form("signature", data).to_document(sig.front_matter)
    assert fm["patterns"][0] == {"kind": "literal", "value": "cache miss storm",
                                 "case_sensitive": True}
    assert fm["patterns"][1] == {"kind": "exception", "type": "TimeoutError",
                                 "message": "read <*>"}
    assert fm["patterns"][2] == {"kind": "frames", "value": ["app.handle", "*", "db.query"]}


def test_examples_are_kept_verbatim_and_blank_ones_dropped():
    sig = parse(MINIMAL_SIG)
    data = submitted(EditorForm.from_document(sig.kind, sig.front_matter, sig.body))
    data.setlist("example", ["line one\r\n  indented line\r\n", "   ", "second"])
    fm, _ = EditorForm.from_form("signature", data).to_document(sig.front_matter)
    assert fm["examples"] == ["line one\n  indented line\n", "second"]


# --------------------------------------------------------------------------------------------
# Timeline table


BODY = """## Summary
Text.

## Timeline

| Time (UTC) | Event |
|---|---|
| 09:12 | Alert fires |
| 09:20 | Rollback \\| revert |

## Root cause and contributing factors
Because.
"""


def test_timeline_table_out_and_back():
    body, timeline = extract_timeline(BODY)
    assert timeline.rows == [("09:12", "Alert fires"), ("09:20", "Rollback | revert")]
    assert timeline.at == "end"
    assert "| 09:12" not in body
    assert insert_timeline(body, timeline) == BODY


@pytest.mark.parametrize("section", [
    "\n| T | E |\n|---|---|\n| 1 | a |\n\nAll times UTC.\n\n",
    "\nAll times UTC.\n\n| T | E |\n|:--|--:|\n| 1 | a |\n\nSee the channel.\n\n",
    "\n<!-- hint -->\n\n| T | E |\n|---|---|\n| 1 | a |\n\n",
])
def test_the_table_goes_back_where_it_was(section):
    body = f"## Timeline\n{section}## Next\n"
    stripped, timeline = extract_timeline(body)
    assert timeline.rows == [("1", "a")]
    again = insert_timeline(stripped, timeline)
    assert extract_timeline(again)[1].rows == [("1", "a")]
    assert again.replace("|:--|--:|", "|---|---|") == body.replace("|:--|--:|", "|---|---|")


def test_the_last_section_without_a_final_newline():
    body = "## Summary\nx\n\n## Timeline\n\n| T | E |\n|---|---|\n| 1 | a |"
    stripped, timeline = extract_timeline(body)
    assert insert_timeline(stripped, timeline) == body


def test_rows_added_to_a_body_without_a_timeline_section():
    body = "## Summary\nx\n\n## Impact\ny\n\n## Root cause and contributing factors\nz\n"
    out = insert_timeline(body, Timeline(rows=[("09:00", "Deploy")]))
    assert out.index("## Impact") < out.index("## Timeline") < out.index("## Root cause")
    assert "| 09:00 | Deploy |" in out
    assert insert_timeline("", Timeline(rows=[("1", "a")])).startswith("## Timeline\n")


def test_tables_the_rows_cannot_show_stay_in_the_body():
    three = "## Timeline\n\n| T | Who | E |\n|---|---|---|\n| 1 | ana | a |\n"
    body, timeline = extract_timeline(three)
    assert body == three and not timeline.editable and timeline.rows == []
    conflicted = "## Timeline\n\n<<<<<<< yours\n| 1 | a |\n=======\n| 1 | b |\n>>>>>>> current\n"
    body, timeline = extract_timeline(conflicted)
    assert body == conflicted and not timeline.editable
    fenced = "## Summary\n```\n## Timeline\n| T | E |\n|---|---|\n```\n"
    assert extract_timeline(fenced) == (fenced, Timeline())


def test_timeline_rows_from_the_form_and_new_lines_in_cells():
    data = MultiDict([("title", "T"), ("body", "## Timeline\n"), ("tl_time", "09:00"),
                      ("tl_event", "Deploy\nstarts"), ("tl_time", ""), ("tl_event", ""),
                      ("tl_time", "09:05"), ("tl_event", "Pipe | here")])
    fm, body = EditorForm.from_form("postmortem", data).to_document()
    assert "| 09:00 | Deploy starts |" in body
    assert "| 09:05 | Pipe \\| here |" in body
    assert extract_timeline(body)[1].rows == [("09:00", "Deploy starts"), ("09:05", "Pipe | here")]


# --------------------------------------------------------------------------------------------
# Merging


def test_merge_fields_takes_each_sides_own_changes_and_reports_clashes():
    base = {"id": "PM-1", "title": "A", "severity": "SEV2", "tags": ["x"],
            "updated": date(2023, 1, 1)}
    mine = {"id": "PM-1", "title": "A, better", "severity": "SEV1", "tags": ["x"]}
    theirs = {"id": "PM-1", "title": "A", "severity": "SEV3", "tags": ["x", "y"],
              "updated": date(2023, 1, 2), "trigger": "deploy"}
    merged, conflicts = merge_fields(base, mine, theirs)
    assert merged == {"id": "PM-1", "title": "A, better", "severity": "SEV1", "tags": ["x", "y"],
                      "updated": date(2023, 1, 2), "trigger": "deploy"}
    assert conflicts == {"severity": "SEV3"}
    merged, conflicts = merge_fields(None, mine, theirs)
    assert set(conflicts) == {"title", "severity", "tags"}  # mine lacks trigger: theirs kept
    assert merged["trigger"] == "deploy"


def test_conflict_markers_are_recognised_only_as_the_merge_writes_them():
    assert has_conflict_markers("a\n<<<<<<< yours\nb\n=======\nc\n>>>>>>> current\n")
    assert not has_conflict_markers("```\n<<<<<<< HEAD\nb\n>>>>>>> main\n```\n")


def test_offsets_include_unusual_ones_in_order():
    offsets = offsets_for("+00:20", "bad")
    assert offsets.index("+00:00") < offsets.index("+00:20") < offsets.index("+01:00")
    assert "bad" not in offsets and offsets[0] == "-12:00"
