"""TLS, mutual TLS and API keys for the Temporal connection, from settings.

A certificate or key setting is a file path or the PEM text itself (handy in
an environment variable). Everything is read and checked when the runner
opens, so a half-configured or unreadable setup fails at start-up with a
``ConfigurationError`` naming the variable, not at the first job.

A TLS or authentication failure at run time is a configuration problem, not
an outage: :func:`is_configuration_failure` tells the two apart, so health
reports it loudly instead of letting the breaker route to PostgreSQL forever.
So is a namespace that refuses our search attributes (``TEMPORAL_SEARCH_ATTRIBUTES``
on, attributes not registered): :func:`unregistered_search_attribute` names the one.
"""

from __future__ import annotations

import re
from pathlib import Path

from temporalio.service import RPCError, RPCStatusCode, TLSConfig

from ..errors import ConfigurationError
from ..settings import Settings
from .ids import SEARCH_ATTRIBUTES

_PEM = "-----BEGIN "
_SECRET_VARIABLES = frozenset({"TEMPORAL_TLS_KEY"})
# What the Temporal core (rustls / tonic) says when TLS or credentials are refused. Not a bare
# "tls": "peer closed connection without sending TLS close_notify" (and any rustls docs link) is
# what a TLS frontend whose cluster went down looks like, an outage.
_REFUSAL_WORDS = (
    "certificate",  # InvalidCertificate(UnknownIssuer | NotValidForName... | Expired), alert CertificateRequired
    "unknownissuer",
    "x509",
    "handshake",
    "alert",  # "received fatal alert: ..." from the server
    "invalidcontenttype",  # TLS spoken to a plaintext port
    "private key",  # "failed to parse private key as RSA, ECDSA, or EdDSA"
    "privatekey",  # PrivateKeyParseError: e.g. an encrypted key
    "keymismatch",  # client certificate and key do not belong together
    # A refusal during Client.connect arrives as RuntimeError text, not as an RPCError with a status.
    "code: unauthenticated",
    "code: permissiondenied",
)
_AUTH_CODES = frozenset({RPCStatusCode.UNAUTHENTICATED, RPCStatusCode.PERMISSION_DENIED})
# How a namespace refuses a search attribute: SQL visibility (and the dev server), Elasticsearch
# visibility, and an attribute registered with another type than Keyword.
_SEARCH_ATTRIBUTE_REFUSALS = re.compile(
    r"no mapping defined for search attribute (\w+)"
    r"|search attribute (\w+) is not defined"
    r"|invalid value for search attribute (\w+)"
)


def tls_config(settings: Settings) -> TLSConfig | bool:
    """The ``tls`` argument of ``Client.connect`` for these settings (False: plaintext)."""
    key = settings.temporal_tls_key.get_secret_value() if settings.temporal_tls_key else None
    # An API key implies TLS, as in the Temporal SDK: a bearer token is never sent in clear text.
    wanted = settings.temporal_tls or any(
        v is not None
        for v in (
            settings.temporal_tls_ca,
            settings.temporal_tls_cert,
            key,
            settings.temporal_tls_server_name,
            settings.temporal_api_key,
        )
    )
    if not wanted:
        return False
    return TLSConfig(
        server_root_ca_cert=_pem(settings.temporal_tls_ca, "TEMPORAL_TLS_CA", "CERTIFICATE"),
        domain=settings.temporal_tls_server_name,
        client_cert=_pem(settings.temporal_tls_cert, "TEMPORAL_TLS_CERT", "CERTIFICATE"),
        client_private_key=_pem(key, "TEMPORAL_TLS_KEY", "PRIVATE KEY"),
    )


def api_key(settings: Settings) -> str | None:
    """The API key to send as a bearer token, if one is set."""
    return settings.temporal_api_key.get_secret_value() if settings.temporal_api_key else None


def is_configuration_failure(exc: BaseException) -> bool:
    """True when Temporal refused us for our setup (TLS, credentials, search attributes), not for being down."""
    if isinstance(exc, RPCError) and exc.status in _AUTH_CODES:
        return True
    if unregistered_search_attribute(exc) is not None:
        return True
    text = str(exc).lower()
    return any(word in text for word in _REFUSAL_WORDS)


def unregistered_search_attribute(exc: BaseException) -> str | None:
    """The search attribute the namespace refused (INVALID_ARGUMENT: not registered, or not a Keyword), if any."""
    if not isinstance(exc, RPCError) or exc.status is not RPCStatusCode.INVALID_ARGUMENT:
        return None
    found = _SEARCH_ATTRIBUTE_REFUSALS.search(str(exc))
    return None if found is None else next(name for name in found.groups() if name)


def search_attribute_advice(name: str, namespace: str) -> str:
    """Why a start was refused for search attribute ``name``, and the command that fixes it."""
    create = " ".join(f"--name {key.name} --type Keyword" for key in SEARCH_ATTRIBUTES)
    return (
        f"TEMPORAL_SEARCH_ATTRIBUTES is on but namespace {namespace!r} lacks the Keyword search attribute "
        f"{name!r}; register algajobs' attributes with 'temporal operator search-attribute create "
        f"--namespace {namespace} {create}' (Temporal Cloud: 'tcld namespace search-attributes add'), "
        "or set TEMPORAL_SEARCH_ATTRIBUTES=false"
    )


def _pem(value: str | None, variable: str, kind: str) -> bytes | None:
    """PEM bytes from inline text or a file; ConfigurationError naming ``variable`` when it is not PEM."""
    if value is None:
        return None
    if _PEM in value:  # inline, maybe after a preamble ("Bag Attributes" from openssl pkcs12)
        text = value
    else:
        try:
            text = Path(value).expanduser().read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            # A key's value may be the key itself, mangled (no PEM header): never echo it.
            shown = "the file it names" if variable in _SECRET_VARIABLES else repr(value)
            reason = "not UTF-8 text" if isinstance(exc, UnicodeDecodeError) else exc.strerror or "unreadable"
            raise ConfigurationError(f"{variable}: cannot read {shown}: {exc.__class__.__name__}: {reason}") from None
    if _PEM not in text or kind not in text or "-----END " not in text:
        raise ConfigurationError(f"{variable}: not a PEM {kind.lower()} (expected '{_PEM}... {kind}-----')")
    return text.encode()
