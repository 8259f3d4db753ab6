"""Shares: which resources are shared, at a given time, with a person or with their sites."""

from __future__ import annotations

from datetime import timedelta

from concilium.platform import audit, sharing
from concilium.platform.db import transaction
from concilium.platform.tables import Share


def test_shared_with_counts_active_shares_to_the_person_or_their_sites(world, runtime, clock):
    owner = world.user("owner", (world.briey, "radiologist"))
    reader = world.user("reader", (world.metz, "radiologist"))
    now = runtime.now()

    def share(kind, resource, *, site=None, user=None, days=2):
        with transaction(runtime.sessions) as db:
            return sharing.create_share(
                db,
                audit.Actor(owner.id, owner.username),
                resource_kind=kind,
                resource_id=resource,
                to_site_id=site,
                to_user_id=user,
                expires_at=now + timedelta(days=days),
                now=now,
            ).id

    share("study", "1.2.3.1", site=world.metz.id)
    share("study", "1.2.3.2", user=reader.id)
    share("patient", "7", site=world.metz.id)
    share("study", "1.2.3.3", site=world.briey.id)  # to another site
    share("room", "9", site=world.metz.id)  # another kind
    share("study", "1.2.3.4", site=world.metz.id, days=1)  # expires before the question
    revoked = share("study", "1.2.3.5", site=world.metz.id)
    with transaction(runtime.sessions) as db:
        sharing.revoke_share(db, audit.SYSTEM, db.get(Share, revoked), now, None)
    clock.advance(days=1, seconds=1)

    def shared(user_id, site_ids):
        with transaction(runtime.sessions) as db:
            return sharing.shared_with(
                db, ("study", "patient"), user_id=user_id, site_ids=site_ids, now=runtime.now()
            )

    assert shared(reader.id, {world.metz.id}) == {
        "study": frozenset({"1.2.3.1", "1.2.3.2"}),
        "patient": frozenset({"7"}),
    }
    assert shared(None, {world.metz.id}) == {
        "study": frozenset({"1.2.3.1"}),
        "patient": frozenset({"7"}),
    }
    assert shared(reader.id, set()) == {"study": frozenset({"1.2.3.2"}), "patient": frozenset()}
    assert shared(None, set()) == {"study": frozenset(), "patient": frozenset()}
