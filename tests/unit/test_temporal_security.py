"""TLS and API-key settings for Temporal: checked at start-up, secrets kept out of messages, failures classified."""

from __future__ import annotations

from pathlib import Path

import pytest
from temporalio.service import RPCError, RPCStatusCode, TLSConfig

from algajobs import ConfigurationError, Settings
from algajobs.temporal.connection import connect
from algajobs.temporal.security import api_key, is_configuration_failure, tls_config

VARIABLES = (
    "TEMPORAL_TLS",
    "TEMPORAL_TLS_CA",
    "TEMPORAL_TLS_CERT",
    "TEMPORAL_TLS_KEY",
    "TEMPORAL_TLS_SERVER_NAME",
    "TEMPORAL_API_KEY",
)
CA = "-----BEGIN CERTIFICATE-----\nMIIBfakeCAfakeCAfakeCA\n-----END CERTIFICATE-----\n"
CERT = "-----BEGIN CERTIFICATE-----\nMIIBfakeClientfakeClient\n-----END CERTIFICATE-----\n"
KEY_BODY = "MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgTOPSECRETkeyMATERIAL"
KEY = f"-----BEGIN PRIVATE KEY-----\n{KEY_BODY}\n-----END PRIVATE KEY-----\n"


@pytest.fixture(autouse=True)
def _no_tls_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each test starts from no TEMPORAL_TLS_* / TEMPORAL_API_KEY in the environment."""
    for variable in VARIABLES:
        monkeypatch.delenv(variable, raising=False)


def load_error(**settings: object) -> ConfigurationError:
    """The ConfigurationError that loading these settings and building their TLS config raises."""
    with pytest.raises(ConfigurationError) as caught:
        tls_config(Settings.load(**settings))
    return caught.value


def test_no_settings_means_plaintext() -> None:
    """Nothing set: plaintext, no API key (a local dev server)."""
    settings = Settings.load()
    assert tls_config(settings) is False
    assert api_key(settings) is None


def test_inline_pem_is_accepted_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """CA, certificate and key as PEM text in the variables become the TLS config, byte for byte."""
    monkeypatch.setenv("TEMPORAL_TLS_CA", CA)
    monkeypatch.setenv("TEMPORAL_TLS_CERT", CERT)
    monkeypatch.setenv("TEMPORAL_TLS_KEY", KEY)
    monkeypatch.setenv("TEMPORAL_TLS_SERVER_NAME", "temporal.internal")
    config = tls_config(Settings.load())
    assert config == TLSConfig(
        server_root_ca_cert=CA.encode(),
        domain="temporal.internal",
        client_cert=CERT.encode(),
        client_private_key=KEY.encode(),
    )


def test_file_paths_are_read(tmp_path: Path) -> None:
    """A path is read; PEM after a preamble (openssl pkcs12 'Bag Attributes') is accepted inline too."""
    (tmp_path / "ca.pem").write_text(CA)
    (tmp_path / "client.pem").write_text(CERT)
    preamble = f"Bag Attributes\n    localKeyID: 01 02\n{KEY}"
    config = tls_config(
        Settings.load(
            temporal_tls_ca=str(tmp_path / "ca.pem"),
            temporal_tls_cert=str(tmp_path / "client.pem"),
            temporal_tls_key=preamble,
        )
    )
    assert isinstance(config, TLSConfig)
    assert (config.server_root_ca_cert, config.client_cert) == (CA.encode(), CERT.encode())
    assert config.client_private_key == preamble.encode()


def test_tls_flag_alone_uses_the_system_roots() -> None:
    """TEMPORAL_TLS=true: TLS with no CA of ours (the system's roots verify the server)."""
    assert tls_config(Settings.load(temporal_tls="true")) == TLSConfig()


def test_an_api_key_implies_tls(monkeypatch: pytest.MonkeyPatch) -> None:
    """TEMPORAL_API_KEY alone connects with TLS, as Temporal Cloud needs: a bearer token never goes in clear text."""
    monkeypatch.setenv("TEMPORAL_API_KEY", "ak-123")
    settings = Settings.load()
    assert api_key(settings) == "ak-123"
    assert tls_config(settings) == TLSConfig()


@pytest.mark.parametrize(
    ("given", "missing"), [("TEMPORAL_TLS_CERT", "TEMPORAL_TLS_KEY"), ("TEMPORAL_TLS_KEY", "TEMPORAL_TLS_CERT")]
)
def test_half_of_mutual_tls_names_the_missing_variable(
    monkeypatch: pytest.MonkeyPatch, given: str, missing: str
) -> None:
    """A certificate without its key (or a key without its certificate) fails at load, naming what is missing."""
    monkeypatch.setenv(given, CERT if given == "TEMPORAL_TLS_CERT" else KEY)
    with pytest.raises(ConfigurationError, match=f"{missing} is not set") as caught:
        Settings.load()
    assert KEY_BODY not in str(caught.value)


def test_an_unreadable_path_names_the_variable_and_the_path(tmp_path: Path) -> None:
    """A CA path that does not exist fails naming TEMPORAL_TLS_CA and the path."""
    missing = tmp_path / "nope" / "ca.pem"
    error = load_error(temporal_tls_ca=str(missing))
    assert str(error).startswith("TEMPORAL_TLS_CA: cannot read")
    assert str(missing) in str(error)
    assert "FileNotFoundError" in str(error)


def test_a_directory_is_not_a_certificate(tmp_path: Path) -> None:
    """A path to a directory fails naming the variable."""
    error = load_error(temporal_tls_cert=str(tmp_path), temporal_tls_key=KEY)
    assert str(error).startswith("TEMPORAL_TLS_CERT: cannot read")


@pytest.mark.parametrize(
    ("field", "variable", "content"),
    [
        ("temporal_tls_ca", "TEMPORAL_TLS_CA", "just some text\n"),
        ("temporal_tls_ca", "TEMPORAL_TLS_CA", KEY),  # PEM, but a key where a certificate belongs
        ("temporal_tls_cert", "TEMPORAL_TLS_CERT", "-----BEGIN CERTIFICATE-----\ntruncated"),
    ],
)
def test_non_pem_content_is_refused(tmp_path: Path, field: str, variable: str, content: str) -> None:
    """A file that is not a PEM certificate fails naming the variable, without echoing the content."""
    path = tmp_path / "file.pem"
    path.write_text(content)
    settings: dict[str, object] = {field: str(path)}
    if field == "temporal_tls_cert":
        settings["temporal_tls_key"] = KEY
    error = load_error(**settings)
    assert str(error).startswith(f"{variable}: not a PEM certificate")
    assert KEY_BODY not in str(error)


def test_binary_file_is_refused(tmp_path: Path) -> None:
    """A DER (binary) file where PEM is expected fails naming the variable."""
    path = tmp_path / "ca.der"
    path.write_bytes(b"\x30\x82\x01\xff\x80\x81")
    assert str(load_error(temporal_tls_ca=str(path))).startswith("TEMPORAL_TLS_CA: cannot read")


@pytest.mark.parametrize(
    "bad_key",
    [
        KEY_BODY,  # base64 pasted without its PEM lines: read as a path
        KEY_BODY * 20,  # longer than a file name may be
        f"{KEY_BODY}\n{KEY_BODY}\n",  # several lines, still no header
        f"-----BEGIN CERTIFICATE-----\n{KEY_BODY}\n-----END CERTIFICATE-----\n",  # PEM, wrong kind
    ],
)
def test_the_key_never_appears_in_errors(bad_key: str) -> None:
    """However a key is mangled, the error names TEMPORAL_TLS_KEY and does not carry the key material."""
    error = load_error(temporal_tls_cert=CERT, temporal_tls_key=bad_key)
    assert str(error).startswith("TEMPORAL_TLS_KEY: ")
    assert KEY_BODY not in str(error)
    assert KEY_BODY not in repr(error)


def test_the_key_path_is_not_echoed(tmp_path: Path) -> None:
    """A key path that cannot be read is not echoed either (it may be the key itself)."""
    error = load_error(temporal_tls_cert=CERT, temporal_tls_key=str(tmp_path / "client.key"))
    assert str(error) == "TEMPORAL_TLS_KEY: cannot read the file it names: FileNotFoundError: No such file or directory"


def test_secrets_stay_out_of_settings_repr_and_validation_errors(monkeypatch: pytest.MonkeyPatch) -> None:
    """The key and the API key are SecretStr: hidden in repr; a check across fields does not echo them."""
    settings = Settings.load(temporal_tls_cert=CERT, temporal_tls_key=KEY, temporal_api_key="ak-TOPSECRET")
    assert KEY_BODY not in repr(settings)
    assert "ak-TOPSECRET" not in repr(settings)
    monkeypatch.setenv("TEMPORAL_TLS_KEY", KEY)
    with pytest.raises(ConfigurationError) as caught:
        Settings.load()
    assert KEY_BODY not in str(caught.value)


async def test_connect_fails_before_dialling() -> None:
    """A bad certificate setting fails connect() with ConfigurationError at once, whatever the address."""
    settings = Settings.load(temporal_address="127.0.0.1:1", temporal_tls_ca="/nonexistent/ca.pem")
    with pytest.raises(ConfigurationError, match="TEMPORAL_TLS_CA"):
        await connect(settings)


# What the Temporal core (temporalio 1.35) said in tests/integration/test_secure_temporal.py's set-ups.
_REFUSED = [
    "Failed client connect: Server connection error: tonic::transport::Error(Transport, ConnectError(Custom { kind: "
    "InvalidData, error: InvalidCertificate(UnknownIssuer) }))",
    "Failed client connect: Server connection error: tonic::transport::Error(Transport, ConnectError(Custom { kind: "
    'InvalidData, error: InvalidCertificate(NotValidForNameContext { expected: DnsName("example.com"), presented: '
    '["DnsName(\\"localhost\\")", "IpAddress(127.0.0.1)"] }) }))',
    "Failed client connect: `get_system_info` call error after connection: Status { code: Unknown, message: "
    '"transport error", source: Some(tonic::transport::Error(Transport, hyper::Error(Io, Custom { kind: InvalidData, '
    'error: "received fatal alert: CertificateRequired" }))) }',
    "Failed client connect: Server connection error: tonic::transport::Error(Transport, ConnectError(Custom { kind: "
    "InvalidData, error: InvalidMessage(InvalidContentType) }))",
    'Failed client connect: Server connection error: tonic::transport::Error(Transport, General("failed to parse '
    'private key as RSA, ECDSA, or EdDSA"))',
    "Failed client connect: Server connection error: tonic::transport::Error(Transport, PrivateKeyParseError)",
    "Failed client connect: Server connection error: tonic::transport::Error(Transport, InconsistentKeys(KeyMismatch))",
    "Failed client connect: Server connection error: tonic::transport::Error(Transport, "
    "InvalidCertificate(BadEncoding))",
    "Failed client connect: `get_system_info` call error after connection: Status { code: Unknown, message: "
    '"transport error", source: Some(tonic::transport::Error(Transport, hyper::Error(Io, Custom { kind: InvalidData, '
    'error: "received fatal alert: UnknownCA" }))) }',
    "Failed client connect: `get_system_info` call error after connection: Status { code: Unauthenticated, message: "
    '"Request unauthorized.", metadata: MetadataMap { headers: {"content-type": "application/grpc"} }, source: None }',
    "Failed client connect: `get_system_info` call error after connection: Status { code: PermissionDenied, message: "
    '"Request unauthorized.", metadata: MetadataMap { headers: {"content-type": "application/grpc"} }, source: None }',
]
_OUTAGES = [
    # A TLS frontend that drops the connection once its cluster is down (no TLS words but in the rustls link).
    "Failed client connect: `get_system_info` call error after connection: Status { code: Unknown, message: "
    '"transport error", source: Some(tonic::transport::Error(Transport, hyper::Error(Io, Custom { kind: '
    'UnexpectedEof, error: "peer closed connection without sending TLS close_notify: '
    'https://docs.rs/rustls/latest/rustls/manual/_03_howto/index.html#unexpected-eof" }))) }',
    "Failed client connect: `get_system_info` call error after connection: Status { code: Unknown, message: "
    '"transport error", source: Some(tonic::transport::Error(Transport, hyper::Error(Io, Custom { kind: BrokenPipe, '
    'error: "stream closed because of a broken pipe" }))) }',
    # Also what a missing client certificate sometimes looks like under TLS 1.3: the client loses the server's
    # alert to the closed connection, and nothing in the text tells the two apart.
    "Failed client connect: `get_system_info` call error after connection: Status { code: Cancelled, message: "
    '"operation was canceled", source: Some(tonic::transport::Error(Transport, hyper::Error(Canceled, '
    '"connection closed"))) }',
    "Failed client connect: Server connection error: tonic::transport::Error(Transport, ConnectError(ConnectError("
    '"tcp connect error", 127.0.0.1:1, Os { code: 111, kind: ConnectionRefused, message: "Connection refused" })))',
]


@pytest.mark.parametrize("text", _REFUSED)
def test_refusals_for_who_we_are_are_configuration_failures(text: str) -> None:
    """Certificate, TLS-protocol, key and credential refusals are configuration failures."""
    assert is_configuration_failure(RuntimeError(text))


@pytest.mark.parametrize("text", _OUTAGES)
def test_outages_are_not_configuration_failures(text: str) -> None:
    """A refused, reset or dropped connection is an outage, also behind TLS."""
    assert not is_configuration_failure(RuntimeError(text))


@pytest.mark.parametrize(
    ("status", "expected"),
    [
        (RPCStatusCode.UNAUTHENTICATED, True),
        (RPCStatusCode.PERMISSION_DENIED, True),
        (RPCStatusCode.UNAVAILABLE, False),
        (RPCStatusCode.DEADLINE_EXCEEDED, False),
    ],
)
def test_rpc_statuses(status: RPCStatusCode, expected: bool) -> None:
    """UNAUTHENTICATED and PERMISSION_DENIED from a connected client are configuration failures; others are not."""
    assert is_configuration_failure(RPCError("Request unauthorized.", status, b"")) is expected


def test_a_timeout_is_not_a_configuration_failure() -> None:
    """No answer says nothing about who we are."""
    assert not is_configuration_failure(TimeoutError())
