"""The app inside the Functions Python runtime: `azure_functions_runtime`, the package the host's Python worker hands
every request to on Python 3.13 and later. This tier runs only where that package is installed (3.13+); elsewhere
the whole folder is skipped with the reason.

What it covers, as production would meet it:
- the worker's start: `worker_init_request` loads the bindings registry, imports `function_app` by name from the app's
  directory and indexes it (`loader.index_function_app`, then `process_indexed_function` with the host's message
  classes, here `protos_standin`); then the metadata and load requests. A function the runtime refuses (a binding
  without a parameter, an annotation it cannot convert, a duplicate name) fails here as it would fail the deployment;
- the metadata the host reads: names, binding types and directions, routes, methods, auth levels, the timer's
  schedule, `runOnStartup` and `useMonitor`, the queue and its connection, `/trigger`'s queue output; and that the
  settings read at import (SYNC_SCHEDULE, SYNC_RUN_ON_STARTUP) reach them;
- invocations through the runtime's own path (`native_invocation.run_invocation_sync` on the runtime's thread pool):
  HTTP requests, timer firings and queue messages as the host encodes them (`Datum` values and trigger metadata),
  decoded by the runtime's converters, against Azurite and the loopback LeadPier and LE; `/trigger`'s queue messages
  read back from the invocation's output data and delivered to `sync_worker`, and a failed invocation as the host
  would see it;
- the telemetry of an invocation (test_runtime_telemetry.py, a worker process each, telemetry_child.py): the worker
  configures the Azure Monitor distro itself (`PYTHON_APPLICATIONINSIGHTS_ENABLE_TELEMETRY=true`), each invocation
  carries a `traceparent` as the host's RpcTraceContext does, and a loopback ingestion endpoint (TLS and Entra ID
  tokens from a loopback managed-identity endpoint, for the Entra tests) receives what the app sends.

What it cannot cover: the host itself. Its routing (which URL reaches which function, route constraints such as
`maxlength(0)`), function keys and auth levels being enforced, the real bindings to Azure Storage (the queue output
actually enqueued, base64 message encoding, polling), the timer's scheduling and schedule monitor, retries and
moving a message to the poison queue after `maxDequeueCount` deliveries, `functionTimeout`, the gRPC transport
between host and worker, and the host's own telemetry (its `requests` item per invocation, the span whose
`traceparent` the tests make up). Those need `func start` or a deployment.

The SDK indexes an app once per process ("does not have a unique function name" the second time), so the worker is
started once per test process (per xdist worker), and anything that must index with other settings does it in a
subprocess (`python -m tests.runtime.worker`)."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from tests.runtime.worker import WorkerStart

# Each test module of this folder starts with `pytest.importorskip("azure_functions_runtime", ...)`. A skip raised here
# would be an error, not a skip, when the folder is named on the command line, so this file imports the runtime only
# inside its fixtures.


@pytest.fixture(scope="session")
def worker() -> WorkerStart:
    """The worker started as the host starts it, once per test process, with the default schedule settings."""
    from tests.runtime.worker import start_worker

    with pytest.MonkeyPatch.context() as env:
        env.delenv("SYNC_SCHEDULE", raising=False)
        env.delenv("SYNC_RUN_ON_STARTUP", raising=False)
        sys.modules.pop("function_app", None)  # the worker imports it by this name; a copy already here was indexed
        start = start_worker()
    if not start.ok:
        pytest.fail(f"the worker refused the app, as the host would: {start.failure}")
    return start


@pytest.fixture(scope="session")
def threadpool() -> Iterator[None]:
    """The runtime's thread pool, on which the native path runs sync functions."""
    from azure_functions_runtime import start_threadpool_executor, stop_threadpool_executor

    start_threadpool_executor()
    yield
    stop_threadpool_executor()
