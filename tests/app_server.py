"""`streamlit run server.py` (the app as `make run` serves it) as a test fixture: the real
server, on a free port of this machine.

Importable from every test folder (tests/ is on sys.path through tests/conftest.py).
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

import pytest
from sqlalchemy import Engine

from study.design import StudyPlan, create_study, open_study
from study.readers import add_reader

ROOT = Path(__file__).resolve().parent.parent
STREAMLIT = Path(sys.executable).parent / "streamlit"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class AppServer:
    """`streamlit run server.py` (or another `script` of the repository) on a free port;
    `kill()` ends it with SIGKILL, as a crash would."""

    def __init__(self, env: Mapping[str, str], log: Path, script: str = "server.py") -> None:
        self.env = dict(env)
        self.log = log
        self.script = script
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.launch()
        self.wait_until_ready()

    def launch(self) -> None:
        """Start the process (servers launched together start up in parallel)."""
        env = {
            **os.environ,
            **self.env,
            "VTT_ADMIN_PASSWORD": "app-server-test-password",
            # Personal links take the address the browser uses.
            "VTT_PUBLIC_URL": "",
        }
        with self.log.open("a") as log:
            self.process = subprocess.Popen(
                [
                    str(STREAMLIT),
                    "run",
                    self.script,
                    "--server.headless",
                    "true",
                    "--server.port",
                    str(self.port),
                    "--server.address",
                    "127.0.0.1",
                    "--browser.gatherUsageStats",
                    "false",
                ],
                cwd=ROOT,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )

    def wait_until_ready(self, timeout_s: float = 60) -> None:
        assert self.process is not None
        deadline = time.monotonic() + timeout_s
        while True:
            try:
                with urllib.request.urlopen(f"{self.url}/_stcore/health", timeout=2) as response:
                    if response.status == 200:
                        return
            except OSError:
                pass
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.stop()
                pytest.fail(f"streamlit did not start: {self.log.read_text()}")
            time.sleep(0.3)

    def kill(self) -> None:
        """SIGKILL: no shutdown handler, no flush, no cleanup runs."""
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=10)

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=10)


@contextmanager
def served_study(
    engine: Engine, plan: StudyPlan, alias: str, data_dir: Path, log: Path
) -> Iterator[tuple[int, str, str]]:
    """The plan built and opened with one reader (the engine disposed of after), and the app
    serving `data_dir`: (the study's id, the reader's code, the app's URL)."""
    study_id = create_study(engine, plan)
    open_study(engine, study_id)
    code = add_reader(engine, study_id, alias).code
    engine.dispose()
    server = AppServer({"VTT_DATA_DIR": str(data_dir)}, log)
    server.start()
    try:
        yield study_id, code, server.url
    finally:
        server.stop()
