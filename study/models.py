"""The domain in SQLAlchemy 2.0: assets, cases, studies, questions, readers, answers, jobs.

Invariants live in the database: one answer per (reader, case, question), an asset's source
sha256 unique, enumerations checked, every answer change kept as a revision.
"""

from __future__ import annotations

from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    CheckConstraint,
    DateTime,
    Enum,
    Float,
    ForeignKey,
    Integer,
    MetaData,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

from study.imaging.types import Intensity, Origin, Sequence

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def utcnow() -> datetime:
    return datetime.now(UTC)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


def checked_enum(enum: type[StrEnum], name: str) -> Enum:
    """A portable enum column: VARCHAR plus a CHECK constraint on its values (SQLite and PG)."""
    return Enum(
        enum,
        name=name,
        native_enum=False,
        create_constraint=True,
        length=24,
        values_callable=lambda e: [member.value for member in e],
        validate_strings=True,
    )


class CaseOrigin(StrEnum):
    REAL = "real"
    SYNTHETIC = "synthetic"
    MIXED = "mixed"


class CaseKind(StrEnum):
    SINGLE = "single"
    PAIRED = "paired"
    TWO_AFC = "2afc"
    # A stack of slices per viewport, browsed with the wheel (study.volumes).
    VOLUME = "volume"


class StudyStatus(StrEnum):
    DRAFT = "draft"
    OPEN = "open"
    CLOSED = "closed"


class Feedback(StrEnum):
    NONE = "none"
    AT_END = "at_end"
    EACH_CASE = "each_case"


class QuestionKind(StrEnum):
    REAL_OR_SYNTHETIC = "real_or_synthetic"
    LESION_PRESENT = "lesion_present"
    LIKERT_REALISM = "likert_realism"
    CONFIDENCE = "confidence"
    PIRADS = "pirads"
    WHICH_IS_REAL = "which_is_real"
    SINGLE_CHOICE = "single_choice"
    FREE_TEXT = "free_text"
    LESION_MARKS = "lesion_marks"


class ReaderKind(StrEnum):
    """A person invited with a personal code, an anonymous visitor of a study with a public
    code (each sign-in with the public code makes one), or a machine whose per-case scores
    were imported (study.machine_reader; it never signs in)."""

    PERSON = "person"
    VISITOR = "visitor"
    MACHINE = "machine"


class StudyAction(StrEnum):
    OPENED = "opened"
    CLOSED = "closed"
    REOPENED = "reopened"


class AccountRole(StrEnum):
    COORDINATOR = "coordinator"
    ANALYST = "analyst"


class JobState(StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"


class Asset(Base):
    """One imported 2D image: its truth, its provenance and its stored files."""

    __tablename__ = "assets"

    id: Mapped[int] = mapped_column(primary_key=True)
    origin: Mapped[Origin] = mapped_column(checked_enum(Origin, "origin"))
    sequence: Mapped[Sequence] = mapped_column(checked_enum(Sequence, "sequence"))
    lesion: Mapped[int | None] = mapped_column(Integer)
    pirads: Mapped[int | None] = mapped_column(Integer)
    patient_id: Mapped[str] = mapped_column(String(128), default="")
    slice_index: Mapped[int | None] = mapped_column(Integer)
    pair_key: Mapped[str] = mapped_column(String(128), default="", index=True)
    intensity: Mapped[Intensity] = mapped_column(checked_enum(Intensity, "intensity"))
    source_sha256: Mapped[str] = mapped_column(String(64), unique=True)
    source_path: Mapped[str] = mapped_column(Text)
    canonical_sha256: Mapped[str] = mapped_column(String(64))
    display_sha256: Mapped[str] = mapped_column(String(64))
    rows: Mapped[int] = mapped_column(Integer)
    cols: Mapped[int] = mapped_column(Integer)
    spacing_row_mm: Mapped[float] = mapped_column(Float)
    spacing_col_mm: Mapped[float] = mapped_column(Float)
    provenance: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    imported_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    # Truth from a lesion mask (study.imaging.mask), never shown to readers: the slice's labels
    # on the canonical pixels (lossless .npy in the asset store) and its lesions with their
    # outlines (study.imaging.lesions); both NULL when no mask was given.
    mask_sha256: Mapped[str | None] = mapped_column(String(64))
    lesions: Mapped[list[dict[str, Any]] | None] = mapped_column(JSON(none_as_null=True))
    # Where the canonical pixels lie in the patient (study.imaging.geometry.Plane); NULL for
    # pictures and volumes that do not say.
    plane: Mapped[dict[str, Any] | None] = mapped_column(JSON(none_as_null=True))

    __table_args__ = (
        CheckConstraint("lesion IN (0, 1)", name="lesion_binary"),
        CheckConstraint("pirads BETWEEN 1 AND 5", name="pirads_range"),
        CheckConstraint("length(source_sha256) = 64", name="sha256_length"),
    )


class Study(Base):
    __tablename__ = "studies"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    description: Mapped[str] = mapped_column(Text, default="")
    instructions: Mapped[str] = mapped_column(Text, default="")
    status: Mapped[StudyStatus] = mapped_column(
        checked_enum(StudyStatus, "study_status"), default=StudyStatus.DRAFT
    )
    seed: Mapped[int] = mapped_column(Integer, default=0)
    allow_revisit: Mapped[bool] = mapped_column(Boolean, default=False)
    feedback: Mapped[Feedback] = mapped_column(
        checked_enum(Feedback, "feedback"), default=Feedback.NONE
    )
    settings: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    # A code anyone may use (the demo's): each sign-in with it makes an anonymous visitor reader.
    public_code_hash: Mapped[str | None] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    opened_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    closed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))

    questions: Mapped[list[Question]] = relationship(
        back_populates="study", order_by="Question.position", cascade="all, delete-orphan"
    )
    cases: Mapped[list[Case]] = relationship(
        back_populates="study", order_by="Case.id", cascade="all, delete-orphan"
    )
    readers: Mapped[list[Reader]] = relationship(
        back_populates="study", order_by="Reader.id", cascade="all, delete-orphan"
    )
    events: Mapped[list[StudyEvent]] = relationship(
        back_populates="study", order_by="StudyEvent.id", cascade="all, delete-orphan"
    )


class StudyEvent(Base):
    """A change of a study's status (opened, closed, reopened): who, when and why."""

    __tablename__ = "study_events"

    id: Mapped[int] = mapped_column(primary_key=True)
    study_id: Mapped[int] = mapped_column(ForeignKey("studies.id", ondelete="CASCADE"), index=True)
    action: Mapped[StudyAction] = mapped_column(checked_enum(StudyAction, "study_action"))
    actor: Mapped[str] = mapped_column(String(100), default="")
    note: Mapped[str] = mapped_column(Text, default="")
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)

    study: Mapped[Study] = relationship(back_populates="events")


class Question(Base):
    __tablename__ = "questions"

    id: Mapped[int] = mapped_column(primary_key=True)
    study_id: Mapped[int] = mapped_column(ForeignKey("studies.id", ondelete="CASCADE"))
    position: Mapped[int] = mapped_column(Integer)
    kind: Mapped[QuestionKind] = mapped_column(checked_enum(QuestionKind, "question_kind"))
    wording: Mapped[str] = mapped_column(Text)
    options: Mapped[list[str]] = mapped_column(JSON, default=list)
    required: Mapped[bool] = mapped_column(Boolean, default=True)
    applies_to: Mapped[list[str]] = mapped_column(JSON, default=list)
    # Asked in this phase of a two-phase study only (None: in every phase).
    phase: Mapped[int | None] = mapped_column(Integer)

    study: Mapped[Study] = relationship(back_populates="questions")

    __table_args__ = (
        UniqueConstraint("study_id", "position"),
        CheckConstraint("phase IS NULL OR phase IN (1, 2)", name="phase_known"),
    )


class Case(Base):
    """What a reader sees at once: one or more assets in named viewports."""

    __tablename__ = "cases"

    id: Mapped[int] = mapped_column(primary_key=True)
    study_id: Mapped[int] = mapped_column(ForeignKey("studies.id", ondelete="CASCADE"))
    public_id: Mapped[str] = mapped_column(String(32), unique=True)
    kind: Mapped[CaseKind] = mapped_column(checked_enum(CaseKind, "case_kind"))
    origin: Mapped[CaseOrigin] = mapped_column(checked_enum(CaseOrigin, "case_origin"))
    lesion: Mapped[int | None] = mapped_column(Integer)
    sequence: Mapped[str] = mapped_column(String(64))
    practice: Mapped[bool] = mapped_column(Boolean, default=False)
    repeat_of_id: Mapped[int | None] = mapped_column(ForeignKey("cases.id", ondelete="CASCADE"))
    # A two-phase study (study.phases): 1 uninformed, 2 informed; a phase-2 case shows the
    # images of its phase-1 case `first_phase_id`.
    phase: Mapped[int] = mapped_column(Integer, default=1, server_default="1")
    first_phase_id: Mapped[int | None] = mapped_column(ForeignKey("cases.id", ondelete="CASCADE"))
    # Timed exposure (study.exposure): how long the images are shown before a mask replaces
    # them, as the block asked ({"ms", "adaptive", "step_ms", "min_ms", "max_ms", "block"});
    # NULL: shown until the reader answers.
    exposure: Mapped[dict[str, Any] | None] = mapped_column(JSON(none_as_null=True))

    study: Mapped[Study] = relationship(back_populates="cases")
    views: Mapped[list[CaseAsset]] = relationship(
        back_populates="case", order_by="CaseAsset.position", cascade="all, delete-orphan"
    )

    __table_args__ = (
        CheckConstraint("lesion IN (0, 1)", name="lesion_binary"),
        CheckConstraint("phase IN (1, 2)", name="phase_known"),
    )


class CaseAsset(Base):
    __tablename__ = "case_assets"

    id: Mapped[int] = mapped_column(primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id", ondelete="CASCADE"))
    asset_id: Mapped[int] = mapped_column(ForeignKey("assets.id", ondelete="RESTRICT"))
    viewport: Mapped[str] = mapped_column(String(32))
    position: Mapped[int] = mapped_column(Integer)
    # The slice's place in its viewport's stack (0 for a viewport of one image).
    slice: Mapped[int] = mapped_column(Integer, default=0, server_default="0")

    case: Mapped[Case] = relationship(back_populates="views")
    asset: Mapped[Asset] = relationship()

    __table_args__ = (
        UniqueConstraint("case_id", "viewport", "slice"),
        UniqueConstraint("case_id", "position"),
    )


class Reader(Base):
    __tablename__ = "readers"

    id: Mapped[int] = mapped_column(primary_key=True)
    study_id: Mapped[int] = mapped_column(ForeignKey("studies.id", ondelete="CASCADE"))
    alias: Mapped[str] = mapped_column(String(100))
    kind: Mapped[ReaderKind] = mapped_column(
        checked_enum(ReaderKind, "reader_kind"), default=ReaderKind.PERSON
    )
    experience_years: Mapped[float | None] = mapped_column(Float)
    specialty: Mapped[str] = mapped_column(String(100), default="")
    code_hash: Mapped[str | None] = mapped_column(String(64), unique=True)
    code_created_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    instructions_seen_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # When the reader of a two-phase study was told that some images are synthetic.
    informed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)

    study: Mapped[Study] = relationship(back_populates="readers")

    __table_args__ = (UniqueConstraint("study_id", "alias"),)


class Assignment(Base):
    """A case in a reader's seeded order."""

    __tablename__ = "assignments"

    id: Mapped[int] = mapped_column(primary_key=True)
    reader_id: Mapped[int] = mapped_column(ForeignKey("readers.id", ondelete="CASCADE"))
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id", ondelete="CASCADE"))
    position: Mapped[int] = mapped_column(Integer)
    shown_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    completed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # When the reader was shown this case's truth (practice, per-case or end feedback): from
    # then on their answers to it are final.
    truth_shown_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # A timed case: the exposure this reader was given (fixed, or their staircase's next step),
    # set when the case is first served, and the duration the browser measured the images as
    # shown (from the first painted frame to the frame that painted the mask).
    exposure_ms: Mapped[int | None] = mapped_column(Integer)
    shown_ms: Mapped[float | None] = mapped_column(Float)

    case: Mapped[Case] = relationship()

    __table_args__ = (
        UniqueConstraint("reader_id", "case_id"),
        UniqueConstraint("reader_id", "position"),
        CheckConstraint("exposure_ms > 0", name="exposure_positive"),
        CheckConstraint("shown_ms >= 0", name="shown_nonnegative"),
    )


class Answer(Base):
    __tablename__ = "answers"

    id: Mapped[int] = mapped_column(primary_key=True)
    reader_id: Mapped[int] = mapped_column(ForeignKey("readers.id", ondelete="CASCADE"))
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id", ondelete="CASCADE"))
    question_id: Mapped[int] = mapped_column(ForeignKey("questions.id", ondelete="CASCADE"))
    value: Mapped[str] = mapped_column(Text)
    first_saved_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    last_saved_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    time_on_case_s: Mapped[float] = mapped_column(Float, default=0.0)
    revision: Mapped[int] = mapped_column(Integer, default=1)

    revisions: Mapped[list[AnswerRevision]] = relationship(
        back_populates="answer", order_by="AnswerRevision.revision", cascade="all, delete-orphan"
    )

    __table_args__ = (
        UniqueConstraint("reader_id", "case_id", "question_id"),
        CheckConstraint("time_on_case_s >= 0", name="time_nonnegative"),
    )


class MachineScore(Base):
    """A machine reader's score of a case (higher: more likely synthetic), as imported; its
    real/synthetic call at the import's threshold is stored as an answer like a person's."""

    __tablename__ = "machine_scores"

    id: Mapped[int] = mapped_column(primary_key=True)
    reader_id: Mapped[int] = mapped_column(ForeignKey("readers.id", ondelete="CASCADE"), index=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id", ondelete="CASCADE"))
    score: Mapped[float] = mapped_column(Float)

    __table_args__ = (UniqueConstraint("reader_id", "case_id"),)


class AnswerRevision(Base):
    __tablename__ = "answer_revisions"

    id: Mapped[int] = mapped_column(primary_key=True)
    answer_id: Mapped[int] = mapped_column(ForeignKey("answers.id", ondelete="CASCADE"))
    revision: Mapped[int] = mapped_column(Integer)
    value: Mapped[str] = mapped_column(Text)
    saved_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    time_on_case_s: Mapped[float] = mapped_column(Float, default=0.0)

    answer: Mapped[Answer] = relationship(back_populates="revisions")

    __table_args__ = (UniqueConstraint("answer_id", "revision"),)


class Account(Base):
    """Coordinator and analyst sign-in (readers use access codes instead)."""

    __tablename__ = "accounts"

    id: Mapped[int] = mapped_column(primary_key=True)
    username: Mapped[str] = mapped_column(String(100), unique=True)
    role: Mapped[AccountRole] = mapped_column(checked_enum(AccountRole, "account_role"))
    password_hash: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    disabled_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class WebSession(Base):
    """A signed-in browser: the hash of the token its HTTP-only cookie carries, who it is,
    until when. Made unclaimed at sign-in (the browser exchanges a one-time claim ticket for
    the cookie); ended by sign-out, expiry, or the revocation of its reader or account."""

    __tablename__ = "web_sessions"

    id: Mapped[int] = mapped_column(primary_key=True)
    token_hash: Mapped[str | None] = mapped_column(String(64), unique=True)
    claim_hash: Mapped[str | None] = mapped_column(String(64), unique=True)
    claim_expires_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    role: Mapped[str] = mapped_column(String(24))
    reader_id: Mapped[int | None] = mapped_column(ForeignKey("readers.id", ondelete="CASCADE"))
    account_id: Mapped[int | None] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    ended_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))

    __table_args__ = (
        CheckConstraint("role IN ('reader', 'coordinator', 'analyst')", name="role_known"),
        CheckConstraint("(reader_id IS NULL) <> (account_id IS NULL)", name="reader_or_account"),
    )


class Job(Base):
    """A background run (generate, train): the truth every process shares about it.

    The app's pages read it; the process that runs it (an app process, or a worker on another
    machine) writes its progress, log tail, heartbeat and result; cancelling is changing its
    state, which the runner sees."""

    __tablename__ = "jobs"

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(String(32))
    params: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    state: Mapped[JobState] = mapped_column(
        checked_enum(JobState, "job_state"), default=JobState.QUEUED
    )
    progress: Mapped[float] = mapped_column(Float, default=0.0)
    log_tail: Mapped[str] = mapped_column(Text, default="")
    result: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    error: Mapped[str] = mapped_column(Text, default="")
    pid: Mapped[int | None] = mapped_column(Integer)
    # The process whose thread runs the job (an app process or a worker): its host name, pid and
    # start time (clock ticks after boot, from /proc), so that a restarted process recovers
    # only its own host's dead jobs.
    runner_host: Mapped[str | None] = mapped_column(String(255))
    runner_pid: Mapped[int | None] = mapped_column(Integer)
    runner_start: Mapped[int | None] = mapped_column(BigInteger)
    # Written by the runner every few seconds: a worker on another machine may die unseen.
    heartbeat_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    started_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))

    __table_args__ = (CheckConstraint("progress BETWEEN 0 AND 1", name="progress_range"),)


class SignInAttempt(Base):
    """Failed sign-ins, to slow down guessing (per source key, e.g. 'reader-code')."""

    __tablename__ = "sign_in_attempts"

    id: Mapped[int] = mapped_column(primary_key=True)
    key: Mapped[str] = mapped_column(String(100), index=True)
    attempted_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
