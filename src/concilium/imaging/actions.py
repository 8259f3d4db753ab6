"""What people and nodes may do with the archive, as actions of the one policy."""

from __future__ import annotations

from concilium.platform.policy import PATIENT_READERS, Action, Rule

_STUDY_STORERS = frozenset({"technologist", "radiologist", "admin"})


class ImagingAction:
    """The archive's actions; ``concilium.platform.policy.decide`` applies their rules."""

    # Images are patient data: read like the patient record (role at the owning site, a share
    # of the study, break-the-glass on its patient), never by the platform administrator.
    STUDY_READ = Action(
        "study.read",
        Rule(
            PATIENT_READERS,
            "imaging:read",
            via_share=True,
            via_emergency=True,
            platform_admin=False,
        ),
    )
    # A study belongs to the site that sends it: storing into it needs a role there.
    STUDY_STORE = Action("study.store", Rule(_STUDY_STORERS, "imaging:write", platform_admin=False))
    STUDY_DELETE = Action(
        "study.delete", Rule(frozenset({"admin"}), "imaging:delete", platform_admin=False)
    )
    AE_MANAGE = Action("ae.manage", Rule(frozenset({"admin"}), "admin"))
