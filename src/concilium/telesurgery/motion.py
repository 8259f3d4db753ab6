"""Console-side motion mapping: master to robot motion scaling and the clutch.

While the clutch is pressed the surgeon repositions the master handles without moving the
robot; the robot keeps receiving its current target, so the watchdog stays fed.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from concilium.platform.i18n import _
from concilium.telesurgery.openigtlink import Transform

Vector = tuple[float, float, float]


@dataclass(frozen=True)
class MotionScaling:
    """Parameters of the master-to-robot mapping."""

    scale: float = 1.0
    """Robot translation per unit of master translation (e.g. 0.2 for 5:1 down-scaling)."""

    def __post_init__(self) -> None:
        if not math.isfinite(self.scale) or not 0 < self.scale <= 1.0:
            raise ValueError(_("scale must be in (0, 1], got %(scale)r") % {"scale": self.scale})


class MotionMapper:
    """Turns master poses into robot targets, anchored at each clutch release."""

    def __init__(self, scaling: MotionScaling, robot_start: Vector | None = None) -> None:
        self.scaling = scaling
        self.clutched = False
        self._robot_anchor: Vector | None = robot_start
        self._master_anchor: Vector | None = None
        self.target: Transform | None = (
            None if robot_start is None else Transform(translation=robot_start)
        )

    def set_clutch(self, pressed: bool) -> None:
        """Press or release the clutch; releasing re-anchors on the next master pose."""
        if pressed and not self.clutched and self.target is not None:
            self._robot_anchor = self.target.translation
        if not pressed and self.clutched:
            self._master_anchor = None
        self.clutched = pressed

    def observe_robot(self, position: Vector) -> None:
        """The robot's measured position; it anchors the mapping until a target is sent."""
        if self.target is None:
            self._robot_anchor = position

    def update(self, master: Transform) -> Transform | None:
        """The robot target for a master pose (unchanged while clutched, None before any)."""
        if self.clutched:
            return self.target
        if self._master_anchor is None:
            self._master_anchor = master.translation
            if self.target is not None:
                self._robot_anchor = self.target.translation
            elif self._robot_anchor is None:
                # Without a known robot position the first master pose is taken as the
                # robot's, so an unscaled session passes poses through unchanged.
                self._robot_anchor = master.translation
        s = self.scaling.scale
        r, m = self._robot_anchor or master.translation, self._master_anchor
        translation = (
            r[0] + s * (master.translation[0] - m[0]),
            r[1] + s * (master.translation[1] - m[1]),
            r[2] + s * (master.translation[2] - m[2]),
        )
        self.target = Transform(rotation=master.rotation, translation=translation)
        return self.target
