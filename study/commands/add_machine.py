"""`python -m study add-machine`: a machine's per-image scores as a reader of a study.

    python -m study add-machine --study "My VTT" --scores c2st-scores.csv --name "C2ST CNN"

The scores file has the columns case_ref and score (optionally source_sha256), as
`python -m synth evaluate --scores` writes; see study.machine_reader for how rows are matched
to the study's images and how the machine's calls are made.
"""

from __future__ import annotations

import argparse
from pathlib import Path


def run(args: argparse.Namespace) -> int:
    # Imported here: `--help` should not pay for the database.
    from study.db import open_database
    from study.machine_reader import add_machine_reader
    from study.reports import find_study

    engine = open_database()
    study = find_study(engine, args.study)
    result = add_machine_reader(engine, study.id, args.scores, args.name, threshold=args.threshold)
    print(
        f"machine reader '{result.alias}' added to study '{study.name}': {result.cases} cases "
        f"scored from {result.rows_used} row(s) of {args.scores} ({result.rows_ignored} row(s) "
        "name no image of the study)"
    )
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "add-machine",
        help="import a machine's per-image scores as a reader of a study",
        description="Add a reader marked as a machine whose answers are its per-image scores "
        "(higher: more likely synthetic): its call is 'synthetic' at or above --threshold, and "
        "its scores give its ROC AUC. The Results page compares the readers with it.",
    )
    parser.add_argument(
        "--study", required=True, metavar="ID_OR_NAME", help="the study's id or name"
    )
    parser.add_argument(
        "--scores",
        required=True,
        type=Path,
        metavar="CSV",
        help="columns case_ref,score (and optionally source_sha256), e.g. from "
        "`python -m synth evaluate --scores`",
    )
    parser.add_argument("--name", required=True, help="the machine reader's name")
    parser.add_argument(
        "--threshold",
        type=float,
        default=0.5,
        help="a score at or above this is a 'synthetic' call (default 0.5)",
    )
    parser.set_defaults(func=run)
