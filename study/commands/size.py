"""`python -m study size`: the readers and cases the next study needs, from a pilot.

    python -m study size --pilot "My VTT" --effect 0.1 --power 0.8 --json
    python -m study size --pilot ratings.csv --effect 0.05 --readers 4 6 8 10

The pilot is a finished study (its id or name; accuracy or AUC of the real/synthetic calls,
tested against chance) or a long-format ratings CSV (reader,treatment,case,truth,rating; one
treatment, tested against chance, or two, whose difference is sized). For each number of
readers it prints the fewest cases that reach the power, for random readers and cases, fixed
readers, and fixed cases (Hillis, Obuchowski and Berbaum 2011, as RJafroc's sample size
functions; see `study.stats.sizing`).
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

from study.imaging.commandline import whole_number
from study.stats import SIZING_METRICS, StatsError


def _is_csv(pilot: str) -> bool:
    """A pilot named by a file (an existing file, or any name ending in .csv) rather than by a
    study's id or name."""
    return Path(pilot).is_file() or pilot.lower().endswith(".csv")


def _check(args: argparse.Namespace) -> None:
    if args.effect is not None and not (math.isfinite(args.effect) and args.effect > 0):
        raise StatsError(f"--effect must be a positive number, not {args.effect:g}")
    if not 0 < args.power < 1:
        raise StatsError(f"--power must lie strictly between 0 and 1, not {args.power:g}")
    if not 0 < args.alpha < 1:
        raise StatsError(f"--alpha must lie strictly between 0 and 1, not {args.alpha:g}")


def _pilot(args: argparse.Namespace):  # -> study.stats.sizing_pilot.Pilot
    from study.stats.mrmc import read_mrmc_csv
    from study.stats.sizing_pilot import pilot_from_data

    if not _is_csv(args.pilot):
        if args.threshold is not None:
            raise StatsError(
                "--threshold applies to a ratings CSV; a study's calls are already binary"
            )
        from study.db import open_database
        from study.sizing import study_pilot

        return study_pilot(open_database(), args.pilot, args.metric)
    source = Path(args.pilot)
    if args.metric == "accuracy" and args.threshold is None:
        raise StatsError(
            f"{source}: --metric accuracy needs --threshold T (a rating >= T is a positive call)"
        )
    if args.metric == "auc" and args.threshold is not None:
        raise StatsError(f"{source}: --threshold applies to --metric accuracy, not auc")
    return pilot_from_data(
        read_mrmc_csv(source), args.metric, threshold=args.threshold, source=str(source)
    )


def _cell(cases: int | None, power: float | None) -> str:
    return "not reachable" if cases is None else f"{cases} ({power:.3f})"


def _report(sizing) -> str:  # sizing: study.sizing.PilotSizing
    from study.stats.sizing import GENERALIZATION_TITLES, GENERALIZATIONS

    v = sizing.pilot.variance
    components = ", ".join(
        f"{name} {value:.6g}"
        for name, value in (
            ("Var(R)", v.var_r),
            ("Var(T*R)", v.var_tr),
            ("Cov1", v.cov1),
            ("Cov2", v.cov2),
            ("Cov3", v.cov3),
            ("Var(Error)", v.var_error),
        )
        if math.isfinite(value)
    )
    lines = [sizing.summary, f"OR variance components of the pilot: {components}", ""]
    width = max(len(t) for t in GENERALIZATION_TITLES.values()) + 2
    lines.append(
        "readers".ljust(9) + "".join(GENERALIZATION_TITLES[g].rjust(width) for g in GENERALIZATIONS)
    )
    cells = {(row.readers, row.generalization): row for row in sizing.rows}
    for readers in dict.fromkeys(row.readers for row in sizing.rows):
        lines.append(
            str(readers).ljust(9)
            + "".join(
                _cell(cells[readers, g].cases, cells[readers, g].power).rjust(width)
                for g in GENERALIZATIONS
            )
        )
    lines.append("cases needed (power reached in brackets)")
    reasons = list(dict.fromkeys(row.reason for row in sizing.rows if row.reason))
    return "\n".join(lines + reasons)


def run(args: argparse.Namespace) -> int:
    _check(args)
    # Imported here: `--help` should not pay for the database and analysis libraries.
    from study.sizing import size_from_pilot, sizing_json

    sizing = size_from_pilot(
        _pilot(args), effect=args.effect, power=args.power, alpha=args.alpha, readers=args.readers
    )
    if args.json:
        print(json.dumps(sizing_json(sizing), allow_nan=False))
    else:
        print(_report(sizing))
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "size",
        help="readers and cases the next study needs, from a pilot study or ratings CSV",
        description=(
            "From a pilot's Obuchowski-Rockette variance components, the fewest cases that "
            "reach the power for each number of readers (random readers and cases, fixed "
            "readers, fixed cases; Hillis, Obuchowski and Berbaum 2011, as RJafroc). A study "
            "(one treatment) is sized for its readers' accuracy or AUC against chance; a CSV "
            "with two treatments for their difference."
        ),
    )
    parser.add_argument(
        "--pilot",
        required=True,
        metavar="STUDY|CSV",
        help="a finished study's id or name, or a ratings CSV (reader,treatment,case,truth,rating)",
    )
    parser.add_argument(
        "--effect",
        type=float,
        metavar="D",
        help="the effect to detect: the accuracy or AUC above chance (0.5) for one treatment, "
        "the difference for two (default: the pilot's observed effect)",
    )
    parser.add_argument("--power", type=float, default=0.8, help="the target power (default: 0.8)")
    parser.add_argument(
        "--metric",
        choices=SIZING_METRICS,
        default="accuracy",
        help="figure of merit (default: accuracy)",
    )
    parser.add_argument(
        "--threshold",
        type=float,
        metavar="T",
        help="for accuracy from a CSV: a rating >= T is a positive call",
    )
    parser.add_argument(
        "--readers",
        type=whole_number(2),
        nargs="+",
        default=list(range(3, 11)),
        metavar="J",
        help="numbers of readers to size for (default: 3 to 10)",
    )
    parser.add_argument(
        "--alpha", type=float, default=0.05, help="two-sided significance level (default: 0.05)"
    )
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.set_defaults(func=run)
