"""Theme validation: every bad value is refused with a message that says what was wrong
and what would do; good values pass (and SVG comes back re-serialised)."""

from __future__ import annotations

from typing import Any

import pytest

from control_plane.branding.validate import (
    AA_BODY,
    BrandingError,
    check_colours,
    check_font,
    check_image,
    check_text,
    contrast,
)
from tests.branding.conftest import PALETTE, raster

GOOD = PALETTE


SVG_OK = (
    b'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 10 10">'
    b'<defs><linearGradient id="g"><stop offset="0" stop-color="#0b5cad"/></linearGradient>'
    b'</defs><rect width="10" height="10" fill="url(#g)"/><title>Northwind</title></svg>'
)


def test_contrast_matches_the_wcag_reference_values() -> None:
    assert contrast("#000000", "#ffffff") == pytest.approx(21.0)
    assert contrast("#ffffff", "#ffffff") == pytest.approx(1.0)
    # #767676 on white is the classic "just passes AA" grey.
    assert contrast("#767676", "#ffffff") == pytest.approx(4.54, abs=0.01)
    assert contrast("#777777", "#ffffff") < AA_BODY


def test_a_good_theme_passes() -> None:
    assert check_colours(GOOD) == []
    assert check_text("product_name", "Northwind StoreOps") == []
    assert check_font("font", "Inter") == []
    logo = check_image("logo", raster("PNG", (240, 60)))
    assert (logo.media_type, logo.width, logo.height) == ("image/png", 240, 60)
    assert check_image("favicon", raster("WEBP", (32, 32))).media_type == "image/webp"
    assert check_image("logo", raster("JPEG", (200, 80))).media_type == "image/jpeg"
    svg = check_image("logo", SVG_OK)
    assert svg.media_type == "image/svg+xml" and b"<rect" in svg.data


def _colour_problem(**changes: str) -> str:
    problems = check_colours({**GOOD, **changes})
    assert problems, changes
    return "; ".join(str(p) for p in problems)


@pytest.mark.parametrize(
    ("changes", "said"),
    [
        ({"text": "#777777"}, "text #777777 on background #ffffff has contrast 4.47:1; WCAG 2.1 AA"
                              " needs at least 4.5:1 for body text"),
        ({"on_primary": "#9fc3ea"}, "on_primary #9fc3ea on primary #0b5cad has contrast"),
        ({"background": "#1f2933"}, "text #1f2933 on background #1f2933 has contrast 1.00:1"),
        ({"primary": "blue"}, "colors.primary: 'blue' is not a colour; write #rrggbb"),
        ({"text": "#12345"}, "colors.text: '#12345' is not a colour"),
        ({"sparkle": "#ffffff"}, "colors.sparkle: is not a colour token; use background, text"),
    ],
)  # fmt: skip
def test_bad_colours_say_why(changes: dict[str, str], said: str) -> None:
    assert said in _colour_problem(**changes)


def test_a_missing_colour_token_is_named() -> None:
    without = {k: v for k, v in GOOD.items() if k != "danger"}
    assert [str(p) for p in check_colours(without)] == ["colors.danger: is required"]


@pytest.mark.parametrize(
    ("value", "said"),
    [
        ("<b>Northwind</b>", "contains '<': names are plain text, not markup or CSS"),
        ("Northwind{color:red}", "contains '{'"),
        ("url(https://evil.example/x.png)", "contains 'url('"),
        ("javascript:alert(1)", "contains 'javascript:'"),
        ("@import 'x.css'", "contains '@import'"),
        ("Line\nbreak", "contains a control character"),
        ("   ", "must not be blank"),
        ("N" * 121, "is 121 characters; at most 120"),
    ],
)
def test_names_refuse_markup_css_and_junk(value: str, said: str) -> None:
    problems = check_text("product_name", value)
    assert problems and said in str(problems[0]), problems


def test_an_unknown_font_lists_the_allowed_ones() -> None:
    (problem,) = check_font("font", "Comic Sans MS")
    assert "'Comic Sans MS' is not an allowed font; use one of IBM Plex Sans, Inter" in str(problem)


@pytest.mark.parametrize(
    ("role", "data", "said"),
    [
        ("logo", b"<!DOCTYPE html><html><body>hi</body></html>", "logo: is HTML"),
        ("logo", b"GIF89a" + b"\x00" * 64, "is not an image"),
        ("logo", b"", "logo: is empty"),
        ("logo", b"\x89PNG\r\n\x1a\n" + b"\x00" * 600 * 1024, "bytes; a logo may be at most"),
        ("favicon", raster("PNG", (64, 32)), "is 64x32 pixels; a favicon must be square"),
        ("favicon", raster("PNG", (600, 600)), "a favicon may be at most 512x512"),
        ("logo", raster("PNG", (8, 8)), "each side must be at least 16"),
        ("logo", raster("GIF", (40, 40)), "is GIF; use PNG, JPEG, WebP or SVG"),
        ("logo", raster("PNG", (40, 40))[:60], "not an image"),
    ],
)
def test_images_are_judged_by_content_and_size(role: Any, data: bytes, said: str) -> None:
    with pytest.raises(BrandingError) as refused:
        check_image(role, data)
    assert said in str(refused.value)


SVG = b'<svg xmlns="http://www.w3.org/2000/svg" xmlns:xlink="http://www.w3.org/1999/xlink">'


@pytest.mark.parametrize(
    ("body", "said"),
    [
        (b"<script>alert(1)</script>", "SVG element <script> is not allowed"),
        (b'<rect onload="alert(1)"/>', "SVG attribute onload= on <rect> is an event handler"),
        (b"<foreignObject><div/></foreignObject>", "SVG element <foreignObject> is not allowed"),
        (b'<use xlink:href="https://evil.example/a.svg#x"/>', "leaves the document"),
        (b'<a href="javascript:alert(1)"><rect/></a>', "SVG element <a> is not allowed"),
        (b'<rect fill="url(https://evil.example/p)"/>', "SVG attribute fill= on <rect> loads"),
        (b"<style>rect{fill:red}</style>", "SVG element <style> is not allowed"),
        (b"<image href='data:image/png;base64,AAAA'/>", "SVG element <image> is not allowed"),
    ],
)
def test_svg_that_could_run_or_load_anything_is_refused(body: bytes, said: str) -> None:
    with pytest.raises(BrandingError) as refused:
        check_image("logo", SVG + body + b"</svg>")
    assert said in str(refused.value)


def test_svg_with_entities_or_a_dtd_is_refused() -> None:
    bomb = (
        b'<?xml version="1.0"?><!DOCTYPE svg [<!ENTITY a "aaaa">]>'
        b'<svg xmlns="http://www.w3.org/2000/svg"><text>&a;</text></svg>'
    )
    with pytest.raises(BrandingError, match="SVG declares DTDForbidden; plain SVG only"):
        check_image("logo", bomb)
    with pytest.raises(BrandingError, match="is not well-formed SVG"):
        check_image("logo", b"<svg xmlns='http://www.w3.org/2000/svg'><rect></svg>")
