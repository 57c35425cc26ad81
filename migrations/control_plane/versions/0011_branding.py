"""branding: versioned themes, brand assets, custom domains

Revision ID: 0011
Revises: 0010
Create Date: 2026-11-28
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
TS = sa.DateTime(timezone=True)

PARTNER_SCOPE = "storeops_platform() OR partner_id = ANY(storeops_ids('storeops.partner_ids'))"
TENANT_SCOPE = f"{PARTNER_SCOPE} OR tenant_id = ANY(storeops_ids('storeops.tenant_ids'))"
RLS = {"themes": TENANT_SCOPE, "brand_assets": PARTNER_SCOPE, "domains": TENANT_SCOPE}


def _entity_columns() -> list[sa.Column[object]]:
    return [
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("updated_at", TS, nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
    ]


def _fk(table: str, column: str, target: str) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint(
        [column], [f"{target}.id"], name=op.f(f"fk_{table}_{column}_{target}")
    )


def _owned(table: str) -> list[sa.SchemaItem]:
    return [
        sa.Column("partner_id", sa.Uuid(), nullable=False),
        sa.Column("tenant_id", sa.Uuid(), nullable=True),
        _fk(table, "partner_id", "partners"),
        _fk(table, "tenant_id", "tenants"),
    ]


def upgrade() -> None:
    op.create_table(
        "themes",
        sa.Column("owner", sa.String(length=80), nullable=False),
        *_owned("themes"),
        sa.Column("number", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("document", JSON, nullable=False),
        sa.Column("preview_token", sa.String(length=64), nullable=True),
        sa.Column("created_by", sa.String(length=200), nullable=False),
        sa.Column("published_at", TS, nullable=True),
        sa.Column("published_by", sa.String(length=200), nullable=True),
        *_entity_columns(),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_themes")),
        sa.UniqueConstraint("owner", "number", name=op.f("uq_themes_owner")),
        sa.UniqueConstraint("preview_token", name=op.f("uq_themes_preview_token")),
    )
    for status in ("published", "draft"):
        op.create_index(
            f"uq_themes_one_{status}",
            "themes",
            ["owner"],
            unique=True,
            postgresql_where=sa.text(f"status = '{status}'"),
            sqlite_where=sa.text(f"status = '{status}'"),
        )
    op.create_table(
        "brand_assets",
        sa.Column("partner_id", sa.Uuid(), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("media_type", sa.String(length=32), nullable=False),
        sa.Column("width", sa.Integer(), nullable=True),
        sa.Column("height", sa.Integer(), nullable=True),
        sa.Column("size", sa.Integer(), nullable=False),
        sa.Column("data", sa.LargeBinary(), nullable=False),
        *_entity_columns(),
        _fk("brand_assets", "partner_id", "partners"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_brand_assets")),
        sa.UniqueConstraint("partner_id", "sha256", name=op.f("uq_brand_assets_partner_id")),
    )
    op.create_table(
        "domains",
        sa.Column("hostname", sa.String(length=253), nullable=False),
        sa.Column("purpose", sa.String(length=16), nullable=False),
        *_owned("domains"),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("challenge_token", sa.String(length=64), nullable=False),
        sa.Column("expires_at", TS, nullable=True),
        sa.Column("verified_at", TS, nullable=True),
        sa.Column("checked_at", TS, nullable=True),
        sa.Column("check_error", sa.Text(), nullable=True),
        sa.Column("created_by", sa.String(length=200), nullable=False),
        *_entity_columns(),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_domains")),
        sa.UniqueConstraint("hostname", name=op.f("uq_domains_hostname")),
        sa.UniqueConstraint("challenge_token", name=op.f("uq_domains_challenge_token")),
    )
    for table, columns in INDEXED.items():
        for column in columns:
            op.create_index(op.f(f"ix_{table}_{column}"), table, [column])
    if op.get_bind().dialect.name == "postgresql":
        for table, rule in RLS.items():
            op.execute(f"ALTER TABLE {table} ENABLE ROW LEVEL SECURITY")
            op.execute(f"CREATE POLICY scope ON {table} USING ({rule}) WITH CHECK ({rule})")


INDEXED = {
    "themes": ("partner_id", "tenant_id"),
    "brand_assets": ("partner_id", "sha256"),
    "domains": ("partner_id", "tenant_id"),
}


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        for table in RLS:
            op.execute(f"DROP POLICY IF EXISTS scope ON {table}")
    for table, columns in INDEXED.items():
        for column in columns:
            op.drop_index(op.f(f"ix_{table}_{column}"), table_name=table)
    for status in ("published", "draft"):
        op.drop_index(f"uq_themes_one_{status}", table_name="themes")
    op.drop_table("domains")
    op.drop_table("brand_assets")
    op.drop_table("themes")
