"""Robot-side motion limits and console-side motion scaling with the clutch."""

from __future__ import annotations

import math

import pytest

from concilium.telesurgery.limits import MotionLimits, check_command
from concilium.telesurgery.motion import MotionMapper, MotionScaling
from concilium.telesurgery.openigtlink import Transform

LIMITS = MotionLimits(
    max_velocity_mm_s=100,
    max_jump_mm=2,
    workspace_min_mm=(-10, -10, -10),
    workspace_max_mm=(10, 10, 10),
)


def test_first_command_inside_the_workspace_is_accepted():
    assert check_command(LIMITS, (1, 2, 3), 0.0, None, None).accepted


def test_outside_the_workspace_is_refused_with_the_axis():
    verdict = check_command(LIMITS, (1, 12, 3), 0.0, None, None)
    assert not verdict.accepted and "axis y" in verdict.reason


def test_jump_is_refused():
    verdict = check_command(LIMITS, (3, 0, 0), 1.0, (0, 0, 0), 0.0)
    assert not verdict.accepted and "jump of 3.00 mm" in verdict.reason


def test_velocity_is_judged_on_sender_timestamps():
    assert check_command(LIMITS, (1, 0, 0), 0.010, (0, 0, 0), 0.0).accepted  # 100 mm/s
    verdict = check_command(LIMITS, (1, 0, 0), 0.005, (0, 0, 0), 0.0)  # 200 mm/s
    assert not verdict.accepted and "velocity 200.0 mm/s" in verdict.reason


def test_non_finite_positions_are_refused():
    assert not check_command(LIMITS, (float("nan"), 0, 0), 0.0, None, None).accepted


def about_z(degrees: float) -> tuple[float, ...]:
    c, s = math.cos(math.radians(degrees)), math.sin(math.radians(degrees))
    return (c, -s, 0.0, s, c, 0.0, 0.0, 0.0, 1.0)


ROTATING = MotionLimits(max_rotation_deg=5.0, max_angular_velocity_deg_s=100.0)


def test_rotation_between_consecutive_commands_is_limited():
    here = (0.0, 0.0, 0.0)
    assert check_command(ROTATING, here, 1.0, here, 0.0, about_z(4.0), about_z(0.0)).accepted
    verdict = check_command(ROTATING, here, 1.0, here, 0.0, about_z(36.0), about_z(30.0))
    assert not verdict.accepted and verdict.reason == "rotation of 6.00 deg exceeds 5 deg"
    # Wrapping through 180 degrees is measured the short way round.
    assert check_command(ROTATING, here, 1.0, here, 0.0, about_z(-178.0), about_z(179.0)).accepted


def test_angular_velocity_is_judged_on_sender_timestamps():
    here = (0.0, 0.0, 0.0)
    assert check_command(ROTATING, here, 0.04, here, 0.0, about_z(3.0), about_z(0.0)).accepted
    verdict = check_command(ROTATING, here, 0.01, here, 0.0, about_z(3.0), about_z(0.0))
    assert not verdict.accepted
    assert verdict.reason == "angular velocity 300.0 deg/s exceeds 100 deg/s"


def test_an_orientation_that_is_not_a_rotation_is_refused():
    here = (0.0, 0.0, 0.0)
    for bad in (
        (2.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0),  # scales
        (1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, -1.0),  # mirrors
        (float("nan"),) * 9,
    ):
        verdict = check_command(ROTATING, here, 1.0, None, None, bad, None)
        assert not verdict.accepted and "not a rotation" in verdict.reason


def test_rotation_limits_come_from_the_procedure_section():
    limits = MotionLimits.from_mapping({"max_rotation_deg": 2, "max_angular_velocity_deg_s": 45})
    assert (limits.max_rotation_deg, limits.max_angular_velocity_deg_s) == (2, 45)
    with pytest.raises(ValueError, match="max_rotation_deg must be a positive"):
        MotionLimits(max_rotation_deg=0)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"max_velocity_mm_s": -1}, "max_velocity_mm_s must be a positive"),
        ({"workspace_min_mm": (0, 0, 5), "workspace_max_mm": (1, 1, 5)}, "workspace_min_mm[2]"),
    ],
)
def test_limits_are_validated(kwargs, message):
    with pytest.raises(ValueError) as info:
        MotionLimits(**kwargs)
    assert message in str(info.value)


def test_limits_from_a_procedure_section():
    limits = MotionLimits.from_mapping({"max_jump_mm": 1, "workspace_min_mm": [-5, -5, -5]})
    assert limits.max_jump_mm == 1 and limits.workspace_min_mm == (-5.0, -5.0, -5.0)
    with pytest.raises(ValueError, match="unknown motion limit"):
        MotionLimits.from_mapping({"max_speed": 1})


def pose(x: float, y: float = 0.0, z: float = 0.0) -> Transform:
    return Transform(translation=(x, y, z))


def test_unscaled_mapping_passes_poses_through():
    mapper = MotionMapper(MotionScaling(1.0))
    assert mapper.update(pose(5)).translation == (5, 0, 0)
    assert mapper.update(pose(7, 1)).translation == (7, 1, 0)


def test_scaling_reduces_master_motion():
    mapper = MotionMapper(MotionScaling(0.2), robot_start=(0, 0, 0))
    mapper.update(pose(100))
    assert mapper.update(pose(110)).translation == pytest.approx((2.0, 0, 0))


def test_clutch_freezes_the_robot_and_re_anchors_on_release():
    mapper = MotionMapper(MotionScaling(0.5), robot_start=(0, 0, 0))
    mapper.update(pose(0))
    mapper.update(pose(10))  # robot at 5
    mapper.set_clutch(True)
    assert mapper.update(pose(50)).translation == pytest.approx((5, 0, 0))
    mapper.set_clutch(False)
    assert mapper.update(pose(50)).translation == pytest.approx((5, 0, 0))
    assert mapper.update(pose(54)).translation == pytest.approx((7, 0, 0))


def test_scale_is_validated():
    with pytest.raises(ValueError, match="scale must be in"):
        MotionScaling(0)


def test_first_command_of_an_engagement_is_checked_against_the_measured_pose():
    verdict = check_command(LIMITS, (5, 0, 0), 1.0, (0, 0, 0), None)
    assert not verdict.accepted and "jump of 5.00 mm" in verdict.reason
    assert check_command(LIMITS, (1, 0, 0), 1.0, (0, 0, 0), None).accepted


def test_scaled_mapping_starts_from_the_measured_robot_position():
    mapper = MotionMapper(MotionScaling(0.5))
    mapper.observe_robot((10.0, 0.0, 0.0))
    assert mapper.update(pose(100)).translation == pytest.approx((10, 0, 0))
    assert mapper.update(pose(104)).translation == pytest.approx((12, 0, 0))
    mapper.observe_robot((50.0, 0.0, 0.0))  # telemetry no longer re-anchors once driving
    assert mapper.update(pose(104)).translation == pytest.approx((12, 0, 0))
