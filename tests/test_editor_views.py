"""The editor pages through the Flask client: new documents, saves, errors, conflicts, CSRF."""

from __future__ import annotations

import html as html_module
import re
from html.parser import HTMLParser

import pytest
from werkzeug.datastructures import MultiDict

from tests.conftest import make_app
from wiki import documents as d
from wiki.store import NotFound

# --------------------------------------------------------------------------------------------
# A browser's view of a form


class _FormParser(HTMLParser):
    """The fields of one form as a browser would submit them (no submit buttons)."""

    def __init__(self, form_id: str):
        super().__init__(convert_charrefs=True)
        self.form_id, self.inside, self.fields = form_id, False, []
        self.textarea = self.select = None
        self.options: list[tuple[str, bool]] = []
        self.action = None

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "form" and a.get("id") == self.form_id:
            self.inside, self.action = True, a.get("action")
        if not self.inside:
            return
        if tag == "input" and a.get("name") and a.get("type") not in ("submit", "button"):
            if a.get("type") in ("checkbox", "radio") and "checked" not in a:
                return
            self.fields.append([a["name"], a.get("value", "")])
        elif tag == "textarea" and a.get("name"):
            self.textarea = [a["name"], ""]
        elif tag == "select" and a.get("name"):
            self.select, self.options = a["name"], []
        elif tag == "option" and self.select:
            self.options.append((a.get("value", ""), "selected" in a))

    def handle_data(self, data):
        if self.textarea is not None:
            self.textarea[1] += data

    def handle_endtag(self, tag):
        if tag == "form" and self.inside:
            self.inside = False
        elif tag == "textarea" and self.textarea is not None:
            name, text = self.textarea
            self.fields.append([name, text[1:] if text.startswith("\n") else text])
            self.textarea = None
        elif tag == "select" and self.select:
            chosen = [v for v, s in self.options if s] or [v for v, _ in self.options[:1]]
            self.fields.append([self.select, chosen[0] if chosen else ""])
            self.select = None


def form_of(html: str, form_id: str = "editor-form") -> MultiDict:
    parser = _FormParser(form_id)
    parser.feed(html)
    assert parser.fields, f"no form #{form_id}"
    return MultiDict(parser.fields)


def edit_form(client, url: str = "/postmortems/PM-1/edit") -> MultiDict:
    response = client.get(url)
    assert response.status_code == 200, response.get_data(as_text=True)[:500]
    return form_of(response.get_data(as_text=True))


def set_field(data: MultiDict, name: str, value: str, index: int = 0) -> MultiDict:
    values = data.getlist(name)
    values[index] = value
    data.setlist(name, values)
    return data


def html_of(response) -> str:
    return response.get_data(as_text=True)


@pytest.fixture
def wiki(app):
    return app.extensions["wiki"]


@pytest.fixture
def csrf_app(content_dir, tmp_path):
    return make_app(content_dir, tmp_path / "data", WTF_CSRF_ENABLED=True)


# --------------------------------------------------------------------------------------------
# New documents


def test_new_page_offers_every_template_and_is_linked_from_header_and_home(client):
    html = html_of(client.get("/new"))
    for name in ("postmortem-full", "postmortem-short", "postmortem-security", "signature"):
        assert f'value="{name}"' in html
    home = html_of(client.get("/"))
    assert 'href="/new"' in home and "New postmortem" in home
    assert 'class="site-nav__new" href="/new"' in html_of(client.get("/postmortems/"))


def test_new_postmortem_from_a_template_is_a_draft_and_opens_the_editor(client, wiki):
    response = client.post("/new", data={"template": "postmortem-security",
                                         "title": "Leaked token in build logs"})
    assert response.status_code == 303
    assert response.headers["Location"] == "/postmortems/PM-2/edit"
    doc = wiki.get("PM-2")
    assert doc.status == "draft" and doc.title == "Leaked token in build logs"
    assert "## Disclosure and notification" in doc.body
    assert doc.tags == ["security"]
    html = html_of(client.get(response.headers["Location"]))
    assert "Created PM-2 as a draft" in html
    assert 'value="Leaked token in build logs"' in html


def test_a_team_template_overrides_the_default(client, content_dir, wiki):
    (content_dir / ".templates").mkdir()
    (content_dir / ".templates" / "postmortem-short.md").write_text("## Our own section\n")
    client.post("/new", data={"template": "postmortem-short", "title": "X"})
    assert wiki.get("PM-2").body.startswith("## Our own section")


def test_new_without_a_title_keeps_the_choice_and_says_why(client, wiki):
    response = client.post("/new", data={"template": "postmortem-short", "title": "  "})
    assert response.status_code == 422
    html = html_of(response)
    assert "Give it a title" in html
    assert 'value="postmortem-short" checked' in html
    with wiki.session() as s:
        from wiki import db
        assert db.counts(s)["postmortem"] == 1


def test_new_signature_opens_an_unsaved_editor(client, wiki):
    response = client.post("/new", data={"template": "signature", "title": "Disk full"})
    assert response.status_code == 303
    assert response.headers["Location"].startswith("/new/signature?")
    html = html_of(client.get(response.headers["Location"]))
    assert 'value="Disk full"' in html and "Not saved yet" in html
    with pytest.raises(NotFound):
        wiki.get("SIG-2")


def test_signature_prefilled_from_the_matcher_is_created_only_when_saved(client, wiki):
    url = ("/new/signature?patterns=ERROR+disk+<path>+full&patterns=retry+<num>"
           "&examples=ERROR+disk+/var+full%0Aretry+3")
    data = edit_form(client, url)
    assert data.getlist("pat_value")[:2] == ["ERROR disk <path> full", "retry <num>"]
    assert data.getlist("pat_kind")[:2] == ["template", "template"]
    assert data.getlist("example")[0] == "ERROR disk /var full\nretry 3"
    with pytest.raises(NotFound):
        wiki.get("SIG-2")

    data["title"] = "Disk full on the log volume"
    response = client.post(url, data=data)
    assert response.status_code == 303, html_of(response)[:2000]
    doc = wiki.get("SIG-2")
    assert doc.front_matter["patterns"][0] == {"kind": "template",
                                               "value": "ERROR disk <path> full"}
    assert doc.front_matter["examples"] == ["ERROR disk /var full\nretry 3"]
    assert "## How to recognise it" in doc.body


# --------------------------------------------------------------------------------------------
# The editor


def test_editor_shows_every_field(client):
    html = html_of(client.get("/postmortems/PM-1/edit"))
    assert '<form id="editor-form"' in html
    assert '<textarea id="body" name="body"' in html
    for hook in ('id="preview"', 'id="hints" aria-live="polite"', 'id="editor-tools"',
                 'id="timeline-rows"', "js/editor.js", "js/hints.js", "js/chat-timeline.js",
                 "js/upload.js"):
        assert hook in html
    assert html.index("js/editor.js") < html.index("js/hints.js")
    data = form_of(html)
    assert data["severity"] == "SEV2" and data["status"] == "published"
    assert data["started_at"] == "2023-05-02T10:00" and data["started_at_tz"] == "+00:00"
    assert data["root_cause_category"] == "capacity" and data["detection"] == "alert"
    assert data.getlist("ai_title")[0] == "Warm the cache before a flush"
    assert data["base_revision"] and data["kind"] == "postmortem"
    assert '<option value="checkout">' in html  # services datalist
    assert 'type="datetime-local"' in html


def test_edit_link_on_the_document_page(client):
    for page, edit in (("/postmortems/PM-1", "/postmortems/PM-1/edit"),
                       ("/signatures/SIG-1", "/signatures/SIG-1/edit")):
        assert f'href="{edit}"' in html_of(client.get(page, follow_redirects=True))


def test_editor_of_an_unknown_document_is_404(client):
    assert client.get("/postmortems/PM-99/edit").status_code == 404
    assert client.get("/pm-1/edit").status_code == 404
    assert client.get("/signatures/PM-1/edit").status_code == 301


def test_save_writes_a_revision_with_author_and_message_and_is_searchable(app, client, wiki):
    data = edit_form(client)
    data["title"] = "Checkout latency after a cache flush"
    data["body"] = data["body"] + "\n## Lessons learned\nZanzibar warmups matter.\n"
    set_field(data, "tl_time", "10:00")
    set_field(data, "tl_event", "Cache flushed by the weekly job")
    set_field(data, "ai_title", "Page on cache hit ratio", 1)
    set_field(data, "ai_owner", "Ben", 1)
    set_field(data, "ai_due", "2023-07-01", 1)
    data["message"] = "Timeline and a second action"
    data["author"] = "Ana Lima"
    response = client.post("/postmortems/PM-1/edit", data=data)
    assert response.status_code == 303
    assert response.headers["Location"].startswith("/postmortems/PM-1/")
    doc = wiki.get("PM-1")
    assert doc.title == "Checkout latency after a cache flush"
    assert "| 10:00 | Cache flushed by the weekly job |" in doc.section("Timeline")
    assert doc.front_matter["action_items"][1]["owner"] == "Ben"
    newest = app.extensions["history"].list("PM-1")[0]
    assert newest.message == "Timeline and a second action"
    assert newest.author.startswith("Ana Lima")
    assert "PM-1" in html_of(client.get("/search?q=Zanzibar"))
    # the name is remembered for the next edit
    assert form_of(html_of(client.get("/postmortems/PM-1/edit")))["author"] == "Ana Lima"


def test_saved_page_tells_the_browser_to_forget_the_draft(client):
    data = edit_form(client)
    key = f"wiki-draft:PM-1:{data['base_revision']}"
    assert data["draft_key"] == key
    response = client.post("/postmortems/PM-1/edit", data=data, follow_redirects=True)
    html = html_of(response)
    assert f'data-clear-draft="{key}"' in html
    assert "Saved PM-1" in html and "js/drafts.js" in html


def test_an_unchanged_form_changes_only_the_updated_date(client, wiki):
    before = wiki.get("PM-1")
    client.post("/postmortems/PM-1/edit", data=edit_form(client))
    after = wiki.get("PM-1")
    assert after.body == before.body
    assert {k: v for k, v in after.front_matter.items() if k != "updated"} == \
        {k: v for k, v in before.front_matter.items() if k != "updated"}


def test_ctrl_s_saves_and_comes_back_to_the_editor(client):
    data = edit_form(client)
    data["action"] = "save-continue"
    response = client.post("/postmortems/PM-1/edit", data=data)
    assert response.headers["Location"] == "/postmortems/PM-1/edit"


def test_signature_editor_saves_patterns_and_examples(client, wiki):
    data = edit_form(client, "/signatures/SIG-1/edit")
    set_field(data, "pat_kind", "regex", 1)
    set_field(data, "pat_value", r"miss storm \d+", 1)
    set_field(data, "example", "WARN cache miss storm detected\nWARN again")
    data["match"] = "any"
    assert client.post("/signatures/SIG-1/edit", data=data).status_code == 303
    fm = wiki.get("SIG-1").front_matter
    assert fm["patterns"][1] == {"kind": "regex", "value": r"miss storm \d+"}
    assert fm["examples"] == ["WARN cache miss storm detected\nWARN again"]
    assert fm["match"] == "any"


# --------------------------------------------------------------------------------------------
# Without JavaScript: preview and more rows re-render the form


def test_preview_button_renders_the_text_and_keeps_everything(client, wiki):
    data = edit_form(client)
    data["body"] = "## Summary\nSee [[SIG-1]] and <script>alert(1)</script>**bold**\n"
    data["title"] = "Typed, not saved"
    set_field(data, "tl_time", "09:12")
    set_field(data, "tl_event", "Alert fires")
    data["action"] = "preview"
    response = client.post("/postmortems/PM-1/edit", data=data)
    assert response.status_code == 200
    html = html_of(response)
    assert "<strong>bold</strong>" in html and "<script>alert(1)" not in html
    assert 'href="/signatures/SIG-1/' in html
    assert "<td>Alert fires</td>" in html
    assert 'value="Typed, not saved"' in html
    assert wiki.get("PM-1").title == "Checkout latency after cache flush"


def test_add_more_rows_button(client):
    data = edit_form(client)
    shown = len(data.getlist("ai_title"))
    data["action"] = "add-ai"
    html = html_of(client.post("/postmortems/PM-1/edit", data=data))
    assert len(form_of(html).getlist("ai_title")) == shown + 3


def test_remove_checkbox_drops_a_row(client, wiki):
    data = edit_form(client)
    data.add("ai_remove", "0")
    client.post("/postmortems/PM-1/edit", data=data)
    assert "action_items" not in wiki.get("PM-1").front_matter


def test_preview_endpoint(client):
    response = client.post("/preview", data={"kind": "postmortem", "body": "# Hi\n\n[[PM-1]]",
                                             "tl_time": "1", "tl_event": "a"})
    assert response.status_code == 200
    html = html_of(response)
    assert "<h1" in html and 'href="/postmortems/PM-1/' in html and "<td>a</td>" in html
    assert client.post("/preview", data={"kind": "nope"}).status_code == 400
    empty = html_of(client.post("/preview", data={"kind": "signature", "body": ""}))
    assert "Nothing to preview" in empty


# --------------------------------------------------------------------------------------------
# Bad input: errors next to the field, nothing typed lost


@pytest.mark.parametrize("changes, field, words", [
    ({"title": ""}, "title", "missing"),
    ({"resolved_at": "2023-05-01T09:00"}, "resolved_at", "is before"),
    ({"severity": "SEV9"}, "severity", "not one of"),
])
def test_rejected_save_shows_the_error_by_its_field_and_keeps_the_text(client, wiki, changes,
                                                                        field, words):
    data = edit_form(client)
    data["body"] = "## Summary\nA paragraph typed before the error.\n"
    for key, value in changes.items():
        data[key] = value
    response = client.post("/postmortems/PM-1/edit", data=data)
    assert response.status_code == 422
    html = html_of(response)
    match = re.search(rf'<p class="field__error" id="e-{field}">([^<]*)</p>', html)
    assert match and words in match.group(1)
    assert 'aria-invalid="true"' in html and "Not saved" in html
    assert "A paragraph typed before the error." in html
    again = form_of(html)
    for key, value in changes.items():
        assert again[key] == value
    assert wiki.get("PM-1").body != data["body"]


def test_a_20_mb_body_is_refused_with_a_clear_message_and_kept(client, wiki):
    data = edit_form(client)
    data["body"] = "x" * (20 * 1024 * 1024)
    response = client.post("/postmortems/PM-1/edit", data=data)
    assert response.status_code == 422
    html = html_of(response)
    assert "the limit is 2,000,000 bytes (WIKI_MAX_FILE_BYTES)" in html
    assert "x" * (20 * 1024 * 1024) in html
    assert wiki.get("PM-1").body.startswith("## Summary")


def test_a_request_over_the_limit_gets_413_with_a_clear_message(content_dir, tmp_path):
    app = make_app(content_dir, tmp_path / "data", MAX_REQUEST_BYTES=1024 * 1024)
    client = app.test_client()
    data = edit_form(client)
    data["body"] = "x" * (2 * 1024 * 1024)
    response = client.post("/postmortems/PM-1/edit", data=data)
    assert response.status_code == 413
    html = html_of(response)
    assert "limit of 1,048,576 bytes" in html and "WIKI_MAX_REQUEST_BYTES" in html
    assert "draft in this browser" in html


def test_a_form_without_its_base_revision_is_not_saved(client, wiki):
    data = edit_form(client)
    data["base_revision"] = ""
    data["title"] = "Blind overwrite"
    response = client.post("/postmortems/PM-1/edit", data=data)
    assert response.status_code == 400
    assert "Blind overwrite" in html_of(response)
    assert wiki.get("PM-1").title != "Blind overwrite"


# --------------------------------------------------------------------------------------------
# Conflicts


def _someone_else_saves(wiki, **fm_changes):
    doc = wiki.get("PM-1")
    body = doc.body.replace("for 23 minutes", "for 25 minutes")
    return wiki.update("PM-1", {**doc.front_matter, **fm_changes}, body, doc.revision,
                       author="Bo <bo@example.com>", message="Fix the duration")


def test_stale_save_gets_the_conflict_view_with_both_versions(client, wiki):
    data = edit_form(client)
    old_base = data["base_revision"]
    data["body"] = data["body"].replace("A cache flush", "A scheduled cache flush")
    data["severity"] = "SEV1"
    theirs = _someone_else_saves(wiki, severity="SEV3", trigger="weekly job")

    response = client.post("/postmortems/PM-1/edit", data=data)
    assert response.status_code == 409
    html = html_of(response)
    assert "was saved by someone else while you were editing" in html
    assert "Bo" in html and "Fix the duration" in html
    mine = re.search(r'<textarea id="conflict-mine"[^>]*>\n(.*?)</textarea>', html, re.S).group(1)
    current = re.search(r'<textarea id="conflict-theirs"[^>]*>\n(.*?)</textarea>', html,
                        re.S).group(1)
    assert "A scheduled cache flush" in mine and "for 23 minutes" in mine
    assert "for 25 minutes" in current and "A scheduled cache flush" not in current
    assert "diff--insert" in html  # the diff

    merged = form_of(html)
    assert merged["base_revision"] == theirs.revision
    assert merged["previous_draft_key"] == f"wiki-draft:PM-1:{old_base}"
    assert "A scheduled cache flush" in merged["body"] and "for 25 minutes" in merged["body"]
    assert merged["severity"] == "SEV1"  # both changed it: the form keeps mine …
    assert "field__conflict" in html and "SEV3" in html  # … and shows theirs beside it
    assert merged["trigger"] == "weekly job"  # only they changed it

    assert client.post("/postmortems/PM-1/edit", data=merged).status_code == 303
    saved = wiki.get("PM-1")
    assert "A scheduled cache flush" in saved.body and "for 25 minutes" in saved.body


def test_overlapping_edits_are_marked_and_must_be_settled_before_saving(client, wiki):
    data = edit_form(client)
    data["body"] = data["body"].replace("for 23 minutes", "for 24 minutes")
    _someone_else_saves(wiki)
    html = html_of(client.post("/postmortems/PM-1/edit", data=data))
    merged = form_of(html)
    assert "<<<<<<< yours" in merged["body"] and ">>>>>>> current" in merged["body"]

    response = client.post("/postmortems/PM-1/edit", data=merged)
    assert response.status_code == 422
    assert "still has conflict blocks" in html_of(response)

    merged["body"] = re.sub(r"<<<<<<< yours\n(.*?)=======\n.*?>>>>>>> current\n", r"\1",
                            merged["body"], flags=re.S)
    assert client.post("/postmortems/PM-1/edit", data=merged).status_code == 303
    assert "for 24 minutes" in wiki.get("PM-1").body


def test_editing_a_deleted_document_shows_the_text_to_keep(client, wiki):
    data = edit_form(client)
    data["body"] = "## Summary\nWords that must not be lost.\n"
    wiki.delete("PM-1")
    response = client.post("/postmortems/PM-1/edit", data=data)
    assert response.status_code == 410
    html = html_of(response)
    assert "was deleted while you were editing it" in html
    assert "Words that must not be lost." in html

    text = re.search(r'<textarea id="deleted-text" name="text"[^>]*>\n(.*?)</textarea>', html,
                     re.S).group(1)
    response = client.post("/new/from-text", data={"kind": "postmortem",
                                                   "text": html_module.unescape(text)})
    assert response.status_code == 303
    new_id = response.headers["Location"].split("/")[2]
    assert "Words that must not be lost." in wiki.get(new_id).body


# --------------------------------------------------------------------------------------------
# Review workflow


def test_draft_to_review_to_published(client, wiki):
    client.post("/new", data={"template": "postmortem-short", "title": "Queue backlog"})
    data = edit_form(client, "/postmortems/PM-2/edit")
    assert "Save and ask for review" in html_of(client.get("/postmortems/PM-2/edit"))
    data["action"] = "submit-review"
    client.post("/postmortems/PM-2/edit", data=data)
    assert wiki.get("PM-2").status == "in-review"
    home = html_of(client.get("/"))
    assert "Waiting for review" in home and "Queue backlog" in home

    html = html_of(client.get("/postmortems/PM-2/edit"))
    assert "Publish" in html and "Back to draft" in html
    data = form_of(html)
    data["action"] = "publish"
    client.post("/postmortems/PM-2/edit", data=data)
    assert wiki.get("PM-2").status == "published"
    assert "Publish" in [r.message for r in client.application.extensions["history"].list("PM-2")]


# --------------------------------------------------------------------------------------------
# CSRF


def test_every_form_carries_a_csrf_token_and_a_save_needs_it(csrf_app):
    client = csrf_app.test_client()
    for url in ("/new", "/postmortems/PM-1/edit", "/new/signature"):
        assert 'name="csrf_token" value="' in html_of(client.get(url)), url
    data = edit_form(client)
    token = data.pop("csrf_token")
    data["title"] = "Forged title"
    response = client.post("/postmortems/PM-1/edit", data=data)
    assert response.status_code == 400
    html = html_of(response)
    assert "could not be accepted" in html and 'value="Forged title"' in html  # nothing lost
    assert csrf_app.extensions["wiki"].get("PM-1").title != "Forged title"

    data["csrf_token"] = token
    assert client.post("/postmortems/PM-1/edit", data=data).status_code == 303
    assert client.post("/new", data={"template": "postmortem-short", "title": "x"}
                       ).status_code == 400


def test_restore_form_works_with_csrf(csrf_app):
    client = csrf_app.test_client()
    wiki = csrf_app.extensions["wiki"]
    first = wiki.get("PM-1")
    data = edit_form(client)
    data["title"] = "Renamed"
    client.post("/postmortems/PM-1/edit", data=data)
    url = f"/postmortems/PM-1/revisions/{first.revision}"
    html = html_of(client.get(url))
    restore = form_of(html.replace('class="restore-form"', 'id="restore" class="restore-form"'),
                      "restore")
    assert restore.get("csrf_token")
    assert client.post(f"{url}/restore", data={"base_revision": restore["base_revision"]}
                       ).status_code == 400
    assert client.post(f"{url}/restore", data=restore).status_code == 303
    assert wiki.get("PM-1").title == first.title


def test_api_writes_need_no_csrf_token(csrf_app):
    client = csrf_app.test_client()
    response = client.post("/api/v1/documents", json={"kind": "postmortem",
                                                      "front_matter": {"title": "From a script"}})
    assert response.status_code == 201


def test_csrf_is_off_in_plain_test_apps_and_forms_then_have_no_token_field(client):
    assert 'name="csrf_token"' not in html_of(client.get("/postmortems/PM-1/edit"))


def test_documents_still_validate_like_files():
    # The editor's errors are the documents' own: same messages as `wiki check`.
    with pytest.raises(d.DocumentError) as info:
        d.new_document("postmortem", {"id": "PM-1", "title": "x", "severity": "SEV9"})
    assert info.value.errors[0].field == "severity"
