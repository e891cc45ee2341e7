"""A job's row: its kinds and states, what a page reads of it, and the compare-and-set updates
that move it from state to state.

The row is the truth every process shares: the app's pages read it, and the process that runs
the job (an app process, or a worker on another machine) writes it. Every state change is
conditional on the state it leaves, so that processes on several machines never both claim,
end or cancel one job.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import Connection, Engine, update
from sqlalchemy.orm import Session

from study.db import transaction
from study.imaging.errors import VTTError
from study.models import Job, JobState

# The runner of a job writes its heartbeat this often (seconds); a running job whose heartbeat
# is older than the timeout has lost its runner (a worker on another machine died unseen).
HEARTBEAT_S = 3.0
HEARTBEAT_TIMEOUT_S = 60.0


class JobError(VTTError):
    """A job that cannot be submitted, resumed or cancelled as asked."""


class JobKind(StrEnum):
    GENERATE = "generate"
    TRAIN = "train"
    # The machine realism checks of a study's images (`synth evaluate`, `synth augment`).
    EVALUATE = "evaluate"
    AUGMENT = "augment"


# Kinds that run the generator's network, on the device the runner's machine gives them.
GENERATOR_KINDS = (JobKind.GENERATE, JobKind.TRAIN)


ACTIVE = (JobState.QUEUED, JobState.RUNNING)


@dataclass(frozen=True)
class JobView:
    id: int
    kind: str
    state: JobState
    progress: float
    params: dict[str, Any]
    result: dict[str, Any]
    error: str
    log_tail: str
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    runner_host: str | None

    @property
    def active(self) -> bool:
        return self.state in ACTIVE

    def seconds_left(self, now: datetime | None = None) -> float | None:
        """Time left at the rate of progress so far; None until there is a rate."""
        if self.state != JobState.RUNNING or self.started_at is None or self.progress < 0.01:
            return None
        started = self.started_at if self.started_at.tzinfo else self.started_at.replace(tzinfo=UTC)
        elapsed = ((now or datetime.now(UTC)) - started).total_seconds()
        return max(elapsed * (1.0 - self.progress) / self.progress, 0.0)


def view(job: Job) -> JobView:
    return JobView(
        id=job.id,
        kind=job.kind,
        state=job.state,
        progress=job.progress,
        params=dict(job.params),
        result=dict(job.result),
        error=job.error,
        log_tail=job.log_tail,
        created_at=job.created_at,
        started_at=job.started_at,
        finished_at=job.finished_at,
        runner_host=job.runner_host,
    )


def update_if(
    executor: Session | Connection, job_id: int, expected: JobState, /, **values: Any
) -> bool:
    """Update a job only while it is in the `expected` state (compare and set, safe between
    processes and machines); True when it was."""
    changed = executor.execute(
        update(Job)
        .where(Job.id == job_id, Job.state == expected)
        .values(**values)
        .execution_options(synchronize_session=False)
    )
    return changed.rowcount == 1


def update_running(engine: Engine, job_id: int, **values: Any) -> bool:
    """Update a job only while it runs (a cancelled job keeps its state); True when it did."""
    with transaction(engine) as session:
        return update_if(session, job_id, JobState.RUNNING, **values)


def end(engine: Engine, job_id: int, state: JobState, **values: Any) -> bool:
    """End a running job in `state`; False when it was not running any more."""
    return update_running(engine, job_id, state=state, finished_at=datetime.now(UTC), **values)


def job_state(engine: Engine, job_id: int) -> JobState:
    with transaction(engine) as session:
        return session.get_one(Job, job_id).state
