"""What an app process does once when it starts, before anyone signs in.

Migrate the database, fail the jobs whose runner died (this host's dead processes, silent
workers), make the coordinator account (a generated password is logged once), seed the demo
on an empty database when VTT_SEED_DEMO is 1, and start the threads that run jobs from the
app's own queue (none with VTT_JOB_BROKER: workers run them). `server.py` runs it while the
server starts, so the first visitor finds the demo ready; the app's cached engine runs it too,
which finds the work done.
"""

from __future__ import annotations

import logging

from sqlalchemy import Engine

from study import settings
from study.auth import ensure_coordinator
from study.db import open_database
from study.demo import DemoError, seed_demo_if_empty
from study.jobs import recover_jobs, start_consumer

log = logging.getLogger("vtt")


def prepare(url: str | None = None) -> Engine:
    """The migrated engine of the configured database, with jobs recovered, the coordinator
    account made, (on an empty database, when VTT_SEED_DEMO is 1) the demo seeded, and this
    process's job threads started (without VTT_JOB_BROKER)."""
    engine = open_database(url)
    failed = recover_jobs(engine)
    if failed:
        log.warning("jobs %s had lost their runner: marked failed", failed)
    if ensure_coordinator(engine):
        log.info("a coordinator password was generated (see above)")
    if settings.get("VTT_SEED_DEMO") == "1":
        try:
            demo = seed_demo_if_empty(engine)
        except DemoError as error:
            log.warning("the demo study was not seeded: %s", error)
        else:
            if demo is not None:
                log.info("seeded the demo study (id %s)", demo.study_id)
    start_consumer(engine)
    return engine
