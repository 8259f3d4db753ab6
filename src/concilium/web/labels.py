"""Words people read for the platform's codes (roles, consent purposes), in one place."""

from __future__ import annotations

from concilium.platform.i18n import N_

ROLE_LABELS = {
    "admin": N_("Administrator"),
    "radiologist": N_("Radiologist"),
    "referring_physician": N_("Referring physician"),
    "specialist": N_("Specialist"),
    "coordinator": N_("Coordinator"),
    "technologist": N_("Technologist"),
    "engineer": N_("Biomedical / network engineer"),
    "learner": N_("Learner"),
}
"""What each role of ``concilium.config.ROLES`` is called."""
PURPOSE_LABELS = {
    "remote_reading": N_("Remote reading"),
    "mdt_presentation": N_("Multidisciplinary meeting"),
    "teaching": N_("Teaching broadcast and recording"),
    "telesurgery": N_("Telesurgery"),
}
"""What each consent purpose of ``concilium.platform.patients.PURPOSES`` is called."""
SEX_LABELS = {
    "F": N_("Female"),
    "M": N_("Male"),
    "O": N_("Other"),
    "U": N_("Unknown"),
}
"""What each administrative sex of ``concilium.platform.patients.SEXES`` is called."""
DECISION_LABELS = {
    "granted": N_("granted"),
    "refused": N_("refused"),
    "withdrawn": N_("withdrawn"),
    "none": N_("not asked"),
}
"""What each consent decision of ``concilium.platform.patients.DECISIONS`` is called (and the
standing of a purpose nobody recorded a decision for)."""
