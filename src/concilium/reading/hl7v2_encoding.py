"""HL7 v2 delimiters, escape sequences and segments (HL7 v2.5.1 chapter 2, §2.5 and §2.7).

A message is segments separated by carriage returns; a segment is fields separated by the
field separator (MSH-1); a field is repetitions of components of sub-components, separated
by the encoding characters of MSH-2 (§2.5.4). Inside a value, a delimiter is written as an
escape sequence (§2.7): ``\\F\\`` field, ``\\S\\`` component, ``\\T\\`` sub-component,
``\\R\\`` repetition, ``\\E\\`` escape, ``\\Xhh..\\`` bytes in the message's character set,
``\\.br\\`` a line break in formatted text (§2.7.6).

:class:`Segment` keeps values as they travel (escaped) and unescapes on access, so a value
never loses a delimiter it legitimately contains.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from concilium.reading.hl7v2_errors import ErrorCode, ErrorLocation, HL7Error

Component = tuple[str, ...]
"""A component: its sub-components, escaped as sent."""
Repetition = tuple[Component, ...]
"""One repetition of a field: its components."""
FieldValue = tuple[Repetition, ...]
"""A field: its repetitions."""

_HEX = re.compile(r"^(?:[0-9A-Fa-f]{2})+$")
_HL7_NULL = '""'


@dataclass(frozen=True)
class EncodingCharacters:
    """The delimiters of a message: MSH-1 and the four characters of MSH-2 (§2.5.4)."""

    field: str = "|"
    """Field separator, MSH-1."""
    component: str = "^"
    """Component separator, first character of MSH-2."""
    repetition: str = "~"
    """Repetition separator, second character of MSH-2."""
    escape: str = "\\"
    """Escape character, third character of MSH-2."""
    subcomponent: str = "&"
    """Sub-component separator, fourth character of MSH-2."""

    def __post_init__(self) -> None:
        chars = (self.field, self.component, self.repetition, self.escape, self.subcomponent)
        for char in chars:
            if len(char) != 1 or not char.isascii() or not char.isprintable():
                raise ValueError(f"a delimiter must be one printable ASCII character: {char!r}")
            if char.isalnum() or char == " ":
                raise ValueError(f"a delimiter may not be a letter, digit or space: {char!r}")
        if len(set(chars)) != len(chars):
            raise ValueError(f"delimiters must be distinct: {''.join(chars)!r}")

    @property
    def msh2(self) -> str:
        """The value of MSH-2 (encoding characters)."""
        return self.component + self.repetition + self.escape + self.subcomponent

    @classmethod
    def from_msh(cls, field: str, msh2: str) -> EncodingCharacters:
        """Read MSH-1 and MSH-2; a fifth MSH-2 character (v2.7 truncation) is ignored."""
        if len(msh2) not in (4, 5):
            raise ValueError(f"MSH-2 must hold 4 encoding characters, got {len(msh2)}")
        return cls(field, msh2[0], msh2[1], msh2[2], msh2[3])


DEFAULT_ENCODING = EncodingCharacters()
"""The delimiters every known system uses: ``|^~\\&``."""


def unescape(text: str, encoding: EncodingCharacters, codec: str = "ascii") -> str:
    """Replace the escape sequences of §2.7 by the text they stand for.

    Formatting sequences of FT (§2.7.6) become plain text: ``\\.br\\`` and ``\\.sp\\`` a line
    break, ``\\.sk\\`` a space, the others nothing. Highlighting (``\\H\\``, ``\\N\\``),
    character-set switching (``\\C..\\``, ``\\M..\\``) and locally defined (``\\Z..\\``)
    sequences are dropped. An unknown or unterminated sequence is kept as it stands.
    """
    esc = encoding.escape
    if esc not in text:
        return text
    out: list[str] = []
    position = 0
    while True:
        start = text.find(esc, position)
        if start < 0:
            out.append(text[position:])
            break
        end = text.find(esc, start + 1)
        if end < 0:
            out.append(text[position:])
            break
        out.append(text[position:start])
        replacement = _sequence(text[start + 1 : end], encoding, codec)
        out.append(text[start : end + 1] if replacement is None else replacement)
        position = end + 1
    return "".join(out)


def _sequence(body: str, encoding: EncodingCharacters, codec: str) -> str | None:
    simple = {
        "F": encoding.field,
        "S": encoding.component,
        "T": encoding.subcomponent,
        "R": encoding.repetition,
        "E": encoding.escape,
        "H": "",
        "N": "",
    }
    if body in simple:
        return simple[body]
    if body.startswith("X") and _HEX.match(body[1:]):
        try:
            return bytes.fromhex(body[1:]).decode(codec)
        except (UnicodeDecodeError, LookupError):
            return None
    if body.startswith("."):
        command = body[1:3]
        if command in ("br", "sp"):
            return "\n"
        if command == "sk":
            return " "
        if command in ("in", "ti", "ce", "fi", "nf"):
            return ""
        return None
    if body[:1] in ("C", "M", "Z") and len(body) > 1:
        return ""
    return None


def escape(text: str, encoding: EncodingCharacters = DEFAULT_ENCODING) -> str:
    """Write ``text`` as a field value: delimiters escaped (§2.7.4), line breaks as ``\\.br\\``.

    Other control characters become ``\\Xhh\\``. Characters outside ASCII are kept: the
    message's character set (MSH-18) carries them.
    """
    esc = encoding.escape
    table = {
        encoding.escape: f"{esc}E{esc}",
        encoding.field: f"{esc}F{esc}",
        encoding.component: f"{esc}S{esc}",
        encoding.subcomponent: f"{esc}T{esc}",
        encoding.repetition: f"{esc}R{esc}",
    }
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    out: list[str] = []
    for char in text:
        if char in table:
            out.append(table[char])
        elif char == "\n":
            out.append(f"{esc}.br{esc}")
        elif ord(char) < 0x20 or ord(char) == 0x7F:
            out.append(f"{esc}X{ord(char):02X}{esc}")
        else:
            out.append(char)
    return "".join(out)


def compose_field(
    *components: str | Sequence[str], encoding: EncodingCharacters = DEFAULT_ENCODING
) -> str:
    """One field value from unescaped components; a component may be a sequence of
    sub-components. Trailing empty components and sub-components are left out (§2.5.3)."""
    parts: list[str] = []
    for component in components:
        subs = [component] if isinstance(component, str) else list(component)
        parts.append(_join_trimmed([escape(s, encoding) for s in subs], encoding.subcomponent))
    return _join_trimmed(parts, encoding.component)


def compose_segment(
    segment_id: str, fields: Sequence[str], encoding: EncodingCharacters = DEFAULT_ENCODING
) -> str:
    """One segment from already composed fields (field 1 first), trailing empties left out."""
    return _join_trimmed([segment_id, *fields], encoding.field)


def _join_trimmed(parts: Sequence[str], separator: str) -> str:
    items = list(parts)
    while items and items[-1] == "":
        items.pop()
    return separator.join(items)


class Segment:
    """One segment of a parsed message, values kept escaped and unescaped on access.

    Positions follow the standard: ``segment.get(3)`` is PID-3 in a PID segment, MSH-1 is the
    field separator and MSH-2 the encoding characters. Absent values read as ``""``; so does
    the HL7 null ``""`` (the "delete this value" of an update), since the models built from
    messages carry complete snapshots rather than field-level edits.
    """

    def __init__(
        self,
        segment_id: str,
        fields: Sequence[FieldValue],
        *,
        sequence: int,
        encoding: EncodingCharacters,
        codec: str,
    ) -> None:
        self.id = segment_id
        """Three-letter segment ID."""
        self.sequence = sequence
        """Occurrence of this segment ID in the message, counting from 1."""
        self.encoding = encoding
        """Delimiters of the message."""
        self._fields = tuple(fields)
        self._codec = codec

    def __repr__(self) -> str:
        # No values: a segment of a PID would otherwise put patient data in a log.
        return f"<Segment {self.id}[{self.sequence}] with {len(self._fields)} fields>"

    @property
    def field_count(self) -> int:
        """Number of fields present, the segment ID excluded."""
        return len(self._fields)

    def _raw(self, field: int, component: int, subcomponent: int, repetition: int) -> str:
        try:
            value = self._fields[field - 1][repetition - 1][component - 1][subcomponent - 1]
        except IndexError:
            return ""
        return "" if value == _HL7_NULL else value

    def get(
        self, field: int, component: int = 1, subcomponent: int = 1, repetition: int = 1
    ) -> str:
        """The unescaped value at a position, ``""`` when absent."""
        if field < 1 or component < 1 or subcomponent < 1 or repetition < 1:
            raise ValueError("HL7 positions count from 1")
        raw = self._raw(field, component, subcomponent, repetition)
        if self.id == "MSH" and field in (1, 2):
            return raw
        return unescape(raw, self.encoding, self._codec)

    def repetitions(self, field: int) -> int:
        """How many repetitions a field has (0 when the field is empty)."""
        if field < 1 or field > len(self._fields):
            return 0
        reps = self._fields[field - 1]
        if len(reps) == 1 and not any(any(sub for sub in comp) for comp in reps[0]):
            return 0
        return len(reps)

    def components(self, field: int, repetition: int = 1) -> int:
        """How many components a repetition of a field has as sent."""
        try:
            return len(self._fields[field - 1][repetition - 1])
        except IndexError:
            return 0

    def location(
        self,
        field: int | None = None,
        component: int | None = None,
        repetition: int | None = None,
        subcomponent: int | None = None,
    ) -> ErrorLocation:
        """An ERR-2 location inside this segment."""
        return ErrorLocation(self.id, self.sequence, field, repetition, component, subcomponent)

    def require(
        self,
        field: int,
        component: int = 1,
        subcomponent: int = 1,
        repetition: int = 1,
        *,
        name: str,
    ) -> str:
        """The value at a position, or :class:`HL7Error` 101 naming it when it is empty."""
        value = self.get(field, component, subcomponent, repetition)
        if not value.strip():
            location = self.location(field, component if component > 1 else None)
            raise HL7Error(
                ErrorCode.REQUIRED_FIELD_MISSING, f"{location} ({name}) is required", location
            )
        return value
