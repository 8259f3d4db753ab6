"""The archive's pages: study search, the study page (series, sharing, rejection, deletion,
teaching export) and the administration of DICOM nodes with the storage statistics.

Thin adapters over the archive's domain modules and `concilium.platform.sharing`: the list is
the QIDO-RS/C-FIND search of `concilium.imaging.query` (same visibility, same audit), and
every action asks the policy about the very study it touches.
"""

from __future__ import annotations

import json
import secrets
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import IO, Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Form, Query, Request
from fastapi.responses import Response, StreamingResponse
from pydicom.dataset import Dataset

from concilium.imaging import nodes
from concilium.imaging.access import STUDY_KIND, NotAuthorized, study_target
from concilium.imaging.actions import ImagingAction
from concilium.imaging.archive import statistics, study_by_uid
from concilium.imaging.deidentify import TemporalOption
from concilium.imaging.dicomweb import archive_of
from concilium.imaging.dimse import ClientTls
from concilium.imaging.echo import EchoResult, echo
from concilium.imaging.export import write_teaching_export
from concilium.imaging.lifecycle import RejectionReason, delete_study, reject
from concilium.imaging.matching import InvalidQuery
from concilium.imaging.query import find
from concilium.imaging.tables import ImagingStudy, RemoteApplicationEntity
from concilium.platform import accounts, audit, directory, patients, share_mail, sharing
from concilium.platform.errors import Forbidden, InvalidInput, NotFound
from concilium.platform.i18n import N_, _
from concilium.platform.policy import Action, Decision, PlatformAction, Target, decide
from concilium.platform.tables import Patient, Share, User
from concilium.web.context import Ctx, gate
from concilium.web.forms import redirect_to, run_form_action
from concilium.web.rendering import render_page

router = APIRouter(include_in_schema=False)

PAGE_SIZE = 25
"""Studies per page of the list."""
REJECTION_LABELS = {
    RejectionReason.QUALITY: N_("Rejected for quality reasons"),
    RejectionReason.PATIENT_SAFETY: N_("Rejected for patient safety reasons"),
    RejectionReason.INCORRECT_WORKLIST_ENTRY: N_("Incorrect modality worklist entry"),
    RejectionReason.RETENTION_EXPIRED: N_("Data retention policy expired"),
}
"""Code meanings of PS3.16 CID 7011, as the page offers them."""
_STUDY_KEYS = (
    "StudyInstanceUID",
    "PatientName",
    "PatientID",
    "PatientBirthDate",
    "StudyDate",
    "StudyTime",
    "AccessionNumber",
    "StudyDescription",
    "ModalitiesInStudy",
    "NumberOfStudyRelatedSeries",
    "NumberOfStudyRelatedInstances",
    "InstitutionName",
)
_SERIES_KEYS = (
    "SeriesInstanceUID",
    "SeriesNumber",
    "SeriesDescription",
    "Modality",
    "BodyPartExamined",
    "NumberOfSeriesRelatedInstances",
)

Short = Annotated[str, Query(max_length=64)]


def _text(ds: Dataset, keyword: str) -> str:
    value = ds.get(keyword)
    if value is None or value == "":
        return ""
    if isinstance(value, list | tuple) or type(value).__name__ == "MultiValue":
        return ", ".join(str(v) for v in value)
    return str(value)


def _dicom_date(text: str) -> str:
    """``YYYYMMDD`` of a form's ``YYYY-MM-DD`` date ("" when empty)."""
    text = text.strip()
    if not text:
        return ""
    try:
        return date.fromisoformat(text).strftime("%Y%m%d")
    except ValueError as exc:
        raise InvalidInput(_("dates are written YYYY-MM-DD")) from exc


def _day(text: str) -> date | None:
    """The day of a DICOM ``YYYYMMDD`` date, None when absent or malformed."""
    try:
        return datetime.strptime(text, "%Y%m%d").date() if len(text) == 8 else None
    except ValueError:
        return None


def _find(ctx: Ctx, identifier: Dataset, limit: int | None = None, offset: int = 0) -> list[Any]:
    try:
        return find(
            ctx.db,
            ctx.principal,
            ctx.actor,
            identifier,
            now=ctx.now,
            retrieve_ae_title=ctx.runtime.settings.dicom_ae_title,
            limit=limit,
            offset=offset,
        )
    except InvalidQuery as exc:
        raise InvalidInput(str(exc)) from exc
    except NotAuthorized as exc:
        raise Forbidden(str(exc)) from exc


# --- the study list ----------------------------------------------------------------------------


@router.get("/imaging")
def studies_page(
    request: Request,
    ctx: Annotated[Ctx, gate(ImagingAction.STUDY_READ)],
    patient_name: Short = "",
    patient_id: Short = "",
    date_from: Annotated[str, Query(max_length=10)] = "",
    date_to: Annotated[str, Query(max_length=10)] = "",
    modality: Annotated[str, Query(max_length=16)] = "",
    accession: Short = "",
    page: Annotated[int, Query(ge=1, le=10000)] = 1,
) -> Response:
    """Studies this person may read (own sites, shared with them or their site)."""
    filters = {
        "patient_name": patient_name,
        "patient_id": patient_id,
        "date_from": date_from,
        "date_to": date_to,
        "modality": modality,
        "accession": accession,
    }
    error = ""
    studies: list[dict[str, Any]] = []
    more = False
    try:
        identifier = _study_identifier(filters)
        matches = _find(ctx, identifier, PAGE_SIZE + 1, (page - 1) * PAGE_SIZE)
        ctx.commit()  # the query's audit entry
        more = len(matches) > PAGE_SIZE
        studies = [_study_row(m) for m in matches[:PAGE_SIZE]]
    except InvalidInput as exc:
        ctx.db.rollback()
        error = exc.detail
    query = urlencode({k: v for k, v in filters.items() if v})
    return render_page(
        request,
        "imaging/studies.html",
        ctx,
        422 if error else 200,
        studies=studies,
        filters=filters,
        error=error,
        page=page,
        more=more,
        query=query,
        may_manage_nodes=decide(ctx.principal, ImagingAction.AE_MANAGE, _own_sites(ctx)).allowed,
    )


def _own_sites(ctx: Ctx) -> Target:
    return Target(kind="site", site_ids=frozenset(ctx.principal.roles))


def _study_identifier(filters: dict[str, str]) -> Dataset:
    ds = Dataset()
    ds.QueryRetrieveLevel = "STUDY"
    for keyword in _STUDY_KEYS:
        setattr(ds, keyword, "")
    name = filters["patient_name"].strip()
    if name:
        # A name without wildcard finds every name starting with it, as people search.
        ds.PatientName = name if any(c in name for c in "*?") else name + "*"
    if filters["patient_id"].strip():
        ds.PatientID = filters["patient_id"].strip()
    if filters["accession"].strip():
        ds.AccessionNumber = filters["accession"].strip()
    if filters["modality"].strip():
        ds.ModalitiesInStudy = filters["modality"].strip().upper()
    start, end = _dicom_date(filters["date_from"]), _dicom_date(filters["date_to"])
    if start and end and start > end:
        raise InvalidInput(_("the first date comes after the last one"))
    if start or end:
        ds.StudyDate = start if start == end else f"{start}-{end}"
    return ds


def _study_row(match: Dataset) -> dict[str, Any]:
    row: dict[str, Any] = {keyword: _text(match, keyword) for keyword in _STUDY_KEYS}
    row["StudyDate"] = _day(row["StudyDate"])
    row["PatientBirthDate"] = _day(row["PatientBirthDate"])
    row["PatientName"] = row["PatientName"].replace("^", " ").strip()
    return row


# --- one study ---------------------------------------------------------------------------------


def _study(ctx: Ctx, study_uid: str, action: Action) -> tuple[ImagingStudy, Target, Decision]:
    """The study once the policy allows ``action``; 404 to whoever may not even read it."""
    study = study_by_uid(ctx.db, study_uid)
    if study is None:
        raise NotFound(_("no such study"))
    target = study_target(ctx.db, study, ctx.now)
    if not decide(ctx.principal, ImagingAction.STUDY_READ, target).allowed:
        # Invisible and absent look the same, as on DICOMweb; the refusal is audited.
        try:
            ctx.authorize(ImagingAction.STUDY_READ, target)
        except Forbidden:
            raise NotFound(_("no such study")) from None
    decision = ctx.authorize(action, target)
    return study, target, decision


@router.get("/imaging/studies/{study}")
def study_page(
    request: Request, study: str, ctx: Annotated[Ctx, gate(ImagingAction.STUDY_READ)]
) -> Response:
    return _study_view(request, ctx, study, "")


def _study_view(
    request: Request, ctx: Ctx, study_uid: str, error: str, status: int = 200
) -> Response:
    study, target, decision = _study(ctx, study_uid, ImagingAction.STUDY_READ)
    identifier = Dataset()
    identifier.QueryRetrieveLevel = "SERIES"
    identifier.StudyInstanceUID = study.study_instance_uid
    for keyword in _SERIES_KEYS:
        setattr(identifier, keyword, "")
    series = [{k: _text(m, k) for k in _SERIES_KEYS} for m in _find(ctx, identifier)]
    ctx.commit()  # the query's audit entry
    can_share = decide(ctx.principal, PlatformAction.SHARE_MANAGE, target).allowed
    sites = {s.id: s.name for s in accounts.list_sites(ctx.db)}
    people = _people(ctx) if can_share else []
    return render_page(
        request,
        "imaging/study.html",
        ctx,
        status,
        study=study,
        series=series,
        site_name=sites.get(study.site_id, "?"),
        emergency=decision.emergency,
        shared=decision.basis == "share",
        can_share=can_share,
        can_remove=decide(ctx.principal, ImagingAction.STUDY_DELETE, target).allowed,
        shares=sharing.shares_of(ctx.db, STUDY_KIND, study.study_instance_uid) if can_share else [],
        sites=sites,
        other_sites=[(i, n) for i, n in sites.items() if i != study.site_id],
        names={u.id: u.full_name for u in people},
        reasons=REJECTION_LABELS,
        default_expiry=(ctx.now + timedelta(days=7)).date().isoformat(),
        error=error,
        now=ctx.now,
        patient_link=_patient_link(ctx, study),
    )


def _patient_link(ctx: Ctx, study: ImagingStudy) -> str:
    """The platform page of the study's patient, for a reader who may open it."""
    if study.patient_id is None:
        return ""
    patient = ctx.db.get(Patient, study.patient_id)
    if patient is None:
        return ""
    target = patients.patient_target(ctx.db, patient, ctx.now)
    if not decide(ctx.principal, PlatformAction.PATIENT_READ, target).allowed:
        return ""
    return f"/patients/{patient.id}"


def _people(ctx: Ctx) -> list[User]:
    return [u for u in accounts.list_users(ctx.db, None) if not u.disabled]


def _study_action(request: Request, ctx: Ctx, study_uid: str, run: Any, done: str = "") -> Response:
    return run_form_action(
        ctx,
        run,
        lambda exc: _study_view(request, ctx, study_uid, exc.detail, exc.status),
        done or f"/imaging/studies/{study_uid}",
    )


@router.post("/imaging/studies/{study}/shares")
def study_share(
    request: Request,
    study: str,
    ctx: Annotated[Ctx, gate(PlatformAction.SHARE_MANAGE)],
    expires_on: Annotated[str, Form(max_length=10)],
    to_site_id: Annotated[str, Form(max_length=12)] = "",
    to_user_id: Annotated[str, Form(max_length=12)] = "",
    to_user: Annotated[str, Form(max_length=64)] = "",
    reason: Annotated[str, Form(max_length=2000)] = "",
) -> Response:
    """Share the study with another site or one person until a day (audited)."""
    found, target, _decision = _study(ctx, study, PlatformAction.SHARE_MANAGE)

    def run() -> None:
        try:
            day = date.fromisoformat(expires_on.strip())
        except ValueError as exc:
            raise InvalidInput(_("give the day the share ends (YYYY-MM-DD)")) from exc
        site_id = int(to_site_id) if to_site_id.isdigit() else None
        user_id = int(to_user_id) if to_user_id.isdigit() else None
        if to_user.strip():
            user_id = directory.named(ctx.db, to_user).id
        if site_id is not None:
            accounts.get_site(ctx.db, site_id)
            if site_id == found.site_id:
                raise InvalidInput(_("the study already belongs to that site"))
        if user_id is not None:
            accounts.get_user(ctx.db, user_id)
        share = sharing.create_share(
            ctx.db,
            ctx.actor,
            resource_kind=STUDY_KIND,
            resource_id=found.study_instance_uid,
            to_site_id=site_id,
            to_user_id=user_id,
            expires_at=datetime.combine(day, time(23, 59), tzinfo=UTC),
            now=ctx.now,
            reason=reason,
            patient_id=target.patient_id,
            from_site_id=found.site_id,
            granter_site_ids=frozenset(ctx.principal.roles),
        )
        share_mail.send_share_notice(
            ctx.db,
            ctx.runtime,
            share,
            what=N_("an imaging study"),
            path=f"/imaging/studies/{found.study_instance_uid}",
        )
        ctx.commit()

    return _study_action(request, ctx, study, run)


@router.post("/imaging/studies/{study}/shares/{share_id}/revoke")
def study_share_revoke(
    study: str, share_id: int, ctx: Annotated[Ctx, gate(PlatformAction.SHARE_MANAGE)]
) -> Response:
    """End a share of the study now (audited)."""
    found, target, _decision = _study(ctx, study, PlatformAction.SHARE_MANAGE)
    share: Share = sharing.get_share(ctx.db, share_id)
    if share.resource_kind != STUDY_KIND or share.resource_id != found.study_instance_uid:
        raise NotFound(_("share %(number)s not found") % {"number": share_id})
    sharing.revoke_share(ctx.db, ctx.actor, share, ctx.now, target.patient_id)
    ctx.commit()
    return redirect_to(f"/imaging/studies/{study}")


@router.post("/imaging/studies/{study}/reject")
def study_reject(
    request: Request,
    study: str,
    ctx: Annotated[Ctx, gate(ImagingAction.STUDY_DELETE)],
    reason: Annotated[str, Form(max_length=16)],
) -> Response:
    """Withdraw the study from every query and retrieval (IHE IOCM rejection, audited)."""
    found, _target, _decision = _study(ctx, study, ImagingAction.STUDY_DELETE)
    uid = found.study_instance_uid

    def run() -> None:
        try:
            why = RejectionReason(reason)
        except ValueError as exc:
            raise InvalidInput(_("choose a rejection reason from the list")) from exc
        # Rejection writes in its own transaction; SQLite lets one writer in at a time.
        ctx.commit()
        try:
            reject(archive_of(request), ctx.principal, ctx.actor, uid, why)
        except NotAuthorized as exc:
            raise Forbidden(str(exc)) from exc

    return _study_action(request, ctx, study, run, "/imaging")


@router.post("/imaging/studies/{study}/delete")
def study_delete(
    request: Request, study: str, ctx: Annotated[Ctx, gate(ImagingAction.STUDY_DELETE)]
) -> Response:
    """Remove the study and its files for good (administrators of its site, audited)."""
    found, _target, _decision = _study(ctx, study, ImagingAction.STUDY_DELETE)
    uid = found.study_instance_uid
    ctx.commit()  # deletion runs in its own transaction
    try:
        delete_study(archive_of(request), ctx.principal, ctx.actor, uid)
    except NotAuthorized as exc:
        raise Forbidden(str(exc)) from exc
    return redirect_to("/imaging")


@router.get("/imaging/studies/{study}/teaching-export")
def study_teaching_export(
    request: Request,
    study: str,
    ctx: Annotated[Ctx, gate(ImagingAction.STUDY_READ)],
    retain_dates: Annotated[str, Query(max_length=8)] = "",
) -> Response:
    """The study de-identified by the PS3.15 basic profile, as a ZIP (audited)."""
    found, _target, _decision = _study(ctx, study, ImagingAction.STUDY_READ)
    temporal = TemporalOption.MODIFIED_DATES if retain_dates else TemporalOption.REMOVE
    # Spooled to a file: a large study is never held whole in memory.
    spool: IO[bytes] = tempfile.TemporaryFile()  # noqa: SIM115 - closed by the response
    try:
        write_teaching_export(
            archive_of(request),
            ctx.db,
            ctx.principal,
            ctx.actor,
            found.study_instance_uid,
            spool,
            temporal=temporal,
            # A fresh secret per export: the file cannot be linked back by its UIDs.
            salt=secrets.token_bytes(32),
        )
    except NotAuthorized as exc:
        spool.close()
        raise Forbidden(str(exc)) from exc
    except BaseException:
        spool.close()
        raise
    ctx.commit()
    spool.seek(0)

    def chunks() -> Iterator[bytes]:
        with spool:
            while block := spool.read(1 << 20):
                yield block

    return StreamingResponse(
        chunks(),
        media_type="application/zip",
        headers={"content-disposition": 'attachment; filename="teaching-file.zip"'},
    )


# --- administration: DICOM nodes and storage -----------------------------------------------------


@router.get("/admin/imaging/aes")
def aes_page(request: Request, ctx: Annotated[Ctx, gate(ImagingAction.AE_MANAGE)]) -> Response:
    return _aes_view(request, ctx, "", {})


def _managed_sites(ctx: Ctx) -> list[tuple[int, str]]:
    managed = ctx.visible_sites(ImagingAction.AE_MANAGE)
    sites = accounts.list_sites(ctx.db)
    return [(s.id, s.name) for s in sites if managed is None or s.id in managed]


_REFUSED = {
    "dicom.associate": N_("association refused"),
    str(ImagingAction.STUDY_STORE): N_("images refused"),
}


@dataclass(frozen=True)
class _Refusal:
    at: datetime
    what: str
    reason: str
    address: str


def _refusals(ctx: Ctx, ae: RemoteApplicationEntity) -> list[_Refusal]:
    """The node's latest refusals: associations claiming its title from elsewhere, and
    what it sent that the policy refused."""
    found = []
    for event in audit.refusals_of(ctx.db, f"ae:{ae.ae_title}", "ae", ae.ae_title):
        try:
            detail = json.loads(event.detail or "{}")
        except ValueError:
            detail = {}
        found.append(
            _Refusal(
                at=event.at,
                what=_REFUSED.get(event.action, N_("refused")),
                reason=str(detail.get("reason", "")),
                address=str(detail.get("address", event.ip or "")),
            )
        )
    return found


def _aes_view(
    request: Request,
    ctx: Ctx,
    error: str,
    form: dict[str, Any],
    status: int = 200,
    echoed: EchoResult | None = None,
) -> Response:
    ctx.authorize(ImagingAction.AE_MANAGE, _own_sites(ctx))
    sites = _managed_sites(ctx)
    managed = ctx.visible_sites(ImagingAction.AE_MANAGE)
    settings = ctx.runtime.settings
    aes = nodes.list_remote_aes(ctx.db, managed)
    return render_page(
        request,
        "imaging/aes.html",
        ctx,
        status,
        aes=aes,
        own={
            "ae_title": settings.dicom_ae_title,
            "host": settings.dicom_host,
            "port": settings.dicom_port,
            "tls": settings.dicom_tls_certificate is not None,
        },
        refusals={ae.ae_title: _refusals(ctx, ae) for ae in aes},
        echo=echoed,
        sites=sites,
        names=dict(sites),
        statistics=[(name, statistics(ctx.db, site_id)) for site_id, name in sites],
        error=error,
        form=form,
    )


def _ae_target(site_id: int) -> Target:
    return Target(kind="ae", site_ids=frozenset({site_id}))


@router.post("/admin/imaging/aes")
def aes_add(
    request: Request,
    ctx: Annotated[Ctx, gate(ImagingAction.AE_MANAGE)],
    ae_title: Annotated[str, Form(max_length=64)],
    host: Annotated[str, Form(max_length=255)],
    port: Annotated[str, Form(max_length=5)],
    site_id: Annotated[int, Form()],
    description: Annotated[str, Form(max_length=200)] = "",
    allow_store: Annotated[str, Form(max_length=8)] = "",
    allow_query: Annotated[str, Form(max_length=8)] = "",
    allow_move_destination: Annotated[str, Form(max_length=8)] = "",
    tls: Annotated[str, Form(max_length=8)] = "",
    networks: Annotated[str, Form(max_length=1000)] = "",
    certificate: Annotated[str, Form(max_length=400)] = "",
) -> Response:
    """Register a DICOM node of a site: it then acts for that site, within its flags, when
    it calls from its networks (empty: its host's address) with its certificate."""
    form = {
        "ae_title": ae_title,
        "host": host,
        "port": port,
        "site_id": site_id,
        "description": description,
        "allow_store": bool(allow_store),
        "allow_query": bool(allow_query),
        "allow_move_destination": bool(allow_move_destination),
        "tls": bool(tls),
        "networks": networks,
        "certificate": certificate,
    }
    ctx.authorize(ImagingAction.AE_MANAGE, _ae_target(site_id))

    def run() -> None:
        if not port.strip().isdigit():
            raise InvalidInput(_("port: 1-65535"))
        accounts.get_site(ctx.db, site_id)
        nodes.add_remote_ae(
            ctx.db,
            ctx.actor,
            ae_title=ae_title,
            host=host,
            port=int(port),
            site_id=site_id,
            allow_store=bool(allow_store),
            allow_query=bool(allow_query),
            allow_move_destination=bool(allow_move_destination),
            description=description,
            tls=bool(tls),
            networks=networks if networks.strip() else None,
            certificate=certificate,
        )
        ctx.commit()

    return run_form_action(
        ctx,
        run,
        lambda exc: _aes_view(request, ctx, exc.detail, form, exc.status),
        "/admin/imaging/aes",
    )


def _managed_ae(ctx: Ctx, ae_title: str) -> RemoteApplicationEntity:
    """The node, if this person manages its site; another site's node looks absent."""
    ae = nodes.remote_ae(ctx.db, ae_title)
    if ae is None:
        raise NotFound(_("no AE title %(title)r") % {"title": ae_title})
    try:
        ctx.authorize(ImagingAction.AE_MANAGE, _ae_target(ae.site_id))
    except Forbidden:
        raise NotFound(_("no AE title %(title)r") % {"title": ae_title}) from None
    return ae


@router.post("/admin/imaging/aes/{ae_title}/tls")
def aes_tls(
    ae_title: str,
    ctx: Annotated[Ctx, gate(ImagingAction.AE_MANAGE)],
    tls: Annotated[str, Form(max_length=8)] = "",
) -> Response:
    """Call a DICOM node over TLS (its certificate verified), or over plain TCP (audited)."""
    ae = _managed_ae(ctx, ae_title)
    nodes.set_remote_ae_tls(ctx.db, ctx.actor, ae.ae_title, bool(tls))
    ctx.commit()
    return redirect_to("/admin/imaging/aes")


@router.post("/admin/imaging/aes/{ae_title}/identity")
def aes_identity(
    request: Request,
    ae_title: str,
    ctx: Annotated[Ctx, gate(ImagingAction.AE_MANAGE)],
    networks: Annotated[str, Form(max_length=1000)] = "",
    certificate: Annotated[str, Form(max_length=400)] = "",
) -> Response:
    """Bind a DICOM node to the networks it calls from and the certificate it presents over
    TLS (audited); empty networks: its host's address."""
    ae = _managed_ae(ctx, ae_title)

    def run() -> None:
        nodes.set_remote_ae_identity(
            ctx.db, ctx.actor, ae.ae_title, networks=networks, certificate=certificate
        )
        ctx.commit()

    return run_form_action(
        ctx,
        run,
        lambda exc: _aes_view(request, ctx, exc.detail, {}, exc.status),
        "/admin/imaging/aes",
    )


@router.post("/admin/imaging/aes/{ae_title}/echo")
def aes_echo(
    request: Request, ae_title: str, ctx: Annotated[Ctx, gate(ImagingAction.AE_MANAGE)]
) -> Response:
    """Call the node and send it a C-ECHO (PS3.4 Annex A); the page tells the result (audited)."""
    ae = _managed_ae(ctx, ae_title)
    settings = ctx.runtime.settings
    client_tls = ClientTls(
        certificate=settings.dicom_tls_certificate,
        key=settings.dicom_tls_key,
        ca=settings.dicom_tls_client_ca,
    )
    result = echo(ae, settings.dicom_ae_title, client_tls)
    audit.record(
        ctx.db,
        ctx.actor,
        "dicom.echo",
        "success" if result.ok else "failure",
        object_kind="ae",
        object_id=ae.ae_title,
        site_id=ae.site_id,
        detail={"reason": result.reason} if result.reason else None,
    )
    ctx.commit()
    return _aes_view(request, ctx, "", {}, echoed=result)


@router.post("/admin/imaging/aes/{ae_title}/remove")
def aes_remove(ae_title: str, ctx: Annotated[Ctx, gate(ImagingAction.AE_MANAGE)]) -> Response:
    """Forget a DICOM node: its associations are refused from now on (audited)."""
    ae = _managed_ae(ctx, ae_title)
    nodes.remove_remote_ae(ctx.db, ctx.actor, ae.ae_title)
    ctx.commit()
    return redirect_to("/admin/imaging/aes")
