"""Per-command motion limits on the robot side: translational velocity and jump, workspace
box, and the tool's rotation (angular jump and angular velocity)."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Any

from concilium.platform.i18n import _, ngettext

Vector = tuple[float, float, float]
Rotation = tuple[float, float, float, float, float, float, float, float, float]
"""A 3x3 rotation matrix, row-major, as OpenIGTLink TRANSFORM carries it."""
ROTATION_TOLERANCE = 1e-3
"""How far from orthonormal a received matrix may be (TRANSFORM carries 32-bit floats)."""


@dataclass(frozen=True)
class MotionLimits:
    """Limits every commanded tool position must satisfy; refused at construction if absurd."""

    max_velocity_mm_s: float = 200.0
    """Highest speed implied between two consecutive commands."""
    max_jump_mm: float = 5.0
    """Largest distance between two consecutive commands."""
    workspace_min_mm: Vector = (-150.0, -150.0, -150.0)
    """Lower corner of the allowed workspace box."""
    workspace_max_mm: Vector = (150.0, 150.0, 150.0)
    """Upper corner of the allowed workspace box."""
    max_rotation_deg: float = 10.0
    """Largest rotation of the tool between two consecutive commands."""
    max_angular_velocity_deg_s: float = 360.0
    """Highest angular speed implied between two consecutive commands."""

    def __post_init__(self) -> None:
        for name in (
            "max_velocity_mm_s",
            "max_jump_mm",
            "max_rotation_deg",
            "max_angular_velocity_deg_s",
        ):
            value = getattr(self, name)
            if not isinstance(value, int | float) or not math.isfinite(value) or value <= 0:
                raise ValueError(
                    _("%(name)s must be a positive finite number, got %(value)r")
                    % {"name": name, "value": value}
                )
        for name in ("workspace_min_mm", "workspace_max_mm"):
            corner = getattr(self, name)
            if len(corner) != 3 or not all(math.isfinite(float(c)) for c in corner):
                raise ValueError(
                    _("%(name)s must be three finite numbers, got %(value)r")
                    % {"name": name, "value": corner}
                )
        for axis, (low, high) in enumerate(
            zip(self.workspace_min_mm, self.workspace_max_mm, strict=True)
        ):
            if low >= high:
                raise ValueError(
                    _(
                        "workspace_min_mm[%(axis)s] (%(low)s) must be below "
                        "workspace_max_mm[%(axis)s] (%(high)s)"
                    )
                    % {"axis": axis, "low": low, "high": high}
                )

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any]) -> MotionLimits:
        """Build from a procedure file's ``[limits]`` section."""
        known = {f.name for f in fields(cls)}
        unknown = set(data) - known
        if unknown:
            raise ValueError(
                ngettext(
                    "unknown motion limit: %(names)s",
                    "unknown motion limits: %(names)s",
                    len(unknown),
                )
                % {"names": ", ".join(sorted(unknown))}
            )
        values = dict(data)
        for name in ("workspace_min_mm", "workspace_max_mm"):
            if name in values:
                values[name] = tuple(float(v) for v in values[name])
        return cls(**values)


@dataclass(frozen=True)
class LimitVerdict:
    """Outcome of checking one command."""

    accepted: bool
    """True when the command is within every limit."""
    reason: str = ""
    """Which limit was exceeded, and by how much."""


def is_rotation(matrix: Rotation) -> bool:
    """Whether ``matrix`` is a proper rotation: finite, orthonormal, determinant +1."""
    if len(matrix) != 9:
        return False
    a, b, c, d, e, f, g, h, i = matrix
    # A NaN or an infinity anywhere makes the sum non-finite (so does an overflow, of values
    # that are no rotation either); one check instead of nine on the per-command path.
    if not math.isfinite(a + b + c + d + e + f + g + h + i):
        return False
    tolerance = ROTATION_TOLERANCE
    # Written out: this runs for every command, at up to 1 kHz.
    return (
        abs(a * a + b * b + c * c - 1.0) <= tolerance
        and abs(d * d + e * e + f * f - 1.0) <= tolerance
        and abs(g * g + h * h + i * i - 1.0) <= tolerance
        and abs(a * d + b * e + c * f) <= tolerance
        and abs(a * g + b * h + c * i) <= tolerance
        and abs(d * g + e * h + f * i) <= tolerance
        and abs(a * (e * i - f * h) - b * (d * i - f * g) + c * (d * h - e * g) - 1.0) <= tolerance
    )


def rotation_between_deg(first: Rotation, second: Rotation) -> float:
    """Angle of the rotation taking ``first`` to ``second``, in degrees (0 to 180): from the
    trace of first^T * second, which is 1 + 2 cos(angle)."""
    trace = sum(first[r * 3 + c] * second[r * 3 + c] for r in range(3) for c in range(3))
    return math.degrees(math.acos(max(-1.0, min(1.0, (trace - 1.0) / 2.0))))


def check_command(
    limits: MotionLimits,
    position: Vector,
    sent_at: float,
    previous: Vector | None,
    previous_sent_at: float | None,
    rotation: Rotation | None = None,
    previous_rotation: Rotation | None = None,
) -> LimitVerdict:
    """Check a commanded pose against the limits.

    ``rotation`` is the commanded tool orientation and ``previous_rotation`` the last
    executed command's: the angle between them is held to ``max_rotation_deg`` and, over
    the sender's time between them, to ``max_angular_velocity_deg_s``. The first command of
    an engagement has no previous orientation to compare with (the robot reports its
    orientation in its own kinematic convention); its position is checked as below.

    ``previous`` is the last executed command, or the robot's measured position (with
    ``previous_sent_at`` None) for the first command of an engagement, so re-engaging with
    the master far from the robot is refused rather than executed as a leap.

    ``sent_at`` are the sender's timestamps (seconds): speed is judged on the surgeon's
    timing, not on the network's, so jitter does not turn a smooth motion into a refusal.
    """
    if not all(math.isfinite(c) for c in position):
        return LimitVerdict(False, "non-finite position")
    if rotation is not None and not is_rotation(rotation):
        return LimitVerdict(False, "the orientation is not a rotation matrix")
    for axis, (value, low, high) in enumerate(
        zip(position, limits.workspace_min_mm, limits.workspace_max_mm, strict=True)
    ):
        if not low <= value <= high:
            return LimitVerdict(
                False,
                f"outside workspace: axis {'xyz'[axis]} = {value:.2f} mm not in "
                f"[{low:g}, {high:g}]",
            )
    if previous is None:
        return LimitVerdict(True)
    jump = math.dist(position, previous)
    if jump > limits.max_jump_mm:
        return LimitVerdict(False, f"jump of {jump:.2f} mm exceeds {limits.max_jump_mm:g} mm")
    turn = 0.0
    if rotation is not None and previous_rotation is not None:
        turn = rotation_between_deg(previous_rotation, rotation)
        if turn > limits.max_rotation_deg:
            return LimitVerdict(
                False,
                f"rotation of {turn:.2f} deg exceeds {limits.max_rotation_deg:g} deg",
            )
    if previous_sent_at is None:
        return LimitVerdict(True)
    dt = sent_at - previous_sent_at
    if dt <= 0:
        if jump > 0 or turn > 0:
            return LimitVerdict(False, "motion with a non-increasing timestamp")
        return LimitVerdict(True)
    velocity = jump / dt
    if velocity > limits.max_velocity_mm_s:
        return LimitVerdict(
            False,
            f"velocity {velocity:.1f} mm/s exceeds {limits.max_velocity_mm_s:g} mm/s",
        )
    angular_velocity = turn / dt
    if angular_velocity > limits.max_angular_velocity_deg_s:
        return LimitVerdict(
            False,
            f"angular velocity {angular_velocity:.1f} deg/s exceeds "
            f"{limits.max_angular_velocity_deg_s:g} deg/s",
        )
    return LimitVerdict(True)
