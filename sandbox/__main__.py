"""`python -m sandbox`: the whole job on this machine: Azurite, stand-ins for LeadPier and LE, one sync and a summary
of it; or, with --serve, all of it kept running with every HTTP route served (a local stand-in for the Functions host)."""

from __future__ import annotations

import argparse
import json
import logging
import signal
import sys
from collections.abc import Mapping, Sequence
from types import FrameType

from sync_core.state.records import RunRecord
from sync_core.telemetry.runlog import LINE_FORMAT

SAMPLE_CODES = 4
DEFAULT_PORT = 7071
DEFAULT_SCHEDULE = "0 * * * * *"


def _sources(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if not 1 <= value <= 200_000:
        raise argparse.ArgumentTypeError(f"{value} is out of range; give 1 to 200000")
    return value


def _port(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a port number") from None
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"{value} is not a port; give 1 to 65535 (0: any free port)")
    return value


def _schedule(text: str) -> str:
    from sync_core.rules.schedule import validate_schedule

    try:
        return validate_schedule(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="scripts/sandbox.sh", description=__doc__)
    parser.add_argument("--sources", type=_sources, default=300, help="LeadPier sources per day (default 300)")
    parser.add_argument("--dry-run", action="store_true", help="send nothing to the LE stand-in")
    parser.add_argument("--json", action="store_true", help="print the run record and /status as one JSON document")
    parser.add_argument(
        "--identity",
        action="store_true",
        help="as on day one in Azure: storage over HTTPS taking only managed-identity tokens (a loopback identity "
        "endpoint issues them), and exactly the app settings infra/ gives the function app; no key anywhere",
    )
    serve = parser.add_argument_group("serving (--serve)")
    serve.add_argument(
        "--serve",
        action="store_true",
        help="keep everything running: the timer on --schedule, the queue worker, and every HTTP route",
    )
    # Defaults are filled in below, so a flag given without --serve can be told from one left out.
    serve.add_argument("--port", type=_port, help="HTTP port on 127.0.0.1 (default 7071, as `func start`)")
    serve.add_argument(
        "--schedule",
        type=_schedule,
        help="the timer's NCRONTAB schedule, seconds first (default '0 * * * * *': every minute)",
    )
    args = parser.parse_args(argv)
    if args.json and args.serve:
        parser.error("--json prints one run's record; --serve keeps running: give one of them")
    if not args.serve:
        given = [flag for flag, value in (("--port", args.port), ("--schedule", args.schedule)) if value is not None]
        if given:
            parser.error(f"{' and '.join(given)} only mean something with --serve: add --serve or leave them out")
    args.port = DEFAULT_PORT if args.port is None else args.port
    args.schedule = DEFAULT_SCHEDULE if args.schedule is None else args.schedule
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    # A background job of a non-interactive shell starts with SIGINT ignored, and Python then keeps it ignored:
    # Ctrl-C (or `kill -INT`) must stop the sandbox however it was started. SIGTERM stops it the same way.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, _interrupt)
    # The app's own lines (one warning per unmatched code among them) go to the run log in storage, as in Azure;
    # the screen gets only errors from libraries, and the summary.
    # (A handler's own level, since records propagated from sync_core's logger skip the root logger's level.)
    screen = logging.StreamHandler(sys.stderr)
    screen.setLevel(logging.ERROR)
    screen.setFormatter(logging.Formatter(LINE_FORMAT))
    logging.getLogger().addHandler(screen)
    if args.serve:
        from sandbox.serve import serve

        return serve(args)
    return run_once(args)


def run_once(args: argparse.Namespace) -> int:
    from sandbox.world import CLIENT_ID, workspace, world
    from sync_core import telemetry
    from sync_core.run.pipeline import RunRequest, run_sync
    from sync_core.settings import load_settings
    from sync_core.state.store import StateStore
    from sync_core.web.status import status_document

    with (
        workspace() as workdir,
        world(workdir, sources=args.sources, dry_run=args.dry_run, identity=args.identity) as here,
    ):
        # With APPLICATIONINSIGHTS_CONNECTION_STRING in the shell, the run's telemetry goes there too (not in the
        # identity world, whose connection string is the template's, pointed at nothing).
        if not args.identity:
            telemetry.configure_from_environment()
        try:
            record = run_sync(RunRequest(trigger="cli"))
        finally:
            telemetry.flush()
        settings = load_settings()
        status = status_document(settings, StateStore(settings.storage))
        if args.json:
            document = {
                "run": record.model_dump(mode="json"),
                "status": status.model_dump(mode="json"),
                "le_received": {d: len(r) for d, r in sorted(here.le.received_days().items())},
                "leadpier_logins": here.leadpier.logins,
            }
            print(json.dumps(document, indent=2))
        else:
            print(
                summary(
                    record,
                    sources=args.sources,
                    le_days=here.le.received_days(),
                    logins=here.leadpier.logins,
                    state=f"Azurite in {workdir}, container {here.settings['SYNC_STATE_CONTAINER']}"
                    + (
                        f" (identity only: HTTPS, bearer tokens of client id {CLIENT_ID}, "
                        f"{len(here.identity.requests)} token(s) issued, the template's app settings, no key)"
                        if here.identity
                        else ""
                    ),
                )
            )
    return 0 if record.status in ("success", "warning") else 1


def _interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


def summary(
    record: RunRecord, *, sources: int, le_days: Mapping[str, Sequence[object]], logins: int, state: str
) -> str:
    """What a person wants to know about the sandbox's run, in a dozen lines."""
    took = f"{record.duration_ms / 1000:.1f} s" if record.duration_ms is not None else "?"
    lines = [
        f"One sync run against local stand-ins ({sources:,} LeadPier sources a day, generated): "
        f"{record.status.upper()} in {took}{' (dry run: nothing sent to LE)' if record.dry_run else ''}",
        f"  run id {record.run_id}, trigger {record.trigger}, LeadPier logins {logins}",
        "",
        f"  {'report day':<12}{'rows':>8}{'sent':>8}{'matched':>9}{'unmatched':>11}   LE",
    ]
    for day in record.days:
        answer = "accepted" if day.le_success else ("refused" if day.le_success is False else (day.error or "not sent"))
        lines.append(
            f"  {day.report_date:<12}{day.fetched_rows:>8,}{day.sent_records:>8,}"
            f"{_n(day.matched_records):>9}{_n(day.unmatched_records):>11}   {answer}"
        )
    if record.error:
        lines += ["", f"  Error: {record.error}"]
    if record.unmatched_counts:
        reasons = ", ".join(
            f"{n:,} {reason.replace('_', ' ')}" for reason, n in sorted(record.unmatched_counts.items())
        )
        samples = [code for codes in record.unmatched_codes.values() for code in codes[:2]][:SAMPLE_CODES]
        lines += [
            "",
            f"  Unmatched campaign codes: {reasons}; for example {', '.join(samples)}.",
            "  They are deliberate test data: the generated sources include invalid formats and unknown",
            "  domain codes, so the unmatched path runs. The run log has one warning line a day for them",
            "  (the count by reason and a few examples); the run record keeps every reason's top codes.",
        ]
    held = ", ".join(f"{d} ({len(r):,} records)" for d, r in sorted(le_days.items())) or "nothing"
    lines += [
        "",
        f"  The LE stand-in now holds: {held}.",
        f"  State lived in {state}; removed on exit.",
        "",
        "Full run record and /status as JSON: scripts/sandbox.sh --json",
        "Every endpoint and the dashboard, kept running: scripts/sandbox.sh --serve",
    ]
    return "\n".join(lines)


def _n(value: int | None) -> str:
    return "—" if value is None else f"{value:,}"


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:  # Ctrl-C while starting or running: the context managers have stopped everything
        print("\nStopped.", file=sys.stderr)
        sys.exit(130)
