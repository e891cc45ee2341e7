"""From "Submit" to the next case shown, on a large database (service-layer path).

One submit = `record_answer` + `next_case` + `render_case` of the next case, as the reading page
does it. The database holds `--cases` cases read by `--readers` readers, half of every reader's
cases already answered. Renders are timed cold (cache cleared before each submit) and warm.

    .venv/bin/python -m benchmarks.bench_reading [--readers 100] [--cases 5000]
        [--submits 300] [--database-url URL]
"""

from __future__ import annotations

import argparse
import random
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
from sqlalchemy import insert, select

from study import settings
from study.db import make_engine, migrate, transaction
from study.design import SingleBlock, StudyPlan, create_study, open_study
from study.imaging.canonical import canonical_to_bytes
from study.imaging.render import render_png
from study.imaging.types import Intensity, Origin, Sequence
from study.models import Answer, AnswerRevision, Asset, Assignment, Question, Reader, utcnow
from study.questions import TEMPLATES
from study.readers import add_reader
from study.reading import next_case, record_answer
from study.rendering import clear_render_cache, render_case
from study.storage import AssetStore

DISTINCT_IMAGES = 64


def seed(engine, store: AssetStore, readers: int, cases: int) -> list[int]:
    """Assets, a study of `cases` T2W/ADC singles, readers with half their cases answered."""
    images = []
    for i in range(DISTINCT_IMAGES):
        array = np.random.default_rng(i).random((256, 256), dtype=np.float32)
        images.append(
            (
                store.put(canonical_to_bytes(array), ".npy")[0],
                store.put(render_png(array, size=settings.render_size()), ".png")[0],
            )
        )
    rows = []
    for i in range(2 * cases):  # twice what the study draws, so every cell can be filled
        canonical, display = images[i % DISTINCT_IMAGES]
        rows.append(
            {
                "origin": Origin.SYNTHETIC if i % 2 else Origin.REAL,
                "sequence": Sequence.T2W if (i // 2) % 2 else Sequence.ADC,
                "lesion": (i // 4) % 2,
                "patient_id": f"P{i % 300}",
                "pair_key": "",
                "intensity": Intensity.CANONICAL,
                "source_sha256": f"{i:064x}",
                "source_path": f"/bench/{i}.png",
                "canonical_sha256": canonical,
                "display_sha256": display,
                "rows": 256,
                "cols": 256,
                "spacing_row_mm": 1.0,
                "spacing_col_mm": 1.0,
                "provenance": {},
            }
        )
    with transaction(engine) as session:
        session.execute(insert(Asset), rows)
    if cases % 4:
        raise SystemExit(f"--cases must be a multiple of 4 (origin x lesion), not {cases}")
    t2w = (cases // 2 + 3) // 4 * 4
    plan = StudyPlan(
        "benchmark",
        TEMPLATES["Seed protocol"],
        (SingleBlock(Sequence.T2W, t2w), SingleBlock(Sequence.ADC, cases - t2w)),
    )
    study_id = create_study(engine, plan)
    open_study(engine, study_id)
    reader_ids = [add_reader(engine, study_id, f"reader {i}").reader_id for i in range(readers)]
    now = utcnow()
    with transaction(engine) as session:
        questions = session.scalars(select(Question.id)).all()
        for reader_id in reader_ids:
            done = session.scalars(
                select(Assignment.case_id)
                .where(Assignment.reader_id == reader_id)
                .order_by(Assignment.position)
                .limit(cases // 2)
            ).all()
            session.execute(
                insert(Answer),
                [
                    {
                        "reader_id": reader_id,
                        "case_id": case_id,
                        "question_id": qid,
                        "value": "yes" if qid == questions[-1] else "real",
                        "first_saved_at": now,
                        "last_saved_at": now,
                        "time_on_case_s": 5.0,
                        "revision": 1,
                    }
                    for case_id in done
                    for qid in questions
                ],
            )
            session.execute(
                Assignment.__table__.update()
                .where(Assignment.reader_id == reader_id, Assignment.case_id.in_(done))
                .values(completed_at=now)
            )
        session.execute(
            insert(AnswerRevision).from_select(
                ["answer_id", "revision", "value", "saved_at", "time_on_case_s"],
                select(
                    Answer.id,
                    Answer.revision,
                    Answer.value,
                    Answer.last_saved_at,
                    Answer.time_on_case_s,
                ),
            )
        )
    return reader_ids


def percentile(values: list[float], q: float) -> float:
    return float(np.percentile(values, q))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--readers", type=int, default=100)
    parser.add_argument("--cases", type=int, default=5000)
    parser.add_argument("--submits", type=int, default=300)
    parser.add_argument("--database-url", default="")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as folder:
        url = args.database_url or f"sqlite:///{Path(folder) / 'bench.sqlite3'}"
        engine = make_engine(url)
        migrate(engine)
        store = AssetStore(Path(folder) / "assets")
        started = time.perf_counter()
        reader_ids = seed(engine, store, args.readers, args.cases)
        with transaction(engine) as session:
            answers = session.query(Answer).count()
            readers = session.query(Reader).count()
        print(
            f"seeded {args.cases} cases, {readers} readers, {answers} answers "
            f"in {time.perf_counter() - started:.1f} s ({engine.dialect.name})"
        )
        rng = random.Random(0)
        timings: dict[str, list[float]] = {"cold": [], "warm": []}
        for i in range(args.submits):
            mode = "cold" if i % 2 == 0 else "warm"
            if mode == "cold":
                clear_render_cache()
            reader = rng.choice(reader_ids)
            view = next_case(engine, reader)
            by_kind = {"real_or_synthetic": "synthetic", "lesion_present": "no"}
            values = {q.id: by_kind[q.kind.value] for q in view.questions}
            t0 = time.perf_counter()
            record_answer(engine, reader, view.public_id, values, 4.2)
            following = next_case(engine, reader)
            render_case(following, window=(0.5, 1.0), zoom=1.0, store=store)
            timings[mode].append((time.perf_counter() - t0) * 1000)
        engine.dispose()

    print("submit -> next case rendered (record_answer + next_case + render_case), ms:")
    for mode, values in timings.items():
        print(
            f"  {mode:4s} render cache: n={len(values)} median={statistics.median(values):.1f} "
            f"p95={percentile(values, 95):.1f} p99={percentile(values, 99):.1f} "
            f"max={max(values):.1f}"
        )


if __name__ == "__main__":
    main()
