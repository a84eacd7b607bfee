"""A loopback stand-in for Application Insights' ingestion endpoint: keeps every envelope posted to /v2.1/track."""

from __future__ import annotations

import gzip
import json
import ssl
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import TracebackType
from typing import Any, Self

INSTRUMENTATION_KEY = "00000000-0000-0000-0000-000000000000"

# The envelope name's last part -> the table Application Insights puts the item in.
TABLES = {
    "Request": "requests",
    "RemoteDependency": "dependencies",
    "Message": "traces",
    "Exception": "exceptions",
    "Metric": "customMetrics",
    "Event": "customEvents",
}


class FakeIngestion:
    """`envelopes` holds every item received; `answer_status` other than 200 refuses (and drops) each batch, and
    None never answers (the request is read, the connection held open until the server stops). With `certificate`
    (a PEM certificate and key, sandbox.identity.make_certificate) it serves HTTPS, as Entra ID authentication
    requires: the exporter sends a bearer token over TLS only. `authorizations` has each upload's Authorization."""

    def __init__(self, answer_status: int | None = 200, certificate: tuple[Path, Path] | None = None) -> None:
        self.answer_status = answer_status
        self.authorizations: list[str | None] = []
        self._stopping = threading.Event()
        self.envelopes: list[dict[str, Any]] = []
        self.bodies: list[bytes] = []  # raw request bodies as sent (decompressed), for the secret checks
        self.paths: list[str] = []
        self._lock = threading.Lock()
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                body = gzip.decompress(raw) if raw[:2] == b"\x1f\x8b" else raw
                items = _decode(body)
                with owner._lock:
                    owner.paths.append(self.path)
                    owner.authorizations.append(self.headers.get("Authorization"))
                    owner.bodies.append(body)
                    if owner.answer_status == 200:
                        owner.envelopes.extend(items)
                if owner.answer_status is None:
                    owner._stopping.wait()
                    return
                answer = json.dumps(
                    {
                        "itemsReceived": len(items),
                        "itemsAccepted": len(items) if owner.answer_status == 200 else 0,
                        "errors": [],
                    }
                ).encode()
                self.send_response(owner.answer_status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._scheme = "http"
        if certificate is not None:
            context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            context.load_cert_chain(*certificate)
            self._server.socket = context.wrap_socket(self._server.socket, server_side=True)
            self._scheme = "https"
        self._thread = threading.Thread(target=self._server.serve_forever, name="fake-ingestion", daemon=True)

    @property
    def url(self) -> str:
        return f"{self._scheme}://127.0.0.1:{self._server.server_address[1]}/"

    @property
    def connection_string(self) -> str:
        return connection_string(self.url)

    def __enter__(self) -> Self:
        self._thread.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._stopping.set()
        self._server.shutdown()
        self._server.server_close()

    def items(self, table: str | None = None) -> list[dict[str, Any]]:
        with self._lock:
            found = list(self.envelopes)
        return [e for e in found if table is None or table_of(e) == table]


def connection_string(ingestion_url: str) -> str:
    return f"InstrumentationKey={INSTRUMENTATION_KEY};IngestionEndpoint={ingestion_url}"


def _decode(body: bytes) -> list[dict[str, Any]]:
    """A JSON array, or one JSON object per line (both forms are accepted by the real endpoint)."""
    text = body.decode("utf-8").strip()
    if not text:
        return []
    if text.startswith("["):
        return list(json.loads(text))
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def table_of(envelope: dict[str, Any]) -> str:
    return TABLES.get(str(envelope.get("name", "")).rsplit(".", 1)[-1], "unknown")


def base_data(envelope: dict[str, Any]) -> dict[str, Any]:
    data: dict[str, Any] = envelope.get("data", {}).get("baseData", {})
    return data


def dimensions(envelope: dict[str, Any]) -> dict[str, str]:
    """customDimensions: `properties` of the item, or of its one metric data point."""
    return dict(base_data(envelope).get("properties") or {})
