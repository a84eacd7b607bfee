"""Where telemetry goes: whether it is on, the Azure Monitor distro's setup outside the host, the query-string
redaction, and the bounded flush at exit."""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from sync_core.rules.flags import is_true
from sync_core.telemetry.names import CONNECTION_STRING_SETTING, FLUSH_BUDGET_S, WORKER_TELEMETRY_SETTING
from sync_core.telemetry.runlog import install

log = logging.getLogger("sync_core.telemetry")

_lock = threading.Lock()
_enabled: bool | None = None  # None: not decided yet (read from the environment on first use)
_configured_here = False
_redaction_added = False


def enabled() -> bool:
    """Whether spans and metrics are made: the worker configured the distro, or this process did."""
    global _enabled
    if _enabled is None:
        _enabled = is_true(os.environ.get(WORKER_TELEMETRY_SETTING))
    return _enabled


def configure_from_environment(environ: Mapping[str, str] | None = None) -> bool:
    """Outside the Functions host: configure the Azure Monitor distro once per process when a connection string
    is set; without one nothing is exported and nothing fails. Returns whether telemetry is on."""
    global _enabled, _configured_here
    env = os.environ if environ is None else environ
    if not (env.get(CONNECTION_STRING_SETTING) or "").strip():
        return enabled()
    with _lock:
        if _configured_here:
            return True
        try:
            from azure.monitor.opentelemetry import configure_azure_monitor
            from opentelemetry.sdk.resources import Resource

            # The run handler first: its filter gives each record the run's dimensions before the exporter's
            # handler, added next to the same logger, reads them.
            install()
            options: dict[str, Any] = {
                "connection_string": env[CONNECTION_STRING_SETTING].strip(),
                "logger_name": "sync_core",  # the run's lines; the CLI's own stderr logging stays as it is
                # cloud_RoleName; in the Functions host the worker's resource detector names the app instead.
                "resource": Resource.create({"service.name": env.get("OTEL_SERVICE_NAME") or "leadpier-sync"}),
                # A one-off process: no files left behind to retry from, no live metrics stream, no counters.
                "disable_offline_storage": True,
                "enable_live_metrics": False,
                "enable_performance_counters": False,
                "span_processors": [QueryRedactingSpanProcessor()],
                # An unreachable or failing endpoint costs one attempt per batch, not a retry loop at exit.
                "retry_total": 0,
                "timeout": 5.0,
            }
            if not env.get("OTEL_TRACES_SAMPLER"):
                # The distro's default rate-limited sampler drops spans of a short process; keep every run.
                options["sampling_ratio"] = 1.0
            configure_azure_monitor(**options)
        except Exception as exc:
            log.warning(
                "Application Insights telemetry is off: the distro could not be configured (%s)", type(exc).__name__
            )
            return enabled()
        _configured_here = True
        _enabled = True
        return True


def add_redaction_to_worker_provider() -> None:
    """In the Functions host, the worker configured the tracer provider: add the query-string redaction once."""
    global _redaction_added
    if _configured_here or not enabled() or _redaction_added:
        return
    with _lock:
        if _redaction_added:
            return
        from opentelemetry import trace

        provider = trace.get_tracer_provider()
        add = getattr(provider, "add_span_processor", None)
        if callable(add):
            add(QueryRedactingSpanProcessor())
        _redaction_added = True


def flush(budget_s: float = FLUSH_BUDGET_S) -> None:
    """At the end of a process that configured telemetry: send what is buffered (spans, log records, metrics),
    waiting `budget_s` at most, whether the endpoint answers, fails or never answers; what is not sent by then is
    dropped. The providers are shut down, each on a daemon thread: the interpreter's exit does not wait for a
    thread still in an export, and the providers' own exit hooks find them shut down and return at once."""
    if not _configured_here:
        return
    from opentelemetry import _logs, metrics, trace

    def shut(provider: Any) -> None:
        try:
            provider.shutdown()
        except Exception:
            log.debug("flushing telemetry failed", exc_info=True)

    threads = [
        threading.Thread(target=shut, args=(provider,), name="telemetry-flush", daemon=True)
        for provider in (trace.get_tracer_provider(), _logs.get_logger_provider(), metrics.get_meter_provider())
        if callable(getattr(provider, "shutdown", None))
    ]
    deadline = time.monotonic() + budget_s
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(max(0.0, deadline - time.monotonic()))


def redact_query(url: str) -> str:
    """A URL with every query value replaced: settings such as LE_API_URL could carry a key there."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return url
    if not parts.query:
        return url
    query = "&".join(p.split("=", 1)[0] + ("=REDACTED" if "=" in p else "") for p in parts.query.split("&"))
    return urlunsplit(parts._replace(query=query, netloc=parts.netloc.rsplit("@", 1)[-1]))


class QueryRedactingSpanProcessor:
    """Replaces query values in the URL attributes of HTTP spans as they start (before any exporter sees them)."""

    _URL_KEYS = ("url.full", "http.url", "http.target", "url.query")

    def on_start(self, span: Any, parent_context: Any = None) -> None:
        attributes = getattr(span, "attributes", None) or {}
        for key in self._URL_KEYS:
            value = attributes.get(key)
            if not isinstance(value, str) or not value:
                continue
            if key == "url.query":
                span.set_attribute(key, "REDACTED")
            elif "?" in value:
                span.set_attribute(key, redact_query(value))

    def on_end(self, span: Any) -> None:
        pass

    def _on_ending(self, span: Any) -> None:
        pass

    def shutdown(self) -> None:
        pass

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return True
