"""Jobs whose runner died: failed, so that nobody waits for them (a training run can then be
resumed from its last save).

Two ways to tell. A process that starts (an app process or a worker) fails the running jobs of
its own host's dead processes at once, and stops their generators (`recover_jobs`). A runner
on another machine cannot be looked for; it writes a heartbeat every few seconds instead, and a
running job whose heartbeat is older than HEARTBEAT_TIMEOUT_S is failed wherever jobs are
looked at (`fail_silent_jobs`, from start-up and from listing jobs). A worker that is stopped
(SIGTERM) fails the jobs it still runs itself (`stop_local_jobs`).
"""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

from sqlalchemy import Engine, func, select, update

from study.db import transaction
from study.jobs import states
from study.jobs.processes import LOCAL, Runner, is_generator, process_start, terminate, this_runner
from study.jobs.states import end
from study.jobs.workdirs import remove_work_dir
from study.models import Job, JobState

RUNNER_STOPPED = (
    "the app or worker process that ran this job stopped; start the job again (a training run "
    "can be resumed)"
)
RUNNER_SILENT = (
    "the worker that ran this job stopped: it has sent no heartbeat for a while; start the job "
    "again (a training run can be resumed)"
)


def _orphaned(job: Job, runner: Runner, watched: set[int]) -> bool:
    """Whether a running job has no runner left: its process (on this host) is gone."""
    if job.runner_host is None:
        return True  # started before runners were recorded (schema 0001)
    if job.runner_host != runner.host:
        return False  # another host's: only its heartbeat can tell
    if (job.runner_pid, job.runner_start) == (runner.pid, runner.start):
        return job.id not in watched
    return job.runner_start is None or process_start(job.runner_pid or 0) != job.runner_start


def recover_jobs(engine: Engine) -> list[int]:
    """At the start of an app process or a worker: fail the jobs left "running" by a dead
    process of this host, and those whose runner has gone silent. Returns their ids.

    Dead processes' generators still running here are stopped, and the failed jobs' work
    folders removed (a training run keeps its own while it can be resumed). Jobs of processes
    that still run, here or (heartbeat fresh) elsewhere, are left alone.
    """
    runner = this_runner()
    # Under the lock, so that no job this process claims meanwhile looks orphaned.
    with LOCAL.lock, transaction(engine) as session:
        running = session.scalars(select(Job).where(Job.state == JobState.RUNNING))
        orphans = [job for job in running if _orphaned(job, runner, LOCAL.running())]
        for job in orphans:
            if job.pid is not None and is_generator(job.pid):
                terminate(job.pid)
            job.state, job.finished_at = JobState.FAILED, datetime.now(UTC)
            job.error = RUNNER_STOPPED
        ended = [(job.id, job.kind, dict(job.params)) for job in orphans]
    for _, kind, params in ended:
        remove_work_dir(kind, params, succeeded=False)
    return [job_id for job_id, _, _ in ended] + fail_silent_jobs(engine)


def fail_silent_jobs(engine: Engine) -> list[int]:
    """Fail the running jobs whose heartbeat is older than HEARTBEAT_TIMEOUT_S; their ids."""
    now = datetime.now(UTC)
    cutoff = now - timedelta(seconds=states.HEARTBEAT_TIMEOUT_S)
    # Jobs claimed before heartbeats were written (schema 0003) count from their start.
    silent = (
        Job.state == JobState.RUNNING,
        func.coalesce(Job.heartbeat_at, Job.started_at) < cutoff,
    )
    with transaction(engine) as session:
        candidates = session.scalars(select(Job.id).where(*silent)).all()
    if not candidates:
        return []
    failed = []
    with transaction(engine) as session:
        for job_id in candidates:
            # Again conditional: the runner may have written a heartbeat since.
            changed = session.execute(
                update(Job)
                .where(Job.id == job_id, *silent)
                .values(state=JobState.FAILED, finished_at=now, error=RUNNER_SILENT)
                .execution_options(synchronize_session=False)
            )
            if changed.rowcount == 1:
                failed.append(job_id)
        ended = session.execute(select(Job.kind, Job.params).where(Job.id.in_(failed))).all()
    for kind, params in ended:
        remove_work_dir(kind, dict(params), succeeded=False)
    return failed


def stop_local_jobs(engine: Engine, *, wait_s: float = 30.0) -> list[int]:
    """Fail the jobs this process runs and stop their generators (a worker stopped by
    SIGTERM); wait at most `wait_s` for their threads to clean up. Returns the ids failed."""
    with LOCAL.lock:
        running = LOCAL.running()
    failed = []
    for job_id in sorted(running):
        if end(engine, job_id, JobState.FAILED, error=RUNNER_STOPPED):
            failed.append(job_id)
        LOCAL.stop_generator(job_id)
    deadline = time.monotonic() + wait_s
    while time.monotonic() < deadline:
        with LOCAL.lock:
            if not LOCAL.running():
                break
        time.sleep(0.1)
    return failed
