"""Payload encryption: AES-256-GCM under a rotating key set (``JOB_ENCRYPTION_KEYS``).

``JOB_ENCRYPTION_KEYS`` is ``kid:base64key[,kid:base64key...]``: 32-byte keys,
the first one encrypts, every one decrypts, so a key is rotated by putting a
new one first and keeping the old ones until nothing they sealed is left.

Each value gets a random 96-bit nonce; the key id travels beside the
ciphertext, and the associated data binds what the ciphertext is for, so it
cannot be moved unnoticed. Two forms carry it:

- Temporal history: :class:`algajobs.temporal.codec.EncryptionCodec` (a
  ``PayloadCodec``) built on :meth:`KeySet.encrypt` / :meth:`KeySet.decrypt`.
- PostgreSQL (``jobs.data``, ``jobs.result``, ``schedules.data``,
  ``job_details.result``): a JSON envelope ``{"$encrypted": {"v": 1, "kid",
  "nonce", "ciphertext"}}``, bound to the row's tenant and column
  (:func:`seal` / :func:`open_value` / :func:`open_strict`).

A reader without the key gets :class:`EncryptedPayload` (``"<encrypted with
key K>"``), never ciphertext; a handler's input raises
:class:`~algajobs.errors.PayloadDecryptionError` instead. With no keys
configured, writes are unchanged and reads cost a type check.
"""

from __future__ import annotations

import base64
import binascii
import functools
import json
import os
import re
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from .errors import ConfigurationError, PayloadDecryptionError

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

VARIABLE = "JOB_ENCRYPTION_KEYS"
ENVELOPE = "$encrypted"
"""The single key of a sealed column value."""
KEY_BYTES = 32  # AES-256
NONCE_BYTES = 12  # 96 bits, GCM's native nonce size
_VERSION = 1
_KEY_ID = re.compile(r"[A-Za-z0-9._-]{1,64}", re.ASCII)
_ENVELOPE_FIELDS = frozenset({"v", "kid", "nonce", "ciphertext"})


class Column(StrEnum):
    """What a sealed value is; part of its associated data."""

    DATA = "data"
    """``jobs.data`` and ``schedules.data`` (a schedule's runs copy it)."""
    RESULT = "result"
    """``jobs.result``."""
    DETAIL = "detail"
    """``job_details.result``."""


class EncryptedPayload(str):
    """A stored value this process cannot decrypt; its text is ``<encrypted with key K>``.

    ``key_id`` names the key it needs and ``reason`` says why it was not
    opened (key not held, or authentication failed). It is a ``str`` so that
    JSON output, the dashboard and ``model_dump`` show the marker as is.
    """

    key_id: str
    reason: str

    def __new__(cls, key_id: str, reason: str) -> EncryptedPayload:
        """The marker of a value sealed with ``key_id`` that could not be opened for ``reason``."""
        marker = super().__new__(cls, f"<encrypted with key {key_id}>")
        marker.key_id = key_id
        marker.reason = reason
        return marker


def parse_keys(text: str) -> list[tuple[str, bytes]]:
    """``[(key id, key)]`` from ``kid:base64key,...``; ValueError (never echoing key material) when malformed."""
    entries = [part.strip() for part in text.split(",")]
    if not any(entries):
        raise ValueError(f"is empty; unset {VARIABLE} to store payloads unencrypted")
    keys: list[tuple[str, bytes]] = []
    for position, entry in enumerate(entries, start=1):
        kid, sep, encoded = entry.partition(":")
        kid, encoded = kid.strip(), encoded.strip()
        if not sep or not _KEY_ID.fullmatch(kid):
            raise ValueError(f"entry {position} is not 'key-id:base64-key' (a key id is 1-64 of A-Z a-z 0-9 . _ -)")
        if any(kid == seen for seen, _ in keys):
            raise ValueError(f"key id {kid!r} appears twice")
        key = _b64(encoded)
        if key is None:
            raise ValueError(f"key {kid!r} is not base64")
        if len(key) != KEY_BYTES:
            raise ValueError(f"key {kid!r} is {len(key)} bytes; AES-256-GCM needs {KEY_BYTES}")
        keys.append((kid, key))
    return keys


def _b64(text: str) -> bytes | None:
    # Standard or URL-safe alphabet (what `openssl rand -base64 32` and Python's secrets give).
    try:
        return base64.b64decode(text.replace("-", "+").replace("_", "/"), validate=True)
    except (binascii.Error, ValueError):
        return None


class KeySet:
    """The keys of ``JOB_ENCRYPTION_KEYS``: ``active`` encrypts, all of them decrypt."""

    def __init__(self, keys: list[tuple[str, bytes]]) -> None:
        try:
            from cryptography.hazmat.primitives.ciphers.aead import AESGCM
        except ImportError:  # the `encryption` extra
            raise ConfigurationError(
                f"{VARIABLE} needs the 'cryptography' package: pip install 'algajobs[encryption]'"
            ) from None
        if not keys:
            raise ConfigurationError(f"{VARIABLE}: no keys")
        self.active: str = keys[0][0]
        self._ciphers: dict[str, AESGCM] = {kid: AESGCM(key) for kid, key in keys}

    @property
    def key_ids(self) -> tuple[str, ...]:
        """Every key id, the active one first."""
        return tuple(self._ciphers)

    @classmethod
    def configured(cls, text: str | None) -> KeySet | None:
        """The key set a ``JOB_ENCRYPTION_KEYS`` text configures, or None (encryption off); one object per text."""
        return None if text is None else _cached(text)

    def encrypt(self, plaintext: bytes, context: bytes) -> tuple[str, bytes]:
        """``(key id, nonce + ciphertext)`` of ``plaintext`` under the active key, bound to ``context``."""
        nonce = os.urandom(NONCE_BYTES)
        return self.active, nonce + self._ciphers[self.active].encrypt(nonce, plaintext, context)

    def decrypt(self, key_id: str, sealed: bytes, context: bytes) -> bytes:
        """The plaintext of ``sealed``; PayloadDecryptionError naming the key when it cannot be opened."""
        from cryptography.exceptions import InvalidTag

        cipher = self._ciphers.get(key_id)
        if cipher is None:
            raise PayloadDecryptionError(_not_held(key_id, self.key_ids))
        if len(sealed) < NONCE_BYTES + 16:  # nonce plus GCM's 16-byte tag
            raise PayloadDecryptionError(f"payload sealed with key {key_id!r} is truncated")
        try:
            return cipher.decrypt(sealed[:NONCE_BYTES], sealed[NONCE_BYTES:], context)
        except InvalidTag:
            raise PayloadDecryptionError(
                f"payload sealed with key {key_id!r} failed authentication: it was altered, or key "
                f"{key_id!r} here is not the key that sealed it"
            ) from None


@functools.lru_cache(maxsize=8)
def _cached(text: str) -> KeySet:
    try:
        return KeySet(parse_keys(text))
    except ValueError as exc:  # settings validated it already; a KeySet built by hand may not be
        raise ConfigurationError(f"{VARIABLE}: {exc}") from None


def _not_held(key_id: str, held: tuple[str, ...]) -> str:
    having = f"this process holds {', '.join(held)}" if held else f"{VARIABLE} is not set here"
    return f"payload is encrypted with key {key_id!r}, which is not in {VARIABLE} ({having})"


def _context(column: Column, tenant: str) -> bytes:
    return f"algajobs/v{_VERSION}/{column.value}/{tenant}".encode()


def is_sealed(value: Any) -> bool:
    """True for a column value in the envelope form (cheap: one type check for anything else)."""
    return type(value) is dict and len(value) == 1 and ENVELOPE in value


def seal(keys: KeySet, text: str, *, tenant: str, column: Column) -> str:
    """The envelope (JSON text) to store for the JSON ``text``; callers skip the call when encryption is off."""
    kid, sealed = keys.encrypt(text.encode(), _context(column, tenant))
    nonce, ciphertext = sealed[:NONCE_BYTES], sealed[NONCE_BYTES:]
    inner = {"v": _VERSION, "kid": kid, "nonce": _text(nonce), "ciphertext": _text(ciphertext)}
    return json.dumps({ENVELOPE: inner}, separators=(",", ":"))


def _text(raw: bytes) -> str:
    return base64.b64encode(raw).decode("ascii")


def open_strict(keys: KeySet | None, value: Any, *, tenant: str, column: Column) -> Any:
    """The stored ``value`` decrypted (a plain value is returned as is); PayloadDecryptionError if it cannot be."""
    if not is_sealed(value):
        return value
    inner = value[ENVELOPE]
    if type(inner) is not dict or set(inner) != _ENVELOPE_FIELDS or inner["v"] != _VERSION:
        raise PayloadDecryptionError(f"stored {column.value} holds a malformed {ENVELOPE!r} envelope")
    kid = str(inner["kid"])
    if keys is None:
        raise PayloadDecryptionError(_not_held(kid, ()))
    nonce, ciphertext = _b64(str(inner["nonce"])), _b64(str(inner["ciphertext"]))
    if nonce is None or ciphertext is None or len(nonce) != NONCE_BYTES:
        raise PayloadDecryptionError(f"stored {column.value} sealed with key {kid!r} is not valid base64")
    plaintext = keys.decrypt(kid, nonce + ciphertext, _context(column, tenant))
    try:
        return json.loads(plaintext)
    except ValueError:  # authenticated, so only a sealing bug gets here
        raise PayloadDecryptionError(f"stored {column.value} sealed with key {kid!r} is not JSON") from None


def require_plain(value: Any) -> Any:
    """``value`` as read by the store; PayloadDecryptionError (its reason) when it is an :class:`EncryptedPayload`."""
    if isinstance(value, EncryptedPayload):
        raise PayloadDecryptionError(value.reason)
    return value


def open_value(keys: KeySet | None, value: Any, *, tenant: str, column: Column) -> Any:
    """The stored ``value`` for a reader: decrypted, or an :class:`EncryptedPayload` marker; never raises."""
    if not is_sealed(value):
        return value
    try:
        return open_strict(keys, value, tenant=tenant, column=column)
    except PayloadDecryptionError as exc:
        inner = value[ENVELOPE]
        kid = str(inner.get("kid", "?")) if type(inner) is dict else "?"
        return EncryptedPayload(kid, str(exc))
