"""Loopback HTTP stand-ins for LeadPier and the LE API, with recorded requests and injectable faults."""

from __future__ import annotations

import base64
import contextlib
import copy
import hashlib
import hmac
import json
import re
import secrets
import socket
import socketserver
import threading
import time
import traceback
import zlib
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import date
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any, ClassVar, Self

from sandbox.data import CAMPAIGN_CODE, KNOWN_DOMAINS

HOST = "127.0.0.1"
DASHBOARD_ORIGIN = "https://dash.leadpier.com"
LOGIN_PATH = "/v1/frontend/authenticate"
STATS_PATH = "/v1/api/stats/user/org/sources"

JsonBody = dict[str, Any] | list[Any]
FaultBody = bytes | str | JsonBody | None


# --------------------------------------------------------------------------- faults


@dataclass
class Fault:
    """One planned misbehaviour for the next `times` requests of `kind`."""

    kind: str
    status: int | None = None
    body: FaultBody = None
    headers: dict[str, str] = field(default_factory=dict)
    delay_s: float = 0.0
    times: int = 1
    close_connection: bool = False


class Faults:
    """A thread-safe queue of faults; each request of a kind consumes the oldest fault of that kind."""

    def __init__(self, kinds: Iterable[str]) -> None:
        self.kinds = frozenset(kinds)
        self._lock = threading.Lock()
        self._queue: list[Fault] = []

    def add(
        self,
        kind: str,
        *,
        status: int | None = None,
        body: FaultBody = None,
        headers: Mapping[str, str] | None = None,
        delay_s: float = 0.0,
        times: int = 1,
        close_connection: bool = False,
    ) -> Fault:
        """Plan a fault: wait `delay_s`, then drop the connection, or answer `status`/`body`/`headers`,
        or (status None) carry on normally."""
        if kind not in self.kinds:
            raise ValueError(f"unknown fault kind {kind!r}; this server knows {sorted(self.kinds)}")
        if times < 1:
            raise ValueError("times must be at least 1")
        if delay_s < 0:
            raise ValueError("delay_s must not be negative")
        if close_connection and status is not None:
            raise ValueError("a fault either closes the connection or answers a status, not both")
        fault = Fault(kind, status, body, dict(headers or {}), delay_s, times, close_connection)
        with self._lock:
            self._queue.append(fault)
        return fault

    def clear(self) -> None:
        with self._lock:
            self._queue.clear()

    def pending(self, kind: str | None = None) -> int:
        """How many more requests (of `kind`, or of any kind) will meet a fault."""
        with self._lock:
            return sum(f.times for f in self._queue if kind is None or f.kind == kind)

    def take(self, kind: str) -> Fault | None:
        """Consume one use of the oldest fault of `kind`; a snapshot, so later changes cannot race."""
        with self._lock:
            for fault in self._queue:
                if fault.kind == kind:
                    fault.times -= 1
                    if fault.times == 0:
                        self._queue.remove(fault)
                    return replace(fault, times=1)
        return None


# --------------------------------------------------------------------------- HTTP plumbing


@dataclass(frozen=True)
class InboundRequest:
    method: str
    path: str
    headers: dict[str, str]
    raw_body: bytes
    json: Any  # None when the body is empty or not JSON


@dataclass
class Reply:
    status: int
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    # What the body says as JSON, kept so recording an answer needs no re-parse; None when not JSON.
    payload: Any = None

    @classmethod
    def json(cls, status: int, payload: Any) -> Reply:
        return cls(status, json.dumps(payload).encode(), {"Content-Type": "application/json"}, payload)

    @classmethod
    def from_fault(cls, fault: Fault) -> Reply:
        assert fault.status is not None
        body, content_type = _encode_body(fault.body)
        headers = dict(fault.headers)
        if content_type and not any(name.lower() == "content-type" for name in headers):
            headers["Content-Type"] = content_type
        return cls(fault.status, body, headers, _parse_json(body))


def _encode_body(body: FaultBody) -> tuple[bytes, str | None]:
    if body is None:
        return b"", None
    if isinstance(body, bytes):
        return body, "application/octet-stream"
    if isinstance(body, str):
        return body.encode(), "text/plain; charset=utf-8"
    return json.dumps(body).encode(), "application/json"


class _DropConnection(Exception):
    """Raised inside a handler to leave the request unanswered and close the socket."""


class _HTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    # server_close() would otherwise join every handler thread, including ones sleeping in a fault.
    block_on_close = False

    def __init__(self, port: int, owner: LoopbackServer) -> None:
        self.owner = owner
        super().__init__((HOST, port), _Handler)

    def server_bind(self) -> None:
        # HTTPServer.server_bind resolves the host name (socket.getfqdn), which can stall without DNS.
        socketserver.TCPServer.server_bind(self)
        self.server_name, self.server_port = HOST, self.server_address[1]


class _Handler(BaseHTTPRequestHandler):
    # Keep-alive, as real upstreams do, so clients exercise their connection pools.
    protocol_version = "HTTP/1.1"
    server: _HTTPServer

    def setup(self) -> None:
        super().setup()
        self.server.owner._track(self.server, self.connection)

    def finish(self) -> None:
        try:
            super().finish()
        finally:
            self.server.owner._untrack(self.connection)

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def _dispatch(self) -> None:
        self.server.owner._handle(self)

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _dispatch

    def read_body(self) -> bytes:
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            return self._read_chunked()
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length > 0 else b""

    def _read_chunked(self) -> bytes:
        chunks: list[bytes] = []
        while True:
            size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
            if size == 0:
                while self.rfile.readline().strip():  # trailers
                    pass
                return b"".join(chunks)
            chunks.append(self.rfile.read(size))
            self.rfile.readline()

    def send(self, reply: Reply) -> None:
        self.send_response(reply.status)
        for name, value in reply.headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(reply.body)))
        self.end_headers()
        self.wfile.write(reply.body)

    def drop(self) -> None:
        self.close_connection = True
        with contextlib.suppress(OSError):
            self.connection.shutdown(socket.SHUT_RDWR)


class LoopbackServer:
    """A ThreadingHTTPServer on 127.0.0.1 with latency, fault injection and a stable port across restarts.

    Subclasses say which requests are of which fault kind, record what they need, and answer.
    """

    fault_kinds: ClassVar[tuple[str, ...]] = ()

    def __init__(self, *, latency_s: float = 0.0) -> None:
        self.latency_s = latency_s
        self.faults = Faults(self.fault_kinds)
        # Handler exceptions, so a test can see why the stand-in answered 500.
        self.errors: list[str] = []
        self._lock = threading.Lock()
        self._port: int | None = None
        self._httpd: _HTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._stopping = threading.Event()
        self._connections: set[socket.socket] = set()

    # -- lifecycle

    @property
    def port(self) -> int:
        if self._port is None:
            raise RuntimeError(f"{type(self).__name__} has not been started")
        return self._port

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.port}"

    @property
    def running(self) -> bool:
        return self._httpd is not None

    def start(self) -> Self:
        """Serve in a daemon thread; after a stop(), on the same port as before."""
        if self._httpd is not None:
            return self
        self._stopping = threading.Event()
        self._httpd = _HTTPServer(self._port or 0, self)
        self._port = self._httpd.server_address[1]
        self._thread = threading.Thread(
            # A short poll interval keeps stop() quick.
            target=self._httpd.serve_forever,
            kwargs={"poll_interval": 0.05},
            name=f"{type(self).__name__}:{self._port}",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop listening and cut every open connection, so pooled keep-alive clients see the outage too."""
        with self._lock:
            httpd, self._httpd = self._httpd, None
        if httpd is None:
            return
        self._stopping.set()
        httpd.shutdown()
        httpd.server_close()
        with self._lock:
            connections = list(self._connections)
        for connection in connections:
            with contextlib.suppress(OSError):
                connection.shutdown(socket.SHUT_RDWR)
        if self._thread is not None:
            self._thread.join()
            self._thread = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def _track(self, httpd: _HTTPServer, connection: socket.socket) -> None:
        with self._lock:
            current = httpd is self._httpd
            if current:
                self._connections.add(connection)
        if not current:
            # Accepted just before stop(): cut it too, or it would keep serving after the "outage".
            with contextlib.suppress(OSError):
                connection.shutdown(socket.SHUT_RDWR)

    def _untrack(self, connection: socket.socket) -> None:
        with self._lock:
            self._connections.discard(connection)

    # -- request handling

    def _handle(self, handler: _Handler) -> None:
        stopping = self._stopping
        raw_body = handler.read_body()
        request = InboundRequest(
            method=handler.command,
            path=handler.path.split("?", 1)[0],
            headers={name.lower(): value for name, value in handler.headers.items()},
            raw_body=raw_body,
            json=_parse_json(raw_body),
        )
        kind = self._kind(request)
        record = self._record(request, kind)
        try:
            reply = self._reply(request, kind, stopping)
        except _DropConnection:
            handler.drop()
            return
        if record is not None:
            record["status"] = reply.status
            record["response"] = reply.payload
        try:
            handler.send(reply)
        except OSError:
            # The client gave up first (its timeout was shorter than our delay): nothing to tell it.
            handler.close_connection = True
        if record is not None:
            record["answered"] = time.time()  # with `time` (its arrival), on the clock of the process holding both

    def _reply(self, request: InboundRequest, kind: str | None, stopping: threading.Event) -> Reply:
        if self.latency_s > 0 and stopping.wait(self.latency_s):
            raise _DropConnection
        fault = self.faults.take(kind) if kind is not None else None
        if fault is not None:
            if fault.delay_s > 0 and stopping.wait(fault.delay_s):
                raise _DropConnection
            if fault.close_connection:
                raise _DropConnection
            if fault.status is not None:
                return Reply.from_fault(fault)
        try:
            return self._answer(request)
        except Exception:
            self.errors.append(traceback.format_exc())
            return Reply.json(500, {"error": f"{type(self).__name__} failed; see .errors"})

    def _kind(self, request: InboundRequest) -> str | None:
        """The fault kind of a request, or None when faults never apply to it."""
        return None

    def _record(self, request: InboundRequest, kind: str | None) -> dict[str, Any] | None:
        """Remember the request; the returned dict gets the answer's `status` and `response` later."""
        return None

    def _answer(self, request: InboundRequest) -> Reply:
        raise NotImplementedError


def _parse_json(raw: bytes) -> Any:
    if not raw:
        return None
    try:
        return json.loads(raw)
    except ValueError:
        return None


# --------------------------------------------------------------------------- LeadPier


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _source_key(row: Mapping[str, Any]) -> str:
    return str(row.get("source") or "")


class FakeLeadPier(LoopbackServer):
    """LeadPier's login and source-statistics endpoints, as docs/REFERENCE.md describes them.

    `requests` holds every request (method, path, kind, json, headers, time, status, response, answered);
    `logins` counts successful logins; `issued_tokens` lists every token handed out.
    """

    fault_kinds = ("login", "stats")

    def __init__(
        self,
        rows_by_day: Mapping[str | date, list[dict[str, Any]]] | None = None,
        *,
        username: str = "sandbox-user",
        password: str = "sandbox-password",
        token_lifetime_s: int | None = 3600,
        expiry_claim: str = "exp",
        latency_s: float = 0.0,
        rows_for_day: Callable[[str], list[dict[str, Any]]] | None = None,
    ) -> None:
        super().__init__(latency_s=latency_s)
        self.rows_for_day = rows_for_day  # the rows of a day not set explicitly, made on first ask and kept
        self.username = username
        self.password = password
        self.token_lifetime_s = token_lifetime_s
        self.expiry_claim = expiry_claim
        self.logins = 0
        self.requests: list[dict[str, Any]] = []
        self.issued_tokens: list[str] = []
        self._rows: dict[str, list[dict[str, Any]]] = {}
        self._token_expiry: dict[str, float | None] = {}
        self._signing_key = secrets.token_bytes(32)
        # Hostile answers: the `count` claimed whatever the rows; pages that are always full, however far one reads;
        # the login's token replaced by this text (a header-unsafe or forged one).
        self.claimed_count: int | None = None
        self.endless_pages = False
        self.login_token: str | None = None
        for day, rows in (rows_by_day or {}).items():
            self.set_rows(day, rows)

    # -- test controls

    def set_rows(self, day: str | date, rows: Iterable[Mapping[str, Any]]) -> None:
        """Replace the statistics of `day` (kept sorted as the API serves them)."""
        ordered = sorted((copy.deepcopy(dict(row)) for row in rows), key=_source_key, reverse=True)
        with self._lock:
            self._rows[str(day)] = ordered

    def revoke_tokens(self) -> None:
        """Every token issued so far stops working (401), as after a server-side session reset."""
        with self._lock:
            self._token_expiry.clear()

    @property
    def stats_requests(self) -> list[dict[str, Any]]:
        return [r for r in list(self.requests) if r["kind"] == "stats"]

    @property
    def login_requests(self) -> list[dict[str, Any]]:
        return [r for r in list(self.requests) if r["kind"] == "login"]

    # -- serving

    def _kind(self, request: InboundRequest) -> str | None:
        if request.method == "POST" and request.path == LOGIN_PATH:
            return "login"
        if request.method == "POST" and request.path == STATS_PATH:
            return "stats"
        return None

    def _record(self, request: InboundRequest, kind: str | None) -> dict[str, Any]:
        record: dict[str, Any] = {
            "method": request.method,
            "path": request.path,
            "kind": kind,
            "json": request.json,
            "headers": request.headers,
            "time": time.time(),
            "status": None,
            "response": None,
        }
        with self._lock:
            self.requests.append(record)
        return record

    def _answer(self, request: InboundRequest) -> Reply:
        if request.path not in (LOGIN_PATH, STATS_PATH):
            return Reply.json(404, {"errorCode": "NOT_FOUND", "data": None})
        if request.method != "POST":
            return Reply.json(405, {"errorCode": "METHOD_NOT_ALLOWED", "data": None})
        if request.headers.get("origin") != DASHBOARD_ORIGIN:
            return Reply.json(403, {"errorCode": "FORBIDDEN", "message": "Origin not allowed", "data": None})
        if request.path == LOGIN_PATH:
            return self._login(request)
        return self._statistics(request)

    def _login(self, request: InboundRequest) -> Reply:
        body = request.json if isinstance(request.json, dict) else {}
        if body.get("username") != self.username or body.get("password") != self.password:
            return Reply.json(200, {"errorCode": "INVALID_CREDENTIALS", "data": None})
        token = self._issue_token() if self.login_token is None else self.login_token
        return Reply.json(
            200,
            {
                "errorCode": "NO_ERROR",
                "data": {"token": token, "email": "ops@example.com", "firstName": "Ops", "lastName": "Team"},
            },
        )

    def _issue_token(self) -> str:
        now = int(time.time())
        payload: dict[str, Any] = {"sub": self.username, "email": "ops@example.com", "iat": now}
        payload["jti"] = secrets.token_hex(8)  # two logins in the same second still differ
        expires_at = None if self.token_lifetime_s is None else now + self.token_lifetime_s
        if expires_at is not None:
            payload[self.expiry_claim] = expires_at
        header = _b64url(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
        claims = _b64url(json.dumps(payload).encode())
        signature = hmac.new(self._signing_key, f"{header}.{claims}".encode(), hashlib.sha256).digest()
        token = f"{header}.{claims}.{_b64url(signature)}"
        with self._lock:
            self._token_expiry[token] = expires_at
            self.issued_tokens.append(token)
            self.logins += 1
        return token

    def _token_is_valid(self, authorization: str) -> bool:
        scheme, _, token = authorization.partition(" ")
        if scheme.lower() != "bearer" or not token:
            return False
        with self._lock:
            if token not in self._token_expiry:
                return False
            expires_at = self._token_expiry[token]
        return expires_at is None or time.time() < expires_at

    def _statistics(self, request: InboundRequest) -> Reply:
        if not self._token_is_valid(request.headers.get("authorization", "")):
            return Reply.json(401, {"errorCode": "UNAUTHORIZED", "message": "Invalid or expired token", "data": None})
        body = request.json
        problem = _stats_body_problem(body)
        if problem:
            return Reply.json(400, {"errorCode": "BAD_REQUEST", "message": problem, "data": None})
        day = body["periodFrom"]
        with self._lock:
            rows = self._rows.get(day)
            if rows is None:
                made = self.rows_for_day(day) if self.rows_for_day else []
                rows = self._rows[day] = sorted(made, key=_source_key, reverse=True)
        offset, limit = body["offset"], body["limit"]
        if self.endless_pages:
            page = [{"source": f"mta_0213-lbe-e{offset + i + 1}", "visitors": 1} for i in range(limit)]
        else:
            page = rows[offset : offset + limit]
        count = len(rows) if self.claimed_count is None else self.claimed_count
        return Reply.json(200, {"errorCode": "NO_ERROR", "data": {"count": count, "statistics": page}})


_DAY = re.compile(r"^\d{4}-\d{2}-\d{2}$")


def _stats_body_problem(body: Any) -> str | None:
    """Why a statistics request body is refused; strict, so tests catch a client sending the wrong shape."""
    if not isinstance(body, dict):
        return "body must be a JSON object"
    for name in ("limit", "offset"):
        if type(body.get(name)) is not int:
            return f"{name} must be an integer"
    if body["limit"] < 1 or body["offset"] < 0:
        return "limit must be >= 1 and offset >= 0"
    for name in ("periodFrom", "periodTo"):
        if not isinstance(body.get(name), str) or not _DAY.match(body[name]):
            return f"{name} must be a YYYY-MM-DD date"
    return None


# --------------------------------------------------------------------------- LE


class FakeLE(LoopbackServer):
    """The LE API: accepts a day's records by PUT and reports which campaign codes it could match.

    `puts` holds every PUT (path, body, headers, time, status, response, answered): `time` when it arrived,
    `answered` when the answer was sent.
    """

    fault_kinds = ("put",)

    def __init__(
        self,
        *,
        api_key: str | None = None,
        latency_s: float = 0.0,
        known_domains: set[str] | None = None,
        respond: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(latency_s=latency_s)
        self.api_key = api_key
        self.known_domains = {code.lower() for code in (KNOWN_DOMAINS if known_domains is None else known_domains)}
        # When set, every accepted PUT gets this answer instead of the computed one.
        self.respond = respond
        self.puts: list[dict[str, Any]] = []

    def received_days(self) -> dict[str, list[dict[str, Any]]]:
        """What the LE side holds: per report day, the records of the latest PUT it accepted."""
        held: dict[str, list[dict[str, Any]]] = {}
        for put in list(self.puts):
            response, body = put.get("response"), put["body"]
            if put["status"] == 200 and isinstance(response, dict) and response.get("success") is True:
                held[body["report_date"]] = body["data"]
        return held

    def _kind(self, request: InboundRequest) -> str | None:
        return "put" if request.method == "PUT" else None

    def _record(self, request: InboundRequest, kind: str | None) -> dict[str, Any] | None:
        if kind != "put":
            return None
        record: dict[str, Any] = {
            "path": request.path,
            "body": request.json,
            "headers": request.headers,
            "time": time.time(),
            "status": None,
            "response": None,
        }
        with self._lock:
            self.puts.append(record)
        return record

    def _answer(self, request: InboundRequest) -> Reply:
        if request.method != "PUT":
            return Reply.json(405, {"success": False, "message": "only PUT is supported"})
        if self.api_key is not None and request.headers.get("x-api-key") != self.api_key:
            return Reply.json(401, {"success": False, "message": "invalid or missing API key"})
        body = request.json
        if (
            not isinstance(body, dict)
            or not isinstance(body.get("report_date"), str)
            or not isinstance(body.get("data"), list)
        ):
            return Reply.json(400, {"success": False, "message": "expected {report_date, data[]}"})
        if self.respond is not None:
            return Reply.json(200, self.respond)
        return Reply.json(200, self._match(body["data"]))

    def _match(self, records: list[Any]) -> dict[str, Any]:
        details: list[dict[str, Any]] = []
        errors: list[str] = []
        for record in records:
            code = record.get("campaign_code") if isinstance(record, dict) else None
            if not isinstance(code, str):
                errors.append(f"missing campaign_code in {record!r}")
                continue
            shape = CAMPAIGN_CODE.match(code)
            if shape is None:
                errors.append(f"invalid campaign code format '{code}'")
                continue
            domain_code = shape.group(2)
            if domain_code.lower() not in self.known_domains:
                errors.append(f"unknown domain code '{domain_code}' in '{code}'")
                continue
            details.append(
                {
                    "le_code": code,
                    "domain": KNOWN_DOMAINS.get(domain_code.lower(), f"{domain_code.lower()}.example.com"),
                    "pp_campaign": code.split("_", 1)[1],
                    # Stable per code, so repeated sends report the same figure.
                    "sends": 1000 + zlib.crc32(code.lower().encode()) % 90000,
                    "revenue": record.get("revenue"),
                }
            )
        return {
            "success": True,
            "matched": len(details),
            "unmatched": len(errors),
            "total_received": len(records),
            "details": details,
            "errors": errors,
        }


# --------------------------------------------------------------------------- refused connections

# Bound but never listening: connecting is refused, and while the socket lives no one else
# (not even the client's own ephemeral port, which could otherwise self-connect) can take the port.
_reserved_ports: list[socket.socket] = []


def closed_port_url() -> str:
    """http://127.0.0.1:<port> where every connection is refused."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind((HOST, 0))
    _reserved_ports.append(sock)
    return f"http://{HOST}:{sock.getsockname()[1]}"
