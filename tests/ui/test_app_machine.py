"""The Machine evaluation page through app.py (Streamlit AppTest): a coordinator runs the
realism checks and the augmentation experiment on an answered study and sees their results
beside the readers'; an analyst sees them and can neither start nor cancel a check."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from streamlit.testing.v1 import AppTest
from test_app_import import APP, signed_in_coordinator
from test_app_results import answered_study  # noqa: F401 (a fixture)
from tiny_generator import wait_until_done

from study.auth import check_account
from study.db import transaction
from study.jobs import JobKind, get_job, list_jobs, stop_consumer, this_runner
from study.models import Job, JobState
from study.readers import create_analyst

pytestmark = pytest.mark.slow

MACHINE = "pages/machine.py"
EVALUATION = {
    "c2st_auc": 0.62,
    "c2st_auc_ci": [0.41, 0.83],
    "memorised_count": None,
    "nearest_train_ncc": None,
    "lesion_agreement": 0.5,
    "sequence_agreement": 1.0,
    "lesion_agreement_heldout_real": 0.75,
    "sequence_agreement_heldout_real": 1.0,
    "n_real": 4,
    "n_synthetic": 4,
    "n_train": None,
}


def scores(accuracy: float) -> dict[str, float]:
    return {"accuracy": accuracy, "sensitivity": 0.5, "specificity": 0.75, "auc": 0.7}


AUGMENTATION = {
    "arms": {
        arm: {metric: {"mean": value, "sd": 0.05} for metric, value in scores(mean).items()}
        for arm, mean in (("real", 0.70), ("real+synthetic", 0.76))
    },
    "difference": {
        metric: {"mean": 0.06, "ci": [-0.01, 0.13]}
        for metric in ("accuracy", "sensitivity", "specificity", "auc")
    },
    "folds": [
        {
            "repeat": 1,
            "fold": fold,
            "test_patients": 1,
            "n_train_real": 2,
            "n_train_synthetic": 4,
            "n_test": 2,
            "steps": 1,
            "real": scores(0.7),
            "real+synthetic": scores(0.76),
        }
        for fold in (1, 2)
    ],
    "n_real": 4,
    "n_synthetic": 4,
}


@pytest.fixture
def study(app_engine, answered_study, monkeypatch) -> Iterator[int]:  # noqa: F811
    """The answered study; the threads that the app's start-up starts to run jobs end with
    the test."""
    monkeypatch.setenv("VTT_DEVICE", "cpu")
    monkeypatch.delenv("VTT_JOB_BROKER", raising=False)
    yield answered_study[0]
    stop_consumer()


def finished_jobs(engine, study_id: int) -> None:
    """A finished realism check and augmentation experiment of the study, and one running in
    this process (so that no recovery fails it)."""
    runner = this_runner()
    with transaction(engine) as session:
        for kind, result in ((JobKind.EVALUATE, EVALUATION), (JobKind.AUGMENT, AUGMENTATION)):
            session.add(
                Job(
                    kind=kind.value,
                    state=JobState.SUCCEEDED,
                    progress=1.0,
                    params={"study_id": study_id, "request": {"allow_unrecorded": True}},
                    result=result,
                )
            )
        session.add(
            Job(
                kind=JobKind.AUGMENT.value,
                state=JobState.RUNNING,
                progress=0.4,
                params={"study_id": study_id, "request": {}},
                runner_host=runner.host,
                runner_pid=runner.pid,
                runner_start=runner.start,
                heartbeat_at=datetime.now(UTC),
            )
        )


def machine_page(app: AppTest) -> AppTest:
    app.switch_page(MACHINE).run()
    assert not app.exception, app.exception
    assert app.title[0].value == "Machine evaluation"
    return app


def metric(app: AppTest, label: str) -> str:
    return next(m.value for m in app.metric if m.label == label)


def test_a_coordinator_runs_both_checks_and_sees_them_beside_the_readers(
    app_engine, study, admin_password
):
    app = machine_page(signed_in_coordinator(admin_password))
    assert any("4 real images of 2 patients and 4 synthetic" in c.value for c in app.caption)
    assert any("No realism check" in i.value for i in app.info)
    # The readers' side is there before any check has run.
    assert float(metric(app, "Readers pooled: real-or-synthetic accuracy")) > 0

    app.number_input(key="eval-folds").set_value(2)
    app.number_input(key="eval-epochs").set_value(1)
    app.button(key="eval-start").click().run()
    assert not app.exception, app.exception
    app.number_input(key="aug-folds").set_value(2)
    app.number_input(key="aug-epochs").set_value(1)
    app.checkbox(key="aug-quick").check()
    app.checkbox(key="aug-unrecorded").check()
    app.button(key="aug-start").click().run()
    assert not app.exception, app.exception
    assert sum("queued" in s.value for s in app.success) == 1
    [evaluation] = list_jobs(app_engine, JobKind.EVALUATE)
    [augmentation] = list_jobs(app_engine, JobKind.AUGMENT)
    for job in (evaluation, augmentation):
        assert job.params["study_id"] == study
        assert wait_until_done(app_engine, job.id) == JobState.SUCCEEDED, get_job(
            app_engine, job.id
        ).error
    assert get_job(app_engine, augmentation.id).params["request"]["quick"] is True

    app.run()
    assert not app.exception, app.exception
    auc = get_job(app_engine, evaluation.id).result["c2st_auc"]
    assert metric(app, "Machine: C2ST AUC") == f"{auc:.3f}"
    charts = [json.loads(chart.proto.spec) for chart in app.get("plotly_chart")]
    assert len(charts) == 2
    tables = [frame.value for frame in app.dataframe]
    arms = next(t for t in tables if "real+synthetic" in t.columns)
    assert arms["metric"].tolist()[:4] == ["accuracy", "sensitivity", "specificity", "auc"]
    assert arms["real+synthetic"].iloc[-1] == "0.762 +- 0.042"  # the seed study's row
    assert any("task" in t.columns for t in tables)  # Table 4.3, from the study's report
    assert any("reader" in t.columns and "all readers" in t["reader"].tolist() for t in tables)
    assert any(w.value.startswith("This experiment accepted") for w in app.warning)


def test_an_analyst_sees_the_results_but_starts_and_cancels_nothing(app_engine, study):
    analyst = check_account(app_engine, "ana", create_analyst(app_engine, "ana"))
    app = AppTest.from_file(APP, default_timeout=60)
    app.session_state["role"] = "analyst"
    app.session_state["account_id"] = analyst.id
    app.run()
    finished_jobs(app_engine, study)
    machine_page(app)
    assert metric(app, "Machine: C2ST AUC") == "0.620"
    assert any("95% CI 0.410-0.830" in c.value for c in app.caption)
    tables = [frame.value for frame in app.dataframe]
    realism = next(t for t in tables if "measure" in t.columns)
    assert realism["measure"].tolist() == [
        "C2ST AUC (95% DeLong CI)",
        "lesion agreement",
        "sequence agreement",
    ]
    arms = next(t for t in tables if "real+synthetic" in t.columns)
    assert arms["difference (95% CI)"].iloc[0] == "+0.060 (-0.010 to +0.130)"
    folds = next(t for t in tables if "held-out patients" in t.columns)
    assert len(folds) == 2
    assert len(app.get("plotly_chart")) == 2
    # Read-only: no check to start, and the running one cannot be cancelled from here.
    assert any("(augment, running" in m.value for m in app.markdown)
    assert not [b for b in app.button if b.label.startswith("Start") or b.label == "Cancel"]
