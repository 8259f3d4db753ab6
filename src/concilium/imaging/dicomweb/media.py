"""Media types and transfer syntaxes of DICOMweb bodies (PS3.18 8.7): what an Accept header
allows, in order (8.7.1), and which transfer syntax an instance is sent in (8.7.3.5.2)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from fastapi import Request

from concilium.imaging import render
from concilium.imaging.multipart import parse_content_type

__all__ = [
    "DICOM",
    "DICOM_JSON",
    "OCTET_STREAM",
    "Accepted",
    "accepted",
    "matches",
    "split_accept",
    "syntax_for",
]


DICOM_JSON = "application/dicom+json"
"""Search results and metadata (PS3.18 8.7.3.6, DICOM JSON Model of PS3.18 F)."""
DICOM = "application/dicom"
"""A Part 10 object (PS3.10 7.1), stored or retrieved."""
OCTET_STREAM = "application/octet-stream"
"""Bulk data and uncompressed frames (PS3.18 8.7.3.3)."""


@dataclass(frozen=True)
class Accepted:
    media_type: str
    """The part's (or the whole body's) media type."""
    transfer_syntax: str | None
    """The ``transfer-syntax`` parameter, if given."""
    multipart: bool


def accepted(request: Request, default: str) -> list[Accepted]:
    """The media types an Accept header allows, in order (PS3.18 8.7.1, 8.7.3.5)."""
    header = request.headers.get("accept", "") or f'multipart/related; type="{default}"'
    accepted = []
    for entry in split_accept(header):
        media_type, params = parse_content_type(entry)
        if media_type == "multipart/related":
            part_type = params.get("type", default).lower()
            accepted.append(Accepted(part_type, params.get("transfer-syntax"), True))
        elif media_type in ("*/*", "*", "multipart/*"):
            # Anything will do: the resource's default representation.
            accepted.append(Accepted(default, None, True))
        else:
            accepted.append(Accepted(media_type, params.get("transfer-syntax"), False))
    return accepted


def split_accept(header: str) -> list[str]:
    # Commas inside quoted parameters (type="...") do not separate entries.
    entries: list[str] = []
    current: list[str] = []
    quoted = False
    for char in header:
        if char == '"':
            quoted = not quoted
        if char == "," and not quoted:
            entries.append("".join(current).strip())
            current = []
        else:
            current.append(char)
    entries.append("".join(current).strip())
    return [e for e in entries if e]


def matches(accepted: Accepted, media_type: str) -> bool:
    if accepted.media_type in ("*/*", "*", media_type):
        return True
    major = media_type.split("/")[0]
    return accepted.media_type == f"{major}/*"


def syntax_for(stored: str, wanted: Sequence[str | None]) -> str | None:
    """The transfer syntax to send an instance stored in ``stored`` in: the first of the
    accepted ``transfer-syntax`` values (None when absent) it can be sent in, else None."""
    for syntax in wanted:
        if syntax is None or syntax == "*" or syntax == stored:
            return stored
        if render.can_transcode(stored, syntax):
            return syntax
    return None
