"""The demo study: bundled phantom images (playing the acquired ones) against the bundled
generator's images, read as an educational seed-protocol study by one public demo reader.

`python -m study demo` and the app's first start on an empty database run `seed_demo`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import Engine, func, select

from study.db import transaction
from study.design import PairedBlock, SingleBlock, StudyPlan, create_study, open_study
from study.imaging.errors import VTTError
from study.imaging.types import Sequence
from study.importer import import_manifest
from study.models import Asset, Feedback, Reader, Study, StudyStatus
from study.questions import TEMPLATES
from study.readers import add_reader
from study.storage import AssetStore

DEMO_DIR = Path(__file__).resolve().parent.parent / "data" / "demo"
DEMO_STUDY_NAME = "Demo: real or synthetic prostate MR"
DEMO_READER = "demo reader"
# Public by design: the landing page shows it so that anyone can try the reading.
DEMO_CODE = "demo"
DEMO_INSTRUCTIONS = (
    "This demo is a small Visual Turing Test of prostate MR. Half of the images are simulated "
    "acquisitions (a phantom), half were made by VTT Studio's diffusion model. For each image, "
    "say whether you think it is real or synthetic, and whether it shows a suspected lesion "
    "(PI-RADS 3 or more). Some cases show a T2W image beside the DWI of the same slice. "
    "Use the window/level and zoom controls freely. You will see your score at the end."
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
        questions=TEMPLATES["Seed protocol"],
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


def demo_manifests(demo_dir: Path = DEMO_DIR) -> list[Path]:
    manifests = [demo_dir / "real" / "manifest.csv", demo_dir / "synthetic" / "manifest.csv"]
    missing = [str(m) for m in manifests if not m.is_file()]
    if missing:
        raise DemoError(
            f"the demo data are incomplete: {', '.join(missing)} missing; "
            "rebuild them with `make demo-assets`"
        )
    return manifests


def seed_demo(
    engine: Engine, *, store: AssetStore | None = None, demo_dir: Path = DEMO_DIR
) -> DemoStudy:
    """Import the demo images and open the demo study with its public reader (idempotent)."""
    with transaction(engine) as session:
        existing = session.scalar(select(Study.id).where(Study.name == DEMO_STUDY_NAME))
    if existing is not None:
        return DemoStudy(existing, DEMO_CODE, created=False)
    for manifest in demo_manifests(demo_dir):
        import_manifest(engine, manifest, store=store)
    study_id = create_study(engine, demo_plan())
    open_study(engine, study_id)
    add_reader(engine, study_id, DEMO_READER, public_code=DEMO_CODE)
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
    """The public demo code while the demo study is open and its reader not revoked."""
    with transaction(engine) as session:
        reader = session.scalar(
            select(Reader)
            .join(Study, Study.id == Reader.study_id)
            .where(Study.name == DEMO_STUDY_NAME, Reader.alias == DEMO_READER)
        )
        if (
            reader is None
            or reader.revoked_at is not None
            or reader.study.status != StudyStatus.OPEN
        ):
            return None
    return DEMO_CODE
