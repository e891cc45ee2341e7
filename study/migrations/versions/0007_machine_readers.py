"""readers: the `machine` kind, and machine_scores (a machine reader's score of each case)

A machine reader is made by importing per-case scores (`python -m study add-machine`); its
real/synthetic calls are answers like anyone's, its scores are kept for the ROC analysis.
Downgrading refuses while a machine reader exists.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-07 10:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _constrain(kinds: tuple[str, ...]) -> None:
    allowed = ", ".join(f"'{kind}'" for kind in kinds)
    with op.batch_alter_table("readers", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("ck_readers_reader_kind"), type_="check")
        batch_op.create_check_constraint(
            batch_op.f("ck_readers_reader_kind"), f"kind IN ({allowed})"
        )


def upgrade() -> None:
    _constrain(("person", "visitor", "machine"))
    op.create_table(
        "machine_scores",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("reader_id", sa.Integer(), nullable=False),
        sa.Column("case_id", sa.Integer(), nullable=False),
        sa.Column("score", sa.Float(), nullable=False),
        sa.ForeignKeyConstraint(
            ["case_id"],
            ["cases.id"],
            name=op.f("fk_machine_scores_case_id_cases"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["reader_id"],
            ["readers.id"],
            name=op.f("fk_machine_scores_reader_id_readers"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_machine_scores")),
        sa.UniqueConstraint(
            "reader_id", "case_id", name=op.f("uq_machine_scores_reader_id_case_id")
        ),
    )
    with op.batch_alter_table("machine_scores", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_machine_scores_reader_id"), ["reader_id"])


def downgrade() -> None:
    machines = op.get_bind().exec_driver_sql("SELECT COUNT(*) FROM readers WHERE kind = 'machine'")
    if machines.scalar():
        raise RuntimeError(
            "cannot downgrade below 0007: a study has a machine reader; remove it first"
        )
    with op.batch_alter_table("machine_scores", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_machine_scores_reader_id"))
    op.drop_table("machine_scores")
    _constrain(("person", "visitor"))
