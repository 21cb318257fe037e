"""The ``wiki`` command line: ``serve``, ``reindex``, ``check``, ``import``, ``new``, ``match``
and ``token``.

Each command is a click command whose docstring is its help text. ``wiki`` is a plain click
group rather than Flask's ``FlaskGroup`` so that ``wiki --help`` needs no ``FLASK_APP`` and
does not build the app just to list commands.

Commands that need the database build the app with :func:`wiki.create_app` and
``SYNC_ON_START=False``, then sync themselves when they need to (``reindex`` with a progress
bar). ``wiki check`` only reads ``content/``: it needs neither the database nor a writable data
folder. Under ``app.test_cli_runner()`` (or ``flask --app wiki …`` once :func:`init_app` has
registered the commands) the commands use that app instead of building one.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import sys
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import click
from flask import Flask, current_app
from flask.cli import ScriptInfo

from . import __version__, create_app, db, doc_templates
from . import config as config_module
from . import documents as d
from .core import Wiki, make_store
from .importer import ImporterError, import_folder
from .store import Problem, Store

_APP_KEY = "wiki.app"
_OVERRIDES_KEY = "wiki.overrides"


# --------------------------------------------------------------------------------------------
# Getting at the app, its settings and its Wiki


def _overrides() -> dict:
    return click.get_current_context().meta.get(_OVERRIDES_KEY, {})


def get_app() -> Flask:
    """The app this command works on: the current one, the runner's, or one built here.

    An app built here skips the start-up sync; commands sync when they need to.
    """
    if current_app:
        return current_app._get_current_object()  # type: ignore[attr-defined]
    ctx = click.get_current_context()
    app = ctx.meta.get(_APP_KEY)
    if app is None:
        info = ctx.find_object(ScriptInfo)  # set by app.test_cli_runner() and `flask --app`
        if info is not None:
            app = info.load_app()
        else:
            app = create_app({**_overrides(), "SYNC_ON_START": False})
        ctx.meta[_APP_KEY] = app
        ctx.with_resource(app.app_context())
    return app


def get_wiki() -> Wiki:
    return get_app().extensions["wiki"]


def get_settings() -> dict:
    """Settings without building the app (so nothing is created in the data folder)."""
    if current_app:
        return current_app.config
    ctx = click.get_current_context()
    if ctx.meta.get(_APP_KEY) is not None or ctx.find_object(ScriptInfo) is not None:
        return get_app().config
    return config_module.load(_overrides())


def _display(path: Path) -> str:
    """A path as the user would type it: relative to the working folder when inside it."""
    try:
        return os.path.relpath(path) if Path.cwd() in path.resolve().parents else str(path)
    except ValueError:  # pragma: no cover - another drive on Windows
        return str(path)


def _plural(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


# --------------------------------------------------------------------------------------------
# The group


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--content-dir", type=click.Path(file_okay=False, path_type=Path),
              help="Folder of postmortems/ and signatures/ [default: $WIKI_CONTENT_DIR or "
                   "./content].")
@click.option("--data-dir", type=click.Path(file_okay=False, path_type=Path),
              help="Folder for the database, search index and revisions [default: "
                   "$WIKI_DATA_DIR or ./.wiki-data].")
@click.version_option(__version__, prog_name="wiki")
@click.pass_context
def cli(ctx: click.Context, content_dir: Path | None, data_dir: Path | None) -> None:
    """Postmortem Wiki: blameless postmortems and bug signatures kept as Markdown files.

    Settings come from environment variables (WIKI_CONTENT_DIR, WIKI_DATA_DIR, DATABASE_URL,
    WIKI_SECRET_KEY, …; see the README); the options below override the two folders.
    """
    overrides = {}
    if content_dir is not None:
        overrides["CONTENT_DIR"] = content_dir
    if data_dir is not None:
        overrides["DATA_DIR"] = data_dir
    ctx.meta[_OVERRIDES_KEY] = overrides
    if ctx.invoked_subcommand != "serve":
        # Keep the output to what the command prints (the app logs each sync at INFO level);
        # a no-op when logging is configured already.
        logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")


def main() -> None:
    """Entry point of the ``wiki`` console script."""
    cli(prog_name="wiki")


def init_app(app: Flask) -> None:
    """Also offer the commands as ``flask --app wiki <command>`` (and on ``app.cli``)."""
    for command in (serve, reindex, check, import_command, new, match_command):
        app.cli.add_command(command)
    app.cli.add_command(token)  # API tokens (issue 7)


# --------------------------------------------------------------------------------------------
# serve


@cli.command()
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Interface to listen on; 0.0.0.0 for every interface.")
@click.option("--port", default=5000, show_default=True, type=click.IntRange(0, 65535),
              help="Port to listen on.")
@click.option("--debug", is_flag=True,
              help="Reload on code changes and show tracebacks in the browser. "
                   "Never in production.")
def serve(host: str, port: int, debug: bool) -> None:
    """Serve the wiki with the development web server.

    Brings the database and search index in line with content/ first. For production run a
    WSGI server instead, for example:

    \b
        gunicorn -w 4 -b 0.0.0.0:8000 'wiki:create_app()'
    """
    app = get_app()
    report = app.extensions["wiki"].sync()
    if report.problems:
        click.echo(f"{_plural(len(report.problems), 'content problem')}; run `wiki check` to "
                   "list them.", err=True)
    app.run(host=host, port=port, debug=debug, use_reloader=debug)


# --------------------------------------------------------------------------------------------
# reindex


class _Progress:
    """A ``progress(n, total)`` callback drawing a click progress bar, made on the first call."""

    def __init__(self, stack: contextlib.ExitStack, label: str):
        self.stack, self.label, self.bar, self.done = stack, label, None, 0

    def __call__(self, n: int, total: int) -> None:
        if self.bar is None:
            self.bar = self.stack.enter_context(
                click.progressbar(length=total, label=self.label, file=sys.stderr)
            )
        self.bar.update(n - self.done)
        self.done = n


@cli.command()
@click.option("--full", is_flag=True,
              help="Forget all derived data and read every file again (after an upgrade, or "
                   "when the database or index is suspect).")
def reindex(full: bool) -> None:
    """Sync the database and search index with content/.

    Only files whose size or modification time changed are read again, unless --full. Prints
    how many documents changed, were removed or were unchanged, then every known content
    problem.
    """
    app = get_app()
    wiki = app.extensions["wiki"]
    search = app.extensions.get("search")
    with contextlib.ExitStack() as stack:
        if search is not None and hasattr(search, "progress"):
            # the search index build, after the reading, draws its own bar
            stack.callback(setattr, search, "progress", search.progress)
            search.progress = _Progress(stack, "Indexing")
        report = wiki.sync(full=full, progress=_Progress(stack, "Reading content"))
    with wiki.session() as session:
        problems = db.problems(session)
    click.echo(f"{len(report.changed)} changed, {len(report.removed)} removed, "
               f"{report.skipped} unchanged, {_plural(len(problems), 'problem')}")
    for p in problems:
        click.echo(f"  {Finding(p.path, p.message, p.line, p.field)}")


# --------------------------------------------------------------------------------------------
# check


@dataclass
class Finding:
    """One thing ``wiki check`` reports: ``path:line: field: message``."""

    path: str
    message: str
    line: int | None = None
    field: str | None = None
    level: str = "error"  #: "error" or "warning"

    def __str__(self) -> str:
        parts = [f"{self.path}:{self.line}" if self.line else self.path]
        parts += [self.field] if self.field else []
        parts += ["warning"] if self.level == "warning" else []
        return ": ".join([*parts, self.message])

    @classmethod
    def from_problem(cls, problem: Problem) -> Finding:
        return cls(problem.path, problem.message, problem.line, problem.field)


@dataclass
class Content:
    """Every content file as read from disk, for the checks. No database involved."""

    store: Store
    documents: list[d.Document] = field(default_factory=list)  #: every readable file, by path
    problems: list[Problem] = field(default_factory=list)  #: files that could not be read
    files: int = 0
    _lines: dict[str, list[str]] = field(default_factory=dict, repr=False)

    @classmethod
    def read(cls, store: Store) -> Content:
        content = cls(store)
        for info in store.files():
            content.files += 1
            doc, problems = store.read_or_problems(info.path)
            content.problems.extend(problems)
            if doc is not None:
                content.documents.append(doc)
        return content

    @property
    def ids(self) -> set[str]:
        return {doc.id for doc in self.documents}

    def line_of(self, path: str, pattern: str, in_body: bool = False) -> int | None:
        """The first line of a file matching a regular expression (1-based), or of its body."""
        if path not in self._lines:
            text = self.store.absolute(path).read_bytes().decode("utf-8", errors="replace")
            self._lines[path] = text.lstrip("\ufeff").splitlines()
        lines = self._lines[path]
        start = 0
        if in_body:  # after the line closing the front matter
            start = next((n for n, line in enumerate(lines[1:], 2) if line.rstrip() == "---"), 0)
        rx = re.compile(pattern, re.IGNORECASE)
        return next((n for n, line in enumerate(lines[start:], start + 1) if rx.search(line)),
                    None)


Check = Callable[[Content], Iterable[Finding]]


def check_files(content: Content) -> Iterator[Finding]:
    """Files that cannot be read: bad YAML, wrong field types, not UTF-8, too large…"""
    for problem in content.problems:
        yield Finding.from_problem(problem)


def check_duplicate_ids(content: Content) -> Iterator[Finding]:
    """Two files with one id: the first by path is used, the others are ignored by the wiki."""
    first: dict[str, d.Document] = {}
    for doc in content.documents:
        if doc.id not in first:
            first[doc.id] = doc
            continue
        yield Finding(doc.path, f"duplicate id {doc.id}: also used by {first[doc.id].path}; "
                                "this file is ignored",
                      content.line_of(doc.path, r"^id\s*:"), "id")


def check_links(content: Content) -> Iterator[Finding]:
    """Ids in related/signatures/incidents and in the body ([[PM-7]]) that no document has."""
    ids = content.ids
    for doc in content.documents:
        for field_name, targets in doc.links().items():
            for target in targets:
                if target in ids:
                    continue
                in_body = field_name == "mentions"
                line = content.line_of(doc.path, rf"(?<![\w-]){re.escape(target)}(?![\w-])",
                                       in_body)
                yield Finding(doc.path, f"links to {target}, which does not exist", line,
                              "body" if in_body else field_name, "warning")


def check_signatures(content: Content) -> Iterator[Finding]:
    """Signatures whose examples do not match them (or whose not_examples do): errors; too broad
    ones (matching ordinary log lines or unrelated documents, no literal anchor): warnings."""
    from . import signatures

    texts = list(signatures.document_texts(content.documents))
    for doc in content.documents:
        if doc.kind is not d.SIGNATURE:
            continue
        for problem in signatures.check_examples(doc):
            name, _, message = problem.partition(": ")
            if name not in ("patterns", "not"):  # "example 2 does not match: …"
                name = "not_examples" if problem.startswith("not_example") else "examples"
                message = problem
            yield Finding(doc.path, message, content.line_of(doc.path, rf"^{name}\s*:"), name)
        for warning in signatures.breadth_warnings(doc, wiki_texts=texts):
            yield Finding(doc.path, warning, content.line_of(doc.path, r"^patterns\s*:"),
                          "patterns", "warning")


#: Every check ``wiki check`` runs, in order. Add new ones here.
CHECKS: list[Check] = [check_files, check_duplicate_ids, check_links, check_signatures]


def run_checks(store: Store, checks: Iterable[Check] = CHECKS) -> tuple[Content, list[Finding]]:
    content = Content.read(store)
    findings = [finding for check in checks for finding in check(content)]
    findings.sort(key=lambda f: (f.path, f.line or 0))
    return content, findings


@cli.command()
@click.option("--strict", is_flag=True, help="Fail on warnings (e.g. broken links) too.")
def check(strict: bool) -> None:
    """Check content/ for broken files, ids, links and signature examples.

    Lists every problem as path:line: field: message. Reads content/ directly: no database,
    and the data folder may be read-only. Reports files that cannot be read or do not
    validate, duplicate ids, signatures whose examples do not match them (or whose
    not_examples do), and, as warnings, links (related, signatures, incidents, [[ids]] in the
    text) to ids that no document has and signatures that look too broad. Exits with status 1
    when there is an error (or, with --strict, a warning), else 0.
    """
    settings = get_settings()
    root = Path(settings["CONTENT_DIR"])
    if not root.is_dir():
        raise click.ClickException(f"content folder {root} does not exist")
    content, findings = run_checks(make_store(settings))
    for finding in findings:
        click.echo(str(finding))
    errors = sum(f.level == "error" for f in findings)
    warnings = len(findings) - errors
    files = _plural(content.files, "file")
    if findings:
        click.echo(f"{_plural(errors, 'error')}, {_plural(warnings, 'warning')} in {files}.",
                   err=True)
    else:
        click.echo(f"No problems in {files} under {_display(root)}.", err=True)
    if errors or (strict and warnings):
        raise SystemExit(1)


# --------------------------------------------------------------------------------------------
# match


@cli.command("match")
@click.argument("file", type=click.File("rb"), metavar="FILE|-")
@click.option("--json", "as_json", is_flag=True,
              help="Print JSON, as POST /api/v1/match answers, instead of a table.")
def match_command(file, as_json: bool) -> None:
    """Which known bug signatures a log, error message or stack trace shows.

    Reads FILE (- for standard input) and tries every active signature on it. Prints the
    confirmed matches, then the partial ones (some but not all of their patterns found), each
    with the lines that matched and the pattern they matched. Exits with status 1 when no
    signature is confirmed, so scripts can use it like grep.
    """
    import json

    from .views import document_url

    app = get_app()
    app.extensions["wiki"].sync()
    result = app.extensions["signatures"].match(file.read())
    base_url = app.config.get("BASE_URL") or None
    with app.test_request_context(base_url=base_url):
        urls = {m.id: document_url(m, _external=bool(base_url)) for m in result.matches}
    if as_json:
        click.echo(json.dumps({"matches": [m.to_json(urls[m.id]) for m in result.matches],
                               "lines": result.lines}, ensure_ascii=False, indent=2))
    else:
        for m in result.matches:
            click.echo(f"{m.id}  {m.confidence:<9}  {m.title}  {urls[m.id]}")
            by_line: dict[int, list] = {}
            for e in m.evidence:
                by_line.setdefault(e.line, []).append(e)
            for line, items in by_line.items():
                click.echo(f"    line {line:<5} {items[0].text[:160]}")
                click.echo(f"               ↳ {'; '.join(e.pattern for e in items)}")
        click.echo(f"{_plural(result.lines, 'line')}: {len(result.confirmed)} confirmed, "
                   f"{len(result.partial)} partial", err=True)
    if not result.confirmed:
        raise SystemExit(1)


# --------------------------------------------------------------------------------------------
# import


@cli.command("import")
@click.argument("path", type=click.Path(exists=True, path_type=Path))
@click.option("--kind", type=click.Choice(sorted(d.KINDS)), default="postmortem",
              show_default=True, help="What the files are.")
@click.option("--dry-run", is_flag=True, help="Report what would be imported; write nothing.")
def import_command(path: Path, kind: str, dry_run: bool) -> None:
    """Import Markdown postmortems written for another tool.

    PATH is a folder (or one file) of Markdown files with front matter in another schema,
    e.g. exported from Morgue or a static-site collection. Maps what has a meaning here:
    title; start_time/end_time/date to started_at, resolved_at and date (times without a
    zone are read as UTC); keywords, categories and tags to tags; product to services;
    summary to a Summary section. Every other field is kept. Imported
    postmortems are published; each gets the next id and an imported_from field, so running
    the same import again changes nothing and a changed source file updates its document
    (unless it was edited in the wiki since). The source folder is only read.
    """
    try:
        report = import_folder(get_wiki(), path, kind, dry_run=dry_run)
    except ImporterError as exc:
        raise click.ClickException(str(exc)) from None
    for line in report.lines():
        click.echo(line)


# --------------------------------------------------------------------------------------------
# new


@cli.command()
@click.argument("kind", type=click.Choice(sorted(d.KINDS)))
@click.argument("title")
@click.option("--template", "variant", metavar="NAME",
              help="Template to start from: for postmortems full (default), short or "
                   "security; or your own <kind>-NAME.md in content/.templates/.")
def new(kind: str, title: str, variant: str | None) -> None:
    """Create a postmortem or signature from a template.

    The new document gets the next free id; its id and path are printed. The body comes
    from a Markdown template: <content>/.templates/<kind>-<NAME>.md when it exists, else the
    one shipped with the wiki. Ids are never reused, even after a delete.
    """
    wiki = get_wiki()
    name = doc_templates.template_name(kind, variant)
    try:
        template = doc_templates.load_template(wiki.content_dir, name)
    except doc_templates.TemplateNotFound:
        choices = ", ".join(doc_templates.variants(wiki.content_dir, kind)) or "none"
        raise click.BadParameter(f"no {kind} template {variant!r}; choose from: {choices}",
                                 param_hint="--template") from None
    except d.DocumentError as exc:
        raise click.ClickException(f"template {exc.path}: {exc}") from None
    wiki.sync()  # so that every id in use is known before one is allocated
    try:
        doc = wiki.create(kind, {**template.front_matter, "title": title}, template.body,
                          message=f"New {kind} from template {name}")
    except d.DocumentError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"Created {doc.id}: {_display(wiki.store.absolute(doc.path))}")


# --------------------------------------------------------------------------------------------
# token (issue 7)


def _token_store():
    from .tokens import TokenStore

    return TokenStore(get_settings()["DATA_DIR"])


@cli.group()
def token() -> None:
    """API tokens for bots and scripts (Authorization: Bearer <token>).

    While no token exists, API writes are open to anyone who can reach the wiki. Once one
    exists, POST and PUT to /api/v1/documents need a valid token; reads stay open. Tokens are
    kept hashed in the data folder (tokens.json).
    """


@token.command("create")
@click.argument("name")
def token_create(name: str) -> None:
    """Make a token called NAME and print it (the only time it is shown)."""
    from .tokens import TokenError

    try:
        record, secret = _token_store().create(name)
    except TokenError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(secret)
    click.echo(f"Token {record.name} created. Copy it now: only its hash is kept. API writes "
               "now need Authorization: Bearer <token>.", err=True)


@token.command("list")
def token_list() -> None:
    """List tokens: name, first characters and creation time (never the token)."""
    from .tokens import TokenError

    try:
        tokens = _token_store().tokens()
    except TokenError as exc:
        raise click.ClickException(str(exc)) from None
    if not tokens:
        click.echo("No API tokens: API writes are open.", err=True)
    for t in tokens:
        click.echo(f"{t.name}\t{t.start}…\t{t.created}")


@token.command("revoke")
@click.argument("name")
def token_revoke(name: str) -> None:
    """Delete the token called NAME; requests carrying it are refused from now on."""
    from .tokens import TokenError

    store = _token_store()
    try:
        store.revoke(name)
        left = len(store.tokens())
    except TokenError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"Token {name} revoked; {_plural(left, 'token')} left"
               + ("" if left else ": API writes are open again") + ".")
