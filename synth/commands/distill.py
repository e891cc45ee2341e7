"""`python -m synth distill`: a few-step student of a trained generator, fast on a CPU."""

from __future__ import annotations

import argparse
from pathlib import Path


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "distill",
        help="distil a trained generator into a few-step student",
        description=(
            "Sample the teacher's guided DPM-Solver++ trajectories for prompts and T2W "
            "conditions drawn from its training manifest, then train a student (initialised "
            "with the teacher's weights) to follow them in a few unguided DDIM steps. The "
            "student checkpoint records the sampler, steps and guidance it was made for."
        ),
    )
    parser.add_argument("--teacher", type=Path, required=True, help="teacher checkpoint folder")
    parser.add_argument(
        "--manifest", type=Path, required=True, help="the teacher's training manifest"
    )
    parser.add_argument("--out", type=Path, required=True, help="student checkpoint folder (new)")
    parser.add_argument("--student-steps", type=int, default=4, help="DDIM steps (default 4)")
    parser.add_argument(
        "--teacher-steps", type=int, default=20, help="DPM-Solver++ steps (default 20)"
    )
    parser.add_argument("--guidance", type=float, default=3.0, help="teacher guidance (default 3)")
    parser.add_argument(
        "--trajectories", type=int, default=4096, help="teacher samples (default 4096)"
    )
    parser.add_argument(
        "--steps", type=int, default=2000, help="student training steps (default 2000)"
    )
    parser.add_argument("--batch", type=int, default=64, help="student batch (default 64)")
    parser.add_argument("--lr", type=float, default=3e-5, help="AdamW learning rate (default 3e-5)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--device", choices=("cpu", "cuda"), help="default: cuda when available, else cpu"
    )
    parser.add_argument(
        "--max-minutes", type=float, help="stop training the student after this long in all"
    )
    parser.add_argument("--progress", choices=("tqdm", "jsonl"), default="tqdm")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from synth.distill import DistillConfig, distill
    from synth.progress import make_progress

    config = DistillConfig(
        teacher=args.teacher,
        manifest=args.manifest,
        out=args.out,
        student_steps=args.student_steps,
        trajectories=args.trajectories,
        teacher_steps=args.teacher_steps,
        guidance=args.guidance,
        steps=args.steps,
        batch=args.batch,
        lr=args.lr,
        seed=args.seed,
        device=args.device,
        max_minutes=args.max_minutes,
    )
    out = distill(
        config,
        make_progress(args.progress, args.trajectories, "trajectory", "teacher"),
        make_progress(args.progress, args.steps, "step", "student"),
    )
    print(f"saved the {args.student_steps}-step student to {out}")
    return 0
