"""jobs: the heartbeat of the process that runs each job

Jobs may run in workers on other machines (VTT_JOB_BROKER), whose death no app process can see
by looking for the process: the runner writes `heartbeat_at` every few seconds, and a running
job whose heartbeat stops is failed.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-14 09:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("jobs", schema=None) as batch_op:
        batch_op.add_column(sa.Column("heartbeat_at", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("jobs", schema=None) as batch_op:
        batch_op.drop_column("heartbeat_at")
