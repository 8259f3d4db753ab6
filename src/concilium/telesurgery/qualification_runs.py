"""Link qualifications started from the web: one at a time per procedure, measured in a
thread of their own (the measurement runs its own event loop), their progress readable while
they run, the report kept with the procedure when they end.
"""

from __future__ import annotations

import contextvars
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy.orm import Session, sessionmaker

from concilium.platform import audit
from concilium.platform.db import transaction
from concilium.platform.errors import ConciliumError
from concilium.platform.i18n import _
from concilium.telesurgery import procedures, readiness
from concilium.telesurgery.tables import Procedure

logger = logging.getLogger(__name__)

MIN_DURATION_S = 1.0
MAX_DURATION_S = 300.0
"""Bounds of a qualification's length from the web."""
MIN_RATE_HZ = 10.0
MAX_RATE_HZ = 1000.0
"""Bounds of its command rate."""


@dataclass
class QualificationRun:
    """A qualification under way or just ended."""

    procedure_id: int
    profile: str
    duration_s: float
    started_at: datetime
    state: str = "running"
    """``running``, ``done`` or ``failed``."""
    progress: float = 0.0
    """From 0 to 1."""
    qualification_id: int | None = None
    passed: bool | None = None
    error: str = ""
    reasons: list[str] = field(default_factory=list)

    def as_json(self) -> dict[str, object]:
        return {
            "state": self.state,
            "progress": round(self.progress, 3),
            "profile": self.profile,
            "duration_s": self.duration_s,
            "passed": self.passed,
            "qualification_id": self.qualification_id,
            "report_url": (
                f"/telesurgery/{self.procedure_id}/qualifications/{self.qualification_id}"
                if self.qualification_id is not None
                else None
            ),
            "reasons": self.reasons,
            "error": self.error,
        }


class QualificationRuns:
    """The qualifications started from this process, the latest of each procedure."""

    def __init__(self) -> None:
        self._runs: dict[int, QualificationRun] = {}
        self._lock = threading.Lock()
        self._threads: list[threading.Thread] = []

    def get(self, procedure_id: int) -> QualificationRun | None:
        with self._lock:
            return self._runs.get(procedure_id)

    def start(
        self,
        sessions: sessionmaker[Session],
        data_dir: Path,
        actor: audit.Actor,
        procedure: Procedure,
        profile: str,
        duration_s: float,
        rate_hz: float,
    ) -> QualificationRun | None:
        """Start measuring in the background; None when one already runs for the
        procedure."""
        run = QualificationRun(procedure.id, profile, duration_s, datetime.now(UTC))
        with self._lock:
            current = self._runs.get(procedure.id)
            if current is not None and current.state == "running":
                return None
            self._runs[procedure.id] = run
        # The thread speaks the language of whoever started it (for its error message).
        context = contextvars.copy_context()
        work = _measure(sessions, data_dir, actor, run, rate_hz)
        thread = threading.Thread(
            target=context.run, args=(work,), name=f"qualify-{procedure.id}", daemon=True
        )
        self._threads = [t for t in self._threads if t.is_alive()] + [thread]
        thread.start()
        return run

    def wait(self, timeout: float | None = None) -> None:
        """Wait for the runs under way (when the process stops, and in tests)."""
        for thread in list(self._threads):
            thread.join(timeout)


def _measure(
    sessions: sessionmaker[Session],
    data_dir: Path,
    actor: audit.Actor,
    run: QualificationRun,
    rate_hz: float,
) -> Callable[[], None]:
    def progress(done: float) -> None:
        run.progress = max(0.0, min(1.0, done))

    def work() -> None:
        try:
            with transaction(sessions) as db:
                procedure = procedures.get_procedure(db, run.procedure_id)
                db.expunge(procedure)
            report = readiness.run_qualification(
                procedure,
                run.profile,
                run.duration_s,
                rate_hz=rate_hz,
                progress=progress,
            )
            with transaction(sessions) as db:
                procedure = procedures.get_procedure(db, run.procedure_id)
                record = readiness.record_qualification(
                    db, actor, procedure, report, data_dir, datetime.now(UTC)
                )
                run.qualification_id = record.id
            run.passed = report.verdict.go
            run.reasons = list(report.verdict.reasons)
            run.progress = 1.0
            run.state = "done"
        except Exception as exc:
            logger.exception("link qualification of procedure %s failed", run.procedure_id)
            run.error = (
                exc.detail if isinstance(exc, ConciliumError) else _("the measurement failed")
            )
            run.state = "failed"
            with transaction(sessions) as db:
                audit.record(
                    db,
                    actor,
                    "procedure.qualify",
                    "failure",
                    object_kind=procedures.RESOURCE_KIND,
                    object_id=run.procedure_id,
                    detail={"profile": run.profile, "error": type(exc).__name__},
                )

    return work
