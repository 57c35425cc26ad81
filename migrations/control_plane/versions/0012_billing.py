"""billing: metered usage per day, price books, invoices and the usage they billed

Revision ID: 0012
Revises: 0011
Create Date: 2026-11-28
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
TS = sa.DateTime(timezone=True)

PARTNER_SCOPE = "storeops_platform() OR partner_id = ANY(storeops_ids('storeops.partner_ids'))"
TENANT_SCOPE = f"{PARTNER_SCOPE} OR tenant_id = ANY(storeops_ids('storeops.tenant_ids'))"
TABLES = ("usage_daily", "price_books", "invoices", "invoice_usage")
INDEXED = {
    "usage_daily": ("partner_id",),
    "price_books": ("partner_id", "tenant_id"),
    "invoices": ("partner_id", "tenant_id"),
    "invoice_usage": ("partner_id",),
}


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


def upgrade() -> None:
    op.create_table(
        "usage_daily",
        sa.Column("tenant_id", sa.Uuid(), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("meter", sa.String(length=32), nullable=False),
        sa.Column("dimension", sa.String(length=64), nullable=False),
        sa.Column("partner_id", sa.Uuid(), nullable=False),
        sa.Column("quantity", sa.BigInteger(), nullable=False),
        sa.Column("metered_at", TS, nullable=False),
        _fk("usage_daily", "tenant_id", "tenants"),
        _fk("usage_daily", "partner_id", "partners"),
        sa.PrimaryKeyConstraint(
            "tenant_id", "day", "meter", "dimension", name=op.f("pk_usage_daily")
        ),
    )
    op.create_table(
        "price_books",
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("partner_id", sa.Uuid(), nullable=True),
        sa.Column("tenant_id", sa.Uuid(), nullable=True),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("effective_from", sa.String(length=7), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("minimum_fee", sa.BigInteger(), nullable=False),
        sa.Column("items", JSON, nullable=False),
        sa.Column("created_by", sa.String(length=200), nullable=False),
        *_entity_columns(),
        _fk("price_books", "partner_id", "partners"),
        _fk("price_books", "tenant_id", "tenants"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_price_books")),
    )
    op.create_table(
        "invoices",
        sa.Column("number", sa.String(length=40), nullable=False),
        sa.Column("key", sa.String(length=120), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("period", sa.String(length=7), nullable=False),
        sa.Column("partner_id", sa.Uuid(), nullable=False),
        sa.Column("tenant_id", sa.Uuid(), nullable=True),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("total", sa.BigInteger(), nullable=False),
        sa.Column("lines", JSON, nullable=False),
        sa.Column("price_book_id", sa.Uuid(), nullable=True),
        sa.Column("credits_invoice_id", sa.Uuid(), nullable=True),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("usage_digest", sa.String(length=64), nullable=False),
        sa.Column("issued_at", TS, nullable=False),
        sa.Column("issued_by", sa.String(length=200), nullable=False),
        *_entity_columns(),
        _fk("invoices", "partner_id", "partners"),
        _fk("invoices", "tenant_id", "tenants"),
        _fk("invoices", "price_book_id", "price_books"),
        _fk("invoices", "credits_invoice_id", "invoices"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_invoices")),
        sa.UniqueConstraint("number", name=op.f("uq_invoices_number")),
        sa.UniqueConstraint("key", name=op.f("uq_invoices_key")),
    )
    op.create_index("ix_invoices_period", "invoices", ["period", "kind"])
    op.create_table(
        "invoice_usage",
        sa.Column("invoice_id", sa.Uuid(), nullable=False),
        sa.Column("tenant_id", sa.Uuid(), nullable=False),
        sa.Column("source_period", sa.String(length=7), nullable=False),
        sa.Column("meter", sa.String(length=32), nullable=False),
        sa.Column("dimension", sa.String(length=64), nullable=False),
        sa.Column("partner_id", sa.Uuid(), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("quantity", sa.BigInteger(), nullable=False),
        sa.Column("line", sa.Integer(), nullable=False),
        _fk("invoice_usage", "invoice_id", "invoices"),
        _fk("invoice_usage", "tenant_id", "tenants"),
        _fk("invoice_usage", "partner_id", "partners"),
        sa.PrimaryKeyConstraint(
            "invoice_id", "tenant_id", "source_period", "meter", "dimension",
            name=op.f("pk_invoice_usage"),
        ),
    )  # fmt: skip
    for table, columns in INDEXED.items():
        for column in columns:
            op.create_index(op.f(f"ix_{table}_{column}"), table, [column])
    if op.get_bind().dialect.name == "postgresql":
        role = op.get_context().config.attributes["settings"].db_app_role
        for table in TABLES:
            op.execute(f"ALTER TABLE {table} ENABLE ROW LEVEL SECURITY")
            op.execute(
                f"CREATE POLICY scope ON {table} USING ({TENANT_SCOPE}) WITH CHECK ({TENANT_SCOPE})"
            )
        # Issued invoices and what they billed are a record: never changed or removed.
        for table in ("invoices", "invoice_usage"):
            op.execute(f'REVOKE UPDATE, DELETE, TRUNCATE ON {table} FROM "{role}"')


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        for table in TABLES:
            op.execute(f"DROP POLICY IF EXISTS scope ON {table}")
    for table, columns in INDEXED.items():
        for column in columns:
            op.drop_index(op.f(f"ix_{table}_{column}"), table_name=table)
    op.drop_index("ix_invoices_period", table_name="invoices")
    for table in reversed(TABLES):
        op.drop_table(table)
