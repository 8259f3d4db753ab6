"""Migration 0014_share_origin: a patient share made before it comes from the lowest site
where its granter shared patients and where the patient was identified; one with no such
site comes from none (it grants the patient's demographics, no site's studies)."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import (
    Boolean,
    Connection,
    Date,
    DateTime,
    Integer,
    MetaData,
    Table,
    create_engine,
    select,
)

from concilium.services import migrate_database

NOW = dt.datetime.now(dt.UTC)


def _insert(conn: Connection, table_name: str, /, **values: Any) -> None:
    """A row with ``values``, and something plausible in every other required column."""
    table = Table(table_name, MetaData(), autoload_with=conn)
    row = dict(values)
    for column in table.columns:
        if column.name in row or column.nullable or column.server_default is not None:
            continue
        if column.primary_key and column.name != "id":
            continue
        if isinstance(column.type, Boolean):
            row[column.name] = False
        elif isinstance(column.type, DateTime):
            row[column.name] = NOW
        elif isinstance(column.type, Date):
            row[column.name] = NOW.date()
        elif isinstance(column.type, Integer):
            row.setdefault(column.name, 0)
        else:
            row[column.name] = f"{table_name}-{column.name}-{len(row)}"[: column.type.length or 32]  # type: ignore[attr-defined]
    conn.execute(table.insert().values(**row))


def test_earlier_patient_shares_come_from_the_granters_identifying_site(tmp_path):
    url = f"sqlite:///{tmp_path / 'c.db'}"
    migrate_database(url, "0013_account_security")
    engine = create_engine(url)
    with engine.begin() as conn:
        for site, finess in ((1, "570005165"), (2, "540000049"), (3, "540023264")):
            _insert(conn, "sites", id=site, name=f"site {site}", finess=finess)
        _insert(conn, "users", id=10, username="rad", email="rad@x", is_platform_admin=False)
        _insert(conn, "users", id=11, username="eng", email="eng@x", is_platform_admin=False)
        _insert(conn, "memberships", id=1, user_id=10, site_id=2, role="radiologist")
        _insert(conn, "memberships", id=2, user_id=10, site_id=3, role="radiologist")
        _insert(conn, "memberships", id=3, user_id=11, site_id=1, role="engineer")
        _insert(conn, "patients", id=5)
        _insert(conn, "patient_identifiers", id=1, patient_id=5, site_id=1, value="MTZ-5")
        _insert(conn, "patient_identifiers", id=2, patient_id=5, site_id=3, value="NCY-5")
        for share, by in ((1, 10), (2, 11)):
            _insert(
                conn, "shares", id=share, resource_kind="patient", resource_id="5",
                to_site_id=2, granted_by_id=by, expires_at=NOW + dt.timedelta(days=1),
            )  # fmt: skip
        _insert(
            conn, "shares", id=3, resource_kind="study", resource_id="1.2.3", to_site_id=2,
            granted_by_id=10, expires_at=NOW + dt.timedelta(days=1),
        )  # fmt: skip
    migrate_database(url, "0014_share_origin")
    with engine.connect() as conn:
        shares = Table("shares", MetaData(), autoload_with=conn)
        rows = conn.execute(select(shares.c.id, shares.c.from_site_id).order_by(shares.c.id))
        # The radiologist identified the patient at site 3 only; the engineer shares nothing.
        assert [tuple(r) for r in rows] == [(1, 3), (2, None), (3, None)]
    engine.dispose()
