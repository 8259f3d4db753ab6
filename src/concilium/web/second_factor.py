"""Signing with the second factor once more: a report, a decision, anything whose signature
must be the signer's own at that moment and not only their session's.

A refusal is audited (the action, its object and patient, "second factor not confirmed")
and counted by the authenticator check like a failed sign-in, and both are committed before
the refusal is raised, so that rolling the request back keeps them.
"""

from __future__ import annotations

from dataclasses import dataclass

from concilium.platform import audit, authn
from concilium.platform.errors import SecondFactorRefused
from concilium.web.context import Ctx

__all__ = ["Signed", "confirm_second_factor"]


@dataclass(frozen=True)
class Signed:
    """What is being signed, as the audit trail names it."""

    action: str
    object_kind: str
    object_id: int
    patient_id: int | None
    site_id: int | None


def confirm_second_factor(
    ctx: Ctx, code: str, signed: Signed, *, refused: str, not_enrolled: str
) -> None:
    """Return when ``code`` is a current code of the signer's authenticator; otherwise audit
    the refusal, commit, and raise `SecondFactorRefused` with ``refused`` (or
    ``not_enrolled`` when the signer has no second factor), both already translated."""
    if (
        ctx.user.totp_secret
        and code.strip()
        and authn.check_totp(
            ctx.db, ctx.runtime.box, ctx.runtime.settings, ctx.user, code, ctx.now, ctx.actor.ip
        )
    ):
        return
    audit.record(
        ctx.db,
        ctx.actor,
        signed.action,
        "refused",
        object_kind=signed.object_kind,
        object_id=signed.object_id,
        patient_id=signed.patient_id,
        site_id=signed.site_id,
        detail={"reason": "second factor not confirmed"},
    )
    ctx.commit()
    raise SecondFactorRefused(refused if ctx.user.totp_secret else not_enrolled)
