"""Channel secrets at rest: encrypted with AES-256-GCM under a server key.

A channel's secrets (webhook signing secret, Slack webhook URL, SMTP password) must be
used again to deliver, so they cannot be hashed like API key secrets or passwords; they
are encrypted. The key is ``LANTERNA_SECRET_KEY`` (32 bytes, base64 or hex) when set;
otherwise ``secret.key`` in the data directory, made (random, mode 0600) the first time
it is needed. Several server processes on one database must share the same key: set
``LANTERNA_SECRET_KEY`` (or copy the file) on each. Losing the key makes the stored
secrets unreadable: the channels then need their secrets entered again.

A stored value is ``v1:<base64 of 12-byte nonce + ciphertext + tag>``; the channel id is
the associated data, so a ciphertext copied onto another channel does not decrypt.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import os
import secrets
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from ..errors import DomainError

_PREFIX = "v1:"
KEY_FILE = "secret.key"


class SecretKeyError(DomainError):
    """The server key is missing, malformed, or not the one a secret was stored with."""

    status = 500


def _decode_key(text: str, where: str) -> bytes:
    text = text.strip()
    candidates: list[bytes] = []
    with contextlib.suppress(ValueError):
        candidates.append(bytes.fromhex(text))
    with contextlib.suppress(binascii.Error, ValueError):
        candidates.append(base64.b64decode(text + "=" * (-len(text) % 4), altchars=b"-_"))
    for key in candidates:
        if len(key) == 32:
            return key
    raise SecretKeyError(f"{where} must be 32 bytes, written as 64 hex digits or base64")


def load_key(secret_key: str, data_dir: str) -> bytes:
    """The server key: ``secret_key`` (the setting) if given, else the key file in
    ``data_dir``, created with a fresh random key when missing."""
    if secret_key:
        return _decode_key(secret_key, "LANTERNA_SECRET_KEY (or LANTERNA_ENCRYPTION_KEY)")
    path = Path(data_dir).expanduser() / KEY_FILE
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        fresh = base64.urlsafe_b64encode(secrets.token_bytes(32)).decode()
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:  # another process made it first: use theirs
            pass
        else:
            with os.fdopen(fd, "w") as handle:
                handle.write(fresh + "\n")
    return _decode_key(path.read_text(), str(path))


class SecretBox:
    """Encrypts and decrypts channel secrets with one server key."""

    def __init__(self, key: bytes) -> None:
        self._aead = AESGCM(key)

    def seal(self, plaintext: str, context: str) -> str:
        """``plaintext`` encrypted, bound to ``context`` (the channel id)."""
        nonce = secrets.token_bytes(12)
        sealed = self._aead.encrypt(nonce, plaintext.encode(), context.encode())
        return _PREFIX + base64.b64encode(nonce + sealed).decode()

    def open(self, stored: str, context: str) -> str:
        """The plaintext of a :meth:`seal` result for the same ``context``."""
        if not stored.startswith(_PREFIX):
            raise SecretKeyError("a stored channel secret is not in a known format")
        raw = base64.b64decode(stored[len(_PREFIX) :])
        try:
            return self._aead.decrypt(raw[:12], raw[12:], context.encode()).decode()
        except InvalidTag:
            raise SecretKeyError(
                "a channel secret cannot be decrypted: the server key (LANTERNA_SECRET_KEY or"
                " secret.key in the data directory) is not the one it was stored with;"
                " enter the channel's secrets again"
            ) from None
