"""The results and exports pages through app.py (Streamlit AppTest): a coordinator sees
tables and plots of an answered study, filters a subgroup and finds every download; the page
and the HTML report show the same sections with the same figures; an analyst lands on the
results and reaches no coordinator page; a reader reaches neither."""

from __future__ import annotations

import json
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pytest
from seeding import add_assets, grid
from sqlalchemy import select
from streamlit.testing.v1 import AppTest
from streamlit.testing.v1.element_tree import Block

from study.db import transaction
from study.design import SingleBlock, StudyPlan, create_study, open_study
from study.imaging.types import Sequence
from study.models import Case
from study.questions import TEMPLATES
from study.readers import add_reader, create_analyst, set_public_code, sign_in_with_code
from study.reading import next_case, record_answer
from study.report.data import read_study
from study.report.html import report_html
from study.report.model import study_report
from study.report.sections import SECTIONS
from study.simulate import simulate_answers
from study.storage import AssetStore

pytestmark = pytest.mark.slow

APP = str(Path(__file__).resolve().parents[2] / "app.py")
COORDINATOR_PAGES = (
    "pages/import_assets.py",
    "pages/library.py",
    "pages/studies.py",
    "pages/readers.py",
    "pages/progress.py",
)


@pytest.fixture
def answered_study(app_engine, data_dir: Path) -> tuple[int, str]:
    """Eight T2W cases read by two readers (real or synthetic, lesion, realism, confidence),
    and a third reader who has not started; returns (study id, that reader's code)."""
    add_assets(app_engine, grid([Sequence.T2W], 2), store=AssetStore(data_dir / "assets"))
    plan = StudyPlan(
        "Results test",
        TEMPLATES["Seed protocol"] + TEMPLATES["Realism rating"],
        (SingleBlock(Sequence.T2W, 8),),
        repeated_cases=1,
    )
    study_id = create_study(app_engine, plan)
    readers = [add_reader(app_engine, study_id, alias).reader_id for alias in ("A", "B")]
    waiting = add_reader(app_engine, study_id, "C").code
    open_study(app_engine, study_id)
    with transaction(app_engine) as session:
        truth = {
            c.public_id: str(c.origin)
            for c in session.scalars(select(Case).where(Case.study_id == study_id))
        }
    rng = np.random.default_rng(3)
    for reader in readers:
        while (view := next_case(app_engine, reader)) is not None:
            values = {
                "real_or_synthetic": truth[view.public_id]
                if rng.random() < 0.7
                else rng.choice(["real", "synthetic"]),
                "lesion_present": rng.choice(["yes", "no"]),
                "likert_realism": str(rng.integers(1, 6)),
                "confidence": str(rng.integers(1, 6)),
            }
            answers = {q.id: values[q.kind.value] for q in view.questions}
            record_answer(app_engine, reader, view.public_id, answers, 2.0)
    return study_id, waiting


def signed_in(username: str, password: str) -> AppTest:
    app = AppTest.from_file(APP, default_timeout=60)
    app.run()
    next(t for t in app.text_input if t.label == "User name").set_value(username)
    next(t for t in app.text_input if t.label == "Password").set_value(password)
    next(b for b in app.button if b.label == "Sign in").click().run()
    assert not app.exception, app.exception
    return app


def test_coordinator_sees_results_filters_them_and_finds_every_export(
    app_engine, admin_password, answered_study
):
    app = signed_in("coordinator", admin_password)
    app.switch_page("pages/results.py").run()
    assert not app.exception, app.exception
    assert app.title[0].value == "Results"
    assert not app.error, [e.value for e in app.error]
    tables = app.dataframe
    assert len(tables) >= 10
    # Per question: accuracy and the four rates in two tables narrow enough for the page, the
    # positive class named above them.
    accuracy, rates = tables[0].value, tables[1].value
    assert set(accuracy["reader"]) == set(rates["reader"]) == {"A", "B", "all readers"}
    assert list(accuracy.columns) == ["reader", "n", "accuracy (95% CI)", "p vs 0.5", "d'", "c"]
    assert list(rates.columns) == ["reader", "sensitivity", "specificity", "PPV", "NPV"]
    titles = " ".join(m.value for m in app.markdown)
    assert "(positive class: synthetic)" in titles and "(positive class: lesion)" in titles
    charts = app.get("plotly_chart")
    assert len(charts) >= 8  # forests, confusion matrices, ROC, AUC, Likert, lesions, fool rate
    fool_rate = next(t.value for t in tables if "fool_rate" in t.value.columns)
    assert fool_rate["image"].str.startswith("data:image/png;base64,").all()
    assert any("Mean AUC" in m.label for m in app.metric)
    # Is it indistinguishable? Each reader and their mean, with the conclusion in words.
    tab = {t.label: t for t in app.tabs}["Indistinguishable?"]
    equivalence = next(t.value for t in tab.dataframe if "conclusion" in t.value.columns)
    assert equivalence["reader"].tolist() == [
        "A",
        "B",
        "mean of readers (OR, random readers and cases)",
    ]
    assert set(equivalence["conclusion"]) <= {
        "indistinguishable within ±0.10",
        "distinguishable",
        "inconclusive: more cases needed",
    }
    assert [m.label for m in tab.metric] == [
        "Mean accuracy of 2 readers",
        "90% CI (OR)",
        "Conclusion",
    ]
    assert len(tab.get("plotly_chart")) == 1
    calibration = {t.label: t for t in app.tabs}["Calibration"]
    assert calibration.dataframe[0].value["reader"].tolist() == ["A", "B", "all readers"]
    assert {"brier", "ece"} <= set(calibration.dataframe[0].value.columns)
    assert len(calibration.get("plotly_chart")) == 1

    app.multiselect(key="filter-readers").set_value(["A"]).run()
    assert not app.exception, app.exception
    assert set(app.dataframe[0].value["reader"]) == {"A", "all readers"}
    assert any("reader A" in c.value for c in app.caption)
    assert any("at least two readers" in i.value for i in app.info)  # no MRMC for one reader
    # One reader: no readers' mean, and the caption says why.
    assert any("Readers' mean: no readers' mean" in c.value for c in app.caption)

    app.switch_page("pages/exports.py").run()
    assert not app.exception, app.exception
    downloads = app.get("download_button")
    assert len(downloads) == 8
    assert [s.value for s in app.subheader] == [
        "Answers",
        "Results tables",
        "Report",
        "ROC ratings for MRMC software",
    ]


# What a reader of the results sees, item by item, in the terms both renderers share:
# ("heading" | "title" | "paragraph" | "caption" | "note", text), ("table", columns, rows),
# ("metric", label, value), ("figure", title).
Item = tuple


def page_items(tab: Block) -> list[Item]:
    """The items of one tab of the Results page, in order (the page's thumbnails and the
    number of rows to show are the page's own; a choice shows as its caption in the HTML)."""
    items: list[Item] = []
    for node in tab:
        kind = type(node).__name__
        if kind == "Subheader":
            items.append(("heading", node.value))
        elif kind == "Markdown" and node.value.startswith("**"):
            items.append(("title", node.value.strip("*")))
        elif kind == "Markdown":
            items.append(("paragraph", node.value))
        elif kind == "Caption":
            items.append(("caption", node.value))
        elif kind == "Info":
            items.append(("note", node.value))
        elif kind == "Dataframe":
            frame = node.value.drop(columns="image", errors="ignore")
            rows = [list(row) for row in frame.astype(str).itertuples(index=False)]
            items.append(("table", list(frame.columns), rows))
        elif kind == "Metric":
            items.append(("metric", node.label, node.value))
        elif kind == "Selectbox":
            items.append(("caption", f"{node.label}: {node.value}"))
        elif node.type == "plotly_chart":
            spec = json.loads(node.proto.spec)
            items.append(("figure", spec["layout"].get("title", {}).get("text", "")))
    return items


# The elements of the HTML report whose text is an item (or part of one), and what it is.
HTML_TEXT = {"h2": "section", "h3": "heading", "h4": "title", "th": "cell", "td": "cell"}


class ReportItems(HTMLParser):
    """The HTML report's summary, notices and, per section, its items (as `page_items`)."""

    def __init__(self, page: str) -> None:
        super().__init__()
        self.summary = ""
        self.notices: list[str] = []
        self.sections: list[tuple[str, list[Item]]] = []
        self.capture: tuple[str, str] | None = None  # (closing tag, what the text is)
        self.text: list[str] = []
        self.rows: list[list[str]] = []
        self.label = ""
        self.feed(page)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        css = dict(attrs).get("class") or ""
        if tag == "p":
            kind = css.split()[0] if css else "paragraph"
            self.capture, self.text = (tag, kind), []
        elif tag in HTML_TEXT:
            self.capture, self.text = (tag, HTML_TEXT[tag]), []
        elif tag == "table":
            self.rows = []
        elif tag == "tr":
            self.rows.append([])
        elif tag == "div" and css in ("label", "value"):
            self.capture, self.text = (tag, css), []
        elif tag == "div" and css == "plot":
            self.sections[-1][1].append(("figure", None))

    def handle_data(self, data: str) -> None:
        if self.capture is not None:
            self.text.append(data)

    def handle_endtag(self, tag: str) -> None:
        if tag == "table":
            header, *rows = self.rows
            self.sections[-1][1].append(("table", header, rows))
        if self.capture is None or tag != self.capture[0]:
            return
        kind, text = self.capture[1], "".join(self.text)
        self.capture = None
        if kind == "section":
            self.sections.append((text, []))
        elif kind == "cell":
            self.rows[-1].append(text)
        elif kind == "meta":
            self.summary = text
        elif kind == "notice":
            self.notices.append(text)
        elif kind == "label":
            self.label = text
        elif kind == "value":
            self.sections[-1][1].append(("metric", self.label, text))
        else:
            self.sections[-1][1].append((kind, text))


def test_results_page_and_html_report_show_the_same_report(
    app_engine, admin_password, answered_study
):
    study_id, _ = answered_study
    app = signed_in("coordinator", admin_password)
    app.switch_page("pages/results.py").run()
    assert not app.exception, app.exception
    html = ReportItems(report_html(study_report(read_study(app_engine, study_id))))

    titles = [s.title for s in SECTIONS]
    assert [tab.label for tab in app.tabs] == [title for title, _ in html.sections] == titles
    for tab, (title, items) in zip(app.tabs, html.sections, strict=True):
        shown = page_items(tab)
        # Figures: the same ones in the same places (the HTML's are drawn by script).
        assert [item[0] for item in shown] == [item[0] for item in items], title
        assert [i for i in shown if i[0] != "figure"] == [i for i in items if i[0] != "figure"]
    figures = [i[1] for tab in app.tabs for i in page_items(tab) if i[0] == "figure"]
    assert len(figures) >= 8 and all(figures)
    # Every table's numbers, cell by cell, are the same text on the page and in the HTML.
    tables = [i for _, items in html.sections for i in items if i[0] == "table"]
    assert len(tables) >= 10 and any("0." in cell for t in tables for row in t[2] for cell in row)
    caption = next(c.value for c in app.caption if c.value.startswith("Study Results test"))
    assert html.summary.startswith(caption + " Generated ")


def test_analyst_lands_on_results_and_reaches_no_coordinator_page(app_engine, answered_study):
    password = create_analyst(app_engine, "ana")
    app = signed_in("ana", password)
    assert app.session_state["role"] == "analyst"
    assert app.title[0].value == "Results"
    assert len(app.dataframe) >= 10

    # The analyst's navigation lists the results and exports pages and no coordinator page.
    session = AppTest.from_file(APP, default_timeout=60)
    session.session_state["role"] = "analyst"
    session.run()
    assert session.title[0].value == "Results"
    # (Checked before switching: after a page switch AppTest lists every file of pages/.)
    for page in COORDINATOR_PAGES:
        with pytest.raises(ValueError, match="Could not find a navigation page"):
            session.switch_page(page)
    session.switch_page("pages/exports.py").run()
    assert not session.exception, session.exception
    assert session.title[0].value == "Exports"
    for page in COORDINATOR_PAGES:
        # Run directly, each coordinator page refuses the analyst.
        direct = AppTest.from_file(str(Path(APP).parent / page), default_timeout=60)
        direct.session_state["role"] = "analyst"
        direct.run()
        assert [e.value for e in direct.error] == [
            "This page needs you to sign in with the right role."
        ]
        assert not direct.button and not direct.dataframe


def test_a_reader_cannot_reach_the_results(app_engine, answered_study):
    _, code = answered_study
    app = AppTest.from_file(APP, default_timeout=60)
    app.query_params["code"] = code
    app.run()
    assert app.session_state["role"] == "reader"
    for page in ("pages/results.py", "pages/exports.py"):
        with pytest.raises(ValueError, match="Could not find a navigation page"):
            app.switch_page(page)
    # Run directly, the page's own guard stops before it shows anything.
    page = AppTest.from_file(str(Path(APP).parent / "pages" / "results.py"), default_timeout=60)
    page.session_state["role"] = "reader"
    page.run()
    assert page.error and not page.dataframe and not page.get("plotly_chart")


def test_simulated_answers_and_visitors_are_named_on_every_page_that_shows_them(
    app_engine, admin_password, data_dir
):
    add_assets(app_engine, grid([Sequence.T2W], 2), store=AssetStore(data_dir / "assets"))
    plan = StudyPlan("Simulated", TEMPLATES["Seed protocol"], (SingleBlock(Sequence.T2W, 8),))
    study_id = create_study(app_engine, plan)
    add_reader(app_engine, study_id, "simulated reader 1")
    open_study(app_engine, study_id)
    set_public_code(app_engine, study_id, "open-to-all")
    sign_in_with_code(app_engine, "open-to-all")
    simulate_answers(app_engine, study_id, seed=1)
    app = signed_in("coordinator", admin_password)
    for page in ("pages/results.py", "pages/exports.py", "pages/progress.py", "pages/studies.py"):
        app.switch_page(page).run()
        assert not app.exception, app.exception
        assert any("Simulated answers" in w.value for w in app.warning), page
    app.switch_page("pages/results.py").run()
    assert any(
        "1 visitor(s) read this study" in i.value and "1 finished" in i.value for i in app.info
    )
    # The HTML report gives the same notices, in the same words.
    notices = ReportItems(report_html(study_report(read_study(app_engine, study_id)))).notices
    page_notices = [n.value.replace("**", "") for n in (*app.warning, *app.info)]
    assert notices and all(notice in page_notices for notice in notices)
