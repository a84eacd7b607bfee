"""Loopback stand-ins for Azure's identity plumbing: a self-signed TLS certificate and a managed-identity endpoint."""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import ipaddress
import json
import secrets
import threading
import time
import uuid
from collections.abc import Collection, Sequence
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import TracebackType
from typing import Any, Self
from urllib.parse import parse_qs, urlsplit

HOST = "127.0.0.1"
TOKEN_PATH = "/msi/token"
# The issuer prefix Azurite's `--oauth basic` accepts for the public cloud (it checks the prefix, not the tenant).
ISSUER_PREFIX = "https://sts.windows.net/"
DEFAULT_TENANT_ID = "72f988bf-0000-4000-8000-000000000001"
# The principal a token is minted for when the caller names no client id (a system-assigned identity).
SYSTEM_ASSIGNED_ID = "5a5a5a5a-0000-4000-8000-000000000002"
WRONG_AUDIENCE = "https://management.azure.com/"


def make_certificate(folder: Path, hosts: Sequence[str] = ("127.0.0.1", "localhost")) -> tuple[Path, Path]:
    """A self-signed certificate and its key (PEM files in `folder`) for `hosts`.

    It is its own CA, so one file serves as Azurite's `--cert` and as `REQUESTS_CA_BUNDLE`; Python 3.13's strict
    verification wants the CA flag, key usages and key identifiers that a bare self-signed leaf lacks.
    """
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, hosts[0] if hosts else "localhost")])
    alt_names: list[x509.GeneralName] = []
    for host in hosts:
        try:
            alt_names.append(x509.IPAddress(ipaddress.ip_address(host)))
        except ValueError:
            alt_names.append(x509.DNSName(host))
    now = dt.datetime.now(dt.UTC)
    public_key = key.public_key()
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=7))
        .add_extension(x509.SubjectAlternativeName(alt_names), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(public_key), critical=False)
        .sign(key, hashes.SHA256())
    )
    cert_path = folder / "loopback-cert.pem"
    key_path = folder / "loopback-key.pem"
    cert_path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    key_path.chmod(0o600)
    return cert_path, key_path


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


class ManagedIdentityEndpoint:
    """The App Service managed-identity protocol (`IDENTITY_ENDPOINT` + `IDENTITY_HEADER`) on 127.0.0.1.

    azure-identity's `ManagedIdentityCredential` asks it `GET <endpoint>?api-version=2019-08-01&resource=...
    [&client_id=...]` with the secret in `X-IDENTITY-HEADER`. It answers with a JWT whose issuer, audience and
    lifetime Azurite's `--oauth basic` checks (Azurite does not check the signature; the token is signed with a
    throwaway key all the same). Knobs, settable at any time: `wrong_audience`, `expired`, `refuse`.
    """

    def __init__(
        self,
        *,
        tenant_id: str = DEFAULT_TENANT_ID,
        client_ids: Collection[str] | None = None,
        lifetime_s: int = 3600,
    ) -> None:
        self.tenant_id = tenant_id
        # When given, only these user-assigned identities exist; asking for another is refused as App Service does.
        self.client_ids = None if client_ids is None else frozenset(client_ids)
        self.lifetime_s = lifetime_s
        self.header = secrets.token_urlsafe(24)
        self.requests: list[tuple[str, str | None]] = []
        self.wrong_audience = False
        self.expired = False
        self.refuse = False
        self._signing_key = secrets.token_bytes(32)
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._port = 0

    @property
    def endpoint(self) -> str:
        return f"http://{HOST}:{self._port}{TOKEN_PATH}"

    def environ(self) -> dict[str, str]:
        """The environment variables azure-identity reads to use this endpoint."""
        return {"IDENTITY_ENDPOINT": self.endpoint, "IDENTITY_HEADER": self.header}

    def mint(self, resource: str, client_id: str | None) -> tuple[str, int]:
        """A token for `resource` as the knobs say, and the expiry (epoch seconds) announced to the caller."""
        now = int(time.time())
        principal = client_id or SYSTEM_ASSIGNED_ID
        if self.expired:
            # Announced as valid, so the caller sends it and the service is the one to refuse it.
            not_before, expires = now - 2 * self.lifetime_s, now - self.lifetime_s
        else:
            not_before, expires = now - 60, now + self.lifetime_s
        claims: dict[str, Any] = {
            "aud": WRONG_AUDIENCE if self.wrong_audience else resource,
            "iss": f"{ISSUER_PREFIX}{self.tenant_id}/",
            "iat": not_before,
            "nbf": not_before,
            "exp": expires,
            "appid": principal,
            "oid": principal,
            "sub": principal,
            "tid": self.tenant_id,
            "idtyp": "app",
            "uti": uuid.uuid4().hex,
            "ver": "1.0",
        }
        header = _b64url(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
        payload = _b64url(json.dumps(claims, separators=(",", ":")).encode())
        signature = hmac.new(self._signing_key, f"{header}.{payload}".encode(), hashlib.sha256).digest()
        return f"{header}.{payload}.{_b64url(signature)}", now + self.lifetime_s

    def start(self) -> Self:
        if self._server is not None:
            return self
        server = ThreadingHTTPServer((HOST, 0), _handler_for(self))
        server.daemon_threads = True
        self._server = server
        self._port = int(server.server_address[1])
        self._thread = threading.Thread(target=server.serve_forever, name="managed-identity-endpoint", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        server, thread = self._server, self._thread
        self._server = self._thread = None
        if server is not None:
            server.shutdown()
            server.server_close()
        if thread is not None:
            thread.join(timeout=5)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


def _handler_for(endpoint: ManagedIdentityEndpoint) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:
            pass  # the tests read `requests`, not a log

        def _answer(self, status: int, body: dict[str, Any]) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self) -> None:
            url = urlsplit(self.path)
            if url.path != TOKEN_PATH:
                self._answer(404, {"statusCode": 404, "message": "Not found"})
                return
            if not hmac.compare_digest(self.headers.get("X-IDENTITY-HEADER", ""), endpoint.header):
                self._answer(401, {"statusCode": 401, "message": "The X-IDENTITY-HEADER is missing or wrong"})
                return
            query = {name: values[0] for name, values in parse_qs(url.query).items()}
            resource = query.get("resource") or query.get("scope") or ""
            client_id = query.get("client_id") or None
            endpoint.requests.append((resource, client_id))
            unknown = client_id is not None and endpoint.client_ids is not None and client_id not in endpoint.client_ids
            if endpoint.refuse or not resource or unknown:
                # App Service's own answer when the app has no such identity.
                self._answer(400, {"statusCode": 400, "message": "No managed identity found for the request."})
                return
            token, expires_on = endpoint.mint(resource, client_id)
            self._answer(
                200,
                {
                    "access_token": token,
                    "expires_on": str(expires_on),
                    "resource": resource,
                    "token_type": "Bearer",
                    "client_id": client_id or SYSTEM_ASSIGNED_ID,
                },
            )

    return Handler
