"""Markdown templates for new documents (``wiki new``, the editor's "new" page). No Flask.

A template is a Markdown file: an optional front-matter block holding default fields (e.g.
``tags: [security]``) and the body a new document starts with. Teams override or add templates
by dropping files into ``<CONTENT_DIR>/.templates/``; the defaults ship in
``wiki/default_templates/``.

Template names are ``<kind>-<variant>`` (``postmortem-short``) or just ``<kind>``
(``signature``), so ``wiki new postmortem "…" --template short`` reads ``postmortem-short.md``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from . import documents as d

#: Templates shipped with the package.
DEFAULT_DIR = Path(__file__).resolve().parent / "default_templates"
#: Where a team's own templates live, relative to the content dir.
LOCAL_DIR = ".templates"
#: The variant used when none is asked for, per kind (``None``: the file named after the kind).
DEFAULT_VARIANT: dict[str, str | None] = {"postmortem": "full", "signature": None}


class TemplateNotFound(LookupError):
    """No template file of that name, in the content dir or among the defaults."""

    def __init__(self, name: str, available: list[str]):
        self.name, self.available = name, available
        super().__init__(f"no template {name!r}; available: {', '.join(available) or 'none'}")


@dataclass
class Template:
    name: str
    path: Path
    body: str
    front_matter: dict[str, Any] = field(default_factory=dict)  #: default fields, as loaded


def template_name(kind: str, variant: str | None = None) -> str:
    """``("postmortem", None)`` → ``"postmortem-full"``; ``("signature", None)`` → ``"signature"``.
    """
    variant = variant or DEFAULT_VARIANT.get(kind)
    return f"{kind}-{variant}" if variant else kind


def _folders(content_dir: Path | str | None) -> list[Path]:
    folders = [Path(content_dir) / LOCAL_DIR] if content_dir is not None else []
    return folders + [DEFAULT_DIR]


def find_template(content_dir: Path | str | None, name: str) -> Path:
    """The file of template ``name``: the content dir's own first, then the packaged default."""
    for folder in _folders(content_dir):
        path = folder / f"{name}.md"
        if path.is_file():
            return path
    raise TemplateNotFound(name, available(content_dir))


def available(content_dir: Path | str | None, kind: str | None = None) -> list[str]:
    """Names of every template (local and default), optionally only those of one kind."""
    names: set[str] = set()
    for folder in _folders(content_dir):
        if folder.is_dir():
            names.update(p.stem for p in folder.glob("*.md") if not p.name.startswith("."))
    if kind:
        names = {n for n in names if n == kind or n.startswith(f"{kind}-")}
    return sorted(names)


def variants(content_dir: Path | str | None, kind: str) -> list[str]:
    """What ``--template`` accepts for a kind: ``["full", "security", "short"]``."""
    return [n[len(kind) + 1:] for n in available(content_dir, kind) if n != kind]


def load_template(content_dir: Path | str | None, name: str) -> Template:
    """Read template ``name``.

    Raises :class:`TemplateNotFound`, or :class:`documents.DocumentError` for a broken file.
    """
    path = find_template(content_dir, name)
    text, _bom, _newline = d.decode(path.read_bytes())
    front_matter: dict[str, Any] = {}
    body = text
    if text.startswith("---"):
        try:
            fm, body = d.split_front_matter(text)
            front_matter, _lines = d.load_front_matter(fm)
        except d.DocumentError as exc:
            exc.path = str(path)
            raise
    # The id is allocated on creation and the title is given by the user; never from a template.
    for key in ("id", "title", "slug"):
        front_matter.pop(key, None)
    return Template(name, path, body.lstrip("\n"), front_matter)
