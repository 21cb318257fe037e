"""A regular (non-editable) install still finds static/ and the demo content/."""

from __future__ import annotations

import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def data_file_globs() -> list[str]:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text("utf-8"))
    return [g for globs in config["tool"]["setuptools"]["data-files"].values() for g in globs]


def test_every_static_and_demo_file_is_installed():
    # Path.glob's "*" stays inside one folder, as setuptools' data-files globs do.
    covered = {p for g in data_file_globs() for p in ROOT.glob(g)}
    files = [p for folder in ("static", "content") for p in (ROOT / folder).rglob("*")
             if p.is_file()]
    missing = [p.relative_to(ROOT).as_posix() for p in files
               if p not in covered and "assets" not in p.relative_to(ROOT).parts]
    assert files and missing == [], f"add these to [tool.setuptools.data-files]: {missing}"
