"""workflow template catalog

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-28
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")


def upgrade() -> None:
    op.create_table(
        "catalog_templates",
        sa.Column("slug", sa.String(length=64), nullable=False),
        sa.Column("owner_key", sa.String(length=40), nullable=False),
        sa.Column("owner_partner_id", sa.Uuid(), nullable=True),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("category", sa.String(length=32), nullable=False),
        sa.Column("summary", sa.Text(), nullable=False),
        sa.Column("forked_from_id", sa.Uuid(), nullable=True),
        sa.Column("forked_from_version", sa.String(length=64), nullable=True),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["forked_from_id"],
            ["catalog_templates.id"],
            name=op.f("fk_catalog_templates_forked_from_id_catalog_templates"),
        ),
        sa.ForeignKeyConstraint(
            ["owner_partner_id"],
            ["partners.id"],
            name=op.f("fk_catalog_templates_owner_partner_id_partners"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_catalog_templates")),
        sa.UniqueConstraint("owner_key", "slug", name=op.f("uq_catalog_templates_owner_key")),
    )
    op.create_index(
        op.f("ix_catalog_templates_owner_partner_id"),
        "catalog_templates",
        ["owner_partner_id"],
        unique=False,
    )
    op.create_table(
        "catalog_versions",
        sa.Column("template_id", sa.Uuid(), nullable=False),
        sa.Column("owner_partner_id", sa.Uuid(), nullable=True),
        sa.Column("semver", sa.String(length=64), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("major", sa.Integer(), nullable=False),
        sa.Column("minor", sa.Integer(), nullable=False),
        sa.Column("patch", sa.Integer(), nullable=False),
        sa.Column("content_hash", sa.String(length=64), nullable=False),
        sa.Column("source", sa.Text(), nullable=False),
        sa.Column("spec", JSON, nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("status_note", sa.Text(), nullable=True),
        sa.Column("published_by", sa.String(length=200), nullable=False),
        sa.Column("published_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["owner_partner_id"],
            ["partners.id"],
            name=op.f("fk_catalog_versions_owner_partner_id_partners"),
        ),
        sa.ForeignKeyConstraint(
            ["template_id"],
            ["catalog_templates.id"],
            name=op.f("fk_catalog_versions_template_id_catalog_templates"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_catalog_versions")),
        sa.UniqueConstraint("template_id", "semver", name=op.f("uq_catalog_versions_template_id")),
    )
    op.create_index(
        op.f("ix_catalog_versions_owner_partner_id"),
        "catalog_versions",
        ["owner_partner_id"],
        unique=False,
    )
    op.create_index(
        op.f("ix_catalog_versions_template_id"), "catalog_versions", ["template_id"], unique=False
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_catalog_versions_template_id"), table_name="catalog_versions")
    op.drop_index(op.f("ix_catalog_versions_owner_partner_id"), table_name="catalog_versions")
    op.drop_table("catalog_versions")
    op.drop_index(op.f("ix_catalog_templates_owner_partner_id"), table_name="catalog_templates")
    op.drop_table("catalog_templates")
