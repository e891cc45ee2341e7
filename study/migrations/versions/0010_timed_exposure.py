"""cases.exposure and assignments.exposure_ms / shown_ms: timed exposure (HYPE)

A case of a timed block carries the block's exposure (JSON: fixed milliseconds, or an adaptive
staircase per reader); each reader's assignment of such a case records the exposure they were
given and the duration their browser measured the images as shown.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-07 07:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("cases", schema=None) as batch_op:
        batch_op.add_column(sa.Column("exposure", sa.JSON(none_as_null=True), nullable=True))
    with op.batch_alter_table("assignments", schema=None) as batch_op:
        batch_op.add_column(sa.Column("exposure_ms", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("shown_ms", sa.Float(), nullable=True))
        batch_op.create_check_constraint(
            batch_op.f("ck_assignments_exposure_positive"), "exposure_ms > 0"
        )
        batch_op.create_check_constraint(
            batch_op.f("ck_assignments_shown_nonnegative"), "shown_ms >= 0"
        )


def downgrade() -> None:
    with op.batch_alter_table("assignments", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("ck_assignments_shown_nonnegative"), type_="check")
        batch_op.drop_constraint(batch_op.f("ck_assignments_exposure_positive"), type_="check")
        batch_op.drop_column("shown_ms")
        batch_op.drop_column("exposure_ms")
    with op.batch_alter_table("cases", schema=None) as batch_op:
        batch_op.drop_column("exposure")
