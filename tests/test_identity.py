"""The loopback identity stand-ins: a token from the managed-identity endpoint opens Azurite in its OAuth mode."""

from __future__ import annotations

import http.client
import ssl
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from azure.core.exceptions import ClientAuthenticationError
from azure.identity import CredentialUnavailableError, ManagedIdentityCredential
from azure.storage.blob import BlobServiceClient

from sandbox.azurite import Azurite
from sandbox.identity import ManagedIdentityEndpoint, make_certificate

CLIENT_ID = "0b2c4d6e-1111-4222-8333-944455556666"


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    return make_certificate(tmp_path_factory.mktemp("tls"))


@pytest.fixture(scope="module")
def azurite_oauth(tmp_path_factory: pytest.TempPathFactory, certificate: tuple[Path, Path]) -> Iterator[Azurite]:
    with Azurite(tmp_path_factory.mktemp("azurite-oauth"), tls=certificate) as instance:
        yield instance


@pytest.fixture
def identity(monkeypatch: pytest.MonkeyPatch, certificate: tuple[Path, Path]) -> Iterator[ManagedIdentityEndpoint]:
    with ManagedIdentityEndpoint(client_ids=[CLIENT_ID]) as endpoint:
        for name, value in endpoint.environ().items():
            monkeypatch.setenv(name, value)
        monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(certificate[0]))
        yield endpoint


def _create_container(azurite: Azurite, name: str) -> None:
    # No retries: a refused token is refused again, and the SDK's backoff would only make the test slow.
    credential = ManagedIdentityCredential(client_id=CLIENT_ID)
    BlobServiceClient(azurite.blob_endpoint, credential=credential, retry_total=0).create_container(name)


def test_a_minted_token_opens_azurite_over_https(azurite_oauth: Azurite, identity: ManagedIdentityEndpoint) -> None:
    _create_container(azurite_oauth, "minted")

    client = BlobServiceClient(azurite_oauth.blob_endpoint, credential=ManagedIdentityCredential(client_id=CLIENT_ID))
    assert "minted" in [c.name for c in client.list_containers()]
    assert identity.requests[0] == ("https://storage.azure.com", CLIENT_ID)


@pytest.mark.parametrize("knob", ["expired", "wrong_audience"])
def test_azurite_refuses_an_expired_token_or_one_for_another_audience(
    azurite_oauth: Azurite, identity: ManagedIdentityEndpoint, knob: str
) -> None:
    setattr(identity, knob, True)

    with pytest.raises(ClientAuthenticationError) as refused:
        _create_container(azurite_oauth, f"refused-{knob.replace('_', '-')}")
    assert "AuthenticationFailed" in str(refused.value)


def test_a_refusing_endpoint_leaves_the_credential_without_a_token(
    azurite_oauth: Azurite, identity: ManagedIdentityEndpoint
) -> None:
    identity.refuse = True

    with pytest.raises(CredentialUnavailableError, match="No managed identity found"):
        _create_container(azurite_oauth, "no-identity")


def test_an_unknown_client_id_is_refused_as_app_service_does(identity: ManagedIdentityEndpoint) -> None:
    with pytest.raises(CredentialUnavailableError):
        ManagedIdentityCredential(client_id="not-assigned").get_token("https://storage.azure.com/.default")
    assert identity.requests == [("https://storage.azure.com", "not-assigned")]


def test_the_endpoint_checks_its_secret_header(identity: ManagedIdentityEndpoint) -> None:
    request = urllib.request.Request(f"{identity.endpoint}?resource=https://storage.azure.com&api-version=2019-08-01")
    request.add_header("X-IDENTITY-HEADER", "guessed")
    with pytest.raises(urllib.request.HTTPError) as refused:
        urllib.request.urlopen(request, timeout=5)
    assert refused.value.code == 401
    assert identity.requests == []


def test_the_certificate_verifies_for_loopback_under_strict_checks(
    azurite_oauth: Azurite, certificate: tuple[Path, Path]
) -> None:
    context = ssl.create_default_context(cafile=str(certificate[0]))
    assert context.verify_flags & ssl.VERIFY_X509_STRICT or not hasattr(ssl, "VERIFY_X509_STRICT")
    connection = http.client.HTTPSConnection("127.0.0.1", azurite_oauth.blob_port, timeout=5, context=context)
    try:
        connection.request("GET", "/devstoreaccount1?comp=list")
        answer = connection.getresponse()
        answer.read()
    finally:
        connection.close()
    assert answer.getheader("Server", "").startswith("Azurite")
