"""A board's statistics on a meeting built for them: cases per meeting, the quorum-met
rate, submission to decision (nearest-rank median and 90th percentile), re-presentations,
decisions outside guidelines and trials; the page with its plots, the CSV a French
spreadsheet opens, and who may see them."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime, timedelta

from concilium.boards import case_store, decisions, registry, statistics
from concilium.platform.db import transaction

from .cases_world import actor
from .meeting_world import arrive, at, build_meeting, leave, take_up
from .test_case_pages import signed_in
from .test_decisions import FIELDS

MARCH = (datetime(2027, 3, 1, tzinfo=UTC), datetime(2027, 4, 1, tzinfo=UTC))


def _decided_and_refused(world, clock):
    """Case 1 decided outside guidelines with a trial; case 2 refused for want of quorum."""
    mw = build_meeting(world, clock)
    cw = mw.cw
    for user in (cw.pathologist, cw.haematologist, mw.radiologist):
        arrive(world, mw, user, 0, at(1))
    first, second = mw.cases
    take_up(world, mw, first, at(2))
    fields = decisions.DecisionFields(
        **{
            **FIELDS.__dict__,
            "referent_id": cw.referrer.id,
            "outside_guidelines": True,
            "justification": "Comorbidités",
        }
    )
    with transaction(world.runtime.sessions) as db:
        case = case_store.get_case(db, first)
        assert decisions.validate(db, actor(cw.pathologist), case, fields, at(10)).decision
    take_up(world, mw, second, at(11))
    leave(world, mw, mw.radiologist, 12, at(12))
    with transaction(world.runtime.sessions) as db:
        case = case_store.get_case(db, second)
        outcome = decisions.validate(db, actor(cw.pathologist), case, fields, at(13))
        assert outcome.decision is None
    clock.now = at(20)
    return mw


def test_nearest_rank_percentiles():
    days = [timedelta(days=n) for n in (10, 1, 9, 2, 8, 3, 7, 4, 6, 5)]
    assert statistics.percentile(days, 50) == timedelta(days=5)
    assert statistics.percentile(days, 90) == timedelta(days=9)
    assert statistics.percentile([timedelta(hours=3)], 90) == timedelta(hours=3)
    assert statistics.percentile([], 50) is None


def test_the_figures_of_a_period(world, clock):
    mw = _decided_and_refused(world, clock)
    with world.runtime.sessions() as db:
        board = registry.get_board(db, mw.cw.board_id)
        stats = statistics.board_statistics(db, board, *MARCH)
        april = statistics.board_statistics(db, board, MARCH[1], datetime(2027, 5, 1, tzinfo=UTC))
    # 19 and 26 March; the first took both cases, the second none yet.
    assert [m.cases for m in stats.meetings] == [2, 0]
    assert stats.cases == 2 and stats.cases_per_meeting == 1.0
    assert (stats.quorum_met, stats.validations, stats.quorum_rate) == (1, 2, 0.5)
    # Submitted Monday 15 March 08:00 UTC, decided Friday 19 March 13:10 UTC.
    assert stats.delays == (timedelta(days=4, hours=5, minutes=10),)
    assert stats.median_delay == stats.p90_delay == stats.delays[0]
    assert (stats.postponements, stats.represent) == (1, 0)
    assert (stats.outside_guidelines, stats.trials) == (1, 1)
    # Another period sees none of it.
    assert (april.cases, april.validations, april.delays, april.trials) == (0, 0, (), 0)


def test_the_page_and_the_csv_for_the_coordinator_only(app, world, clock):
    mw = _decided_and_refused(world, clock)
    cw = mw.cw
    url = f"/boards/{cw.board_id}/statistics?from=2027-03-01&to=2027-03-31"
    coordinator = signed_in(app, world, cw.coordinator, "fr")
    assert 'id="statistics-link"' in coordinator.get(f"/boards/{cw.board_id}").text
    page = coordinator.get(url)
    assert page.status_code == 200, page.text
    assert 'id="chart-cases"' in page.text and 'id="chart-delays"' in page.text
    assert "Quorum atteint" in page.text and "50 %" in page.text
    assert "Lemoine" not in page.text and "BRY-1" not in page.text
    export = coordinator.get(f"/boards/{cw.board_id}/statistics.csv?from=2027-03-01&to=2027-03-31")
    assert export.status_code == 200
    assert export.headers["content-type"].startswith("text/csv")
    assert export.content.startswith(b"\xef\xbb\xbf")
    text = export.content.decode("utf-8-sig")
    assert "\r\n" in text
    rows = dict(csv.reader(io.StringIO(text), delimiter=";"))
    assert rows["Indicateur"] == "Valeur"
    assert rows["Quorum atteint (%)"] == "50"
    assert rows["Dossiers par réunion"] == "1"
    assert rows["Délai soumission-décision, médiane (jours)"] == "4,2"
    assert rows["Décisions hors référentiel"] == "1"
    assert rows["Essais proposés"] == "1"
    assert rows["Reports (réinscrits)"] == "1"
    assert rows["Dossiers de la réunion du 19/03/2027"] == "2"
    assert "Lemoine" not in text
    # A member who neither coordinates nor facilitates, or of another board: refused.
    for user in (cw.haematologist, cw.outsider):
        browser = signed_in(app, world, user)
        assert browser.get(url).status_code == 403
        assert 'id="statistics-link"' not in browser.get(f"/boards/{cw.board_id}").text
        assert browser.get(f"/boards/{cw.board_id}/statistics.csv").status_code == 403
    # The organising site's administrator sees them.
    admin = world.user("admin-metz", (world.metz, "admin"), with_totp=True)
    assert signed_in(app, world, admin).get(url).status_code == 200
    # A bad period is a form error, not a crash.
    assert coordinator.get(url.replace("2027-03-31", "nope")).status_code == 422
