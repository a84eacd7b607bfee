"""Runs of the CLI in a child process with telemetry pointed at a loopback ingestion endpoint.

OpenTelemetry's providers are global to a process, so each run with telemetry is a process of its own
(as an operator's `python -m sync_core sync` is); the test process only serves the endpoint and reads it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.telemetry.ingestion import FakeIngestion, connection_string

REPO = Path(__file__).resolve().parents[2]

# The exporter's own reporting to Microsoft (statsbeat, SDK stats, remote configuration) stays off in tests:
# nothing but the loopback endpoint may be reached.
QUIET_EXPORTER = {
    "APPLICATIONINSIGHTS_STATSBEAT_DISABLED_ALL": "true",
    "APPLICATIONINSIGHTS_SDKSTATS_DISABLED": "true",
    "APPLICATIONINSIGHTS_CONTROLPLANE_DISABLED": "true",
}


@dataclass
class CliRun:
    exit_code: int
    record: dict[str, Any]
    stderr: str
    seconds: float  # wall time of the whole process, for the report only (tests never assert on it)


def run_cli(*argv: str, ingestion_url: str | None, extra_env: dict[str, str] | None = None) -> CliRun:
    """`python -m sync_core <argv>` in the test's cwd and environment (sync_env), telemetry to `ingestion_url`."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("APPLICATIONINSIGHTS_", "OTEL_", "PYTHON_APPLICATIONINSIGHTS_"))
    }
    env.update(QUIET_EXPORTER)
    env["PYTHONPATH"] = str(REPO)
    if ingestion_url is not None:
        env["APPLICATIONINSIGHTS_CONNECTION_STRING"] = connection_string(ingestion_url)
    env.update(extra_env or {})
    started = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-m", "sync_core", *argv], cwd=Path.cwd(), env=env, capture_output=True, text=True, timeout=120
    )
    seconds = time.monotonic() - started
    try:
        record = json.loads(done.stdout)
    except ValueError:
        raise AssertionError(f"no run record printed (exit {done.returncode}):\n{done.stderr[-4000:]}") from None
    return CliRun(done.returncode, record, done.stderr, seconds)


@pytest.fixture
def ingestion() -> Iterator[FakeIngestion]:
    with FakeIngestion() as server:
        yield server
