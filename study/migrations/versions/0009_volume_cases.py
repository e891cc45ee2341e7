"""cases: the `volume` kind (a stack of slices per viewport) and `case_assets.slice`

A volume case shows a stack of slices in each viewport: one `case_assets` row per slice and
viewport, `slice` giving its place in the stack (0 for the one image of the other kinds). The
unique (case_id, viewport) becomes (case_id, viewport, slice); the case kind's CHECK
constraint is rebuilt with the new value (SQLite copies the table in batch mode; foreign keys
are off while migrating, see env.py). Downgrading refuses while a volume case exists:
dropping the value would leave rows the constraints forbid.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-07 12:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

KINDS = ("single", "paired", "2afc")


def _constrain(kinds: tuple[str, ...]) -> None:
    allowed = ", ".join(f"'{kind}'" for kind in kinds)
    with op.batch_alter_table("cases", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("ck_cases_case_kind"), type_="check")
        batch_op.create_check_constraint(batch_op.f("ck_cases_case_kind"), f"kind IN ({allowed})")


def upgrade() -> None:
    _constrain((*KINDS, "volume"))
    with op.batch_alter_table("case_assets", schema=None) as batch_op:
        batch_op.add_column(sa.Column("slice", sa.Integer(), nullable=False, server_default="0"))
        batch_op.drop_constraint(batch_op.f("uq_case_assets_case_id_viewport"), type_="unique")
        batch_op.create_unique_constraint(
            batch_op.f("uq_case_assets_case_id_viewport_slice"), ["case_id", "viewport", "slice"]
        )


def downgrade() -> None:
    used = op.get_bind().exec_driver_sql("SELECT COUNT(*) FROM cases WHERE kind = 'volume'")
    if used.scalar():
        raise RuntimeError("cannot downgrade below 0009: a study has volume cases; delete it first")
    with op.batch_alter_table("case_assets", schema=None) as batch_op:
        batch_op.drop_constraint(
            batch_op.f("uq_case_assets_case_id_viewport_slice"), type_="unique"
        )
        batch_op.create_unique_constraint(
            batch_op.f("uq_case_assets_case_id_viewport"), ["case_id", "viewport"]
        )
        batch_op.drop_column("slice")
    _constrain(KINDS)
