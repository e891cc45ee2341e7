"""The task engine that runs jobs: Huey.

A job is a row of the database (`study.jobs.states`) and a Huey task that runs it by id
(`study.jobs.runner.run_job`). VTT_JOB_BROKER says where the tasks wait:

- empty (the default): a SQLite queue in VTT_DATA_DIR (Huey's SqliteHuey), consumed by
  VTT_MAX_JOBS threads of the app process itself (`start_consumer`, at start-up), so that one
  machine needs no other server;
- `redis://host:port/db`: a Redis queue (RedisHuey). The app only queues; workers started with
  `python -m study worker` (`serve`) on machines that share the database and VTT_DATA_DIR run
  the jobs, each on its own device.

Either way a task carries nothing but the job's id: what to run, its progress and its result
live in the job's row, so any consumer can run any job, and a duplicate or late task finds its
job no longer queued and does nothing.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from huey import Huey, RedisHuey, SqliteHuey
from huey.api import TaskWrapper
from huey.consumer import Consumer
from huey.registry import Message
from huey.serializer import Serializer
from sqlalchemy import Engine

from study import settings
from study.jobs.runner import run_job
from study.jobs.states import JobError

QUEUE_NAME = "vtt_jobs"
QUEUE_FILE = "job-queue.sqlite3"
BROKER_SCHEMES = ("redis://", "rediss://", "unix://")
# Longest wait of an idle consumer thread between two looks at the SQLite queue (seconds):
# how long a job submitted to an idle app may wait before it starts.
POLL_MAX_S = 1.0
# How long stopping the app's own consumer waits for the jobs its threads run (seconds).
STOP_WAIT_S = 60.0


def broker() -> str:
    """VTT_JOB_BROKER, checked; empty for the embedded SQLite queue."""
    url = settings.get("VTT_JOB_BROKER").strip()
    if url and not url.startswith(BROKER_SCHEMES):
        raise JobError(
            f"VTT_JOB_BROKER is {url!r}: use redis://host:port/db, or leave it empty for the "
            "app's own queue"
        )
    return url


def remote_workers() -> bool:
    """Whether workers (`python -m study worker`) run the jobs, rather than this app process."""
    return bool(broker())


def require_broker() -> None:
    """Refuse to run a worker without VTT_JOB_BROKER (the app runs its own queue then)."""
    if not remote_workers():
        raise JobError(
            "VTT_JOB_BROKER is empty: the app runs its jobs itself. Set it to "
            "redis://host:port/db for the app and its workers alike"
        )


def max_jobs() -> int:
    value = settings.get("VTT_MAX_JOBS")
    if not value.isdigit() or int(value) < 1:
        raise JobError(f"VTT_MAX_JOBS is {value!r}; it must be a whole number of at least 1")
    return int(value)


@dataclass(frozen=True)
class JobQueue:
    """The configured queue: Huey, and its task that runs a job against one database."""

    huey: Huey
    run: TaskWrapper


def _location() -> str:
    """The broker's URL, or the SQLite queue's file."""
    return broker() or str(settings.data_dir() / QUEUE_FILE)


class _JsonSerializer(Serializer):
    """Huey's messages as JSON, not pickle: a message names the task and a job id, and whoever
    can write to the broker must not be able to run code in the workers."""

    def _serialize(self, data: Message) -> bytes:
        return json.dumps(data._asdict()).encode()

    def _deserialize(self, data: bytes) -> Message:
        fields = json.loads(data)
        return Message(**fields | {"args": tuple(fields["args"])})


def _make_huey(location: str) -> Huey:
    options = {"results": False, "serializer": _JsonSerializer()}
    if location.startswith(BROKER_SCHEMES):
        return RedisHuey(QUEUE_NAME, url=location, **options)
    Path(location).parent.mkdir(parents=True, exist_ok=True)
    # Strict FIFO: jobs start in the order they were submitted.
    return SqliteHuey(QUEUE_NAME, filename=location, strict_fifo=True, **options)


def _runs_against(database: Engine) -> Callable[[int], None]:
    # A function of this module: Huey names the task after its module and the name below, the
    # same in the app that queues it and in the worker that runs it.
    def run(job_id: int) -> None:
        run_job(database, job_id)

    return run


_queues_lock = threading.Lock()
# One Huey per queue and database engine in a process, made on first use.
_queues: dict[tuple[str, Engine], JobQueue] = {}


def job_queue(database: Engine) -> JobQueue:
    """The configured queue, whose task runs jobs against `database`."""
    location = _location()
    with _queues_lock:
        queue = _queues.get((location, database))
        if queue is None:
            huey = _make_huey(location)
            task = huey.task(name="run_job")(_runs_against(database))
            queue = _queues[(location, database)] = JobQueue(huey, task)
        return queue


def enqueue(database: Engine, job_id: int) -> None:
    """Hand job `job_id` (queued in `database`) to the task engine."""
    try:
        job_queue(database).run(job_id)
    except Exception as error:
        # Huey and redis-py raise their own errors (refused connections, timeouts, a full disk).
        raise JobError(f"the job could not be queued at {_location()}: {error}") from error


class _EmbeddedConsumer(Consumer):
    """Huey's consumer, its threads inside the app process."""

    def _set_signal_handlers(self) -> None:
        # The app's server owns the process's signals, and only the main thread may set
        # handlers: the consumer's threads run jobs until the process ends.
        return


@dataclass
class _Embedded:
    lock: threading.Lock
    key: tuple[str, str] | None = None
    consumer: Consumer | None = None


# One per process: the consumer of the embedded queue that this process runs, if any.
_embedded = _Embedded(threading.Lock())


def start_consumer(database: Engine) -> bool:
    """Run the embedded queue's jobs in VTT_MAX_JOBS threads of this process, against
    `database`; True when it runs (or ran already).

    Once per process: a second call for the same queue and database changes nothing, one for
    another (tests change VTT_DATA_DIR) stops the consumer before. With VTT_JOB_BROKER set
    nothing starts, and it returns False: workers run the jobs.
    """
    if remote_workers():
        return False
    key = (_location(), database.url.render_as_string())
    with _embedded.lock:
        if _embedded.key == key:
            return True
        if _embedded.consumer is not None:
            _embedded.consumer.stop()
        consumer = _EmbeddedConsumer(
            job_queue(database).huey,
            workers=max_jobs(),
            worker_type="thread",
            periodic=False,
            max_delay=POLL_MAX_S,
            check_worker_health=False,
            shutdown_timeout=STOP_WAIT_S,
        )
        consumer.start()
        _embedded.key, _embedded.consumer = key, consumer
    return True


def stop_consumer() -> None:
    """Stop this process's embedded consumer, waiting (at most STOP_WAIT_S) for the jobs its
    threads run to end."""
    with _embedded.lock:
        consumer = _embedded.consumer
        _embedded.key, _embedded.consumer = None, None
    if consumer is not None:
        consumer.stop(graceful=True)


def serve(database: Engine, workers: int) -> None:
    """Run the broker's jobs in `workers` threads of this process until a signal stops it:
    SIGINT waits for the running jobs to end, SIGTERM returns at once (the caller stops them).
    The worker command's loop; call it from the main thread (it sets signal handlers)."""
    require_broker()
    consumer = job_queue(database).huey.create_consumer(
        workers=workers, worker_type="thread", periodic=False
    )
    consumer.run()
