"""The demo: bundled phantom images (playing the acquired ones) against the bundled generator's
images, in two studies.

- "Demo: real or synthetic prostate MR": an educational study open to anyone with the public
  code `demo`; each sign-in with it is an anonymous visitor reader of its own.
- "Demo results (simulated readers)": the same kind of study answered by simulated readers
  (`study.simulate`), closed, so that every tab of the Results page shows something on first
  start. Every page that shows it says its answers are simulated.

`python -m study demo` and the app's first start on an empty database run `seed_demo`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import Engine, func, select

from study.auth import hash_access_code
from study.db import transaction
from study.design import (
    PairedBlock,
    SingleBlock,
    StudyPlan,
    close_study,
    create_study,
    open_study,
)
from study.imaging.errors import VTTError
from study.imaging.types import Sequence
from study.importer import import_manifest
from study.models import Asset, CaseKind, Feedback, QuestionKind, Study, StudyStatus
from study.questions import LIKERT_5, TEMPLATES, QuestionSpec
from study.readers import add_reader, set_public_code
from study.simulate import simulate_answers
from study.storage import AssetStore

DEMO_DIR = Path(__file__).resolve().parent.parent / "data" / "demo"
DEMO_STUDY_NAME = "Demo: real or synthetic prostate MR"
SIMULATED_STUDY_NAME = "Demo results (simulated readers)"
SIMULATED_READERS = 5
# Public by design: the landing page shows it so that anyone can try the reading.
DEMO_CODE = "demo"
DEMO_INSTRUCTIONS = (
    "This demo is a small Visual Turing Test of prostate MR. Half of the images are simulated "
    "acquisitions (a phantom), half were made by VTT Studio's diffusion model.\n\n"
    "- **Single images** (T2W or ADC): is the image real or synthetic, how sure are you, and "
    "does it show a suspected lesion (PI-RADS 3 or more)?\n"
    "- **Paired cases** (a T2W image beside the DWI of the same slice, both real or both "
    "synthetic): does the slice show a suspected lesion, and how realistic does the pair look "
    "(1-5)?\n\n"
    "Use the window/level and zoom controls freely. You can go back over your answers before "
    "you see your score at the end; from then on they are final."
)
DEMO_QUESTIONS: tuple[QuestionSpec, ...] = (
    *TEMPLATES["Seed protocol"],
    QuestionSpec(
        QuestionKind.CONFIDENCE,
        "How sure are you that it is real or synthetic? (1 = guessing, 5 = certain)",
        LIKERT_5,
        applies_to=(CaseKind.SINGLE.value,),
    ),
    QuestionSpec(
        QuestionKind.LIKERT_REALISM,
        "How realistic does the pair look? (1 = clearly artificial, 5 = indistinguishable "
        "from a real scan)",
        LIKERT_5,
        applies_to=(CaseKind.PAIRED.value,),
    ),
)


class DemoError(VTTError):
    """The bundled demo data are missing or incomplete."""


@dataclass(frozen=True)
class DemoStudy:
    study_id: int
    code: str
    created: bool


def demo_plan(seed: int = 2023) -> StudyPlan:
    """Seed protocol in miniature: 8 T2W, 8 ADC and 4 paired T2W-DWI cases, 2 practice."""
    return StudyPlan(
        name=DEMO_STUDY_NAME,
        questions=DEMO_QUESTIONS,
        blocks=(
            SingleBlock(Sequence.T2W, 8),
            SingleBlock(Sequence.ADC, 8),
            PairedBlock((Sequence.T2W, Sequence.DWI), 4),
        ),
        description="Bundled demo: phantom images against the bundled generator's images.",
        instructions=DEMO_INSTRUCTIONS,
        seed=seed,
        allow_revisit=True,
        feedback=Feedback.AT_END,
        practice_cases=2,
    )


def simulated_plan(seed: int = 2024) -> StudyPlan:
    """The demo's questions on 12 T2W, 12 ADC and 8 paired cases, 4 of them shown twice."""
    return StudyPlan(
        name=SIMULATED_STUDY_NAME,
        questions=DEMO_QUESTIONS,
        blocks=(
            SingleBlock(Sequence.T2W, 12),
            SingleBlock(Sequence.ADC, 12),
            PairedBlock((Sequence.T2W, Sequence.DWI), 8),
        ),
        description=(
            "SIMULATED ANSWERS: five simulated readers (a signal-detection model, "
            "study/simulate.py) read the demo images, so that every result appears on first "
            "start. No person read this study."
        ),
        seed=seed,
        repeated_cases=4,
    )


def demo_manifests(demo_dir: Path = DEMO_DIR) -> list[Path]:
    manifests = [demo_dir / "real" / "manifest.csv", demo_dir / "synthetic" / "manifest.csv"]
    missing = [str(m) for m in manifests if not m.is_file()]
    if missing:
        raise DemoError(
            f"the demo data are incomplete: {', '.join(missing)} missing; "
            "rebuild them with `make demo-assets`"
        )
    return manifests


def _seed_simulated(engine: Engine) -> None:
    study_id = create_study(engine, simulated_plan())
    for number in range(1, SIMULATED_READERS + 1):
        add_reader(
            engine,
            study_id,
            f"simulated reader {number}",
            experience_years=float(2 * number),
            specialty="simulated",
        )
    open_study(engine, study_id)
    simulate_answers(engine, study_id, seed=study_id)
    close_study(engine, study_id, actor="demo", note="simulated answers complete")


def seed_demo(
    engine: Engine, *, store: AssetStore | None = None, demo_dir: Path = DEMO_DIR
) -> DemoStudy:
    """Import the demo images, open the demo study with its public code, and add the
    simulated-readers study (idempotent)."""
    with transaction(engine) as session:
        existing = session.scalar(select(Study.id).where(Study.name == DEMO_STUDY_NAME))
    if existing is not None:
        return DemoStudy(existing, DEMO_CODE, created=False)
    for manifest in demo_manifests(demo_dir):
        import_manifest(engine, manifest, store=store)
    study_id = create_study(engine, demo_plan())
    open_study(engine, study_id, actor="demo")
    set_public_code(engine, study_id, DEMO_CODE)
    _seed_simulated(engine)
    return DemoStudy(study_id, DEMO_CODE, created=True)


def seed_demo_if_empty(engine: Engine, *, demo_dir: Path = DEMO_DIR) -> DemoStudy | None:
    """On a database with no studies and no assets (a fresh data directory), seed the demo."""
    with transaction(engine) as session:
        studies = session.scalar(select(func.count()).select_from(Study))
        assets = session.scalar(select(func.count()).select_from(Asset))
    if studies or assets:
        return None
    return seed_demo(engine, demo_dir=demo_dir)


def demo_code_if_active(engine: Engine) -> str | None:
    """The public demo code while the demo study is open with it."""
    with transaction(engine) as session:
        study = session.scalar(select(Study).where(Study.name == DEMO_STUDY_NAME))
        if (
            study is None
            or study.status != StudyStatus.OPEN
            or study.public_code_hash != hash_access_code(DEMO_CODE)
        ):
            return None
    return DEMO_CODE
