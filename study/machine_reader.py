"""A machine as a reader of a study: its per-image scores imported as a reader marked `machine`.

The scores file is a CSV with at least the columns `case_ref` and `score` (higher: more likely
synthetic; a probability or any other finite number), and optionally `source_sha256`, as
`python -m synth evaluate --scores` writes for its classifier two-sample test (each image's
out-of-fold score). Each row names an image:

- by `source_sha256`, the digest the importer stores the image under (exact), when present;
- else by `case_ref`: a case's public id, an asset's source path as imported, or the file
  name of one (when exactly one of the study's images has it).

Rows naming no image of the study are ignored (an evaluation scores more images than a study
shows); every case of the study must get a score, or nothing is imported. A single-image case
takes its image's score, a paired case the mean of its two images' (both show one slice, so
one call), a volume case the mean of its slices'; a 2AFC case is answered with the side of the
lower score as the real one. The machine's real/synthetic call is `synthetic` when its score
is >= the threshold (default 0.5), stored as an answer to the study's real/synthetic question
like a person's, and its scores are kept (`machine_scores`) for its ROC curve and AUC.
Practice cases are not scored.
"""

from __future__ import annotations

import csv
import math
from dataclasses import dataclass
from pathlib import Path, PurePath

from sqlalchemy import Engine, select
from sqlalchemy.orm import selectinload

from study.db import transaction
from study.imaging.errors import VTTError
from study.models import (
    Answer,
    AnswerRevision,
    Assignment,
    Case,
    CaseAsset,
    CaseKind,
    MachineScore,
    QuestionKind,
    Reader,
    ReaderKind,
    Study,
    utcnow,
)

DEFAULT_THRESHOLD = 0.5


class MachineReaderError(VTTError):
    """Scores that cannot be imported as a machine reader; nothing was changed."""


@dataclass(frozen=True)
class MachineImport:
    reader_id: int
    alias: str
    cases: int
    rows_used: int
    rows_ignored: int


def _read_scores(path: Path) -> list[tuple[int, str, str, float]]:
    """(line, case_ref, source_sha256, score) of every row."""
    try:
        with path.open(newline="", encoding="utf-8-sig") as handle:
            reader = csv.DictReader(handle)
            fields = [name.strip().lower() for name in reader.fieldnames or []]
            missing = [name for name in ("case_ref", "score") if name not in fields]
            if missing:
                raise MachineReaderError(
                    f"{path}: no column {', '.join(missing)}; a scores file has the columns "
                    "case_ref and score (and optionally source_sha256)"
                )
            rows = []
            for line, raw in enumerate(reader, start=2):
                row = {str(k).strip().lower(): (v or "").strip() for k, v in raw.items()}
                try:
                    score = float(row["score"])
                except ValueError:
                    score = math.nan
                if not math.isfinite(score):
                    raise MachineReaderError(
                        f"{path}: line {line} has score {row['score']!r}; scores are finite numbers"
                    )
                if not row["case_ref"] and not row.get("source_sha256"):
                    raise MachineReaderError(f"{path}: line {line} names no image (case_ref)")
                rows.append((line, row["case_ref"], row.get("source_sha256", ""), score))
    except FileNotFoundError:
        raise MachineReaderError(f"{path}: no such file") from None
    except (UnicodeDecodeError, csv.Error) as error:
        raise MachineReaderError(f"{path}: cannot be read as CSV ({error})") from None
    if not rows:
        raise MachineReaderError(f"{path}: no scores (the file has no rows)")
    return rows


def _image_keys(case: Case, view: CaseAsset) -> dict[str, tuple[str, ...]]:
    asset = view.asset
    return {
        "sha": (asset.source_sha256,),
        "ref": (case.public_id, asset.source_path),
        "name": (PurePath(asset.source_path).name,),
    }


def add_machine_reader(
    engine: Engine,
    study_id: int,
    scores: Path,
    alias: str,
    *,
    threshold: float = DEFAULT_THRESHOLD,
) -> MachineImport:
    """Import `scores` as a machine reader `alias` of the study (all or nothing)."""
    alias = alias.strip()
    if not alias:
        raise MachineReaderError("a machine reader needs a name")
    if not math.isfinite(threshold):
        raise MachineReaderError(f"the threshold must be a finite number, not {threshold}")
    rows = _read_scores(scores)
    now = utcnow()
    with transaction(engine) as session:
        study = session.get(Study, study_id)
        if study is None:
            raise MachineReaderError(f"there is no study {study_id}")
        if session.scalar(select(Reader).where(Reader.study_id == study_id, Reader.alias == alias)):
            raise MachineReaderError(f"study '{study.name}' already has a reader '{alias}'")
        question = next(
            (q for q in study.questions if q.kind == QuestionKind.REAL_OR_SYNTHETIC), None
        )
        two_afc = next((q for q in study.questions if q.kind == QuestionKind.WHICH_IS_REAL), None)
        cases = session.scalars(
            select(Case)
            .where(Case.study_id == study_id, Case.practice.is_(False))
            .options(selectinload(Case.views).selectinload(CaseAsset.asset))
            .order_by(Case.id)
        ).all()
        if not cases:
            raise MachineReaderError(f"study '{study.name}' has no cases to score")
        # Each image of the study by every key it may be named by; a file name shared by two
        # images names neither.
        index: dict[tuple[str, str], set[int]] = {}
        for case in cases:
            for view in case.views:
                for kind, keys in _image_keys(case, view).items():
                    for key in keys:
                        index.setdefault((kind, key), set()).add(view.asset_id)
        score_of: dict[int, float] = {}
        used = 0
        for line, ref, sha, score in rows:
            candidates = (
                index.get(("sha", sha), set())
                if sha
                else index.get(("ref", ref)) or index.get(("name", PurePath(ref).name), set())
            )
            if len(candidates) > 1:
                raise MachineReaderError(
                    f"{scores}: line {line} names '{ref}', which is the file name of "
                    f"{len(candidates)} images of the study; name it by its path or digest"
                )
            if not candidates:
                continue
            (asset_id,) = candidates
            if asset_id in score_of and score_of[asset_id] != score:
                raise MachineReaderError(
                    f"{scores}: line {line} scores an image that an earlier line scored differently"
                )
            score_of[asset_id] = score
            used += 1
        case_scores: dict[int, float] = {}
        calls: dict[int, tuple[int, str]] = {}
        for case in cases:
            missing = [v for v in case.views if v.asset_id not in score_of]
            if missing:
                raise MachineReaderError(
                    f"{scores}: no score for {missing[0].asset.source_path} (case "
                    f"{case.public_id}); every case of the study needs one"
                )
            # A volume viewport has a row per slice: its score is its slices' mean.
            by_viewport: dict[str, list[float]] = {}
            for view in case.views:
                by_viewport.setdefault(view.viewport, []).append(score_of[view.asset_id])
            values = {name: sum(v) / len(v) for name, v in by_viewport.items()}
            if case.kind == CaseKind.TWO_AFC:
                if two_afc is None:
                    raise MachineReaderError(f"study '{study.name}' has no 2AFC question")
                calls[case.id] = (two_afc.id, min(values, key=values.__getitem__))
                continue
            if question is None:
                raise MachineReaderError(
                    f"study '{study.name}' asks no real/synthetic question for a machine to answer"
                )
            score = sum(values.values()) / len(values)
            case_scores[case.id] = score
            calls[case.id] = (question.id, "synthetic" if score >= threshold else "real")
        machine = Reader(study_id=study_id, alias=alias, kind=ReaderKind.MACHINE)
        machine.instructions_seen_at = now
        session.add(machine)
        session.flush()
        for position, case in enumerate(cases):
            session.add(
                Assignment(
                    reader_id=machine.id,
                    case_id=case.id,
                    position=position,
                    shown_at=now,
                    completed_at=now,
                )
            )
            question_id, value = calls[case.id]
            answer = Answer(
                reader_id=machine.id,
                case_id=case.id,
                question_id=question_id,
                value=value,
                first_saved_at=now,
                last_saved_at=now,
            )
            answer.revisions.append(AnswerRevision(revision=1, value=value, saved_at=now))
            session.add(answer)
            if case.id in case_scores:
                session.add(
                    MachineScore(reader_id=machine.id, case_id=case.id, score=case_scores[case.id])
                )
        return MachineImport(machine.id, alias, len(cases), used, len(rows) - used)
