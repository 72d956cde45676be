"""The payload codec that encrypts workflow and activity payloads in Temporal history.

Each payload becomes one whose metadata says ``encoding: binary/encrypted``
and names the key (``encryption-key-id``); its data is the nonce and the
AES-GCM ciphertext of the whole original payload (metadata included). A
payload without that encoding is passed through on decode, so histories
written before encryption was turned on, and unencrypted clients, still work.
Search attributes and failure messages are not payloads and stay readable.

A process without ``JOB_ENCRYPTION_KEYS`` has no codec, but its payload
converter (:class:`PayloadConverter`) knows the encoding: decoding an
encrypted payload raises PayloadDecryptionError naming the key it needs,
instead of Temporal's "unknown payload encoding". It costs nothing until
such a payload arrives.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from temporalio.api.common.v1 import Payload
from temporalio.contrib.pydantic import PydanticPayloadConverter
from temporalio.converter import DataConverter, EncodingPayloadConverter, PayloadCodec

from ..encryption import VARIABLE, KeySet
from ..errors import PayloadDecryptionError

ENCODING = b"binary/encrypted"
KEY_ID = "encryption-key-id"
_CONTEXT = b"algajobs/temporal-payload/v1"


class EncryptionCodec(PayloadCodec):
    """AES-256-GCM over whole payloads with the active key of ``keys``; any key of ``keys`` decrypts."""

    def __init__(self, keys: KeySet) -> None:
        self.keys = keys

    async def encode(self, payloads: Sequence[Payload]) -> list[Payload]:
        """Encrypt every payload."""
        return [self._seal(p) for p in payloads]

    async def decode(self, payloads: Sequence[Payload]) -> list[Payload]:
        """Decrypt encrypted payloads (PayloadDecryptionError naming a key not held); pass others through."""
        return [self._open(p) if p.metadata.get("encoding") == ENCODING else p for p in payloads]

    def _seal(self, payload: Payload) -> Payload:
        kid, sealed = self.keys.encrypt(payload.SerializeToString(), _CONTEXT + b"/" + self.keys.active.encode())
        return Payload(metadata={"encoding": ENCODING, KEY_ID: kid.encode()}, data=sealed)

    def _open(self, payload: Payload) -> Payload:
        kid = payload.metadata.get(KEY_ID, b"").decode("utf-8", "replace")
        plain = self.keys.decrypt(kid, payload.data, _CONTEXT + b"/" + kid.encode())
        return Payload.FromString(plain)


class _NameTheKey(EncodingPayloadConverter):
    """Converts no value; refuses an encrypted payload, saying which key it needs (no codec in this process)."""

    @property
    def encoding(self) -> str:
        return ENCODING.decode()

    def to_payload(self, value: Any) -> Payload | None:
        return None

    def from_payload(self, payload: Payload, type_hint: type | None = None) -> Any:
        kid = payload.metadata.get(KEY_ID, b"?").decode("utf-8", "replace")
        raise PayloadDecryptionError(f"payload is encrypted with key {kid!r}, and {VARIABLE} is not set here")


class PayloadConverter(PydanticPayloadConverter):
    """Pydantic JSON payloads; an encrypted payload reaching it (no key set) is refused with the key it needs."""

    def __init__(self) -> None:
        super().__init__()
        self._set_converters(*self.converters.values(), _NameTheKey())  # last: never asked to encode a value


plain_data_converter = DataConverter(payload_converter_class=PayloadConverter)
"""The converter without encryption; :func:`~algajobs.temporal.connection.data_converter` adds the codec."""
