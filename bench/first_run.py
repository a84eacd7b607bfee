"""`python -m bench` (its `first-run` part; alone: `python -m bench.first_run`): a new Functions worker's start and its
first timer run against the next one, through the Functions runtime, each in a fresh process.

Each process (`bench/first_run_child.py`, run by path) starts the worker as the host does (`tests.runtime.worker`:
init with the import and indexing of `function_app`, the metadata and load requests), then invokes `sync_timer`
twice through the runtime's native path against Azurite and the loopback stand-ins; each run syncs two report days
(today and the unfinalized yesterday) of ROWS_A_DAY rows each. The code before (`bench.baseline.BEFORE`) and the
working tree are measured alternately, the same child script for both, PYTHONPATH pointing at the tree measured.
Printed, never asserted.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
from collections.abc import Callable, Mapping
from contextlib import AbstractContextManager, nullcontext
from datetime import date
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
CHILD = Path(__file__).with_name("first_run_child.py")
ROWS_A_DAY = 285  # two report days: 570 source rows a run
PROCESSES = 5
TARGET_S = 0.25  # first run at most this much above a warm run
CHILD_TIMEOUT_S = 120


def _rows(day: str) -> list[dict[str, Any]]:
    from sandbox.data import generate_rows

    return generate_rows(ROWS_A_DAY, date.fromisoformat(day), seed=1)


class _Days:
    """Each process runs on a clock moved two days further than the last one's, so both of its runs sync two days."""

    def __init__(self) -> None:
        self.next = 1

    def take(self) -> int:
        self.next += 2
        return self.next - 2


def _child(settings: Mapping[str, str], code: Path, days: _Days) -> dict[str, Any]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LEADPIER_", "LE_", "SYNC_", "PYTHON"))}
    # The deployed package carries no __pycache__ (.funcignore): the app's own modules are compiled when imported.
    env.update(settings, PYTHONPATH=str(code), PYTHONDONTWRITEBYTECODE="1")
    done = subprocess.run(
        [sys.executable, str(CHILD), str(days.take())],
        cwd=code,
        env=env,
        capture_output=True,
        text=True,
        timeout=CHILD_TIMEOUT_S,
    )
    if done.returncode != 0:
        raise RuntimeError(f"the first-run child failed ({done.returncode}):\n{done.stderr[-3000:]}")
    figures: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    bad = [run for run in figures["runs"] if run["status"] != "success" or len(run["report_dates"]) != 2]
    if bad:
        raise RuntimeError(f"a measured run was not a two-day success: {bad}")
    return figures


def measure(settings: Mapping[str, str], leadpier: Any, processes: int = PROCESSES) -> dict[str, Any]:
    """Median figures of `processes` fresh workers each, for the working tree and (when this clone has it) the code
    before; `leadpier` is the running stand-in, given rows for any day while this lasts."""
    import importlib.util

    from bench import baseline

    if importlib.util.find_spec("azure_functions_runtime") is None:
        return {"error": "azure_functions_runtime is not installed (it is on Python 3.13 and later)"}
    kept, leadpier.rows_for_day = leadpier.rows_for_day, _rows
    days = _Days()
    before: AbstractContextManager[Path | None] = (
        baseline.tree(baseline.BEFORE) if baseline.available(baseline.BEFORE) else nullcontext(None)
    )
    try:
        with before as old:
            trees = {"before": old, "after": REPO} if old else {"after": REPO}
            _child(settings, REPO, days)  # unmeasured: the login, the container, the lock blob, job_stats.json
            samples: dict[str, list[dict[str, Any]]] = {name: [] for name in trees}
            for _ in range(processes):
                for name, code in trees.items():
                    samples[name].append(_child(settings, code, days))
    finally:
        leadpier.rows_for_day = kept
    figures: dict[str, Any] = {"processes": processes, "rows_a_run": 2 * ROWS_A_DAY, "commit_before": baseline.BEFORE}
    for name, runs in samples.items():
        figures[name] = {
            key: statistics.median(run[key] for run in runs)
            for key in ("worker_start_s", "first_run_s", "warm_run_s", "modules_first_run")
        }
        figures[name]["first_minus_warm_s"] = statistics.median(r["first_run_s"] - r["warm_run_s"] for r in runs)
        figures[name]["packages_first_run"] = runs[-1]["packages_first_run"]
    return figures


def report(figures: dict[str, Any]) -> str:
    """The figures as a table, before and after side by side (after only when the commit before is not here)."""
    if "error" in figures:
        return f"not measured: {figures['error']}"
    names = [n for n in ("before", "after") if n in figures]
    rows = [
        ("worker start (init, indexing, load), s", "worker_start_s", "{:.3f}", ""),
        ("first timer run, s", "first_run_s", "{:.3f}", ""),
        ("second timer run (warm), s", "warm_run_s", "{:.3f}", ""),
        ("first - warm (per process), s", "first_minus_warm_s", "{:.3f}", f"<= {TARGET_S}"),
        ("modules the first run loads", "modules_first_run", "{:.0f}", ""),
    ]
    lines = [
        f"A new worker through the Functions runtime (Python {sys.version.split()[0]}, {os.cpu_count()} CPUs, "
        f"load average {os.getloadavg()[0]:.1f}), median of {figures['processes']} fresh processes each;",
        f"each timer run: 2 report days, {figures['rows_a_run']} source rows; before = {figures['commit_before']}",
        f"{'':40}" + "".join(f" {n:>8}" for n in names) + "  target",
    ]
    for label, key, form, target in rows:
        lines.append(f"{label:40}" + "".join(f" {form.format(figures[n][key]):>8}" for n in names) + f"  {target}")
    return "\n".join(line.rstrip() for line in lines)


def part(
    skip: set[str], settings: Mapping[str, str], leadpier: Any, write: Callable[[Path, str, str], None] | None
) -> dict[str, Any]:
    """`python -m bench`'s first-run part: measured, printed, and written into docs/PERFORMANCE.md with `write`."""
    if "first-run" in skip:
        return {"skipped": True}
    print(f"\n== A new worker's start and first timer run, through the Functions runtime ({PROCESSES} processes) ==")
    figures = measure(settings, leadpier)
    table = report(figures)
    print(table, flush=True)
    if write is not None and "error" not in figures:
        write(REPO / "docs" / "PERFORMANCE.md", "first-run", table)
    return figures


def main() -> int:
    sys.path.insert(0, str(REPO))
    from sandbox.azurite import Azurite
    from sandbox.upstream import FakeLE, FakeLeadPier

    with (
        tempfile.TemporaryDirectory(prefix="leadpier-bench-") as workdir,
        Azurite(Path(workdir)) as azurite,
        FakeLeadPier(username="bench-user", password="bench-password") as leadpier,
        FakeLE() as le,
    ):
        settings = {
            "AzureWebJobsStorage": azurite.connection_string,
            "LEADPIER_BASE_URL": leadpier.url,
            "LEADPIER_USERNAME": "bench-user",
            "LEADPIER_PASSWORD": "bench-password",
            "LE_API_URL": f"{le.url}/email_dashboard/stats/le_api.php",
        }
        figures = measure(settings, leadpier)
        print(report(figures))
        if "after" in figures:
            print("packages the first run loads (after):", ", ".join(figures["after"]["packages_first_run"]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
