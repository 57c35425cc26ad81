"""The negative set: every file in broken/ is a realistic template with exactly one mistake,
and lint reports that mistake, at its line and column, with the field and message it
declares in its first line:

    # expect: LINE:COLUMN FIELD: MESSAGE

FIELD is the problem's field exactly (``-`` when it has none, as for YAML errors); MESSAGE
is a substring of the problem's message. Where the one mistake has a natural second
consequence (a step it left unreachable), each is declared on a following ``# also:`` line
in the same form. Lint must report exactly the declared problems, nothing more.

The files in valid/ are the positive side: they lint clean.
"""

from __future__ import annotations

import re
import shutil
from dataclasses import dataclass
from pathlib import Path

import pytest
from click.testing import CliRunner

from control_plane.catalog.lint import lint_paths, template_files
from control_plane.cli import main
from control_plane.contracts.source import Problem
from control_plane.contracts.validate import lint

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
BROKEN = sorted((HERE / "broken").glob("*.yaml"))
VALID = sorted((HERE / "valid").glob("*.yaml"))
EXAMPLE = ROOT / "templates" / "stock-transfer-approval" / "1.0.0.yaml"

_DECLARATION = re.compile(r"^# (expect|also): (\d+):(\d+) (\S+): (.+)$")


@dataclass(frozen=True)
class Expected:
    line: int
    column: int
    field: str
    message: str

    def matches(self, problem: Problem) -> bool:
        return (
            (problem.line, problem.column) == (self.line, self.column)
            and problem.field == self.field
            and self.message in problem.message
        )

    def __str__(self) -> str:
        return f"{self.line}:{self.column}: {self.field or '-'}: ...{self.message}..."


def declared(path: Path) -> list[Expected]:
    """The problems a broken file declares: its ``# expect:`` line, then any ``# also:``."""
    expected: list[Expected] = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        match = _DECLARATION.match(line)
        if not match:
            break
        kind, row, column, field, message = match.groups()
        assert (kind == "expect") == (number == 1), f"{path.name}:{number}: expect first, then also"
        expected.append(Expected(int(row), int(column), "" if field == "-" else field, message))
    assert expected, f"{path.name} does not start with '# expect: LINE:COLUMN FIELD: MESSAGE'"
    return expected


def lint_file(path: Path, **expect: str) -> list[Problem]:
    _, problems = lint(path.read_text(encoding="utf-8"), path.name, **expect)
    return problems


def test_the_negative_set_is_large_enough() -> None:
    assert len(BROKEN) >= 30
    assert VALID


@pytest.mark.parametrize("path", BROKEN, ids=lambda p: p.stem)
def test_a_broken_template_yields_its_declared_problem(path: Path) -> None:
    expected = declared(path)
    problems = lint_file(path)
    shown = "\n".join(str(p) for p in problems) or "(no problems)"
    wanted = "\n".join(str(e) for e in expected)
    assert len(problems) == len(expected), f"declared:\n{wanted}\ngot:\n{shown}"
    for want in expected:
        assert any(want.matches(p) for p in problems), f"missing {want}; got:\n{shown}"
    assert all(p.file == path.name for p in problems)


@pytest.mark.parametrize("path", BROKEN, ids=lambda p: p.stem)
def test_a_broken_template_declares_a_line_that_exists(path: Path) -> None:
    """Guards the declarations themselves: a line past the end means a stale header."""
    lines = path.read_text(encoding="utf-8").splitlines()
    for want in declared(path):
        assert 1 <= want.line <= max(len(lines), 1)
        assert 1 <= want.column <= max(len(lines[want.line - 1]) + 1, 1)


@pytest.mark.parametrize("path", VALID, ids=lambda p: p.stem)
def test_a_valid_template_lints_clean(path: Path) -> None:
    assert lint_file(path) == []


def test_a_cycle_through_a_step_with_loop_is_fine() -> None:
    """The positive twin of broken/cycle-without-loop.yaml: same cycle, one `loop`."""
    broken = (HERE / "broken" / "cycle-without-loop.yaml").read_text(encoding="utf-8")
    looped = broken.replace(
        "  - id: review\n", "  - id: review\n    loop: {max_iterations: 3}\n", 1
    )
    assert looped != broken
    assert lint(looped, "looped.yaml")[1] == []


# --- folder and file name -------------------------------------------------------------


def test_id_and_version_must_match_folder_and_file_name() -> None:
    problems = lint_file(EXAMPLE, expect_id="stock-transfer", expect_version="1.0.1")
    assert [(p.line, p.field) for p in problems] == [(1, "id"), (3, "version")]
    assert "differs from its folder 'stock-transfer'" in problems[0].message
    assert "differs from its file name 1.0.1.yaml" in problems[1].message
    assert lint_file(EXAMPLE, expect_id="stock-transfer-approval", expect_version="1.0.0") == []


def test_lint_paths_checks_the_layout(tmp_path: Path) -> None:
    """templates/<id>/<version>.yaml: a copy under the wrong folder or file name is refused."""
    for where in (
        "stock-transfer-approval/1.0.0.yaml",
        "stock-transfer/1.0.0.yaml",
        "stock-transfer-approval/1.1.0.yaml",
    ):
        (tmp_path / where).parent.mkdir(exist_ok=True)
        shutil.copy(EXAMPLE, tmp_path / where)
    report = lint_paths([tmp_path])
    assert report.files == 3
    assert [(Path(t).parent.name, Path(t).name) for t, _ in report.templates] == [
        ("stock-transfer-approval", "1.0.0.yaml")
    ]
    assert sorted(
        (Path(p.file).relative_to(tmp_path).as_posix(), p.line, p.field) for p in report.problems
    ) == [
        ("stock-transfer-approval/1.1.0.yaml", 3, "version"),
        ("stock-transfer/1.0.0.yaml", 1, "id"),
    ]


# --- the command line -----------------------------------------------------------------


def test_cli_lint_passes_the_library() -> None:
    result = CliRunner().invoke(main, ["catalog", "lint", str(ROOT / "templates")])
    assert result.exit_code == 0, result.output
    files = len(list(template_files([ROOT / "templates"])))
    assert f"{files} file(s), 0 problem(s): all valid" in result.output


def test_cli_lint_prints_one_line_per_problem_and_fails() -> None:
    result = CliRunner().invoke(main, ["catalog", "lint", str(HERE / "broken")])
    assert result.exit_code == 1
    lines = [line for line in result.stdout.splitlines() if line.strip()]
    where = re.compile(r"^(?P<file>.+\.yaml):(?P<line>\d+):(?P<column>\d+): ")
    expected = sorted(
        (str(path), want.line, want.column) for path in BROKEN for want in declared(path)
    )
    printed = []
    for line in lines:
        match = where.match(line)
        assert match, f"not file:line:col: {line!r}"
        printed.append((match["file"], int(match["line"]), int(match["column"])))
    assert sorted(printed) == expected
    assert f"{len(BROKEN)} file(s), {len(expected)} problem(s)" in result.output
