"""No secret leaves the process: a full sync, failing runs, bad settings, the CLI and every HTTP function, with a
known password, LE key, LeadPier tokens and storage key, then a search of everything a person or a blob could see."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from azure.storage.blob import ContainerClient

from sandbox.azurite import ACCOUNT_KEY, Azurite
from sandbox.upstream import FakeLE, FakeLeadPier
from sync_core.state.records import LeadPierSession
from tests.faults.conftest import ATTEMPTS, DAY, blob_text, sync

PASSWORD = "pw-Zq81-secret-7f3a9c1e"
LE_KEY = "le-key-91d2b7c4e5f60718aa"
USERNAME = "ops-sandbox@example.com"
REPO_ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def leadpier() -> Iterator[FakeLeadPier]:
    with FakeLeadPier(username=USERNAME, password=PASSWORD) as server:
        yield server


@pytest.fixture
def le() -> Iterator[FakeLE]:
    with FakeLE(api_key=LE_KEY) as server:
        yield server


@pytest.fixture
def secret_env(env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    for name, value in {"LEADPIER_USERNAME": USERNAME, "LEADPIER_PASSWORD": PASSWORD, "LE_API_KEY": LE_KEY}.items():
        monkeypatch.setenv(name, value)
    return {**env, "LEADPIER_USERNAME": USERNAME, "LEADPIER_PASSWORD": PASSWORD, "LE_API_KEY": LE_KEY}


class Seen:
    """Everything the test saw leave the process, with where it came from."""

    def __init__(self) -> None:
        self.items: list[tuple[str, str]] = []

    def add(self, where: str, text: Any) -> None:
        if isinstance(text, bytes):
            text = text.decode("utf-8", "replace")
        self.items.append((where, text if isinstance(text, str) else repr(text)))

    def leaks(self, secrets: dict[str, str]) -> list[str]:
        return [f"{name} in {where}" for where, text in self.items for name, value in secrets.items() if value in text]


def _debug_everywhere(caplog: pytest.LogCaptureFixture) -> None:
    """DEBUG for the root and every logger already made (the app quiets `azure`; here it speaks too)."""
    caplog.set_level(logging.DEBUG)
    for name in list(logging.root.manager.loggerDict):
        caplog.set_level(logging.DEBUG, logger=name)


def _cli(seen: Seen, *args: str, extra_env: dict[str, str] | None = None) -> int:
    done = subprocess.run(
        [sys.executable, "-m", "sync_core", *args],
        env={**os.environ, **(extra_env or {}), "PYTHONPATH": str(REPO_ROOT)},
        capture_output=True,
        text=True,
        timeout=120,
    )
    seen.add(f"`python -m sync_core {' '.join(args)}` stdout", done.stdout)
    seen.add(f"`python -m sync_core {' '.join(args)}` stderr", done.stderr)
    assert "Traceback" not in done.stderr, done.stderr[-3000:]
    return done.returncode


def _runs(seen: Seen, label: str) -> None:
    record = sync()
    seen.add(f"run record ({label})", record.model_dump_json())
    seen.add(f"run error ({label})", str(record.error))


def test_no_secret_leaves_the_process(
    secret_env: dict[str, str],
    monkeypatch: pytest.MonkeyPatch,
    azurite: Azurite,
    leadpier: FakeLeadPier,
    le: FakeLE,
    blob_container: ContainerClient,
    caplog: pytest.LogCaptureFixture,
) -> None:
    _debug_everywhere(caplog)
    seen = Seen()

    # A full run, then runs that fail in the ways that carry secrets nearby.
    first = sync()
    assert first.status == "success", first.error
    assert le.puts[-1]["headers"]["x-api-key"] == LE_KEY  # the key was really in play
    seen.add("run record (success)", first.model_dump_json())
    leadpier.revoke_tokens()
    _runs(seen, "token revoked")
    leadpier.faults.add("login", status=200, body={"errorCode": "INVALID_CREDENTIALS", "data": None})
    leadpier.revoke_tokens()
    _runs(seen, "login refused")
    le.faults.add("put", status=500, headers={"Retry-After": "0"}, times=ATTEMPTS)
    _runs(seen, "LE 500")
    le.faults.add("put", status=200, body={"success": False, "message": "rejected"})
    _runs(seen, "LE success false")
    with monkeypatch.context() as patched:
        patched.setenv("LE_API_KEY", LE_KEY + "-wrong")
        _runs(seen, "LE key refused")
    with monkeypatch.context() as patched:
        patched.setenv("HTTP_TIMEOUT_SECONDS", "soon")
        _runs(seen, "bad setting")
    with monkeypatch.context() as patched:
        patched.setenv("LEADPIER_PASSWORD", "")
        _runs(seen, "missing password")
    with monkeypatch.context() as patched:
        # Storage that cannot be reached, with the key in its connection string.
        patched.setenv("SYNC_STORAGE_CONNECTION", azurite.connection_string.replace(str(azurite.blob_port), "1"))
        _runs(seen, "storage unreachable")
    with monkeypatch.context() as patched:
        patched.setenv("SYNC_STORAGE_CONNECTION", f"AccountKey={ACCOUNT_KEY};this is not a connection string")
        _runs(seen, "storage connection string malformed")

    session = LeadPierSession.model_validate_json(blob_text(blob_container, "source.json"))
    assert session.token in leadpier.issued_tokens and len(leadpier.issued_tokens) >= 2

    # The command line.
    assert _cli(seen, "sync", "--date", DAY.isoformat()) == 0
    assert _cli(seen, "status") == 0
    assert _cli(seen, "logs", "--lines", "1000", "--date", DAY.isoformat()) == 0
    _cli(seen, "sync", extra_env={"SYNC_STORAGE_CONNECTION": f"AccountKey={ACCOUNT_KEY};broken"})
    _cli(seen, "status", extra_env={"SYNC_STORAGE_CONNECTION": f"AccountKey={ACCOUNT_KEY};broken"})

    # Every HTTP function, when the app exists.
    _http_functions(seen, monkeypatch, azurite)

    # Every blob but source.json (read last, so the HTTP-triggered runs are in).
    for blob in blob_container.list_blobs():
        if blob.name != "source.json":
            seen.add(f"blob {blob.name}", blob_text(blob_container, blob.name))
    # Every log record: message, arguments rendered, tracebacks and the extra fields a handler could ship.
    for record in caplog.records:
        seen.add(f"log record {record.name}", record.getMessage())
        seen.add(f"log record {record.name} (formatted)", logging.Formatter().format(record))
        seen.add(f"log record {record.name} (fields)", {k: v for k, v in vars(record).items() if k != "args"})

    secrets = {
        "LEADPIER_PASSWORD": PASSWORD,
        "LE_API_KEY": LE_KEY,
        "storage account key": ACCOUNT_KEY,
        "storage connection string": azurite.connection_string,
    }
    for i, token in enumerate(leadpier.issued_tokens):
        secrets[f"LeadPier token #{i + 1}"] = token
        secrets[f"LeadPier token #{i + 1} signature"] = token.rsplit(".", 1)[-1]
    assert len(seen.items) > 50 and len(caplog.records) > 50
    assert seen.leaks(secrets) == []


def _http_functions(seen: Seen, monkeypatch: pytest.MonkeyPatch, azurite: Azurite) -> None:
    if not (REPO_ROOT / "function_app.py").exists():
        return
    from tests.functions_helpers import App

    app = App()

    def record(label: str, response: Any) -> Any:
        seen.add(f"HTTP {label} ({response.status_code})", response.get_body())
        seen.add(f"HTTP {label} headers", dict(response.headers))
        assert response.status_code != 500, (label, response.get_body()[:300])
        return response

    accepted, queued = app.post_trigger()
    record("POST /trigger", accepted)
    seen.add("queue message", queued.get())
    assert accepted.status_code == 202
    app.work(queued.get()[0])
    run_id = json.loads(accepted.get_body())["run_id"]
    for name, path, params, route in (
        ("service_info", "/", {}, {}),
        ("health", "/health", {}, {}),
        ("status", "/status", {}, {}),
        ("runs", "/runs", {"limit": "100"}, {}),
        ("runs", f"/runs/{run_id}", {}, {"run_id": run_id}),
        ("runs", "/runs/nope", {}, {"run_id": "nope"}),
        ("logs", "/logs", {"lines": "1000", "date": DAY.isoformat()}, {}),
        ("logs", "/logs", {"lines": "1000"}, {}),
        ("logs", "/logs", {"lines": "abc"}, {}),
        ("logs_download", "/logs/download", {"date": DAY.isoformat()}, {}),
        ("logs_download", "/logs/download", {}, {}),
        ("openapi", "/openapi.json", {}, {}),
        ("docs", "/docs", {}, {}),
    ):
        record(f"GET {path}?{params}", app.get(name, path, params=params, route_params=route))
    record("POST /trigger (bad body)", app.post_trigger(b"{not json")[0])
    record("POST /trigger (a day)", app.post_trigger({"date": DAY.isoformat()})[0])
    # Broken storage settings carrying the key: /health, /status and /trigger say what is wrong, not the key.
    with monkeypatch.context() as patched:
        patched.setenv("SYNC_STORAGE_CONNECTION", f"AccountKey={ACCOUNT_KEY};not a connection string")
        for name, path in (("health", "/health"), ("status", "/status"), ("runs", "/runs"), ("logs", "/logs")):
            record(f"GET {path} (broken storage setting)", app.get(name, path))
        record("POST /trigger (broken storage setting)", app.post_trigger()[0])
    with monkeypatch.context() as patched:
        patched.setenv("SYNC_STORAGE_CONNECTION", azurite.connection_string.replace(str(azurite.blob_port), "1"))
        record("GET /health (storage unreachable)", app.get("health", "/health"))
        record("GET /status (storage unreachable)", app.get("status", "/status"))
    with monkeypatch.context() as patched:
        patched.setenv("HTTP_TIMEOUT_SECONDS", "soon")
        record("GET /health (bad setting)", app.get("health", "/health"))
