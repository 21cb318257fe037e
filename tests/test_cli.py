"""wiki.cli: every command through the app's CLI runner, and the real ``wiki`` console script."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner
from flask import Flask

from tests.conftest import write_doc
from wiki import documents as d
from wiki.cli import cli

FIXTURES = Path(__file__).parent / "fixtures"
CREATED_RE = re.compile(r"Created ((?:PM|SIG)-\d+): (\S+)")


def created(result) -> tuple[str, Path]:
    assert result.exit_code == 0, result.output
    m = CREATED_RE.search(result.stdout)
    assert m, result.output
    return m.group(1), Path(m.group(2))


# -- help ----------------------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(cli.commands))
def test_every_command_has_help_text(name):
    command = cli.commands[name]
    assert command.help and command.help.strip(), f"wiki {name} has no docstring"
    result = CliRunner().invoke(cli, [name, "--help"])
    assert result.exit_code == 0, result.output
    assert command.help.strip().splitlines()[0] in result.output


def test_group_help_lists_the_commands():
    result = CliRunner().invoke(cli, ["--help"])
    assert result.exit_code == 0
    for name in ("serve", "reindex", "check", "import", "new"):
        assert re.search(rf"^\s+{name}\s+\S", result.output, re.MULTILINE), name


def test_console_script_help_needs_no_flask_app(tmp_path):
    script = Path(sys.executable).parent / "wiki"
    assert script.exists(), "the package is not installed: run `pip install -e .`"
    env = {"PATH": str(script.parent), "HOME": str(tmp_path)}
    result = subprocess.run([str(script), "--help"], cwd=tmp_path, env=env, capture_output=True,
                            text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert "reindex" in result.stdout and "serve" in result.stdout
    assert not (tmp_path / ".wiki-data").exists()  # --help builds no app


def test_serve_help_mentions_production_server():
    result = CliRunner().invoke(cli, ["serve", "--help"])
    assert result.exit_code == 0
    assert "--host" in result.output and "--port" in result.output
    assert "gunicorn" in result.output


def test_serve_runs_the_app_on_host_and_port(runner, monkeypatch):
    calls = []
    monkeypatch.setattr(Flask, "run", lambda self, **kwargs: calls.append(kwargs))
    result = runner.invoke(cli, ["serve", "--host", "0.0.0.0", "--port", "8123"])
    assert result.exit_code == 0, result.output
    assert calls == [{"host": "0.0.0.0", "port": 8123, "debug": False, "use_reloader": False}]


# -- new -----------------------------------------------------------------------------------


def test_new_twice_gives_two_ids_that_are_never_reused(app, runner):
    first, first_path = created(runner.invoke(cli, ["new", "postmortem", "Disk full on log host"]))
    second, second_path = created(runner.invoke(cli, ["new", "postmortem", "Disk full again"]))
    assert first != second
    assert first_path.name.startswith(f"{first}-disk-full-on-log-host")
    wiki = app.extensions["wiki"]

    wiki.delete(first)
    assert not first_path.exists()
    assert wiki.get(second).title == "Disk full again"
    assert second_path.exists()

    wiki.delete(second)  # even the highest id is not handed out again
    third, _ = created(runner.invoke(cli, ["new", "postmortem", "Third"]))
    assert d.parse_id(third)[1] > d.parse_id(second)[1] > d.parse_id(first)[1]


def test_new_postmortem_from_the_full_template(app, runner):
    ident, path = created(runner.invoke(cli, ["new", "postmortem", "Queue backlog"]))
    doc = app.extensions["wiki"].get(ident)
    assert doc.title == "Queue backlog" and doc.status == "draft"
    assert [title for title, _ in doc.sections()] == list(d.POSTMORTEM.sections)
    assert all(text.strip() for _, text in doc.sections())  # each section has a hint
    assert path.exists()


def test_new_postmortem_short_and_security_templates(app, runner):
    short, _ = created(runner.invoke(cli, ["new", "postmortem", "Short", "--template", "short"]))
    secure, _ = created(runner.invoke(cli, ["new", "postmortem", "Token leak",
                                            "--template", "security"]))
    wiki = app.extensions["wiki"]
    assert [t for t, _ in wiki.get(short).sections()] == [
        "Summary", "Impact", "Timeline", "Root cause and contributing factors", "Action items"]
    security = wiki.get(secure)
    titles = [t for t, _ in security.sections()]
    assert "Data exposure" in titles and "Disclosure and notification" in titles
    assert security.tags == ["security"]


def test_new_signature_from_its_template(app, runner):
    ident, _ = created(runner.invoke(cli, ["new", "signature", "Bit flip in hash lists"]))
    assert ident.startswith("SIG-")
    doc = app.extensions["wiki"].get(ident)
    assert [t for t, _ in doc.sections()] == list(d.SIGNATURE.sections)
    assert doc.status == "active"


def test_new_prefers_the_content_folders_own_template(app, runner, content_dir):
    write_doc(content_dir, ".templates/postmortem-full.md", """\
        ---
        services: [payments]
        ---
        ## What happened

        Our team's own template.
        """)
    ident, _ = created(runner.invoke(cli, ["new", "postmortem", "Card declines"]))
    doc = app.extensions["wiki"].get(ident)
    assert doc.section("What happened") == "Our team's own template."
    assert doc.services == ["payments"]


def test_new_with_an_unknown_template_lists_the_choices(runner):
    result = runner.invoke(cli, ["new", "postmortem", "X", "--template", "nope"])
    assert result.exit_code == 2
    assert "full, security, short" in result.output


def test_new_with_an_empty_title_fails_cleanly(runner):
    result = runner.invoke(cli, ["new", "postmortem", "  "])
    assert result.exit_code == 1
    assert "title" in result.output and "Traceback" not in result.output


# -- reindex -------------------------------------------------------------------------------


def test_reindex_counts_changes_and_lists_problems(runner, content_dir):
    result = runner.invoke(cli, ["reindex"])  # the app synced at start-up
    assert result.exit_code == 0, result.output
    assert "0 changed, 0 removed, 2 unchanged, 0 problems" in result.stdout

    write_doc(content_dir, "postmortems/PM-2-new.md", """\
        ---
        id: PM-2
        title: A new one
        ---
        """)
    write_doc(content_dir, "postmortems/PM-3-broken.md", """\
        ---
        id: PM-3
        title: Broken
        severity: SEV9
        ---
        """)
    (content_dir / "signatures/SIG-1-cache-stampede.md").unlink()
    result = runner.invoke(cli, ["reindex"])
    assert result.exit_code == 0, result.output
    assert "1 changed, 1 removed, 1 unchanged, 1 problem" in result.stdout
    assert "postmortems/PM-3-broken.md:4: severity: 'SEV9' is not one of" in result.stdout


def test_reindex_full_reads_every_file_again(runner):
    result = runner.invoke(cli, ["reindex", "--full"])
    assert result.exit_code == 0, result.output
    assert "2 changed, 0 removed, 0 unchanged, 0 problems" in result.stdout


def test_reindex_draws_a_progress_bar(runner, content_dir):
    for n in range(2, 6):
        write_doc(content_dir, f"postmortems/PM-{n}-x.md", f"---\nid: PM-{n}\ntitle: T{n}\n---\n")
    result = runner.invoke(cli, ["reindex"])
    assert result.exit_code == 0, result.output
    assert "Reading content" in result.stderr
    assert "Indexing" in result.stderr  # the search index's bar
    assert "4 changed" in result.stdout


def test_reindex_full_draws_both_progress_bars(runner):
    result = runner.invoke(cli, ["reindex", "--full"])
    assert result.exit_code == 0, result.output
    assert result.stderr.index("Reading content") < result.stderr.index("Indexing")


# -- check ---------------------------------------------------------------------------------


def test_check_passes_on_clean_content(runner):
    result = runner.invoke(cli, ["check"])
    assert result.exit_code == 0, result.output
    assert result.stdout == ""
    assert "No problems in 2 files" in result.stderr


def test_check_lists_a_broken_file_with_its_line(runner, content_dir):
    write_doc(content_dir, "postmortems/PM-2-broken.md", """\
        ---
        id: PM-2
        title: Broken severity
        severity: SEV9
        started_at: yesterday
        ---
        """)
    (content_dir / "postmortems/PM-3-bad-yaml.md").write_text("---\nid: PM-3\ntitle: [oops\n---\n")
    result = runner.invoke(cli, ["check"])
    assert result.exit_code == 1
    lines = result.stdout.splitlines()
    assert "postmortems/PM-2-broken.md:4: severity: 'SEV9' is not one of: SEV1, SEV2, SEV3, SEV4" \
        in lines
    assert any(line.startswith("postmortems/PM-2-broken.md:5: started_at: ") for line in lines)
    assert any(line.startswith("postmortems/PM-3-bad-yaml.md:") and "invalid YAML" in line
               for line in lines)
    assert "3 errors, 0 warnings in 4 files." in result.stderr


def test_check_reports_duplicate_ids(runner, content_dir):
    write_doc(content_dir, "postmortems/PM-9-copy.md", """\
        ---
        title: A copy
        id: PM-1
        ---
        """)
    result = runner.invoke(cli, ["check"])
    assert result.exit_code == 1
    assert ("postmortems/PM-9-copy.md:3: id: duplicate id PM-1: also used by "
            "postmortems/PM-1-checkout-latency.md") in result.stdout


def test_check_warns_about_links_to_missing_ids(runner, content_dir):
    write_doc(content_dir, "signatures/SIG-2-orphan.md", """\
        ---
        id: SIG-2
        title: Orphan
        incidents: [PM-1, PM-404]
        ---
        ## Seen in
        [[PM-1]] and [[SIG-77]].
        """)
    result = runner.invoke(cli, ["check"])
    assert result.exit_code == 0, result.output  # warnings only
    lines = result.stdout.splitlines()
    assert ("signatures/SIG-2-orphan.md:4: incidents: warning: links to PM-404, which does not "
            "exist") in lines
    assert "signatures/SIG-2-orphan.md:7: body: warning: links to SIG-77, which does not exist" \
        in lines
    assert len(lines) == 2
    assert runner.invoke(cli, ["check", "--strict"]).exit_code == 1


def test_check_needs_no_database_or_writable_data_folder(content_dir, tmp_path):
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where the data folder's parent should be")
    data_dir = blocker / "data"  # cannot be created, even by root
    result = CliRunner().invoke(
        cli, ["--content-dir", str(content_dir), "--data-dir", str(data_dir), "check"])
    assert result.exit_code == 0, result.output
    assert "No problems in 2 files" in result.output


def test_check_fails_on_a_missing_content_folder(tmp_path):
    result = CliRunner().invoke(cli, ["--content-dir", str(tmp_path / "nowhere"), "check"])
    assert result.exit_code == 1
    assert "does not exist" in result.output


# -- import --------------------------------------------------------------------------------


def test_import_prints_a_report_and_is_idempotent(runner, app, tmp_path):
    source = FIXTURES / "import_foreign"
    dry = runner.invoke(cli, ["import", str(source), "--dry-run"])
    assert dry.exit_code == 0, dry.output
    assert "4 would import" in dry.stdout
    assert len(app.extensions["wiki"].store.files()) == 2  # nothing written

    first = runner.invoke(cli, ["import", str(source)])
    assert first.exit_code == 0, first.output
    assert "4 imported, 0 updated, 0 unchanged, 3 skipped" in first.stdout
    assert "no_front_matter.md: line 1: no front matter" in first.stdout
    second = runner.invoke(cli, ["import", str(source)])
    assert "0 imported, 0 updated, 4 unchanged, 3 skipped" in second.stdout
    assert len(app.extensions["wiki"].store.files()) == 6


def test_import_refuses_a_folder_inside_the_content_folder(runner, content_dir):
    result = runner.invoke(cli, ["import", str(content_dir / "postmortems")])
    assert result.exit_code == 1
    assert "inside the content folder" in result.output


def test_init_app_offers_the_commands_on_the_flask_cli(app, runner):
    from wiki.cli import init_app

    init_app(app)
    assert {"serve", "reindex", "check", "import", "new"} <= set(app.cli.commands)
    result = runner.invoke(args=["check"])  # as `flask --app wiki check` would
    assert result.exit_code == 0, result.output
    assert "No problems in 2 files" in result.output
