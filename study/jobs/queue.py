"""Submitting, reading and cancelling jobs: what the pages do with them.

A submitted job is a queued row and a task of the task engine (`study.jobs.engine`). Cancelling
is a change of the row: a queued job's task then does nothing, and a running job's runner,
wherever it runs, sees the change and stops its generator.
"""

from __future__ import annotations

from datetime import UTC, datetime
from socket import gethostname
from typing import Any

from sqlalchemy import Engine, select

from study.db import transaction
from study.jobs.engine import enqueue
from study.jobs.processes import LOCAL, is_generator, terminate
from study.jobs.recovery import fail_silent_jobs
from study.jobs.states import JobError, JobKind, JobView, update_if, view
from study.jobs.workdirs import remove_work_dir
from study.models import Job, JobState


def submit(engine: Engine, kind: JobKind, params: dict[str, Any]) -> int:
    """Add a queued job and hand it to the task engine; its id.

    When the queue cannot take it (a broker that cannot be reached), the job is failed with
    that reason, and the error raised.
    """
    with transaction(engine) as session:
        job = Job(kind=kind.value, params=params)
        session.add(job)
        session.flush()
        job_id = job.id
    try:
        enqueue(engine, job_id)
    except JobError as error:
        with transaction(engine) as session:
            update_if(
                session,
                job_id,
                JobState.QUEUED,
                state=JobState.FAILED,
                finished_at=datetime.now(UTC),
                error=str(error),
            )
        remove_work_dir(kind, params, succeeded=False)
        raise
    return job_id


def get_job(engine: Engine, job_id: int) -> JobView:
    fail_silent_jobs(engine)
    with transaction(engine) as session:
        job = session.get(Job, job_id)
        if job is None:
            raise JobError(f"there is no job {job_id}")
        return view(job)


def list_jobs(
    engine: Engine, kind: JobKind | None = None, *, limit: int | None = 20
) -> list[JobView]:
    """The newest jobs first (all of them with `limit` None); jobs whose runner went silent
    are failed first."""
    fail_silent_jobs(engine)
    query = select(Job).order_by(Job.id.desc()).limit(limit)
    if kind is not None:
        query = query.where(Job.kind == kind.value)
    with transaction(engine) as session:
        return [view(job) for job in session.scalars(query)]


def cancel_job(engine: Engine, job_id: int) -> None:
    """Stop a queued or running job: its generator ends and nothing is imported.

    A running job's generator is stopped here when this process runs it, or another process
    of this host does; in any case the process that runs it, on any machine, sees the job
    cancelled within a few seconds and stops it.
    """
    with transaction(engine) as session:

        def stop(state: JobState) -> bool:
            return update_if(
                session,
                job_id,
                state,
                state=JobState.CANCELLED,
                finished_at=datetime.now(UTC),
                error="cancelled by the coordinator",
            )

        was_queued = stop(JobState.QUEUED)
        was_running = not was_queued and stop(JobState.RUNNING)
        job = session.get(Job, job_id)
        if job is None:
            raise JobError(f"there is no job {job_id}")
        if not (was_queued or was_running):
            raise JobError(f"job {job_id} is {job.state.value}; only queued or running jobs stop")
        kind, params, pid, host = job.kind, dict(job.params), job.pid, job.runner_host
    if was_queued:
        remove_work_dir(kind, params, succeeded=False)
    elif (
        not LOCAL.stop_generator(job_id)
        and host == gethostname()
        and pid is not None
        and is_generator(pid)
    ):
        terminate(pid)
