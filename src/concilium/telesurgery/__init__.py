"""Telesurgery: console and robot gateways, the secure low-latency link, safety, qualification."""

from concilium.telesurgery.gateways import ConsoleGateway, RobotGateway
from concilium.telesurgery.impairment import PROFILES, ImpairmentProfile, ImpairmentProxy
from concilium.telesurgery.limits import MotionLimits, check_command
from concilium.telesurgery.link import ProcedureKeys, load_keys
from concilium.telesurgery.motion import MotionScaling
from concilium.telesurgery.qualification import QualificationThresholds, judge, qualify
from concilium.telesurgery.robot_simulator import RobotSimulator
from concilium.telesurgery.safety import (
    LINK_CLASSES,
    LinkClass,
    SafetyState,
    SafetyStateMachine,
    SafetyThresholds,
)

__all__ = [
    "LINK_CLASSES",
    "PROFILES",
    "ConsoleGateway",
    "ImpairmentProfile",
    "ImpairmentProxy",
    "LinkClass",
    "MotionLimits",
    "MotionScaling",
    "ProcedureKeys",
    "QualificationThresholds",
    "RobotGateway",
    "RobotSimulator",
    "SafetyState",
    "SafetyStateMachine",
    "SafetyThresholds",
    "check_command",
    "judge",
    "load_keys",
    "qualify",
]
