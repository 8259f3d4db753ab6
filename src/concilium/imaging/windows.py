"""The usual CT windows (PS3.3 C.11.2.1.2 Window Center and Window Width), offered by the
built-in viewer wherever it is shown."""

from __future__ import annotations

from concilium.platform.i18n import N_

__all__ = ["WINDOW_PRESETS"]

WINDOW_PRESETS: tuple[tuple[str, float, float], ...] = (
    (N_("Soft tissue"), 40.0, 400.0),
    (N_("Lung"), -600.0, 1500.0),
    (N_("Bone"), 400.0, 1800.0),
    (N_("Brain"), 40.0, 80.0),
)
"""(label, centre, width) of the usual CT windows, in Hounsfield units; "Default" (the
object's own Window Center/Width, PS3.3 C.11.2.1.2) comes first on the page."""
