"""`python -m study report`: a study's results as one standalone HTML file.

    python -m study report --study "Seed protocol" --out report.html

The file holds the methods paragraph, every table and plot, and plotly.js itself (it opens
without a network). The study is named by its id or its name.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from tqdm import tqdm

from study.analysis import tidy_answers
from study.db import open_database
from study.exports import report_html
from study.reports import build_report, find_study, study_context


def run(args: argparse.Namespace) -> int:
    engine = open_database()
    study = find_study(engine, args.study)
    with tqdm(total=3, desc="report", unit="step", file=sys.stderr) as bar:
        context = study_context(engine, study.id)
        tidy = tidy_answers(engine, study.id)
        bar.update()
        report = build_report(tidy, seed=context.seed)
        bar.update()
        out: Path = args.out
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(report_html(context, report), encoding="utf-8")
        bar.update()
    print(out)
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "report",
        help="write a study's results as one HTML file",
        description="Every results table and plot of a study, with a methods paragraph to "
        "adapt, in one HTML file that opens offline. Prints the file's path.",
    )
    parser.add_argument(
        "--study", required=True, metavar="ID_OR_NAME", help="the study's id or name"
    )
    parser.add_argument("--out", required=True, type=Path, metavar="FILE", help="the HTML file")
    parser.set_defaults(func=run)
