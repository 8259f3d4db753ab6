"""Text as people search it: without regard to case or accents (``Hélène`` → ``helene``).

One rule for every search by name: the people directory and the person-name matching of
DICOM queries (PS3.4 C.2.2.2.1.1) fold text the same way.
"""

from __future__ import annotations

import unicodedata


def folded(text: str) -> str:
    """``text`` in lower case (Unicode case folding) with its accents and other combining
    marks removed."""
    decomposed = unicodedata.normalize("NFKD", text.casefold())
    return "".join(c for c in decomposed if not unicodedata.combining(c))
