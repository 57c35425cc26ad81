"""deployments, desired-state generations and runtime bootstrap tokens

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-01
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")

#: Same rule as the tenancy tables below a tenant: the partner's scope or the tenant's.
SCOPE = (
    "storeops_platform() OR partner_id = ANY(storeops_ids('storeops.partner_ids'))"
    " OR tenant_id = ANY(storeops_ids('storeops.tenant_ids'))"
)
RLS_TABLES = ("deployments", "desired_states", "bootstrap_tokens")


def _entity_columns() -> list[sa.Column[object]]:
    return [
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
    ]


def upgrade() -> None:
    op.create_table(
        "deployments",
        sa.Column("partner_id", sa.Uuid(), nullable=False),
        sa.Column("tenant_id", sa.Uuid(), nullable=False),
        sa.Column("template_id", sa.String(length=64), nullable=False),
        sa.Column("catalog_template_id", sa.Uuid(), nullable=False),
        sa.Column("catalog_version_id", sa.Uuid(), nullable=False),
        sa.Column("semver", sa.String(length=64), nullable=False),
        sa.Column("content_hash", sa.String(length=64), nullable=False),
        sa.Column("params", JSON, nullable=False),
        sa.Column("bindings", JSON, nullable=False),
        sa.Column("triggers", JSON, nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("reported_status", sa.String(length=16), nullable=True),
        sa.Column("reported_generation", sa.Integer(), nullable=True),
        sa.Column("reported_content_hash", sa.String(length=64), nullable=True),
        sa.Column("reported_reason", sa.Text(), nullable=True),
        sa.Column("reported_at", sa.DateTime(timezone=True), nullable=True),
        *_entity_columns(),
        sa.ForeignKeyConstraint(
            ["partner_id"], ["partners.id"], name=op.f("fk_deployments_partner_id_partners")
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id"], ["tenants.id"], name=op.f("fk_deployments_tenant_id_tenants")
        ),
        sa.ForeignKeyConstraint(
            ["catalog_template_id"],
            ["catalog_templates.id"],
            name=op.f("fk_deployments_catalog_template_id_catalog_templates"),
        ),
        sa.ForeignKeyConstraint(
            ["catalog_version_id"],
            ["catalog_versions.id"],
            name=op.f("fk_deployments_catalog_version_id_catalog_versions"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_deployments")),
        sa.UniqueConstraint("tenant_id", "template_id", name=op.f("uq_deployments_tenant_id")),
    )
    op.create_index(op.f("ix_deployments_partner_id"), "deployments", ["partner_id"])
    op.create_index(
        op.f("ix_deployments_catalog_version_id"), "deployments", ["catalog_version_id"]
    )

    op.create_table(
        "desired_states",
        sa.Column("partner_id", sa.Uuid(), nullable=False),
        sa.Column("tenant_id", sa.Uuid(), nullable=False),
        sa.Column("generation", sa.Integer(), nullable=False),
        *_entity_columns(),
        sa.ForeignKeyConstraint(
            ["partner_id"], ["partners.id"], name=op.f("fk_desired_states_partner_id_partners")
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id"], ["tenants.id"], name=op.f("fk_desired_states_tenant_id_tenants")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_desired_states")),
        sa.UniqueConstraint("tenant_id", name=op.f("uq_desired_states_tenant_id")),
    )
    op.create_index(op.f("ix_desired_states_partner_id"), "desired_states", ["partner_id"])

    op.create_table(
        "bootstrap_tokens",
        sa.Column("partner_id", sa.Uuid(), nullable=False),
        sa.Column("tenant_id", sa.Uuid(), nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("used_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("issued_by", sa.String(length=200), nullable=False),
        sa.Column("client_id", sa.Uuid(), nullable=True),
        *_entity_columns(),
        sa.ForeignKeyConstraint(
            ["partner_id"], ["partners.id"], name=op.f("fk_bootstrap_tokens_partner_id_partners")
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id"], ["tenants.id"], name=op.f("fk_bootstrap_tokens_tenant_id_tenants")
        ),
        sa.ForeignKeyConstraint(
            ["client_id"],
            ["api_clients.id"],
            name=op.f("fk_bootstrap_tokens_client_id_api_clients"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_bootstrap_tokens")),
        sa.UniqueConstraint("token_hash", name=op.f("uq_bootstrap_tokens_token_hash")),
    )
    op.create_index(op.f("ix_bootstrap_tokens_partner_id"), "bootstrap_tokens", ["partner_id"])
    op.create_index(op.f("ix_bootstrap_tokens_tenant_id"), "bootstrap_tokens", ["tenant_id"])

    if op.get_bind().dialect.name == "postgresql":
        for table in RLS_TABLES:
            op.execute(f"ALTER TABLE {table} ENABLE ROW LEVEL SECURITY")
            op.execute(f"CREATE POLICY scope ON {table} USING ({SCOPE}) WITH CHECK ({SCOPE})")


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        for table in RLS_TABLES:
            op.execute(f"DROP POLICY IF EXISTS scope ON {table}")
    op.drop_index(op.f("ix_bootstrap_tokens_tenant_id"), table_name="bootstrap_tokens")
    op.drop_index(op.f("ix_bootstrap_tokens_partner_id"), table_name="bootstrap_tokens")
    op.drop_table("bootstrap_tokens")
    op.drop_index(op.f("ix_desired_states_partner_id"), table_name="desired_states")
    op.drop_table("desired_states")
    op.drop_index(op.f("ix_deployments_catalog_version_id"), table_name="deployments")
    op.drop_index(op.f("ix_deployments_partner_id"), table_name="deployments")
    op.drop_table("deployments")
