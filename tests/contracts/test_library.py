"""Every template in templates/ lints clean and matches the DSL's published JSON Schema."""

from __future__ import annotations

from pathlib import Path

import jsonschema
import pytest
import yaml

from control_plane.catalog.lint import lint_paths, template_files
from control_plane.contracts import dsl

TEMPLATES = Path(__file__).resolve().parents[2] / "templates"
FILES = list(template_files([TEMPLATES]))


def test_the_library_is_there() -> None:
    assert FILES, "templates/ holds the catalog"


@pytest.mark.parametrize("path", FILES, ids=lambda p: "/".join(p.parts[-2:]))
def test_template_lints_clean(path: Path) -> None:
    report = lint_paths([path])
    assert report.problems == []
    assert len(report.templates) == 1


@pytest.mark.parametrize("path", FILES, ids=lambda p: "/".join(p.parts[-2:]))
def test_template_matches_the_json_schema(path: Path) -> None:
    schema = dsl.json_schema()
    jsonschema.validators.validator_for(schema)(schema).validate(yaml.safe_load(path.read_text()))


def test_the_committed_docs_are_current(tmp_path: Path) -> None:
    """docs/templates is what `storeops catalog docs templates` writes today."""
    from control_plane.catalog.docs import write_docs

    report = lint_paths([TEMPLATES])
    written = write_docs([t for _, t in report.templates], tmp_path)
    committed = TEMPLATES.parent / "docs" / "templates"
    for page in written:
        assert (committed / page.name).read_text() == page.read_text(), (
            f"docs/templates/{page.name} is stale: run storeops catalog docs templates"
        )
