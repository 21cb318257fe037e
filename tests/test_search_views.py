"""wiki.views.search: the search page, the help page and GET /api/v1/search."""

from __future__ import annotations

import re
from html import unescape
from urllib.parse import parse_qs, urlsplit

import pytest
from conftest import DEMO_CONTENT, make_app, write_doc

API_KEYS = {"total", "results", "facets", "suggestion"}
RESULT_KEYS = {"id", "kind", "title", "url", "score", "snippet", "section"}


@pytest.fixture
def rich_app(content_dir, tmp_path):
    write_doc(content_dir, "postmortems/PM-2-relay.md", """\
        ---
        id: PM-2
        title: Email relay outage after health check change
        status: published
        severity: SEV1
        date: 2021-06-01
        services: [email-relay, sns-inbound]
        tags: [retries, email]
        root_cause_category: config-change
        ---
        ## Summary
        The relay stopped accepting connections when the health check timed out.

        ## Root cause and contributing factors
        Every client retried at once; `ECONNRESET` from sns-inbound.
        """)
    write_doc(content_dir, "postmortems/PM-3-evil.md", """\
        ---
        id: PM-3
        title: "<script>alert('title')</script> relay"
        status: draft
        severity: SEV3
        date: 2019-01-02
        services: [email-relay]
        ---
        ## Summary
        <img src=x onerror=alert(1)> the relay broke & <b>nobody</b> noticed.
        """)
    return make_app(content_dir, tmp_path / "data")


@pytest.fixture
def rich(rich_app):
    return rich_app.test_client()


def api(client, **params):
    response = client.get("/api/v1/search", query_string=params)
    assert response.status_code == 200, response.get_data(as_text=True)
    assert response.is_json
    return response.get_json()


def page(client, url):
    response = client.get(url)
    assert response.status_code == 200, url
    return response.get_data(as_text=True)


# --------------------------------------------------------------------------------------------
# API


def test_api_answers_exactly_the_documented_shape(rich):
    data = api(rich, q="relay")
    assert set(data) == API_KEYS
    assert data["total"] == 2 and data["suggestion"] is None
    assert all(set(result) == RESULT_KEYS for result in data["results"])
    first = next(r for r in data["results"] if r["id"] == "PM-2")
    assert first["kind"] == "postmortem" and first["title"].startswith("Email relay outage")
    assert first["url"].endswith("/postmortems/PM-2/email-relay-outage-after-health-check-change")
    assert isinstance(first["score"], float) and first["section"] == "Summary"
    assert [r["score"] for r in data["results"]] == sorted(
        (r["score"] for r in data["results"]), reverse=True)
    assert "<mark>relay</mark>" in first["snippet"]
    assert data["facets"]["severity"] == [{"value": "SEV1", "count": 1},
                                          {"value": "SEV3", "count": 1}]
    assert set(data["facets"]) == {"kind", "severity", "status", "service", "tag", "year",
                                   "root_cause"}


def test_api_kind_limit_offset_sort_and_filters(rich):
    assert api(rich, q="cache", kind="signature")["results"][0]["id"] == "SIG-1"
    assert api(rich, q="cache", kind="postmortem")["total"] == 1
    everything = [r["id"] for r in api(rich, q="relay")["results"]]
    assert [r["id"] for r in api(rich, q="relay", limit=1, offset=1)["results"]] == everything[1:]
    dated = api(rich, q="relay", sort="date")["results"]
    assert [r["id"] for r in dated] == ["PM-2", "PM-3"] and dated[0]["score"] is None
    assert api(rich, q="relay", severity="SEV1")["total"] == 1
    assert api(rich, q="", service="email-relay")["total"] == 2
    assert api(rich, q="relay", facets="0")["facets"] == {}


def test_api_suggestion(rich):
    data = api(rich, q="conections")
    assert data["suggestion"] == "connections" and data["results"][0]["id"] == "PM-2"


def test_api_snippets_and_titles_stay_escaped(rich):
    data = api(rich, q="nobody")
    hit = data["results"][0]
    assert hit["title"] == "<script>alert('title')</script> relay"  # JSON: the raw text
    assert "<img" not in hit["snippet"] and "&lt;img src=x" in hit["snippet"]
    assert "&lt;b&gt;<mark>nobody</mark>&lt;/b&gt;" in hit["snippet"]


@pytest.mark.parametrize("params, message", [
    ({"q": "x", "limit": "abc"}, "limit"),
    ({"q": "x", "limit": "0"}, "limit"),
    ({"q": "x", "limit": "1000"}, "limit"),
    ({"q": "x", "offset": "-1"}, "offset"),
    ({"q": "x", "offset": "1e9"}, "offset"),
    ({"q": "x", "kind": "essay"}, "kind"),
    ({"q": "x", "sort": "sideways"}, "sort"),
    ({"q": "x", "year": "last year"}, "year"),
])
def test_api_bad_parameters_are_400_with_a_message(rich, params, message):
    response = rich.get("/api/v1/search", query_string=params)
    assert response.status_code == 400
    assert message in response.get_json()["error"]


BAD_QUERIES = ['"', '"unbalanced', "(", "((a", "a))", ")", "-", "--", "*", "**", "~", "~~",
               "service:", "severity:", ":", "::", "colour:red", "a:b:c", "x" * 10_000,
               "relay " * 2000, "\x00\x01\x02\x1b[0m", "OR", "AND NOT", "-(a b)",
               '-"', "title:", "id:nope", "year:20x2", "kind:nonsense", "%00", "\\", "'",
               "<script>alert(1)</script>", "\u202e", "ﷺ" * 100]


@pytest.mark.parametrize("query", BAD_QUERIES, ids=lambda q: repr(q[:20]))
def test_bad_queries_never_fail(rich, query):
    data = api(rich, q=query)
    assert set(data) == API_KEYS
    assert page(rich, "/search?" + _qs(q=query))


@pytest.mark.parametrize("raw", ["%ED%A0%80", "%FF%FE", "%C0%AF", "%00", "%25", "%E2%80%AE"])
def test_undecodable_bytes_in_the_url(rich, raw):
    assert rich.get(f"/api/v1/search?q={raw}").status_code == 200
    assert rich.get(f"/search?q={raw}&service={raw}").status_code == 200


def test_every_naughty_string_through_the_api_and_the_page(rich, naughty_strings):
    for text in naughty_strings:
        data = api(rich, q=text)
        assert set(data) == API_KEYS
        response = rich.get("/search", query_string={"q": text})
        assert response.status_code == 200, text
        for value in ("service", "tag", "severity", "year"):
            response = rich.get("/search", query_string={"q": "relay", value: text})
            assert response.status_code == 200, (value, text)


# --------------------------------------------------------------------------------------------
# The page


def test_search_page_shows_results_with_sections_badges_and_facets(rich):
    html = page(rich, "/search?q=retried")
    assert "1</strong> result" in html
    assert 'href="/postmortems/PM-2/email-relay-outage-after-health-check-change"' in html
    assert "Root cause and contributing factors</span>" in html
    assert "<mark>retried</mark>" in html
    assert 'class="badge badge--sev1"' in html
    assert "search.css" in html
    assert 'value="retried"' in html  # the query stays in the boxes
    for label in ("Kind", "Severity", "Status", "Service", "Tag", "Year", "Root cause"):
        assert f'class="facet__title">{label}</h2>' in html


def test_page_escapes_document_text(rich):
    html = page(rich, "/search?q=relay")
    assert "<script>alert" not in html and "<img src=x" not in html
    assert "&lt;script&gt;alert(&#39;title&#39;)&lt;/script&gt; <mark>relay</mark>" in html


def test_facet_links_add_filters_that_combine_and_can_be_removed(rich):
    html = page(rich, "/search?q=relay")
    link = _link(html, "severity", "SEV1")
    assert parse_qs(urlsplit(link).query) == {"q": ["relay"], "severity": ["SEV1"]}
    html = page(rich, link)
    assert "1</strong> result" in html
    link = _link(html, "service", "sns-inbound")
    assert parse_qs(urlsplit(link).query) == {
        "q": ["relay"], "severity": ["SEV1"], "service": ["sns-inbound"]}
    html = page(rich, link)
    assert "1</strong> result" in html
    chip = re.search(r'class="chip chip--active" href="([^"]+)"[^>]*>\s*Severity: SEV1', html)
    assert parse_qs(urlsplit(unescape(chip.group(1))).query) == {
        "q": ["relay"], "service": ["sns-inbound"]}
    assert "Clear all" in html


def _link(html: str, name: str, value: str) -> str:
    for href in re.findall(r'class="facet__value[^"]*" href="([^"]+)"', html):
        href = unescape(href)
        if value in parse_qs(urlsplit(href).query).get(name, []):
            return href
    raise AssertionError(f"no facet link for {name}={value}")


def test_sort_and_pagination_links(rich_app, content_dir, tmp_path):
    for n in range(10, 35):
        write_doc(content_dir, f"postmortems/PM-{n}-x.md", f"""\
            ---
            id: PM-{n}
            title: Paging test {n}
            date: 2020-01-{n - 9:02d}
            ---
            ## Summary
            pagination word
            """)
    client = make_app(content_dir, tmp_path / "data2").test_client()
    html = page(client, "/search?q=pagination&sort=date")
    assert "25</strong> results" in html and "Page 1 of 2" in html
    assert html.index("Paging test 34") < html.index("Paging test 33")
    html2 = page(client, "/search?q=pagination&sort=date&page=2")
    assert "Paging test 10" in html2 and "Page 2 of 2" in html2
    assert 'href="/search?q=pagination"' in html  # back to best match
    assert page(client, "/search?q=pagination&page=abc")  # a bad page number is page 1
    assert "There is no page 9" in page(client, "/search?q=pagination&page=9")


def test_zero_results_page_helps(rich):
    html = page(rich, "/search?q=relay+zzyzx&severity=SEV4")
    assert "Nothing matches" in html and "Search again without the filters" in html
    assert 'href="/search/help"' in html and "Tips" in html
    html = page(rich, "/search?q=conections")
    assert "Showing results for" in html and 'href="/search?q=connections"' in html
    # Only known parameters are carried over to the suggestion's link.
    html = page(rich, "/search?q=conections&_scheme=javascript&_external=1&tag=x&endpoint=y")
    assert 'href="/search?q=connections&amp;tag=x"' in html


def test_messages_about_repaired_queries_are_shown(rich):
    html = page(rich, "/search?q=service%3A+%22relay")
    assert "closing quote" in html and "needs a value" in html


def test_empty_search_page_shows_the_tips(rich):
    html = page(rich, "/search")
    assert "search-tips" in html and "results for" not in html


def test_help_page(rich):
    html = page(rich, "/search/help")
    for example in ("ECONNRESET", "time*", "service:", "severity:", "cause:", "-staging",
                    "/api/v1/search"):
        assert example in html


def test_header_search_box_targets_the_search_page(rich):
    html = page(rich, "/")
    form = re.search(r'<form class="site-search" action="([^"]+)" method="get"', html)
    assert form and form.group(1) == "/search"
    assert 'name="q"' in html


def _qs(**params) -> str:
    from urllib.parse import urlencode

    return urlencode(params)


# --------------------------------------------------------------------------------------------
# Relevance on the demo content, through the API


needs_demo = pytest.mark.skipif(not (DEMO_CONTENT / "signatures").is_dir(),
                                reason="the demo content is not there")


@needs_demo
@pytest.mark.parametrize("query, id_prefix, words", [
    ("bitflip", "SIG-", "bitflip"),
    ("comma one bit", "SIG-", "bitflip"),
    ("33 characters", "SIG-", "bitflip"),
    ("health check connections retries", "PM-", "relay"),
    ("foreign key null cron", "PM-", "foreign key"),
])
def test_demo_relevance(demo_client, query, id_prefix, words):
    first = api(demo_client, q=query)["results"][0]
    assert first["id"].startswith(id_prefix) and words in first["title"].lower(), first
