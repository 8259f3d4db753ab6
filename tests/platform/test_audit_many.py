"""Many audit entries in one round (``audit.record_many``): chained exactly as one call of
``audit.record`` each, between single entries, and the chain verifies."""

from __future__ import annotations

from itertools import pairwise

import pytest
from sqlalchemy import select

from concilium.platform import audit
from concilium.platform.db import transaction
from concilium.platform.tables import AuditEvent

ACTOR = audit.Actor(1, "dr-a", role="coordinator", ip="10.0.0.7")


def test_many_entries_chain_like_single_ones(runtime):
    with transaction(runtime.sessions) as db:
        audit.record(db, ACTOR, "patient.read", "success", patient_id=1)
        made = audit.record_many(
            db,
            ACTOR,
            [
                audit.Entry("board_case.read", "success", "board_case", n, patient_id=n)
                for n in range(10, 15)
            ],
        )
        assert audit.record_many(db, ACTOR, []) == []
        audit.record(db, ACTOR, "patient.read", "success", patient_id=2)
    assert [e.seq for e in made] == [2, 3, 4, 5, 6]
    with runtime.sessions() as db:
        rows = db.scalars(select(AuditEvent).order_by(AuditEvent.seq)).all()
        assert [r.patient_id for r in rows] == [1, 10, 11, 12, 13, 14, 2]
        assert all(b.prev_hash == a.hash for a, b in pairwise(rows))
        assert audit.verify(db) == []


def test_an_unknown_outcome_writes_nothing(runtime):
    with pytest.raises(ValueError), transaction(runtime.sessions) as db:
        audit.record_many(db, ACTOR, [audit.Entry("x.read", "success"), audit.Entry("x", "?")])
    with runtime.sessions() as db:
        assert audit.chain_length(db) == 0
