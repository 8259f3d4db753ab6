"""The services of this installation: the one list the process assembly reads."""

from __future__ import annotations

from concilium.imaging.actions import ImagingAction
from concilium.live.actions import LiveAction
from concilium.platform.policy import Action, PlatformAction, actions_of, token_scopes
from concilium.telesurgery.actions import TelesurgeryAction

ACTIONS: tuple[Action, ...] = tuple(
    action
    for namespace in (PlatformAction, ImagingAction, LiveAction, TelesurgeryAction)
    for action in actions_of(namespace)
)
"""Every action of the policy, the platform's and each service's."""
TOKEN_SCOPES = token_scopes(ACTIONS)
"""Every scope an API token can carry."""
