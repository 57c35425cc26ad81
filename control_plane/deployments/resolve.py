"""From what a caller asked for to what a runtime will run: the catalog version (present,
not yanked, allowed for the tenant), then parameters, bindings and triggers checked
against it, and the deployment's content hash."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import or_, select

from control_plane.catalog.models import CatalogTemplate, CatalogVersion
from control_plane.catalog.service import spec_of
from control_plane.context import Ctx
from control_plane.contracts import dsl
from control_plane.contracts.compat import semver
from control_plane.contracts.desired_state import deployment_hash
from control_plane.deployments.bindings import check_bindings
from control_plane.deployments.validation import Problem, check_params, check_triggers, join
from control_plane.tenancy import service as tenancy
from control_plane.tenancy.models import Tenant


@dataclass(frozen=True)
class Target:
    """A validated deployment: everything needed to write (or compare) its row."""

    template_id: str
    line: CatalogTemplate
    version: CatalogVersion
    params: dict[str, Any]
    bindings: dict[str, Any]
    triggers: dict[str, Any]
    status: str
    content_hash: str

    def fields(self) -> dict[str, Any]:
        return {
            "version": self.version.semver,
            "params": self.params,
            "bindings": self.bindings,
            "triggers": self.triggers,
            "status": self.status,
        }


@dataclass
class Resolver:
    """Catalog lookups and the tenant's policy, read once per request."""

    ctx: Ctx
    tenant: Tenant
    _allowed: list[str] | None = None
    _policy_read: bool = False
    _lines: dict[str, CatalogTemplate | None] = field(default_factory=dict)
    _specs: dict[Any, dsl.Template] = field(default_factory=dict)

    async def allowed(self) -> list[str] | None:
        """The tenant's effective ``allowed_templates``; None when every template is."""
        if not self._policy_read:
            effective, _ = await tenancy.effective_settings(self.ctx, self.tenant.id)
            value = effective.get("allowed_templates")
            if isinstance(value, list) and "*" not in value:
                self._allowed = [str(v) for v in value]
            self._policy_read = True
        return self._allowed

    async def line(self, template_id: str) -> CatalogTemplate | None:
        """The tenant's partner's own template of that id, else the platform's."""
        if template_id not in self._lines:
            rows = (
                await self.ctx.session.scalars(
                    select(CatalogTemplate).where(
                        CatalogTemplate.slug == template_id,
                        or_(
                            CatalogTemplate.owner_partner_id.is_(None),
                            CatalogTemplate.owner_partner_id == self.tenant.partner_id,
                        ),
                    )
                )
            ).all()
            self._lines[template_id] = min(
                rows, key=lambda r: r.owner_partner_id is None, default=None
            )
        return self._lines[template_id]

    def spec(self, version: CatalogVersion) -> dsl.Template:
        if version.id not in self._specs:
            self._specs[version.id] = spec_of(version)
        return self._specs[version.id]

    async def version(
        self, template_id: str, wanted: str, path: str, *, new: bool
    ) -> tuple[CatalogTemplate, CatalogVersion] | list[Problem]:
        """The catalog version, or why it cannot be deployed. ``new`` is False when the
        deployment already runs this template version: then a yank or a policy change
        since does not stop other edits."""
        line = await self.line(template_id)
        if line is None:
            return [
                Problem(
                    join(path, "template_id"),
                    f"no template {template_id!r} in the catalog for this tenant "
                    "(its partner's own templates or the platform's)",
                )
            ]
        allowed = await self.allowed()
        if new and allowed is not None and template_id not in allowed:
            return [
                Problem(
                    join(path, "template_id"),
                    f"template {template_id!r} is not allowed for tenant {self.tenant.slug}: "
                    f"its allowed_templates are {', '.join(allowed) or 'empty'}",
                )
            ]
        versions = (
            await self.ctx.session.scalars(
                select(CatalogVersion).where(CatalogVersion.template_id == line.id)
            )
        ).all()
        found = next((v for v in versions if v.semver == wanted), None)
        deployable = sorted(
            (v for v in versions if v.status != "yanked"), key=lambda v: semver(v.semver)
        )
        choices = ", ".join(v.semver for v in deployable) or "none"
        if found is None:
            return [
                Problem(
                    join(path, "version"),
                    f"template {template_id} has no version {wanted!r}; deployable versions: {choices}",
                )
            ]
        if new and found.status == "yanked":
            note = f" ({found.status_note})" if found.status_note else ""
            return [
                Problem(
                    join(path, "version"),
                    f"{template_id} {wanted} is yanked{note} and cannot be deployed; "
                    f"deployable versions: {choices}",
                )
            ]
        return line, found

    async def target(
        self,
        *,
        template_id: str,
        version: str,
        params: Any,
        bindings: Any,
        triggers: Any,
        status: str,
        path: str = "$",
        running: tuple[str, str] | None = None,
    ) -> Target | list[Problem]:
        """Everything checked; ``running`` is the (template, version) already deployed."""
        found = await self.version(
            template_id, version, path, new=running != (template_id, version)
        )
        if isinstance(found, list):
            return found
        line, row = found
        template = self.spec(row)
        normalised_triggers, problems = check_triggers(template, triggers, join(path, "triggers"))
        problems = [
            *check_params(template, params, join(path, "params")),
            *check_bindings(template, bindings, join(path, "bindings")),
            *problems,
        ]
        if problems:
            return problems
        return Target(
            template_id=template_id,
            line=line,
            version=row,
            params=params,
            bindings=bindings,
            triggers=normalised_triggers,
            status=status,
            content_hash=deployment_hash(
                template_id=template_id,
                version=row.semver,
                spec=row.spec,
                params=params,
                bindings=bindings,
                triggers=normalised_triggers,
                status=status,
            ),
        )
