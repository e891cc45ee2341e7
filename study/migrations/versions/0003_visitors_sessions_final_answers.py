"""visitor readers and public study codes, final answers once the truth is shown, study
history, signed-in browser sessions

The demo study's public code used to belong to one shared reader ('demo reader'), so every
visitor read as that reader. The code moves to the study (`public_code_hash`), each sign-in
with it now makes a visitor reader of its own, and the old shared reader keeps its answers
with its code taken away.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-06 20:30:00.000000
"""

import hashlib
from collections.abc import Sequence
from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# The demo's public code (study.demo.DEMO_CODE), hashed as study.auth.hash_access_code does.
DEMO_CODE_HASH = hashlib.sha256(b"demo").hexdigest()


def _move_demo_code() -> None:
    connection = op.get_bind()
    readers = sa.table(
        "readers",
        sa.column("id", sa.Integer),
        sa.column("study_id", sa.Integer),
        sa.column("code_hash", sa.String),
        sa.column("revoked_at", sa.DateTime(timezone=True)),
    )
    studies = sa.table(
        "studies", sa.column("id", sa.Integer), sa.column("public_code_hash", sa.String)
    )
    shared = connection.execute(
        sa.select(readers.c.id, readers.c.study_id).where(readers.c.code_hash == DEMO_CODE_HASH)
    ).first()
    if shared is None:
        return
    connection.execute(
        sa.update(readers)
        .where(readers.c.id == shared.id)
        .values(code_hash=None, revoked_at=datetime.now(UTC))
    )
    connection.execute(
        sa.update(studies)
        .where(studies.c.id == shared.study_id)
        .values(public_code_hash=DEMO_CODE_HASH)
    )


def upgrade() -> None:
    with op.batch_alter_table("studies", schema=None) as batch_op:
        batch_op.add_column(sa.Column("public_code_hash", sa.String(length=64), nullable=True))
        batch_op.create_unique_constraint(
            batch_op.f("uq_studies_public_code_hash"), ["public_code_hash"]
        )
    with op.batch_alter_table("readers", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column(
                "kind",
                sa.Enum(
                    "person",
                    "visitor",
                    name="reader_kind",
                    native_enum=False,
                    create_constraint=True,
                    length=24,
                ),
                nullable=False,
                server_default="person",
            )
        )
    with op.batch_alter_table("assignments", schema=None) as batch_op:
        batch_op.add_column(sa.Column("truth_shown_at", sa.DateTime(timezone=True), nullable=True))
    op.create_table(
        "study_events",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("study_id", sa.Integer(), nullable=False),
        sa.Column(
            "action",
            sa.Enum(
                "opened",
                "closed",
                "reopened",
                name="study_action",
                native_enum=False,
                create_constraint=True,
                length=24,
            ),
            nullable=False,
        ),
        sa.Column("actor", sa.String(length=100), nullable=False),
        sa.Column("note", sa.Text(), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["study_id"],
            ["studies.id"],
            name=op.f("fk_study_events_study_id_studies"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_study_events")),
    )
    op.create_index(op.f("ix_study_events_study_id"), "study_events", ["study_id"], unique=False)
    op.create_table(
        "web_sessions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=True),
        sa.Column("claim_hash", sa.String(length=64), nullable=True),
        sa.Column("claim_expires_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("role", sa.String(length=24), nullable=False),
        sa.Column("reader_id", sa.Integer(), nullable=True),
        sa.Column("account_id", sa.Integer(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("ended_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint(
            "role IN ('reader', 'coordinator', 'analyst')", name=op.f("ck_web_sessions_role_known")
        ),
        sa.CheckConstraint(
            "(reader_id IS NULL) <> (account_id IS NULL)",
            name=op.f("ck_web_sessions_reader_or_account"),
        ),
        sa.ForeignKeyConstraint(
            ["account_id"],
            ["accounts.id"],
            name=op.f("fk_web_sessions_account_id_accounts"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["reader_id"],
            ["readers.id"],
            name=op.f("fk_web_sessions_reader_id_readers"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_web_sessions")),
        sa.UniqueConstraint("claim_hash", name=op.f("uq_web_sessions_claim_hash")),
        sa.UniqueConstraint("token_hash", name=op.f("uq_web_sessions_token_hash")),
    )
    _move_demo_code()


def downgrade() -> None:
    op.drop_table("web_sessions")
    op.drop_index(op.f("ix_study_events_study_id"), table_name="study_events")
    op.drop_table("study_events")
    with op.batch_alter_table("assignments", schema=None) as batch_op:
        batch_op.drop_column("truth_shown_at")
    with op.batch_alter_table("readers", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("ck_readers_reader_kind"), type_="check")
        batch_op.drop_column("kind")
    with op.batch_alter_table("studies", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("uq_studies_public_code_hash"), type_="unique")
        batch_op.drop_column("public_code_hash")
