"""Editor tools: blameless writing hints, timeline from chat, image uploads (issue 4, items 8–10).

* ``POST /api/v1/hints`` with ``{"text", "names": [...]}`` →
  ``{"hints": [{"start", "end", "line", "column", "phrase", "suggestion", "rule"}]}``.
  Offsets count Unicode code points. Hints are advice; nothing here blocks a save.
* ``POST /api/v1/timeline/parse`` with ``{"text", "day"?, "tz"?}`` →
  ``{"lines": [{"time", "date", "display_time", "author", "text", "in_thread"}]}``.
* ``GET/POST /tools/timeline`` — the same without JavaScript: paste, get a Markdown table.
* ``POST /api/v1/assets`` — an image as the multipart field ``file`` (with the CSRF token, see
  :func:`_read_upload`), or as the raw body with an ``X-Filename`` header (URL-encoded) →
  ``201 {"url", "markdown", "path", …}``; 413 over ``WIKI_MAX_UPLOAD_BYTES``, 415 for anything
  but PNG, JPEG, GIF or WebP.
* ``GET/POST /tools/image`` — the same without JavaScript: upload, get the Markdown to copy.
* ``GET /assets/<path>`` — files under ``content/assets/``, with ``nosniff`` and a restrictive
  Content-Security-Policy.

The work is in :mod:`wiki.hints`, :mod:`wiki.chat_timeline` and :mod:`wiki.assets`.
"""

from __future__ import annotations

import logging
from urllib.parse import unquote

from flask import Blueprint, current_app, jsonify, render_template, request, send_file, url_for

from .. import assets, chat_timeline, hints
from ..errors import WikiError
from ..security import csrf_problem
from .api import require_write_token

log = logging.getLogger(__name__)

bp = Blueprint("tools", __name__)

#: Sent with every file under /assets: the browser must not guess another type, and a file
#: opened directly gets no script, no plugins and no access to the wiki's origin.
ASSET_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "Content-Security-Policy": "default-src 'none'; img-src 'self'; style-src 'unsafe-inline'; "
                               "sandbox",
    "Cross-Origin-Resource-Policy": "same-origin",
}
MAX_NAMES = 200


def max_text_bytes() -> int:
    """The largest text the hints API reads: a content file's limit (``WIKI_MAX_FILE_BYTES``)."""
    return int(current_app.config.get("MAX_FILE_BYTES") or 2_000_000)


def max_upload_bytes() -> int:
    return int(current_app.config.get("MAX_UPLOAD_BYTES") or assets.DEFAULT_MAX_BYTES)


def hint_rules() -> hints.Rules:
    """The configured rules (``WIKI_HINTS_FILE``), reloaded when the file changes."""
    try:
        return hints.cached_rules(current_app.config.get("HINTS_FILE") or None)
    except hints.HintsError as exc:
        log.error("blameless hints are off: %s", exc)
        raise WikiError(500, f"The hints file is broken: {exc}") from None


def _json_body(example: str) -> dict:
    data = request.get_json(silent=True)
    if not isinstance(data, dict):
        raise WikiError(400, f"Send a JSON object: {example}")
    return data


def _text_field(data: dict, limit: int, what: str) -> str:
    text = data.get("text")
    if text is None:
        text = ""
    if not isinstance(text, str):
        raise WikiError(400, '"text" must be a string.')
    if len(text) > limit or len(text.encode("utf-8", "surrogatepass")) > limit:
        raise WikiError(413, f"The {what} is {len(text.encode('utf-8', 'surrogatepass')):,} "
                             f"bytes; the limit is {limit:,} bytes.")
    return text


def _check_content_length(limit: int) -> None:
    """Refuse a body far over ``limit`` before reading it (JSON escaping and multipart framing
    add a little; the exact check is on what was sent)."""
    if request.content_length is not None and request.content_length > 2 * limit + 65536:
        raise WikiError(413, f"The request is {request.content_length:,} bytes; the limit is "
                             f"{limit:,} bytes.")


# --------------------------------------------------------------------------------------------
# Blameless hints


@bp.post("/api/v1/hints")
def api_hints():
    """Hints for a text: ``{"text", "names"}`` → ``{"hints": [...]}``."""
    limit = max_text_bytes()
    _check_content_length(limit)
    data = _json_body('{"text": "…", "names": ["Ana Lima"]}')
    text = _text_field(data, limit, "text")
    names = data.get("names") or []
    if isinstance(names, str):
        names = [names]
    if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
        raise WikiError(400, '"names" must be a list of strings.')
    found = hints.find_hints(text, hint_rules(), names[:MAX_NAMES])
    return jsonify({"hints": [h.to_json() for h in found]})


# --------------------------------------------------------------------------------------------
# Timeline from chat


def _parse_timeline(text: str, day: str | None, tz: str | None) -> list[chat_timeline.Line]:
    try:
        return chat_timeline.parse_transcript(text, day=day or None, tz=tz or "UTC")
    except chat_timeline.TranscriptError as exc:
        raise WikiError(exc.status, exc.message) from None


@bp.post("/api/v1/timeline/parse")
def api_timeline_parse():
    """A pasted transcript → ``{"lines": [...]}`` with times in ``tz`` (default UTC)."""
    limit = chat_timeline.MAX_BYTES
    _check_content_length(limit)
    data = _json_body('{"text": "14:02 alice: restarted the pods", "day": "2023-06-14", '
                      '"tz": "Europe/Berlin"}')
    text = _text_field(data, limit, "transcript")
    day, tz = data.get("day"), data.get("tz")
    if day is not None and not isinstance(day, str) or tz is not None and not isinstance(tz, str):
        raise WikiError(400, '"day" and "tz" must be strings, like "2023-06-14" and "UTC".')
    lines = _parse_timeline(text, day, tz)
    return jsonify({"lines": [line.to_json() for line in lines]})


@bp.route("/tools/timeline", methods=["GET", "POST"])
def timeline_page():
    """Paste a transcript, get its lines and a Markdown table to copy (works without JS)."""
    form = {"text": "", "day": "", "tz": "UTC"}
    context: dict = {"lines": None, "table": "", "error": None}
    status = 200
    if request.method == "POST":
        form = {key: request.form.get(key, default) for key, default in form.items()}
        try:
            if not form["text"].strip():
                raise WikiError(400, "Paste a chat transcript first: a Slack export (JSON) or "
                                     "lines like 14:02 alice: restarted the pods.")
            _check_content_length(chat_timeline.MAX_BYTES)
            lines = _parse_timeline(form["text"], form["day"], form["tz"])
        except WikiError as exc:
            context["error"], status = exc.description, exc.code
            if status == 413:
                form["text"] = ""
        else:
            context["lines"] = lines
            context["table"] = chat_timeline.to_markdown_table(lines) if lines else ""
    return render_template("tools/timeline.html", form=form, **context), status


# --------------------------------------------------------------------------------------------
# Images


def _read_upload(limit: int) -> tuple[str, bytes]:
    """The uploaded file's name and bytes (at most ``limit + 1`` of them are read).

    ``/api/`` is exempt from the CSRF check because a cross-site HTML form cannot send JSON,
    but it can send ``multipart/form-data``: such an upload must carry the CSRF token (the
    editor sends it as ``X-CSRFToken``). A raw body needs the ``X-Filename`` header, which a
    cross-site form cannot set, so scripts can upload that way without a session — with an
    ``Authorization: Bearer`` token once the wiki has API tokens, like every other API write.
    """
    _check_content_length(limit)
    if request.mimetype == "multipart/form-data":
        problem = csrf_problem()
        if problem:
            raise WikiError(400, problem.replace("This form", "This upload")
                            .replace("Nothing was saved.", "Nothing was stored."))
        upload = request.files.get("file")
        if upload is None:
            raise WikiError(400, "Send the image as the multipart field 'file'.")
        return upload.filename or "", upload.stream.read(limit + 1)
    require_write_token()  # no session: a script, which needs a token once any exists
    name = unquote(request.headers.get("X-Filename", ""))
    if not name:
        raise WikiError(400, "Send the image as the multipart field 'file', or as the request "
                             "body with its name in an X-Filename header.")
    return name, request.stream.read(limit + 1)


@bp.post("/api/v1/assets")
def api_upload_asset():
    """Store an image under ``content/assets/`` → 201 with its URL and the Markdown to insert."""
    limit = max_upload_bytes()
    if request.content_length is not None and request.content_length > limit + 65536:
        raise WikiError(413, assets.too_large_message(request.content_length, limit))
    filename, data = _read_upload(limit)
    try:
        asset = assets.save_upload(current_app.config["CONTENT_DIR"], filename, data, limit)
    except assets.AssetError as exc:
        raise WikiError(exc.status, exc.message) from None
    _record_in_history(asset, data)
    response = jsonify({
        "url": asset.url_path,
        "markdown": asset.markdown,
        "path": asset.rel_path,
        "content_type": asset.content_type,
        "size": asset.size,
        "width": asset.width,
        "height": asset.height,
    })
    response.status_code = 201
    response.headers["Location"] = url_for("tools.asset", path=asset.rel_path.split("/", 1)[1],
                                           _external=True)
    return response


def _record_in_history(asset: assets.Asset, data: bytes) -> None:
    """Commit the new file when the history knows how (``History.record_asset``)."""
    history = current_app.extensions.get("history")
    record = getattr(history, "record_asset", None)
    if record is None or not asset.created:
        return
    try:
        record(asset.rel_path, data)
    except Exception:  # noqa: BLE001 - the file is stored; history is a bonus here
        log.exception("history: could not record the asset %s", asset.rel_path)


@bp.route("/tools/image", methods=["GET", "POST"])
def image_page():
    """Upload an image and get the Markdown that shows it (works without JavaScript)."""
    context: dict = {"asset": None, "error": None, "max_bytes": max_upload_bytes()}
    status = 200
    if request.method == "POST":
        limit = max_upload_bytes()
        try:
            if request.content_length is not None and request.content_length > limit + 65536:
                raise WikiError(413, assets.too_large_message(request.content_length, limit))
            upload = request.files.get("file")
            if upload is None or not upload.filename:
                raise WikiError(400, "Choose an image file to upload.")
            data = upload.stream.read(limit + 1)
            try:
                asset = assets.save_upload(current_app.config["CONTENT_DIR"], upload.filename,
                                           data, limit)
            except assets.AssetError as exc:
                raise WikiError(exc.status, exc.message) from None
            _record_in_history(asset, data)
            context["asset"] = asset
        except WikiError as exc:
            context["error"], status = exc.description, exc.code
    return render_template("tools/image.html", **context), status


@bp.get("/assets/<path:path>")
def asset(path: str):
    """A file under ``content/assets/``: images inline, anything else as a download."""
    target = assets.asset_path(current_app.config["CONTENT_DIR"], path)
    if target is None:
        raise WikiError(404, f"There is no asset {path}.")
    mimetype, inline = assets.content_type_for(target)
    response = send_file(target, mimetype=mimetype, as_attachment=not inline,
                         download_name=target.name, conditional=True, max_age=86400)
    response.headers.update(ASSET_HEADERS)
    return response
