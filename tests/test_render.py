"""wiki.render: Markdown features, links between documents, sanitising, formatting helpers."""

from __future__ import annotations

import re
import time
from datetime import UTC, date, datetime, timedelta, timezone

import pytest
from markupsafe import Markup

from wiki.render import (
    clean_html,
    format_date,
    format_duration,
    mentioned_ids,
    plain_text,
    render_markdown,
)

DOCS = {
    "PM-1": ("/postmortems/PM-1/checkout-latency", "Checkout latency <after> flush"),
    "SIG-3": ("/signatures/SIG-3/cache-stampede", "Cache stampede"),
}


def resolve(ident: str):
    return DOCS.get(ident)


def html_of(text: str) -> str:
    return str(render_markdown(text, resolve).html)


# -------------------------------------------------------------------------------- Markdown


def test_returns_markup_and_toc():
    rendered = render_markdown("## Summary\n\ntext\n\n### Détails & more\n\nmore\n")
    assert isinstance(rendered.html, Markup)
    assert [(level, title) for level, _, title in rendered.toc] == [
        (2, "Summary"), (3, "Détails & more")]
    for _, anchor, _ in rendered.toc:
        assert f'id="{anchor}"' in rendered.html
        assert f'href="#{anchor}"' in rendered.html  # the permalink survives the sanitiser


def test_heading_ids_are_unique():
    rendered = render_markdown("## Timeline\n\n## Timeline\n")
    ids = [anchor for _, anchor, _ in rendered.toc]
    assert len(set(ids)) == 2


def test_fenced_code_is_highlighted():
    html = html_of("```python\ndef f():\n    return 1\n```\n")
    assert 'class="highlight"' in html
    assert '<span class="k">def</span>' in html  # Pygments token classes survive


def test_code_without_language_is_not_guessed():
    html = html_of("```\nSELECT 1;\n```\n")
    assert 'class="highlight"' in html
    assert '<span class="k">' not in html


def test_table():
    html = html_of("| Time | Event |\n|:--|--:|\n| 10:00 | start |\n")
    assert "<table>" in html and "<th" in html and "<td" in html
    assert 'align="right"' in html
    assert "style=" not in html


def test_task_list_checkboxes():
    html = html_of("- [x] done\n- [ ] open\n")
    boxes = re.findall(r"<input[^>]*>", html)
    assert len(boxes) == 2
    assert all('type="checkbox"' in b and "disabled" in b for b in boxes)
    assert "checked" in boxes[0] and "checked" not in boxes[1]


def test_sane_lists_keep_ordered_and_unordered_apart():
    html = html_of("1. one\n2. two\n\n- a\n- b\n")
    assert "<ol>" in html and "<ul>" in html


def test_empty_text():
    rendered = render_markdown("")
    assert rendered.html == "" and rendered.toc == ()


# -------------------------------------------------------------------------------- links


def test_wiki_link_resolves_with_title():
    html = html_of("See [[PM-1]].")
    assert '<a class="wikilink" href="/postmortems/PM-1/checkout-latency"' in html
    assert 'title="Checkout latency &lt;after&gt; flush"' in html
    assert ">PM-1</a>" in html


def test_wiki_link_with_label_and_lowercase_id():
    html = html_of("See [[pm-1|the checkout one]].")
    assert 'href="/postmortems/PM-1/checkout-latency"' in html
    assert ">the checkout one</a>" in html


def test_bare_ids_are_linked():
    html = html_of("Same bug as PM-1, recorded as SIG-3.")
    assert 'href="/postmortems/PM-1/checkout-latency"' in html
    assert 'href="/signatures/SIG-3/cache-stampede"' in html


def test_unknown_wiki_link_is_marked_missing():
    html = html_of("See [[PM-404]] and [[no such page]].")
    assert '<span class="missing-link" title="No document PM-404">PM-404</span>' in html
    assert ">no such page</span>" in html
    assert "PM-404</a>" not in html


def test_unknown_bare_id_stays_text():
    html = html_of("Maybe PM-404 is related.")
    assert "<a" not in html and "PM-404" in html


def test_ids_in_code_are_not_linked():
    html = html_of("Inline `PM-1` here.\n\n```\nPM-1 [[SIG-3]]\n```\n\n    SIG-3 indented\n")
    assert "wikilink" not in html
    assert "missing-link" not in html


def test_ids_inside_links_and_words_are_not_linked():
    html = html_of("[about PM-1](https://example.com) and XPM-1 and PM-1x and /PM-1/")
    assert html.count("<a") == 1


def test_ids_in_headings_link_and_toc_title_is_plain():
    rendered = render_markdown("## Follow-up to PM-1\n", resolve)
    assert "wikilink" in rendered.html
    assert rendered.toc[0].title == "Follow-up to PM-1"


def test_without_resolver_nothing_is_linked():
    html = str(render_markdown("PM-1 and [[PM-1]]").html)
    assert "wikilink" not in html and "missing-link" in html


def test_links_lists_resolved_ids():
    rendered = render_markdown("PM-1 [[SIG-3]] PM-404 PM-1", resolve)
    assert sorted(rendered.links) == ["PM-1", "SIG-3"]


def test_mentioned_ids():
    assert mentioned_ids("PM-1, [[sig-3|x]], [[nope]], `PM-9`") == ["PM-1", "PM-9", "SIG-3"]


def test_cache_follows_link_changes():
    before = str(render_markdown("See PM-7.", lambda i: None).html)
    after = str(render_markdown("See PM-7.", lambda i: ("/pm-7", "Seven")).html)
    assert "<a" not in before and 'href="/pm-7"' in after


# -------------------------------------------------------------------------------- sanitising

HOSTILE = [
    "<script>alert(1)</script>",
    "<SCRIPT SRC=//evil.example/x.js></SCRIPT>",
    '<img src="x" onerror="alert(1)">',
    '<a href="javascript:alert(1)">click</a>',
    "[click](javascript:alert(1))",
    "[click](JaVaScRiPt:alert(1))",
    "[click](data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==)",
    "![x](javascript:alert(1))",
    '<iframe src="https://evil.example"></iframe>',
    '<p style="background:url(javascript:alert(1))">styled</p>',
    "<style>body{display:none}</style>",
    '<form action="https://evil.example"><input type="text" name="q"><button>go</button></form>',
    '<svg onload="alert(1)"><circle r="1"/></svg>',
    '<div onclick="alert(1)" onmouseover="alert(2)">hover</div>',
    '<object data="x.swf"></object><embed src="x.swf">',
    '<meta http-equiv="refresh" content="0;url=https://evil.example">',
    '<base href="https://evil.example/">',
    '<input type="checkbox" onfocus="alert(1)" autofocus>',
    "<!--[if IE]><script>alert(1)</script><![endif]-->",
]


@pytest.mark.parametrize("text", HOSTILE)
def test_hostile_markup_is_removed(text):
    html = html_of(f"Intro\n\n{text}\n\nOutro").lower()
    assert "<script" not in html
    assert not re.search(r"<[^>]*\son\w+\s*=", html), html
    assert "javascript:" not in html
    assert "data:text" not in html
    assert "style=" not in html
    for tag in ("<iframe", "<form", "<svg", "<object", "<embed", "<meta", "<base", "<button",
                "<style"):
        assert tag not in html, (tag, html)


def test_inputs_other_than_checkboxes_are_dropped():
    html = clean_html('<input type="text" value="x"><input type="checkbox" checked>')
    assert 'type="text"' not in html
    assert '<input type="checkbox" checked="" disabled="disabled">' in html


def test_safe_urls_survive_and_links_get_rel():
    html = html_of("[a](https://example.com/x?y=1) [b](/postmortems/) [c](#timeline) "
                   "[d](mailto:a@example.com)")
    for href in ("https://example.com/x?y=1", "/postmortems/", "#timeline", "mailto:a@example.com"):
        assert f'href="{href}"' in html
    assert html.count('rel="noopener noreferrer"') == 4


def test_harmless_raw_html_is_kept_and_text_is_escaped():
    html = html_of("Press <kbd>Ctrl</kbd> then 1 < 2 & 3 > 2")
    assert "<kbd>Ctrl</kbd>" in html
    assert "1 &lt; 2 &amp; 3 &gt; 2" in html


def test_ids_only_on_headings():
    html = clean_html('<h2 id="x">t</h2><div id="main" class="highlight">d</div>')
    assert '<h2 id="x">' in html
    assert 'id="main"' not in html and 'class="highlight"' in html


# -------------------------------------------------------------------------------- speed


def test_render_is_fast():
    section = ("## Timeline\n\n| Time | Event |\n|---|---|\n| 10:00 | PM-1 started |\n\n"
               "Some *text* with `code` and [[SIG-3]].\n\n"
               "```python\nprint('x')\n```\n\n- [ ] task\n\n")
    text = section * 6
    started = time.perf_counter()
    for n in range(20):
        render_markdown(text + f"\n<!-- {n} -->", resolve)  # distinct texts: no cache hits
    per_doc = (time.perf_counter() - started) / 20
    assert per_doc < 0.05, f"{per_doc * 1000:.1f} ms per document"


# -------------------------------------------------------------------------------- formatting


@pytest.mark.parametrize(("value", "expected"), [
    (timedelta(minutes=7), "7 min"),
    (timedelta(hours=1, minutes=23), "1 h 23 min"),
    (timedelta(hours=2), "2 h"),
    (timedelta(days=1, hours=4, minutes=10), "1 d 4 h"),
    (45, "45 s"),
    (0, "0 s"),
    (None, ""),
    (timedelta(minutes=-5), "-5 min"),
])
def test_format_duration(value, expected):
    assert format_duration(value) == expected


def test_format_date():
    stamp = datetime(2023, 5, 2, 10, 7, tzinfo=UTC)
    assert format_date(date(2023, 5, 2)) == "2 May 2023"
    assert format_date("2023-05-02") == "2 May 2023"
    assert format_date(stamp, "datetime") == "2 May 2023 10:07 UTC"
    in_paris = stamp.astimezone(timezone(timedelta(hours=2)))
    assert format_date(in_paris, "datetime") == "2 May 2023 12:07 UTC+02:00"
    assert format_date(stamp, "time") == "10:07"
    assert format_date("not a date") == "not a date"
    assert format_date(None) == ""


def test_plain_text_excerpt():
    text = "A `code` and **bold** [link](https://x.example) <b>x</b>"
    assert plain_text(text) == "A code and bold link x"
    assert plain_text("word " * 50, limit=20).endswith("…")


def test_relative_urls_with_control_characters_are_dropped():
    html = html_of("[a](java\x01script:alert(1)) [b](/fine)")
    assert "script:" not in html
    assert 'href="/fine"' in html


# --------------------------------------------------------------------------------------------
# `code` in titles


def test_code_spans_in_titles_become_code_and_the_rest_is_escaped():
    from markupsafe import Markup

    from wiki.render import code_spans

    assert code_spans("Bitflip: `l` instead of `,`") == Markup(
        'Bitflip: <code class="title-code">l</code> instead of <code class="title-code">,</code>')
    assert code_spans("`<script>alert(1)</script>` & <b>") == Markup(
        '<code class="title-code">&lt;script&gt;alert(1)&lt;/script&gt;</code> &amp; &lt;b&gt;')
    assert code_spans("a lone ` backtick") == Markup("a lone ` backtick")
    assert code_spans(None) == Markup("")
    # already escaped (a search title with its matches marked) is taken as it is
    assert code_spans(Markup("<mark>Bitflip</mark>: `l`")) == Markup(
        '<mark>Bitflip</mark>: <code class="title-code">l</code>')


def test_signature_titles_show_their_code_on_pages_and_lists(demo_client):
    page = demo_client.get("/SIG-1", follow_redirects=True).get_data(as_text=True)
    h1 = page.split('<h1 class="doc-title">', 1)[1].split("</h1>", 1)[0]
    assert '<code class="title-code">l</code>' in h1 and "`" not in h1
    listing = demo_client.get("/signatures/").get_data(as_text=True)
    assert '<code class="title-code">,</code>' in listing
