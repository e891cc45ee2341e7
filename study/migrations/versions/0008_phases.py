"""two-phase studies: cases and questions of an uninformed and an informed phase

A study may be read twice: first (phase 1) without being told that some images are synthetic
(rating quality, diagnosing), then (phase 2), told, answering real or synthetic on the same
images in a new order. `cases.phase` says which phase a case belongs to and
`cases.first_phase_id` links a phase-2 case to the phase-1 case of the same images;
`questions.phase` limits a question to one phase (NULL: every phase); `readers.informed_at`
records when a reader was told (and started phase 2). Existing studies are phase 1 throughout.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-07 11:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("cases", schema=None) as batch_op:
        batch_op.add_column(sa.Column("phase", sa.Integer(), nullable=False, server_default="1"))
        batch_op.add_column(sa.Column("first_phase_id", sa.Integer(), nullable=True))
        batch_op.create_foreign_key(
            batch_op.f("fk_cases_first_phase_id_cases"),
            "cases",
            ["first_phase_id"],
            ["id"],
            ondelete="CASCADE",
        )
        batch_op.create_check_constraint(batch_op.f("ck_cases_phase_known"), "phase IN (1, 2)")
    with op.batch_alter_table("questions", schema=None) as batch_op:
        batch_op.add_column(sa.Column("phase", sa.Integer(), nullable=True))
        batch_op.create_check_constraint(
            batch_op.f("ck_questions_phase_known"), "phase IS NULL OR phase IN (1, 2)"
        )
    with op.batch_alter_table("readers", schema=None) as batch_op:
        batch_op.add_column(sa.Column("informed_at", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    phased = op.get_bind().exec_driver_sql("SELECT COUNT(*) FROM cases WHERE phase = 2")
    if phased.scalar():
        raise RuntimeError(
            "cannot downgrade below 0008: a study has an informed phase; delete it first"
        )
    with op.batch_alter_table("readers", schema=None) as batch_op:
        batch_op.drop_column("informed_at")
    with op.batch_alter_table("questions", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("ck_questions_phase_known"), type_="check")
        batch_op.drop_column("phase")
    with op.batch_alter_table("cases", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("ck_cases_phase_known"), type_="check")
        batch_op.drop_constraint(batch_op.f("fk_cases_first_phase_id_cases"), type_="foreignkey")
        batch_op.drop_column("first_phase_id")
        batch_op.drop_column("phase")
