"""Link previews: Open Graph / Twitter meta on document pages (templates/_meta.html), oEmbed
(wiki/chat/previews.py), short links and the "Copy link" button."""

from __future__ import annotations

from html.parser import HTMLParser
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest

from tests.conftest import make_app
from wiki import db
from wiki.chat.cards import plain, shorten

BASE = "https://wiki.example.com"


class Head(HTMLParser):
    """The meta and link elements of a page, and its "Copy link" anchors."""

    def __init__(self, html: str):
        super().__init__(convert_charrefs=True)
        self.meta: dict[str, list[str]] = {}
        self.links: list[dict] = []
        self.copy_links: list[dict] = []
        self.feed(html)

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "meta" and ("property" in a or "name" in a):
            self.meta.setdefault(a.get("property") or a["name"], []).append(a.get("content"))
        elif tag == "link":
            self.links.append(a)
        elif tag == "a" and "data-copy-link" in a:
            self.copy_links.append(a)

    def one(self, key: str) -> str:
        (value,) = self.meta[key]
        return value


def demo_documents(app):
    with app.extensions["wiki"].session() as session:
        rows, total = db.list_documents(session, db.Filters(), limit=1000)
    assert total == len(rows) > 0
    return rows


def test_every_demo_page_has_its_preview_meta(demo_app, demo_client):
    wiki = demo_app.extensions["wiki"]
    for row in demo_documents(demo_app):
        doc = wiki.get(row.id)
        response = demo_client.get(f"/{row.id}", follow_redirects=True)
        assert response.status_code == 200
        head = Head(response.get_data(as_text=True))
        url = f"http://localhost/{doc.kind.plural}/{doc.id}/{doc.slug}"
        assert head.one("og:title") == head.one("twitter:title") == f"{doc.id}: {doc.title}"
        assert head.one("og:url") == url
        assert head.one("og:type") == "article"
        assert head.one("og:site_name") == "Postmortem Wiki"
        assert head.one("twitter:card") == "summary"
        description = head.one("og:description")
        assert doc.status in description
        if doc.kind.name == "postmortem":
            assert doc.get("severity") in description
            assert head.one("twitter:label1") == "Severity"
        for service in doc.services[:4]:
            assert service in description
        summary = shorten(plain(doc.summary), 60).rstrip("…")
        assert summary[:40] in description, (doc.id, summary, description)
        if doc.kind.name == "signature" and (doc.get("examples") or doc.get("patterns")):
            assert "Looks like: " in description
        (oembed,) = [ln for ln in head.links if ln.get("type") == "application/json+oembed"]
        assert parse_qs(urlsplit(oembed["href"]).query) == {"url": [url], "format": ["json"]}
        assert [ln["href"] for ln in head.links if ln.get("rel") == "canonical"] == [url]
        (copy,) = head.copy_links
        assert copy["href"] == f"http://localhost/{doc.id}"


def test_pages_that_are_not_documents_have_only_the_site_name(demo_client):
    head = Head(demo_client.get("/").get_data(as_text=True))
    previews = {k: v for k, v in head.meta.items() if k.startswith(("og:", "twitter:"))}
    assert previews == {"og:site_name": ["Postmortem Wiki"]}
    assert not [ln for ln in head.links if ln.get("type") == "application/json+oembed"]


NASTY = 'Quote " and <script>alert(1)</script> & \'apostrophe\' {{ 7*7 }}'


def test_meta_values_are_escaped(content_dir, tmp_path):
    app = make_app(content_dir, tmp_path / "data", BASE_URL=BASE)
    wiki = app.extensions["wiki"]
    doc = wiki.create("postmortem", {"title": NASTY, "severity": "SEV1",
                                     "services": ['svc"><script>x</script>']},
                      f"## Summary\n{NASTY} [link](https://x.example) **bold**\n")
    wiki.create("signature", {"title": "Sig", "examples": ['<img src=x onerror=alert(1)> "q"']})
    client = app.test_client()
    for ident in (doc.id, "SIG-2"):
        html = client.get(f"/{ident}", follow_redirects=True).get_data(as_text=True)
        head_html = html.split("</head>")[0]
        assert "<script>" not in head_html and "<img" not in head_html
        head = Head(html)
        if ident == doc.id:
            assert head.one("og:title") == f"{doc.id}: {NASTY}"
            assert "svc\"><script>x</script>" in head.one("og:description")
            # the summary's Markdown made plain text (its HTML tags dropped)
            assert ("Quote \" and alert(1) & 'apostrophe' {{ 7*7 }} link bold"
                    in head.one("og:description"))
            assert head.one("og:url").startswith(f"{BASE}/postmortems/{doc.id}/")
        else:
            assert '<img src=x onerror=alert(1)> "q"' in head.one("og:description")


# --------------------------------------------------------------------------------------------
# oEmbed


def oembed(client, url: str, **extra):
    return client.get("/oembed?" + urlencode({"url": url, **extra}))


@pytest.mark.parametrize("url", [
    "http://localhost/postmortems/PM-1/checkout-latency-after-cache-flush",
    "http://localhost/postmortems/PM-1/an-old-slug",
    "http://localhost/postmortems/PM-1",
    "http://localhost/pm-1",
    "http://localhost/PM-1?utm_source=chat#timeline",
])
def test_oembed_for_a_document_url(client, url):
    response = oembed(client, url, format="json")
    assert response.status_code == 200
    data = response.get_json()
    assert data["version"] == "1.0" and data["type"] == "link"
    assert data["title"] == "PM-1: Checkout latency after cache flush"
    assert data["provider_name"] == "Postmortem Wiki"
    assert data["url"] == "http://localhost/postmortems/PM-1/checkout-latency-after-cache-flush"
    assert "SEV2" in data["description"]


@pytest.mark.parametrize("url", [
    "http://localhost/PM-99", "http://localhost/tags/", "http://localhost/",
    "https://elsewhere.example/PM-1", "javascript:alert(1)", "http://[bad",
    "http://localhost/postmortems/", "http://localhost/search?q=x",
])
def test_oembed_for_anything_else_is_404(client, url):
    response = oembed(client, url)
    assert response.status_code == 404
    assert "error" in response.get_json()


def test_oembed_xml_is_501_and_no_url_is_400(client):
    assert oembed(client, "http://localhost/PM-1", format="xml").status_code == 501
    assert client.get("/oembed").status_code == 400


def test_oembed_accepts_base_url_and_link_domains(content_dir, tmp_path):
    app = make_app(content_dir, tmp_path / "data", BASE_URL=f"{BASE}/wiki",
                   LINK_DOMAINS="wiki.internal, Wiki.Corp")
    client = app.test_client()
    for url in (f"{BASE}/wiki/PM-1", "http://wiki.internal/PM-1", "https://wiki.corp/PM-1"):
        response = oembed(client, url)
        assert response.status_code == 200, url
        assert response.get_json()["url"] == \
            f"{BASE}/wiki/postmortems/PM-1/checkout-latency-after-cache-flush"
    assert oembed(client, "https://other.example/PM-1").status_code == 404


# --------------------------------------------------------------------------------------------
# Short links, old slugs, "Copy link"


@pytest.mark.parametrize("path", ["/PM-1", "/pm-1", "/Pm-1", "/SIG-1", "/sig-1"])
def test_short_links_redirect_case_insensitively(client, path):
    response = client.get(path)
    assert response.status_code == 302
    assert response.headers["Location"].startswith(
        "/postmortems/PM-1/" if "pm" in path.lower() else "/signatures/SIG-1/")


def test_old_slugs_redirect_after_a_title_change(app, client):
    wiki = app.extensions["wiki"]
    old = "/postmortems/PM-1/checkout-latency-after-cache-flush"
    assert client.get(old).status_code == 200
    doc = wiki.get("PM-1")
    # A new title without a pinned slug (as an API client that leaves `slug` out) makes a new
    # slug; the old URL, the short link and oEmbed follow it.
    front = {k: v for k, v in doc.front_matter.items() if k != "slug"}
    wiki.update("PM-1", {**front, "title": "Checkout slow after a cache flush"}, doc.body,
                doc.revision)
    new = "/postmortems/PM-1/checkout-slow-after-a-cache-flush"
    response = client.get(old)
    assert response.status_code == 301 and response.headers["Location"] == new
    assert client.get("/pm-1").headers["Location"] == new
    assert client.get(new).status_code == 200
    assert oembed(client, f"http://localhost{old}").get_json()["url"] == f"http://localhost{new}"
    assert Head(client.get(new).get_data(as_text=True)).one("og:url") == f"http://localhost{new}"


def test_a_pinned_slug_keeps_the_url_across_a_title_change(app, client):
    wiki = app.extensions["wiki"]
    doc = wiki.get("PM-1")  # the slug was written into the file when it was first saved
    wiki.update("PM-1", {**doc.front_matter, "title": "A new title"}, doc.body, doc.revision)
    url = "/postmortems/PM-1/checkout-latency-after-cache-flush"
    assert client.get(url).status_code == 200
    assert client.get("/postmortems/PM-1/a-new-title").headers["Location"] == url


def test_the_copy_link_button_is_a_plain_link_with_a_script(client):
    html = client.get("/signatures/SIG-1/cache-stampede-after-a-flush").get_data(as_text=True)
    (copy,) = Head(html).copy_links
    assert copy["href"] == "http://localhost/SIG-1"
    assert '<script src="/static/js/copy-link.js" defer></script>' in html
    assert client.get("/static/js/copy-link.js").status_code == 200
