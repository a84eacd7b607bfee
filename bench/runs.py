"""The runs part of `python -m bench`: each measured sync in a fresh process, on the code before and on this
checkout side by side, with the window the network forces a floor on.

The window of a run is from its first LeadPier statistics request to the end of its last LE PUT, as the stand-ins
(in the benchmark's own process, one clock) saw them: `time` when a request arrived, `answered` when its answer was
sent. The floor is what the network alone forces (`floor_seconds`).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import subprocess
import sys
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
CHILD_TIMEOUT_S = 300  # one run; a hung run fails the benchmark instead of stalling it


@dataclass
class RunFigures:
    code: str  # "before" (baseline.BEFORE's tree) or "after" (this checkout)
    latency: str
    days: int
    sources: int  # per day
    pages: int  # per day
    window_s: float | None  # first LeadPier statistics request to the end of the last LE PUT
    floor_s: float | None
    wall_s: float
    wall_min_s: float
    cold_wall_s: float
    cpu_s: float
    peak_rss_mib: float
    rss_after_imports_mib: float
    storage_requests: int
    upstream_requests: int
    sent_records: int
    status: str


def floor_seconds(sources: int, days: int, page_size: int, concurrency: int, leadpier_s: float, le_s: float) -> float:
    """What the network alone forces. One day: page 1, then the other pages in rounds of `concurrency`, then one
    PUT. Several days: each day's fetch starts when the day before it is fetched (its PUT on the wire meanwhile),
    and a day's PUT starts once its fetch and the PUT before it are done; with the PUT shorter than a fetch, that
    is the fetch rounds of all days plus the last PUT."""
    pages = max(1, math.ceil(sources / page_size))
    fetch = (1 + math.ceil((pages - 1) / concurrency)) * leadpier_s
    fetched = put_done = 0.0
    for _ in range(days):
        fetched += fetch
        put_done = max(fetched, put_done) + le_s
    return put_done


def _env(settings: dict[str, str], code: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LEADPIER_", "LE_", "SYNC_"))}
    env.update(settings)
    env["PYTHONPATH"] = str(code)
    return env


def run_child(settings: dict[str, str], days: list[date], code: Path = REPO) -> dict[str, Any]:
    """One measured run of `code`'s sync_core, by this checkout's child (run by path: only the app's code differs)."""
    done = subprocess.run(
        [sys.executable, str(REPO / "bench" / "sync_child.py"), *(day.isoformat() for day in days)],
        cwd=code,
        env=_env(settings, code),
        capture_output=True,
        text=True,
        timeout=CHILD_TIMEOUT_S,
    )
    if done.returncode != 0:
        raise RuntimeError(f"the sync child failed ({done.returncode}):\n{done.stderr[-3000:]}")
    figures: dict[str, Any] = json.loads(done.stdout)
    if figures["status"] != "success":
        raise RuntimeError(f"the measured run ended {figures['status']}: {figures['error']}")
    return figures


def window_seconds(leadpier: Any, le: Any, since: float) -> float | None:
    """From the first statistics request to the last PUT's answer, of the run that started at `since`, as the
    stand-ins saw them (both in this process: one clock)."""
    stats = [r["time"] for r in list(leadpier.requests) if r["kind"] == "stats" and r["time"] >= since]
    puts = [p.get("answered", p["time"]) for p in list(le.puts) if p["time"] >= since]
    return max(puts) - min(stats) if stats and puts else None


def measure_runs(
    args: argparse.Namespace,
    settings: dict[str, str],
    leadpier: Any,
    le: Any,
    days: dict[int, date],
    several: list[date],
    before: Path | None,
) -> list[RunFigures]:
    results: list[RunFigures] = []
    latency = (f"{args.leadpier_ms:g}/{args.le_ms:g} ms", args.leadpier_ms / 1000, args.le_ms / 1000)
    cases = [(("0 ms", 0.0, 0.0), [days[n]], n) for n in args.sources]
    cases += [(latency, [days[n]], n) for n in args.sources]
    if several:
        cases.append((latency, several, args.several_sources))
    codes = [("before", before), ("after", REPO)] if before is not None else [("after", REPO)]
    for (label, leadpier_s, le_s), run_days, sources in cases:
        leadpier.latency_s, le.latency_s = leadpier_s, le_s
        run_child(settings, run_days)  # unmeasured: the token is warm and Azurite has seen this shape
        samples: dict[str, list[dict[str, Any]]] = {name: [] for name, _ in codes}
        for _ in range(args.repeat):
            for name, code in codes:  # alternately, so both see the machine in the same mood
                figures = run_child(settings, run_days, code)
                figures["window_s"] = window_seconds(leadpier, le, figures["started"])
                samples[name].append(figures)
                le.puts.clear()  # the stand-ins keep every request; 50,000 records a PUT add up
                leadpier.requests.clear()
        floor = (
            floor_seconds(sources, len(run_days), args.page_size, args.concurrency, leadpier_s, le_s)
            if leadpier_s
            else None
        )
        case = [
            _figures(name, label, len(run_days), sources, args.page_size, floor, samples[name]) for name, _ in codes
        ]
        results.extend(case)
        print(_run_row(case), flush=True)
    leadpier.latency_s = le.latency_s = 0.0  # the parts after this one measure without latency
    return results


def _figures(
    code: str, label: str, days: int, sources: int, page_size: int, floor: float | None, samples: list[dict[str, Any]]
) -> RunFigures:
    middle = sorted(samples, key=lambda s: s["wall_s"])[len(samples) // 2]
    windows = [s["window_s"] for s in samples if s["window_s"] is not None]
    return RunFigures(
        code=code,
        latency=label,
        days=days,
        sources=sources,
        pages=max(1, math.ceil(sources / page_size)),
        window_s=statistics.median(windows) if windows else None,
        floor_s=floor,
        wall_s=middle["wall_s"],
        wall_min_s=min(s["wall_s"] for s in samples),
        cold_wall_s=statistics.median(s["cold_wall_s"] for s in samples),
        cpu_s=statistics.median(s["cpu_s"] for s in samples),
        peak_rss_mib=max(s["peak_rss_mib"] for s in samples),
        rss_after_imports_mib=statistics.median(s["rss_after_imports_mib"] for s in samples),
        storage_requests=max(s["storage_requests"] for s in samples),
        upstream_requests=max(s["upstream_requests"] for s in samples),
        sent_records=middle["sent_records"],
        status=middle["status"],
    )


RUN_HEADER = (
    f"{'':<31} | {'window s':^13} | {'window/floor':^13} | {'wall s':^13} | {'cpu s':^13} | "
    f"{'peak MiB':^13} |\n"
    f"{'latency':<10} {'days':>4} {'sources':>7} {'floor s':>7} |" + " before  after |" * 5
)


def _pair(values: list[float | None], width: int = 6, digits: int = 3) -> str:
    cells = [f"{v:{width}.{digits}f}" if v is not None else f"{'-':>{width}}" for v in values]
    return " ".join(cells if len(cells) == 2 else [f"{'':>{width}}", *cells])


def _run_row(case: list[RunFigures]) -> str:
    """One case, its "before" and "after" side by side (only "after" when the earlier commit is not at hand)."""
    f = case[-1]
    floor = f"{f.floor_s:7.3f}" if f.floor_s else f"{'-':>7}"
    ratios = [r.window_s / r.floor_s if r.window_s and r.floor_s else None for r in case]
    return (
        f"{f.latency:<10} {f.days:>4} {f.sources:>7} {floor} | "
        f"{_pair([r.window_s for r in case])} | {_pair(ratios, digits=2)} | {_pair([r.wall_s for r in case])} | "
        f"{_pair([r.cpu_s for r in case])} | {_pair([r.peak_rss_mib for r in case], digits=1)} |"
    )


def runs_table(results: list[RunFigures], header: str) -> str:
    cases: dict[tuple[str, int, int], list[RunFigures]] = {}
    for r in results:
        cases.setdefault((r.latency, r.days, r.sources), []).append(r)
    return "\n".join([header, RUN_HEADER, *(_run_row(case) for case in cases.values())])


def plot(results: list[RunFigures], out: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (runtime, memory) = plt.subplots(1, 2, figsize=(11, 4.2))
    results = [r for r in results if r.code == "after" and r.days == 1]
    for label in dict.fromkeys(r.latency for r in results):
        rows = [r for r in results if r.latency == label]
        xs = [r.sources for r in rows]
        runtime.plot(xs, [r.wall_s for r in rows], marker="o", label=f"wall, latency {label}")
        runtime.plot(xs, [r.cpu_s for r in rows], marker="x", linestyle=":", label=f"CPU, latency {label}")
        if rows[0].floor_s:
            runtime.plot(xs, [r.floor_s for r in rows], linestyle="--", color="grey", label="floor (network only)")
        memory.plot(xs, [r.peak_rss_mib for r in rows], marker="o", label=f"latency {label}")
    runtime.axhline(2.0, color="red", linewidth=0.8, linestyle="-.", label="target: 10,000 sources < 2 s")
    runtime.set(xlabel="sources (rows per day)", ylabel="seconds per run", title="Run time vs number of sources")
    memory.axhline(120e6 / 2**20, color="red", linewidth=0.8, linestyle="-.", label="target <= 120 MB (114.4 MiB)")
    memory.set(xlabel="sources (rows per day)", ylabel="peak RSS of the run's process, MiB", title="Peak memory")
    for axis in (runtime, memory):
        axis.grid(alpha=0.3)
        axis.legend(fontsize=7)
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=110)
    plt.close(fig)
