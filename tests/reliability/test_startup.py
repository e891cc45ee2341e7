"""The server prepares the database while it starts: on an empty data directory the demo is
seeded before the first request is answered, so the first visitor does not wait for it."""

from __future__ import annotations

import pytest
from app_server import AppServer
from sqlalchemy import select

from study.db import make_engine, transaction
from study.demo import DEMO_STUDY_NAME, SIMULATED_STUDY_NAME
from study.models import Account, Study

pytestmark = pytest.mark.slow


def test_the_demo_is_seeded_before_the_server_answers(tmp_path, app_servers):
    data_dir = tmp_path / "instance"
    server = AppServer(
        {"VTT_DATA_DIR": str(data_dir), "VTT_SEED_DEMO": "1"}, tmp_path / "streamlit.log"
    )
    app_servers.append(server)
    server.start()  # returns once the server answers its health check; nobody visited
    engine = make_engine(f"sqlite:///{data_dir / 'vtt.sqlite3'}")
    with transaction(engine) as session:
        studies = set(session.scalars(select(Study.name)))
        accounts = set(session.scalars(select(Account.username)))
    engine.dispose()
    assert studies == {DEMO_STUDY_NAME, SIMULATED_STUDY_NAME}
    assert accounts == {"coordinator"}
