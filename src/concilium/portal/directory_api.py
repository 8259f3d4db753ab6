"""The regional directory over HTTP (``GET /api/v1/people``): the forms naming a person
(shares, invitations, a procedure's team) ask it as the person types."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query
from pydantic import BaseModel

from concilium.platform import directory
from concilium.platform.policy import PlatformAction
from concilium.web.context import Ctx, gate

router = APIRouter(prefix="/api/v1", tags=["platform"])


class HospitalOut(BaseModel):
    id: int
    name: str


class PersonOut(BaseModel):
    id: int
    username: str
    """What a form naming a person expects."""
    full_name: str
    hospitals: list[HospitalOut]
    specialty: str
    profession: str

    @classmethod
    def of(cls, person: directory.Person) -> PersonOut:
        return cls(
            id=person.id,
            username=person.username,
            full_name=person.full_name,
            hospitals=[HospitalOut(id=h.id, name=h.name) for h in person.hospitals],
            specialty=person.specialty,
            profession=person.profession,
        )


@router.get("/people")
def search_people(
    ctx: Annotated[Ctx, gate(PlatformAction.PEOPLE_SEARCH)],
    q: Annotated[str, Query(max_length=directory.MAX_QUERY)] = "",
    site_id: Annotated[int | None, Query(ge=1)] = None,
    specialty: Annotated[str, Query(max_length=directory.MAX_QUERY)] = "",
    limit: Annotated[int, Query(ge=1, le=directory.MAX_RESULTS)] = directory.DEFAULT_RESULTS,
) -> list[PersonOut]:
    """People of the region's hospitals whose name or user name holds every word of ``q``,
    optionally working at ``site_id`` and in ``specialty``; best matches first."""
    ctx.authorize(PlatformAction.PEOPLE_SEARCH)
    query = directory.PeopleQuery(text=q, site_id=site_id, specialty=specialty, limit=limit)
    return [PersonOut.of(p) for p in directory.search(ctx.db, query)]
