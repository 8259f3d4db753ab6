"""The matching of one attribute value against a key of a query, PS3.4 C.2.2.2, in memory.

The archive's index matches in SQL (`concilium.imaging.matching`); what both need — how a
key's values are read, date and time ranges (C.2.2.2.5), wildcards (C.2.2.2.4), person names
without regard to case (C.2.2.2.1) or by fuzzy semantic matching (C.2.2.2.1.1) — is here,
free of storage, so that other services' C-FIND providers (the modality worklist) match as the
archive does. `value_matches` decides for one key and one candidate value.
"""

from __future__ import annotations

import datetime as dt
import enum
import fnmatch
import re
from collections.abc import Callable
from typing import Any

from pydicom.multival import MultiValue

from concilium.imaging.parsing import parse_da, parse_tm
from concilium.platform.folding import folded

__all__ = [
    "EMPTY_VALUE",
    "WILDCARDS",
    "InvalidQuery",
    "KeyKind",
    "datetime_range_matches",
    "fuzzy_name_match",
    "kind_of_vr",
    "pad_time",
    "parse_range",
    "value_matches",
    "values_of",
]


class InvalidQuery(ValueError):
    """A query identifier that cannot be processed (PS3.4 C.4.1.1.4 status A900)."""


class KeyKind(enum.Enum):
    TEXT = "text"
    """Single value and wildcard matching, case-sensitive (C.2.2.2.1, C.2.2.2.4)."""
    PERSON_NAME = "pn"
    """As TEXT, but insensitive to case (C.2.2.2.1 allows it for PN)."""
    UID = "uid"
    """Single value or list of UIDs (C.2.2.2.2); no wildcards."""
    DATE = "date"
    """Single value or range (C.2.2.2.5)."""
    TIME = "time"
    """Single value or range (C.2.2.2.5)."""
    INTEGER = "int"
    """Single value."""


WILDCARDS = frozenset("*?")

EMPTY_VALUE = '""'
"""Empty value matching (C.2.2.2.7): a key of two quotation marks matches an empty value."""

_KIND_OF_VR = {
    "PN": KeyKind.PERSON_NAME,
    "UI": KeyKind.UID,
    "DA": KeyKind.DATE,
    "TM": KeyKind.TIME,
    "IS": KeyKind.INTEGER,
    "US": KeyKind.INTEGER,
    "UL": KeyKind.INTEGER,
    "SS": KeyKind.INTEGER,
    "SL": KeyKind.INTEGER,
}


def kind_of_vr(vr: str) -> KeyKind:
    """How a key of this Value Representation matches (text unless said otherwise)."""
    return _KIND_OF_VR.get(vr, KeyKind.TEXT)


def values_of(raw: Any) -> list[str]:
    """The values of a key or a candidate attribute, backslash-separated ones split, each
    without its padding; none for an empty value."""
    if raw is None:
        return []
    if isinstance(raw, MultiValue | list | tuple):
        return [str(v).strip() for v in raw if str(v).strip()]
    text = str(raw).strip()
    return [part.strip() for part in text.split("\\") if part.strip()] if text else []


def parse_range(
    value: str, parse: Callable[[str], Any], *, pad_end: Callable[[str, Any], Any] | None = None
) -> tuple[Any, Any]:
    """(start, end) of a single value or a range ``A-B``, ``A-`` or ``-B`` (C.2.2.2.5.1),
    either end None when open; raises `InvalidQuery`."""
    start_text, dash, end_text = value.partition("-")
    start = parse(start_text) if start_text else None
    end = parse(end_text) if end_text else None
    if (start_text and start is None) or (end_text and end is None) or (not dash and not start):
        raise InvalidQuery(f"not a valid date or time range: {value!r}")
    if not dash:
        end = start
        end_text = start_text
    if end is not None and pad_end is not None:
        end = pad_end(end_text, end)
    return start, end


def pad_time(text: str, value: dt.time) -> dt.time:
    """An upper bound covering its precision: "1200" means up to 12:00:59.999999."""
    digits = len(text.replace(":", "").partition(".")[0])
    if "." in text:
        return value
    if digits <= 2:
        return value.replace(minute=59, second=59, microsecond=999999)
    if digits <= 4:
        return value.replace(second=59, microsecond=999999)
    return value.replace(microsecond=999999)


def fuzzy_name_match(pattern: str, name: str) -> bool:
    """Fuzzy semantic matching of a person name (PS3.4 C.2.2.2.1.1): negotiated for C-FIND
    (C.5.1.1), asked for by ``fuzzymatching=true`` in QIDO-RS (PS3.18 8.3.4.1).

    Insensitive to case and accents; ``*`` and ``?`` keep their meaning; without wildcards,
    each component given (family, given...) must begin the same component of the name.
    """
    folded_name = folded(name)
    folded_pattern = folded(pattern.strip())
    if not folded_pattern or folded_pattern == "*":
        return True
    if "*" in folded_pattern or "?" in folded_pattern:
        return fnmatch.fnmatchcase(folded_name, folded_pattern)
    wanted = folded_pattern.split("^")
    have = folded_name.split("^")
    return all(
        i < len(have) and have[i].strip().startswith(w.strip())
        for i, w in enumerate(wanted)
        if w.strip()
    )


def _wildcard(pattern: str) -> re.Pattern[str]:
    # ``*`` any sequence of characters, ``?`` any one character (C.2.2.2.4); nothing else
    # is special, unlike fnmatch's brackets.
    parts = (".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern)
    return re.compile("".join(parts), re.DOTALL)


def _text_matches(pattern: str, value: str, *, fold_case: bool) -> bool:
    if fold_case:
        pattern, value = pattern.casefold(), value.casefold()
        if not WILDCARDS & set(pattern):
            # Trailing empty components do not count: "DOE^" is "DOE" (PS3.5 6.2).
            return pattern.rstrip("^") == value.rstrip("^")
    if not WILDCARDS & set(pattern):
        return pattern == value
    return _wildcard(pattern).fullmatch(value) is not None


def _in_range(key: str, candidate: str, kind: KeyKind) -> bool:
    if kind is KeyKind.DATE:
        start, end = parse_range(key, parse_da)
        value: Any = parse_da(candidate)
    else:
        start, end = parse_range(key, parse_tm, pad_end=pad_time)
        value = parse_tm(candidate)
    if value is None:
        return False
    return (start is None or start <= value) and (end is None or value <= end)


def value_matches(kind: KeyKind, key: Any, candidate: Any, *, fuzzy: bool = False) -> bool:
    """Whether a candidate attribute value matches a key of a query (PS3.4 C.2.2.2).

    ``key`` and ``candidate`` are as a data set holds them (text, several values as a list or
    backslash-separated). An empty key, or ``*``, matches anything (universal matching); the
    key ``""`` matches an empty value only (C.2.2.2.7); otherwise an empty candidate matches
    nothing. With several candidate values, one matching is enough; several key values are a
    list of UIDs (C.2.2.2.2). With ``fuzzy``, person names match by fuzzy semantic matching.
    Raises `InvalidQuery` for a date or time key that is not a date, time or range.
    """
    keys = values_of(key)
    if not keys or keys == ["*"]:
        return True
    have = values_of(candidate)
    if keys == [EMPTY_VALUE]:
        return not have
    if kind is KeyKind.DATE or kind is KeyKind.TIME:
        for one in keys:
            parse_range(one, parse_da if kind is KeyKind.DATE else parse_tm)
        return any(_in_range(k, v, kind) for k in keys for v in have)
    if kind is KeyKind.UID:
        return bool(set(keys) & set(have))
    if kind is KeyKind.INTEGER:
        try:
            wanted = {int(k) for k in keys}
        except ValueError as exc:
            raise InvalidQuery(f"{keys!r} is not an integer") from exc
        return any(v.lstrip("+-").isdigit() and int(v) in wanted for v in have)
    if kind is KeyKind.PERSON_NAME and fuzzy:
        return any(fuzzy_name_match(k, v) for k in keys for v in have)
    fold = kind is KeyKind.PERSON_NAME
    return any(_text_matches(k, v, fold_case=fold) for k in keys for v in have)


def datetime_range_matches(
    date_key: Any, time_key: Any, candidate_date: Any, candidate_time: Any
) -> bool:
    """Combined date and time range matching (PS3.4 C.2.2.2.5, negotiated by C.5.1.1 byte 2):
    ``20061012-20061013`` with ``2300-0100`` is from 12 October at 23:00 to 13 October at
    01:00, not two ranges matched apart. A key without a range matches as `value_matches`.
    Raises `InvalidQuery`.
    """
    dates, times = values_of(date_key), values_of(time_key)
    if len(dates) != 1 or len(times) != 1 or "-" not in dates[0] + times[0]:
        return value_matches(KeyKind.DATE, date_key, candidate_date) and value_matches(
            KeyKind.TIME, time_key, candidate_time
        )
    if dates == ["*"] or times == ["*"]:
        return value_matches(KeyKind.DATE, date_key, candidate_date) and value_matches(
            KeyKind.TIME, time_key, candidate_time
        )
    date_start, date_end = parse_range(dates[0], parse_da)
    time_start, time_end = parse_range(times[0], parse_tm, pad_end=pad_time)
    day = parse_da(str(candidate_date or "").strip())
    moment = parse_tm(str(candidate_time or "").strip()) or dt.time()
    if day is None:
        return False
    at = dt.datetime.combine(day, moment)
    start = dt.datetime.combine(date_start, time_start or dt.time()) if date_start else None
    end = dt.datetime.combine(date_end, time_end or dt.time.max) if date_end is not None else None
    return (start is None or start <= at) and (end is None or at <= end)
