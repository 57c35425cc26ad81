"""The brand document: what a page, an email or an embedding client needs to look like a
partner's (or a retailer's) own product. The control plane resolves it from the request's
Host and serves it at ``GET /api/v1/brand``; a tenant runtime receives its own in its
desired state (images inline, so its portal needs nothing from elsewhere).

Both sides turn it into the same CSS variables (:func:`stylesheet`) and render emails
from the same Jinja templates under ``branding/templates/email`` (:func:`render_email`).
"""

from __future__ import annotations

import base64
import hashlib
from pathlib import Path
from typing import Any, Literal
from uuid import UUID

import msgspec
from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape

BrandSource = Literal["platform", "partner", "tenant", "preview"]
EmailKind = Literal["task_assigned", "sla_escalation", "alert", "insight"]


class Colors(msgspec.Struct, kw_only=True):
    background: str
    text: str
    primary: str
    on_primary: str
    muted: str
    danger: str


class LegalLink(msgspec.Struct, kw_only=True):
    label: str
    url: str


class Asset(msgspec.Struct, kw_only=True, omit_defaults=True):
    """A logo or favicon. ``url`` is absolute where the control plane serves it; ``data``
    (base64) travels only in a runtime's desired state."""

    sha256: str
    media_type: str
    url: str
    width: int | None = None
    height: int | None = None
    data: str | None = None

    def content(self) -> bytes:
        return base64.b64decode(self.data or "")


class Brand(msgspec.Struct, kw_only=True):
    product_name: str
    colors: Colors
    font: str
    #: Corner radius of cards, inputs and buttons, in CSS pixels.
    radius: int
    logo: Asset | None = None
    favicon: Asset | None = None
    support_email: str | None = None
    support_url: str | None = None
    legal_links: list[LegalLink] = msgspec.field(default_factory=list)
    email_sender_name: str
    show_powered_by: bool = True
    #: Whose brand this is: the platform default, a partner, a retailer's override, or a
    #: draft shown through its preview link.
    source: BrandSource = "platform"
    partner_id: UUID | None = None
    tenant_id: UUID | None = None
    #: The published (or previewed) theme version numbers it was built from.
    versions: dict[str, int] = msgspec.field(default_factory=dict)


PLATFORM_NAME = "StoreOps"

#: The platform's own look, used wherever no verified domain names a partner or tenant.
DEFAULT = Brand(
    product_name=PLATFORM_NAME,
    colors=Colors(
        background="#f4f6f8",
        text="#1d2733",
        primary="#1f5f8b",
        on_primary="#ffffff",
        muted="#5d6873",
        danger="#b3261e",
    ),
    font="system-ui",
    radius=6,
    email_sender_name=PLATFORM_NAME,
    support_email=None,
)


def font_stack(font: str) -> str:
    if font == "system-ui":
        return 'system-ui, -apple-system, "Segoe UI", Roboto, sans-serif'
    return f'"{font}", system-ui, -apple-system, "Segoe UI", Roboto, sans-serif'


def stylesheet(brand: Brand) -> str:
    """The brand as CSS custom properties; every page stylesheet reads only these. Values
    come from a validated theme (``#rrggbb``, an allow-listed font, an integer radius)."""
    c = brand.colors
    lines = [
        f"--bg: {c.background};",
        f"--text: {c.text};",
        f"--primary: {c.primary};",
        f"--on-primary: {c.on_primary};",
        f"--muted: {c.muted};",
        f"--danger: {c.danger};",
        f"--radius: {int(brand.radius)}px;",
        f"--font: {font_stack(brand.font)};",
    ]
    return ":root {\n  " + "\n  ".join(lines) + "\n}\n"


def etag(brand: Brand) -> str:
    digest = hashlib.sha256(msgspec.json.encode(brand, order="sorted")).hexdigest()
    return f'"{digest[:32]}"'


# --- emails -----------------------------------------------------------------------------


class Email(msgspec.Struct, kw_only=True):
    subject: str
    sender_name: str
    text: str
    html: str


_ENVIRONMENTS: dict[Path, Environment] = {}


def _environment(templates: Path) -> Environment:
    env = _ENVIRONMENTS.get(templates)
    if env is None:
        env = Environment(
            loader=FileSystemLoader(str(templates)),
            autoescape=select_autoescape(["html"]),
            undefined=StrictUndefined,
            trim_blocks=True,
            lstrip_blocks=True,
        )
        _ENVIRONMENTS[templates] = env
    return env


def render_email(templates: Path, kind: EmailKind, brand: Brand, **context: Any) -> Email:
    """``email/<kind>.subject.txt``, ``.txt`` and ``.html`` rendered in the brand. The
    subject and text are plain (no escaping); the HTML part is autoescaped."""
    env = _environment(templates)
    values = {"brand": brand, "platform_name": PLATFORM_NAME, **context}
    subject = env.get_template(f"email/{kind}.subject.txt").render(values)
    return Email(
        subject=" ".join(subject.split()),
        sender_name=brand.email_sender_name,
        text=env.get_template(f"email/{kind}.txt").render(values),
        html=env.get_template(f"email/{kind}.html").render(values),
    )


def branding_templates() -> Path:
    """The Jinja templates folder (pages and emails): the installed ``branding`` package
    data first, else the checkout's top-level ``branding/``. A tenant runtime renders its
    emails from it without importing the control plane's web layer."""
    from importlib import util

    candidates: list[Path] = []
    spec = util.find_spec("branding")
    if spec is not None and spec.submodule_search_locations:
        candidates.extend(Path(p) / "templates" for p in spec.submodule_search_locations)
    candidates.append(Path(__file__).resolve().parents[2] / "branding" / "templates")
    for candidate in candidates:
        if candidate.is_dir():
            return candidate
    raise FileNotFoundError(
        "the branding templates folder is missing; looked in "
        + ", ".join(str(c) for c in candidates)
    )
