"""`python -m study report`: a study's results as one standalone HTML file.

    python -m study report --study "Seed protocol" --out report.html

The file holds the sections of the Results page (every table and plot, the methods
paragraph) and plotly.js itself (it opens without a network). The study is named by its id or
its name.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def run(args: argparse.Namespace) -> int:
    # Imported here: `--help` should not pay for the database and analysis libraries.
    from tqdm import tqdm

    from study.db import open_database
    from study.report.data import read_study
    from study.report.html import report_html
    from study.report.model import study_report
    from study.reports import find_study

    engine = open_database()
    study = find_study(engine, args.study)
    with tqdm(total=3, desc="report", unit="step", file=sys.stderr) as bar:
        data = read_study(engine, study.id)
        bar.update()
        report = study_report(data)
        bar.update()
        out: Path = args.out
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(report_html(report), encoding="utf-8")
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
