"""Build the bundled demo: the demo generator and the images of the demo study.

Phases, each skipped when its output exists, so the build resumes where it stopped:
1. a training cohort of phantom patients (seed 1000), in the work folder;
2. the "default" model trained on it (resumable: `max_minutes` per run);
3. the demo generator: the EMA weights in float16, in `out/checkpoint`;
   3b. its few-step student (`synth.distill`), in `out/student`, remade when the generator changes;
4. held-out phantom patients (seed 7) playing the acquired images, in `out/real`;
5. the generator's images, in `out/synthetic`: T2W and ADC with and without lesion from text
   prompts, and DWI generated from the synthetic T2W images (paired T2W-DWI cases).
"""

from __future__ import annotations

import csv
import shutil
from pathlib import Path

from study.imaging.manifest import write_manifest
from synth.checkpoint import (
    checkpoint_sha256,
    load_checkpoint,
    load_training_state,
    read_config,
    save_checkpoint,
)
from synth.contract import DemoAssetsRequest
from synth.distill import DistillConfig, distill
from synth.phantom import write_phantom
from synth.progress import make_progress
from synth.sample import write_samples
from synth.train import TrainConfig, train

TRAIN_SEED = 1000
DEMO_REAL_SEED = 7
TEXT_GROUPS = (
    ("t2w-lesion", "A T2 image of a prostate with a lesion"),
    ("t2w-none", "A T2 image of a prostate with no lesion"),
    ("adc-lesion", "ADC image of a prostate with a lesion"),
    ("adc-none", "ADC image of a prostate with no lesion"),
)
# DWI made from the synthetic T2W of the same lesion status: paired synthetic cases.
PAIRED_GROUPS = (
    ("dwi-lesion", "A DWI image of a prostate with a lesion", "t2w-lesion"),
    ("dwi-none", "A DWI image of a prostate with no lesion", "t2w-none"),
)


def training_cohort(plan: DemoAssetsRequest) -> Path:
    manifest = plan.work / "train" / "manifest.csv"
    if not manifest.is_file():
        shutil.rmtree(plan.work / "train", ignore_errors=True)
        write_phantom(
            plan.work / "train",
            patients=plan.train_patients,
            seed=TRAIN_SEED,
            size=plan.size,
            progress=plan.progress == "tqdm",
        )
    return manifest


def trained_steps(checkpoint: Path) -> int:
    state = load_training_state(checkpoint)
    return int(state["step"]) if state else 0


def train_generator(plan: DemoAssetsRequest, manifest: Path) -> bool:
    """Train, or continue training; True once the planned steps are done."""
    checkpoint = plan.work / "checkpoint"
    if trained_steps(checkpoint) < plan.steps:
        train(
            TrainConfig(
                out=checkpoint,
                manifest=manifest,
                steps=plan.steps,
                batch=plan.batch,
                lr=plan.lr,
                warmup_steps=plan.warmup,
                lesion_share=plan.lesion_share,
                device=plan.device,  # type: ignore[arg-type]
                resume=(checkpoint / "config.json").exists(),
                model=plan.model,
                size=plan.size,
                max_minutes=plan.max_minutes,
                compile=plan.compile,
            ),
            progress=make_progress(plan.progress, plan.steps, "step", "training"),
        )
    return trained_steps(checkpoint) >= plan.steps


def export_demo_checkpoint(plan: DemoAssetsRequest) -> Path:
    """The trained EMA weights in float16: small enough to ship in the repository."""
    target = plan.out / "checkpoint"
    generator = load_checkpoint(plan.work / "checkpoint")
    shutil.rmtree(target, ignore_errors=True)
    save_checkpoint(
        target,
        generator.network.state_dict(),
        generator.config,
        generator.vocabulary,
        generator.training,
        half=True,
    )
    return target


def demo_student(plan: DemoAssetsRequest, teacher: Path) -> Path:
    """The teacher's few-step student; kept while it was distilled from this very teacher."""
    target = plan.out / "student"
    teacher_sha256 = checkpoint_sha256(teacher)
    if (target / "config.json").is_file() and (
        read_config(target)["training"].get("distilled_from") == teacher_sha256
    ):
        return target
    shutil.rmtree(target, ignore_errors=True)
    work = plan.work / "student"
    shutil.rmtree(work, ignore_errors=True)
    distill(
        DistillConfig(
            teacher=teacher,
            manifest=plan.work / "train" / "manifest.csv",
            out=work,
            student_steps=plan.student_steps,
            trajectories=plan.distill_trajectories,
            steps=plan.distill_steps,
            batch=plan.batch,
            lr=1e-4,
            device=plan.device,  # type: ignore[arg-type]
        ),
        make_progress(plan.progress, plan.distill_trajectories, "trajectory", "teacher"),
        make_progress(plan.progress, plan.distill_steps, "step", "student"),
    )
    shutil.move(work, target)
    return target


def demo_real_images(plan: DemoAssetsRequest) -> Path:
    """Held-out phantom patients; their slices (not the volumes) ship with the demo."""
    real = plan.out / "real"
    shutil.rmtree(real, ignore_errors=True)
    manifest = write_phantom(real, patients=plan.demo_patients, seed=DEMO_REAL_SEED, size=plan.size)
    shutil.rmtree(real / "volumes")
    return manifest


def demo_synthetic_images(plan: DemoAssetsRequest, checkpoint: Path) -> Path:
    """The generator's images of every group, under one manifest with relative paths."""
    synthetic = plan.out / "synthetic"
    shutil.rmtree(synthetic, ignore_errors=True)
    generator = load_checkpoint(checkpoint, plan.device)
    manifests: dict[str, Path] = {}
    seed = 1
    for name, prompt in TEXT_GROUPS:
        manifests[name] = write_samples(
            generator, prompt, plan.per_group, synthetic / name, seed=seed, device=plan.device
        )
        seed += plan.per_group
    for name, prompt, condition in PAIRED_GROUPS:
        manifests[name] = write_samples(
            generator,
            prompt,
            1,
            synthetic / name,
            seed=seed,
            device=plan.device,
            condition_manifest=manifests[condition],
        )
        seed += plan.per_group
    return merge_manifests(manifests, synthetic / "manifest.csv")


def merge_manifests(parts: dict[str, Path], target: Path) -> Path:
    """One manifest whose paths are relative to `target`'s folder."""
    rows: list[dict[str, object]] = []
    for manifest in parts.values():
        # The cells are copied as the generator wrote them, not as the reader canonicalises them.
        with manifest.open(newline="", encoding="utf-8") as handle:
            prefix = manifest.parent.relative_to(target.parent)
            rows += [{**row, "path": prefix / row["path"]} for row in csv.DictReader(handle)]
    return write_manifest(target, rows)


def build_demo_assets(plan: DemoAssetsRequest) -> bool:
    """Run the phases that are not done yet (the command's request, its device resolved);
    False when training paused (run again)."""
    if not train_generator(plan, training_cohort(plan)):
        return False
    checkpoint = export_demo_checkpoint(plan)
    demo_student(plan, checkpoint)
    demo_real_images(plan)
    demo_synthetic_images(plan, checkpoint)
    return True
