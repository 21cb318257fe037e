"""wiki.views.pages: every page renders, filters and sorting, redirects, problems, escaping."""

from __future__ import annotations

import re
from collections import deque
from datetime import date, timedelta
from html import unescape
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import yaml
from conftest import make_app, write_doc

from wiki.documents import slugify

PM1_URL = "/postmortems/PM-1/checkout-latency-after-cache-flush"
SIG1_URL = "/signatures/SIG-1/cache-stampede-after-a-flush"


def postmortem(ident: int, title: str, body: str | None = None, **fields) -> str:
    front = {"id": f"PM-{ident}", "title": title, "status": "published", **fields}
    return "---\n" + yaml.safe_dump(front, allow_unicode=True, sort_keys=False) + "---\n\n" + (
        body or "## Summary\n\nSomething happened.\n")


@pytest.fixture
def rich_app(content_dir: Path, tmp_path: Path):
    """The conftest PM-1/SIG-1 plus a few postmortems that differ in every filterable field."""
    docs = [
        (2, "Database failover during deploy", dict(
            severity="SEV1", date="2022-03-01", services=["checkout", "db"], tags=["database"],
            root_cause_category="deploy", related=["PM-1"],
            started_at="2022-03-01T10:00:00+00:00", resolved_at="2022-03-01T15:00:00+00:00")),
        (3, "Search index stale after cache change", dict(
            severity="SEV2", date="2023-09-10", services=["search"], tags=["cache"],
            status="in-review", root_cause_category="config-change",
            started_at="2023-09-10T10:00:00+00:00", resolved_at="2023-09-10T10:20:00+00:00")),
        (4, "Another checkout cache incident", dict(
            severity="SEV3", date="2023-11-20", services=["checkout"], tags=["cache"],
            root_cause_category="capacity", team_channel="#checkout-oncall",
            body="## Summary\n\nLooks like PM-1 again.\n")),
    ]
    for ident, title, fields in docs:
        write_doc(content_dir, f"postmortems/PM-{ident}.md", postmortem(ident, title, **fields))
    return make_app(content_dir, tmp_path / "data")


@pytest.fixture
def rich_client(rich_app):
    return rich_app.test_client()


def ids_in(html: str) -> list[str]:
    """Document ids of the result rows of a list page, in order."""
    row = r'<li class="doc-row[^"]*">.*?<span class="doc-id">([A-Z]+-\d+)</span>'
    return re.findall(row, html, re.S)


def text(response) -> str:
    return response.get_data(as_text=True)


# -------------------------------------------------------------------------------- every page


def internal_links(html: str) -> list[str]:
    return [h.replace("&amp;", "&") for h in re.findall(r'href="(/[^"#]*)', html)]


def crawl(client, start: str = "/", limit: int = 1500) -> dict[str, int]:
    """Follow internal links from ``start``; filter links only from unfiltered list pages."""
    seen: dict[str, int] = {}
    queue = deque([start])
    while queue and len(seen) < limit:
        url = queue.popleft()
        if url in seen:
            continue
        response = client.get(url)
        seen[url] = response.status_code
        if response.status_code in (301, 302, 308):
            queue.append(urlsplit(response.headers["Location"]).path)
            continue
        if response.status_code != 200 or "text/html" not in response.content_type:
            continue
        for link in internal_links(text(response)):
            path, _, query = link.partition("?")
            if path.startswith(("/static/", "/search", "/api/")) or link in seen:
                continue
            if urlsplit(url).query and query:
                continue  # one level of filters/sorts/pages is enough
            queue.append(link)
    return seen


def test_every_demo_page_renders(demo_client, demo_app):
    seen = crawl(demo_client)
    broken = {url: status for url, status in seen.items() if status not in (200, 301, 302, 308)}
    assert not broken
    from wiki.app_state import get_wiki

    with demo_app.app_context():
        from sqlmodel import select

        from wiki.models import DocumentRow

        with get_wiki().session() as session:
            rows = list(session.exec(select(DocumentRow)))
    paths = {urlsplit(u).path for u in seen}
    for row in rows:  # every document page was reached by following links
        assert f"/{row.kind}s/{row.id}/{row.slug}" in paths, row.id
    for page in ("/", "/postmortems/", "/signatures/", "/tags/", "/services/", "/problems"):
        assert seen.get(page) == 200
    assert any(p.startswith("/tags/") and p != "/tags/" for p in paths)
    assert any(p.startswith("/services/") and p != "/services/" for p in paths)
    for name in ("severity", "service", "tag", "status", "year", "root_cause"):
        assert any(f"?{name}=" in u for u in seen if u.startswith("/postmortems/")), name
    for name in ("status", "service", "tag"):
        assert any(f"?{name}=" in u for u in seen if u.startswith("/signatures/")), name


def test_pages_share_the_layout(client):
    html = text(client.get("/"))
    assert '<form class="site-search" action="/search" method="get" role="search">' in html
    assert '<input id="site-search-q" name="q" type="search"' in html
    for label, href in (("Postmortems", "/postmortems/"), ("Signatures", "/signatures/"),
                        ("Tags", "/tags/"), ("Services", "/services/")):
        assert f'<a href="{href}"' in html and label in html
    assert "/static/style.css" in html
    for asset in ("style.css", "pygments.css", "favicon.svg"):
        with client.get(f"/static/{asset}") as response:
            assert response.status_code == 200


# -------------------------------------------------------------------------------- home


def test_home(rich_client):
    html = text(rich_client.get("/"))
    assert "Checkout latency after cache flush" in html  # recent postmortems
    assert "Cache stampede after a flush" in html  # active signatures
    assert "Waiting for review" in html and "Search index stale after cache change" in html
    assert "Warm the cache before a flush" in html  # an open action item with a due date
    assert "content problems" not in html.lower().split("<footer")[0]  # no problems yet


# -------------------------------------------------------------------------------- lists


def test_postmortem_list_shows_everything(rich_client):
    html = text(rich_client.get("/postmortems/"))
    assert sorted(ids_in(html)) == ["PM-1", "PM-2", "PM-3", "PM-4"]
    assert "<strong>4</strong> postmortems" in html
    assert 'class="badge badge--sev1"' in html


@pytest.mark.parametrize(("query", "expected"), [
    ("severity=SEV2", {"PM-1", "PM-3"}),
    ("severity=sev2&severity=SEV1", {"PM-1", "PM-2", "PM-3"}),
    ("service=checkout", {"PM-1", "PM-2", "PM-4"}),
    ("service=CHECKOUT&severity=SEV2", {"PM-1"}),
    ("tag=cache", {"PM-1", "PM-3", "PM-4"}),
    ("tag=cache&year=2023", {"PM-1", "PM-3", "PM-4"}),
    ("tag=cache&year=2023&service=checkout", {"PM-1", "PM-4"}),
    ("status=in-review", {"PM-3"}),
    ("root_cause=deploy", {"PM-2"}),
    ("year=2022", {"PM-2"}),
    ("year=nonsense", {"PM-1", "PM-2", "PM-3", "PM-4"}),
    ("severity=SEV4", set()),
])
def test_postmortem_filters_combine(rich_client, query, expected):
    response = rich_client.get(f"/postmortems/?{query}")
    assert response.status_code == 200
    assert set(ids_in(text(response))) == expected


def test_filter_links_toggle_and_keep_other_filters(rich_client):
    html = text(rich_client.get("/postmortems/?service=checkout"))
    # A facet link adds its value to the current filters...
    assert 'href="/postmortems/?service=checkout&amp;severity=SEV1"' in html
    # ...and the active one removes itself.
    assert 'href="/postmortems/"' in html
    assert "Service: checkout" in html
    assert "No postmortem matches" in text(rich_client.get("/postmortems/?severity=SEV4"))


def test_facet_counts(rich_client):
    html = text(rich_client.get("/postmortems/"))
    facet = re.search(r'<h2 class="facet__title">Service</h2>(.*?)</section>', html, re.S).group(1)
    assert re.search(r"checkout</span>\s*<span class=\"facet__count\">3</span>", facet)


@pytest.mark.parametrize(("sort", "expected"), [
    ("date", ["PM-4", "PM-3", "PM-1", "PM-2"]),
    ("-date", ["PM-2", "PM-1", "PM-3", "PM-4"]),
    ("title", ["PM-4", "PM-1", "PM-2", "PM-3"]),
    ("severity", ["PM-2", "PM-3", "PM-1", "PM-4"]),
    ("bogus", ["PM-4", "PM-3", "PM-1", "PM-2"]),
])
def test_sorting(rich_client, sort, expected):
    assert ids_in(text(rich_client.get(f"/postmortems/?sort={sort}"))) == expected


def test_sort_by_time_to_resolve(rich_client):
    order = ids_in(text(rich_client.get("/postmortems/?sort=ttr")))
    assert order.index("PM-2") < order.index("PM-1") < order.index("PM-3")  # 5 h, 2 h, 20 min


def test_pagination(content_dir, tmp_path):
    for n in range(2, 30):
        write_doc(content_dir, f"postmortems/PM-{n}.md",
                  postmortem(n, f"Incident number {n}", date=f"2020-01-{n:02d}", severity="SEV3"))
    client = make_app(content_dir, tmp_path / "data").test_client()
    first = text(client.get("/postmortems/?severity=SEV3"))
    assert len(ids_in(first)) == 25 and "Page 1 of 2" in first
    assert 'href="/postmortems/?severity=SEV3&amp;page=2"' in first
    second = text(client.get("/postmortems/?severity=SEV3&page=2"))
    assert len(ids_in(second)) == 3
    assert set(ids_in(first)).isdisjoint(ids_in(second))
    assert client.get("/postmortems/?page=99").status_code == 200
    assert client.get("/postmortems/?page=abc").status_code == 200


def test_signature_list_filters(rich_client, content_dir):
    assert ids_in(text(rich_client.get("/signatures/"))) == ["SIG-1"]
    assert ids_in(text(rich_client.get("/signatures/?status=active&service=cache"))) == ["SIG-1"]
    assert ids_in(text(rich_client.get("/signatures/?status=retired"))) == []
    assert ids_in(text(rich_client.get("/signatures/?tag=nope"))) == []


# -------------------------------------------------------------------------------- documents


def test_postmortem_page(client):
    response = client.get(PM1_URL)
    assert response.status_code == 200
    html = text(response)
    assert "<h1 class=\"doc-title\">Checkout latency after cache flush</h1>" in html
    assert 'badge--sev2' in html and "published" in html
    # derived durations
    for label, value in (("Time to detect", "7 min"), ("Time to mitigate", "30 min"),
                         ("Time to resolve", "2 h")):
        assert re.search(rf"{label}</span>\s*<span class=\"durations__value\">{value}</span>", html)
    # services and tags link to their pages
    assert 'href="/services/checkout"' in html and 'href="/tags/latency"' in html
    assert 'href="/postmortems/?root_cause=capacity"' in html
    # linked signature with its title, and the [[SIG-1]] link in the body
    assert (f'<a href="{SIG1_URL}"><span class="doc-id">SIG-1</span> '
            "Cache stampede after a flush</a>") in html
    assert f'<a class="wikilink" href="{SIG1_URL}"' in html
    # table of contents and anchors
    assert 'href="#summary"' in html and 'id="summary"' in html
    # action items, overdue highlighted
    assert "Warm the cache before a flush" in html and "Ana" in html
    assert 'class="is-overdue"' in html
    # footer: file and revision
    assert "content/postmortems/PM-1-checkout-latency.md" in html
    assert re.search(r"Revision <code>[0-9a-f]{20}</code>", html)


def test_backlinks_are_shown(client):
    html = text(client.get(SIG1_URL))
    backlinks = html.split('id="pw-backlinks"')[1].split("</section>")[0]
    assert f'href="{PM1_URL}"' in backlinks
    assert "Checkout latency after cache flush" in backlinks


def test_related_and_mentions_show_as_backlinks(rich_client):
    html = text(rich_client.get(PM1_URL))
    backlinks = html.split('id="pw-backlinks"')[1].split("</section>")[0]
    assert "PM-2" in backlinks and "related" in backlinks
    assert "PM-4" in backlinks and "mentioned in text" in backlinks


def test_unknown_fields_are_shown(rich_client):
    html = text(rich_client.get("/pm-4", follow_redirects=True))
    other = html.split('id="pw-other-fields"')[1].split("</section>")[0]
    assert "team_channel" in other and "#checkout-oncall" in other


def test_signature_page(client):
    html = text(client.get(SIG1_URL))
    assert "Cache stampede after a flush" in html
    assert '<span class="pattern__kind">literal</span>' in html
    assert "<code>cache miss storm</code>" in html
    assert "<pre><code>WARN cache miss storm detected</code></pre>" in html
    incidents = html.split('id="pw-incidents"')[1].split("</section>")[0]
    assert f'href="{PM1_URL}"' in incidents and "Checkout latency after cache flush" in incidents
    assert 'href="/services/cache"' in html


@pytest.mark.parametrize("url", [
    "/postmortems/PM-1/old-slug",
    "/postmortems/PM-1",
    "/postmortems/pm-1/checkout-latency-after-cache-flush",
    "/signatures/PM-1/checkout-latency-after-cache-flush",
    "/postmortem/PM-1/whatever",
])
def test_non_canonical_document_urls_redirect(client, url):
    response = client.get(url)
    assert response.status_code == 301
    assert response.headers["Location"] == PM1_URL


@pytest.mark.parametrize(("url", "target"), [
    ("/pm-1", PM1_URL), ("/PM-1", PM1_URL), ("/Sig-1", SIG1_URL),
])
def test_short_links_redirect(client, url, target):
    response = client.get(url)
    assert response.status_code == 302
    assert response.headers["Location"] == target


def test_unknown_ids_are_404_pages(client):
    for url in ("/pm-999", "/postmortems/PM-999/x", "/signatures/nonsense"):
        response = client.get(url)
        assert response.status_code == 404
        assert response.content_type.startswith("text/html")
    html = text(client.get("/pm-999"))
    assert "There is no document PM-999." in html
    assert "<title>Not found" in html


def test_short_links_shadow_no_other_route(client):
    assert client.get("/tags").status_code == 308
    assert client.get("/problems").status_code == 200
    with client.get("/static/style.css") as response:
        assert response.status_code == 200
    assert client.get("/pm-1x").status_code == 404
    assert client.get("/api/v1/documents").content_type.startswith("application/json")


def test_unknown_route_is_html_404(client):
    response = client.get("/no/such/page")
    assert response.status_code == 404
    assert "<h1>Not found</h1>" in text(response)


def test_server_error_page(app):
    def boom():
        raise RuntimeError("boom")

    app.add_url_rule("/boom-for-test", "boom_for_test", boom)
    response = app.test_client().get("/boom-for-test")
    assert response.status_code == 500
    html = text(response)
    assert "Something went wrong on our side" in html and "boom" not in html.split("<main")[1]


# -------------------------------------------------------------------------------- tags, services


def test_tags(rich_client):
    html = text(rich_client.get("/tags/"))
    assert 'href="/tags/cache"' in html and "#cache" in html
    assert "3 postmortems · 1 signature" in " ".join(html.split())
    tag = text(rich_client.get("/tags/CACHE"))
    assert "<h1>#cache</h1>" in tag
    assert {"PM-1", "PM-3", "PM-4", "SIG-1"} <= set(ids_in(tag))
    assert "PM-2" not in ids_in(tag)
    assert rich_client.get("/tags/no-such-tag").status_code == 404


def test_services(rich_client):
    html = text(rich_client.get("/services/"))
    assert 'href="/services/checkout"' in html
    page = text(rich_client.get("/services/Checkout"))
    assert "<h1>checkout</h1>" in page
    assert set(ids_in(page)) == {"PM-1", "PM-2", "PM-4"}
    assert rich_client.get("/services/no-such-service").status_code == 404


# -------------------------------------------------------------------------------- problems


def test_broken_file_is_listed_and_the_rest_works(content_dir, tmp_path):
    write_doc(content_dir, "postmortems/PM-5-broken.md",
              "---\nid: PM-5\ntitle: Broken\ntags: [a, b\nseverity: SEV1\n---\n\nBody\n")
    write_doc(content_dir, "postmortems/PM-6-bad-severity.md",
              "---\nid: PM-6\ntitle: Bad severity\nseverity: SEV9\n---\n\nBody\n")
    client = make_app(content_dir, tmp_path / "data").test_client()
    html = text(client.get("/problems"))
    assert "content/postmortems/PM-5-broken.md" in html
    assert "invalid YAML" in html
    row = html.split("PM-5-broken.md")[1].split("</tr>")[0]
    assert re.search(r'class="num">\d+</td>', row)  # a line number
    bad = html.split("PM-6-bad-severity.md")[1].split("</tr>")[0]
    assert "<code>severity</code>" in bad and "SEV9" in bad and 'class="num">4</td>' in bad
    # the rest of the wiki keeps working
    assert client.get(PM1_URL).status_code == 200
    home = text(client.get("/"))
    assert "2 content files could not be read" in home
    assert ids_in(text(client.get("/postmortems/"))) == ["PM-1"]


def test_no_problems(client):
    assert "without problems" in text(client.get("/problems"))


# -------------------------------------------------------------------------------- escaping


#: A start tag. Escaped text from content cannot contain "<", so every match is a real tag.
START_TAG = re.compile(r"<([a-zA-Z][^\s/>]*)([^>]*)>")
ATTRIBUTE = re.compile(r"""([^\s=/>"']+)(?:\s*=\s*("[^"]*"|'[^']*'|[^\s>]+))?""")
FORBIDDEN_TAGS = ("script", "iframe", "object", "embed", "svg", "style", "base")
SCHEME = re.compile(r"^([a-zA-Z][a-zA-Z0-9+.-]*):")


def url_scheme(value: str) -> str | None:
    """The scheme a browser sees (WHATWG URL parsing: trim C0 controls and spaces, drop tabs
    and newlines anywhere), lowercased; ``None`` for a relative URL."""
    cleaned = re.sub(r"[\t\n\r]", "", unescape(value)).strip("".join(map(chr, range(0x21))))
    m = SCHEME.match(cleaned)
    return m.group(1).lower() if m else None


#: The wiki's own scripts that reading pages may load ("Copy link", "/" to search, the quick
#: search under the header's box); nothing else.
OWN_SCRIPTS = re.compile(
    r'<script src="/static/js/(?:csrf|copy-link|shortcuts|quicksearch)\.js" defer></script>')


def assert_safe(html: str, url: str) -> None:
    """No script element (but the wiki's own files), no event-handler or style attribute, no
    script URL."""
    html = OWN_SCRIPTS.sub("", html)
    assert "<script" not in html.lower(), url
    for m in START_TAG.finditer(html):
        tag = m.group(1).lower()
        assert tag not in FORBIDDEN_TAGS, (url, m.group(0))
        assert tag != "meta" or "http-equiv" not in m.group(2), (url, m.group(0))
        attrs = {name.lower(): (value or "").strip("\"'")
                 for name, value in ATTRIBUTE.findall(m.group(2))}
        if tag == "form":  # only our own forms: same-site paths the app itself built
            action = attrs.get("action", "")
            assert action.startswith("/") and not action.startswith("//"), (url, m.group(0))
            assert re.fullmatch(r"/[A-Za-z0-9/_.~%-]*", action), (url, m.group(0))
        for name, value in attrs.items():
            assert not name.startswith("on"), (url, m.group(0))
            assert name not in ("style", "formaction", "srcdoc"), (url, m.group(0))
            if name in ("href", "src", "action", "data", "poster", "xlink:href"):
                assert url_scheme(value) in (None, "http", "https", "mailto"), (url, m.group(0))


def test_naughty_strings_render_escaped(naughty_strings, tmp_path):
    content = tmp_path / "content"
    (content / "postmortems").mkdir(parents=True)
    (content / "signatures").mkdir(parents=True)
    strings = list(naughty_strings)
    for n, s in enumerate(strings, 1):
        front = {
            "id": f"PM-{n}", "title": s if s.strip() else f"blank {n}", "status": "published",
            "severity": "SEV3", "date": "2023-01-01", "tags": [s], "services": [s],
            "incident_commander": s, "customer_impact": s, "trigger": s, "authors": [s],
            "chat_links": [s], "tickets": [s], "naughty_field": s,
            "action_items": [{"title": s if s.strip() else "x", "owner": s, "ticket": s}],
        }
        body = (f"## Summary\n\n{s}\n\n- {s}\n\n[link]({s}) [[{s}]] <{s}>\n\n> {s}\n\n"
                f"| col |\n|---|\n| {s} |\n\n## {s}\n")
        (content / "postmortems" / f"PM-{n}.md").write_text(
            "---\n" + yaml.safe_dump(front, allow_unicode=True) + "---\n\n" + body, "utf-8")
    batch = 20
    for n, start in enumerate(range(0, len(strings), batch), 1):
        chunk = strings[start:start + batch]
        front = {"id": f"SIG-{n}", "title": f"Naughty signature {n}", "tags": chunk,
                 "patterns": [{"kind": "literal", "value": s} for s in chunk if s.strip()],
                 "not": [{"kind": "regex", "value": s} for s in chunk if s.strip()],
                 "examples": chunk, "not_examples": chunk, "incidents": []}
        (content / "signatures" / f"SIG-{n}.md").write_text(
            "---\n" + yaml.safe_dump(front, allow_unicode=True) + "---\n\n" + "\n\n".join(chunk),
            "utf-8")
    client = make_app(content, tmp_path / "data").test_client()

    pages = len(strings) // 25 + 1
    urls = ["/", "/tags/", "/services/", "/problems", "/signatures/"]
    urls += [f"/postmortems/?page={p}" for p in range(1, pages + 1)]
    urls += [f"/postmortems/PM-{n}/{slugify(s if s.strip() else f'blank {n}')}"
             for n, s in enumerate(strings, 1)]
    urls += [f"/signatures/SIG-{n}/naughty-signature-{n}"
             for n in range(1, len(strings) // batch + 2)]
    tag_index = text(client.get("/tags/"))
    urls += sorted({unescape(h) for h in re.findall(r'href="(/tags/[^"]+)"', tag_index)})
    bodies = {}
    for url in urls:
        response = client.get(url)
        assert response.status_code == 200, url
        bodies[url] = text(response)
        assert_safe(bodies[url], url)
    # The strings really are on the pages, escaped.
    lists = "".join(bodies[f"/postmortems/?page={p}"] for p in range(1, pages + 1))
    assert "&lt;script&gt;alert(123)&lt;/script&gt;" in lists
    assert "#&lt;script&gt;alert(123)&lt;/script&gt;" in bodies["/tags/"]


def test_content_values_never_become_script_links(content_dir, tmp_path):
    write_doc(content_dir, "postmortems/PM-9.md", postmortem(
        9, "Links", chat_links=["javascript:alert(1)", "https://chat.example.com/x", "https://[oops"],
        tickets=["JaVaScRiPt:alert(2)"],
        action_items=[{"title": "t", "ticket": "javascript:alert(3)",
                       "due": str(date.today() + timedelta(days=3))}]))
    client = make_app(content_dir, tmp_path / "data").test_client()
    html = text(client.get("/pm-9", follow_redirects=True))
    assert_safe(html, "/pm-9")
    assert 'href="https://chat.example.com/x"' in html
    assert "javascript:alert(1)" in html  # shown as text


def test_markdown_source_of_a_document(demo_client, demo_copy):
    page = demo_client.get("/PM-1", follow_redirects=True).get_data(as_text=True)
    assert 'href="/postmortems/PM-1/raw"' in page
    response = demo_client.get("/postmortems/PM-1/raw")
    assert response.status_code == 200
    assert response.mimetype == "text/plain"
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    on_disk = next((demo_copy / "postmortems").glob("PM-1-*.md")).read_bytes()
    assert response.data == on_disk
    assert demo_client.get("/signatures/sig-1/raw").status_code == 301  # canonical spelling
    assert demo_client.get("/postmortems/PM-999/raw").status_code == 404
