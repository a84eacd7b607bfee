"""A run's log: the lines of one run (and the threads it starts) in the old service's format, for the day's log blob."""

from __future__ import annotations

import contextvars
import logging
from datetime import datetime, tzinfo
from typing import Any

from sync_core.telemetry.names import RUN_ID, TRIGGER
from sync_core.untrusted import one_line

LINE_FORMAT = "%(asctime)s - %(name)s - %(levelname)s - %(message)s"  # the old service's, wherever lines are shown
MAX_LOG_LINES = 1000  # the most lines /logs and `python -m sync_core logs` show of a day's log
# The most of one line they show: the app's own lines are far shorter; a log written before outside text was cut
# may hold a megabyte in one.
MAX_LINE_CHARS = 4096
_current: contextvars.ContextVar[RunLog | None] = contextvars.ContextVar("leadpier_sync_run", default=None)


class ZonedFormatter(logging.Formatter):
    """`2026-02-13 23:23:35,123` in the service's time zone, whatever the machine's zone is."""

    def __init__(self, tz: tzinfo) -> None:
        super().__init__(LINE_FORMAT)
        self.tz = tz

    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:  # noqa: N802
        moment = datetime.fromtimestamp(record.created, self.tz)
        return f"{moment:%Y-%m-%d %H:%M:%S},{int(record.msecs):03d}"

    def formatMessage(self, record: logging.LogRecord) -> str:  # noqa: N802
        # Outside text is escaped where it enters a message; this keeps a line one line even where that was missed
        # (a traceback, added after the message, keeps its own lines).
        record.message = one_line(record.message, None)
        return super().formatMessage(record)


class _RunHandler(logging.Handler):
    """Routes each record to the run of the context it was logged from (contextvars follow copied contexts)."""

    def emit(self, record: logging.LogRecord) -> None:
        run = _current.get()
        if run is not None:
            try:
                run.lines.append(run.formatter.format(record))
            except Exception:
                self.handleError(record)


class _RunDimensions(logging.Filter):
    """Adds the run's id and trigger to every record, so Application Insights shows them as custom dimensions
    (named as on the run's span)."""

    def filter(self, record: logging.LogRecord) -> bool:
        run = _current.get()
        if run is not None:
            for key, value in run.dimensions.items():
                if not hasattr(record, key):
                    setattr(record, key, value)
        return True


_HANDLER = _RunHandler(level=logging.INFO)
# On the handler, not the logger: a logger's filters skip records from its children (sync_core.pipeline...),
# while this handler sees them all before the root handlers that ship them to Application Insights.
_HANDLER.addFilter(_RunDimensions())


def install() -> None:
    """Put the run handler on the `sync_core` logger (idempotent); handlers added later see the run's dimensions."""
    logger = logging.getLogger("sync_core")
    if _HANDLER not in logger.handlers:
        logger.addHandler(_HANDLER)
        if logger.level == logging.NOTSET or logger.level > logging.INFO:
            logger.setLevel(logging.INFO)


class RunLog:
    """Collects the lines logged under `sync_core` while the run is current."""

    def __init__(self, run_id: str, trigger: str, tz: tzinfo) -> None:
        self.formatter = ZonedFormatter(tz)
        self.lines: list[str] = []
        self.dimensions: dict[str, Any] = {RUN_ID: run_id, TRIGGER: trigger}
        self._token: contextvars.Token[RunLog | None] | None = None

    def set_timezone(self, tz: tzinfo) -> None:
        self.formatter = ZonedFormatter(tz)

    def __enter__(self) -> RunLog:
        install()
        self._token = _current.set(self)
        return self

    def __exit__(self, *exc: object) -> None:
        if self._token is not None:
            _current.reset(self._token)
            self._token = None

    def text(self) -> str:
        return "".join(line + "\n" for line in self.lines)

    def bounded(self, limit: int = MAX_LOG_LINES) -> list[str]:
        """The run's lines for its record and the day's log: at most `limit`, the middle left out of a longer run
        (its start and its end, the `finished` line, are what an operator reads), with a line saying so."""
        if len(self.lines) <= limit:
            return [_cut(line) for line in self.lines]
        head, tail = limit // 2, limit - limit // 2 - 1
        note = logging.LogRecord(
            "sync_core.pipeline",
            logging.WARNING,
            __file__,
            0,
            "%d lines of this run left out of its record and the day's log",
            (len(self.lines) - head - tail,),
            None,
        )
        return [_cut(line) for line in (*self.lines[:head], self.formatter.format(note), *self.lines[-tail:])]


def _cut(line: str) -> str:
    """A kept line (a traceback keeps its own lines) at most MAX_LINE_CHARS long, as /logs would show it."""
    if len(line) <= MAX_LINE_CHARS:
        return line
    note = f"...[cut, {len(line)} characters]"
    return line[: MAX_LINE_CHARS - len(note)] + note
