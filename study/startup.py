"""What an app process does once when it starts, before anyone signs in.

Migrate the database, fail the jobs this host's dead app processes left running, make the
coordinator account (a generated password is logged once), and seed the demo on an empty
database when VTT_SEED_DEMO is 1. `server.py` runs it while the server starts, so the first
visitor finds the demo ready; the app's cached engine runs it too, which finds the work done.
"""

from __future__ import annotations

import logging

from sqlalchemy import Engine

from study import settings
from study.auth import ensure_coordinator
from study.db import open_database
from study.demo import DemoError, seed_demo_if_empty
from study.jobs import recover_jobs

log = logging.getLogger("vtt")


def prepare(url: str | None = None) -> Engine:
    """The migrated engine of the configured database, with jobs recovered, the coordinator
    account made and (on an empty database, when VTT_SEED_DEMO is 1) the demo seeded."""
    engine = open_database(url)
    failed = recover_jobs(engine)
    if failed:
        log.warning("jobs %s were running when the app stopped", failed)
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
    return engine
