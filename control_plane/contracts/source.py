"""Template sources: YAML text to plain data, remembering where every value stands."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

import yaml

Path = tuple[str | int, ...]
#: Marks the position of a mapping *key* (rather than its value) in ``Source.positions``.
KEY = "<key>"


@dataclass(frozen=True, order=True)
class Problem:
    """One thing wrong with a template, where it is, and what would be accepted."""

    file: str
    line: int
    column: int
    field: str
    message: str

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}:{self.column}"
        return (
            f"{where}: {self.field}: {self.message}" if self.field else f"{where}: {self.message}"
        )


class TemplateError(Exception):
    def __init__(self, problems: list[Problem]) -> None:
        super().__init__("\n".join(str(p) for p in problems))
        self.problems = problems


@dataclass
class Source:
    file: str
    data: Any
    lines: list[str] = field(default_factory=list)
    positions: dict[Path, tuple[int, int]] = field(default_factory=dict)
    text: str = ""
    #: Scalars by path: (index of the node in ``text``, YAML style, decoded value).
    scalars: dict[Path, tuple[int, str | None, str]] = field(default_factory=dict)

    def position(self, path: Path) -> tuple[int, int]:
        """1-based (line, column) of the value at ``path``, or of its nearest ancestor."""
        probe = tuple(path)
        while probe:
            if probe in self.positions:
                return self.positions[probe]
            probe = probe[:-1]
        return self.positions.get((), (1, 1))

    def problem(self, path: Path, message: str, *, offset: int | None = None) -> Problem:
        """A problem at ``path``; ``offset`` points inside a scalar (e.g. a CEL column)."""
        line, column = self.position(path)
        inside = self._inside(path, offset) if offset is not None else None
        if inside is not None:
            line, column = inside
        elif offset is not None:
            text = self.lines[line - 1] if 0 < line <= len(self.lines) else ""
            quoted = text[column - 1 : column] in {"'", '"'}
            column += offset + (1 if quoted else 0)
        return Problem(self.file, line, column, render_path(path), message)

    def _inside(self, path: Path, offset: int) -> tuple[int, int] | None:
        """Where character ``offset`` of a scalar's value stands in the text: quotes,
        escapes, block scalars and folded lines mean it is not just column + offset."""
        if path not in self.scalars:
            return None
        i, style, value = self.scalars[path]
        text, offset = self.text, min(offset, len(value))
        if style in ("|", ">"):
            i = text.find("\n", i) + 1  # the content starts below the header
            if i == 0:
                return None
        elif style in ("'", '"'):
            i += 1
        k = 0
        while k < offset and i < len(text):
            if value[k].isspace() or (k == 0 and text[i].isspace()):
                # A run of spaces and line breaks (folded, indented) in either.
                while k < offset and value[k].isspace():
                    k += 1
                while i < len(text) and text[i].isspace():
                    i += 1
            elif style == "'" and value[k] == "'" and text.startswith("''", i):
                i, k = i + 2, k + 1
            elif style == '"' and text[i] == "\\":
                i += {"x": 4, "u": 6, "U": 10}.get(text[i + 1 : i + 2], 2)
                k += 1
            elif text[i] == value[k]:
                i, k = i + 1, k + 1
            else:
                return None
        line = text.count("\n", 0, i) + 1
        return line, i - text.rfind("\n", 0, i)


def render_path(path: Path) -> str:
    out = ""
    for part in path:
        if part == KEY:
            continue
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


_MSGSPEC_PATH = re.compile(r"\.([A-Za-z_][\w-]*)|\[(\d+)\]")


def parse_msgspec_path(text: str) -> Path:
    """``$.steps[3].kind`` -> ("steps", 3, "kind")."""
    return tuple(int(index) if index else name for name, index in _MSGSPEC_PATH.findall(text))


_YAML_HINTS = (
    ("mapping values are not allowed here", " (quote a value that contains ': ')"),
    ("'\\t' that cannot start any token", " (indent with spaces, not tabs)"),
)


def load(text: str, file: str) -> Source:
    """Parse YAML; syntax errors and duplicate keys become :class:`TemplateError`."""
    loader = yaml.SafeLoader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            raise TemplateError([Problem(file, 1, 1, "", "the file is empty")])
        data = loader.construct_document(node)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line, column = (mark.line + 1, mark.column + 1) if mark else (1, 1)
        message = " ".join(str(p) for p in (exc.context, exc.problem) if p)
        message += next((hint for cue, hint in _YAML_HINTS if cue in str(exc.problem)), "")
        raise TemplateError([Problem(file, line, column, "", f"YAML: {message}")]) from None
    finally:
        loader.dispose()
    source = Source(file, data, lines=text.splitlines(), text=text)
    problems: list[Problem] = []
    _index(node, (), source, problems)
    if problems:
        raise TemplateError(problems)
    return source


def _index(node: yaml.Node, path: Path, source: Source, problems: list[Problem]) -> None:
    source.positions[path] = (node.start_mark.line + 1, node.start_mark.column + 1)
    if isinstance(node, yaml.ScalarNode):
        source.scalars[path] = (node.start_mark.index, node.style, str(node.value))
    if isinstance(node, yaml.MappingNode):
        seen: set[str] = set()
        for key_node, value_node in node.value:
            key = str(key_node.value)
            key_pos = (key_node.start_mark.line + 1, key_node.start_mark.column + 1)
            if key in seen:
                problems.append(
                    Problem(source.file, *key_pos, render_path((*path, key)), "duplicate key")
                )
            seen.add(key)
            source.positions[(*path, key, KEY)] = key_pos
            _index(value_node, (*path, key), source, problems)
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            _index(item, (*path, i), source, problems)
