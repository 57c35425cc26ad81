"""scoped single-row read in one round trip

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-28
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Sets the tenancy context, reads one row by id under row-level security (the function is
# SECURITY INVOKER, so the caller's role and policies apply), then restores the context it
# found. PL/pgSQL runs its statements in order, so the read always sees the context: one
# round trip instead of BEGIN/set_config, SELECT, ROLLBACK.
FUNCTION = """
CREATE OR REPLACE FUNCTION storeops_read_row(
    tbl regclass, row_id uuid, platform text, partner_ids text, tenant_ids text
) RETURNS jsonb
LANGUAGE plpgsql VOLATILE SECURITY INVOKER AS $$
DECLARE
    saved_platform text := coalesce(current_setting('storeops.platform', true), '');
    saved_partners text := coalesce(current_setting('storeops.partner_ids', true), '');
    saved_tenants text := coalesce(current_setting('storeops.tenant_ids', true), '');
    result jsonb;
BEGIN
    PERFORM set_config('storeops.platform', platform, true),
            set_config('storeops.partner_ids', partner_ids, true),
            set_config('storeops.tenant_ids', tenant_ids, true);
    EXECUTE format('SELECT to_jsonb(t) FROM %s AS t WHERE t.id = $1', tbl)
        INTO result USING row_id;
    PERFORM set_config('storeops.platform', saved_platform, true),
            set_config('storeops.partner_ids', saved_partners, true),
            set_config('storeops.tenant_ids', saved_tenants, true);
    RETURN result;
END
$$
"""


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(FUNCTION)


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP FUNCTION IF EXISTS storeops_read_row(regclass, uuid, text, text, text)")
