"""Per-command motion limits on the robot side: velocity, jump and workspace box."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Any

Vector = tuple[float, float, float]


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

    def __post_init__(self) -> None:
        for name in ("max_velocity_mm_s", "max_jump_mm"):
            value = getattr(self, name)
            if not isinstance(value, int | float) or not math.isfinite(value) or value <= 0:
                raise ValueError(f"{name} must be a positive finite number, got {value!r}")
        for name in ("workspace_min_mm", "workspace_max_mm"):
            corner = getattr(self, name)
            if len(corner) != 3 or not all(math.isfinite(float(c)) for c in corner):
                raise ValueError(f"{name} must be three finite numbers, got {corner!r}")
        for axis, (low, high) in enumerate(
            zip(self.workspace_min_mm, self.workspace_max_mm, strict=True)
        ):
            if low >= high:
                raise ValueError(
                    f"workspace_min_mm[{axis}] ({low}) must be below workspace_max_mm[{axis}] "
                    f"({high})"
                )

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any]) -> MotionLimits:
        """Build from a procedure file's ``[limits]`` section."""
        known = {f.name for f in fields(cls)}
        unknown = set(data) - known
        if unknown:
            raise ValueError(f"unknown motion limit(s): {', '.join(sorted(unknown))}")
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


def check_command(
    limits: MotionLimits,
    position: Vector,
    sent_at: float,
    previous: Vector | None,
    previous_sent_at: float | None,
) -> LimitVerdict:
    """Check a commanded position against the limits.

    ``previous`` is the last executed command, or the robot's measured position (with
    ``previous_sent_at`` None) for the first command of an engagement, so re-engaging with
    the master far from the robot is refused rather than executed as a leap.

    ``sent_at`` are the sender's timestamps (seconds): speed is judged on the surgeon's
    timing, not on the network's, so jitter does not turn a smooth motion into a refusal.
    """
    if not all(math.isfinite(c) for c in position):
        return LimitVerdict(False, "non-finite position")
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
    if previous_sent_at is None:
        return LimitVerdict(True)
    dt = sent_at - previous_sent_at
    if dt <= 0:
        if jump > 0:
            return LimitVerdict(False, "motion with a non-increasing timestamp")
        return LimitVerdict(True)
    velocity = jump / dt
    if velocity > limits.max_velocity_mm_s:
        return LimitVerdict(
            False,
            f"velocity {velocity:.1f} mm/s exceeds {limits.max_velocity_mm_s:g} mm/s",
        )
    return LimitVerdict(True)
