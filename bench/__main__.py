"""`python -m bench`: how fast and how cheaply one run completes, and how quickly the endpoints answer.

Starts Azurite and the loopback LeadPier/LE stand-ins, runs each measured sync in a fresh process with a
warm token (one unmeasured run first logs in), and prints the figures; the plot goes to bench/out/perf_runtime.png
(to the committed docs/perf_runtime.png only with --update-docs).
Everything talks to 127.0.0.1 only. Figures are printed, never asserted.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict
from datetime import date, timedelta
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
REQUIREMENTS = Path(__file__).with_name("requirements.txt")
USERNAME, PASSWORD = "bench-user", "bench-password"
CHILD_TIMEOUT_S = 300  # one run; a hung run fails the benchmark instead of stalling it


def ensure_requirements() -> None:
    """Install bench/requirements.txt into this interpreter's environment (the venv) when a package is missing."""
    missing = [name for name in ("matplotlib", "psutil") if importlib.util.find_spec(name) is None]
    if missing:
        print(f"Installing {', '.join(missing)} from {REQUIREMENTS.relative_to(REPO)} ...", flush=True)
        subprocess.run(
            [sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check", "-r", str(REQUIREMENTS)],
            check=True,
        )


def child_env(settings: dict[str, str]) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LEADPIER_", "LE_", "SYNC_"))}
    env.update(settings)
    env["PYTHONPATH"] = str(REPO)
    return env


def measure_imports(repeat: int) -> dict[str, Any]:
    """Median cold import time of `azure.functions` alone and of `function_app`, each in fresh processes."""
    if not (REPO / "function_app.py").exists():
        return {"error": "function_app.py does not exist yet"}
    probe = (
        "import sys, time, json\n"
        "before = set(sys.modules)\n"
        "t = time.perf_counter()\n"
        "import {module}\n"
        "elapsed = time.perf_counter() - t\n"
        "loaded = sorted({{m.split('.')[0] for m in set(sys.modules) - before}})\n"
        "print(json.dumps({{'s': elapsed, 'top_level': loaded, 'count': len(set(sys.modules) - before)}}))\n"
    )
    env = child_env({})  # no settings at all: importing function_app must not need them
    figures: dict[str, Any] = {}
    for module in ("azure.functions", "function_app"):
        times, last = [], {}
        for _ in range(repeat):
            done = subprocess.run(
                [sys.executable, "-c", probe.format(module=module)],
                cwd=REPO,
                env=env,
                capture_output=True,
                text=True,
                timeout=60,
            )
            if done.returncode != 0:
                return {"error": f"importing {module} failed: {done.stderr.strip().splitlines()[-1:]}"}
            last = json.loads(done.stdout.strip().splitlines()[-1])
            times.append(last["s"])
        figures[module] = {
            "median_ms": statistics.median(times) * 1000,
            "min_ms": min(times) * 1000,
            "modules": last["count"],
            "top_level": last["top_level"],
        }
    figures["ratio"] = figures["function_app"]["median_ms"] / figures["azure.functions"]["median_ms"]
    return figures


def measure_endpoints(settings: dict[str, str], calls: int, log_mib: int) -> dict[str, Any]:
    if not (REPO / "function_app.py").exists():
        return {"error": "function_app.py does not exist yet"}
    done = subprocess.run(
        [sys.executable, "-m", "bench.endpoints_child", str(calls), str(log_mib)],
        cwd=REPO,
        env=child_env(settings),
        capture_output=True,
        text=True,
        timeout=CHILD_TIMEOUT_S,
    )
    if done.returncode != 0:
        return {"error": f"the endpoint child failed ({done.returncode}): {done.stderr[-2000:]}"}
    endpoints: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return endpoints


def imports_table(imports: dict[str, Any], repeat: int) -> str:
    lines = [f"== Cold import, median of {repeat} fresh processes (Python {sys.version.split()[0]}) =="]
    if "error" in imports:
        return "\n".join([*lines, f"not measured: {imports['error']}"])
    extra = sorted(set(imports["function_app"]["top_level"]) - set(imports["azure.functions"]["top_level"]))
    for module in ("azure.functions", "function_app"):
        fig = imports[module]
        lines.append(
            f"import {module:<16} {fig['median_ms']:7.1f} ms (min {fig['min_ms']:.1f}), {fig['modules']} modules"
        )
    lines.append(f"top-level packages function_app loads beyond azure.functions: {', '.join(extra) or 'none'}")
    lines.append(f"ratio function_app / azure.functions: {imports['ratio']:.2f} (target <= 1.3)")
    return "\n".join(lines)


def endpoints_table(endpoints: dict[str, Any], calls: int, log_mib: int) -> str:
    lines = [
        f"== HTTP functions called directly, {calls} calls each (a {log_mib} MiB log for today first; "
        f"Python {sys.version.split()[0]}) =="
    ]
    if "error" in endpoints:
        return "\n".join([*lines, f"not measured: {endpoints['error']}"])
    lines.append(
        f"{'route':<16} {'status':>6} {'p50 ms':>8} {'p95 ms':>8} {'max ms':>8} {'storage req':>11} {'whole-blob reads':>16}"
    )
    for route, fig in endpoints["routes"].items():
        lines.append(
            f"{route:<16} {fig['status']:>6} {fig['p50_ms']:8.1f} {fig['p95_ms']:8.1f} "
            f"{fig['max_ms']:8.1f} {fig['storage_requests']:>11} {fig['whole_blob_reads']:>16}"
        )
    lines.append(
        f"today's log: {endpoints['log_bytes']} bytes; ranges /logs asked for: {endpoints['logs_ranges']} "
        "(None: a listing, no content)"
    )
    return "\n".join(lines)


def write_figures(doc: Path, name: str, table: str) -> None:
    """Replace the figures between `<!-- bench:NAME -->` and `<!-- /bench:NAME -->` in the document."""
    start, end = f"<!-- bench:{name} -->", f"<!-- /bench:{name} -->"
    text = doc.read_text(encoding="utf-8")
    head, found, rest = text.partition(start)
    if not found or end not in rest:
        print(f"{doc.name} has no {start} ... {end} block; figures not written")
        return
    doc.write_text(f"{head}{start}\n```\n{table}\n```\n{end}{rest.partition(end)[2]}", encoding="utf-8")
    print(f"Figures written to {doc.relative_to(REPO)}")


def main() -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--sources",
        type=lambda s: [int(x) for x in s.split(",")],
        default=[1000, 10000, 50000],
        help="comma-separated source counts (default 1000,10000,50000)",
    )
    parser.add_argument("--repeat", type=int, default=3, help="measured runs per case, median shown (default 3)")
    parser.add_argument(
        "--several-days", type=int, default=3, help="report days of the run of several days (default 3; 0: none)"
    )
    parser.add_argument(
        "--several-sources", type=int, default=10000, help="sources a day in the run of several days (default 10000)"
    )
    parser.add_argument(
        "--no-before",
        action="store_true",
        help="measure this checkout only, not also the code before (bench/baseline.py)",
    )
    parser.add_argument("--leadpier-ms", type=float, default=80, help="latency per LeadPier call (default 80)")
    parser.add_argument("--le-ms", type=float, default=150, help="latency per LE PUT (default 150)")
    parser.add_argument(
        "--concurrency", type=int, default=None, help="LEADPIER_CONCURRENCY for the runs (default: the app's default)"
    )
    parser.add_argument("--import-repeat", type=int, default=7, help="fresh processes per import (default 7)")
    parser.add_argument("--calls", type=int, default=100, help="calls per endpoint (default 100)")
    parser.add_argument("--log-mib", type=int, default=8, help="size of the day's log for /logs (default 8 MiB)")
    parser.add_argument(
        "--plot", type=Path, default=None, help="where the plot goes (default bench/out/perf_runtime.png)"
    )
    parser.add_argument(
        "--update-docs",
        action="store_true",
        help="write the plot to the committed docs/perf_runtime.png instead, and the figures into docs/PERFORMANCE.md",
    )
    parser.add_argument("--json", type=Path, default=None, help="also write every figure to this file")
    parser.add_argument("--skip", default="", help="parts to skip: runs,imports,endpoints,dashboard,first-run")
    args = parser.parse_args()
    skip = set(filter(None, args.skip.split(",")))
    if args.plot is None:
        args.plot = REPO / ("docs" if args.update_docs else "bench/out") / "perf_runtime.png"
    elif args.update_docs:
        parser.error("--plot and --update-docs name two places for the one plot; give one")
    if args.repeat < 1 or not 1 <= args.import_repeat <= 50 or not 1 <= args.calls <= 10_000:
        parser.error("--repeat, --import-repeat and --calls must be small positive numbers")

    ensure_requirements()
    sys.path.insert(0, str(REPO))
    import psutil

    from bench import first_run
    from sandbox.azurite import Azurite
    from sandbox.data import generate_rows
    from sandbox.upstream import FakeLE, FakeLeadPier
    from sync_core.settings import Settings

    defaults = Settings.model_fields
    args.page_size = int(defaults["leadpier_page_size"].default)
    args.concurrency = args.concurrency or int(defaults["leadpier_concurrency"].default)
    print(
        f"LeadPier Sync benchmark on {os.cpu_count()} CPU(s), Python {sys.version.split()[0]}; "
        f"page size {args.page_size}, LEADPIER_CONCURRENCY {args.concurrency}",
        flush=True,
    )

    report: dict[str, Any] = {"cpus": os.cpu_count(), "page_size": args.page_size, "concurrency": args.concurrency}
    base = date(2026, 1, 31)
    days = {n: base - timedelta(days=i) for i, n in enumerate(args.sources)}
    several = [base - timedelta(days=len(args.sources) + i) for i in range(args.several_days)]
    t0 = time.perf_counter()
    print("Generating rows ...", flush=True)
    rows: dict[str | date, list[dict[str, Any]]] = {
        days[n].isoformat(): generate_rows(n, days[n], seed=n) for n in args.sources
    }
    for i, day in enumerate(several):
        rows[day.isoformat()] = generate_rows(args.several_sources, day, seed=args.several_sources + i)
    with (
        tempfile.TemporaryDirectory(prefix="leadpier-bench-") as workdir,
        Azurite(Path(workdir)) as azurite,
        FakeLeadPier(rows, username=USERNAME, password=PASSWORD) as leadpier,
        FakeLE() as le,
    ):
        del rows
        settings = {
            "AzureWebJobsStorage": azurite.connection_string,
            "LEADPIER_BASE_URL": leadpier.url,
            "LEADPIER_USERNAME": USERNAME,
            "LEADPIER_PASSWORD": PASSWORD,
            "LE_API_URL": f"{le.url}/email_dashboard/stats/le_api.php",
            "LEADPIER_CONCURRENCY": str(args.concurrency),
        }
        if "runs" not in skip:
            from contextlib import ExitStack

            from bench import baseline
            from bench.runs import RUN_HEADER, measure_runs, plot, runs_table

            with ExitStack() as stack:
                before = None
                if args.no_before:
                    print(f"\n(the code before, {baseline.BEFORE}, not measured: --no-before)")
                elif not baseline.available(baseline.BEFORE):
                    print(
                        f"\n(the code before, {baseline.BEFORE}, is not in this clone (a shallow clone?): 'after' only)"
                    )
                else:
                    before = stack.enter_context(baseline.tree(baseline.BEFORE))
                header = (
                    f"One run (fresh process each; median of {args.repeat}; peak RSS the max); before = "
                    f"{baseline.BEFORE}, after = this checkout (Python {sys.version.split()[0]}, {os.cpu_count()} CPUs, "
                    f"page size {args.page_size}, LEADPIER_CONCURRENCY {args.concurrency})"
                )
                print(f"\n== {header} ==\n{RUN_HEADER}", flush=True)
                results = measure_runs(args, settings, leadpier, le, days, several, before)
            report["runs"] = [asdict(r) for r in results]
            if args.update_docs:
                write_figures(REPO / "docs" / "PERFORMANCE.md", "runs", runs_table(results, header))
            plot(results, args.plot)
            print(f"Plot: {args.plot}")
            if azurite._process is None:
                raise RuntimeError("Azurite stopped during the runs")
            azurite_process = psutil.Process(azurite._process.pid)
            azurite_rss = (
                sum(p.memory_info().rss for p in azurite_process.children(True)) + azurite_process.memory_info().rss
            )
            print(f"Azurite RSS after the runs: {azurite_rss / 2**20:.0f} MiB (not part of the app)")
        if "imports" not in skip:
            imports = measure_imports(args.import_repeat)
            report["imports"] = imports
            table = imports_table(imports, args.import_repeat)
            print(f"\n{table}", flush=True)
            if args.update_docs and "error" not in imports:
                write_figures(REPO / "docs" / "PERFORMANCE.md", "imports", table)
        if "endpoints" not in skip:
            endpoints = measure_endpoints(settings, args.calls, args.log_mib)
            report["endpoints"] = endpoints
            table = endpoints_table(endpoints, args.calls, args.log_mib)
            print(f"\n{table}", flush=True)
            if args.update_docs and "error" not in endpoints:
                write_figures(REPO / "docs" / "PERFORMANCE.md", "endpoints", table)
        if "dashboard" not in skip:
            from bench import dashboard as dashboard_bench

            print("\n== GET /dashboard, a full week of runs: before (run records) and after (day summaries) ==")
            figures = dashboard_bench.measure(azurite.connection_string)
            report["dashboard"] = figures
            table = dashboard_bench.report(figures)
            print(table)
            if args.update_docs:
                write_figures(REPO / "docs" / "PERFORMANCE.md", "dashboard", table)
        report["first_run"] = first_run.part(skip, settings, leadpier, write_figures if args.update_docs else None)
    print(f"\nBenchmark took {time.perf_counter() - t0:.0f} s.")
    if args.json:
        args.json.write_text(json.dumps(report, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
