"""Run one job, here: claim it, run its generator requests as subprocesses, follow their
progress, and for a generate job import the images and succeed in one transaction.

The task engine (`study.jobs.engine`) calls `run_job` in a thread of the process that consumes
the queue: an app process, or a worker on another machine. Each request runs as
`python -m synth sample|train|evaluate|augment ... --progress jsonl` in its own process group,
in the job's work folder; its progress lines become `Job.progress`, its last lines
`Job.log_tail`, and the `--json` object that an evaluate or augment job prints on stdout its
`Job.result`. While the job runs, its heartbeat is written every few seconds; once the row says
the job is no longer running (cancelled from any process, or failed for a silent runner), its
generator is stopped. A cancelled job imports nothing.
"""

from __future__ import annotations

import csv
import json
import logging
import os
import subprocess
import threading
from collections import deque
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, select, update
from sqlalchemy.exc import SQLAlchemyError

from study.db import transaction
from study.imaging.errors import VTTError
from study.imaging.manifest import write_manifest
from study.importer import import_manifest
from study.jobs.checkpoints import job_device
from study.jobs.processes import LOCAL, last_line, terminate, this_runner
from study.jobs.states import (
    GENERATOR_KINDS,
    HEARTBEAT_S,
    JobError,
    JobKind,
    end,
    job_state,
    update_if,
    update_running,
)
from study.jobs.workdirs import remove_work_dir
from study.models import Job, JobState
from synth.contract import (
    AugmentRequest,
    EvaluateRequest,
    Request,
    SampleRequest,
    TrainRequest,
    parse_progress_line,
    read_checkpoint_info,
)

log = logging.getLogger("vtt.jobs")

LOG_LINES = 50
# The request each machine check runs, and the file of its work folder its result goes to.
MACHINE_REQUESTS: dict[str, type[Request]] = {
    JobKind.EVALUATE: EvaluateRequest,
    JobKind.AUGMENT: AugmentRequest,
}
RESULT_FILE = "result.json"
# Progress is written to the database at most this often (seconds), and always at the end.
PROGRESS_INTERVAL_S = 1.0


class _Cancelled(Exception):
    """The job was cancelled while its images were imported: the import is rolled back."""


def run_job(engine: Engine, job_id: int) -> None:
    """Run job `job_id` to its end in this process; nothing when it is not queued any more
    (cancelled while it waited, or taken by another worker)."""
    if not _claim(engine, job_id):
        return
    tail: deque[str] = deque(maxlen=LOG_LINES)
    kind, params, succeeded = "", {}, False
    try:
        with _heartbeat(engine, job_id):
            with transaction(engine) as session:
                job = session.get_one(Job, job_id)
                kind, params = job.kind, dict(job.params)
                if kind in GENERATOR_KINDS:
                    params["device"] = job_device()
                    job.params = params
                host = job.runner_host
            tail.append(f"device: {params.get('device', 'cpu')} on {host}")
            succeeded = _run(engine, job_id, kind, params, tail)
    except _Cancelled:
        return
    except Exception as error:
        log.exception("job %s failed", job_id)
        end(engine, job_id, JobState.FAILED, error=str(error) or type(error).__name__)
    finally:
        LOCAL.ended(job_id)
        if params:
            remove_work_dir(kind, params, succeeded=succeeded)


def _claim(engine: Engine, job_id: int) -> bool:
    """Mark a queued job running in this process; False when it is not queued."""
    runner = this_runner()
    now = datetime.now(UTC)
    with LOCAL.lock:
        with transaction(engine) as session:
            claimed = update_if(
                session,
                job_id,
                JobState.QUEUED,
                state=JobState.RUNNING,
                started_at=now,
                heartbeat_at=now,
                runner_host=runner.host,
                runner_pid=runner.pid,
                runner_start=runner.start,
            )
        if claimed:
            LOCAL.claimed(job_id)
    return claimed


@contextmanager
def _heartbeat(engine: Engine, job_id: int) -> Iterator[None]:
    """Write the job's heartbeat every HEARTBEAT_S while the body runs, also while its
    generator prints nothing; once the job is no longer running, stop its generator."""
    stop = threading.Event()

    def beat() -> None:
        while not stop.wait(HEARTBEAT_S):
            try:
                running = update_running(engine, job_id, heartbeat_at=datetime.now(UTC))
            except SQLAlchemyError as error:
                # E.g. SQLite busy with a long import of images: the next beat tries again.
                log.warning("job %s: heartbeat not written: %s", job_id, error)
                continue
            if not running:
                LOCAL.stop_generator(job_id)
                return

    thread = threading.Thread(target=beat, name=f"vtt-job-{job_id}-heartbeat", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()


def _run(engine: Engine, job_id: int, kind: str, params: dict[str, Any], tail: deque[str]) -> bool:
    """The job's generator requests, then its import (generate) or result (the others);
    whether it succeeded."""
    done_share = 0.0
    for request, share in _commands(kind, params):
        if job_state(engine, job_id) != JobState.RUNNING:
            return False
        code = _run_command(engine, job_id, request, params, tail, (done_share, share))
        if code != 0:
            end(engine, job_id, JobState.FAILED, error=_failure(request, tail, code))
            return False
        done_share += share
    if kind in MACHINE_REQUESTS:
        output = Path(params["folder"]) / RESULT_FILE
        try:
            result = json.loads(output.read_text())
        except (OSError, ValueError) as error:
            raise JobError(f"the check printed no result: {error}") from error
        return end(engine, job_id, JobState.SUCCEEDED, progress=1.0, result=result)
    if kind == JobKind.GENERATE:
        tail.append(f"importing {params['images']} images")
        update_running(engine, job_id, log_tail="\n".join(tail))
        _import_outputs(engine, job_id, params)
        return True
    info = read_checkpoint_info(Path(params["checkpoint"]))
    result = {"checkpoint": str(info.path), "steps": info.steps}
    return end(engine, job_id, JobState.SUCCEEDED, progress=1.0, result=result)


def _commands(kind: str, params: dict[str, Any]) -> list[tuple[Request, float]]:
    """The generator requests of a job, on its device, each with its share of its progress."""
    if kind in MACHINE_REQUESTS:
        return [(MACHINE_REQUESTS[kind].from_json(params["request"]), 1.0)]
    device = params["device"]
    if kind == JobKind.TRAIN:
        return [(replace(TrainRequest.from_json(params["request"]), device=device), 1.0)]
    total = params["images"]
    return [
        (replace(SampleRequest.from_json(run["request"]), device=device), run["images"] / total)
        for run in params["runs"]
    ]


def _failure(request: Request, tail: deque[str], code: int) -> str:
    what = "the check" if isinstance(request, tuple(MACHINE_REQUESTS.values())) else "the generator"
    return f"{what} stopped with exit status {code}: {last_line(chr(10).join(tail))}"


def _run_command(
    engine: Engine,
    job_id: int,
    request: Request,
    params: dict[str, Any],
    tail: deque[str],
    shares: tuple[float, float],
) -> int:
    """Run one generator request, recording its progress; its exit status.

    `shares`: the job's progress before this command, and this command's part of it. The
    process is stopped when the job is no longer running (cancelled, maybe on another machine).
    """
    done_share, share = shares
    env = os.environ | {"PYTHONUNBUFFERED": "1"}
    machine_check = isinstance(request, tuple(MACHINE_REQUESTS.values()))
    with ExitStack() as stack:
        # A machine check prints its result on stdout: to RESULT_FILE, apart from the progress
        # and messages (stderr) that are followed here.
        result = (
            stack.enter_context((Path(params["folder"]) / RESULT_FILE).open("w"))
            if machine_check
            else None
        )
        process = subprocess.Popen(
            request.command_line(),
            stdout=result or subprocess.PIPE,
            stderr=subprocess.PIPE if result else subprocess.STDOUT,
            text=True,
            start_new_session=True,
            cwd=params["folder"],
            env=env,
        )
        LOCAL.started(job_id, process)
        if not update_running(engine, job_id, pid=process.pid):
            terminate(process.pid)
        lines = process.stderr if result else process.stdout
        assert lines is not None
        last_write, progress = 0.0, done_share
        for line in lines:
            tail.append(line.rstrip())
            event = parse_progress_line(line)
            if event is not None and event.get("total"):
                progress = done_share + share * min(event["done"] / event["total"], 1.0)
            now = datetime.now(UTC)
            if now.timestamp() - last_write >= PROGRESS_INTERVAL_S:
                written = update_running(
                    engine, job_id, progress=progress, log_tail="\n".join(tail), heartbeat_at=now
                )
                if not written:
                    terminate(process.pid)
                last_write = now.timestamp()
        code = process.wait()
    LOCAL.reaped(job_id)
    update_running(engine, job_id, progress=progress, log_tail="\n".join(tail))
    return code


def _merge_parts(job_id: int, params: dict[str, Any]) -> Path:
    """One manifest of every part's images, with pair keys unique to the job and each paired
    image's condition_sha256 naming the imported T2W asset it was made from."""
    folder = Path(params["folder"])
    conditions: dict[str, str] = params.get("conditions", {})
    rows: list[dict[str, str]] = []
    for run in params["runs"]:
        part = SampleRequest.from_json(run["request"]).out
        with (folder / part / "manifest.csv").open(newline="") as stream:
            for row in csv.DictReader(stream):
                row["path"] = f"{part.as_posix()}/{row['path']}"
                if row.get("condition_sha256"):
                    row["condition_sha256"] = conditions.get(
                        row["condition_sha256"], row["condition_sha256"]
                    )
                else:
                    # Unpaired images get pair keys from their seeds; make them unique per job.
                    row["pair_key"] = f"job{job_id}-{row['pair_key']}"
                rows.append(row)
    return write_manifest(folder / "manifest.csv", rows)


def _import_outputs(engine: Engine, job_id: int, params: dict[str, Any]) -> None:
    """Import the job's images and mark it succeeded in one transaction, or do neither.

    The import stops when the job is cancelled meanwhile (checked as each image is loaded and
    stored); the job is marked succeeded, conditionally on its still running, before the
    import commits, so a cancel either comes first and nothing is imported, or comes after and
    finds the job succeeded. Raises _Cancelled when the job was cancelled.
    """
    manifest = _merge_parts(job_id, params)
    with engine.connect() as connection, connection.begin():

        def succeed() -> None:
            if not update_if(
                connection,
                job_id,
                JobState.RUNNING,
                state=JobState.SUCCEEDED,
                progress=1.0,
                finished_at=datetime.now(UTC),
            ):
                raise _Cancelled

        def check(stage: str, done: int, total: int) -> None:
            if connection.scalar(select(Job.state).where(Job.id == job_id)) != JobState.RUNNING:
                raise _Cancelled
            if stage == "store" and done == total:
                succeed()

        try:
            # Passed the connection, the importer's transaction joins this one.
            imported = import_manifest(connection, manifest, allow_absolute=False, progress=check)
        except VTTError as error:
            raise JobError(f"the images were made but nothing was imported: {error}") from error
        if imported.added == 0:
            succeed()
        result = {"added": imported.added, "unchanged": imported.unchanged}
        connection.execute(update(Job).where(Job.id == job_id).values(result=result))
