"""How DICOMweb requests are refused: HTTP client errors answered as problem details
(RFC 9457), with the status PS3.18 gives each case (8.3.3.1, 10.4.3, 10.5.3, 10.6.3)."""

from __future__ import annotations

from concilium.platform.errors import ConciliumError

__all__ = ["DicomwebError", "bad_request", "not_acceptable"]


class DicomwebError(ConciliumError):
    """A request PS3.18 answers with a client error; ``status`` is set per instance."""

    def __init__(
        self, status: int, title: str, detail: str, *, retry_after: int | None = None
    ) -> None:
        super().__init__(detail)
        self.status = status
        self.title = title
        self.retry_after = retry_after


def bad_request(detail: str) -> DicomwebError:
    return DicomwebError(400, "Bad request", detail)


def not_acceptable(detail: str) -> DicomwebError:
    return DicomwebError(406, "Not acceptable", detail)
