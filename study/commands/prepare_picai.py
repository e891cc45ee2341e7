"""`python -m study prepare-picai`: a manifest from the public PI-CAI dataset (or ProstateX).

    python -m study prepare-picai --images picai/images --labels picai_labels --out picai
    python -m study prepare-picai --dicom --images prostatex --out prostatex

Writes OUT/manifest.csv (T2W, ADC and DWI rows of each study, the label volume as their mask)
and prints a summary: patients, studies, and slices and lesion slices per sequence. Then
`python -m study import OUT/manifest.csv`.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from study.imaging.commandline import add_lesion_rule_options


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "prepare-picai",
        help="write a manifest for the public PI-CAI dataset (or ProstateX DICOM folders)",
        description=(
            "Read the public PI-CAI layout, IMAGES/<patient_id>/<patient_id>_<study_id>_"
            "{t2w,adc,hbv}.mha and LABELS/csPCa_lesion_delineations/<subdir>/<patient_id>_"
            "<study_id>.nii.gz (and LABELS/clinical_information/marksheet.csv when present), "
            "or with --dicom ProstateX-style folders IMAGES/<patient>/[<study>/]<series>/; "
            "write OUT/manifest.csv for `python -m study import` and print a summary. Every "
            "file is read first; nothing is written when any is wrong."
        ),
    )
    parser.add_argument(
        "--images",
        required=True,
        type=Path,
        action="append",
        metavar="DIR",
        help="folder of patient folders; repeat it for several (e.g. PI-CAI's five folds)",
    )
    parser.add_argument(
        "--labels",
        type=Path,
        metavar="DIR",
        help="PI-CAI: the picai_labels folder (required); --dicom: optional folder of "
        "<patient>.nii.gz label volumes",
    )
    parser.add_argument(
        "--out",
        required=True,
        type=Path,
        metavar="DIR",
        help="folder for manifest.csv; paths inside it are written relative (as the app's "
        "upload needs), others absolute",
    )
    parser.add_argument(
        "--labels-subdir",
        metavar="SUBDIR",
        help="label set under LABELS/csPCa_lesion_delineations/ "
        "(default: human_expert/resampled; e.g. AI/Bosma22a)",
    )
    parser.add_argument(
        "--dicom",
        action="store_true",
        help="IMAGES holds ProstateX-style DICOM series folders, named t2w/t2...tra, adc and "
        "hbv/...calc_bval",
    )
    parser.add_argument(
        "--slices",
        metavar="SPEC",
        help="T2W slices of each study: all, a:b or central:N (default: central:10, the "
        "slices around the centre of the field of view, where the prostate lies)",
    )
    parser.add_argument(
        "--skip-incomplete",
        action="store_true",
        help="leave out (and list) studies that lack a sequence, label or marksheet row, "
        "instead of refusing them",
    )
    # Counted as `python -m study import` will count them: pass it the same two options.
    add_lesion_rule_options(parser, same_as="study import")
    parser.add_argument("--json", action="store_true", help="print the summary as one JSON object")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    # Imported here: `--help` should not pay for numpy and the imaging libraries.
    from tqdm import tqdm

    from study import settings
    from study.imaging.lesions import LesionRule
    from study.picai import prepare_picai

    bar: tqdm | None = None

    def progress(done: int, total: int) -> None:
        nonlocal bar
        if bar is None:
            bar = tqdm(total=total, desc="reading", unit="study", file=sys.stderr)
        bar.n = done
        bar.refresh()

    try:
        summary = prepare_picai(
            args.images,
            args.labels,
            args.out,
            dicom=args.dicom,
            labels_subdir=args.labels_subdir,
            slices=args.slices,
            skip_incomplete=args.skip_incomplete,
            rule=LesionRule(args.min_lesion_voxels, args.lesion_labels),
            max_pixels=settings.max_image_pixels(),
            progress=progress,
        )
    finally:
        if bar is not None:
            bar.close()
    print(json.dumps(summary.to_json()) if args.json else summary.text())
    return 0
