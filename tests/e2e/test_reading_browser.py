"""A reader completes a study in headless Chromium against `streamlit run app.py`; then the
database holds one answer per case and question with times, and nothing the browser received
(HTML, HTTP bodies, websocket frames) names a file, a patient, an asset hash or an origin."""

from __future__ import annotations

import re
import struct
from pathlib import Path

import pytest
from sqlalchemy import select
from viewer_page import settle

from study.db import open_database, transaction
from study.models import Answer, Asset, Assignment, Case, Question

pytestmark = [pytest.mark.browser, pytest.mark.slow]


PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
ICON = (Path(__file__).resolve().parents[2] / "data" / "icon.png").read_bytes()


def png_chunk_types(data: bytes) -> set[bytes]:
    types, offset = set(), len(PNG_SIGNATURE)
    while offset < len(data):
        (length,) = struct.unpack(">I", data[offset : offset + 4])
        types.add(data[offset + 4 : offset + 8])
        offset += 12 + length
    return types


def test_reader_completes_the_study_blind(seeded_study, app_url, browser):
    received: list[str] = []
    pngs: list[bytes] = []
    wire: list[tuple[str | None, str | None, int]] = []  # (encoding, length header, body length)
    context = browser.new_context()
    # Generous: the first script run imports the whole app, slow on a busy two-core machine.
    context.set_default_timeout(90_000)
    page = context.new_page()

    def keep_body(response) -> None:
        try:
            body = response.body()
        except Exception:  # redirects and aborted requests have no body
            return
        received.append(body.decode("latin-1"))
        # Case images (the app's own icon is also a PNG under /media/).
        if "/media/" in response.url and body.startswith(PNG_SIGNATURE) and body != ICON:
            pngs.append(body)
            wire.append(
                (
                    response.headers.get("content-encoding"),
                    response.headers.get("content-length"),
                    len(body),
                )
            )

    page.on("response", keep_body)
    page.on(
        "websocket",
        lambda ws: ws.on(
            "framereceived",
            lambda frame: received.append(
                frame.decode("latin-1") if isinstance(frame, bytes) else frame
            ),
        ),
    )
    page.set_default_timeout(30_000)
    page.goto(f"{app_url}/?code={seeded_study.code}")
    start = page.get_by_role("button", name="Start", exact=True)
    start.wait_for()
    settle(page)
    assert "code=" not in page.url
    received.append(page.content())
    start.click()

    for number in range(1, 5):
        page.get_by_text(f"Case {number} of 4").wait_for()
        settle(page)
        if number == 1:
            # The simple viewer (it stays on for the session): the server's PNGs, checked below;
            # test_viewer_browser.py checks what the viewer receives.
            page.get_by_text("Simple viewer", exact=True).click()
            settle(page)
        page.locator('[data-testid="stImage"] img').first.wait_for()
        received.append(page.content())
        page.get_by_text("Synthetic", exact=True).click()
        page.get_by_text("Yes", exact=True).click()
        page.get_by_role("button", name="Submit and next").click()
    page.get_by_text("Thank you").wait_for()
    received.append(page.content())
    context.close()

    engine = open_database()
    with transaction(engine) as session:
        questions = session.scalars(select(Question.id)).all()
        cases = session.scalars(select(Case.id)).all()
        answers = session.scalars(select(Answer)).all()
        assert len(answers) == len(cases) * len(questions) == 8
        assert {(a.case_id, a.question_id) for a in answers} == {
            (c, q) for c in cases for q in questions
        }
        assert all(a.time_on_case_s > 0 and a.revision == 1 for a in answers)
        assert all(a.completed_at is not None for a in session.scalars(select(Assignment)).all())
        assets = session.scalars(select(Asset)).all()
    engine.dispose()

    everything = "\n".join(received)
    # The capture saw the questions and the images, so the absence checks below mean something.
    assert "Real or synthetic?" in everything
    media = re.findall(r"/media/[^\s\"')]+", everything)
    assert media
    secrets = [s for a in assets for s in (a.source_sha256, a.canonical_sha256, a.display_sha256)]
    secrets += [path.name for path in seeded_study.source_files]
    secrets += [path.stem for path in seeded_study.source_files]
    secrets += list(seeded_study.patient_ids)
    leaked = [secret for secret in secrets if secret in everything]
    assert not leaked, f"the browser received {leaked}"
    # The origin may appear in the question's wording ("Real or synthetic?") and its options,
    # never in an image address, alt text, element id or widget key.
    pages = "\n".join(text for text in received if "<html" in text)
    for attribute in re.findall(r'(?:src|alt|id|data-testid|key)="([^"]*)"', pages):
        assert not re.search(r"real|synth", attribute, re.IGNORECASE), attribute
    assert pngs and all(png_chunk_types(png) <= {b"IHDR", b"IDAT", b"IEND"} for png in pngs)
    # Real and synthetic images of every content arrive with the same number of bytes: the
    # file size, visible in the browser's developer tools, tells nothing.
    assert len({len(png) for png in pngs}) == 1, sorted({len(png) for png in pngs})
    # ... and cross the wire as they are (not re-compressed on the way).
    assert all(encoding is None and int(length) == size for encoding, length, size in wire), wire
    for url in media:
        assert not re.search(r"real|synth", url, re.IGNORECASE), url
