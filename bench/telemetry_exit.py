"""How long `python -m sync_core sync` takes to exit after its run has ended, whatever the telemetry endpoint does.

    .venv/bin/python -m bench.telemetry_exit [--repeat N]     # about a minute; prints a Markdown table and JSON

Each case is the same one-day sync in a fresh process, against a private Azurite and the loopback stand-ins, with
APPLICATIONINSIGHTS_CONNECTION_STRING pointing at: nothing (telemetry off), an endpoint that accepts, one that
answers 500, a closed port (connection refused) and one that accepts the connection and never answers. The figure
is the time from the run record's `finished_at` to the moment the process has exited (both on this machine's wall
clock), and the process's whole wall time. Figures are printed, never asserted.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from datetime import datetime
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))

from sandbox.azurite import Azurite  # noqa: E402
from sandbox.upstream import FakeLE, FakeLeadPier  # noqa: E402
from tests.telemetry.ingestion import FakeIngestion, connection_string  # noqa: E402

DAY = "2026-02-13"
PROCESS_TIMEOUT_S = 60  # a process still there after this is killed, and its figure is a lower bound
QUIET_EXPORTER = {  # nothing but the loopback endpoint may be reached
    "APPLICATIONINSIGHTS_STATSBEAT_DISABLED_ALL": "true",
    "APPLICATIONINSIGHTS_SDKSTATS_DISABLED": "true",
    "APPLICATIONINSIGHTS_CONTROLPLANE_DISABLED": "true",
}


@dataclass
class Figures:
    endpoint: str
    status: str
    exit_after_run_s: float  # median, finished_at -> process gone
    exit_after_run_max_s: float
    process_s: float  # median wall time of the whole process


def refused_endpoint() -> str:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return f"http://127.0.0.1:{port}/"


def run_once(environ: dict[str, str], cwd: str, ingestion_url: str | None) -> tuple[str, float, float]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("APPLICATIONINSIGHTS_", "OTEL_", "PYTHON_APPLICATIONINSIGHTS_"))
    }
    env.update(QUIET_EXPORTER)
    env.update(environ)
    env["PYTHONPATH"] = str(REPO_ROOT)
    if ingestion_url is not None:
        env["APPLICATIONINSIGHTS_CONNECTION_STRING"] = connection_string(ingestion_url)
    started = time.monotonic()
    try:
        done = subprocess.run(
            [sys.executable, "-m", "sync_core", "sync", "--date", DAY],
            cwd=cwd,
            env=env,
            capture_output=True,
            text=True,
            timeout=PROCESS_TIMEOUT_S,
        )
    except subprocess.TimeoutExpired as stopped:
        out = stopped.stdout.decode() if isinstance(stopped.stdout, bytes) else stopped.stdout or ""
        # Without its record on stdout (still buffered), the run is taken to have ended when it started.
        finished = datetime.fromisoformat(json.loads(out)["finished_at"]).timestamp() if out else time.time()
        waited = time.monotonic() - started
        return f"killed after {PROCESS_TIMEOUT_S} s", (time.time() - finished) if out else waited, waited
    exited = time.time()
    process_s = time.monotonic() - started
    record = json.loads(done.stdout)
    finished = datetime.fromisoformat(record["finished_at"]).timestamp()
    return str(record["status"]), exited - finished, process_s


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeat", type=int, default=3, help="runs per case (default 3)")
    args = parser.parse_args(argv)
    results: list[Figures] = []
    with (
        tempfile.TemporaryDirectory() as workdir,
        Azurite(Path(workdir)) as azurite,
        FakeLeadPier() as leadpier,
        FakeLE() as le,
        FakeIngestion() as accepting,
        FakeIngestion(answer_status=500) as failing,
        FakeIngestion(answer_status=None) as silent,
    ):
        leadpier.set_rows(DAY, [{"source": f"mta_0213-lbe-e{i}", "visitors": i} for i in range(1, 6)])
        environ = {
            "AzureWebJobsStorage": azurite.connection_string,
            "SYNC_STATE_CONTAINER": "telemetry-exit",
            "LEADPIER_BASE_URL": leadpier.url,
            "LEADPIER_USERNAME": leadpier.username,
            "LEADPIER_PASSWORD": leadpier.password,
            "LE_API_URL": f"{le.url}/email_dashboard/stats/le_api.php",
        }
        cases: list[tuple[str, str | None]] = [
            ("none (telemetry off)", None),
            ("accepts", accepting.url),
            ("answers 500", failing.url),
            ("refuses the connection", refused_endpoint()),
            ("never answers", silent.url),
        ]
        run_once(environ, workdir, None)  # logs in once: every measured run reuses the token
        for name, url in cases:
            measured = [run_once(environ, workdir, url) for _ in range(args.repeat)]
            results.append(
                Figures(
                    endpoint=name,
                    status=",".join(sorted({m[0] for m in measured})),
                    exit_after_run_s=round(statistics.median(m[1] for m in measured), 2),
                    exit_after_run_max_s=round(max(m[1] for m in measured), 2),
                    process_s=round(statistics.median(m[2] for m in measured), 2),
                )
            )
            print(f"measured: {name}", file=sys.stderr, flush=True)
    print("| ingestion endpoint | run status | exit after the run's end, median (s) | max (s) | process (s) |")
    print("|---|---|---:|---:|---:|")
    for f in results:
        print(f"| {f.endpoint} | {f.status} | {f.exit_after_run_s} | {f.exit_after_run_max_s} | {f.process_s} |")
    print()
    print(json.dumps([asdict(f) for f in results], indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
