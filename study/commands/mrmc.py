"""`python -m study mrmc`: Obuchowski-Rockette MRMC analysis of a long-format CSV.

    python -m study mrmc --csv ratings.csv --metric auc --json
    python -m study mrmc --csv ratings.csv --metric sensitivity --threshold 3
    python -m study mrmc --csv ratings.csv --metric sensitivity --threshold 3 --jackknife all

The CSV has the columns reader, treatment, case, truth (1 positive, 0 negative) and rating;
other columns are ignored. The JSON object is described in design.md ("Interfaces"), plus
"jackknife" and "n_jackknife" (the cases left out) and "reason" where an interval is missing.
`--jackknife varying` (default) leaves out only the cases that can change the figure of merit
(the positives for sensitivity, the negatives for specificity, every case for AUC); `all`
leaves out every case, as OR-DBM MRMC does.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from study.stats import MRMC_METRICS, StatsError

# --jackknife choices and the option of `obuchowski_rockette` each names.
JACKKNIFE = {"varying": "varying_cases", "all": "all_cases"}


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
        result = obuchowski_rockette(
            data, args.metric, threshold=args.threshold, jackknife=JACKKNIFE[args.jackknife]
        )
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
    parser.add_argument(
        "--jackknife",
        choices=tuple(JACKKNIFE),
        default="varying",
        help="cases the jackknife leaves out: varying (default) only those that can change the "
        "figure of merit (positives for sensitivity, negatives for specificity, all for auc); "
        "all every case, as OR-DBM MRMC",
    )
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.set_defaults(func=run)
