"""Running the generator's requests (`python -m synth ...`, built by `synth.contract`) as
subprocesses: their progress lines (`--progress jsonl`) drive a bar here, their other
messages are passed on, their stdout (a `--json` result) is returned, and a failure becomes
one message naming the command and its last word."""

from __future__ import annotations

import subprocess
import sys
import threading
from collections import deque
from collections.abc import Callable

from tqdm import tqdm

from study.reproduce.errors import ReproduceError
from synth.contract import Request, parse_progress_line

Progress = Callable[[int, int], None]
TAIL_LINES = 20


def run_request(request: Request, progress: Progress | None = None) -> str:
    """Run `request` to its end; its stdout. `progress(done, total)` follows its progress lines.
    ReproduceError with its last message when it fails."""
    process = subprocess.Popen(
        request.command_line(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        bufsize=1,
    )
    assert process.stdout is not None and process.stderr is not None
    chunks: list[str] = []
    # Read on a thread of its own, so that a full stdout pipe never stalls the child while we
    # wait on its stderr.
    reader = threading.Thread(target=lambda: chunks.append(process.stdout.read()), daemon=True)
    reader.start()
    tail: deque[str] = deque(maxlen=TAIL_LINES)
    try:
        for line in process.stderr:
            event = parse_progress_line(line)
            if event is not None:
                if progress:
                    progress(event["done"], event["total"])
            elif line.strip():
                tail.append(line.rstrip())
                tqdm.write(line.rstrip(), file=sys.stderr)
        code = process.wait()
    except BaseException:
        # Interrupted (Ctrl-C): the generator goes too, and a resumable stage continues later.
        process.terminate()
        process.wait()
        raise
    reader.join()
    if code != 0:
        last = tail[-1] if tail else f"exit code {code}"
        raise ReproduceError(f"`python -m synth {request.command}` failed: {last}")
    return "".join(chunks)
