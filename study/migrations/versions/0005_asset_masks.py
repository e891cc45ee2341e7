"""assets: lesion masks as ground truth, and where each slice lies in the patient

An asset imported with a mask keeps the slice's label mask (a file in the asset store, named by
`mask_sha256`) and its lesions with their outlines (`lesions`), which later localisation
answers are scored against; `plane` records where its canonical pixels lie (patient
coordinates, mm), which pairs ADC and DWI slices with the T2W slice they were resampled onto.
All three are NULL for assets imported before, and for assets without a mask or geometry.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-20 09:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("assets", schema=None) as batch_op:
        batch_op.add_column(sa.Column("mask_sha256", sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column("lesions", sa.JSON(none_as_null=True), nullable=True))
        batch_op.add_column(sa.Column("plane", sa.JSON(none_as_null=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("assets", schema=None) as batch_op:
        batch_op.drop_column("plane")
        batch_op.drop_column("lesions")
        batch_op.drop_column("mask_sha256")
