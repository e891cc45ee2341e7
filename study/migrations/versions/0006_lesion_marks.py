"""questions: the `lesion_marks` kind (marks on the image with a confidence rating each)

The question kind is a VARCHAR with a CHECK constraint on its values; the constraint is
rebuilt with the new value (SQLite copies the table in batch mode; foreign keys are off while
migrating, see env.py). Downgrading refuses while a study still asks a `lesion_marks`
question: dropping the value would leave rows the constraint forbids.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-07 09:00:00.000000
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

KINDS = (
    "real_or_synthetic",
    "lesion_present",
    "likert_realism",
    "confidence",
    "pirads",
    "which_is_real",
    "single_choice",
    "free_text",
)


def _constrain(kinds: tuple[str, ...]) -> None:
    allowed = ", ".join(f"'{kind}'" for kind in kinds)
    with op.batch_alter_table("questions", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("ck_questions_question_kind"), type_="check")
        batch_op.create_check_constraint(
            batch_op.f("ck_questions_question_kind"), f"kind IN ({allowed})"
        )


def upgrade() -> None:
    _constrain((*KINDS, "lesion_marks"))


def downgrade() -> None:
    used = op.get_bind().exec_driver_sql(
        "SELECT COUNT(*) FROM questions WHERE kind = 'lesion_marks'"
    )
    if used.scalar():
        raise RuntimeError(
            "cannot downgrade below 0006: a study asks a lesion_marks question; delete it first"
        )
    _constrain(KINDS)
