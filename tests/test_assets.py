"""Uploaded images: recognised by their bytes, size-checked, stored safely under content/assets."""

from __future__ import annotations

import base64
import struct
import zlib
from datetime import UTC, datetime
from pathlib import Path

import pytest

from wiki import assets
from wiki.assets import AssetError, save_upload, sniff

NOW = datetime(2023, 6, 14, 12, 0, tzinfo=UTC)


# --------------------------------------------------------------------------------------------
# Tiny valid images, built byte by byte (each decodes in Chromium)


def make_png(width: int = 2, height: int = 1, colour: bytes = b"\x33\x66\xcc") -> bytes:
    def chunk(kind: bytes, data: bytes) -> bytes:
        return (struct.pack(">I", len(data)) + kind + data
                + struct.pack(">I", zlib.crc32(kind + data)))

    raw = b"".join(b"\x00" + colour * width for _ in range(height))  # filter 0 + RGB pixels
    return (b"\x89PNG\r\n\x1a\n"
            + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))


def make_gif() -> bytes:
    """1 × 1, a two-colour global palette, one LZW-coded pixel."""
    return (b"GIF89a" + struct.pack("<HH", 1, 1) + b"\x80\x00\x00" + b"\x33\x66\xcc\xff\xff\xff"
            + b",\x00\x00\x00\x00\x01\x00\x01\x00\x00" + b"\x02\x02\x44\x01\x00" + b";")


def make_jpeg(width: int = 1, height: int = 1) -> bytes:
    """Baseline greyscale JPEG of one flat 8 × 8 block: DC difference 0 and end-of-block, each
    coded as the one-bit Huffman code ``0``."""
    def segment(marker: int, body: bytes) -> bytes:
        return b"\xff" + bytes([marker]) + struct.pack(">H", len(body) + 2) + body

    return (b"\xff\xd8"
            + segment(0xE0, b"JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00")
            + segment(0xDB, b"\x00" + b"\x01" * 64)
            + segment(0xC0, b"\x08" + struct.pack(">HH", height, width) + b"\x01\x01\x11\x00")
            + segment(0xC4, b"\x00" + b"\x01" + b"\x00" * 15 + b"\x00")
            + segment(0xC4, b"\x10" + b"\x01" + b"\x00" * 15 + b"\x00")
            + segment(0xDA, b"\x01\x01\x00\x00\x3f\x00")
            + b"\x3f" + b"\xff\xd9")


#: 1 × 1 WebP files from the WebP project's feature-detection examples: lossy (VP8), lossless
#: (VP8L) and with alpha (VP8X).
WEBP_LOSSY = base64.b64decode("UklGRiIAAABXRUJQVlA4IBYAAAAwAQCdASoBAAEADsD+JaQAA3AAAAAA")
WEBP_LOSSLESS = base64.b64decode("UklGRhoAAABXRUJQVlA4TA0AAAAvAAAAEAcQERGIiP4HAA==")
WEBP_ALPHA = base64.b64decode(
    "UklGRkoAAABXRUJQVlA4WAoAAAAQAAAAAAAAAAAAQUxQSAwAAAARBxAR/Q9ERP8DAABWUDggGAAAABQBAJ0BKgEA"
    "AQAAAP4AAA3AAP7mtQAAAA==")

IMAGES = {
    "png": (make_png(), "png", "image/png", (2, 1)),
    "gif": (make_gif(), "gif", "image/gif", (1, 1)),
    "jpeg": (make_jpeg(3, 2), "jpg", "image/jpeg", (3, 2)),
    "webp-lossy": (WEBP_LOSSY, "webp", "image/webp", (1, 1)),
    "webp-lossless": (WEBP_LOSSLESS, "webp", "image/webp", (1, 1)),
    "webp-alpha": (WEBP_ALPHA, "webp", "image/webp", (1, 1)),
}


@pytest.mark.parametrize("name", IMAGES)
def test_each_format_is_recognised_and_stored(tmp_path, name):
    data, ext, content_type, size = IMAGES[name]
    info = sniff(data)
    assert (info.extension, info.content_type) == (ext, content_type)
    assert (info.width, info.height) == size
    asset = save_upload(tmp_path, f"Latency graph.{ext}", data, now=NOW)
    digest = __import__("hashlib").sha256(data).hexdigest()[:8]
    assert asset.rel_path == f"assets/2023/06/latency-graph-{digest}.{ext}"
    assert asset.url_path == "/" + asset.rel_path
    assert asset.markdown == f"![Latency graph](/{asset.rel_path})"
    assert (tmp_path / asset.rel_path).read_bytes() == data
    assert asset.created and asset.size == len(data)


def test_the_extension_comes_from_the_bytes_not_the_name(tmp_path):
    asset = save_upload(tmp_path, "screenshot.png", make_jpeg(), now=NOW)
    assert asset.rel_path.endswith(".jpg") and asset.content_type == "image/jpeg"


@pytest.mark.parametrize("data, looks_like", [
    (b"just some text, renamed to .png\n", "text"),
    (b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n", "a PDF document"),
    (b"PK\x03\x04\x14\x00\x06\x00", "a ZIP archive"),
    (b"<!DOCTYPE html><script>alert(1)</script>", "HTML"),
    (b"BM\x3a\x00\x00\x00", "a BMP image"),
    (bytes(range(256)) * 4, "binary data"),
])
def test_non_images_renamed_png_are_refused_clearly(tmp_path, data, looks_like):
    with pytest.raises(AssetError) as info:
        save_upload(tmp_path, "graph.png", data)
    assert info.value.status == 415
    assert "not a PNG, JPEG, GIF or WebP image" in info.value.message
    assert looks_like in info.value.message
    assert not (tmp_path / "assets").exists()


@pytest.mark.parametrize("svg", [
    b'<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>',
    b'\xef\xbb\xbf<?xml version="1.0"?>\n<!-- x -->\n<svg xmlns="http://www.w3.org/2000/svg"/>',
])
def test_svg_is_refused_for_safety(tmp_path, svg):
    with pytest.raises(AssetError, match="SVG images are not accepted: they can carry scripts"):
        save_upload(tmp_path, "diagram.svg", svg)


@pytest.mark.parametrize("data, message", [
    (make_png()[:20], "PNG image is damaged"),
    (b"GIF89a\x01", "GIF image is damaged"),
    (b"\xff\xd8\xff\xe0\x00\x10JFIF", "JPEG image is damaged"),
    (b"RIFF\x00\x00\x00\x00WEBPVP8 " + b"\x00" * 20, "WebP image is damaged"),
    (make_png(0, 1), "claims to be 0 × 1 pixels"),
])
def test_broken_images_are_refused(tmp_path, data, message):
    with pytest.raises(AssetError, match=message) as info:
        save_upload(tmp_path, "x.png", data)
    assert info.value.status == 415


def test_pixel_floods_are_refused(tmp_path):
    # A few hundred bytes that claim 40,000 × 40,000 pixels would freeze every browser.
    bomb = make_png(1, 1)[:16] + struct.pack(">II", 40_000, 40_000) + make_png(1, 1)[24:]
    with pytest.raises(AssetError, match="40,000 × 40,000 pixels; the limit") as info:
        save_upload(tmp_path, "bomb.png", bomb)
    assert info.value.status == 415


def test_oversize_is_refused_with_the_limit(tmp_path):
    data = make_png() + b"\x00" * 2000
    with pytest.raises(AssetError) as info:
        save_upload(tmp_path, "big.png", data, max_bytes=1000)
    assert info.value.status == 413
    assert "the limit is 1,000 bytes" in info.value.message
    assert "WIKI_MAX_UPLOAD_BYTES" in info.value.message
    assert save_upload(tmp_path, "ok.png", make_png(), max_bytes=len(make_png()))


def test_empty_upload(tmp_path):
    with pytest.raises(AssetError, match="empty") as info:
        save_upload(tmp_path, "x.png", b"")
    assert info.value.status == 400


@pytest.mark.parametrize("filename, slug", [
    ("../../x.png", "x"),
    ("..\\..\\windows\\evil.png", "evil"),
    ("/etc/passwd", "passwd"),
    ("C:\\Users\\ana\\Desktop\\Grafana – p99 (Juni).png", "grafana-p99-juni"),
    ("", "image"),
    ("....png", "image"),
    (".png", "png"),
    ("image.png", "image"),
    ("日本語.png", "image"),
    ("a" * 300 + ".png", "a" * 50),
    ("x\x00y.png", "xy"),
    ("history.png", "history-page"),
])
def test_names_are_sanitised_and_stay_in_the_assets_folder(tmp_path, filename, slug):
    asset = save_upload(tmp_path, filename, make_png(), now=NOW)
    path = Path(asset.rel_path)
    assert path.parent.as_posix() == "assets/2023/06"
    assert path.name.rsplit("-", 1)[0] == slug
    stored = (tmp_path / asset.rel_path).resolve()
    assert tmp_path.resolve() / "assets" in stored.parents
    assert "[" not in asset.markdown.split("](")[0][2:] and "\n" not in asset.markdown


def test_alt_text_cannot_break_the_markdown(tmp_path):
    asset = save_upload(tmp_path, "a](javascript:alert(1)) ![b.png", make_png(), now=NOW)
    alt, url = asset.markdown[2:].split("](")
    assert "]" not in alt and "(" not in alt
    assert url == asset.url_path + ")"


def test_same_name_different_content_never_overwrites(tmp_path):
    first = save_upload(tmp_path, "graph.png", make_png(colour=b"\x00\x00\x00"), now=NOW)
    second = save_upload(tmp_path, "graph.png", make_png(colour=b"\xff\xff\xff"), now=NOW)
    assert first.rel_path != second.rel_path
    assert (tmp_path / first.rel_path).read_bytes() == make_png(colour=b"\x00\x00\x00")
    assert (tmp_path / second.rel_path).read_bytes() == make_png(colour=b"\xff\xff\xff")


def test_the_same_upload_twice_is_stored_once(tmp_path):
    first = save_upload(tmp_path, "graph.png", make_png(), now=NOW)
    again = save_upload(tmp_path, "graph.png", make_png(), now=NOW)
    assert again.rel_path == first.rel_path and not again.created
    assert len(list((tmp_path / "assets").rglob("*.png"))) == 1


def test_a_different_file_holding_the_short_name_gets_a_longer_hash(tmp_path):
    data = make_png()
    short = __import__("hashlib").sha256(data).hexdigest()
    squatter = tmp_path / f"assets/2023/06/graph-{short[:8]}.png"
    squatter.parent.mkdir(parents=True)
    squatter.write_bytes(b"someone else's file")
    asset = save_upload(tmp_path, "graph.png", data, now=NOW)
    assert asset.rel_path == f"assets/2023/06/graph-{short[:16]}.png"
    assert squatter.read_bytes() == b"someone else's file"


def test_no_temporary_files_are_left(tmp_path):
    save_upload(tmp_path, "graph.png", make_png(), now=NOW)
    names = [p.name for p in (tmp_path / "assets/2023/06").iterdir()]
    assert len(names) == 1 and not names[0].startswith(".")


# --------------------------------------------------------------------------------------------
# Serving


def test_asset_path_only_finds_files_inside_the_folder(tmp_path):
    asset = save_upload(tmp_path, "graph.png", make_png(), now=NOW)
    inside = asset.rel_path.split("/", 1)[1]
    assert assets.asset_path(tmp_path, inside) == (tmp_path / asset.rel_path).resolve()
    (tmp_path / "secret.md").write_text("x")
    (tmp_path / "assets" / ".hidden.png").write_bytes(make_png())
    (tmp_path / "assets" / "link.png").symlink_to(tmp_path / "secret.md")
    for bad in ["../secret.md", "2023/../../secret.md", "/etc/passwd", ".hidden.png",
                "2023/06/", "", "2023\\06\\x.png", "x\x00.png", "link.png", "nope.png", "2023"]:
        assert assets.asset_path(tmp_path, bad) is None, bad


@pytest.mark.parametrize("name, expected", [
    ("a.png", ("image/png", True)), ("a.JPG", ("image/jpeg", True)),
    ("a.jpeg", ("image/jpeg", True)),
    ("a.gif", ("image/gif", True)), ("a.webp", ("image/webp", True)),
    ("a.svg", ("application/octet-stream", False)), ("a.html", ("application/octet-stream", False)),
    ("README", ("application/octet-stream", False)),
])
def test_content_types(name, expected):
    assert assets.content_type_for(name) == expected
