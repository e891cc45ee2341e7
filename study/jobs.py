"""Background jobs: generate images and train the generator through its command line.

`study` never imports `synth`: a job runs `python -m synth sample|train ... --progress jsonl` as
a subprocess in its own process group, a thread of the app process reads its output (JSON
progress lines become `Job.progress`, the last lines `Job.log_tail`), and a generate job imports
the manifest the generator wrote and succeeds in one transaction (a cancel imports nothing).
Everything a page shows lives in the database, so a job survives a page reload. Each running
job records its runner (host, pid and start time of the app process whose thread runs it):
`recover_jobs` at app start fails the jobs left "running" by a dead app process of its host and
leaves other app servers' jobs alone. An ended job's work folder (under VTT_DATA_DIR/jobs) is
removed, except a stopped training run's while it can be resumed. At most VTT_MAX_JOBS jobs run
at once; the others wait, queued.
"""

from __future__ import annotations

import csv
import functools
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import Any, Literal

import pandas as pd
from sqlalchemy import Connection, Engine, func, select, update
from sqlalchemy.orm import Session

from study import settings
from study.db import transaction
from study.design import PoolFilter
from study.imaging.canonical import canonical_from_bytes, read_canonical, write_canonical_png
from study.imaging.errors import VTTError
from study.imaging.manifest import load_manifest
from study.imaging.render import render_png
from study.imaging.types import Lesion, Sequence
from study.importer import import_manifest
from study.library import asset_counts
from study.models import Asset, Job, JobState
from study.storage import AssetStore

Sampler = Literal["ddim", "dpmpp"]
Preset = Literal["tiny", "small", "default"]

LOG_LINES = 50
# Progress is written to the database at most this often (seconds), and always at the end.
PROGRESS_INTERVAL_S = 1.0
DEMO_CHECKPOINT = Path(__file__).resolve().parent.parent / "data" / "demo" / "checkpoint"
# The demo generator's few-step student (`python -m synth distill`): the fast choice on a CPU.
DEMO_STUDENT = DEMO_CHECKPOINT.parent / "student"
DEFAULT_PROMPT_TEMPLATE = "A {sequence} image of a prostate {lesion}"
# Words the generator's text encoder learned for each sequence and lesion status.
SEQUENCE_WORDS = {
    Sequence.T2W: "T2",
    Sequence.ADC: "ADC",
    Sequence.DWI: "DWI",
    Sequence.OTHER: "MR",
}
LESION_WORDS = {Lesion.YES: "with a lesion", Lesion.NO: "without lesion", Lesion.UNKNOWN: ""}
APP_STOPPED = "the app stopped while this job ran; start it again (a training run can be resumed)"
CHECKPOINT_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")


class JobError(VTTError):
    """A job that cannot be submitted, resumed or cancelled as asked."""


class JobKind(StrEnum):
    GENERATE = "generate"
    TRAIN = "train"


ACTIVE = (JobState.QUEUED, JobState.RUNNING)


# --- devices ----------------------------------------------------------------------------------


@functools.cache
def _cuda_available() -> bool:
    probe = subprocess.run(
        [sys.executable, "-c", "import torch; print(torch.cuda.is_available())"],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    return probe.stdout.strip() == "True"


def job_device() -> str:
    """The device jobs use: VTT_DEVICE, or with 'auto' cuda when the generator's torch sees one.

    The check runs once per app process, in a subprocess (the app itself never loads torch).
    """
    wanted = settings.get("VTT_DEVICE").strip().lower()
    if wanted not in {"auto", "cpu", "cuda"}:
        raise JobError(f"VTT_DEVICE is {wanted!r}; use auto, cpu or cuda")
    if wanted != "auto":
        return wanted
    return "cuda" if _cuda_available() else "cpu"


def max_jobs() -> int:
    value = settings.get("VTT_MAX_JOBS")
    if not value.isdigit() or int(value) < 1:
        raise JobError(f"VTT_MAX_JOBS is {value!r}; it must be a whole number of at least 1")
    return int(value)


# --- checkpoints ------------------------------------------------------------------------------


@dataclass(frozen=True)
class CheckpointInfo:
    name: str
    path: Path
    preset: str
    image_size: int
    training_manifest_sha256: str
    steps: int
    date: str
    # The sampling a distilled student was made for (sampler, steps, guidance); None otherwise.
    sampling: tuple[Sampler, int, float] | None = None
    distilled_from: str = ""

    def recommended_sampling(self) -> tuple[Sampler, int, float]:
        """Sampler, steps and guidance to start from: a student's own, else the defaults."""
        defaults = SampleOptions()
        return self.sampling or (defaults.sampler, defaults.steps, defaults.guidance)


def checkpoints_dir() -> Path:
    return settings.data_dir() / "checkpoints"


def read_checkpoint(path: Path, name: str | None = None) -> CheckpointInfo:
    """What config.json says of the checkpoint in `path`."""
    try:
        config = json.loads((path / "config.json").read_text())
    except (OSError, ValueError) as error:
        raise JobError(f"{path} is not a checkpoint: its config.json cannot be read") from error
    model, training = config.get("model", {}), config.get("training", {})
    sampling = training.get("sampling")
    return CheckpointInfo(
        name=name or path.name,
        path=path,
        preset=str(model.get("preset", "")),
        image_size=int(model.get("image_size", 0)),
        training_manifest_sha256=str(training.get("training_manifest_sha256", "")),
        steps=int(training.get("steps", 0)),
        date=str(training.get("date", "")),
        sampling=(
            (sampling["sampler"], int(sampling["steps"]), float(sampling["guidance"]))
            if sampling
            else None
        ),
        distilled_from=str(training.get("distilled_from", "")),
    )


def list_checkpoints() -> list[CheckpointInfo]:
    """The bundled demo checkpoint and its student (when present) and every checkpoint under
    VTT_DATA_DIR."""
    found = []
    if (DEMO_CHECKPOINT / "config.json").is_file():
        found.append(read_checkpoint(DEMO_CHECKPOINT, "demo (bundled)"))
    if (DEMO_STUDENT / "config.json").is_file():
        found.append(read_checkpoint(DEMO_STUDENT, "demo student (bundled; fast on a CPU)"))
    if checkpoints_dir().is_dir():
        found.extend(
            read_checkpoint(folder)
            for folder in sorted(checkpoints_dir().iterdir())
            if (folder / "config.json").is_file()
        )
    return found


# --- requests ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class GenerateCell:
    """How many images of one sequence and lesion status to generate."""

    sequence: Sequence
    lesion: Lesion
    n: int


@dataclass(frozen=True)
class SampleOptions:
    prompt_template: str = DEFAULT_PROMPT_TEMPLATE
    sampler: Sampler = "dpmpp"
    steps: int = 20
    guidance: float = 3.0
    seed: int = 0


def prompt_for(template: str, sequence: Sequence, lesion: Lesion) -> str:
    """The prompt of one cell: `template` with {sequence} and {lesion} filled in."""
    try:
        text = template.format(sequence=SEQUENCE_WORDS[sequence], lesion=LESION_WORDS[lesion])
    except (KeyError, IndexError, ValueError) as error:
        raise JobError(
            f"prompt template {template!r}: only {{sequence}} and {{lesion}} may be filled in"
        ) from error
    return " ".join(text.split())


def match_real_pool(engine: Engine) -> list[GenerateCell]:
    """As many synthetic images as there are real ones in each sequence and lesion cell."""
    counts = asset_counts(engine)
    real = counts[counts["origin"] == "real"]
    lesion = {"yes": Lesion.YES, "no": Lesion.NO, "unknown": Lesion.UNKNOWN}
    return [
        GenerateCell(Sequence(row.sequence), lesion[row.lesion], int(row.assets))
        for row in real.itertuples()
    ]


def _new_work_dir() -> Path:
    """A fresh folder for one job's files (made before the job row, so named apart from it)."""
    root = settings.data_dir() / "jobs"
    root.mkdir(parents=True, exist_ok=True)
    return Path(tempfile.mkdtemp(dir=root, prefix="job-"))


def _sample_run(
    options: SampleOptions, sequence: Sequence, lesion: Lesion, n: int, seed: int
) -> dict[str, Any]:
    return {
        "prompt": prompt_for(options.prompt_template, sequence, lesion),
        "sequence": sequence.value,
        "lesion": lesion.value or "unknown",
        "n": n,
        "seed": seed,
        "condition_manifest": None,
    }


def _check_checkpoint(checkpoint: Path) -> None:
    if not (checkpoint / "config.json").is_file():
        raise JobError(f"{checkpoint} is not a checkpoint (it has no config.json)")


def _queue(engine: Engine, kind: JobKind, params: dict[str, Any]) -> int:
    """Add a queued job and start it when a slot is free; its id."""
    with transaction(engine) as session:
        job = Job(kind=kind.value, params=params)
        session.add(job)
        session.flush()
        job_id = job.id
    dispatch(engine)
    return job_id


def submit_generate(
    engine: Engine,
    checkpoint: Path,
    cells: Iterable[GenerateCell],
    options: SampleOptions = SampleOptions(),
) -> int:
    """Queue a job that generates each cell's images and imports them; returns its id."""
    _check_checkpoint(checkpoint)
    runs, seed = [], options.seed
    for cell in cells:
        if cell.n > 0:
            runs.append(_sample_run(options, cell.sequence, cell.lesion, cell.n, seed))
            seed += cell.n
    if not runs:
        raise JobError("nothing to generate: ask for at least one image")
    return _queue(engine, JobKind.GENERATE, _generate_params(checkpoint, options, runs))


def _generate_params(
    checkpoint: Path, options: SampleOptions, runs: list[dict[str, Any]], folder: Path | None = None
) -> dict[str, Any]:
    return {
        "folder": str(folder or _new_work_dir()),
        "checkpoint": str(checkpoint),
        "sampler": options.sampler,
        "steps": options.steps,
        "guidance": options.guidance,
        "runs": runs,
        "images": sum(run["n"] for run in runs),
    }


def _write_asset_manifest(assets: list[Asset], folder: Path, store: AssetStore) -> Path:
    """The assets' canonical arrays as 16-bit PNGs with a manifest (intensity canonical)."""
    (folder / "images").mkdir(parents=True, exist_ok=True)
    manifest = folder / "manifest.csv"
    columns = ["path", "origin", "sequence", "lesion", "patient_id", "slice_index", "pair_key"]
    with manifest.open("w", newline="") as stream:
        writer = csv.writer(stream)
        writer.writerow([*columns, "intensity"])
        for asset in assets:
            relative = f"images/asset-{asset.id}.png"
            array = canonical_from_bytes(store.read(asset.canonical_sha256, ".npy"))
            write_canonical_png(array, folder / relative)
            writer.writerow(
                [
                    relative,
                    asset.origin.value,
                    asset.sequence.value,
                    "" if asset.lesion is None else asset.lesion,
                    asset.patient_id,
                    "" if asset.slice_index is None else asset.slice_index,
                    asset.pair_key or f"asset-{asset.id}",
                    "canonical",
                ]
            )
    return manifest


def submit_paired(
    engine: Engine,
    checkpoint: Path,
    t2w_asset_ids: Iterable[int],
    sequences: Iterable[Sequence],
    options: SampleOptions = SampleOptions(),
    *,
    store: AssetStore | None = None,
) -> int:
    """Queue a job that makes the DWI/ADC image matching each chosen T2W asset (same pair key)."""
    _check_checkpoint(checkpoint)
    wanted = sorted(set(t2w_asset_ids))
    targets = [Sequence(s) for s in dict.fromkeys(sequences)]
    if not wanted or not targets:
        raise JobError("paired synthesis needs T2W assets and at least one of DWI or ADC")
    if Sequence.T2W in targets:
        raise JobError("paired synthesis makes DWI or ADC images from T2W ones, not T2W")
    with transaction(engine) as session:
        assets = list(session.scalars(select(Asset).where(Asset.id.in_(wanted))))
    if len(assets) != len(wanted) or any(a.sequence != Sequence.T2W for a in assets):
        raise JobError("paired synthesis conditions on imported T2W assets only")
    work = _new_work_dir()
    store = store or AssetStore()
    runs, seed = [], options.seed
    by_lesion: dict[Lesion, list[Asset]] = {}
    for asset in assets:
        lesion = Lesion.UNKNOWN if asset.lesion is None else Lesion(str(asset.lesion))
        by_lesion.setdefault(lesion, []).append(asset)
    conditions: dict[str, str] = {}
    for lesion, group in by_lesion.items():
        folder = work / f"condition-{lesion.value or 'unknown'}"
        condition = _write_asset_manifest(group, folder, store)
        conditions |= _condition_sources(condition, group)
        for sequence in targets:
            run = _sample_run(options, sequence, lesion, 1, seed)
            runs.append(run | {"condition_manifest": str(condition), "images": len(group)})
            seed += len(group)
    params = _generate_params(checkpoint, options, runs, work)
    params["images"] = sum(run["images"] for run in runs)
    params["conditions"] = conditions
    return _queue(engine, JobKind.GENERATE, params)


def _condition_sources(manifest: Path, assets: list[Asset]) -> dict[str, str]:
    """The source sha256 the generator records for each row of a condition manifest (written
    by `_write_asset_manifest`), mapped to the source sha256 of the asset it shows."""
    by_file = {f"asset-{asset.id}.png": asset.source_sha256 for asset in assets}
    return {
        item.source_sha256: by_file[item.row.path.name]
        for item in load_manifest(manifest, allow_absolute=False)
    }


def t2w_assets(engine: Engine) -> list[tuple[int, str]]:
    """Imported T2W assets that paired synthesis can condition on: (id, label to choose by)."""
    lesion = {1: "lesion", 0: "no lesion", None: "lesion unknown"}
    with transaction(engine) as session:
        assets = session.scalars(
            select(Asset).where(Asset.sequence == Sequence.T2W).order_by(Asset.id)
        )
        return [
            (
                a.id,
                f"#{a.id} {a.origin.value} {a.patient_id or '-'} slice {a.slice_index} "
                f"({lesion[a.lesion]})",
            )
            for a in assets
        ]


@dataclass(frozen=True)
class TrainingSelection:
    """Which imported assets to train on. Empty sets mean no restriction."""

    sequences: frozenset[Sequence] = frozenset()
    lesions: frozenset[Lesion] = frozenset()
    pool: PoolFilter = field(default_factory=PoolFilter)

    def admits(self, asset: Asset) -> bool:
        lesion = Lesion.UNKNOWN if asset.lesion is None else Lesion(str(asset.lesion))
        return (
            self.pool.admits(asset)
            and (not self.sequences or asset.sequence in self.sequences)
            and (not self.lesions or lesion in self.lesions)
        )


@dataclass(frozen=True)
class TrainOptions:
    steps: int = 2000
    batch: int = 8
    preset: Preset = "small"
    size: int | None = None
    max_minutes: float | None = None
    seed: int = 0
    save_every: int = 1000
    log_every: int = 10


def selected_assets(engine: Engine, selection: TrainingSelection) -> list[Asset]:
    with transaction(engine) as session:
        return [a for a in session.scalars(select(Asset).order_by(Asset.id)) if selection.admits(a)]


def _train_command(params: dict[str, Any], *, steps: int, out: Path) -> list[str]:
    command = [
        *("train", "--manifest", params["manifest"], "--out", str(out)),
        *("--steps", str(steps), "--batch", str(params["batch"]), "--model", params["preset"]),
        *("--seed", str(params["seed"])),
    ]
    if "save_every" in params:
        command += ["--save-every", str(params["save_every"])]
        command += ["--log-every", str(params["log_every"])]
    if params.get("size"):
        command += ["--size", str(params["size"])]
    if params.get("max_minutes"):
        command += ["--max-minutes", str(params["max_minutes"])]
    return command


def submit_training(
    engine: Engine,
    name: str,
    selection: TrainingSelection,
    options: TrainOptions = TrainOptions(),
    *,
    store: AssetStore | None = None,
) -> int:
    """Queue training of a new checkpoint VTT_DATA_DIR/checkpoints/`name`; returns the job id."""
    if not CHECKPOINT_NAME.match(name):
        raise JobError(
            f"checkpoint name {name!r}: use letters, digits, '.', '_' or '-' (at most 64)"
        )
    out = checkpoints_dir() / name
    if out.exists():
        raise JobError(f"a checkpoint named {name!r} exists already: choose another name")
    assets = selected_assets(engine, selection)
    if not assets:
        raise JobError("no imported asset matches the filters: there is nothing to train on")
    work = _new_work_dir()
    manifest = _write_asset_manifest(assets, work / "training", store or AssetStore())
    params = {
        "folder": str(work),
        "name": name,
        "checkpoint": str(out),
        "manifest": str(manifest),
        "images": len(assets),
        "steps": options.steps,
        "batch": options.batch,
        "preset": options.preset,
        "size": options.size,
        "max_minutes": options.max_minutes,
        "seed": options.seed,
        "save_every": options.save_every,
        "log_every": options.log_every,
        "resume": False,
    }
    return _queue(engine, JobKind.TRAIN, params)


def _has_resume_state(params: dict[str, Any]) -> bool:
    """The checkpoint holds the state to continue from, and the training data are still there."""
    return (Path(params["checkpoint"]) / "resume").is_dir() and Path(params["manifest"]).is_file()


def can_resume(job: JobView) -> bool:
    """A stopped training run whose checkpoint folder holds the state to continue from."""
    return (
        job.kind == JobKind.TRAIN
        and job.state in (JobState.FAILED, JobState.CANCELLED)
        and _has_resume_state(job.params)
    )


def resume_training(engine: Engine, job_id: int) -> int:
    """Queue a job that continues a stopped training run (`synth train --resume`)."""
    job = get_job(engine, job_id)
    if not can_resume(job):
        raise JobError(f"job {job_id} is not a stopped training run with a saved state")
    for other in list_jobs(engine, JobKind.TRAIN, limit=None):
        if other.active and other.params["checkpoint"] == job.params["checkpoint"]:
            raise JobError(f"job {other.id} is training this checkpoint already")
    return _queue(engine, JobKind.TRAIN, job.params | {"resume": True})


@dataclass(frozen=True)
class TrainingEstimate:
    device: str
    seconds_per_step: float
    total_s: float


def estimate_training(
    engine: Engine,
    selection: TrainingSelection,
    options: TrainOptions,
    *,
    store: AssetStore | None = None,
) -> TrainingEstimate:
    """Time a 3-step dry run of the same training (setup excluded) and scale to all steps."""
    assets = selected_assets(engine, selection)
    if not assets:
        raise JobError("no imported asset matches the filters: there is nothing to train on")
    device = job_device()
    settings.data_dir().mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=settings.data_dir()) as folder:
        manifest = _write_asset_manifest(assets, Path(folder) / "data", store or AssetStore())
        params = {"manifest": str(manifest), "batch": options.batch, "preset": options.preset}
        params |= {"size": options.size, "seed": options.seed}
        command = _train_command(params, steps=3, out=Path(folder) / "checkpoint")
        command += ["--log-every", "1", "--save-every", "1000000", "--device", device]
        finished = subprocess.run(
            [sys.executable, "-m", "synth", *command],
            capture_output=True,
            text=True,
            check=False,
            cwd=folder,
        )
        if finished.returncode != 0:
            raise JobError(f"the dry run failed: {_last_line(finished.stderr)}")
        loss = training_loss(Path(folder) / "checkpoint")
    elapsed = loss["elapsed_s"].to_list()
    per_step = (elapsed[-1] - elapsed[0]) / (len(elapsed) - 1)
    return TrainingEstimate(device, per_step, per_step * options.steps)


def training_loss(checkpoint: Path | str) -> pd.DataFrame:
    """DIR/loss.csv of a training run (step, loss, lr, elapsed_s); empty before the first log."""
    path = Path(checkpoint) / "loss.csv"
    columns = ["step", "loss", "lr", "elapsed_s"]
    if not path.is_file():
        return pd.DataFrame(columns=columns)
    try:
        return pd.read_csv(path)
    except (pd.errors.EmptyDataError, pd.errors.ParserError):
        # The trainer may be half-way through writing a line.
        return pd.DataFrame(columns=columns)


def _last_line(text: str) -> str:
    lines = [line for line in text.strip().splitlines() if line.strip()]
    return lines[-1] if lines else "no message"


# --- previews ---------------------------------------------------------------------------------


def preview_samples(
    checkpoint: Path, cell: GenerateCell, options: SampleOptions, *, n: int = 2
) -> list[bytes]:
    """Generate `n` images synchronously (nothing is imported); their display PNGs."""
    _check_checkpoint(checkpoint)
    run = _sample_run(options, cell.sequence, cell.lesion, n, options.seed)
    settings.data_dir().mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=settings.data_dir()) as folder:
        params = _generate_params(checkpoint, options, [run], Path(folder))
        params["device"] = job_device()
        out = Path(folder) / "preview"
        finished = subprocess.run(
            [sys.executable, "-m", "synth", *_sample_command(params, run, out)],
            capture_output=True,
            text=True,
            check=False,
            cwd=folder,
        )
        if finished.returncode != 0:
            raise JobError(f"the preview failed: {_last_line(finished.stderr)}")
        images = sorted((out / "images").glob("*.png"))
        return [render_png(read_canonical(path), size=settings.render_size()) for path in images]


# --- the runner -------------------------------------------------------------------------------

# What this app process runs, shared by every session of the process: the jobs its threads
# run (from dispatch until they end) and their generator subprocesses.
_registry_lock = threading.Lock()
_runners: set[int] = set()
_processes: dict[int, subprocess.Popen[str]] = {}


class _Cancelled(Exception):
    """The job was cancelled while its images were imported: the import is rolled back."""


@dataclass(frozen=True)
class Runner:
    """An app process that runs jobs: host name, pid, and start time (clock ticks after boot)."""

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
    """This app process, as recorded on the jobs it runs."""
    pid = os.getpid()
    return Runner(socket.gethostname(), pid, process_start(pid))


def _sample_command(params: dict[str, Any], run: dict[str, Any], out: Path) -> list[str]:
    command = [
        *("sample", "--checkpoint", params["checkpoint"], "--prompt", run["prompt"]),
        *("--n", str(run["n"]), "--out", str(out), "--seed", str(run["seed"])),
        *("--sampler", params["sampler"], "--steps", str(params["steps"])),
        *("--guidance", str(params["guidance"]), "--sequence", run["sequence"]),
        *("--lesion", run["lesion"], "--device", params["device"]),
    ]
    if run["condition_manifest"]:
        command += ["--condition-manifest", run["condition_manifest"]]
    return command


def _commands(kind: str, params: dict[str, Any]) -> list[tuple[list[str], float]]:
    """The generator command lines of a job, each with its share of the job's progress."""
    if kind == JobKind.TRAIN:
        command = _train_command(params, steps=params["steps"], out=Path(params["checkpoint"]))
        command += ["--device", params["device"]] + (["--resume"] if params["resume"] else [])
        return [(command, 1.0)]
    total = params["images"]
    return [
        (
            _sample_command(params, run, Path(params["folder"]) / f"part-{index}"),
            run.get("images", run["n"]) / total,
        )
        for index, run in enumerate(params["runs"])
    ]


def dispatch(engine: Engine) -> list[int]:
    """Start queued jobs while fewer than VTT_MAX_JOBS run; returns the ids started.

    A job is claimed with a conditional update, so two app servers never start the same one.
    """
    runner = this_runner()
    with _registry_lock:
        with transaction(engine) as session:
            running = session.scalar(
                select(func.count()).select_from(Job).where(Job.state == JobState.RUNNING)
            )
            free = max_jobs() - (running or 0)
            if free <= 0:
                return []
            queued = session.scalars(
                select(Job.id).where(Job.state == JobState.QUEUED).order_by(Job.id).limit(free)
            ).all()
            started = []
            for job_id in queued:
                if _update_if(
                    session,
                    job_id,
                    JobState.QUEUED,
                    state=JobState.RUNNING,
                    started_at=datetime.now(UTC),
                    runner_host=runner.host,
                    runner_pid=runner.pid,
                    runner_start=runner.start,
                ):
                    started.append(job_id)
        _runners.update(started)
    for job_id in started:
        threading.Thread(
            target=_run_job, args=(engine, job_id), name=f"vtt-job-{job_id}", daemon=True
        ).start()
    return started


def _update_if(
    executor: Session | Connection, job_id: int, expected: JobState, /, **values: Any
) -> bool:
    """Update a job only while it is in the `expected` state (compare and set, safe between app
    servers); True when it was."""
    changed = executor.execute(
        update(Job)
        .where(Job.id == job_id, Job.state == expected)
        .values(**values)
        .execution_options(synchronize_session=False)
    )
    return changed.rowcount == 1


def _update_running(engine: Engine, job_id: int, **values: Any) -> bool:
    """Update a job only while it runs (a cancelled job keeps its state); True when it did."""
    with transaction(engine) as session:
        return _update_if(session, job_id, JobState.RUNNING, **values)


def _end(engine: Engine, job_id: int, state: JobState, **values: Any) -> bool:
    return _update_running(engine, job_id, state=state, finished_at=datetime.now(UTC), **values)


def _state(engine: Engine, job_id: int) -> JobState:
    with transaction(engine) as session:
        return session.get_one(Job, job_id).state


def _run_job(engine: Engine, job_id: int) -> None:
    tail: deque[str] = deque(maxlen=LOG_LINES)
    kind, params, succeeded = "", {}, False
    try:
        with transaction(engine) as session:
            job = session.get_one(Job, job_id)
            kind, params = job.kind, dict(job.params) | {"device": job_device()}
            job.params = params
        tail.append(f"device: {params['device']}")
        done_share = 0.0
        for command, share in _commands(kind, params):
            if _state(engine, job_id) != JobState.RUNNING:
                return
            code = _run_command(engine, job_id, command, params, tail, (done_share, share))
            if code != 0:
                _end(engine, job_id, JobState.FAILED, error=_failure(tail, code))
                return
            done_share += share
        if kind == JobKind.GENERATE:
            tail.append(f"importing {params['images']} images")
            _update_running(engine, job_id, log_tail="\n".join(tail))
            _import_outputs(engine, job_id, params)
            succeeded = True
        else:
            info = read_checkpoint(Path(params["checkpoint"]))
            result = {"checkpoint": str(info.path), "steps": info.steps}
            succeeded = _end(engine, job_id, JobState.SUCCEEDED, progress=1.0, result=result)
    except _Cancelled:
        return
    except Exception as error:
        _end(engine, job_id, JobState.FAILED, error=str(error) or type(error).__name__)
    finally:
        with _registry_lock:
            _processes.pop(job_id, None)
            _runners.discard(job_id)
        if params:
            _remove_work_dir(kind, params, succeeded=succeeded)
        dispatch(engine)


def _failure(tail: deque[str], code: int) -> str:
    return f"the generator stopped with exit status {code}: {_last_line(chr(10).join(tail))}"


def _run_command(
    engine: Engine,
    job_id: int,
    command: list[str],
    params: dict[str, Any],
    tail: deque[str],
    shares: tuple[float, float],
) -> int:
    """Run one generator command, recording its progress; its exit status.

    `shares`: the job's progress before this command, and this command's part of it. The
    process is stopped when the job is no longer running (cancelled, maybe on another server).
    """
    done_share, share = shares
    env = os.environ | {"PYTHONUNBUFFERED": "1"}
    process = subprocess.Popen(
        [sys.executable, "-m", "synth", *command, "--progress", "jsonl"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
        cwd=params["folder"],
        env=env,
    )
    with _registry_lock:
        _processes[job_id] = process
    if not _update_running(engine, job_id, pid=process.pid):
        _terminate(process.pid)
    assert process.stdout is not None
    last_write, progress = 0.0, done_share
    for line in process.stdout:
        tail.append(line.rstrip())
        event = _event(line)
        if event is not None and event.get("total"):
            progress = done_share + share * min(event["done"] / event["total"], 1.0)
        now = datetime.now(UTC).timestamp()
        if now - last_write >= PROGRESS_INTERVAL_S:
            if not _update_running(engine, job_id, progress=progress, log_tail="\n".join(tail)):
                _terminate(process.pid)
            last_write = now
    code = process.wait()
    with _registry_lock:
        # Reaped: its pid may now be another process's.
        _processes.pop(job_id, None)
    _update_running(engine, job_id, progress=progress, log_tail="\n".join(tail))
    return code


def _event(line: str) -> dict[str, Any] | None:
    if not line.startswith("{"):
        return None
    try:
        event = json.loads(line)
    except ValueError:
        return None
    return event if isinstance(event, dict) and event.get("event") == "progress" else None


def _merge_parts(job_id: int, params: dict[str, Any]) -> Path:
    """One manifest of every part's images, with pair keys unique to the job and each paired
    image's condition_sha256 naming the imported T2W asset it was made from."""
    folder = Path(params["folder"])
    conditions: dict[str, str] = params.get("conditions", {})
    rows: list[dict[str, str]] = []
    columns: list[str] = []
    for index in range(len(params["runs"])):
        with (folder / f"part-{index}" / "manifest.csv").open(newline="") as stream:
            reader = csv.DictReader(stream)
            columns += [c for c in reader.fieldnames or [] if c not in columns]
            for row in reader:
                row["path"] = f"part-{index}/{row['path']}"
                if row.get("condition_sha256"):
                    row["condition_sha256"] = conditions.get(
                        row["condition_sha256"], row["condition_sha256"]
                    )
                else:
                    # Unpaired images get pair keys from their seeds; make them unique per job.
                    row["pair_key"] = f"job{job_id}-{row['pair_key']}"
                rows.append(row)
    manifest = folder / "manifest.csv"
    with manifest.open("w", newline="") as stream:
        writer = csv.DictWriter(stream, fieldnames=columns)
        writer.writeheader()
        writer.writerows(rows)
    return manifest


def _import_outputs(engine: Engine, job_id: int, params: dict[str, Any]) -> None:
    """Import the job's images and mark it succeeded in one transaction, or do neither.

    The import stops when the job is cancelled meanwhile (checked as each image is loaded and
    stored); the job is marked succeeded, conditionally on its still running, before the
    import commits, so a cancel either comes first and nothing is imported, or comes after and
    finds the job succeeded. Raises _Cancelled when the job was cancelled.
    """
    manifest = _merge_parts(job_id, params)
    with engine.connect() as connection, connection.begin():

        def succeed() -> None:
            if not _update_if(
                connection,
                job_id,
                JobState.RUNNING,
                state=JobState.SUCCEEDED,
                progress=1.0,
                finished_at=datetime.now(UTC),
            ):
                raise _Cancelled

        def check(stage: str, done: int, total: int) -> None:
            if connection.scalar(select(Job.state).where(Job.id == job_id)) != JobState.RUNNING:
                raise _Cancelled
            if stage == "store" and done == total:
                succeed()

        try:
            # Passed the connection, the importer's transaction joins this one.
            imported = import_manifest(connection, manifest, allow_absolute=False, progress=check)
        except VTTError as error:
            raise JobError(f"the images were made but nothing was imported: {error}") from error
        if imported.added == 0:
            succeed()
        result = {"added": imported.added, "unchanged": imported.unchanged}
        connection.execute(update(Job).where(Job.id == job_id).values(result=result))


def _remove_work_dir(kind: str, params: dict[str, Any], *, succeeded: bool) -> None:
    """Remove an ended job's work folder (its imported or abandoned files).

    A stopped training run keeps it (its training data) while its checkpoint can be resumed;
    checkpoints live under VTT_DATA_DIR/checkpoints, never in a work folder.
    """
    folder = Path(params["folder"]).resolve()
    if folder.parent != (settings.data_dir() / "jobs").resolve():
        return
    if kind == JobKind.TRAIN and not succeeded and _has_resume_state(params):
        return
    shutil.rmtree(folder, ignore_errors=True)


def _synth_process(pid: int) -> bool:
    """Whether `pid` is alive and runs the generator (never signal a recycled pid)."""
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return False
    return b"synth" in cmdline


def _terminate(pid: int) -> None:
    try:
        os.killpg(pid, signal.SIGTERM)
    except (ProcessLookupError, PermissionError):
        return


def cancel_job(engine: Engine, job_id: int) -> None:
    """Stop a queued or running job: its generator ends and nothing is imported.

    A running job's generator is stopped here when it runs on this host, and in any case by
    the app process that runs the job, which sees the job cancelled.
    """
    with transaction(engine) as session:

        def stop(state: JobState) -> bool:
            return _update_if(
                session,
                job_id,
                state,
                state=JobState.CANCELLED,
                finished_at=datetime.now(UTC),
                error="cancelled by the coordinator",
            )

        was_queued = stop(JobState.QUEUED)
        was_running = not was_queued and stop(JobState.RUNNING)
        job = session.get(Job, job_id)
        if job is None:
            raise JobError(f"there is no job {job_id}")
        if not (was_queued or was_running):
            raise JobError(f"job {job_id} is {job.state.value}; only queued or running jobs stop")
        kind, params, pid, host = job.kind, dict(job.params), job.pid, job.runner_host
    if was_queued:
        _remove_work_dir(kind, params, succeeded=False)
    with _registry_lock:
        process = _processes.get(job_id)
    if process is not None:
        _terminate(process.pid)
    elif was_running and host == socket.gethostname() and pid is not None and _synth_process(pid):
        _terminate(pid)
    dispatch(engine)


def _orphaned(job: Job, runner: Runner, watched: set[int]) -> bool:
    """Whether a running job has no runner left: its app process (on this host) is gone."""
    if job.runner_host is None:
        return True  # started before runners were recorded (schema 0001)
    if job.runner_host != runner.host:
        return False  # another app server's: only that server can tell
    if (job.runner_pid, job.runner_start) == (runner.pid, runner.start):
        return job.id not in watched
    return job.runner_start is None or process_start(job.runner_pid or 0) != job.runner_start


def recover_jobs(engine: Engine) -> list[int]:
    """At app start: fail the jobs left "running" by a dead app process of this host.

    Their generator, if it still runs, is stopped, and their work folder removed (a training
    run keeps its own while it can be resumed). Jobs of app processes that still run, and of
    other hosts, are left alone. Queued jobs are then started. Returns the ids marked failed.
    """
    runner = this_runner()
    # Under the lock, so that no job this process starts meanwhile looks orphaned.
    with _registry_lock, transaction(engine) as session:
        running = session.scalars(select(Job).where(Job.state == JobState.RUNNING))
        orphans = [job for job in running if _orphaned(job, runner, _runners)]
        for job in orphans:
            if job.pid is not None and _synth_process(job.pid):
                _terminate(job.pid)
            job.state, job.finished_at, job.error = JobState.FAILED, datetime.now(UTC), APP_STOPPED
        ended = [(job.id, job.kind, dict(job.params)) for job in orphans]
    for _, kind, params in ended:
        if "folder" in params:
            _remove_work_dir(kind, params, succeeded=False)
    dispatch(engine)
    return [job_id for job_id, _, _ in ended]


# --- reading jobs -----------------------------------------------------------------------------


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


def _view(job: Job) -> JobView:
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


def get_job(engine: Engine, job_id: int) -> JobView:
    with transaction(engine) as session:
        job = session.get(Job, job_id)
        if job is None:
            raise JobError(f"there is no job {job_id}")
        return _view(job)


def list_jobs(
    engine: Engine, kind: JobKind | None = None, *, limit: int | None = 20
) -> list[JobView]:
    """The newest jobs first (all of them with `limit` None)."""
    query = select(Job).order_by(Job.id.desc()).limit(limit)
    if kind is not None:
        query = query.where(Job.kind == kind.value)
    with transaction(engine) as session:
        return [_view(job) for job in session.scalars(query)]
