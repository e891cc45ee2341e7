"""`python -m study reproduce`: the seed study's evaluation on a PI-CAI folder, end to end.

    python -m study reproduce --data picai/ --out reproduce/ --device cuda
    python -m study reproduce --data picai/ --out quick/ --quick

Prepare, split the patients, train the generator, sample the seed study's synthetic sets,
evaluate, run the augmentation experiment, import, open the seed-protocol study, and write
OUT/summary.html. Running it again skips every stage whose inputs did not change.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from study.imaging.commandline import add_lesion_rule_options, whole_number
from study.reproduce import DEFAULT_STUDY_NAME


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "reproduce",
        help="the seed study's evaluation on a PI-CAI folder, end to end (resumable)",
        description=(
            "Prepare a PI-CAI folder, split its patients (generator training / held out, "
            "stratified by lesion), train the generator, sample the seed study's synthetic "
            "sets (32 T2W + 32 ADC singles and 32 T2W-DWI pairs with the held-out real "
            "images), evaluate them by machine, run the augmentation experiment, import the "
            "images, open the seed-protocol study for readers, and write OUT/summary.html. "
            "Each stage is skipped when its outputs exist and its inputs and options did not "
            "change; stage times go to OUT/timings.json."
        ),
    )
    parser.add_argument(
        "--data",
        required=True,
        type=Path,
        metavar="DIR",
        help="the PI-CAI folder: images/ (patient folders) and labels/ (picai_labels), as "
        "`python -m synth phantom --layout picai` writes it",
    )
    parser.add_argument(
        "--out", required=True, type=Path, metavar="DIR", help="folder for every stage's output"
    )
    parser.add_argument(
        "--images",
        type=Path,
        action="append",
        metavar="DIR",
        help="folder of patient folders instead of DATA/images; repeat it for PI-CAI's five folds",
    )
    parser.add_argument(
        "--labels", type=Path, metavar="DIR", help="the picai_labels folder (default: DATA/labels)"
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help="a tiny generator and small classifiers: minutes on a CPU, for tests (not a result)",
    )
    parser.add_argument(
        "--device",
        choices=("cpu", "cuda", "auto"),
        default="auto",
        help="where the generator trains and samples (default: auto, CUDA when there is a GPU)",
    )
    parser.add_argument(
        "--seed",
        type=whole_number(0),
        default=0,
        metavar="S",
        help="seed of every stage (default: 0)",
    )
    parser.add_argument(
        "--study-name",
        type=_name,
        default=DEFAULT_STUDY_NAME,
        metavar="NAME",
        help=f"name of the reader study (default: {DEFAULT_STUDY_NAME})",
    )
    add_lesion_rule_options(parser)
    parser.set_defaults(func=run)


def _name(text: str) -> str:
    if not text.strip():
        raise argparse.ArgumentTypeError("a study needs a name")
    return text.strip()


def run(args: argparse.Namespace) -> int:
    # Imported here: `--help` should not pay for the database, imaging and report libraries.
    from study.imaging.lesions import LesionRule
    from study.reproduce.pipeline import ReproduceOptions, reproduce
    from study.reproduce.sizes import SIZES
    from study.reproduce.stages import times_table

    result = reproduce(
        ReproduceOptions(
            data=args.data,
            out=args.out,
            size=SIZES["quick" if args.quick else "full"],
            images=tuple(args.images or ()),
            labels=args.labels,
            device=args.device,
            seed=args.seed,
            study_name=args.study_name,
            rule=LesionRule(args.min_lesion_voxels, args.lesion_labels),
        )
    )
    print(times_table(result.times))
    study = result.study
    print(
        f"study '{study['name']}' (id {study['id']}) is {study['status']}: "
        f"{study['cases_per_block']} cases per block; add readers on the Readers page"
    )
    print(f"summary: {result.summary}")
    return 0
