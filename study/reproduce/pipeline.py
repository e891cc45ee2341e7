"""The seed study's evaluation on a PI-CAI folder, as nine stages (`python -m study reproduce`).

    prepare   the PI-CAI layout to a manifest (study.picai)         OUT/prepare/
    split     patients: generator training / held out, by lesion   OUT/split/
    train     `synth train` on the training patients               OUT/train/checkpoint/
    sample    `synth sample`: the seed study's synthetic sets      OUT/sample/
    evaluate  `synth evaluate`: C2ST, memorisation, fidelity       OUT/evaluate/result.json
    augment   `synth augment`: lesion classifier, real vs + synth  OUT/augment/result.json
    import    the held-out real and the synthetic images           the database
    study     the seed-protocol study, open for readers            the database
    summary   the machine results in one HTML file                 OUT/summary.html

Each stage is skipped when its outputs are there and its inputs and options are those it last
ran with (`stages`); every stage's time goes to OUT/timings.json. The generator is reached only
through its contract's requests, run as subprocesses (`generator.run_request`).
"""

from __future__ import annotations

import functools
import json
import os
import sys
import tempfile
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from sqlalchemy import Engine
from tqdm import tqdm

from study import settings
from study.db import open_database
from study.imaging.lesions import LesionRule
from study.imaging.manifest import DEFAULT_SLICES
from study.picai import PICAI_SUFFIXES, prepare_picai
from study.reproduce import DEFAULT_STUDY_NAME, database
from study.reproduce.errors import ReproduceError
from study.reproduce.estimates import Work
from study.reproduce.fingerprints import file_digests, file_sha256, folder_listing
from study.reproduce.generator import run_request
from study.reproduce.manifests import read_rows, write_rows
from study.reproduce.sizes import SYNTHETIC_PER_CELL, RunSize
from study.reproduce.split import patient_slices, side_summary, split_patients
from study.reproduce.stages import Records, Stage, StageTime, run_stages
from study.reproduce.summary import TEMPLATE_PATH, SummaryInputs, write_summary
from study.reproduce.synthetic_sets import MANIFEST, images_of, sample_requests, seed_runs
from synth.contract import (
    DEFAULT_SAMPLING,
    AugmentRequest,
    Device,
    EvaluateRequest,
    Request,
    TrainRequest,
)

DeviceChoice = Literal["cpu", "cuda", "auto"]
# Sequences of a prepared study: T2W, ADC and DWI, each on the T2W's slices.
SEQUENCES_PER_STUDY = len(PICAI_SUFFIXES)
WEIGHT_PATTERNS = ("config.json", "vocab.json", "*.safetensors")
# Options of the generator's requests that name files: those files are inputs, digested.
PATH_OPTIONS = ("real", "synthetic", "train", "generators", "progress")


@dataclass(frozen=True)
class ReproduceOptions:
    """What `python -m study reproduce` is asked: the PI-CAI folder (`data`, holding images/ and
    labels/ unless `images` and `labels` say otherwise), the output folder, the size, device,
    seed, the study's name, and which mask voxels make a lesion slice."""

    data: Path
    out: Path
    size: RunSize
    images: tuple[Path, ...] = ()
    labels: Path | None = None
    device: DeviceChoice = "auto"
    seed: int = 0
    study_name: str = DEFAULT_STUDY_NAME
    rule: LesionRule = field(default_factory=LesionRule)

    @property
    def image_folders(self) -> tuple[Path, ...]:
        return self.images or (self.data / "images",)

    @property
    def label_folder(self) -> Path:
        return self.labels or self.data / "labels"

    @property
    def generator_device(self) -> Device | None:
        """The generator's --device: None lets it take CUDA when it sees a GPU."""
        return None if self.device == "auto" else self.device

    @property
    def device_kind(self) -> str:
        """cpu or cuda, for the estimates ('auto' guessed from the NVIDIA driver's device)."""
        if self.device != "auto":
            return self.device
        return "cuda" if Path("/dev/nvidiactl").exists() else "cpu"


@dataclass(frozen=True)
class Layout:
    """Where each stage writes, under OUT."""

    out: Path

    def folder(self, stage: str) -> Path:
        return self.out / stage

    @property
    def prepared(self) -> Path:
        return self.out / "prepare" / "manifest.csv"

    @property
    def prepare_summary(self) -> Path:
        return self.out / "prepare" / "summary.json"

    @property
    def train_manifest(self) -> Path:
        return self.out / "split" / "train.csv"

    @property
    def heldout_manifest(self) -> Path:
        return self.out / "split" / "heldout.csv"

    @property
    def split_summary(self) -> Path:
        return self.out / "split" / "split.json"

    @property
    def checkpoint(self) -> Path:
        return self.out / "train" / "checkpoint"

    @property
    def synthetic(self) -> Path:
        return self.out / "sample" / MANIFEST

    def result(self, stage: str) -> Path:
        return self.out / stage / "result.json"

    @property
    def study(self) -> Path:
        return self.out / "study" / "study.json"

    @property
    def summary(self) -> Path:
        return self.out / "summary.html"

    @property
    def timings(self) -> Path:
        return self.out / "timings.json"


@dataclass(frozen=True)
class Reproduction:
    """What a run did: each stage's time, the summary and the study."""

    times: list[StageTime]
    summary: Path
    study: dict[str, Any]


def check_folders(options: ReproduceOptions) -> Path:
    """The resolved output folder, made and writable; ReproduceError naming the folder at fault."""
    if not options.data.is_dir():
        what = "is not a folder" if options.data.exists() else "does not exist"
        raise ReproduceError(
            f"{options.data}: {what}; --data names the PI-CAI folder (holding images/ and "
            "labels/, as `python -m synth phantom --layout picai` writes it)"
        )
    out = options.out.resolve()
    try:
        out.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=out):
            pass
    except OSError as error:
        raise ReproduceError(
            f"{options.out}: cannot be written ({error.strerror or error}); choose another --out"
        ) from error
    return out


def _json(path: Path) -> Any:
    return json.loads(path.read_text())


def _write_json(path: Path, value: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(value, indent=2, sort_keys=True) + "\n")


def _bar(total: float, unit: str, what: str) -> tqdm:
    return tqdm(total=total, unit=unit, desc=what, file=sys.stderr)


def _follow(bar: tqdm) -> Callable[[int, int], None]:
    """A progress callback that moves `bar` to `done`."""

    def progress(done: int, total: int) -> None:
        bar.total = total
        bar.n = done
        bar.refresh()

    return progress


def _request_options(request: Request) -> dict[str, Any]:
    """A request's options that are not files (its files are inputs, digested)."""
    return {k: v for k, v in request.to_json().items() if k not in PATH_OPTIONS}


def _files(folder: Path, *patterns: str) -> list[Path]:
    return sorted(path for pattern in patterns for path in folder.glob(pattern) if path.is_file())


def build_stages(options: ReproduceOptions, layout: Layout) -> list[Stage]:
    """The nine stages of a reproduction, in order."""
    size, seed = options.size, options.seed
    rule = options.rule
    rule_options = {
        "min_voxels": rule.min_voxels,
        "labels": None if rule.labels is None else sorted(rule.labels),
    }
    max_pixels = settings.max_image_pixels()
    out = layout.out

    @functools.cache
    def engine() -> Engine:
        return open_database()

    def digests(*paths: Path) -> dict[str, str]:
        return file_digests(paths, out)

    def split_counts() -> dict[str, Any]:
        return _json(layout.split_summary)

    def heldout_slices() -> int:
        return int(split_counts()["heldout"]["t2w_slices"]) * SEQUENCES_PER_STUDY

    def sample_files() -> list[Path]:
        return _files(layout.folder("sample"), "**/*.csv", "**/*.png")

    def checkpoint_sha256() -> str:
        shas = {row.get("checkpoint_sha256", "") for row in read_rows(layout.synthetic)}
        return shas.pop() if len(shas) == 1 else ""

    def pool() -> database.RunPool:
        return database.run_pool(tuple(split_counts()["heldout"]["patients"]), checkpoint_sha256())

    # 1. prepare ------------------------------------------------------------------------------

    def prepare_inputs() -> dict[str, str]:
        return {"data": folder_listing([*options.image_folders, options.label_folder]).digest}

    def prepare_work() -> Work:
        studies = sum(
            len(list(folder.glob("*/*_t2w.mha")))
            for folder in options.image_folders
            if folder.is_dir()
        )
        return Work(studies, "study", "prepare")

    def prepare(_resume: bool) -> None:
        listing = folder_listing([*options.image_folders, options.label_folder])
        with _bar(0, "study", "reading") as bar:
            summary = prepare_picai(
                options.image_folders,
                options.label_folder,
                layout.folder("prepare"),
                slices=DEFAULT_SLICES,
                # PI-CAI has no expert delineation for 205 of its 1,500 studies: leave them out.
                skip_incomplete=True,
                rule=rule,
                max_pixels=max_pixels,
                progress=_follow(bar),
            )
        document = summary.to_json() | {
            "data": {"digest": listing.digest, "files": listing.files, "bytes": listing.bytes},
            "images": [str(folder) for folder in options.image_folders],
            "labels": str(options.label_folder),
        }
        _write_json(layout.prepare_summary, document)

    # 2. split --------------------------------------------------------------------------------

    def split_work() -> Work:
        return Work(len(read_rows(layout.prepared)) // SEQUENCES_PER_STUDY, "study", "split")

    def split(_resume: bool) -> None:
        found = patient_slices(_json(layout.prepare_summary))
        chosen = split_patients(
            {patient: counts.lesion_slices for patient, counts in found.items()},
            heldout_share=size.heldout_share,
            minimum=size.folds,
            seed=seed,
        )
        for target, patients in (
            (layout.train_manifest, set(chosen.train)),
            (layout.heldout_manifest, set(chosen.heldout)),
        ):
            target.parent.mkdir(parents=True, exist_ok=True)
            write_rows(target, [layout.prepared], lambda row, p=patients: row["patient_id"] in p)
        _write_json(
            layout.split_summary,
            {
                "seed": seed,
                "heldout_share": size.heldout_share,
                "minimum_per_stratum": size.folds,
                "rule": rule_options,
                "data": _json(layout.prepare_summary)["data"]["digest"],
                "train": side_summary(chosen.train, found),
                "heldout": side_summary(chosen.heldout, found),
            },
        )

    # 3. train --------------------------------------------------------------------------------

    train_settings = replace(size.train, seed=seed)
    # torch.compile pays off over a long run on a GPU only (README: 1.7x on an H100).
    compile_unet = options.device == "cuda" and size.name == "full"

    def train_request(resume: bool) -> TrainRequest:
        return TrainRequest.from_settings(
            replace(train_settings, compile=compile_unet),
            manifest=layout.train_manifest,
            out=layout.checkpoint,
            device=options.generator_device,
            resume=resume,
            progress="jsonl",
        )

    def train(resume: bool) -> None:
        with _bar(train_settings.steps, "step", "train") as bar:
            run_request(train_request(resume), _follow(bar))

    train_kind = (
        f"train/{options.device_kind}/{train_settings.model}@{train_settings.size}"
        f"/batch{train_settings.batch}"
    )

    # 4. sample -------------------------------------------------------------------------------

    runs = seed_runs(SYNTHETIC_PER_CELL)
    made = images_of(runs)
    # A trained generator samples with the defaults unless told otherwise.
    sample_steps = size.sample_steps or DEFAULT_SAMPLING.steps

    def sample(_resume: bool) -> None:
        requests = sample_requests(
            runs,
            checkpoint=layout.checkpoint,
            out=layout.folder("sample"),
            seed=seed,
            steps=size.sample_steps,
            device=options.generator_device,
        )
        with _bar(sum(made.values()), "image", "sample") as bar:
            before = 0
            for run, request in zip(runs, requests, strict=True):

                def progress(done: int, total: int, before: int = before, n: int = made[run.name]):
                    bar.n = before + round(n * done / max(total, 1))
                    bar.refresh()

                run_request(request, progress)
                before += made[run.name]
        write_rows(layout.synthetic, [request.out / MANIFEST for request in requests])

    # 5. evaluate -----------------------------------------------------------------------------

    evaluate_request = EvaluateRequest(
        real=layout.heldout_manifest,
        synthetic=layout.synthetic,
        train=layout.train_manifest,
        json=True,
        size=size.evaluate_size,
        lesion_size=size.evaluate_lesion_size,
        seed=seed,
        folds=size.evaluate_folds,
        epochs=size.evaluate_epochs,
        progress="jsonl",
    )

    def evaluate(_resume: bool) -> None:
        with _bar(0, "epoch", "evaluate") as bar:
            result = run_request(evaluate_request, _follow(bar))
        _write_json(layout.result("evaluate"), json.loads(result))

    # 6. augment ------------------------------------------------------------------------------

    augment_request = AugmentRequest(
        real=layout.heldout_manifest,
        synthetic=layout.synthetic,
        generators=layout.checkpoint,
        folds=size.folds,
        quick=size.augment_quick,
        seed=seed,
        json=True,
        progress="jsonl",
    )
    augment_epochs, _ = augment_request.classifier_training()

    def augment(_resume: bool) -> None:
        with _bar(0, "classifier", "augment") as bar:
            result = run_request(augment_request, _follow(bar))
        _write_json(layout.result("augment"), json.loads(result))

    # 7. import -------------------------------------------------------------------------------

    identity = database.database_identity()

    def import_(_resume: bool) -> None:
        results = database.import_images(
            engine(), {"held-out real": layout.heldout_manifest, "synthetic": layout.synthetic}
        )
        expected = {
            "real": sum(results["held-out real"].values()),
            "synthetic": sum(results["synthetic"].values()),
        }
        _write_json(layout.result("import"), {"imported": results, "expected": expected})

    def imported() -> bool:
        return database.images_present(engine(), pool(), _json(layout.result("import"))["expected"])

    # 8. study --------------------------------------------------------------------------------

    def study(_resume: bool) -> None:
        made_study = database.seed_study(
            engine(),
            name=options.study_name,
            seed=seed,
            pool=pool(),
            description=(
                f"Made by `{database.ACTOR}` ({size.name} size) from {options.data}: the "
                "held-out patients' real slices and the synthetic images of the generator "
                f"trained on the others (checkpoint {checkpoint_sha256()[:12]})."
            ),
        )
        _write_json(layout.study, made_study)

    # 9. summary ------------------------------------------------------------------------------

    def summarise(_resume: bool) -> None:
        records = Records(out)
        write_summary(
            layout.summary,
            SummaryInputs(
                size=size.name,
                prepared=_json(layout.prepare_summary),
                split=_json(layout.split_summary),
                checkpoint=_json(layout.checkpoint / "config.json"),
                synthetic=read_rows(layout.synthetic),
                evaluation=_json(layout.result("evaluate")),
                augmentation=_json(layout.result("augment")),
                study=_json(layout.study),
                records=[records.read(stage.name) or {} for stage in stages[:-1]],
            ),
        )

    stages = [
        Stage(
            name="prepare",
            what="read the PI-CAI folder into a manifest",
            options={
                "images": [str(f.resolve()) for f in options.image_folders],
                "labels": str(options.label_folder.resolve()),
                "slices": DEFAULT_SLICES,
                "rule": rule_options,
            },
            inputs=prepare_inputs,
            outputs=lambda: [layout.prepared, layout.prepare_summary],
            work=prepare_work,
            run=prepare,
            folder=layout.folder("prepare"),
        ),
        Stage(
            name="split",
            what=f"hold out {size.heldout_share:.0%} of the patients, by lesion",
            options={
                "seed": seed,
                "heldout_share": size.heldout_share,
                "minimum": size.folds,
            },
            inputs=lambda: digests(layout.prepared, layout.prepare_summary),
            outputs=lambda: [layout.train_manifest, layout.heldout_manifest, layout.split_summary],
            work=split_work,
            run=split,
            folder=layout.folder("split"),
        ),
        Stage(
            name="train",
            what=f"train the generator ({train_settings.model} preset) on the training patients",
            options=asdict(train_settings),
            inputs=lambda: digests(layout.train_manifest, layout.split_summary),
            outputs=lambda: [layout.checkpoint / "config.json"],
            work=lambda: Work(train_settings.steps, "step", train_kind),
            run=train,
            folder=layout.folder("train"),
            resumable=True,
        ),
        Stage(
            name="sample",
            what=f"make the seed study's {sum(made.values())} synthetic images",
            options={
                "runs": [asdict(run) for run in runs],
                "seed": seed,
                "steps": size.sample_steps,
            },
            inputs=lambda: digests(*_files(layout.checkpoint, *WEIGHT_PATTERNS)),
            outputs=lambda: [layout.synthetic],
            work=lambda: Work(
                sum(made.values()) * sample_steps,
                "image step",
                f"sample/{options.device_kind}/{train_settings.model}@{train_settings.size}",
            ),
            run=sample,
            folder=layout.folder("sample"),
        ),
        Stage(
            name="evaluate",
            what="check realism by machine (C2ST, memorisation, fidelity)",
            options=_request_options(evaluate_request),
            inputs=lambda: digests(
                layout.heldout_manifest,
                layout.train_manifest,
                layout.split_summary,
                *sample_files(),
            ),
            outputs=lambda: [layout.result("evaluate")],
            work=lambda: Work(
                (heldout_slices() + sum(made.values()))
                * size.evaluate_epochs
                * (size.evaluate_folds + 2),
                "image epoch",
                f"evaluate/{size.evaluate_size}px",
            ),
            run=evaluate,
            folder=layout.folder("evaluate"),
        ),
        Stage(
            name="augment",
            what="train a lesion classifier on real, and on real + synthetic images",
            options=_request_options(augment_request),
            inputs=lambda: digests(
                layout.heldout_manifest,
                layout.split_summary,
                layout.checkpoint / "config.json",
                *sample_files(),
            ),
            outputs=lambda: [layout.result("augment")],
            work=lambda: Work(
                heldout_slices() * augment_epochs * 2 * (size.folds - 1),
                "image epoch",
                f"augment/{size.name}",
            ),
            run=augment,
            folder=layout.folder("augment"),
        ),
        Stage(
            name="import",
            what="import the held-out real and the synthetic images",
            options={"database": identity},
            inputs=lambda: digests(layout.heldout_manifest, layout.split_summary, *sample_files()),
            outputs=lambda: [layout.result("import")],
            work=lambda: Work(heldout_slices() + sum(made.values()), "slice", "import"),
            run=import_,
            folder=layout.folder("import"),
            present=imported,
        ),
        Stage(
            name="study",
            what="create and open the seed-protocol study",
            options={"database": identity, "name": options.study_name, "seed": seed},
            inputs=lambda: digests(layout.split_summary, layout.synthetic, layout.result("import")),
            outputs=lambda: [layout.study],
            work=lambda: Work(1, "study", "study"),
            run=study,
            folder=layout.folder("study"),
            present=lambda: database.study_present(engine(), _json(layout.study)),
        ),
        Stage(
            name="summary",
            what="write the machine results as HTML",
            options={},
            inputs=lambda: {
                **digests(
                    layout.prepare_summary,
                    layout.split_summary,
                    layout.checkpoint / "config.json",
                    layout.synthetic,
                    layout.result("evaluate"),
                    layout.result("augment"),
                    layout.study,
                    *[Records(out).path(stage.name) for stage in stages[:-1]],
                ),
                "template": file_sha256(TEMPLATE_PATH),
            },
            outputs=lambda: [layout.summary],
            work=lambda: Work(1, "page", "summary"),
            run=summarise,
            folder=None,
        ),
    ]
    return stages


def reproduce(options: ReproduceOptions) -> Reproduction:
    """Run (or skip) every stage; write OUT/timings.json."""
    layout = Layout(check_folders(options))
    times = run_stages(build_stages(options, layout), Records(layout.out))
    _write_json(
        layout.timings,
        {
            "finished": datetime.now(UTC).isoformat(timespec="seconds"),
            "size": options.size.name,
            "device": options.device,
            "cpus": os.cpu_count(),
            "stages": [item.to_json() for item in times],
        },
    )
    return Reproduction(times, layout.summary, _json(layout.study))
