"""Builders shared by the deployment and runtime-link tests: a tree whose partner owns its
own copies of two catalog templates (so tests never share catalog rows), and bodies."""

from __future__ import annotations

import copy
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from uuid import UUID

from control_plane.catalog import service as catalog
from control_plane.context import Ctx
from control_plane.tenancy import service as tenancy
from tests.conftest import Tree, World

ROOT = Path(__file__).resolve().parents[2] / "templates"
TRANSFER = "stock-transfer-approval"
CHECKLIST = "store-opening-closing-checklist"
#: 1.1.0 adds an optional parameter; 1.0.1 is published and then yanked.
NEW_PARAM = """    max_quantity:
      type: integer
      minimum: 1
      description: Refuse transfers of more units than this.
"""


def source(template: str, owner: str, version: str = "1.0.0") -> str:
    text = (ROOT / template / "1.0.0.yaml").read_text()
    text = text.replace("owner: platform", f"owner: partner:{owner}")
    text = text.replace("version: 1.0.0", f"version: {version}", 1)
    if version == "1.1.0":
        text = text.replace(
            "  required: [auto_approve_below]", NEW_PARAM + "  required: [auto_approve_below]"
        )
    return text


@dataclass
class Fleet:
    """A tree whose partner privately publishes the templates its tenant deploys."""

    tree: Tree
    partner_slug: str
    transfer_line: UUID

    @property
    def tenant_id(self) -> UUID:
        return self.tree.tenant_id

    @property
    def base(self) -> str:
        return f"/api/v1/tenants/{self.tree.tenant_id}"


async def fleet(world: World) -> Fleet:
    tree = await world.tree()

    async def build(c: Ctx) -> tuple[str, UUID]:
        partner = await tenancy.get_partner(c, tree.partner_id)
        slug = partner.slug
        first = await catalog.publish(c, source(TRANSFER, slug))
        await catalog.publish(c, source(TRANSFER, slug, "1.1.0"))
        await catalog.publish(c, source(TRANSFER, slug, "1.0.1"))
        await catalog.set_status(c, first.template.id, "1.0.1", "yank", "leaks stock")
        await catalog.publish(c, source(CHECKLIST, slug))
        return slug, first.template.id

    slug, line = await world.run(build)
    return Fleet(tree, slug, line)


def binding(url: str = "https://erp.example.com/api", **extra: Any) -> dict[str, Any]:
    return {"base_url": url, "auth": {"type": "bearer", "token": "secret://erp-token"}, **extra}


def transfer(version: str = "1.0.0", **changes: Any) -> dict[str, Any]:
    """A valid stock-transfer-approval deployment body."""
    body: dict[str, Any] = {
        "template_id": TRANSFER,
        "version": version,
        "params": {"auto_approve_below": 250},
        "bindings": {
            "erp": binding(timeout=20, attempts=4),
            "wms": {"base_url": "http://wms.internal:8080", "auth": {"type": "none"}},
            "ecommerce": {
                "base_url": "https://shop.example.com",
                "auth": {
                    "type": "oauth2",
                    "token_endpoint": "https://auth.example.com/token",
                    "client_id": "storeops",
                    "client_secret": "secret://shop-client-secret",
                },
            },
        },
    }
    body.update(copy.deepcopy(changes))
    return body


def checklist(**changes: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "template_id": CHECKLIST,
        "version": "1.0.0",
        "params": {},
        "bindings": {
            "itsm": {
                "base_url": "https://desk.example.com",
                "auth": {"type": "basic", "username": "storeops", "password": "secret://desk-pw"},
            },
            # Each connector is bound once per tenant: the same ERP as the transfers.
            "erp": binding(timeout=20, attempts=4),
        },
        "triggers": {"enabled": {"webhook": False}},
    }
    body.update(copy.deepcopy(changes))
    return body
