"""Every setting of VTT Studio, declared once with its default and help.

Settings come from environment variables. `SETTINGS` is the single declaration; the README's
settings table is checked against it by a test.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Setting:
    name: str
    default: str
    help: str

    def value(self) -> str:
        return os.environ.get(self.name, self.default)


SETTINGS: tuple[Setting, ...] = (
    Setting(
        "VTT_DATA_DIR", "instance", "Folder for the SQLite database, assets and generated files."
    ),
    Setting(
        "VTT_DATABASE_URL",
        "",
        "SQLAlchemy URL of the database; empty means SQLite at VTT_DATA_DIR/vtt.sqlite3. "
        "Example: postgresql+psycopg://postgres@127.0.0.1:5432/test",
    ),
    Setting(
        "VTT_ADMIN_PASSWORD",
        "",
        "Coordinator password; empty means one is generated on first start and printed once "
        "in the server log. Only a salted hash is stored.",
    ),
    Setting(
        "VTT_PUBLIC_URL",
        "",
        "Address readers open; personal links are <VTT_PUBLIC_URL>/?code=... Empty means the "
        "address the coordinator's browser is using (the Readers page warns when the two "
        "differ).",
    ),
    Setting(
        "VTT_SESSION_HOURS",
        "12",
        "How long a sign-in lasts in a browser (across reloads and tabs) before signing in again.",
    ),
    Setting(
        "VTT_VISITOR_IDLE_HOURS",
        "24",
        "Anonymous visitors of a study with a public code (the demo) who stop before the end "
        "are removed, with their answers, after this many idle hours.",
    ),
    Setting(
        "VTT_RENDER_SIZE",
        "256",
        "Pixel size of the square display render of every image, 16 to 1024 (larger renders "
        "would be re-encoded by Streamlit, compressed, and their byte size would tell images "
        "apart).",
    ),
    Setting(
        "VTT_MAX_IMAGE_PIXELS",
        "50000000",
        "Largest image (pixels per slice times slices) accepted on import; bigger ones are "
        "refused before they are decoded.",
    ),
    Setting(
        "VTT_SEED_DEMO",
        "1",
        "1: on a fresh database (no studies, no assets) the app seeds the demo study from the "
        "bundled images at start; 0: start empty.",
    ),
    Setting(
        "VTT_MAX_UPLOAD_MB",
        "200",
        "Largest file accepted by the app's upload widgets, in megabytes.",
    ),
    Setting(
        "VTT_DEVICE",
        "auto",
        "Device of generate and train jobs started from the app: cuda, cpu, or auto (cuda when "
        "the generator's torch sees a GPU).",
    ),
    Setting(
        "VTT_MAX_JOBS",
        "1",
        "Background jobs (generate, train, and the machine checks evaluate and augment) that "
        "one process runs at once (the app's own threads, or a worker's default); further jobs "
        "wait in the queue.",
    ),
    Setting(
        "VTT_JOB_BROKER",
        "",
        "Where background jobs wait. Empty: a SQLite queue in VTT_DATA_DIR that the "
        "app's own threads run. redis://host:port/db: a Redis queue that workers run "
        "(`python -m study worker`, on any machine that shares the database and VTT_DATA_DIR); "
        "the app then only queues.",
    ),
)

_BY_NAME = {s.name: s for s in SETTINGS}


def get(name: str) -> str:
    """The current value of a declared setting (environment, else its default)."""
    return _BY_NAME[name].value()


def data_dir() -> Path:
    return Path(get("VTT_DATA_DIR")).resolve()


def database_url() -> str:
    url = get("VTT_DATABASE_URL")
    return url or f"sqlite:///{data_dir() / 'vtt.sqlite3'}"


RENDER_SIZE_RANGE = (16, 1024)


def render_size() -> int:
    """VTT_RENDER_SIZE, checked: every display PNG has this side and one fixed byte length."""
    value = get("VTT_RENDER_SIZE")
    low, high = RENDER_SIZE_RANGE
    if not value.strip().isdigit() or not low <= int(value) <= high:
        raise ValueError(
            f"VTT_RENDER_SIZE is {value!r}: use a whole number of pixels, {low} to {high}"
        )
    return int(value)


def max_image_pixels() -> int:
    return int(get("VTT_MAX_IMAGE_PIXELS"))
