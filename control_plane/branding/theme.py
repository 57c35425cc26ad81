"""A theme as partners write it (:class:`ThemeInput`, every field optional: what is left
out is inherited), its checks, and the merge platform default -> partner -> tenant that
yields the :class:`~control_plane.contracts.brand.Brand` a request sees."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Annotated, Any
from urllib.parse import urlsplit

import msgspec

from control_plane.branding.validate import (
    BrandingError,
    check_colours,
    check_font,
    check_image,
    check_text,
)
from control_plane.contracts.brand import DEFAULT, Asset, Brand, Colors, LegalLink

#: Plans whose partners may hide "Powered by StoreOps"; every other plan shows it.
HIDES_POWERED_BY = frozenset({"premium", "enterprise"})
DEFAULT_PLAN = "standard"
MAX_RADIUS = 24
MAX_LEGAL_LINKS = 6
_EMAIL = re.compile(r"^[^@\s<>\"']+@[^@\s<>\"']+\.[^@\s<>\"']+$")
_SHA256 = re.compile(r"^[0-9a-f]{64}$")


class LegalLinkInput(msgspec.Struct, forbid_unknown_fields=True):
    label: str
    url: str


class ThemeInput(msgspec.Struct, forbid_unknown_fields=True, omit_defaults=True):
    """A theme version's content. Images are referenced by the SHA-256 their upload
    returned (``POST .../brand/assets``)."""

    product_name: str | None = None
    colors: dict[str, str] | None = None
    font: str | None = None
    radius: Annotated[int, msgspec.Meta(ge=0, le=MAX_RADIUS)] | None = None
    logo: str | None = None
    favicon: str | None = None
    support_email: str | None = None
    support_url: str | None = None
    legal_links: list[LegalLinkInput] | None = None
    email_sender_name: str | None = None
    show_powered_by: bool | None = None


def check_url(field: str, url: str) -> list[BrandingError]:
    if len(url) > 500:
        return [BrandingError(field, f"is {len(url)} characters; at most 500")]
    parts = urlsplit(url)
    local = (parts.hostname or "").endswith("localhost")
    if parts.scheme != "https" and not (parts.scheme == "http" and local):
        return [BrandingError(field, f"{url!r} is not an https:// URL")]
    if not parts.hostname or parts.username or parts.password:
        return [BrandingError(field, f"{url!r} needs a host and no user name or password")]
    if any(ch in url for ch in "<>\"' \t\n"):
        return [BrandingError(field, f"{url!r} contains characters a URL may not hold")]
    return []


def check(
    theme: ThemeInput,
    *,
    plan: str,
    asset_exists: Callable[[str], bytes | None],
) -> list[BrandingError]:
    """Every problem of ``theme``; ``asset_exists`` returns an uploaded image's bytes."""
    problems: list[BrandingError] = []
    for field in ("product_name", "email_sender_name"):
        value = getattr(theme, field)
        if value is not None:
            problems += check_text(field, value, max_length=80)
    if theme.colors is not None:
        problems += check_colours(theme.colors)
    if theme.font is not None:
        problems += check_font("font", theme.font)
    for role in ("logo", "favicon"):
        ref = getattr(theme, role)
        if ref is None:
            continue
        if not _SHA256.match(ref):
            problems.append(BrandingError(role, f"{ref!r} is not the SHA-256 of an upload"))
            continue
        data = asset_exists(ref)
        if data is None:
            problems.append(
                BrandingError(role, f"no uploaded image has SHA-256 {ref}; upload it first")
            )
            continue
        try:
            check_image(role, data)
        except BrandingError as exc:
            problems.append(exc)
    if theme.support_email is not None and (
        len(theme.support_email) > 254 or not _EMAIL.match(theme.support_email)
    ):
        problems.append(BrandingError("support_email", f"{theme.support_email!r} is no address"))
    if theme.support_url is not None:
        problems += check_url("support_url", theme.support_url)
    for i, link in enumerate(theme.legal_links or []):
        problems += check_text(f"legal_links[{i}].label", link.label, max_length=60)
        problems += check_url(f"legal_links[{i}].url", link.url)
    if theme.legal_links is not None and len(theme.legal_links) > MAX_LEGAL_LINKS:
        problems.append(
            BrandingError("legal_links", f"has {len(theme.legal_links)}; at most {MAX_LEGAL_LINKS}")
        )
    if theme.show_powered_by is False and plan not in HIDES_POWERED_BY:
        problems.append(
            BrandingError(
                "show_powered_by",
                f"hiding 'Powered by StoreOps' needs the premium or enterprise plan; "
                f"this partner is on the {plan} plan",
            )
        )
    return problems


def plan_of(settings: Mapping[str, Any]) -> str:
    return str(settings.get("plan") or DEFAULT_PLAN)


def merge(
    layers: list[tuple[str, dict[str, Any]]],
    asset: Callable[[str], Asset | None],
    *,
    plan: str = DEFAULT_PLAN,
) -> Brand:
    """The platform default overlaid by each (source, document) layer in order. A layer's
    colours replace the whole palette, so a checked palette is never mixed with another."""
    values = msgspec.structs.asdict(DEFAULT)
    for source, document in layers:
        for key, value in document.items():
            if value is None:
                continue
            if key == "colors":
                values["colors"] = Colors(**value)
            elif key == "legal_links":
                values["legal_links"] = [LegalLink(**link) for link in value]
            elif key in ("logo", "favicon"):
                values[key] = asset(value)
            else:
                values[key] = value
        values["source"] = source
    if plan not in HIDES_POWERED_BY:
        values["show_powered_by"] = True
    return Brand(**values)
