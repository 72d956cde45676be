"""A TLS-terminating loopback proxy in front of a plaintext Temporal dev server, and the test PKI it serves.

The proxy decrypts what the client sends, forwards it unchanged to the dev
server and reads a copy of the client's HTTP/2 stream with ``h2``, so a test
can see the gRPC request headers (``authorization`` among them) that reached
the server. Every connection and task it opens is closed on exit.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import ipaddress
import ssl
import tempfile
from collections import deque
from dataclasses import dataclass
from pathlib import Path

import h2.config
import h2.connection
import h2.events
import h2.exceptions
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

_CHUNK = 65536
_MAX_REQUESTS = 1000  # header sets kept; older ones are dropped
_MAX_ERRORS = 100
_HANDSHAKE_TIMEOUT = 5.0


@dataclass(frozen=True)
class Issued:
    """A certificate and its private key, both PEM."""

    cert: bytes
    key: bytes

    @property
    def cert_text(self) -> str:
        """The certificate as text (what an environment variable holds)."""
        return self.cert.decode()

    @property
    def key_text(self) -> str:
        """The private key as text."""
        return self.key.decode()


@dataclass(frozen=True)
class Pki:
    """A test CA, the server and client certificates it signed (server: localhost, 127.0.0.1), an unrelated CA."""

    ca: Issued
    server: Issued
    client: Issued
    other_ca: Issued


def make_pki() -> Pki:
    """Generate a fresh PKI (EC P-256, valid from an hour ago for a day)."""
    ca_key, ca = _ca("algajobs test CA")
    other_key, other = _ca("unrelated test CA")
    server = _leaf(
        "localhost",
        ca_key,
        ca,
        usage=ExtendedKeyUsageOID.SERVER_AUTH,
        names=[x509.DNSName("localhost"), x509.IPAddress(ipaddress.IPv4Address("127.0.0.1"))],
    )
    client = _leaf("algajobs test client", ca_key, ca, usage=ExtendedKeyUsageOID.CLIENT_AUTH, names=[])
    return Pki(ca=_issued(ca, ca_key), server=server, client=client, other_ca=_issued(other, other_key))


def _window() -> tuple[datetime.datetime, datetime.datetime]:
    now = datetime.datetime.now(datetime.UTC)
    return now - datetime.timedelta(hours=1), now + datetime.timedelta(days=1)


def _issued(cert: x509.Certificate, key: ec.EllipticCurvePrivateKey) -> Issued:
    return Issued(
        cert=cert.public_bytes(serialization.Encoding.PEM),
        key=key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        ),
    )


def _ca(name: str) -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    start, end = _window()
    usage = x509.KeyUsage(
        digital_signature=True, content_commitment=False, key_encipherment=False, data_encipherment=False,
        key_agreement=False, key_cert_sign=True, crl_sign=True, encipher_only=False, decipher_only=False,
    )  # fmt: skip
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(end)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(usage, critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    return key, cert


def _leaf(
    name: str,
    ca_key: ec.EllipticCurvePrivateKey,
    ca: x509.Certificate,
    *,
    usage: x509.ObjectIdentifier,
    names: list[x509.GeneralName],
) -> Issued:
    key = ec.generate_private_key(ec.SECP256R1())
    start, end = _window()
    builder = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)]))
        .issuer_name(ca.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(end)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
    )
    if names:
        builder = builder.add_extension(x509.SubjectAlternativeName(names), critical=False)
    return _issued(builder.sign(ca_key, hashes.SHA256()), key)


def server_context(pki: Pki, *, require_client_cert: bool) -> ssl.SSLContext:
    """A server-side context presenting the server certificate, offering ALPN ``h2``; mTLS when asked."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.set_alpn_protocols(["h2"])
    with tempfile.TemporaryDirectory(prefix="algajobs-tls-") as folder:  # load_cert_chain reads files only
        cert, key = Path(folder) / "server.pem", Path(folder) / "server.key"
        cert.write_bytes(pki.server.cert)
        key.write_bytes(pki.server.key)
        key.chmod(0o600)
        context.load_cert_chain(cert, key)
    if require_client_cert:
        context.verify_mode = ssl.CERT_REQUIRED
        context.load_verify_locations(cadata=pki.ca.cert_text)
    return context


class HeaderSniffer:
    """Reads request headers from a copy of a client's HTTP/2 byte stream; never writes to the wire."""

    def __init__(self, sink: deque[dict[str, str]]) -> None:
        self._sink = sink
        self._h2 = h2.connection.H2Connection(
            config=h2.config.H2Configuration(client_side=False, header_encoding="utf-8")
        )
        self._h2.initiate_connection()
        self.broken: str | None = None

    def feed(self, data: bytes) -> None:
        """Decode ``data`` (the next bytes the client sent); after a decoding error, stop reading quietly."""
        if self.broken is not None:
            return
        try:
            events = self._h2.receive_data(data)
        except h2.exceptions.ProtocolError as exc:
            self.broken = f"{type(exc).__name__}: {exc}"
            return
        for event in events:
            if isinstance(event, h2.events.RequestReceived) and event.headers is not None:
                self._sink.append({_text(name): _text(value) for name, value in event.headers})
            elif isinstance(event, h2.events.DataReceived) and event.stream_id and event.flow_controlled_length:
                # Give the window back, as the real server does, so h2's flow-control view stays open.
                with contextlib.suppress(h2.exceptions.ProtocolError):
                    self._h2.acknowledge_received_data(event.flow_controlled_length, event.stream_id)
        self._h2.data_to_send()  # its answers are the real server's job: discard them


def _text(value: str | bytes) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else value


class TlsStream:
    """Server-side TLS over a plain stream, with ``ssl.MemoryBIO``.

    Unlike asyncio's own TLS transport, which drops the alert when a
    handshake fails, this sends it, as Temporal's (Go) frontend does: the
    client then sees *why* it was refused (e.g. ``CertificateRequired``).
    """

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, context: ssl.SSLContext) -> None:
        self._reader = reader
        self._writer = writer
        self._incoming = ssl.MemoryBIO()
        self._outgoing = ssl.MemoryBIO()
        self._tls = context.wrap_bio(self._incoming, self._outgoing, server_side=True)

    @property
    def alpn(self) -> str | None:
        """The negotiated ALPN protocol."""
        return self._tls.selected_alpn_protocol()

    async def handshake(self) -> None:
        """Complete the handshake; on failure send the alert, then raise the ``ssl.SSLError``."""
        while True:
            try:
                self._tls.do_handshake()
            except ssl.SSLWantReadError:
                await self._flush()
                if not await self._fill():
                    raise ConnectionError("client closed during the TLS handshake") from None
            except ssl.SSLError:
                with contextlib.suppress(ConnectionError):
                    await self._flush()  # the alert
                raise
            else:
                await self._flush()
                return

    async def read(self) -> bytes:
        """The next decrypted bytes; b"" at end of stream."""
        while True:
            try:
                data = self._tls.read(_CHUNK)
            except ssl.SSLWantReadError:
                await self._flush()
                if not await self._fill():
                    return b""
            except ssl.SSLZeroReturnError:
                return b""
            else:
                await self._flush()
                return data

    async def write(self, data: bytes) -> None:
        """Encrypt and send ``data``."""
        self._tls.write(data)
        await self._flush()

    def abort(self) -> None:
        """Drop the connection (no close_notify)."""
        self._writer.transport.abort()

    async def _fill(self) -> bool:
        raw = await self._reader.read(_CHUNK)
        if raw:
            self._incoming.write(raw)
        return bool(raw)

    async def _flush(self) -> None:
        if pending := self._outgoing.read():
            self._writer.write(pending)  # synchronous: records stay in order whichever pump flushes
            await self._writer.drain()


class TlsProxy:
    """TLS on 127.0.0.1 (a free port) in front of ``upstream`` (host:port, plaintext), recording request headers.

    ``upstream`` may be a port nothing listens on: the proxy then completes
    TLS and drops the connection, as a TLS frontend whose cluster is down does.
    """

    def __init__(self, upstream: str, pki: Pki, *, require_client_cert: bool = False) -> None:
        host, _, port = upstream.rpartition(":")
        self._upstream = (host, int(port))
        self._context = server_context(pki, require_client_cert=require_client_cert)
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._writers: set[asyncio.StreamWriter] = set()
        self.requests: deque[dict[str, str]] = deque(maxlen=_MAX_REQUESTS)
        """Request headers of every HTTP/2 request that passed TLS, oldest first (bounded)."""
        self.handshake_errors: deque[str] = deque(maxlen=_MAX_ERRORS)
        """Why TLS handshakes failed, as the server side saw it (bounded)."""
        self.alpn: deque[str | None] = deque(maxlen=_MAX_ERRORS)
        """The ALPN protocol of each connection that passed TLS."""
        self.sniff_errors: deque[str] = deque(maxlen=_MAX_ERRORS)
        """Why header capture gave up on a connection (forwarding went on)."""
        self.address = ""

    def header_values(self, name: str) -> list[str]:
        """Every value of header ``name`` (lower case) seen on requests so far."""
        return [headers[name] for headers in list(self.requests) if name in headers]

    async def __aenter__(self) -> TlsProxy:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        self.address = f"127.0.0.1:{self._server.sockets[0].getsockname()[1]}"
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._server is not None:
            self._server.close()
        for writer in list(self._writers):
            writer.transport.abort()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._server is not None:
            await asyncio.wait_for(self._server.wait_closed(), 5)

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        self._writers.add(writer)
        upstream: asyncio.StreamWriter | None = None
        tls = TlsStream(reader, writer, self._context)
        try:
            try:
                await asyncio.wait_for(tls.handshake(), _HANDSHAKE_TIMEOUT)
            except (ssl.SSLError, ConnectionError, TimeoutError) as exc:
                self.handshake_errors.append(f"{type(exc).__name__}: {exc}")
                writer.close()  # gracefully: the alert already queued still goes out
                return
            self.alpn.append(tls.alpn)
            up_reader, upstream = await asyncio.open_connection(*self._upstream)
            self._writers.add(upstream)
            sniffer = HeaderSniffer(self.requests)
            try:
                await asyncio.gather(self._to_server(tls, upstream, sniffer), self._to_client(up_reader, tls))
            finally:
                if sniffer.broken is not None:
                    self.sniff_errors.append(sniffer.broken)
        except (ConnectionError, ssl.SSLError, asyncio.CancelledError):
            pass  # the connection ends either way; the client sees it closed
        finally:
            for each in (upstream, writer):
                if each is not None:
                    self._writers.discard(each)
                    if not each.is_closing():
                        each.transport.abort()
            self._tasks.discard(task)

    @staticmethod
    async def _to_server(tls: TlsStream, upstream: asyncio.StreamWriter, sniffer: HeaderSniffer) -> None:
        try:
            while data := await tls.read():
                sniffer.feed(data)
                upstream.write(data)
                await upstream.drain()
        finally:
            upstream.transport.abort()  # one side closing ends the other

    @staticmethod
    async def _to_client(upstream: asyncio.StreamReader, tls: TlsStream) -> None:
        try:
            while data := await upstream.read(_CHUNK):
                await tls.write(data)
        finally:
            tls.abort()


class RefusingGrpcServer:
    """A plaintext gRPC endpoint on 127.0.0.1 that answers every call with one status (default UNAUTHENTICATED).

    What Temporal Cloud answers a wrong or revoked API key, without a cloud:
    put a :class:`TlsProxy` in front of it for the TLS part.
    """

    def __init__(self, status: int = 16, message: str = "Request unauthorized.") -> None:
        self._status = status
        self._message = message
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._writers: set[asyncio.StreamWriter] = set()
        self.requests: deque[dict[str, str]] = deque(maxlen=_MAX_REQUESTS)
        self.address = ""

    async def __aenter__(self) -> RefusingGrpcServer:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        self.address = f"127.0.0.1:{self._server.sockets[0].getsockname()[1]}"
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._server is not None:
            self._server.close()
        for writer in list(self._writers):
            writer.transport.abort()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._server is not None:
            await asyncio.wait_for(self._server.wait_closed(), 5)

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        self._writers.add(writer)
        conn = h2.connection.H2Connection(config=h2.config.H2Configuration(client_side=False, header_encoding="utf-8"))
        conn.initiate_connection()
        try:
            writer.write(conn.data_to_send())
            while data := await reader.read(_CHUNK):
                for event in conn.receive_data(data):
                    if isinstance(event, h2.events.RequestReceived) and event.headers is not None:
                        self.requests.append({_text(k): _text(v) for k, v in event.headers})
                        conn.send_headers(
                            event.stream_id,
                            [
                                (":status", "200"),
                                ("content-type", "application/grpc"),
                                ("grpc-status", str(self._status)),
                                ("grpc-message", self._message),
                            ],
                            end_stream=True,
                        )
                    elif isinstance(event, h2.events.DataReceived) and event.flow_controlled_length:
                        conn.acknowledge_received_data(event.flow_controlled_length, event.stream_id)
                writer.write(conn.data_to_send())
                await writer.drain()
        except (ConnectionError, h2.exceptions.ProtocolError, asyncio.CancelledError):
            pass
        finally:
            self._writers.discard(writer)
            writer.transport.abort()
            self._tasks.discard(task)
