"""What this process holds for telesurgery (:class:`TelesurgeryProcess`, made once by the
process assembly), as the web adapter reaches it: the link status board and the link
qualifications started from the web."""

from __future__ import annotations

from fastapi import FastAPI

from concilium.telesurgery.link_status import LinkStatusBoard
from concilium.telesurgery.process import TelesurgeryProcess
from concilium.telesurgery.qualification_runs import QualificationRuns
from concilium.web.context import process_of


def status_board(app: FastAPI) -> LinkStatusBoard:
    """The link status board of this process (see :class:`TelesurgeryProcess`)."""
    return process_of(app, TelesurgeryProcess).board


def qualification_runs(app: FastAPI) -> QualificationRuns:
    """The link qualifications started from the web in this process."""
    return process_of(app, TelesurgeryProcess).runs
