"""`scripts/sandbox.sh` as a newcomer runs it: the summary, --json, bad arguments, and --serve as a process."""

from __future__ import annotations

import json
import os
import queue
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest
from azure.storage.blob import BlobServiceClient

from sandbox.azurite import Azurite, free_port
from sandbox.serve import route_pattern
from sandbox.upstream import FakeLE, FakeLeadPier
from tests.functions_helpers import REPO_ROOT


def sandbox(*args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "sandbox", *args],
        cwd=REPO_ROOT,
        env=_env(),
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def _env() -> dict[str, str]:
    keep = {k: v for k, v in os.environ.items() if not k.startswith(("AzureWebJobs", "SYNC_", "LEADPIER_", "LE_"))}
    return keep | {"PYTHONUNBUFFERED": "1"}


@pytest.mark.parametrize(
    "args",
    [
        ["--sources", "-5"],
        ["--sources", "many"],
        ["--port", "70000"],
        ["--schedule", "every minute"],
        ["--json", "--serve"],
        ["--port", "7072"],
        ["--schedule", "0 */5 * * * *"],
        ["--nope"],
    ],
)
def test_bad_arguments_get_a_usage_error_not_a_traceback(args: list[str]) -> None:
    done = sandbox(*args, timeout=60)
    assert done.returncode == 2
    assert done.stderr.startswith("usage: scripts/sandbox.sh")
    assert "Traceback" not in done.stderr and done.stdout == ""


def test_the_default_is_a_short_summary_without_per_code_warnings() -> None:
    done = sandbox("--sources", "60")
    assert done.returncode == 0, done.stderr
    out = done.stdout
    assert "SUCCESS" in out and "deliberate test data" in out
    assert re.search(r"^\s+\d{4}-\d{2}-\d{2}\s+60\s+", out, re.M)  # a row per report day
    assert "sending it anyway" not in out + done.stderr  # the per-code lines go to the run log only
    assert "WARNING" not in out + done.stderr
    assert len(out.splitlines()) < 25


def test_json_gives_the_run_record_and_the_status_document() -> None:
    done = sandbox("--sources", "20", "--json")
    assert done.returncode == 0, done.stderr
    document = json.loads(done.stdout)
    assert document["run"]["status"] == "success"
    assert document["status"]["last_execution"]["run_id"] == document["run"]["run_id"]
    assert sum(document["le_received"].values()) == document["run"]["sent_records"]


def test_identity_runs_the_sync_with_the_templates_settings_and_says_so() -> None:
    done = sandbox("--identity", "--sources", "20")
    assert done.returncode == 0, done.stderr
    assert "SUCCESS" in done.stdout
    assert "identity only: HTTPS, bearer tokens of client id" in done.stdout
    assert "the template's app settings, no key" in done.stdout


def test_route_templates_match_as_the_host_matches_them() -> None:
    runs = route_pattern("runs/{run_id?}")
    assert runs.fullmatch("runs") and runs.fullmatch("runs/abc")["run_id"] == "abc"  # type: ignore[index]
    assert not runs.fullmatch("runs/a/b") and not runs.fullmatch("runsx")
    root = route_pattern("{ignored:maxlength(0)?}")
    assert root.fullmatch("") and not root.fullmatch("x")
    assert route_pattern("logs/download").fullmatch("logs/download") and not route_pattern("logs").fullmatch(
        "logs/download"
    )


# -- --serve --------------------------------------------------------------------------------------------------


@dataclass
class Served:
    process: subprocess.Popen[str]
    base: str
    key: str
    lines: list[str]

    def get(
        self, path: str, headers: dict[str, str] | None = None, method: str = "GET", body: Any = None
    ) -> tuple[int, bytes, Any]:
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(self.base + path, data=data, headers=headers or {}, method=method)
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                return response.status, response.read(), response.headers
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read(), exc.headers

    def json(self, path: str, **kwargs: Any) -> Any:
        status, body, _ = self.get(path, **kwargs)
        assert status in (200, 202), (status, body)
        return json.loads(body)


def start_served(*extra: str) -> Served:
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "sandbox", "--serve", "--port", str(port), "--sources", "30", *extra],
        cwd=REPO_ROOT,
        env=_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,  # a terminal's Ctrl-C is sent below, to this process only
        # As a background job of a non-interactive shell starts: SIGINT ignored. Ctrl-C must stop it all the same.
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_IGN),
    )
    lines: list[str] = []
    seen: queue.Queue[str] = queue.Queue()

    def read() -> None:
        assert process.stdout is not None
        for line in process.stdout:
            lines.append(line)
            seen.put(line)

    threading.Thread(target=read, daemon=True).start()
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        try:
            line = seen.get(timeout=1)
        except queue.Empty:
            if process.poll() is not None:
                break
            continue
        found = re.search(r"Dashboard\s+(http://127\.0\.0\.1:\d+)/dashboard\?code=(\S+)", line)
        if found:
            return Served(process, found[1], found[2], lines)
    process.kill()
    raise AssertionError("--serve did not print its URL:\n" + "".join(lines))


@pytest.fixture
def served() -> Iterator[Served]:
    instance = start_served()
    yield instance
    stop_served(instance)


def stop_served(instance: Served) -> None:
    if instance.process.poll() is None:
        instance.process.send_signal(signal.SIGINT)
        try:
            instance.process.wait(60)
        except subprocess.TimeoutExpired:
            os.killpg(instance.process.pid, signal.SIGKILL)


def wait_for(condition: Any, what: str, timeout: float = 60) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.5)
    raise AssertionError(f"never happened: {what}")


def test_serve_answers_every_route_with_the_key_enforced_and_stops_cleanly(served: Served) -> None:
    key = {"x-functions-key": served.key}
    assert served.get("/status")[0] == 401
    assert served.get("/dashboard")[0] == 401
    assert served.get("/dashboard?code=wrong")[0] == 401
    assert served.get("/status", headers={"x-functions-key": "wrong"})[0] == 401
    assert served.get("/no-such-route?code=" + served.key)[0] == 404
    assert served.json("/")["status"] == "running"  # anonymous
    assert served.get("/health")[0] == 200
    assert served.get("/openapi.json")[0] == 200

    first = wait_for(lambda: served.json("/runs", headers=key)["runs"], "the timer's first run")
    assert first[-1]["trigger"] == "timer"
    status, page, headers = served.get(f"/dashboard?code={served.key}")
    assert status == 200 and "default-src 'none'" in headers["Content-Security-Policy"]
    assert first[-1]["run_id"] in page.decode()

    accepted = served.json(f"/trigger?code={served.key}", method="POST")
    run_id = accepted["run_id"]
    done = wait_for(
        lambda: served.json(f"/runs/{run_id}", headers=key)["status"] in ("success", "warning"),
        "the queue worker doing the triggered run",
    )
    assert done
    assert served.json(f"/runs/{run_id}", headers=key)["trigger"] == "manual"

    queue_port = int(re.search(r"QueueEndpoint=http://127\.0\.0\.1:(\d+)", "".join(served.lines))[1])  # type: ignore[index]
    served.process.send_signal(signal.SIGINT)
    assert served.process.wait(60) == 0
    output = "".join(served.lines)
    assert "Traceback" not in output and "Stopped; nothing left running." in output
    assert "local stand-in for the Azure Functions host" in output and "func start" in output
    assert served.key not in "".join(line for line in served.lines if line[:2].isdigit())  # access lines: no key
    with pytest.raises(OSError):  # Azurite is gone with it
        socket.create_connection(("127.0.0.1", queue_port), timeout=2).close()


def test_serve_refuses_a_port_in_use_plainly() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        done = sandbox("--serve", "--port", str(taken.getsockname()[1]), timeout=60)
    assert done.returncode == 2
    assert "--port" in done.stderr and "Traceback" not in done.stderr


def test_the_sandbox_never_touches_the_storage_or_upstreams_of_the_shell_or_local_settings(
    azurite_fresh: Azurite, tmp_path: Path
) -> None:
    with FakeLeadPier(username="real-user", password="real-password") as real_leadpier, FakeLE() as real_le:
        shell = {
            **os.environ,
            "PYTHONPATH": str(REPO_ROOT),
            "SYNC_STORAGE_CONNECTION": azurite_fresh.connection_string,
            "LEADPIER_BASE_URL": real_leadpier.url,
            "LE_API_URL": f"{real_le.url}/le_api.php",
            "SYNC_STATE_CONTAINER": "production-state",
        }
        (tmp_path / "local.settings.json").write_text(
            json.dumps(
                {
                    "IsEncrypted": False,
                    "Values": {
                        "AzureWebJobsStorage": azurite_fresh.connection_string,
                        "SYNC_STORAGE_ACCOUNT_URL": "https://production.blob.core.windows.net",
                        "LEADPIER_USERNAME": "real-user",
                        "LEADPIER_PASSWORD": "real-password",
                    },
                }
            )
        )

        done = subprocess.run(
            [sys.executable, "-m", "sandbox", "--sources", "5"],
            cwd=tmp_path,
            env=shell,
            capture_output=True,
            text=True,
            timeout=180,
        )

        assert done.returncode == 0, done.stderr[-2000:]
        assert real_leadpier.requests == [] and real_le.puts == []
    with BlobServiceClient.from_connection_string(azurite_fresh.connection_string) as outside:
        assert [c.name for c in outside.list_containers()] == []


def _port_answers(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=2).close()
    except OSError:
        return False
    return True


def test_serve_prints_the_environment_it_serves_and_backfills_any_past_day(served: Served) -> None:
    key = {"x-functions-key": served.key}
    output = "".join(served.lines)
    command = output[output.index("  env ") : output.index("sync_core status") + len("sync_core status")]
    assert "SYNC_SCHEDULE=" in command
    done = subprocess.run(["bash", "-c", command], cwd=REPO_ROOT, env=_env(), capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    cli, app = json.loads(done.stdout)["scheduler"], served.json("/status", headers=key)["scheduler"]
    assert (cli["schedule"], cli["timezone"]) == (app["schedule"], app["timezone"]) == ("0 * * * * *", app["timezone"])

    today = date.fromisoformat(served.json("/status", headers=key)["scheduler"]["next_run"][:10])
    first, last = (today - timedelta(days=9)).isoformat(), (today - timedelta(days=8)).isoformat()
    run_id = served.json(f"/trigger?code={served.key}", method="POST", body={"from": first, "to": last})["run_id"]
    parent = wait_for(
        lambda: (r := served.json(f"/runs/{run_id}", headers=key))["status"] not in ("queued", "running") and r,
        "the backfill of two past days",
        timeout=120,
    )
    assert parent["status"] == "success" and parent["report_dates"] == [first, last]
    assert parent["fetched_rows"] == 60 and parent["sent_records"] > 0

    served.process.send_signal(signal.SIGTERM)
    assert served.process.wait(60) == 0
    assert "Stopped; nothing left running." in "".join(served.lines)


def test_azurite_does_not_outlive_a_killed_sandbox() -> None:
    instance = start_served()
    try:
        queue_port = int(re.search(r"QueueEndpoint=http://127\.0\.0\.1:(\d+)", "".join(instance.lines))[1])  # type: ignore[index]
        assert _port_answers(queue_port)
        folder = Path(re.search(r"State: Azurite in (\S+) ", "".join(instance.lines))[1])  # type: ignore[index]
        assert folder.is_dir()
        os.kill(instance.process.pid, signal.SIGKILL)  # no clean-up of its own: the parent-death signal does it
        instance.process.wait(30)
        wait_for(lambda: not _port_answers(queue_port), "Azurite ending with the sandbox", timeout=30)
        assert folder.is_dir()  # a killed process removes nothing itself ...
        assert sandbox("--sources", "5").returncode == 0
        assert not folder.exists()  # ... the next sandbox removes the folder its dead owner left
    finally:
        stop_served(instance)
