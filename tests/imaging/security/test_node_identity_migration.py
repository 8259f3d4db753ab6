"""Migration 0015_imaging_ae_identity: nodes registered before it keep calling from where they
are registered (their IP address; for a host name, what it resolves to), with no
certificate bound."""

from __future__ import annotations

import datetime as dt

from alembic import command
from sqlalchemy import MetaData, Table, create_engine, select

from concilium.platform.db import alembic_config
from concilium.services import SCHEMA, migrate_database


def test_existing_nodes_call_from_their_registered_address(tmp_path):
    url = f"sqlite:///{tmp_path / 'c.db'}"
    migrate_database(url, "0014_share_origin")
    engine = create_engine(url)
    now = dt.datetime.now(dt.UTC)
    with engine.begin() as conn:
        sites = Table("sites", MetaData(), autoload_with=conn)
        nodes = Table("imaging_remote_aes", MetaData(), autoload_with=conn)
        conn.execute(
            sites.insert().values(
                id=1, name="CH Briey", finess="540000049", active=True,
                timezone="Europe/Paris", holiday_region="FR", created_at=now,
            )
        )  # fmt: skip
        for title, host in (("BY_IP", "10.0.0.7"), ("BY_V6", "fd00::7"), ("BY_NAME", "pacs.lan")):
            conn.execute(
                nodes.insert().values(
                    ae_title=title, host=host, port=104, site_id=1, description="",
                    allow_store=True, allow_query=False, allow_move_destination=False,
                    tls=False, created_at=now,
                )
            )  # fmt: skip
    migrate_database(url)
    with engine.connect() as conn:
        nodes = Table("imaging_remote_aes", MetaData(), autoload_with=conn)
        rows = conn.execute(select(nodes.c.ae_title, nodes.c.networks, nodes.c.certificate))
        assert sorted(tuple(r) for r in rows) == [
            ("BY_IP", "10.0.0.7/32", ""),
            ("BY_NAME", "", ""),
            ("BY_V6", "fd00::7/128", ""),
        ]
    command.downgrade(alembic_config(url, SCHEMA), "0014_share_origin")
    engine.dispose()
