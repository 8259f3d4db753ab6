"""Words people read for the platform's codes (roles, consent purposes), in one place."""

from __future__ import annotations

ROLE_LABELS = {
    "admin": "Administrator",
    "radiologist": "Radiologist",
    "referring_physician": "Referring physician",
    "specialist": "Specialist",
    "coordinator": "Coordinator",
    "technologist": "Technologist",
    "engineer": "Biomedical / network engineer",
    "learner": "Learner",
}
"""What each role of ``concilium.config.ROLES`` is called."""
PURPOSE_LABELS = {
    "remote_reading": "Remote reading",
    "mdt_presentation": "Multidisciplinary meeting",
    "teaching": "Teaching broadcast and recording",
    "telesurgery": "Telesurgery",
}
"""What each consent purpose of ``concilium.platform.patients.PURPOSES`` is called."""
