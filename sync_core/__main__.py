"""`python -m sync_core`: what the functions run, for operators and for development without the Functions host."""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence
from datetime import date
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sync_core import telemetry
from sync_core.errors import SyncError
from sync_core.rules.days import day_range, parse_day, refuse_future
from sync_core.run.pipeline import RunRequest, run_sync
from sync_core.settings import DEFAULT_TIMEZONE, read_environment
from sync_core.state.records import utcnow
from sync_core.telemetry.runlog import LINE_FORMAT, MAX_LINE_CHARS, MAX_LOG_LINES
from sync_core.untrusted import one_line

EXIT_OK, EXIT_FAILED, EXIT_SKIPPED = 0, 1, 3  # bad arguments: 2, from argparse


def _day(text: str) -> date:
    try:
        return parse_day(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"{text!r} {exc}") from None


def _lines(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if not 1 <= value <= MAX_LOG_LINES:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number from 1 to {MAX_LOG_LINES}")
    return value


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m sync_core", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    sync = commands.add_parser("sync", help="run one sync and print its run record")
    sync.add_argument("--date", type=_day, help="sync this one day (YYYY-MM-DD) instead of today")
    sync.add_argument("--from", dest="first", type=_day, help="first day of a range (31 days at most)")
    sync.add_argument("--to", dest="last", type=_day, help="last day of the range")
    sync.add_argument("--dry-run", action="store_true", help="fetch, transform and record, but send nothing to LE")
    sync.add_argument(
        "--relogin", action="store_true", help="drop the stored LeadPier session first, so this run logs in again"
    )
    commands.add_parser("status", help="print the /status document")
    logs = commands.add_parser("logs", help="print the last lines of a day's log")
    logs.add_argument("--lines", type=_lines, default=50, help=f"how many lines (1 to {MAX_LOG_LINES}, default 50)")
    logs.add_argument("--date", type=_day, help="the day (YYYY-MM-DD, default today in SYNC_TIMEZONE)")
    return parser


def _sync(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    dates: list[date] | None = None
    if args.date and (args.first or args.last):
        parser.error("give either --date or --from/--to, not both")
    if args.date:
        dates = [args.date]
    elif args.first or args.last:
        if not (args.first and args.last):
            parser.error("--from and --to go together")
        try:
            dates = day_range(args.first, args.last)
        except ValueError as exc:
            parser.error(str(exc))
    if dates and (zone := _zone()) is not None:
        try:
            refuse_future(dates, utcnow().astimezone(zone).date(), str(zone))
        except ValueError as exc:
            parser.error(str(exc))
    if args.relogin:
        from sync_core.services import services

        # After a password change: this run proves the new password now, not when the stored token expires.
        services().store.drop_session()
    # With APPLICATIONINSIGHTS_CONNECTION_STRING set, the run sends the telemetry it sends from the host.
    telemetry.configure_from_environment(read_environment())
    try:
        record = run_sync(RunRequest(trigger="cli", dates=dates, dry_run=True if args.dry_run else None))
    finally:
        telemetry.flush()
    print(record.model_dump_json(indent=2))
    return {"success": EXIT_OK, "warning": EXIT_OK, "skipped": EXIT_SKIPPED}.get(record.status, EXIT_FAILED)


def _zone() -> ZoneInfo | None:
    """SYNC_TIMEZONE when it is valid; an invalid one fails the run itself, with the settings error recorded."""
    try:
        return ZoneInfo(read_environment().get("SYNC_TIMEZONE") or DEFAULT_TIMEZONE)
    except (ZoneInfoNotFoundError, ValueError):
        return None


def _status() -> int:
    from sync_core.web.status import current_status

    print(current_status().model_dump_json(indent=2))
    return EXIT_OK


def _logs(args: argparse.Namespace) -> int:
    from sync_core.services import services

    here = services()
    day = args.date or utcnow().astimezone(here.settings.timezone).date()
    name, lines = here.store.read_log_tail(day, args.lines)
    if name is None:
        print(f"No log for {day.isoformat()}", file=sys.stderr)
        return EXIT_OK
    # A day's log may hold lines written before outside text was escaped: nothing reaches the terminal raw.
    print("\n".join(one_line(line, MAX_LINE_CHARS) for line in lines))
    return EXIT_OK


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format=LINE_FORMAT, stream=sys.stderr)
    try:
        if args.command == "sync":
            return _sync(args, parser)
        if args.command == "status":
            return _status()
        return _logs(args)
    except SyncError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_FAILED


if __name__ == "__main__":
    sys.exit(main())
