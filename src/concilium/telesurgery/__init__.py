"""Telesurgery: console and robot gateways, the secure low-latency link, safety, qualification.

What other services may use of it: the gateways and the link, safety and limits, and
qualification; the procedures (`Procedure`, read, never written, outside this package) of a
person (`procedures_of`) and of a patient (`patient_procedures`), with the facts the policy
needs about each (`procedure_target`) and the `TelesurgeryAction` actions.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from concilium.platform.services import public_face

if TYPE_CHECKING:
    from concilium.telesurgery.actions import TelesurgeryAction
    from concilium.telesurgery.gateways import ConsoleGateway, RobotGateway
    from concilium.telesurgery.impairment import PROFILES, ImpairmentProfile, ImpairmentProxy
    from concilium.telesurgery.limits import MotionLimits, check_command
    from concilium.telesurgery.link import ProcedureKeys, load_keys
    from concilium.telesurgery.motion import MotionScaling
    from concilium.telesurgery.procedures import (
        RESOURCE_KIND,
        patient_procedures,
        procedure_target,
        procedures_of,
    )
    from concilium.telesurgery.qualification import QualificationThresholds, judge, qualify
    from concilium.telesurgery.robot_simulator import RobotSimulator
    from concilium.telesurgery.safety import (
        LINK_CLASSES,
        LinkClass,
        SafetyState,
        SafetyStateMachine,
        SafetyThresholds,
    )
    from concilium.telesurgery.tables import Procedure

__all__ = [
    "LINK_CLASSES",
    "PROFILES",
    "RESOURCE_KIND",
    "ConsoleGateway",
    "ImpairmentProfile",
    "ImpairmentProxy",
    "LinkClass",
    "MotionLimits",
    "MotionScaling",
    "Procedure",
    "ProcedureKeys",
    "QualificationThresholds",
    "RobotGateway",
    "RobotSimulator",
    "SafetyState",
    "SafetyStateMachine",
    "SafetyThresholds",
    "TelesurgeryAction",
    "check_command",
    "judge",
    "load_keys",
    "patient_procedures",
    "procedure_target",
    "procedures_of",
    "qualify",
]

_MODULE_OF = {
    "LINK_CLASSES": "concilium.telesurgery.safety",
    "PROFILES": "concilium.telesurgery.impairment",
    "ConsoleGateway": "concilium.telesurgery.gateways",
    "ImpairmentProfile": "concilium.telesurgery.impairment",
    "ImpairmentProxy": "concilium.telesurgery.impairment",
    "LinkClass": "concilium.telesurgery.safety",
    "MotionLimits": "concilium.telesurgery.limits",
    "MotionScaling": "concilium.telesurgery.motion",
    "ProcedureKeys": "concilium.telesurgery.link",
    "QualificationThresholds": "concilium.telesurgery.qualification",
    "RobotGateway": "concilium.telesurgery.gateways",
    "RobotSimulator": "concilium.telesurgery.robot_simulator",
    "SafetyState": "concilium.telesurgery.safety",
    "SafetyStateMachine": "concilium.telesurgery.safety",
    "SafetyThresholds": "concilium.telesurgery.safety",
    "check_command": "concilium.telesurgery.limits",
    "judge": "concilium.telesurgery.qualification",
    "load_keys": "concilium.telesurgery.link",
    "qualify": "concilium.telesurgery.qualification",
    "Procedure": "concilium.telesurgery.tables",
    "RESOURCE_KIND": "concilium.telesurgery.procedures",
    "TelesurgeryAction": "concilium.telesurgery.actions",
    "patient_procedures": "concilium.telesurgery.procedures",
    "procedure_target": "concilium.telesurgery.procedures",
    "procedures_of": "concilium.telesurgery.procedures",
}
"""The module each name of the public face comes from."""


__getattr__ = public_face(__name__, _MODULE_OF)
