"""The sandbox's world: Azurite and the LeadPier/LE stand-ins started together, and the settings that point the app at them."""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from sandbox.azurite import Azurite
from sandbox.data import generate_rows
from sandbox.identity import ManagedIdentityEndpoint, make_certificate
from sandbox.upstream import FakeLE, FakeLeadPier
from sync_core.settings import DEFAULT_STATE_CONTAINER, DEFAULT_TIMEZONE

USERNAME, PASSWORD = "sandbox-user", "sandbox-password"
LE_KEY = "sandbox-le-key"
CONTAINER = DEFAULT_STATE_CONTAINER
# The user-assigned identity of an identity-only world (a made-up client id, as Entra would issue one).
CLIENT_ID = "7d3c8a52-4b1e-4f0a-9c6d-2e5f8a1b3c4d"
# A loopback address nothing listens on: the app settings carry an ingestion endpoint, and none may leave the machine.
NO_INGESTION = "InstrumentationKey=00000000-0000-0000-0000-000000000000;IngestionEndpoint=https://127.0.0.1:9/"


@dataclass
class World:
    workdir: Path
    azurite: Azurite
    leadpier: FakeLeadPier
    le: FakeLE
    settings: dict[str, str]  # the app settings that point at this world, as environment variables
    identity: ManagedIdentityEndpoint | None = None  # set in an identity-only world


def local_today() -> date:
    from sync_core.state.records import utcnow

    return utcnow().astimezone(ZoneInfo(os.environ.get("SYNC_TIMEZONE") or DEFAULT_TIMEZONE)).date()


WORKDIR_PREFIX = "leadpier-sandbox-"
OWNER_FILE = "owner.pid"


@contextlib.contextmanager
def workspace() -> Iterator[Path]:
    """A fresh temporary folder for one sandbox, removed on the way out. A sandbox killed outright (SIGKILL) cannot
    remove its own: the next one removes every folder whose owner process is gone."""
    for folder in Path(tempfile.gettempdir()).glob(WORKDIR_PREFIX + "*"):
        try:
            owner = int((folder / OWNER_FILE).read_text())
            os.kill(owner, 0)
        except ProcessLookupError:
            shutil.rmtree(folder, ignore_errors=True)
        except (OSError, ValueError):  # no owner written yet (a sandbox starting now), or not ours to judge
            continue
    with tempfile.TemporaryDirectory(prefix=WORKDIR_PREFIX) as name:
        (Path(name) / OWNER_FILE).write_text(str(os.getpid()))
        yield Path(name)


@contextlib.contextmanager
def world(workdir: Path, *, sources: int, dry_run: bool = False, identity: bool = False) -> Iterator[World]:
    """Everything started, the app's settings set in os.environ (the sandbox's own stand-ins replace the shell's
    and local.settings.json's); everything stopped on the way out, whatever happens.

    With `identity`, the day one in Azure: Azurite takes only bearer tokens over HTTPS, a loopback managed-identity
    endpoint issues them, and the app gets exactly the app settings infra/ gives the function app (no key anywhere).
    """
    if identity:
        with identity_world(workdir, sources=sources, dry_run=dry_run) as here:
            yield here
        return
    with (
        Azurite(workdir) as azurite,
        FakeLeadPier(username=USERNAME, password=PASSWORD, rows_for_day=_rows_for_day(sources)) as leadpier,
        FakeLE() as le,
    ):
        settings = {
            "AzureWebJobsStorage": azurite.connection_string,
            "SYNC_STATE_CONTAINER": CONTAINER,
            "LEADPIER_BASE_URL": leadpier.url,
            "LEADPIER_USERNAME": USERNAME,
            "LEADPIER_PASSWORD": PASSWORD,
            "LE_API_URL": f"{le.url}/email_dashboard/stats/le_api.php",
            "SYNC_DRY_RUN": "true" if dry_run else "false",
        }
        _isolate(settings, workdir)
        yield World(workdir, azurite, leadpier, le, settings)


def _rows_for_day(sources: int) -> Callable[[str], list[dict[str, Any]]]:
    """LeadPier's statistics of a day as the stand-in is asked for them: every day up to today has `sources` rows, so
    a backfill of any past range shows data; a later day has none."""

    def rows(day: str) -> list[dict[str, Any]]:
        asked = date.fromisoformat(day)
        return generate_rows(sources, asked) if asked <= local_today() else []

    return rows


@contextlib.contextmanager
def identity_world(workdir: Path, *, sources: int, dry_run: bool = False) -> Iterator[World]:
    """The identity-only world (see `world`). The settings are the template's, evaluated for this machine: the
    storage endpoints are Azurite's, the client id is CLIENT_ID, the Key Vault references resolve to the stand-ins'
    credentials; only LEADPIER_BASE_URL (whose default is the real LeadPier) and the platform's own variables
    (IDENTITY_ENDPOINT, IDENTITY_HEADER, REQUESTS_CA_BUNDLE for the self-signed certificate) are added."""
    from sandbox.template import app_settings, parse_infra

    parsed = parse_infra()
    workdir.mkdir(parents=True, exist_ok=True)
    certificate = make_certificate(workdir / "tls")
    with (
        Azurite(workdir / "azurite", tls=certificate) as azurite,
        ManagedIdentityEndpoint(client_ids=[CLIENT_ID]) as endpoint,
        FakeLeadPier(username=USERNAME, password=PASSWORD, rows_for_day=_rows_for_day(sources)) as leadpier,
        FakeLE(api_key=LE_KEY) as le,
    ):
        deployment = {
            "leadpierUsername": USERNAME,
            "leApiUrl": f"{le.url}/email_dashboard/stats/le_api.php",
            "identityClientId": CLIENT_ID,
            "keyVaultUri": "https://kv-lp-rehearsal.vault.azure.net/",
            "hasLeApiKey": True,
            "storage": {
                "properties": {
                    "primaryEndpoints": {"blob": f"{azurite.blob_endpoint}/", "queue": f"{azurite.queue_endpoint}/"}
                }
            },
            "applicationInsights": {"properties": {"ConnectionString": NO_INGESTION}},
        }
        secrets = {"leadpier-password": PASSWORD, "le-api-key": LE_KEY}
        settings = app_settings(parsed, deployment, secrets)
        settings |= {
            "LEADPIER_BASE_URL": leadpier.url,
            "REQUESTS_CA_BUNDLE": str(certificate[0]),
            **endpoint.environ(),
            **({"SYNC_DRY_RUN": "true"} if dry_run else {}),
        }
        _isolate(settings, workdir)
        yield World(workdir, azurite, leadpier, le, settings, endpoint)


# Settings that say where state, LeadPier or LE are: none of the shell's may reach the sandbox's runs.
_PLACE_SETTINGS = ("AzureWebJobsStorage", "SYNC_", "LEADPIER_", "LE_", "HTTP_TIMEOUT_SECONDS")


def _isolate(settings: dict[str, str], workdir: Path) -> None:
    """Only the sandbox's own Azurite and stand-ins: every storage, LeadPier and LE setting of the shell is dropped
    (the time zone aside), and the app works in an empty folder, so no local.settings.json is read either."""
    for name in [n for n in os.environ if n.startswith(_PLACE_SETTINGS) and n != "SYNC_TIMEZONE"]:
        del os.environ[name]
    os.environ.update(settings)
    os.chdir(workdir)
