"""Realism of a generator on held-out phantom patients: `synth evaluate` on a matched pool.

    python benchmarks/realism.py --checkpoint data/demo/checkpoint \
        --train build/demo/train/manifest.csv

Writes held-out phantom patients (seed 7, never trained on) at the checkpoint's size, then as
many synthetic images as real ones in every sequence x lesion cell: T2W and ADC from their text
prompts, DWI from the real T2W slice of the same patient and slice (paired synthesis). Then runs
the classifier two-sample test, the memorisation check (with --train) and the conditioning
fidelity checks of `python -m synth evaluate`, and prints one JSON object with the sampling
settings and times beside the evaluation. Run by hand (it is not part of `make bench`: on a
CPU the default model needs hours for a full pool; use a GPU or a few-step student).
"""

from __future__ import annotations

import argparse
import csv
import json
import shutil
import sys
import time
from collections import Counter
from pathlib import Path

import torch

from synth.checkpoint import load_checkpoint
from synth.demo_assets import DEMO_REAL_SEED, PAIRED_GROUPS, TEXT_GROUPS, merge_manifests
from synth.evaluate import evaluate
from synth.phantom import write_phantom
from synth.sample import DEFAULT_STEPS, write_samples
from synth.text import parse_prompt
from synth.train import describe_device, resolve_device

# The demo's prompts, by (sequence, lesion) as a manifest spells them.
PROMPTS = {
    tuple(value.value for value in parse_prompt(prompt)): prompt
    for _, prompt, *_ in (*TEXT_GROUPS, *PAIRED_GROUPS)
}


def condition_manifest(real: Path, lesion: str, target: Path) -> Path:
    """The real T2W rows of one lesion status, paths relative to `target`'s folder."""
    with real.open(newline="") as handle:
        reader = csv.DictReader(handle)
        columns = list(reader.fieldnames or [])
        rows = [row for row in reader if row["sequence"] == "T2W" and row["lesion"] == lesion]
    with target.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=columns, lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
    return target


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", type=Path, required=True)
    parser.add_argument("--train", type=Path, help="the generator's training manifest")
    parser.add_argument("--work", type=Path, default=Path("build/realism"))
    parser.add_argument("--patients", type=int, default=40, help="held-out phantom patients")
    parser.add_argument("--device", choices=("cpu", "cuda"))
    parser.add_argument("--sampler", choices=tuple(DEFAULT_STEPS), default="dpmpp")
    parser.add_argument("--steps", type=int)
    parser.add_argument("--guidance", type=float, default=3.0)
    parser.add_argument("--batch", type=int, default=256, help="images per network call (CUDA)")
    parser.add_argument("--epochs", type=int, help="classifier epochs (default: evaluate's)")
    args = parser.parse_args(argv)

    device = resolve_device(args.device)
    generator = load_checkpoint(args.checkpoint, device)
    size = generator.config.image_size
    shutil.rmtree(args.work, ignore_errors=True)
    real = write_phantom(
        args.work / "real", patients=args.patients, seed=DEMO_REAL_SEED, size=size, progress=False
    )
    with real.open(newline="") as handle:
        cells = Counter((row["sequence"], row["lesion"]) for row in csv.DictReader(handle))

    started = time.perf_counter()
    parts: dict[str, Path] = {}
    seed = 1
    for (sequence, lesion), count in sorted(cells.items()):
        name = f"{sequence.lower()}-{lesion}"
        paired = sequence == "DWI"
        parts[name] = write_samples(
            generator,
            PROMPTS[sequence, lesion],
            1 if paired else count,
            args.work / "synthetic" / name,
            seed=seed,
            sampler=args.sampler,
            steps=args.steps,
            guidance=args.guidance,
            device=device,
            batch_size=args.batch,
            condition_manifest=(
                condition_manifest(real, lesion, real.parent / f"t2w-{lesion}.csv")
                if paired
                else None
            ),
        )
        seed += count
    if device == "cuda":
        torch.cuda.synchronize()
    sampling_seconds = time.perf_counter() - started
    synthetic = merge_manifests(parts, args.work / "synthetic" / "manifest.csv")

    options = {} if args.epochs is None else {"epochs": args.epochs}
    started = time.perf_counter()
    result = evaluate(real, synthetic, args.train, **options)
    report = {
        "checkpoint_sha256": generator.sha256,
        "device": describe_device(torch.device(device)),
        "sampler": args.sampler,
        "steps": args.steps or DEFAULT_STEPS[args.sampler],
        "guidance": args.guidance,
        "cells": {f"{s}/{lesion}": n for (s, lesion), n in sorted(cells.items())},
        "sampling_seconds": round(sampling_seconds, 2),
        "evaluate_seconds": round(time.perf_counter() - started, 2),
        **result.to_json(),
    }
    print(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
