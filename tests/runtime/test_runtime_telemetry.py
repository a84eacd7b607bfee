"""The app's telemetry inside the host's invocation: the worker configures the Azure Monitor distro itself, the host
passes the `traceparent` of its invocation span, and Application Insights (a loopback ingestion endpoint) receives
each run as a child of that span: one operation id for the run's spans, dependencies and log lines, and no
`requests` item of the app's own (the host's invocation is the request)."""

from __future__ import annotations

import base64
import json
import logging
import os
import secrets
import socket
import subprocess
import sys
import threading
import uuid
from collections.abc import Iterator
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

pytest.importorskip("azure_functions_runtime", reason="the Functions Python runtime is installed on Python 3.13+ only")

from sandbox.identity import ManagedIdentityEndpoint, make_certificate
from sandbox.upstream import FakeLE, FakeLeadPier
from sync_core import telemetry as names
from sync_core.state.lock import RunLock
from tests.runtime.worker import REPO_ROOT, Host, WorkerStart
from tests.telemetry.conftest import QUIET_EXPORTER
from tests.telemetry.ingestion import FakeIngestion, base_data, dimensions

DAY = date(2026, 2, 13)
TODAY = datetime.now(ZoneInfo("Asia/Kolkata")).date()  # the service's default zone: the timer reports this day


class HostSpan:
    """The host's span of one invocation, as its RpcTraceContext carries it."""

    def __init__(self) -> None:
        self.trace_id = secrets.token_hex(16)
        self.span_id = secrets.token_hex(8)

    @property
    def traceparent(self) -> str:
        return f"00-{self.trace_id}-{self.span_id}-01"


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def run_worker(
    ingestion: FakeIngestion, plan: dict[str, Any], extra_env: dict[str, str] | None = None
) -> list[dict[str, Any]]:
    """The plan in a worker process of its own (tests/runtime/telemetry_child.py), telemetry to `ingestion`."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("APPLICATIONINSIGHTS_", "OTEL_", "PYTHON_APPLICATIONINSIGHTS_"))
    }
    env.update(QUIET_EXPORTER)
    env.update(
        {
            "PYTHONPATH": str(REPO_ROOT),
            "PYTHON_APPLICATIONINSIGHTS_ENABLE_TELEMETRY": "true",
            # Live metrics (on in the worker's setup) to a closed loopback port: nothing leaves 127.0.0.1.
            "APPLICATIONINSIGHTS_CONNECTION_STRING": (
                f"{ingestion.connection_string};LiveEndpoint=http://127.0.0.1:{closed_port()}/"
            ),
            # As the deployment sets them (infra/modules/function-app.bicep): every span kept.
            "OTEL_TRACES_SAMPLER": "microsoft.fixed_percentage",
            "OTEL_TRACES_SAMPLER_ARG": "1.0",
            **(extra_env or {}),
        }
    )
    done = subprocess.run(
        [sys.executable, "-m", "tests.runtime.telemetry_child", json.dumps(plan)],
        cwd=os.getcwd(),
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert done.returncode == 0, done.stderr[-4000:]
    return list(json.loads(done.stdout.strip().splitlines()[-1]))


def named(items: list[dict[str, Any]], name: str) -> list[dict[str, Any]]:
    return [i for i in items if base_data(i).get("name") == name]


def operation(item: dict[str, Any]) -> str:
    return str(item["tags"].get("ai.operation.id", ""))


def parent(item: dict[str, Any]) -> str:
    return str(item["tags"].get("ai.operation.parentId", ""))


@pytest.fixture
def ingestion() -> Iterator[FakeIngestion]:
    with FakeIngestion() as server:
        yield server


@pytest.fixture
def rows(sync_env: dict[str, str], leadpier: FakeLeadPier, monkeypatch: pytest.MonkeyPatch) -> None:
    """Five rows a day on pages of two: page 1, then two pages on the page threads."""
    for day in (DAY, TODAY - timedelta(days=1), TODAY):
        leadpier.set_rows(day, [{"source": f"mta_{day:%m%d}-lbe-e{i}", "visitors": i} for i in range(1, 6)])
    monkeypatch.setenv("LEADPIER_PAGE_SIZE", "2")


def roots(items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The items whose parent is none of the given items: what hangs directly from the host's span."""
    ids = {base_data(i)["id"] for i in items}
    return [i for i in items if parent(i) not in ids]


def assert_run_under(host: HostSpan, ingestion: FakeIngestion) -> dict[str, Any]:
    """The run span is an InProc child of the host's span, and every item of the run carries the host's trace."""
    runs = [r for r in named(ingestion.items("dependencies"), names.RUN_SPAN) if operation(r) == host.trace_id]
    assert len(runs) == 1, [(operation(r), parent(r)) for r in named(ingestion.items(), names.RUN_SPAN)]
    [run] = runs
    assert parent(run) == host.span_id
    assert base_data(run)["type"] == "InProc"
    run_id = dimensions(run)[names.RUN_ID]
    lines = [t for t in ingestion.items("traces") if dimensions(t).get(names.RUN_ID) == run_id]
    assert len(lines) >= 5 and {operation(t) for t in lines} == {host.trace_id}
    return run


def test_the_timer_run_is_a_child_of_the_host_invocation(
    rows: None, le: FakeLE, ingestion: FakeIngestion, sync_env: dict[str, str]
) -> None:
    host = HostSpan()

    [result] = run_worker(ingestion, {"steps": [{"do": "timer", "traceparent": host.traceparent}]})

    assert result["ok"], result["error"]
    run = assert_run_under(host, ingestion)
    assert dimensions(run)[names.TRIGGER] == "timer" and dimensions(run)[names.STATUS] == "success"
    deps = ingestion.items("dependencies")
    assert {operation(d) for d in deps} == {host.trace_id}  # its steps, LeadPier, LE and storage calls
    assert roots(deps) == [run]  # everything else hangs from the run span
    pages = named(deps, names.PAGE_SPAN)
    assert len(pages) % 3 == 0 and {operation(p) for p in pages} == {host.trace_id}  # page threads included
    http = {base_data(d)["name"] for d in deps if base_data(d).get("type") == "HTTP"}
    assert {"POST /v1/frontend/authenticate", "POST /v1/api/stats/user/org/sources"} <= http
    assert any(name.startswith(("PUT /devstoreaccount1/", "GET /devstoreaccount1/")) for name in http)
    assert ingestion.items("requests") == []  # the host's invocation is the request; the app sends none


def test_an_invocation_without_a_valid_traceparent_runs_as_before(
    rows: None, le: FakeLE, ingestion: FakeIngestion, sync_env: dict[str, str]
) -> None:
    [result] = run_worker(ingestion, {"steps": [{"do": "timer", "traceparent": "00-" + "z" * 300}]})

    assert result["ok"], result["error"]
    [run] = named(ingestion.items("dependencies"), names.RUN_SPAN)
    assert parent(run) == "" and dimensions(run)[names.STATUS] == "success"  # a trace of its own


def test_trigger_and_the_queued_run_each_belong_to_their_invocation(
    rows: None, le: FakeLE, ingestion: FakeIngestion, sync_env: dict[str, str]
) -> None:
    trigger, worker = HostSpan(), HostSpan()

    results = run_worker(
        ingestion,
        {
            "steps": [
                {"do": "trigger", "traceparent": trigger.traceparent, "body": {"date": DAY.isoformat()}},
                {"do": "deliver", "traceparent": worker.traceparent},
            ]
        },
    )

    assert [r["ok"] for r in results] == [True, True] and results[0]["status"] == 202
    run = assert_run_under(worker, ingestion)
    assert dimensions(run)[names.TRIGGER] == "manual" and dimensions(run)[names.STATUS] == "success"
    queued_run_id = json.loads(results[0]["queued"][0])["run_id"]
    assert dimensions(run)[names.RUN_ID] == queued_run_id
    # /trigger's own work (the queued record written to storage) hangs from the /trigger invocation.
    trigger_deps = [d for d in ingestion.items("dependencies") if operation(d) == trigger.trace_id]
    assert any(base_data(d).get("type") == "HTTP" for d in trigger_deps)
    assert {parent(d) for d in roots(trigger_deps)} == {trigger.span_id}
    worker_deps = [d for d in ingestion.items("dependencies") if operation(d) == worker.trace_id]
    assert {parent(d) for d in roots(worker_deps)} == {worker.span_id}
    assert len(worker_deps) + len(trigger_deps) == len(ingestion.items("dependencies"))
    assert ingestion.items("requests") == []


def test_a_lock_busy_redelivery_is_not_an_error(
    rows: None, le: FakeLE, ingestion: FakeIngestion, held_lock: RunLock
) -> None:
    trigger, worker = HostSpan(), HostSpan()

    results = run_worker(
        ingestion,
        {
            "lock_wait_s": 0.5,
            "steps": [
                {"do": "trigger", "traceparent": trigger.traceparent, "body": {"date": DAY.isoformat()}},
                {"do": "deliver", "traceparent": worker.traceparent},
            ],
        },
    )

    assert results[1]["ok"] is False  # raised, so the host delivers the message again
    [run] = [r for r in named(ingestion.items("dependencies"), names.RUN_SPAN) if operation(r) == worker.trace_id]
    assert parent(run) == worker.span_id
    assert base_data(run)["success"] is True
    assert dimensions(run)[names.LOCK_BUSY] == "True" and names.STATUS not in dimensions(run)
    assert not [x for x in ingestion.items("exceptions") if operation(x) == worker.trace_id and "LockBusy" in str(x)]


class InvocationIds(logging.Handler):
    """For each line, what the worker's log forwarding reads to tie it to an invocation: the invocation id of the
    context it is logged in (the runtime's contextvar), and the thread."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.seen: list[tuple[str, str | None]] = []

    def emit(self, record: logging.LogRecord) -> None:
        from azure_functions_runtime import invocation_id_cv

        self.seen.append((threading.current_thread().name, invocation_id_cv.get()))


def test_the_threads_a_run_starts_carry_the_invocation_id(
    worker: WorkerStart, threadpool: None, rows: None, le: FakeLE
) -> None:
    host = Host(worker)
    queued = host.post_trigger({"date": DAY.isoformat()}).queue_messages("queued_runs")
    lines = InvocationIds()
    upstream_log = logging.getLogger("urllib3.connectionpool")  # a line per request, on the thread that sends it
    level = upstream_log.level
    upstream_log.addHandler(lines)
    upstream_log.setLevel(logging.DEBUG)
    invocation_id = str(uuid.uuid4())
    try:
        done = host.deliver(queued[0], invocation_id=invocation_id)
    finally:
        upstream_log.removeHandler(lines)
        upstream_log.setLevel(level)

    assert done.ok, done.error
    page_threads = {iid for thread, iid in lines.seen if thread.startswith("leadpier-page")}
    assert page_threads == {invocation_id}


# -- Entra ID ingestion: what the deployment does with local authentication off -------------------------------------

CLIENT_ID = "3f2504e0-4f89-41d3-9a0c-0305e82c3301"  # the user-assigned identity's client id
MONITOR_AUDIENCE = "https://monitor.azure.com"


def token_claims(authorization: str) -> dict[str, Any]:
    payload = authorization.removeprefix("Bearer ").split(".")[1]
    return dict(json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4))))


@pytest.fixture
def certificate(tmp_path: Path) -> tuple[Path, Path]:
    return make_certificate(tmp_path / "tls")


def entra_env(identity: ManagedIdentityEndpoint, certificate: tuple[Path, Path]) -> dict[str, str]:
    """As on Functions: the App Service identity endpoint, and the authentication string the template sets."""
    return {
        **identity.environ(),
        "APPLICATIONINSIGHTS_AUTHENTICATION_STRING": f"ClientId={CLIENT_ID};Authorization=AAD",
        "REQUESTS_CA_BUNDLE": str(certificate[0]),  # the loopback ingestion endpoint's own certificate
    }


def test_with_entra_authentication_every_upload_carries_the_identitys_token(
    rows: None, le: FakeLE, certificate: tuple[Path, Path]
) -> None:
    host = HostSpan()
    with (
        ManagedIdentityEndpoint(client_ids={CLIENT_ID}) as identity,
        FakeIngestion(certificate=certificate) as ingestion,
    ):
        [result] = run_worker(
            ingestion, {"steps": [{"do": "timer", "traceparent": host.traceparent}]}, entra_env(identity, certificate)
        )

        assert result["ok"], result["error"]
        assert ingestion.url.startswith("https://") and ingestion.authorizations
        assert all(a is not None and a.startswith("Bearer ") for a in ingestion.authorizations)
        claims = [token_claims(a) for a in ingestion.authorizations if a]
        assert {(c["appid"], c["aud"].rstrip("/")) for c in claims} == {(CLIENT_ID, MONITOR_AUDIENCE)}
        assert identity.requests and {client_id for _, client_id in identity.requests} == {CLIENT_ID}
        run = assert_run_under(host, ingestion)  # and what it carried arrived
        assert dimensions(run)[names.STATUS] == "success"


def test_without_a_reachable_identity_the_run_still_succeeds(
    rows: None, le: FakeLE, certificate: tuple[Path, Path]
) -> None:
    with (
        ManagedIdentityEndpoint(client_ids={CLIENT_ID}) as identity,
        FakeIngestion(certificate=certificate) as ingestion,
    ):
        identity.refuse = True  # App Service's answer when the app has no such identity
        [result] = run_worker(
            ingestion,
            {"flush_s": 3, "steps": [{"do": "timer", "traceparent": HostSpan().traceparent}]},  # nothing can go
            entra_env(identity, certificate),
        )

        assert result["ok"], result["error"]
        assert identity.requests  # a token was asked for
        assert not [a for a in ingestion.authorizations if a and a.startswith("Bearer ")]
        assert ingestion.items() == []  # nothing was accepted without a token
    assert le.puts  # the run did its work all the same
