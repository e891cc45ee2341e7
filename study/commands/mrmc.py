"""`python -m study mrmc`: Obuchowski-Rockette MRMC analysis of a long-format CSV.

    python -m study mrmc --csv ratings.csv --metric auc --json
    python -m study mrmc --csv ratings.csv --metric sensitivity --threshold 3

The CSV has the columns reader, treatment, case, truth (1 positive, 0 negative) and rating;
other columns are ignored. The JSON object is described in design.md ("Interfaces").
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from study.stats import MRMC_METRICS, StatsError


def run(args: argparse.Namespace) -> int:
    source = Path(args.csv)
    if args.metric != "auc" and args.threshold is None:
        raise StatsError(
            f"{source}: --metric {args.metric} needs --threshold T (a rating >= T counts as "
            f"positive)"
        )
    if args.metric == "auc" and args.threshold is not None:
        raise StatsError(
            f"{source}: --threshold applies to --metric sensitivity or specificity, not auc"
        )
    # Imported here: `--help` should not pay for numpy, pandas and scipy.
    from study.stats.mrmc import format_report, obuchowski_rockette, read_mrmc_csv, result_json

    data = read_mrmc_csv(source)
    try:
        result = obuchowski_rockette(data, args.metric, threshold=args.threshold)
    except StatsError as error:
        raise StatsError(f"{source}: {error}") from error
    if args.json:
        print(json.dumps(result_json(result), allow_nan=False))
    else:
        print(format_report(result, source=str(source)))
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "mrmc",
        help="multi-reader multi-case (Obuchowski-Rockette) analysis of a ratings CSV",
        description=(
            "Obuchowski-Rockette analysis with jackknife covariances and Hillis degrees of "
            "freedom: random readers and cases, fixed readers, fixed cases. Reproduces "
            "OR-DBM MRMC 2.51."
        ),
    )
    parser.add_argument(
        "--csv",
        required=True,
        metavar="FILE",
        help="long-format CSV with columns reader,treatment,case,truth,rating "
        "(truth 1 = positive; extra columns ignored)",
    )
    parser.add_argument(
        "--metric", required=True, choices=MRMC_METRICS, help="figure of merit per reader"
    )
    parser.add_argument(
        "--threshold",
        type=float,
        metavar="T",
        help="for sensitivity and specificity: a rating >= T counts as positive",
    )
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.set_defaults(func=run)
