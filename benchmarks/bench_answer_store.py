"""Answer store throughput: 30 readers saving answers at once, on SQLite and on PostgreSQL.

Each reader is a thread that submits every case of its reading through `record_answer` (four
questions per case: real or synthetic, lesion, realism, confidence), as fast as it can. The
throughput is answers saved per second of wall time; afterwards the database must hold exactly
one answer and one revision per (reader, case, question). Target: 500 answers/s on each backend.

    .venv/bin/python -m benchmarks.bench_answer_store [--readers 30] [--cases 40]
        [--postgres-url URL]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import sqlalchemy
from sqlalchemy import Engine, func, insert, select

from study.db import make_engine, migrate, transaction
from study.design import SingleBlock, StudyPlan, create_study, open_study
from study.imaging.types import Intensity, Origin
from study.imaging.types import Sequence as ImageSequence
from study.models import Answer, AnswerRevision, Asset, Assignment, Case, Question
from study.questions import TEMPLATES
from study.readers import add_reader
from study.reading import record_answer

TARGET_ANSWERS_PER_S = 500
POSTGRES_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
QUESTIONS = TEMPLATES["Seed protocol"] + TEMPLATES["Realism rating"]
VALUES = {
    "real_or_synthetic": "synthetic",
    "lesion_present": "no",
    "likert_realism": "4",
    "confidence": "3",
}


def seed(engine: Engine, readers: int, cases: int) -> tuple[list[int], dict[int, list[str]]]:
    """A study of `cases` T2W singles and its readers; returns them and each one's case order."""
    if cases % 4:
        raise SystemExit(f"--cases must be a multiple of 4 (origin x lesion), not {cases}")
    rows = [
        {
            "origin": Origin.SYNTHETIC if i % 2 else Origin.REAL,
            "sequence": ImageSequence.T2W,
            "lesion": (i // 2) % 2,
            "patient_id": f"P{i % 50}",
            "pair_key": "",
            "intensity": Intensity.CANONICAL,
            "source_sha256": f"{i:064x}",
            "source_path": f"/bench/{i}.png",
            "canonical_sha256": f"{i:064x}",
            "display_sha256": f"{i:064x}",
            "rows": 256,
            "cols": 256,
            "spacing_row_mm": 1.0,
            "spacing_col_mm": 1.0,
            "provenance": {},
        }
        for i in range(2 * cases)
    ]
    with transaction(engine) as session:
        session.execute(insert(Asset), rows)
    plan = StudyPlan("answer store", QUESTIONS, (SingleBlock(ImageSequence.T2W, cases),))
    study_id = create_study(engine, plan)
    open_study(engine, study_id)
    reader_ids = [add_reader(engine, study_id, f"reader {i}").reader_id for i in range(readers)]
    orders: dict[int, list[str]] = {}
    with transaction(engine) as session:
        for reader_id in reader_ids:
            orders[reader_id] = list(
                session.scalars(
                    select(Case.public_id)
                    .join(Assignment, Assignment.case_id == Case.id)
                    .where(Assignment.reader_id == reader_id)
                    .order_by(Assignment.position)
                )
            )
    return reader_ids, orders


def answer_values(engine: Engine) -> dict[int, str]:
    """One valid answer for every question of the study."""
    with transaction(engine) as session:
        return {
            qid: VALUES[kind] for qid, kind in session.execute(select(Question.id, Question.kind))
        }


def measure(engine: Engine, readers: int, cases: int) -> dict[str, float]:
    """Run the writers; returns throughput and latency figures after checking nothing is lost."""
    reader_ids, orders = seed(engine, readers, cases)
    values = answer_values(engine)
    latencies: list[list[float]] = [[] for _ in reader_ids]
    errors: list[BaseException] = []
    start = threading.Barrier(len(reader_ids) + 1)

    def write(index: int, reader_id: int) -> None:
        start.wait()
        try:
            for public_id in orders[reader_id]:
                t0 = time.perf_counter()
                record_answer(engine, reader_id, public_id, values, 5.0)
                latencies[index].append(time.perf_counter() - t0)
        except BaseException as error:  # reported after the run, with the counts
            errors.append(error)

    threads = [
        threading.Thread(target=write, args=(i, reader_id))
        for i, reader_id in enumerate(reader_ids)
    ]
    for thread in threads:
        thread.start()
    start.wait()
    t0 = time.perf_counter()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - t0
    if errors:
        raise RuntimeError(f"{len(errors)} writers failed; first: {errors[0]!r}") from errors[0]

    expected = readers * cases * len(values)
    with transaction(engine) as session:
        answers = session.scalar(select(func.count()).select_from(Answer))
        revisions = session.scalar(select(func.count()).select_from(AnswerRevision))
        keys = session.scalar(
            select(func.count()).select_from(
                select(Answer.reader_id, Answer.case_id, Answer.question_id).distinct().subquery()
            )
        )
    if not answers == revisions == keys == expected:
        raise RuntimeError(
            f"lost or doubled answers: expected {expected}, found {answers} answers, "
            f"{keys} distinct keys, {revisions} revisions"
        )
    flat = [latency for per_reader in latencies for latency in per_reader]
    return {
        "answers": expected,
        "seconds": elapsed,
        "answers_per_s": expected / elapsed,
        "submits_per_s": len(flat) / elapsed,
        "median_ms": statistics.median(flat) * 1000,
        "p95_ms": float(np.percentile(flat, 95)) * 1000,
    }


@contextmanager
def sqlite_engine() -> Iterator[Engine]:
    with tempfile.TemporaryDirectory() as folder:
        engine = make_engine(f"sqlite:///{Path(folder) / 'bench.sqlite3'}")
        migrate(engine)
        try:
            yield engine
        finally:
            engine.dispose()


@contextmanager
def postgres_engine(url: str, pool_size: int) -> Iterator[Engine]:
    """An engine on a fresh schema of `url`, dropped afterwards."""
    schema = f"bench_{uuid.uuid4().hex[:12]}"
    admin = sqlalchemy.create_engine(url)
    with admin.begin() as connection:
        connection.exec_driver_sql(f"CREATE SCHEMA {schema}")
    engine = make_engine(
        url, connect_args={"options": f"-csearch_path={schema}"}, pool_size=pool_size
    )
    try:
        migrate(engine)
        yield engine
    finally:
        engine.dispose()
        with admin.begin() as connection:
            connection.exec_driver_sql(f"DROP SCHEMA {schema} CASCADE")
        admin.dispose()


def report(backend: str, figures: dict[str, float]) -> None:
    verdict = "ok" if figures["answers_per_s"] >= TARGET_ANSWERS_PER_S else "BELOW TARGET"
    print(
        f"  {backend:10s} {figures['answers']:.0f} answers in {figures['seconds']:.2f} s: "
        f"{figures['answers_per_s']:.0f} answers/s ({figures['submits_per_s']:.0f} submits/s), "
        f"submit latency median {figures['median_ms']:.1f} ms, p95 {figures['p95_ms']:.1f} ms "
        f"[target {TARGET_ANSWERS_PER_S} answers/s: {verdict}]; none lost or doubled"
    )


def main(argv: Sequence[str] | None = None) -> None:
    """Measure both backends; `argv` defaults to none (as `python -m benchmarks` calls it)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--readers", type=int, default=30)
    parser.add_argument("--cases", type=int, default=40)
    parser.add_argument("--postgres-url", default=POSTGRES_URL)
    args = parser.parse_args([] if argv is None else argv)
    print(
        f"answer store: {args.readers} concurrent readers x {args.cases} cases x "
        f"{len(QUESTIONS)} questions (record_answer, one transaction per case)"
    )
    with sqlite_engine() as engine:
        report("sqlite", measure(engine, args.readers, args.cases))
    try:
        with postgres_engine(args.postgres_url, args.readers) as engine:
            report("postgresql", measure(engine, args.readers, args.cases))
    except sqlalchemy.exc.OperationalError as error:
        print(f"  postgresql not measured: cannot connect to {args.postgres_url} ({error.orig})")


if __name__ == "__main__":
    main(sys.argv[1:])
