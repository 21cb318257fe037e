"""The chat sub-commands and cards without any chat (wiki/chat/commands.py, wiki/chat/cards.py)."""

from __future__ import annotations

from datetime import date

import pytest

from wiki import documents as d
from wiki.chat import commands as c
from wiki.chat.cards import make_card, plain, shorten


@pytest.fixture
def backend(app):
    with app.test_request_context(base_url="https://wiki.example.com"):
        from wiki.chat import backend as make

        yield make()


@pytest.mark.parametrize("text, expected", [
    ("", ("help", "")),
    ("  help ", ("help", "")),
    ("HELP", ("help", "")),
    ("search  dns  timeout", ("search", "dns  timeout")),
    ("find x", ("search", "x")),
    ("seen line one\nline two\n", ("seen", "line one\nline two\n")),
    ("match boom", ("seen", "boom")),
    ("new Payments down", ("new", "Payments down")),
    ("pm-7", ("id", "PM-7")),
    ("SIG-3.", ("id", "SIG-3")),
    ("PM-0", ("unknown", "PM-0")),
    ("frobnicate x", ("unknown", "frobnicate")),
])
def test_parse(text, expected):
    assert c.parse(text) == expected


def test_cap_paste():
    assert c.cap_paste("short") == ("short", None)
    text = ("x" * 99 + "\n") * 500  # 50,000 characters
    cut, note = c.cap_paste(text)
    assert len(cut) <= c.MAX_SEEN_CHARS and cut.endswith("x")
    assert "50,000" in note and "40,000" in note
    one_line = "y" * 50_000
    assert len(c.cap_paste(one_line)[0]) == c.MAX_SEEN_CHARS


def test_every_answer_kind(backend):
    inv = lambda text: c.Invocation(text=text, user_name="ana")  # noqa: E731
    assert isinstance(c.run(inv("help"), backend), c.HelpAnswer)
    assert isinstance(c.run(inv("nope"), backend), c.HelpAnswer)
    search = c.run(inv("search checkout"), backend)
    assert isinstance(search, c.SearchAnswer) and search.items[0].id == "PM-1"
    assert search.items[0].url == \
        "https://wiki.example.com/postmortems/PM-1/checkout-latency-after-cache-flush"
    assert any(marked for _, marked in search.items[0].snippet)
    seen = c.run(inv("seen WARN cache miss storm detected"), backend)
    assert isinstance(seen, c.SeenAnswer) and seen.matches[0].id == "SIG-1"
    assert seen.matches[0].incidents[0].id == "PM-1"
    assert seen.matches[0].evidence == [(1, "WARN cache miss storm detected")]
    card = c.run(inv("SIG-1"), backend)
    assert isinstance(card, c.CardAnswer) and card.card.looks_like
    assert isinstance(c.run(inv("PM-5"), backend), c.ProblemAnswer)
    new = c.run(c.Invocation(text="new Disk full", channel_link="https://chat/x"), backend)
    assert isinstance(new, c.NewAnswer)
    assert new.edit_url == "https://wiki.example.com/postmortems/PM-2/edit"


def test_seen_without_the_similar_index_falls_back_to_search(backend):
    backend.similar = None
    backend.wiki.create("postmortem", {"title": "Resets"},
                        "## Summary\nWe saw ECONNRESET from the payments proxy.\n")
    seen = c.seen("error: read ECONNRESET while talking to upstream", backend)
    assert [s.id for s in seen.similar] == ["PM-2"]


def test_a_failing_similar_index_leaves_a_note(backend):
    class Broken:
        def similar(self, **kwargs):
            raise RuntimeError("boom")

    backend.similar = Broken()
    seen = c.seen("WARN cache miss storm detected", backend)
    assert seen.matches and "could not be looked up" in " ".join(seen.notes)


def test_shared_answers(backend):
    assert isinstance(c.shared_answer("card\nPM-1", backend), c.CardAnswer)
    assert isinstance(c.shared_answer("search\ncache", backend), c.SearchAnswer)
    listed = c.shared_answer("seen\nSIG-1 confirmed\nPM-1 similar\nPM-99 similar\nbogus x",
                             backend)
    assert [(r.id, r.note) for r in listed.refs] == [
        ("SIG-1", "known signature: confirmed"), ("PM-1", "similar incident")]
    assert c.shared_answer("card\nnot-an-id", backend) is None
    assert c.shared_answer("rm -rf", backend) is None


def test_share_values_fit_a_slack_button(backend):
    answer = c.search("word " * 1000, backend)
    assert len(answer.share) <= c.MAX_SHARE_CHARS


# --------------------------------------------------------------------------------------------
# Cards


def test_plain_and_shorten():
    assert plain("See [[PM-7]] and [[SIG-2|the stampede]], [docs](https://x) **now** _x_ `y`"
                 " <b>z</b> 7*7 snake_case_name") == \
        "See PM-7 and the stampede, docs now x y z 7*7 snake_case_name"
    assert shorten("a b c d e f", 7) == "a b c…"
    assert shorten("  many   spaces  ", 50) == "many spaces"


def test_a_postmortem_card():
    doc = d.new_document(d.POSTMORTEM, {
        "id": "PM-3", "title": "T", "severity": "SEV1", "status": "published",
        "date": date(2024, 5, 1), "started_at": "2024-05-01T10:00:00Z",
        "resolved_at": "2024-05-01T12:30:00Z", "services": ["a", "b"],
        "root_cause_category": "deploy"}, "## Summary\nIt **broke**.\n\nMore.\n")
    card = make_card(doc, "https://w/p", "https://w/PM-3")
    assert card.summary == "It broke."
    assert dict(card.facts) == {"Severity": "SEV1", "Status": "published", "Date": "2024-05-01",
                                "Time to resolve": "2 h 30 min", "Root cause": "deploy",
                                "Services": "a, b"}
    assert card.description() == "SEV1 · published · a, b — It broke."


def test_a_signature_card_looks_like_its_first_example_or_pattern():
    doc = d.new_document(d.SIGNATURE, {
        "id": "SIG-4", "title": "S", "patterns": [{"kind": "regex", "value": "x+y"}],
        "incidents": ["PM-1"]}, "")
    assert make_card(doc, "u", "s").looks_like == "/x+y/"
    doc.front_matter["examples"] = ["\n  first line  \nsecond"]
    card = make_card(doc, "u", "s")
    assert card.looks_like == "first line"
    assert ("Incidents", "PM-1") in card.facts
