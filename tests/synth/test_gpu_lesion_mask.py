"""benchmarks/gpu_lesion_mask.sh, the two calls a lent GPU machine runs: what it refuses before
it starts any work. (A whole run at the tiniest size on this CPU takes two minutes of process
start-ups; it was run by hand, see the issue's note.)"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "benchmarks" / "gpu_lesion_mask.sh"


def script(*arguments: str, out: Path | None) -> subprocess.CompletedProcess[str]:
    environment = {key: value for key, value in os.environ.items() if key != "OUT"}
    if out is not None:
        environment["OUT"] = str(out)
    return subprocess.run(
        ["bash", str(SCRIPT), *arguments], cwd=ROOT, env=environment, capture_output=True, text=True
    )


def test_the_script_is_valid_bash() -> None:
    assert subprocess.run(["bash", "-n", str(SCRIPT)], capture_output=True).returncode == 0


def test_it_needs_an_output_folder_and_a_known_part(tmp_path: Path) -> None:
    missing = script("train", out=None)
    assert missing.returncode != 0 and "set OUT to the folder for the results" in missing.stderr
    unknown = script("everything", out=tmp_path)
    assert unknown.returncode == 2 and "[train|finish|all]" in unknown.stderr
    assert not any(tmp_path.iterdir())


def test_finish_before_train_says_to_train_first(tmp_path: Path) -> None:
    early = script("finish", out=tmp_path)
    assert early.returncode == 1
    assert f"{tmp_path}/checkpoint holds no trained generator: run" in early.stderr
    assert "train' first" in early.stderr
