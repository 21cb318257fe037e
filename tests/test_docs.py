"""Documentation keeps up with the code: every setting and front-matter field is documented."""

from __future__ import annotations

from pathlib import Path

import pytest

from wiki import config
from wiki import documents as d

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.parametrize("setting", config.SETTINGS, ids=lambda s: s.env)
def test_every_setting_is_in_the_readme(setting):
    readme = (ROOT / "README.md").read_text("utf-8")
    assert f"`{setting.env}`" in readme and f"`{setting.key}`" in readme


@pytest.mark.parametrize("field", sorted({f for table in d.FIELDS.values() for f in table}))
def test_every_front_matter_field_is_documented(field):
    assert f"`{field}`" in (ROOT / "docs" / "content-format.md").read_text("utf-8")


def test_readme_starts_with_the_two_setup_commands():
    head = (ROOT / "README.md").read_text("utf-8").split("\n", 8)
    assert any(line.startswith("make serve") for line in head)
    assert any(line.startswith("make test") for line in head)
    assert "make test" in (ROOT / ".ci" / "run").read_text()
