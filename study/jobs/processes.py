"""Processes: the one that runs jobs (an app process or a worker), the generator subprocesses
(`python -m synth ...`) it starts, and what it keeps of both.

A running job records its runner (host name, pid and start time), so that a restarted process
can tell the jobs of its own host's dead processes from those of processes that still run.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import threading
from dataclasses import dataclass
from pathlib import Path

from study.jobs.states import JobError
from synth.contract import Request


@dataclass(frozen=True)
class Runner:
    """A process that runs jobs: host name, pid, and start time (clock ticks after boot)."""

    host: str
    pid: int
    start: int | None


def process_start(pid: int) -> int | None:
    """When process `pid` started (/proc/PID/stat, clock ticks after boot); None when gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # Field 22; the command name (field 2) may hold spaces and parentheses.
    return int(stat.rsplit(")", 1)[1].split()[19])


def this_runner() -> Runner:
    """This process, as recorded on the jobs it runs."""
    pid = os.getpid()
    return Runner(socket.gethostname(), pid, process_start(pid))


def is_generator(pid: int) -> bool:
    """Whether `pid` is alive and runs the generator (never signal a recycled pid)."""
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return False
    return b"synth" in cmdline


def terminate(pid: int) -> None:
    """Stop a generator and whatever it started (its own process group)."""
    try:
        os.killpg(pid, signal.SIGTERM)
    except (ProcessLookupError, PermissionError):
        return


def last_line(text: str) -> str:
    lines = [line for line in text.strip().splitlines() if line.strip()]
    return lines[-1] if lines else "no message"


def run_generator(request: Request, cwd: Path, what: str) -> None:
    """Run one generator request to its end in `cwd`, here and now (a preview, a dry run)."""
    finished = subprocess.run(
        request.command_line(),
        capture_output=True,
        text=True,
        check=False,
        cwd=cwd,
    )
    if finished.returncode != 0:
        raise JobError(f"the {what} failed: {last_line(finished.stderr)}")


class LocalJobs:
    """The jobs this process runs (from their claim until they end) and their generator
    subprocesses, shared by all its threads. `lock` is held while a job is claimed, so that
    recovery never takes a job this process is claiming for one whose runner is gone."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self._running: set[int] = set()
        self._processes: dict[int, subprocess.Popen[str]] = {}

    def running(self) -> set[int]:
        """The ids of the jobs this process runs; call with `lock` held."""
        return set(self._running)

    def claimed(self, job_id: int) -> None:
        """Call with `lock` held, in the claim's transaction."""
        self._running.add(job_id)

    def started(self, job_id: int, process: subprocess.Popen[str]) -> None:
        with self.lock:
            self._processes[job_id] = process

    def reaped(self, job_id: int) -> None:
        """Its generator ended and was waited for: its pid may now be another process's."""
        with self.lock:
            self._processes.pop(job_id, None)

    def ended(self, job_id: int) -> None:
        with self.lock:
            self._processes.pop(job_id, None)
            self._running.discard(job_id)

    def stop_generator(self, job_id: int) -> bool:
        """Stop the job's generator when this process runs it; True when it did."""
        with self.lock:
            process = self._processes.get(job_id)
        if process is None:
            return False
        terminate(process.pid)
        return True


# One per process: what a process runs is shared by every session of the app it serves.
LOCAL = LocalJobs()
