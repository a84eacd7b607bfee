"""The sandbox's world: Azurite and the LeadPier/LE stand-ins started together, and the settings that point the app at them."""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from sandbox.azurite import Azurite
from sandbox.data import generate_rows
from sandbox.upstream import FakeLE, FakeLeadPier
from sync_core.settings import DEFAULT_STATE_CONTAINER, DEFAULT_TIMEZONE

USERNAME, PASSWORD = "sandbox-user", "sandbox-password"
CONTAINER = DEFAULT_STATE_CONTAINER


@dataclass
class World:
    workdir: Path
    azurite: Azurite
    leadpier: FakeLeadPier
    le: FakeLE
    settings: dict[str, str]  # the app settings that point at this world, as environment variables

    @property
    def le_records(self) -> int:
        return sum(len(records) for records in self.le.received_days().values())


def local_today() -> date:
    from sync_core.records import utcnow

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
def world(workdir: Path, *, sources: int, dry_run: bool = False) -> Iterator[World]:
    """Everything started, the app's settings set in os.environ (the sandbox's own stand-ins replace the shell's
    and local.settings.json's); everything stopped on the way out, whatever happens."""

    def rows_for_day(day: str) -> list[dict[str, Any]]:
        # Every day up to today has statistics, so a backfill of any past range shows data; tomorrow has none.
        asked = date.fromisoformat(day)
        return generate_rows(sources, asked) if asked <= local_today() else []

    with (
        Azurite(workdir) as azurite,
        FakeLeadPier(username=USERNAME, password=PASSWORD, rows_for_day=rows_for_day) as leadpier,
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


# Settings that say where state, LeadPier or LE are: none of the shell's may reach the sandbox's runs.
_PLACE_SETTINGS = ("AzureWebJobsStorage", "SYNC_", "LEADPIER_", "LE_", "HTTP_TIMEOUT_SECONDS")


def _isolate(settings: dict[str, str], workdir: Path) -> None:
    """Only the sandbox's own Azurite and stand-ins: every storage, LeadPier and LE setting of the shell is dropped
    (the time zone aside), and the app works in an empty folder, so no local.settings.json is read either."""
    for name in [n for n in os.environ if n.startswith(_PLACE_SETTINGS) and n != "SYNC_TIMEZONE"]:
        del os.environ[name]
    os.environ.update(settings)
    os.chdir(workdir)
