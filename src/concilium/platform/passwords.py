"""Password hashing with argon2id (RFC 9106) and the minimum password rules."""

from __future__ import annotations

import secrets

from argon2 import PasswordHasher, profiles
from argon2.exceptions import InvalidHashError, VerificationError

from concilium.platform.errors import InvalidInput

MIN_LENGTH = 12
UNUSABLE_PREFIX = "!"
"""Marks a stored hash no password matches: an account whose holder has yet to choose one."""
HASHING = profiles.RFC_9106_LOW_MEMORY
"""argon2id with RFC 9106's second recommended option: 64 MiB, three passes."""
_hasher = PasswordHasher.from_parameters(HASHING)
_DUMMY_HASH = _hasher.hash("timing-equaliser-not-a-password")


def check_strength(password: str) -> None:
    if len(password) < MIN_LENGTH:
        raise InvalidInput(f"password must have at least {MIN_LENGTH} characters")
    if password.isalpha() or password.isdigit():
        raise InvalidInput("password must mix letters with digits or symbols")


def hash_password(password: str) -> str:
    check_strength(password)
    return _hasher.hash(password)


def unusable_hash() -> str:
    """A stored hash no password matches, until the account's holder sets one (set-up link)."""
    return UNUSABLE_PREFIX + secrets.token_hex(16)


def has_usable_password(stored_hash: str) -> bool:
    return not stored_hash.startswith(UNUSABLE_PREFIX)


def verify_password(stored_hash: str | None, password: str) -> bool:
    """Check a password; unknown users, and accounts without a password yet, are checked
    against a dummy hash so that the time taken tells nothing about the account."""
    usable = stored_hash if stored_hash and has_usable_password(stored_hash) else None
    try:
        matches = _hasher.verify(usable or _DUMMY_HASH, password)
    except (VerificationError, InvalidHashError):
        return False
    return bool(matches and usable is not None)
