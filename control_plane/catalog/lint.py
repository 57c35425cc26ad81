"""Linting template files on disk: ``templates/<template-id>/<semver>.yaml``."""

from __future__ import annotations

import itertools
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from control_plane.contracts import compat
from control_plane.contracts.dsl import Template
from control_plane.contracts.source import Problem
from control_plane.contracts.validate import lint

_LAYOUT = re.compile(r"^(?P<id>[a-z][a-z0-9-]+)/(?P<version>\d+\.\d+\.\d+[^/]*)\.ya?ml$")


@dataclass
class LintReport:
    templates: list[tuple[Path, Template]] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)
    files: int = 0


def template_files(paths: Iterable[Path]) -> Iterator[Path]:
    """The YAML files named by ``paths`` (folders are searched), in a stable order."""
    for path in paths:
        if path.is_dir():
            yield from sorted(p for p in path.rglob("*.y*ml") if p.is_file())
        else:
            yield path


def lint_file(path: Path) -> tuple[Template | None, list[Problem]]:
    shown = str(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        return None, [Problem(shown, 1, 1, "", f"cannot read: {exc}")]
    layout = _LAYOUT.search("/".join(path.parts[-2:]))
    return lint(
        text,
        shown,
        expect_id=layout.group("id") if layout else None,
        expect_version=layout.group("version") if layout else None,
    )


def lint_paths(paths: Iterable[Path]) -> LintReport:
    """Lint each file, then semver across the versions of each template found."""
    report = LintReport()
    for path in template_files(paths):
        report.files += 1
        template, problems = lint_file(path)
        report.problems.extend(problems)
        if template is not None and not problems:
            report.templates.append((path, template))
    report.templates.sort(key=lambda item: (item[1].id, compat.semver(item[1].version)))
    for (_, older), (path, newer) in itertools.pairwise(report.templates):
        if older.id == newer.id:
            problem = compat.bump_problem(older, newer)
            if problem:
                line = _line_of(path, "version:")
                report.problems.append(Problem(str(path), line, 1, "version", problem))
    return report


def _line_of(path: Path, prefix: str) -> int:
    lines = path.read_text(encoding="utf-8").splitlines()
    return next((i for i, text in enumerate(lines, 1) if text.startswith(prefix)), 1)
