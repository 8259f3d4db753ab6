"""Encryption at rest of small secrets (second-factor seeds) with AES-256-GCM."""

from __future__ import annotations

import base64
import os
import secrets
from pathlib import Path

from cryptography.hazmat.primitives.ciphers.aead import AESGCM

KEY_FILE = "secret.key"


def load_or_create_key(data_dir: Path, configured: str = "") -> bytes:
    """The configured key, or the one generated in the data dir on first start (mode 0600)."""
    if configured:
        raw = base64.urlsafe_b64decode(configured.encode() + b"==")
        if len(raw) != 32:
            raise ValueError("CONCILIUM_SECRET_KEY must be 32 bytes, URL-safe base64 encoded")
        return raw
    path = data_dir / KEY_FILE
    if path.exists():
        return base64.urlsafe_b64decode(path.read_bytes().strip())
    data_dir.mkdir(parents=True, exist_ok=True)
    key = secrets.token_bytes(32)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(base64.urlsafe_b64encode(key))
        handle.flush()
        os.fsync(handle.fileno())
    return key


class SecretBox:
    """Seal and open short strings; the nonce travels with the ciphertext."""

    def __init__(self, key: bytes) -> None:
        self._aead = AESGCM(key)

    def seal(self, plaintext: str, context: str) -> str:
        nonce = secrets.token_bytes(12)
        sealed = self._aead.encrypt(nonce, plaintext.encode(), context.encode())
        return base64.urlsafe_b64encode(nonce + sealed).decode()

    def open(self, token: str, context: str) -> str:
        raw = base64.urlsafe_b64decode(token.encode())
        return self._aead.decrypt(raw[:12], raw[12:], context.encode()).decode()
