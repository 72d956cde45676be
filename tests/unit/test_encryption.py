"""The key set, the column envelope and the Temporal payload codec (no servers)."""

from __future__ import annotations

import base64
import json
import os

import pytest
from temporalio.api.common.v1 import Payload
from temporalio.contrib.pydantic import pydantic_data_converter

from algajobs import ConfigurationError, EncryptedPayload, PayloadDecryptionError, Settings
from algajobs.encryption import Column, KeySet, open_strict, open_value, parse_keys, require_plain, seal
from algajobs.temporal.codec import ENCODING, KEY_ID, EncryptionCodec, plain_data_converter


def new_key() -> str:
    """A fresh 32-byte key, base64 (what ``openssl rand -base64 32`` prints)."""
    return base64.b64encode(os.urandom(32)).decode()


def keys(text: str) -> KeySet:
    """A key set from ``JOB_ENCRYPTION_KEYS`` text."""
    return KeySet(parse_keys(text))


OLD, NEW = new_key(), new_key()


def sealed(key_set: KeySet, value: object, *, tenant: str = "t1", column: Column = Column.DATA) -> object:
    """``value`` as it is stored in a payload column (the envelope, parsed as psycopg returns jsonb)."""
    return json.loads(seal(key_set, json.dumps(value), tenant=tenant, column=column))


def test_a_sealed_value_round_trips_and_holds_no_plaintext() -> None:
    """The envelope names the key, hides the value, and opens back to it."""
    key_set = keys(f"k1:{NEW}")
    stored = sealed(key_set, {"card": "4111-1111"})
    assert isinstance(stored, dict) and set(stored["$encrypted"]) == {"v", "kid", "nonce", "ciphertext"}
    assert stored["$encrypted"]["kid"] == "k1"
    assert "4111" not in json.dumps(stored)
    assert open_strict(key_set, stored, tenant="t1", column=Column.DATA) == {"card": "4111-1111"}
    assert sealed(key_set, 1) != sealed(key_set, 1)  # a fresh nonce every time


def test_rotation_encrypts_with_the_first_key_and_still_opens_old_values() -> None:
    """After rotation the new key seals; a value sealed under the old key still opens."""
    before = keys(f"old:{OLD}")
    after = keys(f"new:{NEW},old:{OLD}")
    old_value = sealed(before, "from before")
    new_value = sealed(after, "from after")
    assert after.active == "new" and after.key_ids == ("new", "old")
    assert new_value["$encrypted"]["kid"] == "new"  # type: ignore[index]
    assert open_strict(after, old_value, tenant="t1", column=Column.DATA) == "from before"
    assert open_strict(after, new_value, tenant="t1", column=Column.DATA) == "from after"
    marker = open_value(before, new_value, tenant="t1", column=Column.DATA)
    assert isinstance(marker, EncryptedPayload) and marker.key_id == "new"  # old processes only lack the new key


def test_tampered_ciphertext_raises_and_reads_as_a_marker() -> None:
    """One flipped bit fails authentication: a typed error for handlers, a marker for readers."""
    key_set = keys(f"k1:{NEW}")
    stored = sealed(key_set, {"n": 1})
    assert isinstance(stored, dict)
    raw = bytearray(base64.b64decode(stored["$encrypted"]["ciphertext"]))
    raw[0] ^= 1
    stored["$encrypted"]["ciphertext"] = base64.b64encode(bytes(raw)).decode()
    with pytest.raises(PayloadDecryptionError, match="failed authentication"):
        open_strict(key_set, stored, tenant="t1", column=Column.DATA)
    marker = open_value(key_set, stored, tenant="t1", column=Column.DATA)
    assert marker == "<encrypted with key k1>" and "failed authentication" in marker.reason


def test_a_sealed_value_is_bound_to_its_tenant_and_column() -> None:
    """A ciphertext copied to another tenant's row, or from data to result, does not open."""
    key_set = keys(f"k1:{NEW}")
    stored = sealed(key_set, "secret", tenant="t1", column=Column.DATA)
    with pytest.raises(PayloadDecryptionError):
        open_strict(key_set, stored, tenant="t2", column=Column.DATA)
    with pytest.raises(PayloadDecryptionError):
        open_strict(key_set, stored, tenant="t1", column=Column.RESULT)


def test_a_reader_without_the_key_sees_a_marker_never_ciphertext() -> None:
    """No keys, or only other keys: the value reads as ``<encrypted with key K>``; JSON shows the same text."""
    stored = sealed(keys(f"k1:{NEW}"), {"n": 1})
    for reader in (None, keys(f"other:{OLD}")):
        marker = open_value(reader, stored, tenant="t1", column=Column.DATA)
        assert isinstance(marker, EncryptedPayload)
        assert (str(marker), marker.key_id) == ("<encrypted with key k1>", "k1")
        assert "'k1'" in marker.reason and "JOB_ENCRYPTION_KEYS" in marker.reason
        assert json.dumps({"data": marker}) == '{"data": "<encrypted with key k1>"}'
        with pytest.raises(PayloadDecryptionError, match="'k1'"):
            require_plain(marker)


def test_plain_values_pass_through_and_malformed_envelopes_never_crash() -> None:
    """Unencrypted rows read as they are; a broken envelope is a marker for readers, an error for handlers."""
    key_set = keys(f"k1:{NEW}")
    for plain in (None, 1, "x", [1], {"a": 1}, {"$encrypted": 1, "other": 2}):
        assert open_value(key_set, plain, tenant="t1", column=Column.DATA) == plain
        assert open_strict(None, plain, tenant="t1", column=Column.DATA) == plain
    for broken in (
        {"$encrypted": "x"},
        {"$encrypted": {"v": 1}},
        {"$encrypted": {"v": 1, "kid": "k1", "nonce": "!", "ciphertext": "!"}},
    ):
        assert isinstance(open_value(key_set, broken, tenant="t1", column=Column.DATA), EncryptedPayload)
        with pytest.raises(PayloadDecryptionError):
            open_strict(key_set, broken, tenant="t1", column=Column.DATA)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "is empty"),
        (" , ", "is empty"),
        ("k1", "not 'key-id:base64-key'"),
        (f"bad id:{NEW}", "not 'key-id:base64-key'"),
        ("k1:not base64!", "'k1' is not base64"),
        (f"k1:{base64.b64encode(os.urandom(16)).decode()}", "'k1' is 16 bytes; AES-256-GCM needs 32"),
        (f"k1:{NEW},k1:{OLD}", "'k1' appears twice"),
        (f"k1:{NEW},", "entry 2"),
    ],
)
def test_bad_key_settings_name_the_variable_and_hide_the_keys(
    monkeypatch: pytest.MonkeyPatch, text: str, message: str
) -> None:
    """JOB_ENCRYPTION_KEYS that does not parse fails Settings.load, naming it, without echoing key material."""
    monkeypatch.setenv("JOB_ENCRYPTION_KEYS", text)
    with pytest.raises(ConfigurationError) as caught:
        Settings.load()
    assert "JOB_ENCRYPTION_KEYS" in str(caught.value) and message in str(caught.value)
    assert NEW not in str(caught.value) and OLD not in str(caught.value)


def test_settings_give_one_key_set_per_key_text() -> None:
    """Unset means no encryption; the same text gives the same KeySet (URL-safe base64 accepted)."""
    assert Settings.load().key_set() is None
    urlsafe = base64.urlsafe_b64encode(os.urandom(32)).decode()
    first = Settings.load(encryption_keys=f"a:{urlsafe}, b:{OLD}").key_set()
    second = Settings.load(encryption_keys=f"a:{urlsafe}, b:{OLD}").key_set()
    assert first is not None and first is second and first.key_ids == ("a", "b")
    assert "a:" not in repr(Settings.load(encryption_keys=f"a:{urlsafe}"))  # a secret in reprs and logs


async def test_the_codec_encrypts_payloads_and_names_the_key() -> None:
    """Encoded payloads say binary/encrypted and carry the key id; decode restores the original exactly."""
    codec = EncryptionCodec(keys(f"k2:{NEW},k1:{OLD}"))
    original = (await pydantic_data_converter.encode([{"jobId": "j1", "data": {"secret": "s3cr3t"}}]))[0]
    (encoded,) = await codec.encode([original])
    assert encoded.metadata["encoding"] == ENCODING and encoded.metadata[KEY_ID] == b"k2"
    assert b"s3cr3t" not in encoded.SerializeToString()
    assert await codec.decode([encoded]) == [original]


async def test_the_codec_passes_unencrypted_payloads_through_and_opens_old_keys() -> None:
    """Payloads from before encryption (or an unencrypted client) decode as they are; old keys still open."""
    plain = (await pydantic_data_converter.encode(["hello"]))[0]
    old_codec = EncryptionCodec(keys(f"k1:{OLD}"))
    rotated = EncryptionCodec(keys(f"k2:{NEW},k1:{OLD}"))
    (from_old,) = await old_codec.encode([plain])
    assert await rotated.decode([plain, from_old]) == [plain, plain]


async def test_the_codec_refuses_a_key_it_does_not_hold_or_an_altered_payload() -> None:
    """A worker without the key gets PayloadDecryptionError naming the key, never a garbled payload."""
    plain = (await pydantic_data_converter.encode(["hello"]))[0]
    (encoded,) = await EncryptionCodec(keys(f"k2:{NEW}")).encode([plain])
    with pytest.raises(PayloadDecryptionError, match=r"'k2'.*not in JOB_ENCRYPTION_KEYS"):
        await EncryptionCodec(keys(f"k1:{OLD}")).decode([encoded])
    altered = Payload(metadata=dict(encoded.metadata), data=encoded.data[:-1] + bytes([encoded.data[-1] ^ 1]))
    with pytest.raises(PayloadDecryptionError, match="failed authentication"):
        await EncryptionCodec(keys(f"k2:{NEW}")).decode([altered])
    relabelled = Payload(metadata={**encoded.metadata, KEY_ID: b"k1"}, data=encoded.data)
    with pytest.raises(PayloadDecryptionError):
        await EncryptionCodec(keys(f"k2:{NEW},k1:{OLD}")).decode([relabelled])


async def test_without_keys_an_encrypted_payload_is_refused_naming_its_key() -> None:
    """A process with no JOB_ENCRYPTION_KEYS decodes plain payloads and refuses encrypted ones by key id."""
    plain = (await pydantic_data_converter.encode([{"n": 1}]))[0]
    (encoded,) = await EncryptionCodec(keys(f"k1:{NEW}")).encode([plain])
    assert await plain_data_converter.decode([plain]) == [{"n": 1}]
    with pytest.raises(PayloadDecryptionError, match=r"'k1'.*JOB_ENCRYPTION_KEYS is not set"):
        await plain_data_converter.decode([encoded])
    assert await plain_data_converter.encode(["x"]) == await pydantic_data_converter.encode(["x"])
