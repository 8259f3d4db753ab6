"""``concilium demo load`` gives a demonstration worth opening: studies of the demo patients
in each hospital's archive, a modality node per hospital, a planned telesurgery procedure
and a scheduled live session with its invitations; loading twice adds nothing twice."""

from __future__ import annotations

import re

import pyotp
import pytest
from click.testing import CliRunner
from sqlalchemy import func, select

from concilium.cli import main
from concilium.imaging import nodes
from concilium.imaging.tables import ImagingInstance, ImagingStudy
from concilium.live import demo as live_demo
from concilium.live.tables import LiveParticipant, LiveSession
from concilium.platform import accounts
from concilium.platform.db import transaction
from concilium.telesurgery import demo as telesurgery_demo
from concilium.telesurgery.tables import Procedure

from .conftest import World


def _counts(runtime) -> dict[str, int]:  # type: ignore[no-untyped-def]
    with transaction(runtime.sessions) as db:

        def count(query) -> int:  # type: ignore[no-untyped-def]
            return int(db.execute(select(func.count()).select_from(query.subquery())).scalar_one())

        return {
            "studies": count(select(ImagingStudy.id)),
            "instances": count(select(ImagingInstance.id)),
            "procedures": count(
                select(Procedure.id).where(Procedure.title == telesurgery_demo.TITLE)
            ),
            "sessions": count(select(LiveSession.id).where(LiveSession.title == live_demo.TITLE)),
            "invitations": count(select(LiveParticipant.id)),
            "nodes": len(nodes.list_remote_aes(db, None)),
        }


@pytest.fixture
def demo(settings, database_url, monkeypatch):  # type: ignore[no-untyped-def]
    monkeypatch.setenv("CONCILIUM_DATA_DIR", str(settings.data_dir))
    monkeypatch.setenv("CONCILIUM_DATABASE_URL", database_url)
    runner = CliRunner()

    def load() -> str:
        result = runner.invoke(main, ["demo", "load"], catch_exceptions=False)
        assert result.exit_code == 0, result.output
        return result.output

    return load


def test_the_demo_holds_studies_a_procedure_and_a_session_once(demo, runtime, app):
    output = demo()
    first = _counts(runtime)
    assert first["studies"] == 4 and first["instances"] == 2 * 11 + 2
    assert first["nodes"] == 2
    assert first["procedures"] == 1 and first["sessions"] == 1 and first["invitations"] >= 3
    with transaction(runtime.sessions) as db:
        live = db.execute(select(LiveSession)).scalar_one()
        assert live.status == "scheduled"
        procedure = db.execute(select(Procedure)).scalar_one()
        assert procedure.status == "planned"
    demo()
    assert _counts(runtime) == first

    # The radiologist of Metz finds the studies of Metz's patients on the study list.
    password = re.search(r"radiologue\s+(Demo-\S+)", output)
    assert password is not None
    with transaction(runtime.sessions) as db:
        user = accounts.user_by_username(db, "radiologue")
        assert user is not None
        user.totp_secret = runtime.box.seal(pyotp.random_base32(), f"totp:{user.id}")
        metz = accounts.site_by_finess(db, "570005165")
        briey = accounts.site_by_finess(db, "540000049")
        db.expunge_all()
    world = World(runtime, metz, briey)
    browser = world.client(app)
    world.sign_in(browser, user, password.group(1))
    page = browser.get("/imaging")
    assert page.status_code == 200
    listed = page.text[page.text.index('id="studies"') :]
    assert listed.count('href="/imaging/studies/') == 2
    assert "DUPONT Jeanne" in listed and "SCHMITT Bernard" in listed
    assert "KLEIN" not in listed  # Briey's patient, not shared with Metz
    assert "11 images" in listed
