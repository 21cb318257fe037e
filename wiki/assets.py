"""Images uploaded from the editor: checked, stored under ``content/assets/``, linked from Markdown.

:func:`save_upload` accepts PNG, JPEG, GIF and WebP, recognised by their bytes (never by the
file name or the browser's content type), and stores them as
``content/assets/<yyyy>/<mm>/<slug>-<hash>.<ext>``: the slug comes from the uploaded name, the
hash from the bytes, the extension from the detected type. Writes are atomic
(:func:`wiki.store.atomic_write`) and a file is never overwritten by different bytes: the same
upload twice gives the same file, a different image with the same name gets its own.

Why a table of magic bytes and not Pillow or ``filetype``: we never decode pixels on the server
(the browser does), and the four formats have fixed, documented headers that also give the
image size, which is checked against :data:`MAX_PIXELS` (a tiny PNG that claims to be
100,000 × 100,000 pixels would freeze every browser that shows it). ``filetype`` would only
replace the four signature checks; Pillow would add a large native dependency, and decoding
untrusted images in the server process is exactly the attack surface we avoid.

**SVG is refused**: it is XML that can carry scripts and external references. Served from our
origin it could run script when opened directly; export a PNG instead.

No Flask here. Errors are :class:`AssetError` with the HTTP status a view should answer.
"""

from __future__ import annotations

import hashlib
import re
import struct
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path, PurePosixPath

from .documents import slugify
from .store import atomic_write

__all__ = ["Asset", "AssetError", "ImageInfo", "FORMATS", "ASSETS_DIR", "DEFAULT_MAX_BYTES",
           "MAX_PIXELS", "sniff", "save_upload", "asset_path", "content_type_for"]

ASSETS_DIR = "assets"
DEFAULT_MAX_BYTES = 5 * 1024 * 1024
#: Largest image accepted, in pixels (width × height), and per side.
MAX_PIXELS = 100_000_000
MAX_SIDE = 30_000
#: Detected type → (extension, content type, name for messages).
FORMATS = {
    "png": ("png", "image/png", "PNG"),
    "jpeg": ("jpg", "image/jpeg", "JPEG"),
    "gif": ("gif", "image/gif", "GIF"),
    "webp": ("webp", "image/webp", "WebP"),
}
#: Extensions served inline by :func:`content_type_for`; anything else is a download.
_INLINE_TYPES = {"png": "image/png", "jpg": "image/jpeg", "jpeg": "image/jpeg",
                 "gif": "image/gif", "webp": "image/webp"}
ACCEPTED = "PNG, JPEG, GIF or WebP"


class AssetError(Exception):
    """An upload that cannot be stored: ``status`` is 400, 413 or 415; the message says why."""

    def __init__(self, status: int, message: str):
        self.status, self.message = status, message
        super().__init__(message)


@dataclass(frozen=True)
class ImageInfo:
    kind: str  #: a key of :data:`FORMATS`
    width: int
    height: int

    @property
    def extension(self) -> str:
        return FORMATS[self.kind][0]

    @property
    def content_type(self) -> str:
        return FORMATS[self.kind][1]


@dataclass(frozen=True)
class Asset:
    rel_path: str  #: under the content dir, forward slashes: ``assets/2023/06/graph-1a2b3c4d.png``
    url_path: str  #: ``/assets/2023/06/graph-1a2b3c4d.png``
    markdown: str  #: ``![graph](/assets/2023/06/graph-1a2b3c4d.png)``
    content_type: str
    size: int
    width: int
    height: int
    created: bool  #: False when the same bytes were stored already


# --------------------------------------------------------------------------------------------
# Recognising images


def _png(data: bytes) -> tuple[int, int] | None:
    # 8-byte signature, then the IHDR chunk: length 13, "IHDR", width, height (big-endian).
    if data[:8] != b"\x89PNG\r\n\x1a\n" or len(data) < 24 or data[12:16] != b"IHDR":
        return None
    return struct.unpack(">II", data[16:24])


def _gif(data: bytes) -> tuple[int, int] | None:
    if data[:6] not in (b"GIF87a", b"GIF89a") or len(data) < 10:
        return None
    return struct.unpack("<HH", data[6:10])


def _webp(data: bytes) -> tuple[int, int] | None:
    # RIFF <size> WEBP, then a VP8 (lossy), VP8L (lossless) or VP8X (extended) chunk.
    if len(data) < 30 or data[:4] != b"RIFF" or data[8:12] != b"WEBP":
        return None
    chunk = data[12:16]
    if chunk == b"VP8X":
        width = 1 + int.from_bytes(data[24:27], "little")
        height = 1 + int.from_bytes(data[27:30], "little")
        return width, height
    if chunk == b"VP8L" and data[20] == 0x2F:
        bits = int.from_bytes(data[21:25], "little")
        return 1 + (bits & 0x3FFF), 1 + ((bits >> 14) & 0x3FFF)
    if chunk == b"VP8 " and data[23:26] == b"\x9d\x01\x2a":
        width, height = struct.unpack("<HH", data[26:30])
        return width & 0x3FFF, height & 0x3FFF
    return None


#: JPEG start-of-frame markers (baseline, progressive, …), which carry the image size.
_SOF_MARKERS = {0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF}


def _jpeg(data: bytes) -> tuple[int, int] | None:
    # SOI (FF D8), then segments "FF <marker> <length>" until a start-of-frame segment.
    if data[:3] != b"\xff\xd8\xff":
        return None
    pos = 2
    while pos + 4 <= len(data):
        if data[pos] != 0xFF:
            return None
        marker = data[pos + 1]
        if marker == 0xFF:  # fill byte
            pos += 1
            continue
        if marker in (0xD8, 0x01) or 0xD0 <= marker <= 0xD7:  # no length
            pos += 2
            continue
        (length,) = struct.unpack(">H", data[pos + 2:pos + 4])
        if length < 2:
            return None
        if marker in _SOF_MARKERS:
            if pos + 9 > len(data):
                return None
            height, width = struct.unpack(">HH", data[pos + 5:pos + 9])
            return width, height
        if marker in (0xD9, 0xDA):  # end of image, start of scan: no frame header found
            return None
        pos += 2 + length
    return None


#: Each format: how its files start, and the reader of its header.
_READERS = (("png", b"\x89PNG", _png), ("jpeg", b"\xff\xd8\xff", _jpeg), ("gif", b"GIF8", _gif),
            ("webp", b"RIFF", _webp))


def _describe(data: bytes) -> str:
    """What a rejected upload looks like, for the error message."""
    head = data[:512].lstrip(b"\xef\xbb\xbf \t\r\n").lower()
    if head.startswith(b"<svg") or (head.startswith(b"<?xml") and b"<svg" in data[:4096].lower()):
        return "svg"
    if head.startswith(b"%pdf"):
        return "a PDF document"
    if head.startswith(b"pk\x03\x04"):
        return "a ZIP archive (or an Office document)"
    if head.startswith((b"<!doctype html", b"<html")) or b"<script" in head:
        return "HTML"
    if data[:4] in (b"II*\x00", b"MM\x00*"):
        return "a TIFF image"
    if data[:2] == b"BM":
        return "a BMP image"
    if data[4:12] in (b"ftypheic", b"ftypheix", b"ftypmif1", b"ftypavif"):
        return "a HEIC/AVIF image"
    try:
        data[:4096].decode("utf-8")
        return "text"
    except UnicodeDecodeError:
        return "binary data of an unknown kind"


def sniff(data: bytes) -> ImageInfo:
    """The type and size of an image from its bytes. Raises :class:`AssetError` (415)."""
    for kind, magic, read in _READERS:
        try:
            size = read(data)
        except (struct.error, IndexError):
            size = None
        if size is not None:
            width, height = size
            if width < 1 or height < 1:
                raise AssetError(415, f"The {FORMATS[kind][2]} image is damaged: it claims to "
                                      f"be {width} × {height} pixels.")
            if width > MAX_SIDE or height > MAX_SIDE or width * height > MAX_PIXELS:
                raise AssetError(415, f"The image is {width:,} × {height:,} pixels; the limit "
                                      f"is {MAX_SIDE:,} per side and {MAX_PIXELS:,} in all.")
            return ImageInfo(kind, width, height)
        if data.startswith(magic) and (kind != "webp" or data[8:12] == b"WEBP"):
            raise AssetError(415, f"The {FORMATS[kind][2]} image is damaged or cut off: its "
                                  f"header cannot be read.")
    found = _describe(data)
    if found == "svg":
        raise AssetError(415, "SVG images are not accepted: they can carry scripts. Export the "
                              "image as PNG instead.")
    raise AssetError(415, f"This is not a {ACCEPTED} image (its content looks like {found}). "
                          f"Upload a screenshot or graph in one of those formats.")


# --------------------------------------------------------------------------------------------
# Storing


def _alt_text(filename: str) -> str:
    stem = PurePosixPath(filename).stem if filename else ""
    alt = " ".join(re.sub(r"[\[\]()<>*_`\\!#|\-]+", " ", stem).split())
    return alt[:100].strip() or "image"


def _base_name(filename: str) -> str:
    """The last path component of an uploaded name, whichever separator the client used."""
    name = (filename or "").replace("\\", "/").rsplit("/", 1)[-1]
    return name.replace("\x00", "")


def save_upload(content_dir: Path | str, filename: str, data: bytes,
                max_bytes: int = DEFAULT_MAX_BYTES, now: datetime | None = None) -> Asset:
    """Check and store an uploaded image; return where it is and the Markdown linking it.

    Raises :class:`AssetError`: 400 for an empty upload, 413 over ``max_bytes``, 415 for
    anything but a PNG, JPEG, GIF or WebP image.
    """
    if not data:
        raise AssetError(400, "The upload is empty: choose an image file.")
    if len(data) > max_bytes:
        raise AssetError(413, too_large_message(len(data), max_bytes))
    info = sniff(data)
    name = _base_name(filename)
    slug = slugify(PurePosixPath(name).stem or "image", max_length=50)
    if slug == "untitled":
        slug = "image"
    now = now or datetime.now(UTC)
    folder = f"{ASSETS_DIR}/{now:%Y}/{now:%m}"
    digest = hashlib.sha256(data).hexdigest()
    root = Path(content_dir)
    created = False
    for length in (8, 16, 64):  # a longer hash only if a different file holds the short name
        rel = f"{folder}/{slug}-{digest[:length]}.{info.extension}"
        path = root / rel
        try:
            existing = path.read_bytes() if path.exists() else None
        except OSError:
            existing = b""
        if existing == data:
            break
        if existing is None:
            atomic_write(path, data)
            created = True
            break
    else:  # pragma: no cover - needs a SHA-256 collision
        raise AssetError(409, "An asset with the same name and hash exists already.")
    url = f"/{rel}"
    alt = _alt_text(name)
    return Asset(rel, url, f"![{alt}]({url})", info.content_type, len(data), info.width,
                 info.height, created)


def too_large_message(size: int, limit: int) -> str:
    return (f"The image is {size:,} bytes; the limit is {limit:,} bytes "
            f"({limit / 1024 / 1024:.3g} MB, WIKI_MAX_UPLOAD_BYTES). Crop or shrink it, or save "
            f"it as JPEG.")


# --------------------------------------------------------------------------------------------
# Serving


def asset_path(content_dir: Path | str, path: str) -> Path | None:
    """The file under ``content/assets/`` that a URL path names, or ``None``: no ``..``, no
    absolute paths, no hidden files, no symlinks leading out of the folder."""
    if not path or "\x00" in path or "\\" in path:
        return None
    parts = PurePosixPath(path).parts
    if not parts or PurePosixPath(path).is_absolute() or any(
            p in ("", ".", "..") or p.startswith(".") for p in parts):
        return None
    root = (Path(content_dir) / ASSETS_DIR).resolve()
    target = (root / Path(*parts)).resolve()
    if root not in target.parents or not target.is_file():
        return None
    return target


def content_type_for(path: Path | str) -> tuple[str, bool]:
    """``(content type, inline)`` for a file under assets: images inline, the rest a download."""
    ext = PurePosixPath(str(path)).suffix.lower().lstrip(".")
    if ext in _INLINE_TYPES:
        return _INLINE_TYPES[ext], True
    return "application/octet-stream", False
