"""What hostile upstream answers cost: peak memory, stored sizes and the day log, one run each in a fresh process.

    .venv/bin/python -m bench.hostile                       # about a minute; prints a table and JSON
    .venv/bin/python -m bench.hostile --code /other/tree    # the same answers against another checkout's sync_core

Scenarios, each one dated run (trigger `cli`) on a private Azurite against the loopback stand-ins:

- `huge_count`: LeadPier serves 1,000 rows and claims `"count": 1000000000`.
- `endless_pages`: every page is full however far the run reads, under the same claim.
- `big_text`: 20 sources of 1 MB each, half of them unreadable rows; LE echoes each code it cannot match.
- `forged_lines`: an unreadable row whose source holds a newline and a line in the log's own format; LE refuses the
  day with a message holding a newline, ESC and BEL.

`--deadline` (SYNC_RUN_DEADLINE_SECONDS, default 60) bounds a run that would otherwise go on until the deadline.
Figures are printed, never asserted.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from datetime import date
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
DAY = date(2026, 2, 13)
USERNAME, PASSWORD = "bench-user", "bench-password"
FORGED = "2026-02-13 23:59:59,999 - sync_core.pipeline - INFO - Run FORGED finished: success"
MIB = 1024 * 1024


def child(code_root: str) -> int:
    """One run in this process (settings from the environment); prints its status, error and peak RSS as JSON."""
    sys.path.insert(0, code_root)
    from sync_core.run.pipeline import RunRequest, run_sync

    started = time.perf_counter()
    record = run_sync(RunRequest(trigger="cli", dates=[DAY]))
    json.dump(
        {
            "run_id": record.run_id,
            "status": record.status,
            "error": (record.error or "")[:300],
            "wall_s": round(time.perf_counter() - started, 2),
            "peak_rss_mib": round(_status_kib("VmHWM") / 1024, 1),
            "upstream_requests": record.upstream_requests,
        },
        sys.stdout,
    )
    return 0


def _status_kib(field: str) -> int:
    with open("/proc/self/status", encoding="ascii") as status:
        for line in status:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise RuntimeError(f"{field} is not in /proc/self/status")


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.hostile", description=__doc__)
    parser.add_argument("--code", default=str(REPO), help="the checkout whose sync_core runs (default: this one)")
    parser.add_argument("--deadline", type=float, default=60.0, help="SYNC_RUN_DEADLINE_SECONDS of each run")
    parser.add_argument("--only", nargs="*", help="scenario names to run")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        return child(args.code)

    sys.path.insert(0, str(REPO))
    from azure.storage.blob import ContainerClient

    from sandbox.azurite import Azurite
    from sandbox.upstream import FakeLE, FakeLeadPier

    results: dict[str, Any] = {"code": args.code}
    with (
        tempfile.TemporaryDirectory() as workdir,
        Azurite(Path(workdir)) as azurite,
        FakeLeadPier(username=USERNAME, password=PASSWORD) as leadpier,
        FakeLE() as le,
    ):
        scenarios = {
            "huge_count": _huge_count,
            "endless_pages": _endless_pages,
            "big_text": _big_text,
            "forged_lines": _forged_lines,
        }
        for name, prepare in scenarios.items():
            if args.only and name not in args.only:
                continue
            leadpier.claimed_count, leadpier.endless_pages, le.respond = None, False, None
            leadpier.requests.clear()
            le.puts.clear()
            prepare(leadpier, le)
            container = f"bench-{name.replace('_', '-')}"
            env = {k: v for k, v in os.environ.items() if not k.startswith(("LEADPIER_", "LE_", "SYNC_"))}
            env.update(
                {
                    "AzureWebJobsStorage": azurite.connection_string,
                    "SYNC_STATE_CONTAINER": container,
                    "LEADPIER_BASE_URL": leadpier.url,
                    "LEADPIER_USERNAME": USERNAME,
                    "LEADPIER_PASSWORD": PASSWORD,
                    "LE_API_URL": f"{le.url}/le_api.php",
                    "SYNC_RUN_DEADLINE_SECONDS": f"{args.deadline:g}",
                    "HTTP_TIMEOUT_SECONDS": "10",
                    "PYTHONPATH": args.code,
                }
            )
            done = subprocess.run(
                [sys.executable, str(Path(__file__).resolve()), "--child", "--code", args.code],
                cwd=workdir,
                env=env,
                capture_output=True,
                text=True,
                timeout=args.deadline + 300,
            )
            if done.returncode != 0:
                results[name] = {"child_failed": done.stderr[-2000:]}
                continue
            figures: dict[str, Any] = json.loads(done.stdout)
            with ContainerClient.from_connection_string(azurite.connection_string, container) as blobs:
                figures.update(_stored(blobs))
                log_text = b"".join(
                    blobs.download_blob(b.name).readall() for b in blobs.list_blobs(name_starts_with="logs/")
                ).decode("utf-8", "replace")
            if name == "forged_lines":
                figures["log_lines_with_forged"] = [
                    repr(line)[:220] for line in log_text.splitlines() if "FORGED" in line or "\x1b" in line
                ]
                figures["forged_line_starts_a_line"] = any(line.startswith(FORGED) for line in log_text.splitlines())
                figures["raw_esc_or_bel_in_log"] = "\x1b" in log_text or "\x07" in log_text
            results[name] = figures
            print(f"{name}: {json.dumps(figures)}", flush=True)
    print(json.dumps(results, indent=2))
    return 0


def _stored(blobs: Any) -> dict[str, Any]:
    sizes: dict[str, int] = {}
    for blob in blobs.list_blobs():
        kind = "run_record" if blob.name.startswith("runs/") else blob.name.split("/")[0]
        sizes[kind] = sizes.get(kind, 0) + int(blob.size)
    return {
        "run_record_mib": round(sizes.get("run_record", 0) / MIB, 3),
        "job_stats_mib": round(sizes.get("job_stats.json", 0) / MIB, 3),
        "day_log_mib": round(sizes.get("logs", 0) / MIB, 3),
    }


def _rows(count: int) -> list[dict[str, Any]]:
    return [{"source": f"mta_0213-lbe-e{i}", "visitors": 10, "totalLeads": 1} for i in range(count)]


def _huge_count(leadpier: Any, le: Any) -> None:
    leadpier.set_rows(DAY, _rows(1000))
    leadpier.claimed_count = 1_000_000_000


def _endless_pages(leadpier: Any, le: Any) -> None:
    leadpier.set_rows(DAY, [])
    leadpier.claimed_count = 1_000_000_000
    leadpier.endless_pages = True


def _big_text(leadpier: Any, le: Any) -> None:
    rows: list[dict[str, Any]] = []
    for i in range(20):
        source = f"{i:02d}-" + "x" * (MIB - 3)
        rows.append({"source": source, "visitors": 10} if i % 2 else {"source": source, "visitors": "not a number"})
    leadpier.set_rows(DAY, rows)


def _forged_lines(leadpier: Any, le: Any) -> None:
    leadpier.set_rows(
        DAY,
        [
            {"source": f"mta_0213-lbe-e1\n{FORGED}", "visitors": "x"},
            {"source": "mta_0213-lbe-e2", "visitors": 5},
        ],
    )
    le.respond = {"success": False, "message": f"refused\n{FORGED}\x1b]0;owned\x07\x1b[2J"}


if __name__ == "__main__":
    sys.exit(main())
