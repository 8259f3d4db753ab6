"""Schemathesis against the app's own OpenAPI document (/api/openapi.json), in process.

Every documented operation is called with requests generated from its schema, signed in
with a bearer token of each role (and of a platform administrator, and with no token at
all), each token carrying every scope its owner may hold. Whatever the request: no 5xx;
every error is problem+json (RFC 9457); and a refused request writes nothing (row counts of
every table, audit trail aside, are the same before and after it).
"""

from __future__ import annotations

import os
import time
from collections import Counter
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from sqlalchemy import func, select

from concilium.config import ROLES
from concilium.platform.accounts import principal_for
from concilium.platform.db import Base, transaction
from concilium.platform.policy import scopes_within
from concilium.platform.tables import User
from concilium.services import ACTIONS

#: Generated requests per operation; each is sent once with every identity's token (with
#: their start-up, the whole run stays near a minute). Set OPENAPI_FUZZ_EXAMPLES for more.
EXAMPLES = int(os.environ.get("OPENAPI_FUZZ_EXAMPLES", "1"))
#: Tables a refusal may write to: the audit trail records refusals by design.
AUDIT_TABLES = frozenset({"audit_events"})


def _metadata_tables() -> list[Any]:
    return sorted(Base.metadata.tables.values(), key=lambda t: t.name)


def _row_counts(runtime: Any) -> dict[str, int]:
    tables = [t for t in _metadata_tables() if t.name not in AUDIT_TABLES]
    query = select(*(select(func.count()).select_from(t).scalar_subquery() for t in tables))
    with runtime.sessions() as db:
        counts = db.execute(query).one()
    return dict(zip((t.name for t in tables), counts, strict=True))


@pytest.fixture
def identities(world) -> dict[str, str]:
    """A bearer token of each role at Metz, of a platform administrator, and none."""
    people = {
        role: world.user(f"api-{role.replace('_', '-')}", (world.metz, role)) for role in ROLES
    }
    people["platform-admin"] = world.user("api-platform-admin", platform_admin=True)
    tokens: dict[str, str] = {}
    rt = world.runtime
    for name, user in people.items():
        with transaction(rt.sessions) as db:
            owner = db.get(User, user.id)
            assert owner is not None
            scopes = sorted(scopes_within(principal_for(db, owner, rt.now()), ACTIONS))
        if scopes:
            tokens[name] = world.token(user, *scopes)
    assert set(tokens) >= {"radiologist", "coordinator", "admin"}
    tokens["anonymous"] = ""
    return tokens


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_generated_requests_never_fail_with_5xx_answer_problems_and_refusals_write_nothing(
    app, runtime, identities
):
    started = time.monotonic()
    some_token = identities["radiologist"]
    schema = schemathesis.openapi.from_asgi(
        "/api/openapi.json", app, headers={"Authorization": f"Bearer {some_token}"}
    )
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) > 50
    statuses: Counter[int] = Counter()
    failures: list[str] = []

    for operation in operations:

        @settings(
            max_examples=EXAMPLES,
            deadline=None,
            derandomize=True,
            database=None,
            suppress_health_check=list(HealthCheck),
        )
        @given(case=operation.as_strategy())
        def check(case: Any) -> None:
            before = _row_counts(runtime)
            for name, token in identities.items():
                signed = {"Authorization": f"Bearer {token}"} if token else {}
                try:
                    response = case.call(headers=signed)
                except Exception as exc:  # the test client re-raises what the app did not catch
                    statuses[500] += 1
                    failures.append(f"{name}: {case.method} {case.formatted_path}: {exc!r}")
                    continue
                statuses[response.status_code] += 1
                where = f"{name}: {case.method} {case.formatted_path} -> {response.status_code}"
                if response.status_code >= 500:
                    failures.append(f"{where}: {response.text[:300]}")
                if response.status_code < 400:
                    before = _row_counts(runtime)  # what an accepted request wrote is its own
                    continue
                kind = (response.headers.get("content-type") or [""])[0]
                if not kind.startswith("application/problem+json"):
                    failures.append(f"{where}: error answered as {kind!r}")
                after = _row_counts(runtime)
                changed = {t: (before[t], after[t]) for t in before if before[t] != after[t]}
                if changed:
                    failures.append(f"{where}: a refusal wrote rows {changed}")
                before = after

        check()

    assert failures == [], "\n".join(failures[:40])
    assert sum(statuses.values()) >= len(operations) * len(identities)
    assert any(200 <= s < 300 for s in statuses), statuses
    print(
        f"{sum(statuses.values())} requests on {len(operations)} operations as "
        f"{len(identities)} identities in {time.monotonic() - started:.1f} s: {dict(statuses)}"
    )
