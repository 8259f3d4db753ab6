"""Character sets of HL7 v2 messages: MSH-18 and HL7 table 0211 (HL7 v2.5.1 §2.15.9.18).

MSH-18 names the character set of the whole message; its first repetition is the default
set, the others are for ISO 2022 switching, which is not supported. Without MSH-18 the
standard says 7-bit ASCII, but French hospital systems send accented names undeclared, in
ISO 8859-1 or in UTF-8. An undeclared message is therefore read as ASCII if it is, as
UTF-8 if it is valid UTF-8 (text in ISO 8859-1 with accents practically never is), and
otherwise in a fallback set, ISO 8859-1 unless configured.
"""

from __future__ import annotations

from concilium.reading.hl7v2_errors import ErrorCode, ErrorLocation, HL7Error

ASCII = "ASCII"
"""Table 0211 code of 7-bit ASCII, the default of the standard."""
LATIN_1 = "8859/1"
"""Table 0211 code of ISO 8859-1 (Western European)."""
UTF_8 = "UNICODE UTF-8"
"""Table 0211 code of UTF-8."""

CODECS: dict[str, str] = {
    ASCII: "ascii",
    "ISO IR6": "ascii",
    LATIN_1: "iso8859-1",
    "8859/2": "iso8859-2",
    "8859/3": "iso8859-3",
    "8859/4": "iso8859-4",
    "8859/5": "iso8859-5",
    "8859/6": "iso8859-6",
    "8859/7": "iso8859-7",
    "8859/8": "iso8859-8",
    "8859/9": "iso8859-9",
    "8859/15": "iso8859-15",
    UTF_8: "utf-8",
}
"""Supported table 0211 codes and the Python codec of each."""

# Names that some systems put in MSH-18 instead of the table 0211 code.
ALIASES: dict[str, str] = {"UTF-8": UTF_8, "UTF8": UTF_8, "ISO-8859-1": LATIN_1, "LATIN1": LATIN_1}

_MSH18 = ErrorLocation("MSH", 1, 18)


def normalise(charset: str) -> str:
    """The table 0211 code for a value of MSH-18, or :class:`HL7Error` 103 if unsupported."""
    code = charset.strip().upper()
    code = ALIASES.get(code, code)
    if code not in CODECS:
        raise HL7Error(
            ErrorCode.TABLE_VALUE_NOT_FOUND,
            f"character set {charset.strip()[:20]!r} in MSH-18 is not supported; use one of "
            f"{', '.join(CODECS)}",
            _MSH18,
        )
    return code


def codec_for(charset: str) -> str:
    """The Python codec of a supported table 0211 code."""
    return CODECS[normalise(charset)]


def declared_charset(raw: bytes) -> str:
    """The first repetition of MSH-18 as sent, ``""`` when absent or unreadable."""
    if len(raw) < 8 or not raw.startswith(b"MSH"):
        return ""
    head = raw.split(b"\r", 1)[0].split(b"\n", 1)[0].decode("latin-1")
    if len(head) < 8:
        return ""
    separator, msh2 = head[3], head[4:8]
    fields = head.split(separator)
    # fields[0] is "MSH" and fields[1] MSH-2, so MSH-n is fields[n - 1].
    if len(fields) < 18:
        return ""
    return fields[17].split(msh2[1])[0].strip()


def decode_message(raw: bytes, *, fallback: str = LATIN_1) -> tuple[str, str]:
    """Decode a message by its MSH-18; returns the text and the table 0211 code used.

    Raises :class:`HL7Error` 103 for an unsupported MSH-18 and 102 when the bytes are not
    valid in the declared set.
    """
    declared = declared_charset(raw)
    if declared:
        charset = normalise(declared)
        try:
            return raw.decode(CODECS[charset]), charset
        except UnicodeDecodeError:
            raise HL7Error(
                ErrorCode.DATA_TYPE_ERROR,
                f"the message is not valid {charset} as MSH-18 declares",
                _MSH18,
            ) from None
    for charset in (ASCII, UTF_8):
        try:
            return raw.decode(CODECS[charset]), charset
        except UnicodeDecodeError:
            continue
    charset = normalise(fallback)
    return raw.decode(CODECS[charset], errors="replace"), charset


def encode_message(text: str, charset: str, *, errors: str = "strict") -> bytes:
    """Encode a composed message in a supported table 0211 character set.

    ``errors`` is the codec policy: ``"strict"`` raises :class:`UnicodeEncodeError` on text
    the set cannot carry, ``"replace"`` writes ``?`` instead.
    """
    return text.encode(codec_for(charset), errors=errors)
