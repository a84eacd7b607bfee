"""The app's spans: a span that costs nothing when telemetry is off, and the host's invocation as the parent."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Mapping
from typing import Any, TypeVar

from sync_core.telemetry.export import add_redaction_to_worker_provider, enabled
from sync_core.telemetry.names import INSTRUMENTATION_SCOPE, TRACEPARENT_MAX_CHARS, TRACESTATE_MAX_CHARS

T = TypeVar("T")


class Span:
    """A span of this app, or nothing when telemetry is off (the same calls either way)."""

    def __init__(self, otel_span: Any = None) -> None:
        self._span = otel_span

    def set(self, key: str, value: Any) -> None:
        if self._span is not None and value is not None:
            self._span.set_attribute(key, value)

    def fail(self, description: str | None) -> None:
        if self._span is not None:
            from opentelemetry.trace import Status, StatusCode

            self._span.set_status(Status(StatusCode.ERROR, description))


@contextlib.contextmanager
def invocation(trace_context: Any) -> Iterator[None]:
    """While a handler runs: the host's invocation span (`context.trace_context` of the Functions host, its
    `trace_parent` and `trace_state`) is the current span, so the run span, the storage and HTTP calls and the log
    lines are its children and share its operation id. Explicit because the Python worker attaches the host's context
    on its event loop, not on the thread that runs a sync function. Without telemetry, or without a valid
    traceparent, nothing changes."""
    traceparent = getattr(trace_context, "trace_parent", None)
    if not enabled() or not isinstance(traceparent, str) or not traceparent.strip():
        yield
        return
    from opentelemetry import context as otel_context
    from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

    add_redaction_to_worker_provider()  # before the first span of the invocation, whoever starts it
    carrier = {"traceparent": traceparent.strip()[:TRACEPARENT_MAX_CHARS]}
    tracestate = getattr(trace_context, "trace_state", None)
    if isinstance(tracestate, str) and tracestate.strip():
        carrier["tracestate"] = tracestate.strip()[:TRACESTATE_MAX_CHARS]
    token = otel_context.attach(TraceContextTextMapPropagator().extract(carrier))
    try:
        yield
    finally:
        otel_context.detach(token)


@contextlib.contextmanager
def span(
    name: str, attributes: Mapping[str, Any] | None = None, *, not_errors: tuple[type[BaseException], ...] = ()
) -> Iterator[Span]:
    """An INTERNAL child span of the current one (OpenTelemetry's context follows contextvars into copied
    contexts). An exception leaving it marks it failed and is recorded on it, unless it is one of `not_errors`."""
    if not enabled():
        yield Span()
        return
    from opentelemetry import trace

    add_redaction_to_worker_provider()
    tracer = trace.get_tracer(INSTRUMENTATION_SCOPE)
    clean = {k: v for k, v in (attributes or {}).items() if v is not None}
    with tracer.start_as_current_span(
        name, kind=trace.SpanKind.INTERNAL, attributes=clean, record_exception=False, set_status_on_exception=False
    ) as current:
        try:
            yield Span(current)
        except not_errors:
            raise
        except BaseException as exc:
            current.record_exception(exc)
            current.set_status(trace.Status(trace.StatusCode.ERROR, f"{type(exc).__name__}: {exc}"))
            raise


def in_span(name: str, attributes: Mapping[str, Any], action: Callable[..., T], *args: Any) -> T:
    """`action(*args)` inside a span: for work handed to a thread pool in a copied context."""
    with span(name, attributes):
        return action(*args)
