"""Versions of the resources the service serves over FHIR: a number per resource, one more
at each change whatever the channel (FHIR, HL7 ADT and orders), read as the ``ETag`` and
``meta.versionId`` and checked against ``If-Match`` (FHIR R4 3.1.0.5.1)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from concilium.platform.db import utcnow
from concilium.reading.tables import ResourceVersion

__all__ = ["PATIENT", "SERVICE_REQUEST", "bump", "current"]

PATIENT = "Patient"
SERVICE_REQUEST = "ServiceRequest"


def _row(session: Session, resource_type: str, resource_id: int) -> ResourceVersion | None:
    return session.execute(
        select(ResourceVersion).where(
            ResourceVersion.resource_type == resource_type,
            ResourceVersion.resource_id == resource_id,
        )
    ).scalar_one_or_none()


def current(session: Session, resource_type: str, resource_id: int) -> int:
    """The resource's version: 1 until it first changes."""
    row = _row(session, resource_type, resource_id)
    return row.version if row is not None else 1


def bump(
    session: Session, resource_type: str, resource_id: int, now: datetime | None = None
) -> int:
    """Count one more change of the resource (in the caller's transaction); the new version.

    A resource created now stays at version 1: the first row is written by its first
    change."""
    row = _row(session, resource_type, resource_id)
    if row is None:
        row = ResourceVersion(
            resource_type=resource_type, resource_id=resource_id, version=1, updated_at=now
        )
        session.add(row)
    row.version += 1
    row.updated_at = now or utcnow()
    session.flush()
    return row.version
