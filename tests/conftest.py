"""Shared fixtures: Azurite, the fake upstreams, and an environment that points the app at them."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from azure.storage.blob import ContainerClient
from hypothesis import settings

from sandbox.azurite import Azurite
from sandbox.upstream import FakeLE, FakeLeadPier
from sync_core.settings import load_storage_target
from sync_core.state.lock import RunLock
from sync_core.state.store import StateStore

# Tests talk to real servers, so example timings vary; a deadline would only make them flaky.
settings.register_profile("dev", deadline=None)
settings.register_profile("ci", deadline=None, derandomize=True, print_blob=True)
settings.load_profile("ci" if os.environ.get("CI") else "dev")

LEADPIER_USERNAME = "sandbox-user"
LEADPIER_PASSWORD = "sandbox-password"

# Settings the app reads, plus proxy variables: loopback traffic must never leave through a proxy,
# and a test that wants one sets it itself.
_APP_PREFIXES = ("AzureWebJobs", "SYNC_", "LEADPIER_", "LE_")
_APP_NAMES = {"HTTP_TIMEOUT_SECONDS"}
_PROXY_NAMES = {"http_proxy", "https_proxy", "all_proxy", "no_proxy"}


@pytest.fixture(autouse=True)
def fresh_services() -> Iterator[None]:
    """The app builds its clients once per worker process; each test starts with none, as a new worker would.
    Its runs retry upstream calls without waiting: what a retry does is tested, not how long it waits."""
    from sync_core import services
    from sync_core.run import recording

    recording.forget_unrecorded()  # what this worker remembers of runs that could not record themselves
    with services.use_timing(services.Timing(backoff_initial_s=0, backoff_max_s=0)):
        yield
    recording.forget_unrecorded()


@pytest.fixture(scope="session")
def azurite(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Azurite]:
    """One Azurite for the session (per xdist worker); tests isolate themselves by container name."""
    with Azurite(tmp_path_factory.mktemp("azurite")) as instance:
        yield instance


@pytest.fixture
def azurite_fresh(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Azurite]:
    """A private Azurite for tests that stop and restart storage."""
    with Azurite(tmp_path_factory.mktemp("azurite-fresh")) as instance:
        yield instance


@pytest.fixture
def container_name() -> str:
    return f"t-{uuid.uuid4().hex[:20]}"


@pytest.fixture
def leadpier() -> Iterator[FakeLeadPier]:
    with FakeLeadPier(username=LEADPIER_USERNAME, password=LEADPIER_PASSWORD) as server:
        yield server


@pytest.fixture
def le() -> Iterator[FakeLE]:
    with FakeLE() as server:
        yield server


@pytest.fixture
def sync_env(
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    azurite: Azurite,
    container_name: str,
    leadpier: FakeLeadPier,
    le: FakeLE,
) -> dict[str, str]:
    """The app's settings pointing at the stand-ins, nothing inherited from the shell, cwd in tmp_path
    (so no local.settings.json is picked up). Returns what it set."""
    for name in list(os.environ):
        if name.startswith(_APP_PREFIXES) or name in _APP_NAMES or name.lower() in _PROXY_NAMES:
            monkeypatch.delenv(name, raising=False)
    values = {
        "AzureWebJobsStorage": azurite.connection_string,
        "SYNC_STATE_CONTAINER": container_name,
        "LEADPIER_BASE_URL": leadpier.url,
        "LEADPIER_USERNAME": LEADPIER_USERNAME,
        "LEADPIER_PASSWORD": LEADPIER_PASSWORD,
        "LE_API_URL": f"{le.url}/email_dashboard/stats/le_api.php",
        "HTTP_TIMEOUT_SECONDS": "5",
        "SYNC_TIMEZONE": "Asia/Kolkata",
    }
    for name, value in values.items():
        monkeypatch.setenv(name, value)
    monkeypatch.chdir(tmp_path)
    return values


@pytest.fixture
def blob_container(azurite: Azurite, container_name: str) -> Iterator[ContainerClient]:
    """The test's state container, for reading blobs directly; not created here (the app creates it)."""
    with ContainerClient.from_connection_string(azurite.connection_string, container_name) as client:
        yield client


@pytest.fixture
def held_lock(sync_env: dict[str, str]) -> Iterator[RunLock]:
    """Another run holding locks/sync.lock for the length of the test."""
    lock = StateStore(load_storage_target(os.environ)).lock()
    assert lock.try_acquire()
    yield lock
    lock.release()
