"""`python -m study froc`: FROC figures of merit and their Obuchowski-Rockette analysis.

    python -m study froc --marks marks.csv --truth truth.csv --fom wAFROC --json

`marks.csv` holds one row per mark (treatment,reader,case,kind,lesion,rating; kind LL on a
lesion, NL elsewhere) and `truth.csv` one row per case (case,truth,lesions,weights); see
`study.stats.froc`. Reproduces RJafroc 2.1.3's figures of merit and OR analysis.
"""

from __future__ import annotations

import argparse
import json

from study.stats import FROC_FOMS, StatsError


def run(args: argparse.Namespace) -> int:
    # Imported here: `--help` should not pay for numpy, pandas and scipy.
    from study.stats.froc import read_froc
    from study.stats.froc_analysis import format_froc_report, froc_analysis, froc_json
    from study.stats.froc_foms import fom_name

    fom = fom_name(args.fom)
    data = read_froc(args.marks, args.truth)
    try:
        result = froc_analysis(data, fom)
    except StatsError as error:
        raise StatsError(f"{args.marks}, {args.truth}: {error}") from error
    if args.json:
        print(json.dumps(froc_json(result), allow_nan=False))
    else:
        print(format_froc_report(result, source=f"{args.marks}, {args.truth}"))
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "froc",
        help="FROC figures of merit (wAFROC, ...) and their Obuchowski-Rockette analysis",
        description=(
            "Figures of merit of a free-response (FROC) reader study per treatment and reader, "
            "with jackknife covariances and the Obuchowski-Rockette test (Hillis ddf), as "
            "RJafroc's St(method = 'OR')."
        ),
    )
    parser.add_argument(
        "--marks",
        required=True,
        metavar="FILE",
        help="CSV with one row per mark: treatment,reader,case,kind,lesion,rating "
        "(kind LL on lesion number `lesion`, NL elsewhere with `lesion` empty)",
    )
    parser.add_argument(
        "--truth",
        required=True,
        metavar="FILE",
        help="CSV with one row per case: case,truth,lesions,weights (truth 1 = abnormal; "
        "weights ';'-separated, summing to 1, empty for equal weights)",
    )
    parser.add_argument(
        "--fom",
        default="wAFROC",
        metavar="NAME",
        help=f"figure of merit: {', '.join(FROC_FOMS)} (default wAFROC; JAFROC names accepted)",
    )
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.set_defaults(func=run)
