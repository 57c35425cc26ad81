"""Checking a theme before anyone sees it: colours readable (WCAG 2.1 AA), fonts from the
allow-list, names without markup, images that are what they claim and within limits, and
SVG only when nothing in it can run. Pure: bytes and values in, problems out.

Every refusal says what was wrong and what would do, e.g. "text #777777 on background
#ffffff has contrast 4.48:1; WCAG 2.1 AA needs at least 4.5:1 for body text".
"""

from __future__ import annotations

import io
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

#: Fonts a theme may name; anything else could load a file from somewhere we don't serve.
FONTS = frozenset(
    {"Inter", "Roboto", "Open Sans", "Lato", "Source Sans 3", "Noto Sans", "IBM Plex Sans",
     "system-ui"}
)  # fmt: skip
#: The colour tokens every theme sets, as #rrggbb.
COLOUR_TOKENS = ("background", "text", "primary", "on_primary", "muted", "danger")
#: (foreground, background) pairs read as body text, and the ratio AA asks of them.
READABLE_PAIRS = (("text", "background"), ("on_primary", "primary"))
AA_BODY = 4.5
_HEX = re.compile(r"^#[0-9a-fA-F]{6}$")
#: Characters that would make a plain name markup, CSS or a template.
_MARKUP = re.compile(r"[<>{}`]|url\(|expression\(|javascript:|@import", re.IGNORECASE)
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")

ImageRole = Literal["logo", "favicon"]


@dataclass(frozen=True)
class Limits:
    max_bytes: int
    min_side: int
    max_width: int
    max_height: int
    square: bool = False


LIMITS: dict[str, Limits] = {
    "logo": Limits(max_bytes=512 * 1024, min_side=16, max_width=2048, max_height=1024),
    "favicon": Limits(max_bytes=64 * 1024, min_side=16, max_width=512, max_height=512, square=True),
}
RASTER_FORMATS = {"PNG": "image/png", "JPEG": "image/jpeg", "WEBP": "image/webp"}


class BrandingError(ValueError):
    """Why a theme value is refused; ``field`` names it (``colors.text``, ``logo``...)."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


# --- colours ------------------------------------------------------------------------------


def _channel(value: int) -> float:
    c = value / 255
    return c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4


def luminance(hex_colour: str) -> float:
    """WCAG 2.1 relative luminance of ``#rrggbb``."""
    r, g, b = (int(hex_colour[i : i + 2], 16) for i in (1, 3, 5))
    return 0.2126 * _channel(r) + 0.7152 * _channel(g) + 0.0722 * _channel(b)


def contrast(foreground: str, background: str) -> float:
    """The WCAG 2.1 contrast ratio, from 1 (same colour) to 21 (black on white)."""
    lighter, darker = sorted((luminance(foreground), luminance(background)), reverse=True)
    return (lighter + 0.05) / (darker + 0.05)


def check_colours(colours: Mapping[str, str]) -> list[BrandingError]:
    """Every token present and ``#rrggbb``; text readable on its background (AA, 4.5:1)."""
    problems: list[BrandingError] = []
    unknown = sorted(set(colours) - set(COLOUR_TOKENS))
    problems += [
        BrandingError(f"colors.{name}", f"is not a colour token; use {', '.join(COLOUR_TOKENS)}")
        for name in unknown
    ]
    for name in COLOUR_TOKENS:
        value = colours.get(name)
        if value is None:
            problems.append(BrandingError(f"colors.{name}", "is required"))
        elif not isinstance(value, str) or not _HEX.match(value):
            problems.append(
                BrandingError(f"colors.{name}", f"{value!r} is not a colour; write #rrggbb")
            )
    if problems:
        return problems
    for fg, bg in READABLE_PAIRS:
        ratio = contrast(colours[fg], colours[bg])
        if ratio < AA_BODY:
            problems.append(
                BrandingError(
                    f"colors.{fg}",
                    f"{fg} {colours[fg].lower()} on {bg} {colours[bg].lower()} has contrast "
                    f"{_floor(ratio)}:1; WCAG 2.1 AA needs at least {AA_BODY}:1 for body text",
                )
            )
    return problems


def _floor(ratio: float) -> str:
    """Two decimals rounded down, so a refused 4.4999 never reads as 4.50."""
    return f"{int(ratio * 100) / 100:.2f}"


# --- text and fonts -----------------------------------------------------------------------


def check_text(field: str, value: str, *, max_length: int = 120) -> list[BrandingError]:
    """A plain name: no markup, CSS, template syntax or control characters."""
    if not value.strip():
        return [BrandingError(field, "must not be blank")]
    if len(value) > max_length:
        return [BrandingError(field, f"is {len(value)} characters; at most {max_length}")]
    if found := _MARKUP.search(value):
        return [
            BrandingError(
                field, f"contains {found.group(0)!r}: names are plain text, not markup or CSS"
            )
        ]
    if _CONTROL.search(value):
        return [BrandingError(field, "contains a control character")]
    return []


def check_font(field: str, font: str) -> list[BrandingError]:
    if font in FONTS:
        return []
    allowed = ", ".join(sorted(FONTS))
    return [BrandingError(field, f"{font!r} is not an allowed font; use one of {allowed}")]


# --- images -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Image:
    """An accepted image: its bytes (sanitised for SVG), media type and size."""

    data: bytes
    media_type: str
    width: int | None
    height: int | None


def check_image(role: ImageRole, data: bytes) -> Image:
    """A logo or favicon, judged by its content, never by its name or declared type."""
    limits = LIMITS[role]
    if not data:
        raise BrandingError(role, "is empty")
    if len(data) > limits.max_bytes:
        raise BrandingError(
            role, f"is {len(data):,} bytes; a {role} may be at most {limits.max_bytes:,} bytes"
        )
    head = data[:512].lstrip().lower()
    if head.startswith((b"<?xml", b"<svg", b"<!--")) and b"<svg" in data[:4096].lower():
        return Image(sanitise_svg(role, data), "image/svg+xml", None, None)
    from PIL import Image as Pillow
    from PIL import UnidentifiedImageError

    try:
        with Pillow.open(io.BytesIO(data)) as probe:
            kind = probe.format or ""
            width, height = probe.size
            probe.verify()
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
        looks = "HTML" if head.startswith((b"<!doctype html", b"<html")) else "not an image"
        raise BrandingError(
            role, f"is {looks} (its content is no PNG, JPEG, WebP or SVG): {type(exc).__name__}"
        ) from None
    if kind not in RASTER_FORMATS:
        raise BrandingError(role, f"is {kind or 'an unknown format'}; use PNG, JPEG, WebP or SVG")
    if min(width, height) < limits.min_side:
        raise BrandingError(
            role, f"is {width}x{height} pixels; each side must be at least {limits.min_side}"
        )
    if width > limits.max_width or height > limits.max_height:
        raise BrandingError(
            role,
            f"is {width}x{height} pixels; a {role} may be at most "
            f"{limits.max_width}x{limits.max_height}",
        )
    if limits.square and width != height:
        raise BrandingError(role, f"is {width}x{height} pixels; a {role} must be square")
    return Image(data, RASTER_FORMATS[kind], width, height)


#: SVG elements a logo may use: shapes, text, gradients, grouping. No script, no foreign
#: content, no references out of the document.
SVG_ELEMENTS = frozenset(
    {"svg", "g", "path", "rect", "circle", "ellipse", "line", "polyline", "polygon", "text",
     "tspan", "defs", "linearGradient", "radialGradient", "stop", "title", "desc", "clipPath",
     "mask", "symbol", "use"}
)  # fmt: skip
_SVG_NS = "{http://www.w3.org/2000/svg}"
_XLINK = "{http://www.w3.org/1999/xlink}href"


def sanitise_svg(role: str, data: bytes) -> bytes:
    """The SVG re-serialised from what was parsed, or a refusal naming what could run:
    a script or foreign element, an event handler, a link out of the document, or CSS
    that loads something. Entities and DTDs are refused by the parser (defusedxml)."""
    from xml.etree import ElementTree

    from defusedxml import DefusedXmlException
    from defusedxml.ElementTree import fromstring

    try:
        root = fromstring(data, forbid_dtd=True)
    except DefusedXmlException as exc:
        raise BrandingError(role, f"SVG declares {type(exc).__name__}; plain SVG only") from None
    except ElementTree.ParseError as exc:
        raise BrandingError(role, f"is not well-formed SVG: {exc}") from None
    if root.tag not in (f"{_SVG_NS}svg", "svg"):
        raise BrandingError(role, f"root element is {_local(root.tag)!r}, not an SVG")
    for element in root.iter():
        name = _local(element.tag)
        if name not in SVG_ELEMENTS:
            raise BrandingError(
                role, f"SVG element <{name}> is not allowed (it could run script or load content)"
            )
        for attribute, value in element.attrib.items():
            attr = _local(attribute)
            if attr.lower().startswith("on"):
                raise BrandingError(role, f"SVG attribute {attr}= on <{name}> is an event handler")
            if (attribute == _XLINK or attr == "href") and not value.startswith("#"):
                raise BrandingError(role, f"SVG link {value!r} on <{name}> leaves the document")
            lowered = value.lower().replace(" ", "")
            if "javascript:" in lowered or ("url(" in lowered and "url(#" not in lowered):
                raise BrandingError(role, f"SVG attribute {attr}= on <{name}> loads {value!r}")
    ElementTree.register_namespace("", _SVG_NS[1:-1])
    cleaned: bytes = ElementTree.tostring(root, encoding="utf-8")
    return cleaned


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]
