"""`python -m study worker`: run the queued generate and train jobs on this machine."""

from __future__ import annotations

import argparse
import logging


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "worker",
        help="run queued generate and train jobs (with VTT_JOB_BROKER) on this machine",
        description="Take generate and train jobs from the queue named by VTT_JOB_BROKER "
        "(redis://host:port/db) and run them here, on this machine's device (VTT_DEVICE), "
        "importing their results into the shared database (VTT_DATABASE_URL) and asset folder "
        "(VTT_DATA_DIR). Ctrl-C (SIGINT) waits for the running jobs to end; SIGTERM stops them "
        "(they are marked failed; a training run can be resumed).",
    )
    parser.add_argument(
        "--workers",
        type=int,
        default=None,
        metavar="N",
        help="jobs to run at once (default: VTT_MAX_JOBS)",
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    # Imported here: `--help` should not pay for the database and imaging libraries.
    from study.db import open_database
    from study.jobs import (
        JobError,
        max_jobs,
        recover_jobs,
        require_broker,
        serve,
        stop_local_jobs,
    )

    require_broker()
    workers = max_jobs() if args.workers is None else args.workers
    if workers < 1:
        raise JobError(f"--workers is {workers}; it must be at least 1")
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    log = logging.getLogger("vtt.worker")
    engine = open_database()
    failed = recover_jobs(engine)
    if failed:
        log.warning("jobs %s had lost their runner: marked failed", failed)
    log.info("worker with %d thread(s) on the queue at VTT_JOB_BROKER", workers)
    try:
        serve(engine, workers)
    finally:
        stopped = stop_local_jobs(engine)
        if stopped:
            log.warning("jobs %s were stopped with the worker: marked failed", stopped)
        engine.dispose()
    return 0
