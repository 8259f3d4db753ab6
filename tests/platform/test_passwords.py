"""Passwords are hashed with argon2id at RFC 9106's cost, and checked in the same time
whether or not the account exists."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from argon2 import Type, extract_parameters, profiles

from concilium.platform import passwords
from concilium.platform.errors import InvalidInput

PROBE = """
import json
from argon2 import extract_parameters
from concilium.platform import passwords
stored = passwords.hash_password("correct-horse-42")
dummy = extract_parameters(passwords._DUMMY_HASH)
p = extract_parameters(stored)
print(json.dumps([p.type.name, p.time_cost, p.memory_cost, p.parallelism, dummy == p,
                  passwords.verify_password(stored, "correct-horse-42"),
                  passwords.verify_password(stored, "wrong-horse-42"),
                  passwords.verify_password(None, "correct-horse-42")]))
"""


def test_the_product_hashes_with_argon2id_at_rfc_9106_cost():
    # In a process of its own: the suite hashes its test accounts at the lowest cost.
    out = subprocess.run(
        [sys.executable, "-c", PROBE], capture_output=True, text=True, check=True, timeout=60
    ).stdout
    kind, time_cost, memory_cost, parallelism, same_cost, good, bad, unknown = json.loads(out)
    expected = profiles.RFC_9106_LOW_MEMORY
    assert expected == passwords.HASHING
    assert (kind, time_cost, memory_cost, parallelism) == (
        Type.ID.name,
        expected.time_cost,
        expected.memory_cost,
        expected.parallelism,
    )
    assert same_cost, "unknown accounts must cost the same check as real ones"
    assert (good, bad, unknown) == (True, False, False)


def test_short_or_plain_passwords_are_refused():
    for weak in ("short-1", "onlylettersherebutlong", "123456789012345"):
        with pytest.raises(InvalidInput):
            passwords.hash_password(weak)
    stored = passwords.hash_password("correct-horse-42")
    assert extract_parameters(stored).type is Type.ID
    assert passwords.verify_password(stored, "correct-horse-42")
    assert not passwords.verify_password(passwords.unusable_hash(), "correct-horse-42")
