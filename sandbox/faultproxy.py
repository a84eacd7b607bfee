"""A fault-injecting HTTP proxy for Azurite: Azure Storage's everyday faults between the storage SDK and the emulator.

The proxy sits on its own loopback port in front of one Azurite service (blob or queue) and forwards each
request. A test plans faults for the next requests that match (by method and path), or sets a rate at which
random faults hit any request. Kinds:

- `busy`: 503 Server Busy with the storage XML error body and `x-ms-error-code: ServerBusy`; not forwarded.
- `timeout500`: 500 Operation Timed Out (`OperationTimedOut`); not forwarded.
- `reset_before`: the connection is reset once the request's head has arrived, before its body is forwarded.
- `reset_after`: the request is forwarded and applied by Azurite, then the connection is reset: the answer is lost.
- `stall`: the request is forwarded and applied; the answer is held for `stall_s` (longer than the client's
  timeout), then the connection is closed.
"""

from __future__ import annotations

import http.client
import random
import re
import socket
import struct
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from types import TracebackType
from typing import IO, Self

HOST = "127.0.0.1"
KINDS = ("busy", "timeout500", "reset_before", "reset_after", "stall")
WRITE_METHODS = frozenset({"PUT", "POST", "DELETE"})
_ERRORS = {
    "busy": (
        503,
        "Server Busy",
        "ServerBusy",
        "The server is currently unable to receive requests. Please retry your request.",
    ),
    "timeout500": (
        500,
        "Operation Timed Out",
        "OperationTimedOut",
        "The operation could not be completed within the permitted time.",
    ),
}

Matcher = Callable[[str, str], bool]


@dataclass
class _Plan:
    kind: str
    times: int
    match: Matcher | None


@dataclass(frozen=True)
class Injected:
    """One fault the proxy injected: its kind and the request it hit."""

    kind: str
    method: str
    path: str


def matching(method: str | None = None, path: str | None = None) -> Matcher:
    """A matcher on the request's method (exact) and path with query (a regular expression searched in it)."""
    pattern = re.compile(path) if path else None

    def match(request_method: str, request_path: str) -> bool:
        return (method is None or request_method == method) and (pattern is None or bool(pattern.search(request_path)))

    return match


class FaultProxy:
    """A threading HTTP/1.1 proxy in front of 127.0.0.1:`target_port`, with planned and random faults."""

    def __init__(self, target_port: int, *, stall_s: float = 3.0, seed: int | None = None) -> None:
        self.target_port = target_port
        self.stall_s = stall_s
        self._rng = random.Random(seed)
        self._lock = threading.Lock()
        self._plans: list[_Plan] = []
        self._rate = 0.0
        self._rate_kinds: tuple[str, ...] = KINDS
        self._rate_match: Matcher | None = None
        self._write_rate: float | None = None
        self._write_kinds: tuple[str, ...] = KINDS
        self.injected: list[Injected] = []
        self.forwarded = 0
        self._server: socket.socket | None = None
        self._threads: list[threading.Thread] = []
        self._connections: set[socket.socket] = set()
        self._stopping = threading.Event()

    # -- driving it ----------------------------------------------------------------------------

    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError("the proxy is not running")
        return int(self._server.getsockname()[1])

    def plan(self, kind: str, *, times: int = 1, match: Matcher | None = None) -> None:
        """The next `times` requests that `match` (any request when None) meet fault `kind`."""
        if kind not in KINDS:
            raise ValueError(f"unknown fault kind {kind!r}; known: {KINDS}")
        with self._lock:
            self._plans.append(_Plan(kind, times, match))

    def set_rate(
        self,
        rate: float,
        kinds: tuple[str, ...] = KINDS,
        match: Matcher | None = None,
        *,
        writes: float | None = None,
        write_kinds: tuple[str, ...] | None = None,
    ) -> None:
        """From now on, each request that `match` meets a random fault among `kinds` with probability `rate`.

        `writes`: the probability for writes (PUT, POST, DELETE) instead, among `write_kinds` (default `kinds`).
        A kind named more than once in `kinds` is drawn that much more often.
        """
        for value in (rate, writes):
            if value is not None and not 0 <= value <= 1:
                raise ValueError("rate must be between 0 and 1")
        for kind in (*kinds, *(write_kinds or ())):
            if kind not in KINDS:
                raise ValueError(f"unknown fault kind {kind!r}; known: {KINDS}")
        with self._lock:
            self._rate, self._rate_kinds, self._rate_match = rate, tuple(kinds), match
            self._write_rate, self._write_kinds = writes, tuple(write_kinds or kinds)

    def clear(self) -> None:
        with self._lock:
            self._plans.clear()
            self._rate, self._write_rate = 0.0, None

    def clear_plans(self) -> None:
        """Drop the planned faults not met yet; the rate stays."""
        with self._lock:
            self._plans.clear()

    def pending(self) -> int:
        with self._lock:
            return sum(p.times for p in self._plans)

    def counts(self, *, writes: bool | None = None) -> Counter[str]:
        """Faults injected by kind; `writes` True or False: only on writes, or only on other requests."""
        with self._lock:
            return Counter(i.kind for i in self.injected if writes is None or (i.method in WRITE_METHODS) == writes)

    def _fault_for(self, method: str, path: str) -> str | None:
        with self._lock:
            for plan in self._plans:
                if plan.match is None or plan.match(method, path):
                    plan.times -= 1
                    if plan.times == 0:
                        self._plans.remove(plan)
                    kind: str | None = plan.kind
                    break
            else:
                kind = None
                matches = self._rate_match is None or self._rate_match(method, path)
                rate, kinds = self._rate, self._rate_kinds
                if self._write_rate is not None and method in WRITE_METHODS:
                    rate, kinds = self._write_rate, self._write_kinds
                if rate and matches and self._rng.random() < rate:
                    kind = self._rng.choice(kinds)
            if kind:
                self.injected.append(Injected(kind, method, path))
            return kind

    # -- running it -----------------------------------------------------------------------------

    def start(self) -> Self:
        server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        server.bind((HOST, 0))
        server.listen(64)
        self._server = server
        self._stopping.clear()
        thread = threading.Thread(target=self._accept, name="faultproxy-accept", daemon=True)
        thread.start()
        self._threads.append(thread)
        return self

    def stop(self) -> None:
        self._stopping.set()
        if self._server is not None:
            try:
                self._server.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            self._server.close()
        with self._lock:
            connections = list(self._connections)
        for connection in connections:
            try:
                connection.shutdown(socket.SHUT_RDWR)  # wakes the thread blocked reading it
            except OSError:
                pass
        for thread in self._threads:
            thread.join(5)
        self._threads.clear()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    def _accept(self) -> None:
        assert self._server is not None
        while not self._stopping.is_set():
            try:
                client, _ = self._server.accept()
            except OSError:
                return
            with self._lock:
                self._connections.add(client)
            thread = threading.Thread(target=self._serve, args=(client,), name="faultproxy-conn", daemon=True)
            thread.start()
            with self._lock:
                self._threads = [t for t in self._threads if t.is_alive()]
                self._threads.append(thread)

    def _serve(self, client: socket.socket) -> None:
        upstream: http.client.HTTPConnection | None = None
        reader = client.makefile("rb")
        try:
            while not self._stopping.is_set():
                head = _read_head(reader)
                if head is None:
                    return
                method, path, headers = head
                fault = self._fault_for(method, path)
                if fault == "reset_before":
                    _reset(client)
                    return
                body = _read_body(reader, headers)
                if fault in _ERRORS:
                    client.sendall(_error_reply(fault, method))
                    continue
                if upstream is None:
                    upstream = http.client.HTTPConnection(HOST, self.target_port, timeout=60)
                try:
                    reply = _forward(upstream, method, path, headers, body)
                except (OSError, http.client.HTTPException):
                    _reset(client)
                    return
                with self._lock:
                    self.forwarded += 1
                if fault == "reset_after":
                    _reset(client)
                    return
                if fault == "stall":
                    self._stopping.wait(self.stall_s)
                    _reset(client)
                    return
                client.sendall(reply)
        except OSError:
            return
        finally:
            reader.close()
            if upstream is not None:
                upstream.close()
            _close(client)
            with self._lock:
                self._connections.discard(client)


def _read_head(reader: IO[bytes]) -> tuple[str, str, list[tuple[str, str]]] | None:
    line = reader.readline(65537)
    if not line:
        return None
    parts = line.decode("latin-1").rstrip("\r\n").split(" ")
    if len(parts) != 3:
        return None
    method, path, _version = parts
    headers: list[tuple[str, str]] = []
    while True:
        line = reader.readline(65537)
        if not line:
            return None
        if line in (b"\r\n", b"\n"):
            break
        name, _, value = line.decode("latin-1").partition(":")
        headers.append((name.strip(), value.strip()))
    return method, path, headers


def _header(headers: list[tuple[str, str]], name: str) -> str | None:
    return next((v for n, v in headers if n.lower() == name), None)


def _read_body(reader: IO[bytes], headers: list[tuple[str, str]]) -> bytes:
    if (_header(headers, "transfer-encoding") or "").lower() == "chunked":
        body = b""
        while True:
            size = int(reader.readline().split(b";")[0].strip() or b"0", 16)
            if size == 0:
                while reader.readline() not in (b"\r\n", b"\n", b""):
                    pass
                return body
            body += reader.read(size)
            reader.readline()
    length = int(_header(headers, "content-length") or 0)
    return reader.read(length) if length else b""


def _forward(
    upstream: http.client.HTTPConnection, method: str, path: str, headers: list[tuple[str, str]], body: bytes
) -> bytes:
    """Send the request to Azurite as it came (the signed headers unchanged) and return the answer as bytes."""
    upstream.putrequest(method, path, skip_host=True, skip_accept_encoding=True)
    for name, value in headers:
        if name.lower() in ("transfer-encoding", "content-length"):
            continue
        upstream.putheader(name, value)
    if body or method in ("PUT", "POST", "MERGE"):
        upstream.putheader("Content-Length", str(len(body)))
    upstream.endheaders(body or None)
    response = upstream.getresponse()
    data = response.read()
    lines = [f"HTTP/1.1 {response.status} {response.reason}"]
    for name, value in response.getheaders():
        if name.lower() in ("transfer-encoding", "connection") or (
            name.lower() == "content-length" and method != "HEAD"
        ):
            continue
        lines.append(f"{name}: {value}")
    if method != "HEAD":
        lines.append(f"Content-Length: {len(data)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + (b"" if method == "HEAD" else data)


def _error_reply(kind: str, method: str) -> bytes:
    status, reason, code, message = _ERRORS[kind]
    body = (
        '<?xml version="1.0" encoding="utf-8"?>'
        f"<Error><Code>{code}</Code><Message>{message}\nRequestId:00000000-0000-0000-0000-000000000000\n"
        f"Time:{time.strftime('%Y-%m-%dT%H:%M:%S.0000000Z', time.gmtime())}</Message></Error>"
    ).encode()
    head = (
        f"HTTP/1.1 {status} {reason}\r\n"
        "Content-Type: application/xml\r\n"
        f"x-ms-error-code: {code}\r\n"
        "x-ms-request-id: 00000000-0000-0000-0000-000000000000\r\n"
        "x-ms-version: 2025-01-05\r\n"
        f"Content-Length: {0 if method == 'HEAD' else len(body)}\r\n\r\n"
    ).encode()
    return head + (b"" if method == "HEAD" else body)


def _reset(sock: socket.socket) -> None:
    """Close with a TCP RST (SO_LINGER 0), as a load balancer dropping the connection does."""
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    except OSError:
        pass
    _close(sock)


def _close(sock: socket.socket) -> None:
    try:
        sock.close()
    except OSError:
        pass
