"""The host's side of the Python worker, played against azure_functions_runtime: worker init (bindings registry,
import and indexing of function_app), the metadata and load requests, and invocations through the runtime's native
path with inputs shaped as the host sends them.

Run as `python -m tests.runtime.worker [TIMES]` from the repo root, it starts the worker TIMES times in one process
and prints one JSON line per start: what the host would be told (the indexing status and each function's bindings)."""

from __future__ import annotations

import asyncio
import json
import sys
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace
from typing import Any
from urllib.parse import urlencode

from azure_functions_runtime import handle_event
from azure_functions_runtime.bindings.datumdef import Datum
from azure_functions_runtime.native_invocation import run_invocation_sync

from tests.runtime import protos_standin as protos

REPO_ROOT = Path(__file__).resolve().parents[2]
HOST = "http://localhost:7071"  # host.json sets routePrefix to "": routes sit at the root

# What the host tells the worker it can do, as in its WorkerInitRequest.
HOST_CAPABILITIES = {"RpcHttpBodyOnly": "true", "RawHttpBodyBytes": "true", "TypedDataCollection": "true"}


class WorkerStartFailed(Exception):
    """The worker answered the host's init with a failure: the host would show this message and load no function."""


@dataclass
class WorkerStart:
    """The worker's answers to the host when it starts: init, metadata (one RpcFunctionMetadata per function), load."""

    init: protos.WorkerInitResponse
    metadata: list[protos.RpcFunctionMetadata]
    loads: list[protos.FunctionLoadResponse]

    @property
    def ok(self) -> bool:
        return self.init.result.status == protos.StatusResult.Success

    @property
    def failure(self) -> str | None:
        return None if self.ok else self.init.result.exception.message

    def function(self, name: str) -> protos.RpcFunctionMetadata:
        return next(m for m in self.metadata if m.name == name)

    def raw_bindings(self, name: str) -> list[dict[str, Any]]:
        return [json.loads(raw) for raw in self.function(name).raw_bindings]

    def summary(self) -> dict[str, Any]:
        """JSON-safe: what the host would read."""
        return {
            "ok": self.ok,
            "failure": self.failure,
            "functions": {
                m.name: {
                    "raw_bindings": [json.loads(raw) for raw in m.raw_bindings],
                    "bindings": {n: {"type": b.type, "direction": int(b.direction)} for n, b in m.bindings.items()},
                }
                for m in self.metadata
            },
        }


def _host_request(**request: Any) -> SimpleNamespace:
    return SimpleNamespace(request=SimpleNamespace(**request), properties={"host": "127.0.0.1:0", "protos": protos})


async def _start(app_dir: str) -> WorkerStart:
    init = await handle_event.worker_init_request(
        _host_request(
            worker_init_request=SimpleNamespace(capabilities=dict(HOST_CAPABILITIES), function_app_directory=app_dir)
        )
    )
    if init.result.status != protos.StatusResult.Success:
        return WorkerStart(init=init, metadata=[], loads=[])
    answer = await handle_event.functions_metadata_request(
        _host_request(functions_metadata_request=SimpleNamespace(function_app_directory=app_dir))
    )
    metadata = list(answer.function_metadata_results or [])
    loads = [
        await handle_event.function_load_request(
            _host_request(function_load_request=SimpleNamespace(function_id=m.function_id, metadata=m))
        )
        for m in metadata
    ]
    return WorkerStart(init=init, metadata=metadata, loads=loads)


def start_worker(app_dir: Path = REPO_ROOT) -> WorkerStart:
    """The worker's start as the host drives it. The worker imports `function_app` by name from the app's directory;
    the import reads SYNC_SCHEDULE and SYNC_RUN_ON_STARTUP from the environment of the moment."""
    if str(app_dir) not in sys.path:
        sys.path.insert(0, str(app_dir))
    return asyncio.run(_start(str(app_dir)))


# -- invocations ------------------------------------------------------------------------------------------------------


@dataclass
class HttpAnswer:
    """An HTTP function's response as the worker hands it back to the host."""

    status_code: int
    headers: dict[str, str]  # names lower-cased, as the host treats them
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class Invocation:
    """What the host gets back from one invocation."""

    ok: bool
    error: str | None
    return_value: Any = None  # the `$return` Datum
    output_data: dict[str, Any] = field(default_factory=dict)  # output binding name -> Datum

    @property
    def http(self) -> HttpAnswer:
        assert self.ok, self.error
        value = self.return_value.value
        assert self.return_value.type == "http"
        return HttpAnswer(
            status_code=int(value["status_code"].value),
            headers={name.lower(): datum.value for name, datum in value["headers"].items()},
            body=value["body"].value,
        )

    def queue_messages(self, name: str) -> list[str]:
        """An output queue binding's messages as the host enqueues them (a JSON array becomes one message each)."""
        datum = self.output_data.get(name)
        if datum is None:
            return []
        if datum.type == "json":
            value = json.loads(datum.value)
            if not isinstance(value, list):
                return [datum.value]
            return [m if isinstance(m, str) else json.dumps(m) for m in value]
        return [datum.value.decode() if isinstance(datum.value, bytes) else datum.value]


def invoke(
    start: WorkerStart,
    name: str,
    inputs: dict[str, Datum],
    trigger_metadata: dict[str, Datum] | None = None,
    invocation_id: str | None = None,
    traceparent: str = "",
    tracestate: str = "",
) -> Invocation:
    """One InvocationRequest, through the runtime's native path on its thread pool (start_threadpool_executor first).
    `traceparent`/`tracestate`: the RpcTraceContext of the host's invocation span, as the host sends it."""
    function_id = start.function(name).function_id
    handled, ok, return_datum, output_data, error, _traceback = run_invocation_sync(
        invocation_id or str(uuid.uuid4()),
        function_id,
        list(inputs.items()),
        trigger_metadata or {},
        traceparent,
        tracestate,
    )
    assert handled, f"{name} is async: the native sync path declined it"
    return Invocation(ok=ok, error=error, return_value=return_datum, output_data=dict(output_data))


# -- inputs shaped as the host sends them -------------------------------------------------------------------------


def http_request(
    method: str,
    path: str,
    *,
    query: dict[str, str] | None = None,
    route_params: dict[str, str] | None = None,
    body: bytes = b"",
    headers: dict[str, str] | None = None,
) -> Datum:
    """An RpcHttp as Datum: method, url (with the query string), headers, query, route params and a bytes body
    (the worker told the host RawHttpBodyBytes; an absent body reaches the binding as empty bytes)."""
    query = query or {}
    sent_headers = {"Host": "localhost:7071", "User-Agent": "python-requests/2.32", "Accept": "*/*", **(headers or {})}
    if body:
        sent_headers.setdefault("Content-Length", str(len(body)))
    url = f"{HOST}{path}" + (f"?{urlencode(query)}" if query else "")
    return Datum(
        {
            "method": Datum(method, "string"),
            "url": Datum(url, "string"),
            "headers": {k: Datum(v, "string") for k, v in sent_headers.items()},
            "query": {k: Datum(v, "string") for k, v in query.items()},
            "params": {k: Datum(v, "string") for k, v in (route_params or {}).items()},
            "body": Datum(body, "bytes"),
        },
        "http",
    )


def timer_request(schedule_status: dict[str, str] | None, past_due: bool = False) -> Datum:
    """The host's TimerInfo as JSON; ScheduleStatus is null before the monitor has recorded a firing."""
    return Datum(
        json.dumps({"Schedule": {"AdjustForDST": True}, "ScheduleStatus": schedule_status, "IsPastDue": past_due}),
        "json",
    )


def queue_message(
    body: str, *, dequeue_count: int = 1, message_id: str | None = None, inserted: str = "2026-02-13T17:50:00+00:00"
) -> tuple[Datum, dict[str, Datum]]:
    """A queue message (a string) and the trigger metadata the host sends with it: strings as strings, numbers and
    times as JSON."""
    message_id = message_id or str(uuid.uuid4())
    metadata = {
        "Id": Datum(message_id, "string"),
        "DequeueCount": Datum(json.dumps(dequeue_count), "json"),
        "InsertionTime": Datum(json.dumps(inserted), "json"),
        "ExpirationTime": Datum(json.dumps("2026-02-20T17:50:00+00:00"), "json"),
        "NextVisibleTime": Datum(json.dumps("2026-02-13T18:00:00+00:00"), "json"),
        "PopReceipt": Datum("AgAAAAMAAAAAAAAA" + uuid.uuid4().hex[:12], "string"),
        "QueueTrigger": Datum(body, "string"),
        "sys": Datum(
            json.dumps({"MethodName": "sync_worker", "UtcNow": inserted, "RandGuid": str(uuid.uuid4())}), "json"
        ),
    }
    return Datum(body, "string"), metadata


class Host:
    """The host's calls into the app: each function's trigger input named after its binding, as the metadata says."""

    def __init__(self, start: WorkerStart) -> None:
        self.start = start

    def trigger_name(self, function: str) -> str:
        return next(
            b["name"]
            for b in self.start.raw_bindings(function)
            if b["direction"] == "IN" and b["type"].endswith("Trigger")
        )

    def http(
        self, function: str, request: Datum, invocation_id: str | None = None, traceparent: str = ""
    ) -> Invocation:
        return invoke(
            self.start,
            function,
            {self.trigger_name(function): request},
            invocation_id=invocation_id,
            traceparent=traceparent,
        )

    def get(
        self, function: str, path: str, query: dict[str, str] | None = None, route_params: dict[str, str] | None = None
    ) -> HttpAnswer:
        return self.http(function, http_request("GET", path, query=query, route_params=route_params)).http

    def post_trigger(self, body: bytes | dict[str, Any] = b"", traceparent: str = "") -> Invocation:
        raw = json.dumps(body).encode() if isinstance(body, dict) else body
        headers = {"Content-Type": "application/json"} if raw else {}
        return self.http(
            "trigger", http_request("POST", "/trigger", body=raw, headers=headers), traceparent=traceparent
        )

    def deliver(
        self, message: str, dequeue_count: int = 1, traceparent: str = "", invocation_id: str | None = None
    ) -> Invocation:
        body, metadata = queue_message(message, dequeue_count=dequeue_count)
        return invoke(
            self.start,
            "sync_worker",
            {self.trigger_name("sync_worker"): body},
            metadata,
            invocation_id=invocation_id,
            traceparent=traceparent,
        )

    def fire_timer(
        self, schedule_status: dict[str, str] | None, past_due: bool = False, traceparent: str = ""
    ) -> Invocation:
        timer = timer_request(schedule_status, past_due)
        return invoke(self.start, "sync_timer", {self.trigger_name("sync_timer"): timer}, traceparent=traceparent)


if __name__ == "__main__":
    for _ in range(int(sys.argv[1]) if len(sys.argv) > 1 else 1):
        print(json.dumps(start_worker().summary()), flush=True)
