"""Where the page templates and static files live: ``branding/`` at the top of a source
checkout, or the ``branding`` package data of an installed wheel."""

from __future__ import annotations

from functools import cache
from importlib import util
from pathlib import Path


@cache
def branding_dir() -> Path:
    """The first ``branding`` folder holding templates: installed first, then the checkout."""
    candidates: list[Path] = []
    spec = util.find_spec("branding")
    if spec is not None and spec.submodule_search_locations:
        candidates.extend(Path(p) for p in spec.submodule_search_locations)
    candidates.append(Path(__file__).resolve().parents[2] / "branding")
    for candidate in candidates:
        if (candidate / "templates").is_dir():
            return candidate
    raise FileNotFoundError(
        "the branding folder (page templates and static files) is missing; looked in "
        + ", ".join(str(c) for c in candidates)
    )


def templates_dir() -> Path:
    return branding_dir() / "templates"


def static_dir() -> Path:
    return branding_dir() / "static"
